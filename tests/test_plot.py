"""Plots: drawn from the engine's values and the enumeration's masks; PNG/SVG/PDF files."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from rfsym import Conv, Repeat, RfsymError, Sequential, analyze, symbols  # noqa: E402
from rfsym.plot import boxes, growth, mask, plot, tradeoff  # noqa: E402

n, C = symbols("n C")


def test_growth_values_linear_and_exponential(tmp_path):
    fig = growth({"s1": Repeat(Conv(3, padding=1), n), "s2": Repeat(Conv(3, stride=2, padding=1), n),
                  "block": Conv(5)}, depths=range(1, 7), log=True, path=tmp_path / "g.png")
    lines = fig.axes[0].lines
    assert list(lines[0].get_ydata()) == [3, 5, 7, 9, 11, 13]
    assert list(lines[1].get_ydata()) == [2 ** (L + 1) - 1 for L in range(1, 7)]
    assert list(lines[2].get_ydata()) == [4 * L + 1 for L in range(1, 7)]
    assert fig.axes[0].get_yscale() == "log" and "receptive field" in fig.axes[0].get_ylabel()
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_growth_from_function_matches_engine():
    fig = growth({"f": lambda L: Sequential(*[Conv(3, stride=2)] * L)}, depths=[1, 2, 3])
    assert list(fig.axes[0].lines[0].get_ydata()) == [int(analyze(Sequential(*[Conv(3, stride=2)] * L)).rf)
                                                      for L in (1, 2, 3)]


def test_tradeoff_points(tmp_path):
    fig = tradeoff({"7x7": Conv(7, in_channels=C, out_channels=C, bias=False),
                    "3x3 x3": Sequential(*[Conv(3, in_channels=C, out_channels=C, bias=False)] * 3)},
                   values={C: 64}, path=tmp_path / "t.svg")
    pts = [(ln.get_xdata()[0], ln.get_ydata()[0]) for ln in fig.axes[0].lines]
    assert pts == [(7, 49 * 64**2), (7, 27 * 64**2)]
    assert (tmp_path / "t.svg").read_text().lstrip().startswith("<?xml")


def test_mask_counts_notes_example(tmp_path):
    net = Sequential(Conv(3, padding=1), Conv(3, padding=1))
    fig = mask(net, 5, (2, 2), counts=True, path=tmp_path / "m.pdf")
    shown = fig.axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(shown), np.outer([1, 2, 3, 2, 1], [1, 2, 3, 2, 1]))
    assert (tmp_path / "m.pdf").read_bytes()[:4] == b"%PDF"


def test_boxes_from_spans():
    r = analyze(Sequential(Conv(3, padding=1), Conv(3, stride=2, padding=1)), 8)
    fig = boxes(r, [(0, 0), (2, 3)])
    rects = [p for p in fig.axes[0].patches if p.get_label().startswith("output")]
    assert [(p.get_x(), p.get_y(), p.get_width(), p.get_height()) for p in rects] == \
        [(-2.5, -2.5, 5, 5), (3.5, 1.5, 5, 5)]


def test_dispatch_and_errors(tmp_path):
    plot("mask", [Sequential(Conv(3, padding=1))], tmp_path / "a.png", input_size=5)
    with pytest.raises(RfsymError, match="PNG, SVG or PDF"):
        growth([Conv(3)], path=tmp_path / "x.jpg")
    with pytest.raises(RfsymError, match="unknown plot kind"):
        plot("pie", [Conv(3)], tmp_path / "b.png")


def test_tradeoff_of_symbolic_or_unknown_values_is_a_clear_error():
    from rfsym import Conv, Sequential, symbols
    from rfsym.errors import RfsymError
    from rfsym.plot import tradeoff

    k = symbols("k")
    with pytest.raises(RfsymError, match=r"rf of net1 is 3\*k - 2 \(symbolic\): give numbers"):
        tradeoff([Sequential(*[Conv(k)] * 3)])
    with pytest.raises(RfsymError, match="params of net1 is unknown"):
        tradeoff([Sequential(*[Conv(3)] * 3)])  # no channels: params unknown
