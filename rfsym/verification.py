"""Engine against enumeration, node by node.

:func:`verify` runs the derivation engine (:func:`rfsym.analyze`) and the brute-force enumerator
(:mod:`rfsym.enumeration`, which shares no code with the engine) on the same network and input
size, and compares, for every node of the network's DAG, every output and every spatial axis,
``rf``, ``jump``, ``start``, ``center`` and ``out_size`` — and ``rf_min`` and ``period`` where the
receptive field depends on the output position.

>>> from rfsym import Conv, MaxPool, Sequential
>>> report = verify(Sequential(Conv(3, padding=1), Conv(3, stride=2), MaxPool(3, ceil_mode=True)), 32)
>>> report.ok, report.checked
(True, 40)
>>> report
<VerifyReport ok: 40 comparisons over 3 layers, no mismatch>
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import Any, NamedTuple

from .engine import analyze
from .enumeration import MAX_CELLS, MAX_INTERVAL_OPS, METHODS, POSITIONS, enumerate_network
from .errors import RfsymError

__all__ = ["verify", "VerifyReport", "Mismatch", "dependency_mask", "enumeration_cost", "check_cost", "MAX_CELLS",
           "MAX_POSITIONS", "MAX_INTERVAL_OPS"]

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


#: the largest interval enumeration (``method="intervals"``) :func:`verify` starts, in positions:
#: the input grids the layers' windows are counted on plus the outputs whose sets are read off
#: (a few seconds of work); the interval operations are bounded separately, while they run, by
#: :data:`rfsym.enumeration.MAX_INTERVAL_OPS`
MAX_POSITIONS = 2 * 10**7


def enumeration_cost(result, positions=POSITIONS, *, mask=False, method="dense"):
    """Estimated work of enumerating the network of ``result`` (an analysis at a numeric input
    size). ``method="dense"``: array cells, per layer and axis the layer's input grid plus the
    dependency sets of the enumerated outputs (rows up to ``positions`` + rf, bit-packed over the
    input range); with ``mask`` the grids :func:`dependency_mask` propagates; the estimate stops
    early once it exceeds :data:`MAX_CELLS`. ``method="intervals"``: positions, per layer and
    axis the layer's input grid plus the enumerated outputs (compare with :data:`MAX_POSITIONS`).
    None when a value is symbolic.

    Args:
        result: an :func:`rfsym.analyze` result at a numeric input size.
        positions: outputs enumerated per layer, as in :func:`verify`.
        mask: estimate :func:`dependency_mask` instead (dense only).
        method: ``"dense"`` or ``"intervals"``, as in :func:`verify`.

    Returns:
        The estimate (an int), or None.

    >>> from rfsym import Conv, Sequential, analyze
    >>> r = analyze(Sequential(*[Conv(3)] * 10), 100)
    >>> enumeration_cost(r) < 10**6, enumeration_cost(r, method="intervals")
    (True, 3140)
    """
    if method not in METHODS:
        raise RfsymError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    if method == "intervals" and not mask:
        return _interval_cost(result, positions)
    total = 0
    try:
        ins = [int(v) for v in (result.input_size or ())]
        for layer in result.layers:
            sizes = layer.axes("out_size")
            rfs = layer.axes("rf")
            jumps = layer.axes("jump")
            if sizes is None:
                return None
            outs = [int(v) for v in sizes]
            grid_in = [int(v) for v in (layer.input.axes("out_size") or sizes)]
            for out, rf, jump, n0, n_in in zip(outs, rfs, jumps, ins, grid_in):
                count = out if positions == "all" else min(out, int(positions))
                width = min(int(rf) + int(math.ceil(jump)) * count, n0 + 2 * int(rf))
                total += n_in + (count + int(rf)) * (width // 8 + 1)
                if mask:
                    total += 10 * out * n_in  # a dense (outputs x inputs) map per axis
            if mask:
                cells = 1
                for n_in in grid_in:
                    cells *= n_in
                total += 10 * cells
            if total > MAX_CELLS:
                return total  # over the budget already: the rest need not be estimated
    except (TypeError, ValueError, AttributeError):
        return None  # symbolic: the enumeration refuses with its own message
    return total


def _interval_cost(result, positions):
    total = 0
    try:
        for layer in result.layers:
            sizes = layer.axes("out_size")
            if sizes is None:
                return None
            grid_in = layer.input.axes("out_size") or sizes
            for out, n_in in zip(sizes, grid_in):
                out = int(out)
                total += int(n_in) + (out if positions == "all" else min(out, int(positions))) + 2
    except (TypeError, ValueError, AttributeError):
        return None
    return total


def check_cost(result, positions=POSITIONS, *, mask=False, what="verify", method="dense"):
    """Refuse, before any work, an enumeration estimated above its budget: :data:`MAX_CELLS`
    array cells (dense, and :func:`dependency_mask`), :data:`MAX_POSITIONS` positions (intervals).

    Args:
        result: an :func:`rfsym.analyze` result at a numeric input size.
        positions: outputs enumerated per layer, as in :func:`verify`.
        mask: check :func:`dependency_mask` instead.
        what: the name the message starts with.
        method: ``"dense"`` or ``"intervals"``.

    Raises:
        RfsymError: the estimate exceeds the budget (the message says how to shrink the work).

    >>> from rfsym import Conv, analyze
    >>> check_cost(analyze(Conv(3), 10**8, ndim=1), method="intervals")
    Traceback (most recent call last):
    ...
    rfsym.errors.RfsymError: verify: enumerating this network at input size (100000000,) would take about 1e+08 positions (the limit is 2e+07); use a smaller input size, fewer layers or fewer positions (positions=64, the default; not 'all')
    """
    cost = enumeration_cost(result, positions, mask=mask, method=method)
    dense = mask or method == "dense"
    limit, unit = (MAX_CELLS, "array cells") if dense else (MAX_POSITIONS, "positions")
    if cost is not None and cost > limit:
        hint = ("a smaller input size" if mask else "a smaller input size, fewer layers or fewer positions "
                "(positions=64, the default; not 'all')")
        raise RfsymError(f"{what}: enumerating this network at input size {result.input_size} would take about "
                         f"{cost:.2g} {unit} (the limit is {limit:.0e}); use {hint}")


def dependency_mask(net, input_size, output_index, *, layer=None, counts=False, through_padding=False,
                    ndim=None):
    """:func:`rfsym.enumeration.dependency_mask` (the same arguments and result) after a cost
    check (:func:`check_cost`): a network too large to enumerate is refused before any work.

    >>> from rfsym import Conv
    >>> dependency_mask(Conv(3), 10**9, 0)
    Traceback (most recent call last):
    ...
    rfsym.errors.RfsymError: dependency_mask: enumerating this network at input size (1000000000, 1000000000) would take about 3e+19 array cells (the limit is 2e+09); use a smaller input size
    """
    from . import enumeration

    if input_size is not None:
        try:
            result = analyze(net, input_size, ndim=ndim)
        except RfsymError:
            result = None  # the enumeration reports the problem in its own words
        if result is not None:
            check_cost(result, "all", mask=True, what="dependency_mask")
    return enumeration.dependency_mask(net, input_size, output_index, layer=layer, counts=counts,
                                       through_padding=through_padding, ndim=ndim)


def verify(net: Any, input_size: Any, *, ndim: int | None = None, in_channels: Any = None,
           positions: Any = POSITIONS, strict: bool = False, method: str = "intervals") -> VerifyReport:
    """Compare :func:`rfsym.analyze` with enumeration on every node of the network's DAG and on
    every output.

    Args:
        net: an rfsym layer (a Sequential, a Graph with any fan-out, fan-in and outputs).
        input_size: an int or per-axis tuple of ints.
        ndim: the number of spatial axes, as in :func:`rfsym.analyze`.
        in_channels: the input's channels, as in :func:`rfsym.analyze`.
        strict: norms whose statistics span positions are global, as in :func:`rfsym.analyze`.
        positions: as in :func:`~rfsym.enumeration.enumerate_network`: how many outputs per node
            are enumerated, ``"all"`` for every one.
        method: how the enumerator represents dependency sets (both count the same sets, and the
            tests check that they agree): ``"intervals"`` (the default) keeps each set as sorted
            disjoint intervals, computed for one period of a node's outputs and shifted for the
            others, so the work is linear in the depth (a 10,000-layer chain in about a second);
            ``"dense"`` keeps every enumerated output's set as a bit row over the input range
            (work grows with the depth squared), the reference.

    Returns:
        The :class:`VerifyReport`.

    Raises:
        LayerError: a symbolic parameter (every layer parameter must be a number).
        RfsymError: the work would exceed a budget (:data:`MAX_POSITIONS` positions or
            :data:`MAX_INTERVAL_OPS` interval operations for intervals, :data:`MAX_CELLS` array
            cells for dense); the message says what to reduce.


    >>> from rfsym import Conv, symbols
    >>> verify(Conv(symbols("k")), 8)
    Traceback (most recent call last):
    ...
    rfsym.errors.LayerError: layer 0 (Conv): kernel_size is k: enumeration needs numbers; substitute values first (layer.subs({...}))
    >>> from rfsym import Sequential
    >>> verify(Sequential(*[Conv(3, padding=1)] * 10000), 32, ndim=1)
    <VerifyReport ok: 50005 comparisons over 10000 layers, no mismatch>
    """
    result = analyze(net, input_size, ndim=ndim, in_channels=in_channels, strict=strict)
    check_cost(result, positions, method=method)
    enum = enumerate_network(net, input_size, ndim=result.ndim, positions=positions, strict=strict, method=method)
    mismatches, checked = [], 0
    pairs = list(zip(result.layers, enum.layers))
    if len(result.layers) != len(enum.layers):
        mismatches.append(Mismatch("network", "number of layers", len(result.layers), len(enum.layers)))
    multi = result.ndim > 1
    targets = [(_label(er.index, er.type, er.name), er, en) for er, en in pairs]
    engine_outputs, counted_outputs = result.outputs, enum.outputs
    if list(engine_outputs) != list(counted_outputs):
        mismatches.append(Mismatch("network", "outputs", tuple(engine_outputs), tuple(counted_outputs)))
    single = len(engine_outputs) == 1
    for name, eng in engine_outputs.items():
        if name in counted_outputs:
            targets.append(("output" if single else f"output {name!r}", eng, counted_outputs[name]))
    for label, eng, cnt in targets:
        if getattr(eng, "type", None) is not None and eng.type != cnt.type:
            mismatches.append(Mismatch(label, "type", eng.type, cnt.type))
            continue
        if getattr(eng, "name", None) is not None and eng.name != cnt.name:
            mismatches.append(Mismatch(label, "name", eng.name, cnt.name))
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
