"""Comparisons: the notes' 7×7 vs 3×3 argument proven, targets solved, crossovers found."""

import pytest
import sympy as sp

from rfsym import Conv, MaxPool, Repeat, RfsymError, Sequential, analyze, symbols
from rfsym.comparison import compare, crossover, smallest

C, n, d, k, T = symbols("C n d k T")


def test_notes_seven_vs_three_by_three():
    # notes §4: same receptive field 7×7, weights 49C² vs 3·(3²C²) = 27C²
    one = Conv(7, in_channels=C, out_channels=C, bias=False)
    three = Sequential(*[Conv(3, in_channels=C, out_channels=C, bias=False)] * 3)
    c = compare(one, three, names=["7x7", "3x3 x3"], input_size=32)
    assert c.value("params", 0) == 49 * C**2 and c.value("params", 1) == 27 * C**2
    assert c.difference("rf") == 0 and c.equal("rf") is True
    assert c.ratio("params") == sp.Rational(27, 49)
    assert c.difference("params") == -22 * C**2 and c.equal("params") is False
    # with input size 32 the MACs differ too (valid convolutions shrink differently)
    assert c.equal("macs") is False
    md = c.to_markdown()
    assert "| params | $49 C^{2}$ | $27 C^{2}$ | $- 22 C^{2}$ | 27/49 |" in md
    assert "| macs | $33\\,124 C^{2}$ | $21\\,240 C^{2}$ | $- 11\\,884 C^{2}$ | ≈ 0.6412 |" in md
    assert c.to_latex().startswith(r"\begin{tabular}{lrrrr}")
    assert c.to_dict()["quantities"]["params"]["ratios"] == ["27/49"]


def test_three_networks_and_results():
    a, b, c3 = (analyze(Sequential(*[Conv(3)] * i)) for i in (1, 2, 3))
    c = compare(a, b, c3)
    assert c.names == ["net1", "net2", "net3"]
    assert [row[2] for row in c.rows() if row[0] == "rf"][0] == [2, 4]
    assert "net3 / net1" in c.to_text().splitlines()[0]


def test_smallest_depth_kernel_dilation():
    assert smallest(Repeat(Conv(3, padding=1), n), 100).value == 50      # notes: 2n + 1 >= 100
    assert smallest(Repeat(Conv(3, padding=1), n), 100).method == "solved"
    assert smallest(Sequential(Conv(k), Conv(k), Conv(k)), 100).value == 34   # 3k - 2 >= 100
    assert smallest(Conv(3, dilation=d), 100).value == 50                # 2d + 1 >= 100
    assert smallest(Repeat(Conv(3, stride=2), n), 1000).value == 9       # 2^(n+1) - 1 >= 1000
    assert smallest(2 * n + 1, T).value == sp.Max(1, sp.ceiling(T / 2 - sp.Rational(1, 2)))


def test_smallest_falls_back_to_exact_search():
    # floor in the expression: no sympy solve, exact search instead
    s = smallest(sp.floor(n / 3) + 1, 10)
    assert (s.value, s.method) == (27, "search")
    s = smallest(2 ** n, 2**40 + 1)
    assert s.value == 41


def test_smallest_is_really_smallest_for_many_targets():
    for target in range(1, 200):
        v = smallest(Repeat(Conv(5, padding=2), n), target).value
        assert 4 * v + 1 >= target and (v == 1 or 4 * (v - 1) + 1 < target)


def test_crossover():
    # a stride-2 stack (rf 2^(n+1) - 1) overtakes a 9x9 stack (8n + 1) at n = 5
    x = crossover(Repeat(Conv(3, stride=2), n), Repeat(Conv(9), n))
    assert x.value == 5
    assert 2 ** (5 + 1) - 1 > 8 * 5 + 1 and not 2 ** (4 + 1) - 1 > 8 * 4 + 1
    # pooling every layer vs not
    assert crossover(Repeat(Sequential(Conv(3, padding=1), MaxPool(2)), n), Repeat(Conv(7), n)).value >= 1


def test_errors():
    with pytest.raises(RfsymError, match="at least two"):
        compare(Conv(3))
    with pytest.raises(RfsymError, match="which symbol"):
        smallest(n + k, 10)
    with pytest.raises(RfsymError, match="does not reach"):
        smallest(sp.Integer(3) + 0 * n, 10, n, upper=100)


def test_ratios_with_large_denominators_print_approximately():
    c = compare(Conv(3, in_channels=7, out_channels=101), Conv(3, in_channels=7, out_channels=103))
    assert c.ratio("params") == sp.Rational(103, 101)  # exact in the data
    assert c.to_text().splitlines()[4].endswith("≈ 1.02")  # header, rule, rf, jump, params
    assert c.to_dict()["quantities"]["params"]["ratios"] == ["103/101"]
