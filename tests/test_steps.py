"""Step-by-step derivations: the notes' arithmetic, and every step agrees with the engine."""

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from rfsym import Conv, MaxPool, ReLU, Sequential, analyze, symbols
from rfsym.steps import derivation, layer_steps


def test_notes_stacked_3x3():
    # notes §2: R = 3 + (3 − 1) = 5, then R = 5 + (3 − 1) = 7 (and 9 for the fourth layer, §6)
    text = derivation(analyze(Sequential(*[Conv(3, padding=1)] * 4))).text()
    assert text.splitlines() == ["R₁ = 1 + (3 − 1) = 3", "R₂ = 3 + (3 − 1) = 5",
                                 "R₃ = 5 + (3 − 1) = 7", "R₄ = 7 + (3 − 1) = 9"]


def test_strides_show_products():
    r = analyze(Sequential(Conv(3, stride=2), Conv(3, stride=2), Conv(3)))
    lines = derivation(r).text().splitlines()
    assert lines[1] == "R₂ = 3 + (3 − 1)·2 = 7,  J₂ = 2·2 = 4"
    assert lines[2] == "R₃ = 7 + (3 − 1)·4 = 15"


def test_symbolic_steps_and_formats():
    k, s = symbols("k s")
    d = derivation(analyze(Sequential(Conv(k, stride=s), Conv(k))))
    assert d.text().splitlines()[1] == "R₂ = k + (k − 1)·s = k·s + k − s"
    assert d.latex().splitlines()[1:4] == [r"R_{1} &= 1 + (k - 1) = k \\", r"J_{1} &= 1 \cdot s = s \\",
                                           r"R_{2} &= k + (k - 1) \cdot s = k s + k - s"]
    assert d.markdown().splitlines()[1] == "2. Conv k×k: $R_{2} = k + (k - 1) \\cdot s = k s + k - s$"


def test_identity_layers_skipped_and_out_size():
    r = analyze(Sequential(Conv(3, padding=1), ReLU(), MaxPool(2)), input_size=7)
    d = derivation(r, ("rf", "out_size"))
    assert [s.layer.type for s in d.steps] == ["Conv", "MaxPool"]
    assert d.text().splitlines()[1] == "R₂ = 3 + (2 − 1) = 4,  n₂ = ⌊(7 + 0 − 2)/2⌋ + 1 = 3"


step_layers = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2))


@settings(max_examples=500)
@given(st.lists(step_layers, min_size=1, max_size=6), st.integers(12, 40))
def test_each_step_arithmetic_equals_engine(spec, n):
    """Evaluating the written-out arithmetic of every step gives the engine's value."""
    net = Sequential(*[Conv(k, stride=s, dilation=d, padding=p) for k, s, d, p in spec])
    try:
        r = analyze(net, input_size=n)
    except ValueError:
        return  # input too small for this stack
    for step in layer_steps(r, ("rf", "jump", "start", "out_size")):
        for piece in step.axes[0]:
            if piece.text:
                expr = piece.text.replace("−", "-").replace("·", "*").replace("⌊", "floor(").replace("⌋", ")")
                assert sp.sympify(expr) == piece.value, (piece.symbol, piece.text, piece.value)
            assert piece.value == getattr(step.layer, {"R": "rf", "J": "jump", "u": "start",
                                                       "n": "out_size"}[piece.symbol])
