"""Engine against enumeration, layer by layer.

:func:`verify` runs the derivation engine (:func:`rfsym.analyze`) and the brute-force enumerator
(:mod:`rfsym.enumeration`, which shares no code with the engine) on the same network and input
size, and compares, for every layer's output and every spatial axis, ``rf``, ``jump``,
``start``, ``center`` and ``out_size`` — and ``rf_min`` and ``period`` where the receptive field
depends on the output position.

>>> from rfsym import Conv, MaxPool, Sequential
>>> report = verify(Sequential(Conv(3, padding=1), Conv(3, stride=2), MaxPool(3, ceil_mode=True)), 32)
>>> report.ok, report.checked
(True, 40)
>>> report
<VerifyReport ok: 40 comparisons over 3 layers, no mismatch>
"""

from __future__ import annotations

import numbers
from fractions import Fraction
from typing import Any, NamedTuple

from .engine import analyze
from .enumeration import POSITIONS, enumerate_network

__all__ = ["verify", "VerifyReport", "Mismatch"]

_ALWAYS = ("rf", "jump", "start", "center", "out_size")
_PHASED = ("rf_min", "period")


class Mismatch(NamedTuple):
    """One disagreement: the layer (``"3 (Conv 'conv1')"``), the quantity (``"rf"``, or
    ``"rf[axis 1]"`` on a network with several axes), and the two values."""

    layer: str
    quantity: str
    engine: Any
    enumerated: Any


class VerifyReport:
    """Outcome of :func:`verify`: ``ok``, ``mismatches`` (a list of :class:`Mismatch`),
    ``checked`` (how many comparisons were made) and ``layers`` (how many layers)."""

    def __init__(self, mismatches, checked, layers, network=None, input_size=None, result=None,
                 enumeration=None):
        #: the engine's :class:`~rfsym.engine.Result` and the :class:`~rfsym.enumeration.Enumeration`
        self.result, self.enumeration = result, enumeration
        self.mismatches = list(mismatches)
        self.checked = checked
        self.layers = layers
        self.network = network
        self.input_size = input_size

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        """One line: how much was compared and how much disagreed."""
        tail = "" if self.ok else f", {len(self.mismatches)} mismatches"
        return f"{self.checked} comparisons over {self.layers} layers{tail}"

    def __repr__(self):
        state = "ok" if self.ok else "FAILED"
        tail = "no mismatch" if self.ok else f"{len(self.mismatches)} mismatches"
        return f"<VerifyReport {state}: {self.checked} comparisons over {self.layers} layers, {tail}>"

    def __str__(self):
        head = (f"verified {self.layers} layers at input size {self.input_size}: "
                f"{self.checked} comparisons, {len(self.mismatches)} mismatches")
        if self.ok:
            return head
        rows = [("layer", "quantity", "engine", "enumerated")]
        rows += [(m.layer, m.quantity, str(m.engine), str(m.enumerated)) for m in self.mismatches]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join([head] + lines)

    def _repr_html_(self):  # notebooks (rfsym.html)
        from .html import verify_html
        return verify_html(self)

    def _repr_markdown_(self):
        from .html import verify_markdown
        return verify_markdown(self)


def _value(v):
    """A Python int or Fraction from an engine value (sympy number, numpy int, int), else as is."""
    if v is None or isinstance(v, (int, Fraction)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if getattr(v, "is_Rational", False):
        f = Fraction(int(v.p), int(v.q))
        return f.numerator if f.denominator == 1 else f
    return v


def _label(index, type_, name):
    return f"{index} ({type_} {name!r})" if name else f"{index} ({type_})"


def verify(net, input_size, *, ndim=None, in_channels=None, positions=POSITIONS) -> VerifyReport:
    """Compare :func:`rfsym.analyze` with enumeration on every layer (``ndim`` and
    ``in_channels`` as in ``analyze``; ``positions`` as in
    :func:`~rfsym.enumeration.enumerate_network`: how many outputs per layer are enumerated,
    ``"all"`` for every one). Every layer parameter must be a number.

    >>> from rfsym import Conv, symbols
    >>> verify(Conv(symbols("k")), 8)
    Traceback (most recent call last):
    ...
    rfsym.errors.LayerError: layer 0 (Conv): kernel_size is k: enumeration needs numbers; substitute values first (layer.subs({...}))
    """
    result = analyze(net, input_size, ndim=ndim, in_channels=in_channels)
    enum = enumerate_network(net, input_size, ndim=result.ndim, positions=positions)
    mismatches, checked = [], 0
    pairs = list(zip(result.layers, enum.layers))
    if len(result.layers) != len(enum.layers):
        mismatches.append(Mismatch("network", "number of layers", len(result.layers), len(enum.layers)))
    multi = result.ndim > 1
    targets = [(_label(er.index, er.type, er.name), er, en) for er, en in pairs]
    if enum.layers:
        targets.append(("output", result, enum))
    for label, eng, cnt in targets:
        if getattr(eng, "type", None) is not None and eng.type != cnt.type:
            mismatches.append(Mismatch(label, "type", eng.type, cnt.type))
            continue
        names = list(_ALWAYS)
        periods = tuple(_value(p) for p in eng.axes("period")) + cnt.axes("period")
        if any(p != 1 for p in periods):
            names += _PHASED
        sizes = eng.axes("out_size")
        for name in names:
            if name == "out_size" and sizes is None:
                continue
            for axis, (a, b) in enumerate(zip(eng.axes(name), cnt.axes(name))):
                a = _value(a)
                checked += 1
                if a != b:
                    q = f"{name}[axis {axis}]" if multi else name
                    mismatches.append(Mismatch(label, q, a, b))
    return VerifyReport(mismatches, checked, len(enum.layers), net, input_size, result, enum)
