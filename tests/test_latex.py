"""LaTeX output: structured Σ/Π form equals the engine's closed form; tables; the report compiles."""

import shutil
import subprocess

import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from rfsym import AvgPool, Conv, MaxPool, ReLU, Sequential, analyze, symbols
from rfsym.format import value
from rfsym.latex import is_chain, latex, report, structured, table, to_latex

NOTES_STACK = Sequential(*[Conv(3, padding=1, name=f"conv{i + 1}") for i in range(4)])


def test_notes_general_formula_instantiated():
    # notes §3: R_L = 1 + Σ (k_i − 1) Π s_j, which for stride 1 is 1 + Σ (k_i − 1)
    out = to_latex(analyze(NOTES_STACK), quantities=("rf",))
    assert r"1 + \sum_{i=1}^{L} (k_i - 1) \\" in out
    assert "&= 1 + (3 - 1) + (3 - 1) + (3 - 1) + (3 - 1)" in out
    assert out.rstrip().endswith("&= 9\n\\end{aligned}")


def test_symbolic_three_layers_structured_and_closed():
    ks, ss = symbols("k1:4"), symbols("s1:4")
    r = analyze(Sequential(*[Conv(k, stride=s) for k, s in zip(ks, ss)]))
    out = to_latex(r, quantities=("rf", "jump"))
    assert r"(k_{1} - 1) + (k_{2} - 1) \cdot s_{1} + (k_{3} - 1) \cdot s_{1} \cdot s_{2}" in out
    assert r"J &= \prod_{i=1}^{L} s_i = s_{1} \cdot s_{2} \cdot s_{3} = s_{1} s_{2} s_{3}" in out
    st_ = structured(r)
    assert sp.expand(st_.sum() - r.rf) == 0


def test_dilation_uses_kappa():
    r = analyze(Sequential(Conv(3, dilation=2), Conv(3, dilation=4)))
    out = to_latex(r, quantities=("rf",))
    assert r"\kappa_i = d_i (k_i - 1) + 1" in out
    assert "2 \\cdot (3 - 1) + 4 \\cdot (3 - 1)" in out and out.rstrip().endswith("&= 13\n\\end{aligned}")


windows = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2),
                    st.sampled_from(["conv", "max", "avg", "relu"]))


