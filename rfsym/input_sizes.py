r"""Input sizes and tiled inference: the smallest input, the sizes that never truncate, tiling plans.

Conventions (per spatial axis ``n`` = the network's input size on that axis):

* ``min_input`` — the smallest ``n`` for which every layer's output size is at least 1 and every
  merge's branches give the same size (so the network runs at all).
* **valid** sizes — those for which no layer truncates: every floor or ceiling division of the
  engine's size laws is exact. A convolution or pool (``ceil_mode`` either way) with kernel
  extent ``e = d(k - 1) + 1``, stride ``s`` and padding ``(pl, pr)`` needs
  ``n_in + pl + pr - e ≡ 0 (mod s)`` (the last window ends on the last padded position);
  TensorFlow SAME needs ``n_in ≡ 0 (mod s)`` (``ceil(n_in/s)`` exact) and, with
  ``symmetric_same=True``, an even total padding; adaptive pooling to ``m > 1`` outputs needs
  ``n_in ≡ 0 (mod m)`` (equal windows); upsampling by a fraction ``a/b`` (lowest terms) needs
  ``n_in ≡ 0 (mod b)`` (``floor(n_in·a/b)`` exact). Transposed convolutions, integer upsampling,
  upsampling to a fixed ``size``, crops and position-wise layers never round.
* Why a residue class decides it. Every size law is ``floor`` or ``ceiling`` of an affine
  function of its input (or affine), so each layer's size is quasi-affine in ``n``:
  ``size(n + P) = size(n) + P·σ`` with slope ``σ`` (``1/jump``) once ``P·σ`` is an integer.
  rfsym reads the slopes off two exact analyses ``P_0`` apart (``P_0`` = the product of every
  stride, which is such a period), and takes ``M`` = the least period of all the conditions
  (the lcm of the slopes' denominators and of ``b·d / gcd(a, b·d)`` for a division by ``d`` of
  a size with slope ``a/b``). Sizes are nondecreasing in ``n``, so ``size >= 1`` everywhere is
  ``n >= T``; exactness and merge agreement depend only on ``n mod M``. One exact analysis per
  residue (at ``min_input, …, min_input + M - 1``) therefore decides every ``n``:
  ``valid_inputs = ⋃_r {a_r + M·m : m >= 0}``.
* ``T`` (and ``min_input`` of a network with symbols) comes from inverting each layer's size law
  from the output backwards: a convolution needs ``n_in >= (m - 1)s + e - pl - pr`` to give ``m``
  outputs, a transposed one ``n_in >= ceil((m - e - op + pl + pr)/s) + 1``, a crop
  ``n_in >= m + l + r``; branches take the maximum. With symbols it is a ``Max`` closed form and
  ``valid_inputs`` a :class:`sympy.sets.ConditionSet` of the divisibility conditions.

>>> import rfsym
>>> s = rfsym.sizes(rfsym.Sequential(rfsym.Conv(3, stride=2), rfsym.Conv(3, stride=2)))
>>> s.min_input, s.modulus, s.first(4)
(7, 4, [7, 11, 15, 19])
>>> s.valid_inputs
ImageSet(Lambda(m, 4*m + 7), Naturals0)
>>> s.is_valid(9), s.output_stride
(False, 4)
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sympy as sp

from . import layers as L
from .dag import INPUT, lower
from .engine import analyze
from .errors import GraphError, LayerError, RfsymError, SizeError
from .layers import ConvTranspose, Crop, Graph, Upsample

__all__ = ["sizes", "Sizes", "AxisSizes", "tiling", "TilingPlan", "AxisTiling", "Tile", "MAX_MODULUS"]

#: the largest modulus (period of the valid sizes) rfsym enumerates residue by residue
MAX_MODULUS = 1 << 14

_M = sp.Symbol("m", integer=True, nonnegative=True)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class AxisSizes:
    """Input sizes of one spatial axis (see the module docstring).

    ``min_input`` (an int, or an expression for networks with symbols), ``modulus`` ``M`` and
    ``residues`` (the smallest valid size of each valid class mod ``M``, sorted), ``threshold``
    (the smallest ``n`` with every output size >= 1), ``output_stride`` (input positions per
    output position of the last spatial layer) and, for symbolic networks, ``conditions`` (the
    divisibility conditions, sympy relations in ``n``).
    """

    axis: int
    min_input: Any
    threshold: Any
    modulus: int | None
    residues: tuple
    output_stride: Any
    n: sp.Symbol
    conditions: tuple = ()
    reasons: tuple = field(default=(), compare=False)

    @property
    def symbolic(self) -> bool:
        return self.modulus is None

    @property
    def valid_inputs(self) -> sp.Set:
        """The valid sizes as a sympy set: a union of arithmetic progressions ``a + M·m``
        (``m >= 0``), or a ConditionSet for networks with symbols."""
        if self.symbolic:
            cond = sp.And(sp.Ge(self.n, self.min_input), *self.conditions)
            return sp.ConditionSet(self.n, cond, sp.S.Naturals)
        if not self.residues:
            return sp.S.EmptySet
        return sp.Union(*(sp.ImageSet(sp.Lambda(_M, self.modulus * _M + a), sp.S.Naturals0)
                          for a in self.residues))

    def is_valid(self, n) -> bool:
        """Whether input size ``n`` avoids every truncation (a sympy boolean with symbols)."""
        if self.symbolic:
            return sp.And(sp.Ge(self.n, self.min_input), *self.conditions).subs(self.n, n)
        n = int(n)
        return n >= self.min_input and any(n >= a and (n - a) % self.modulus == 0 for a in self.residues)

    def first(self, k: int = 5) -> list:
        """The ``k`` smallest valid sizes."""
        if self.symbolic:
            raise RfsymError("first() needs a network without symbols; substitute values "
                             "(net.subs({...})) and call rfsym.sizes again")
        if not self.residues:
            return []
        heap = list(self.residues)
        heapq.heapify(heap)
        out = []
        while len(out) < k:
            v = heapq.heappop(heap)
            out.append(v)
            heapq.heappush(heap, v + self.modulus)
        return out

    def nearest(self, n, direction="down"):
        """The largest valid size <= ``n`` (``direction="down"``) or the smallest >= ``n``
        (``"up"``); None when there is none."""
        if self.symbolic:
            raise RfsymError("nearest() needs a network without symbols")
        best = None
        for a in self.residues:
            if direction == "down":
                if n < a:
                    continue
                v = a + (n - a) // self.modulus * self.modulus
                best = v if best is None else max(best, v)
            else:
                v = a if n <= a else a + -(-(n - a) // self.modulus) * self.modulus
                best = v if best is None else min(best, v)
        return best

    def describe(self) -> str:
        """One line: ``n = 16·m + 188`` or ``n ≡ 1, 3 (mod 4), n >= 7``."""
        if self.symbolic:
            return f"n >= {self.min_input} and " + " and ".join(str(c) for c in self.conditions)
        if not self.residues:
            return "none (" + "; ".join(self.reasons) + ")" if self.reasons else "none"
        if len(self.residues) == 1:
            a = self.residues[0]
            return f"n = {self.modulus}·m + {a}  (m >= 0)" if self.modulus > 1 else f"n >= {a}"
        rs = sorted({a % self.modulus for a in self.residues})
        return f"n ≡ {', '.join(map(str, rs))} (mod {self.modulus}), n >= {min(self.residues)}"


class Sizes:
    """What :func:`sizes` returns: per-axis :class:`AxisSizes`; every attribute is one value when
    the axes agree and a tuple (one item per axis) otherwise (the engine's rule)."""

    def __init__(self, axes):
        self.axes = tuple(axes)

    def _one(self, values):
        values = tuple(values)
        first = values[0]
        return first if all(_same(v, first) for v in values[1:]) else values

    def axis(self, i) -> AxisSizes:
        return self.axes[i]

    min_input = property(lambda self: self._one(a.min_input for a in self.axes))
    threshold = property(lambda self: self._one(a.threshold for a in self.axes))
    modulus = property(lambda self: self._one(a.modulus for a in self.axes))
    residues = property(lambda self: self._one(a.residues for a in self.axes))
    output_stride = property(lambda self: self._one(a.output_stride for a in self.axes))
    valid_inputs = property(lambda self: self._one(a.valid_inputs for a in self.axes))

    def is_valid(self, n) -> bool:
        """``n`` an int (every axis) or a per-axis tuple."""
        ns = tuple(n) if isinstance(n, (tuple, list)) else (n,) * len(self.axes)
        if len(ns) != len(self.axes):
            raise RfsymError(f"is_valid: {len(ns)} sizes for a network with {len(self.axes)} axes")
        verdicts = [a.is_valid(x) for a, x in zip(self.axes, ns)]
        if all(isinstance(v, bool) for v in verdicts):
            return all(verdicts)
        return sp.And(*verdicts)

    def first(self, k: int = 5):
        """The ``k`` smallest valid sizes (a list, or one list per axis)."""
        return self._one(a.first(k) for a in self.axes)

    def __repr__(self):
        parts = [f"axis {a.axis}: min_input={a.min_input}, valid: {a.describe()}" for a in self.axes]
        if len(self.axes) > 1 and all(_same(a, self.axes[0]) for a in self.axes[1:]):
            parts = [f"min_input={self.axes[0].min_input}, valid: {self.axes[0].describe()}"]
        return "<Sizes " + "; ".join(parts) + ">"


def _same(a, b):
    if isinstance(a, AxisSizes) and isinstance(b, AxisSizes):
        return (a.min_input, a.modulus, a.residues, a.conditions) == (b.min_input, b.modulus, b.residues,
                                                                      b.conditions)
    try:
        return bool(a == b)
    except TypeError:
        return False


# --------------------------------------------------------------------------- entry point
def sizes(net, *, ndim=None, in_channels=None, symmetric_same=False) -> Sizes:
    """Smallest input size, valid (non-truncating) input sizes and output stride of ``net``.

    Args:
        net: an rfsym layer, Sequential or Graph.
        ndim: number of spatial axes (default: from the layers, else 2).
        in_channels: the input's channel count, when the first layers do not say.
        symmetric_same: also require TensorFlow SAME paddings to be symmetric (even total).

    Returns:
        Sizes: per-axis results (see :class:`AxisSizes`).

    Raises:
        RfsymError: when the network cannot run at any size, or the period of its valid sizes
            exceeds :data:`MAX_MODULUS`.

    >>> import rfsym
    >>> unet = rfsym.zoo.get("unet")
    >>> s = rfsym.sizes(unet, in_channels=1)
    >>> s.min_input, s.first(3), s.is_valid(572)
    (188, [188, 204, 220], True)
    """
    nd = _ndim(net, ndim)
    n = sp.Symbol("n", integer=True, positive=True)
    if net.free_symbols:
        return Sizes(_symbolic_axis(net, a, nd, n, in_channels, symmetric_same) for a in range(nd))
    thresholds = _thresholds(net, nd, in_channels)
    return Sizes(_numeric_axes(net, nd, in_channels, thresholds, symmetric_same, n))


def _ndim(net, ndim):
    if not isinstance(net, L.Layer):
        raise RfsymError(f"sizes expects an rfsym layer, Sequential or Graph, got {type(net).__name__}")
    fixed = net.ndim
    if ndim is not None and fixed is not None and int(ndim) != fixed:
        raise LayerError(f"ndim={ndim} but the layers have {fixed} spatial axes", where="sizes", param="ndim")
    return int(ndim) if ndim is not None else (fixed or 2)


# --------------------------------------------------------------------------- thresholds
def _thresholds(net, nd, in_channels):
    """Per axis, the smallest n with every output size >= 1 (merges not checked)."""
    try:
        return tuple(int(_required(net, a, nd, sp.Integer(1))) for a in range(nd))
    except _Unknown:
        pass
    out = []  # a layer whose size law rfsym cannot invert: bisect on the engine itself
    for a in range(nd):
        out.append(_bisect(net, a, nd, in_channels))
    return tuple(out)


def _bisect(net, axis, nd, in_channels):
    def ok(x):
        size = tuple(x if b == axis else 1 << 20 for b in range(nd))
        try:
            analyze(net, input_size=size, ndim=nd, in_channels=in_channels)
        except SizeError:
            return False
        except GraphError:
            return True
        return True

    hi = 1
    while not ok(hi):
        hi *= 2
        if hi > 1 << 24:
            raise RfsymError("no input size up to 2**24 gives every layer an output")
    lo = hi // 2
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi if hi == 1 or not ok(lo) else lo


class _Unknown(Exception):
    """A layer whose size law the backward recursion does not know."""


def _req(x):
    return sp.Max(1, x)


def _axis_value(value, axis):
    return value[axis] if isinstance(value, tuple) else value


def _required(net, axis, nd, m):
    """The smallest input size on ``axis`` for which every node of ``net`` gives at least ``m``
    outputs (every output node ``m``): each node's size law inverted, from the outputs back."""
    dag = lower(net)
    need = [None] * len(dag.nodes)
    for i in dag.outputs:
        if i != INPUT:
            need[i] = sp.Integer(m)
    at_input = sp.Integer(m) if INPUT in dag.outputs else sp.Integer(1)
    for node in reversed(dag.nodes):
        out = need[node.index] if need[node.index] is not None else sp.Integer(1)
        req = out if node.is_merge else _inverse(node.op, axis, nd, out)
        for u in node.inputs:
            if u == INPUT:
                at_input = sp.Max(at_input, req)
            else:
                need[u] = req if need[u] is None else sp.Max(need[u], req)
    return at_input


def _inverse(layer, axis, nd, m):
    """The smallest input size for which one leaf layer gives at least ``m`` outputs."""
    if isinstance(layer, ConvTranspose):
        w = layer.windows(nd)[axis]
        op = _axis_value(layer.output_paddings(nd), axis)
        return _req(sp.ceiling(sp.Rational(1, 1) * (m - w.extent - op + w.pad[0] + w.pad[1]) / w.stride) + 1)
    if isinstance(layer, (L.Conv, L.MaxPool, L.AvgPool)):
        w = layer.windows(nd)[axis]
        s, e = w.stride, w.extent
        if w.pad == "tf_same":
            return _req((m - 1) * s + 1)
        pl, pr = w.pad
        if w.ceil:
            return _req(sp.Max((m - 1) * s - pl - pr + e - s + 1, (m - 1) * s - pl + 1))
        return _req((m - 1) * s + e - pl - pr)
    if isinstance(layer, Upsample):
        if layer.size is not None:
            return sp.Integer(1)  # any input gives its fixed output size
        return _req(sp.ceiling(sp.Rational(1, 1) * m / _axis_value(layer.scale_factor, axis)))
    if isinstance(layer, (Crop, L.Pad)):
        before, after = layer.amounts(nd)[axis]
        return _req(m + before + after) if isinstance(layer, Crop) else _req(m - before - after)
    if isinstance(layer, L.PixelShuffle):
        return _req(sp.ceiling(sp.Rational(1, 1) * m / layer.factor))
    if isinstance(layer, L.PixelUnshuffle):
        return _req(m * layer.factor)
    if isinstance(layer, (L.AdaptiveAvgPool, L.Linear, L.Flatten)):
        return sp.Integer(1)  # any input gives its fixed output size
    if isinstance(layer, (L.Elementwise, L.BatchNorm, L.Norm, L.Pointwise, L.Params, L.Attention)) or \
            type(layer).__name__ in ("SqueezeExcitation", "GatedActivation"):
        return _req(m)
    raise _Unknown


# --------------------------------------------------------------------------- conditions
def _divisions(layer, axis, nd, n_in, symmetric_same):
    """``[(offset, divisor, what)]``: the layer's divisions on ``axis`` at input size ``n_in``
    (exact when ``n_in + offset ≡ 0 mod divisor``; ``offset`` None: a parity condition given as
    ``(value, 2)``)."""
    out = []
    if isinstance(layer, ConvTranspose):
        return out
    if isinstance(layer, (L.Conv, L.MaxPool, L.AvgPool)):
        w = layer.windows(nd)[axis]
        s = int(w.stride)
        if w.pad == "tf_same":
            if s > 1:
                out.append((0, s, f"TF SAME: input size divisible by the stride {s}"))
            if symmetric_same:
                e = int(w.extent)
                total = max((-(-n_in // s) - 1) * s + e - n_in, 0) if n_in is not None else None
                out.append(("parity", total, "TF SAME: symmetric padding (even total)"))
        elif s > 1:
            e, pl, pr = int(w.extent), int(w.pad[0]), int(w.pad[1])
            out.append((pl + pr - e, s, f"(n + {pl + pr} - {e}) divisible by the stride {s}"))
    elif isinstance(layer, L.AdaptiveAvgPool) and not isinstance(layer, L.GlobalAvgPool):
        ms = layer.output_size if isinstance(layer.output_size, tuple) else (layer.output_size,) * nd
        mm = int(ms[axis])
        if mm > 1:
            out.append((0, mm, f"divisible by the {mm} adaptive-pooling outputs"))
    elif isinstance(layer, Upsample) and layer.size is None:
        q = int(sp.Rational(_axis_value(layer.scale_factor, axis)).q)
        if q > 1:
            out.append((0, q, f"n·scale_factor an integer (n divisible by {q})"))
    elif isinstance(layer, L.PixelUnshuffle):
        f = int(layer.factor)
        out.append((0, f, f"divisible by the unshuffle factor {f}"))
    elif isinstance(layer, L.Attention) and layer.grid is not None:
        g = int(layer.grid[axis] if isinstance(layer.grid, tuple) else layer.grid)
        if g > 1:
            out.append((0, g, f"divisible by the attention grid {g}"))
    return out


def _layer_sizes(net, size, nd, in_channels):
    """Per layer: (layer, in_sizes, out_sizes) at one numeric size; GraphError when merges disagree."""
    r = analyze(net, input_size=size, ndim=nd, in_channels=in_channels)
    rows = []
    for lr in r.layers:
        ins = lr.input.axes("out_size")
        outs = lr.axes("out_size")
        rows.append((lr, tuple(int(x) for x in ins), tuple(int(x) for x in outs)))
    return r, rows


def _stride_product(rows, nd):
    """Per axis, the product of every divisor: a period of every size law (module docstring)."""
    prod = [1] * nd
    for lr, _, _ in rows:
        for a in range(nd):
            for _, d, _ in _divisions(lr.layer, a, nd, None, False):
                prod[a] *= d
    return prod


def _leaves(net):
    """The leaf layers of a network (its DAG's non-merge nodes)."""
    return [node.op for node in lower(net).nodes if not node.is_merge]


def _numeric_axes(net, nd, in_channels, thresholds, symmetric_same, n):
    # merge agreement repeats with the product of every divisor: scanning that far decides it
    bound = 1
    for leaf in _leaves(net):
        for a in range(nd):
            for _, d, _what in _divisions(leaf, a, nd, None, False):
                bound *= d
    bound = min(bound, MAX_MODULUS)
    joint = _first_runnable(net, nd, in_channels, list(thresholds), range(nd), bound)
    axes = []
    for a in range(nd):
        start = list(joint)
        start[a] = thresholds[a]
        start = _first_runnable(net, nd, in_channels, start, (a,), bound)
        _, rows0 = _layer_sizes(net, tuple(start), nd, in_channels)
        period0 = _stride_product(rows0, nd)[a]
        later = list(start)
        later[a] += period0
        _, rows1 = _layer_sizes(net, tuple(later), nd, in_channels)
        modulus, stride = 1, sp.oo
        for (lr, i0, o0), (_, i1, o1) in zip(rows0, rows1):
            slope_in = Fraction(i1[a] - i0[a], period0)
            slope_out = Fraction(o1[a] - o0[a], period0)
            modulus = math.lcm(modulus, slope_in.denominator, slope_out.denominator)
            if slope_out:
                stride = sp.Rational(slope_out.denominator, slope_out.numerator)
            num, den = slope_in.numerator, slope_in.denominator
            for off, d, _ in _divisions(lr.layer, a, nd, None, symmetric_same):
                if off == "parity":
                    d = int(lr.layer.windows(nd)[a].stride)
                modulus = math.lcm(modulus, den * d // math.gcd(num, den * d))
        if modulus > MAX_MODULUS:
            raise RfsymError(f"the valid input sizes on axis {a} repeat with period {modulus}, more than "
                             f"rfsym enumerates ({MAX_MODULUS})")
        axes.append(_axis_residues(net, nd, in_channels, a, start, modulus, symmetric_same, n,
                                   thresholds[a], stride))
    return axes


def _first_runnable(net, nd, in_channels, size, axes, bound):
    """The sizes >= ``size``, raising ``axes`` together one step at a time (at most ``bound``
    steps), at which the network runs (every merge's branches agree)."""
    size = list(size)
    last = None
    for _ in range(bound):
        try:
            analyze(net, input_size=tuple(size), ndim=nd, in_channels=in_channels)
            return size
        except (GraphError, SizeError, LayerError) as err:  # LayerError: e.g. space-to-depth needs n | f
            last = err
            for a in axes:
                size[a] += 1
    raise RfsymError(f"the network does not run at any input size: {last}")


def _axis_residues(net, nd, in_channels, axis, start, modulus, symmetric_same, n, threshold, stride):
    residues, reasons = [], {}
    for j in range(modulus):
        size = list(start)
        size[axis] += j
        try:
            _, rows = _layer_sizes(net, tuple(size), nd, in_channels)
        except (GraphError, LayerError) as err:
            reasons.setdefault("merge", f"does not run: {err}")
            continue
        bad = _first_truncation(rows, axis, nd, symmetric_same)
        if bad is None:
            residues.append(size[axis])
        else:
            reasons.setdefault(bad[0], bad[1])
    return AxisSizes(axis, start[axis], threshold, modulus, tuple(residues), stride, n,
                     reasons=tuple(reasons.values()) if not residues else ())


def _first_truncation(rows, axis, nd, symmetric_same):
    for lr, ins, _ in rows:
        x = ins[axis]
        for off, d, what in _divisions(lr.layer, axis, nd, x, symmetric_same):
            if (d % 2) if off == "parity" else (x + off) % d:
                return lr.name, f"layer {lr.name!r} ({lr.type}): {what}"
    return None


# --------------------------------------------------------------------------- symbolic networks
def _symbolic_axis(net, axis, nd, n, in_channels, symmetric_same):
    try:
        threshold = _required(net, axis, nd, sp.Integer(1))
    except _Unknown:
        raise RfsymError("sizes of a network with symbols: a layer's size law cannot be inverted in "
                         "closed form; substitute values for the symbols first") from None
    size = tuple(n if b == axis else sp.Symbol(f"n{b}", integer=True, positive=True) for b in range(nd))
    try:
        r = analyze(net, input_size=size, ndim=nd, in_channels=in_channels)
    except LayerError as err:
        raise RfsymError(f"sizes of a network with symbols: {err}; substitute values first") from None
    conds = []
    for lr in r.layers:
        x = lr.input.axes("out_size")[axis]
        layer = lr.layer
        if isinstance(layer, (L.Conv, L.MaxPool, L.AvgPool)) and not isinstance(layer, ConvTranspose):
            w = layer.windows(nd)[axis]
            if w.pad == "tf_same":
                if w.stride != 1:
                    conds.append(sp.Eq(sp.Mod(x, w.stride), 0))
            elif w.stride != 1:
                conds.append(sp.Eq(sp.Mod(x + w.pad[0] + w.pad[1] - w.extent, w.stride), 0))
    conds = tuple(c for c in conds if c is not sp.true)
    stride = r.axes("jump")[axis]
    return AxisSizes(axis, threshold, threshold, None, (), stride, n, conds)


# --------------------------------------------------------------------------- tiling
@dataclass(frozen=True)
class Tile:
    """One tile on one axis: read input ``input[0]:input[1]`` of the image, keep the tile's
    outputs ``keep[0]:keep[1]`` and write them to ``output[0]:output[1]`` of the whole output."""

    input: tuple
    keep: tuple
    output: tuple


@dataclass(frozen=True)
class AxisTiling:
    """The tiling plan of one axis (see :func:`tiling`).

    ``tile`` input positions per tile; ``halo`` ``(before, after)``: the context every output needs
    around the input cell it stands for (its ``cell`` of ``jump·period`` positions, centred on
    its receptive field), exact and tight; ``step`` input positions between tiles (a multiple of
    ``quantum``, the alignment every layer's grid needs); ``crop`` ``(before, after)`` outputs
    dropped from each tile (at the image border the first and last tiles keep theirs);
    ``margin`` ``(before, after)``: input positions of a tile outside its kept cells.
    """

    axis: int
    tile: int
    halo: tuple
    step: int
    crop: tuple
    margin: tuple
    out_tile: int
    period: int
    jump: Any
    quantum: int
    field: tuple  # (first, last) input positions read by the first period of outputs
    sizes: AxisSizes

    @property
    def reads(self) -> tuple:
        """``(first, last)`` tile positions read by the kept outputs (tight: both are read)."""
        return (self.margin[0] - self.halo[0], self.tile - 1 - (self.margin[1] - self.halo[1]))

    def tiles(self, image: int) -> list:
        """The tiles covering an image of ``image`` positions (a valid size) on this axis."""
        image = int(image)
        if image < self.tile:
            raise SizeError(f"axis {self.axis}: the image ({image}) is smaller than the tile ({self.tile}); "
                            "run the network on the whole image")
        if not self.sizes.is_valid(image):
            raise SizeError(f"axis {self.axis}: image size {image} truncates in some layer, so the whole-"
                            f"image output cannot be reproduced tile by tile; pad it to a valid size, "
                            f"e.g. {self.sizes.nearest(image, 'up')}")
        if (image - self.tile) % self.quantum:
            raise SizeError(f"axis {self.axis}: image size {image} minus the tile {self.tile} must be a "
                            f"multiple of {self.quantum} (the layers' grid alignment); use an image of "
                            f"{self.tile + -(-(image - self.tile) // self.quantum) * self.quantum}")
        per_out = Fraction(self.period) / Fraction(int(self.jump * self.period))  # outputs per position
        starts = list(range(0, image - self.tile + 1, self.step))
        if starts[-1] != image - self.tile:
            starts.append(image - self.tile)
        kept = self.out_tile - self.crop[0] - self.crop[1]
        tiles, done = [], 0
        for i, x in enumerate(starts):
            shift = int(x * per_out)
            lo = 0 if i == 0 else done - shift
            hi = self.out_tile if i == len(starts) - 1 else self.crop[0] + kept
            if hi <= lo:
                continue
            tiles.append(Tile((x, x + self.tile), (lo, hi), (shift + lo, shift + hi)))
            done = shift + hi
        return tiles


class TilingPlan:
    """Per-axis :class:`AxisTiling` plans; ``tile``, ``halo``, ``step``, ``crop``, ``margin`` follow the
    engine's rule (one value when the axes agree, else a tuple)."""

    def __init__(self, axes, layer):
        self.axes = tuple(axes)
        self.layer = layer

    def _one(self, name):
        values = tuple(getattr(a, name) for a in self.axes)
        return values[0] if all(v == values[0] for v in values[1:]) else values

    tile = property(lambda self: self._one("tile"))
    halo = property(lambda self: self._one("halo"))
    step = property(lambda self: self._one("step"))
    crop = property(lambda self: self._one("crop"))
    margin = property(lambda self: self._one("margin"))
    quantum = property(lambda self: self._one("quantum"))

    def tiles(self, image_size) -> list:
        """Every tile of an image: a list of per-axis :class:`Tile` tuples (row-major)."""
        import itertools

        sizes_ = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size,) * len(self.axes)
        if len(sizes_) != len(self.axes):
            raise RfsymError(f"image_size has {len(sizes_)} axes but the network has {len(self.axes)}")
        return list(itertools.product(*(a.tiles(n) for a, n in zip(self.axes, sizes_))))

    def apply(self, fn, image):
        """Run ``fn`` (a function of one array whose last axes are spatial) tile by tile on
        ``image`` and stitch the kept outputs (numpy arrays or torch tensors)."""
        nd = len(self.axes)
        spatial = tuple(image.shape[-nd:])
        out = None
        for tile in self.tiles(spatial):
            part = fn(image[(Ellipsis, *(slice(*t.input) for t in tile))])
            if out is None:
                whole = tuple(t.output[1] for t in self._last(spatial))
                shape = tuple(part.shape[:-nd]) + whole
                out = part.new_zeros(shape) if hasattr(part, "new_zeros") else _zeros(part, shape)
            out[(Ellipsis, *(slice(*t.output) for t in tile))] = part[(Ellipsis, *(slice(*t.keep) for t in tile))]
        return out

    def _last(self, spatial):
        return tuple(a.tiles(n)[-1] for a, n in zip(self.axes, spatial))

    def __repr__(self):
        return (f"<TilingPlan tile={self.tile}, halo={self.halo}, step={self.step}, crop={self.crop}, "
                f"quantum={self.quantum}>")


def _zeros(like, shape):
    import numpy as np

    return np.zeros(shape, dtype=like.dtype)


def _subnetwork(net, layer):
    """The network up to the top-level item or graph node called ``layer``."""
    if layer is None:
        return net
    if isinstance(net, Graph):
        if layer not in {label for label, _, _ in net.nodes}:
            raise RfsymError(f"tiling: no graph node named {layer!r}")
        return Graph(*net.nodes, output=layer, name=net.name)
    items = net.layers if isinstance(net, L.Sequential) else (net,)
    for k, item in enumerate(items):
        label = str(k) if item.name is None else item.name
        if label == layer:
            return L.Sequential(*items[:k + 1], name=getattr(net, "name", None))
    names = ", ".join(str(k) if it.name is None else it.name for k, it in enumerate(items))
    raise RfsymError(f"tiling: no top-level layer named {layer!r} (the network's items: {names})")


def tiling(net, tile, *, layer=None, ndim=None, in_channels=None, round="down") -> TilingPlan:
    """A sliding-window plan: tiles of a valid size whose stitched outputs equal the whole image's.

    Args:
        net: a local network (no global pooling, squeeze-excitation, attention or Linear head
            before ``layer``).
        tile: the wanted tile size (an int, or per axis); rounded to a valid size.
        layer: tile the output of this top-level item or graph node (e.g. ``"layer4"`` of a
            ResNet) instead of the network output.
        ndim: number of spatial axes. in_channels: input channels when the layers do not say.
        round: ``"down"`` (the largest valid size <= ``tile``) or ``"up"``.

    Returns:
        TilingPlan: per axis ``tile``, ``halo``, ``step``, ``crop``, ``margin``; ``tiles(image)``
        lists the windows and ``apply(fn, image)`` runs them.

    Raises:
        RfsymError: for a global layer (no finite halo exists), a tile too small to keep one
            aligned step, or padding read behind a crop.

    >>> import rfsym
    >>> plan = rfsym.tiling(rfsym.zoo.get("unet"), 572, in_channels=1)
    >>> plan.tile, plan.halo, plan.step, plan.crop
    (572, (94, 94), 384, (0, 4))
    """
    net = _subnetwork(net, layer)
    if round not in ("down", "up"):
        raise RfsymError(f"tiling: round must be 'down' or 'up', got {round!r}")
    if net.free_symbols:
        raise RfsymError("tiling needs a network without symbols; substitute values first")
    s = sizes(net, ndim=ndim, in_channels=in_channels)
    nd = len(s.axes)
    want = tuple(tile) if isinstance(tile, (tuple, list)) else (tile,) * nd
    if len(want) != nd:
        raise RfsymError(f"tiling: tile has {len(want)} axes but the network has {nd}")
    chosen = []
    for a, (ax, t) in enumerate(zip(s.axes, want)):
        if not ax.residues:
            raise SizeError(f"tiling: no input size avoids truncation on axis {a}: {'; '.join(ax.reasons)}")
        v = ax.nearest(int(t), round)
        if v is None:
            v = ax.first(1)[0]
            if round == "down":
                raise SizeError(f"tiling: no valid tile size <= {t} on axis {a}; the smallest is {v}")
        chosen.append(v)
    r = analyze(net, input_size=tuple(chosen), ndim=nd, in_channels=in_channels)
    bigger = tuple(ax.nearest(v + 1, "up") for ax, v in zip(s.axes, chosen))
    r2 = analyze(net, input_size=bigger, ndim=nd, in_channels=in_channels)
    _check_local(r, r2)
    _check_padding(r, chosen)
    return TilingPlan((_axis_plan(r, a, chosen[a], s.axes[a]) for a in range(nd)), layer)


def _check_local(r, r2):
    for k, (lr, lr2) in enumerate(zip(r.layers, r2.layers)):
        if lr.own_maps is not None and lr.own_maps != lr2.own_maps:
            before = r.layers[k - 1].name.split(".")[0] if k else None
            hint = f", e.g. layer={before!r}" if before and before != lr.name.split(".")[0] else ""
            raise RfsymError(
                f"tiling: layer {lr.name!r} ({lr.type}) reads a window that depends on its input size "
                "(global or adaptive pooling, squeeze-excitation, attention, a Linear head): no finite halo "
                "makes tiles agree with the whole image; tile a feature map before it with layer= "
                f"(a top-level item or graph node){hint}")


def _reads_outside(layer, nd):
    """Whether a layer reads positions outside its input (zero padding, clamped borders)."""
    if isinstance(layer, ConvTranspose):
        return True
    if isinstance(layer, Upsample):
        return layer.mode == "bilinear"
    if isinstance(layer, (L.Conv, L.MaxPool, L.AvgPool)):
        return any(w.pad == "tf_same" or any(p != 0 for p in w.pad) for w in layer.windows(nd))
    return type(layer).__name__ == "Pad"


def _check_padding(r, chosen):
    """Outputs whose receptive field lies inside the tile read no padding of any layer when the
    padding positions of every padded layer map outside the tile (not so behind a crop)."""
    nd = len(chosen)
    for lr in r.layers:
        if lr.own_maps is None or not _reads_outside(lr.layer, nd):
            continue
        ins = lr.input.axes("out_size")
        before = lr.input.span(-1)
        after = lr.input.span(tuple(int(x) for x in ins))
        for a in range(nd):
            if (before[a][0] >= 0 and before[a][1] <= chosen[a] - 1) or \
                    (after[a][0] >= 0 and after[a][1] <= chosen[a] - 1):
                raise RfsymError(
                    f"tiling: layer {lr.name!r} ({lr.type}) reads padding that lies inside the tile "
                    f"on axis {a} (behind a crop or a padded transposed convolution); rfsym cannot "
                    "place a halo that keeps it out")


def _axis_plan(r, a, tile, ax):
    period = int(r.axes("period")[a])
    jump = sp.Rational(r.axes("jump")[a])
    jp = jump * period
    if not jp.is_Integer or jp <= 0:
        raise RfsymError(f"tiling: axis {a}: the output grid's jump per period {jp} is not a positive integer")
    jp = int(jp)
    spans = [r.span(tuple(phi if b == a else 0 for b in range(len(r.axes("period"))))) for phi in range(period)]
    lo = min(int(sp_[a][0]) for sp_ in spans)
    hi = max(int(sp_[a][1]) for sp_ in spans)
    quantum = jp
    for lr in r.layers:
        j = lr.axes("jump")[a]
        p = lr.axes("period")[a]
        q = sp.Rational(j) * p
        if q.is_Rational and q > 0:
            quantum = math.lcm(quantum, int(sp.fraction(q)[0]))
    out = int(r.axes("out_size")[a])
    first = -(lo // jp)  # ceil(-lo / jp): the first group of outputs whose field starts in the tile
    last = (tile - 1 - hi) // jp
    groups = last - first + 1
    step = groups * jp // quantum * quantum
    if step <= 0:
        need = ax.nearest(tile + quantum, "up")
        raise SizeError(f"tiling: axis {a}: a tile of {tile} keeps {max(groups, 0) * jp} input positions of "
                        f"outputs, less than one aligned step of {quantum}; use a larger tile (e.g. {need})")
    kept = step // jp * period
    crop = (first * period, out - first * period - kept)
    cell = lo + (hi - lo + 1 - jp) // 2
    halo = (cell - lo, hi - cell - jp + 1)
    margin_before = first * jp + cell
    margin = (margin_before, tile - margin_before - step)
    return AxisTiling(a, tile, halo, step, crop, margin, out, period, jump, quantum, (lo, hi), ax)
