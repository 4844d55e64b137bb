"""Reading layers of numeric results (the exact fast path): sympy numbers, each value made once,
the same objects as before (issue 19: per-layer reads of long chains)."""

from __future__ import annotations

from fractions import Fraction

import sympy as sp

import rfsym as R


def test_numeric_reads_are_sympy_numbers_made_once():
    """Every quantity of a numeric network is a sympy number (as on the symbolic path); equal
    axes give one object, and a second read gives the object of the first."""
    r = R.analyze(R.Sequential(R.Conv(3, stride=2, padding=1, out_channels=4, name="a"), R.Upsample(2, name="up"),
                               R.Conv((3, 5), out_channels=6, name="b")), input_size=(33, 40), in_channels=3)
    for lr in (*r.layers, r):
        for q in ("rf", "rf_min", "jump", "start", "center", "period", "out_size"):
            value = getattr(lr, q)
            assert value is getattr(lr, q), q
            values = value if isinstance(value, tuple) else (value,)
            assert all(isinstance(v, sp.Rational) for v in values), (lr, q, value)
            axes = lr.axes(q)
            assert isinstance(axes, tuple) and len(axes) == 2 and all(isinstance(v, sp.Rational) for v in axes)
            assert axes == lr.axes(q)
    up = r.layer("up")
    assert up.jump == sp.Rational(1, 1) and r.layer("a").jump == 2 and isinstance(r.layer("b").jump, sp.Integer)
    # b's 3 (5) upsampled positions read 2 (3) outputs of a, each a field of 3 at jump 2
    assert r.layer("b").rf == (5, 7) and r.layer("b").axes("rf") == (5, 7)
    assert isinstance(r.layer("a").in_channels, sp.Integer) and r.layer("b").params == 3 * 5 * 4 * 6 + 6
    sq = R.analyze(R.Sequential(R.Conv(3, stride=2), R.Conv(3)), input_size=20)
    rf = sq.layers[-1].axes("rf")
    assert rf[0] is rf[1] and rf[0] == 7  # square kernels: one value, converted once


def test_fractions_and_large_values_stay_exact():
    """Half-integer centres and values beyond int64 on the numeric path are exact sympy numbers."""
    r = R.analyze(R.Sequential(*[R.Conv(2, stride=3)] * 50), input_size=3**50 * 2)
    last = r.layers[-1]
    assert last.jump == 3**50 and isinstance(last.jump, sp.Integer)
    assert last.center == Fraction(int(last.rf) - 1, 2) + last.start
    assert isinstance(r.layers[0].center, sp.Rational) and r.layers[0].center == sp.Rational(1, 2)


def test_layers_are_one_set_of_objects():
    """``layers``, ``layer(name)``, ``outputs`` and ``features`` hand out the same objects; a
    name used twice gives its last node (as before)."""
    relu = R.ReLU(name="act")
    r = R.analyze(R.Sequential(R.Conv(3, name="a"), relu, R.Conv(3, name="b"), relu), input_size=16)
    (first,) = r.outputs.values()
    assert first is r.layers[-1]
    assert r.layer("b") is r.layers[2] and r.layer("act") is r.layers[3] and r.at("a") is r.layers[0]
    r.set_features("b")
    assert r.features is r.layers[2]
    assert [lr.index for lr in r.layers] == [0, 1, 2, 3]
    assert [lr.name for lr in r.layers] == ["a", "act", "b", "act"]