def _layer(k, s, d, p, kind):
    if kind == "conv":
        return Conv(k, stride=s, dilation=d, padding=p)
    if kind == "max":
        return MaxPool(k, stride=s, dilation=d, padding=min(p, k // 2))
    if kind == "avg":
        return AvgPool(k, stride=s, padding=min(p, k // 2))
    return ReLU()


@given(st.lists(windows, min_size=1, max_size=7))
def test_structured_sum_equals_engine_rf_and_start(spec):
    """For any chain of windows, 1 + Σ (κ_i − 1) J_{i−1} and −Σ p_i J_{i−1} equal the engine's rf and start."""
    r = analyze(Sequential(*[_layer(*w) for w in spec]))
    assert is_chain(r)
    s = structured(r)
    assert sp.sympify(s.sum()) == r.rf
    assert -sum((t.pad_left * t.jump_in for t in s.terms), sp.Integer(0)) == r.start


def test_symbolic_random_chain_structured_equals_closed():
    k, s, d, p = symbols("k s d p")
    r = analyze(Sequential(Conv(k, stride=s, padding=p), Conv(3, dilation=d, stride=2), Conv(k, stride=s)))
    assert sp.expand(structured(r).sum() - r.rf) == 0


def test_per_axis_rows_when_axes_differ():
    out = to_latex(analyze(Sequential(Conv((3, 5)), Conv(3, stride=2))), quantities=("rf", "jump"))
    assert "R^{(0)}" in out and "R^{(1)}" in out and "J &=" in out


def test_closed_form_only_for_global_layers():
    from rfsym import GlobalAvgPool
    r = analyze(Sequential(Conv(3), GlobalAvgPool()), input_size=8)
    assert not is_chain(r) and structured(r) is None
    assert to_latex(r, ("rf",)) == "\\begin{aligned}\nR &= 8\n\\end{aligned}"


def test_deep_symbolic_network_1000_layers():
    """sympy.latex recurses; 1000 layers with distinct symbols must still print."""
    n = 1000
    ks, ss = symbols(f"k1:{n + 1}"), symbols(f"s1:{n + 1}")
    r = analyze(Sequential(*[Conv(k, stride=s, padding=1) for k, s in zip(ks, ss)]))
    out = to_latex(r, quantities=("rf", "jump", "start"))
    assert r"\cdots" in out and "k_{1000}" in out
    short = r._repr_latex_()
    assert short.startswith("$$") and "characters omitted" in short
    tex = report(r)
    assert "characters omitted" in tex and "derivation is left out" in tex and "table is left out" in tex


def test_latex_survives_deep_expression():
    x, f = sp.Symbol("x"), sp.Function("f")
    e = x
    for _ in range(3000):
        e = f(e)
    assert latex(e).count("f{") == 3000 or latex(e).count("f") == 3000


def test_cells_and_markdown_table():
    # the stacked 3×3 table (Layers | Kernel | Stride | Padding | receptive field 3, 5, 7, 9); equal
    # axes print once in every format (rfsym.format), differing ones as 5×7
    md = table(analyze(NOTES_STACK), columns=("index", "kernel", "stride", "padding", "rf"), total=False)
    assert md.splitlines()[2:] == [f"| {i} | 3 | 1 | 1 | {2 * i + 3} |" for i in range(4)]
    assert value((5, 7), "latex", area=True) == r"5 \times 7"
    assert value((-3, -3), "latex") == "-3"
    assert value((sp.Symbol("n") + 1,), "markdown") == "$n + 1$"
    assert value((138357544,), "markdown") == "138,357,544"
    tex = table(analyze(Sequential(Conv((5, 7)), Conv(3, padding=1))), "latex", columns=("name", "rf", "start"))
    assert r"0 & $5 \times 7$ & $0$ \\" in tex and r"1 & $7 \times 9$ & $-1$ \\" in tex


def test_latex_table_booktabs():
    C = symbols("C")
    r = analyze(Sequential(Conv(3, in_channels=C, out_channels=C, padding=1), ReLU()), input_size=8)
    tex = table(r, "latex")
    assert tex.splitlines()[0].startswith(r"\begin{tabular}{") and r"\toprule" in tex and r"\bottomrule" in tex
    assert "$9 C^{2} + C$" in tex or "$C \\left(9 C + 1\\right)$" in tex


def test_result_methods_delegate():
    r = analyze(NOTES_STACK)
    assert r.to_latex() == to_latex(r)
    assert r.layers[1]._repr_latex_().startswith("$$")
    assert "R &= 5" in r.layers[1].to_latex()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_report_compiles_with_pdflatex(tmp_path):
    C, n = symbols("C n")
    net = Sequential(Conv(3, in_channels=3, out_channels=C, padding=1, name="conv_1"), ReLU(), MaxPool(2),
                     Conv(3, padding=1, dilation=2, out_channels=C), Conv((3, 5), stride=2, out_channels=C))
    path = tmp_path / "report.tex"
    report(analyze(net, input_size=64), path, title="rfsym test report: 100% & more_")
    for _ in range(2):  # longtable settles its column widths on the second run
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", path.name],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "report.pdf").stat().st_size > 1000
    # a deep symbolic network compiles too (long closed forms are left out, not overflowing)
    ks = symbols("k1:301")
    deep = tmp_path / "deep.tex"
    report(analyze(Sequential(*[Conv(k, stride=2) for k in ks])), deep)
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", deep.name],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_evaluated_results_are_refused_clearly():
    import numpy as np

    from rfsym import RfsymError
    from rfsym.steps import derivation

    k = symbols("k")
    e = analyze(Sequential(Conv(k, stride=2), Conv(3))).evaluate({"k": np.array([3, 5])})
    for fn in (lambda: e.to_latex(), lambda: table(e), lambda: derivation(e)):
        with pytest.raises(RfsymError, match="evaluate"):
            fn()
