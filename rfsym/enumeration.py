r"""Brute-force enumeration of dependency sets: the engine's independent check.

Nothing here uses sympy, the engine's interval maps or its arithmetic backends: every quantity
is counted from the layers' index maps with plain Python and numpy integers, so that a formula
the engine derives and the number this module counts can disagree when one of them is wrong.

Conventions (per spatial axis; the same as the engine's, see :mod:`rfsym.engine`):

* Every grid is **unbounded**: a layer's index map is defined for every integer position, so an
  output may read positions outside ``0 .. n - 1`` of its input (padding) and those positions
  have dependency sets of their own on the grid below (Araujo, Norris, Sim, Distill 2019, count
  padding positions in the receptive field).
* Index maps. Convolution and pooling: output ``o`` reads ``o·s - p_left + t·d`` for
  ``t = 0 .. k - 1``. TensorFlow SAME pads ``max((ceil(n/s) - 1)·s + d(k - 1) + 1 - n, 0)`` in
  total, ``left = total // 2``. Adaptive pooling to ``m`` outputs: output ``i`` reads
  ``[floor(i·n/m), ceil((i + 1)·n/m))``; global pooling and ``Linear`` are the case ``m = 1``
  (output ``i`` reads ``[i·n, (i + 1)·n)``). Elementwise layers, BatchNorm and Flatten read
  position ``o`` only.
* The **dependency set** of an output position is the exact set of network-input positions
  that influence it, holes from dilation included; composing layers takes the union over the
  positions read.
* The network is its DAG (:func:`rfsym.dag.lower`, the same lowering the engine reads, which is
  pure data): every node's sets are computed once, from its inputs' sets, and kept until its
  last reader (fan-out); a merge (``"add"``, ``"concat"``, ``"mul"``, Residual, Concat) reads
  position ``o`` of every input and unites their sets (fan-in), except that an ``"add"`` or
  ``"mul"`` input of spatial size 1 on every axis (a gate after global pooling) is broadcast:
  every output reads its one position. Work is linear in nodes + edges (times the intervals
  of the sets; dense: times the enumerated positions times the span of the input).
* From the sets: ``start`` = smallest position of output 0's set; ``rf`` = largest
  ``max - min + 1`` over output positions (``rf_min`` the smallest); ``period`` = the smallest
  ``P`` after which the bounding intervals repeat shifted (1 for ordinary layers);
  ``jump`` = ``(start(P) - start(0)) / P`` (``start(1) - start(0)`` when ``P = 1``);
  ``center`` = midpoint of output 0's bounding interval.
* ``out_size`` counts the output windows that exist by the layer's definition, window by
  window: a convolution's window must lie inside the padded input; with pooling's
  ``ceil_mode`` a window may also stick out past the padded end by less than one stride, as
  long as it starts inside the input or the left padding (PyTorch).
* Finer grids: a transposed convolution's output ``o`` reads input ``i`` when
  ``i·s - p_left + t·d = o``; ``PixelShuffle(f)`` reads ``floor(o/f)``; ``Upsample`` reads
  what :meth:`rfsym.layers.Upsample.phases` lists (PyTorch's nearest, nearest-exact and linear
  index maps: ``floor(o/f)`` for nearest by an integer ``f``; linear reads ``floor(x)`` and
  ``floor(x) + 1`` at ``x = (o + 1/2)·scale - 1/2``, unclamped like padding, or with aligned
  corners at ``x = o(n - 1)/(out - 1)``); ``PixelUnshuffle(f)`` reads ``f·o .. f·o + f - 1``; ``Pad`` reads
  ``o - before``; ``Repeat`` is unrolled.
* Position-wise: ``Pointwise``, ``Params`` and ``Norm`` read position ``o`` only; a ``Norm`` with
  ``spatial=True`` under ``strict=True`` reads every real position ``0 .. n - 1``, as does global
  ``Attention`` (or a window at least as large as the axis). Window attention ``(w, shift)``:
  output ``o`` reads ``[o - ((o - shift) mod w), ... + w - 1]`` clipped to ``0 .. n - 1`` (Swin's
  masked cyclic shift); grid attention ``g``: output ``o`` reads ``o mod (n/g) + t·(n/g)``,
  ``t = 0 .. g - 1`` (MaxViT); outside ``0 .. n - 1`` both repeat every ``n`` outputs (output
  ``o + n`` reads what ``o`` reads, shifted by ``n``). An ``Attention`` reading two inputs
  ``(source, queries)``: output ``o`` reads query ``o`` and every real position of the source.
  Other layers plug in with :func:`register_index_map` (by class).
* Which outputs are enumerated: the first ``positions`` (default 64, or all) of every layer and
  at least two periods of every phase.
* Two ways to hold the sets, which count the same sets (the tests compare them position by
  position). ``method="intervals"`` (the default): a set is a sorted list of disjoint intervals
  (dilation leaves holes between them); every node's sets are computed for one period of its
  outputs only, from the positions its index map reads there (``o·s - p + t·d`` for a
  convolution: a run of ``k`` positions when ``d = 1``), and shifted for the others, because a
  map of period ``P`` reads at output ``o + P`` what it reads at ``o``, shifted. Work grows with
  the nodes and the number of intervals, not with the positions, so a 100,000-layer chain
  enumerates in seconds. The period each map declares is checked on the outputs the pass
  evaluates, from ``-P`` on; an axis with a map whose period does not hold is enumerated densely
  (``Enumeration.methods`` says which). ``method="dense"``: each enumerated output's set is a
  bit row (packed into bytes) over the whole input range, computed for every position some
  node reads — the straightforward reference, quadratic in depth for a chain. Both refuse work
  past a budget (:data:`MAX_INTERVAL_OPS` interval operations, :data:`MAX_CELLS` array cells)
  with an :class:`~rfsym.errors.RfsymError` that says what to reduce.

>>> from rfsym import Conv, Sequential
>>> e = enumerate_network(Sequential(Conv(3, padding=1), Conv(3, padding=1)), 5)
>>> e.rf, e.jump, e.start, e.out_size
(5, 1, -2, 5)
>>> dependency_mask(Conv(3, dilation=2, padding=2), 5, (2, 2)).astype(int)
array([[1, 0, 1, 0, 1],
       [0, 0, 0, 0, 0],
       [1, 0, 1, 0, 1],
       [0, 0, 0, 0, 0],
       [1, 0, 1, 0, 1]])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from . import layers as L
from .dag import INPUT, lower
from .errors import GraphError, LayerError, RfsymError, SizeError, layer_label
from .lazy_numpy import np

__all__ = [
    "enumerate_network", "dependency_mask", "dependency_set", "register_index_map",
    "Leaf", "Branches", "Sliding", "Scatter", "Intervals", "Taps", "IDENTITY_MAP", "every_position",
    "Enumeration", "EnumeratedLayer", "AxisCount", "concrete_int",
]

#: the largest position-period bound the enumerator accepts (it enumerates 2·period outputs)
MAX_PERIOD = 1 << 14
#: how many real output positions of every layer :func:`enumerate_network` enumerates by default
POSITIONS = 64
#: the most array cells the dense method holds (bit-packed sets of every enumerated output over
#: the input range; about two seconds of work per 10**9): beyond it, it refuses
MAX_CELLS = 2 * 10**9


# --------------------------------------------------------------------------- index maps
@dataclass(frozen=True)
class Sliding:
    """Output ``o`` reads ``o·stride - pad + t·dilation`` for ``t = 0 .. kernel - 1``.

    >>> Sliding(2, 1, 3).taps(np.arange(3))[0]
    array([[-1,  0,  1],
           [ 1,  2,  3],
           [ 3,  4,  5]])
    """

    stride: int
    pad: int
    kernel: int
    dilation: int = 1
    period: ClassVar[int] = 1

    def taps(self, o):
        t = np.arange(self.kernel, dtype=np.int64)
        return o[:, None] * self.stride - self.pad + t[None, :] * self.dilation, None


@dataclass(frozen=True)
class Scatter:
    """The index map of a transposed convolution: output ``o`` reads input ``i`` when
    ``i·stride - pad + t·dilation = o`` for some ``t = 0 .. kernel - 1``.

    >>> pos, valid = Scatter(2, 0, 3).taps(np.arange(4))
    >>> [sorted(p[v].tolist()) for p, v in zip(pos, valid)]
    [[-1, 0], [0], [0, 1], [1]]
    """

    stride: int
    pad: int
    kernel: int
    dilation: int = 1

    @property
    def period(self):
        return self.stride

    def taps(self, o):
        t = np.arange(self.kernel, dtype=np.int64)
        num = o[:, None] + self.pad - t[None, :] * self.dilation
        return num // self.stride, num % self.stride == 0


@dataclass(frozen=True)
class Intervals:
    """Adaptive pooling of ``n`` positions to ``m``: output ``i`` reads
    ``[floor(i·n/m), ceil((i + 1)·n/m))`` (PyTorch); ``m = 1`` reads everything.

    >>> pos, valid = Intervals(5, 3).taps(np.arange(3))
    >>> [p[v].tolist() for p, v in zip(pos, valid)]
    [[0, 1], [1, 2, 3], [3, 4]]
    """

    n: int
    m: int

    @property
    def period(self):
        return self.m // math.gcd(self.n, self.m)

    def taps(self, o):
        lo = (o * self.n) // self.m
        hi = -((-(o + 1) * self.n) // self.m)
        width = int((hi - lo).max()) if o.size else 0
        pos = lo[:, None] + np.arange(width, dtype=np.int64)[None, :]
        return pos, pos < hi[:, None]


@dataclass(frozen=True)
class Taps:
    """Any index map given as a function ``fn(o) -> (positions, valid)`` over an int64 array of
    output positions: ``positions`` has shape ``(len(o), T)``; ``valid`` (same shape, or None)
    marks the real taps. ``period`` is an output period of the map: output ``o + period`` reads
    the positions of ``o`` shifted by one constant (1 when the map is translation-equivariant:
    output ``o + 1`` reads the positions of ``o`` shifted); the interval method relies on it
    and checks it on the outputs it evaluates."""

    fn: Callable
    period: int = 1
    #: output ``o + period`` reads the positions of ``o`` shifted by ``period``: on a grid whose
    #: sets repeat every ``b`` positions the output repeats every ``lcm(b, period)`` (else ``b·period``)
    tiled: bool = False

    def taps(self, o):
        return self.fn(o)


IDENTITY_MAP = Sliding(1, 0, 1)


@dataclass(frozen=True)
class Leaf:
    """What an index-map rule returns for a leaf layer: one map per axis and the output sizes
    (None when the input size is unknown)."""

    maps: tuple
    sizes: tuple | None


@dataclass(frozen=True)
class Branches:
    """What an index-map rule returns for a graph layer: branches (Sequentials or layers) that
    all read the block's input; their dependency sets are united at a merge node of type
    ``merge`` (for example ``"Add"`` or ``"Concat"``). ``merge=None`` means no merge node: the
    block is exactly one branch walked inline (an unrolled ``Repeat``)."""

    branches: tuple
    merge: str | None = None


_MAPS: dict = {}


def register_index_map(cls):
    """Decorator: register ``rule(layer, sizes, ndim) -> Leaf | Branches`` for a layer class.

    ``sizes`` is the per-axis input size (Python ints) or None. Rules read concrete values
    with :func:`concrete_int` and raise :class:`~rfsym.errors.LayerError` for bad ones; the
    enumerator adds the layer's position to the message.
    """

    def deco(fn):
        _MAPS[cls] = fn
        return fn

    return deco


def _rule_for(layer):
    for cls in type(layer).__mro__:
        if cls in _MAPS:
            return _MAPS[cls]
    return None


def _repeat(layer, sizes, ndim):
    concrete_int(layer.n, "n", 0)
    return Branches((layer.unrolled(),), None)


def _conv_transpose(layer, sizes, ndim):
    ks = _per_axis(layer.kernel_size, ndim, "kernel_size")
    ss = _per_axis(layer.stride, ndim, "stride")
    ds = _per_axis(layer.dilation, ndim, "dilation")
    pads = _pads(layer, ndim, ks, ss, ds, sizes)
    extra = _per_axis(layer.output_padding, ndim, "output_padding", 0)
    maps = tuple(Scatter(s, pl, k, d) for k, s, d, (pl, _) in zip(ks, ss, ds, pads))
    out = None
    if sizes is not None:
        out = []
        for n, k, s, d, (pl, pr), op in zip(sizes, ks, ss, ds, pads, extra):
            # positions i*s + t*d of the uncropped output, extended by output_padding on the
            # right, then pl cropped on the left and pr on the right
            q = (np.arange(n)[:, None] * s + np.arange(k)[None, :] * d).ravel()
            grid = np.arange(int(q.max()) + 1 + op)
            out.append(int(np.count_nonzero((grid >= pl) & (grid <= grid[-1] - pr))))
        out = tuple(out)
    return Leaf(maps, out)


def _upsample(layer, sizes, ndim):
    maps, out = [], []
    for axis in range(ndim):
        n = None if sizes is None else sizes[axis]
        period, jump, pos, valid = layer.phases(axis, ndim, n, MAX_PERIOD)
        if period == 1 and jump == 1 and pos[0, 0] == 0 and not valid[0, 1]:
            maps.append(IDENTITY_MAP)
        else:  # output o = period·m + φ reads the phase's positions shifted by jump·m
            maps.append(Taps(lambda o, P=period, J=jump, pos=pos, valid=valid: _phase_taps(o, P, J, pos, valid),
                             period=period))
        if n is not None:
            out.append(layer.output_size(axis, ndim, n))
    return Leaf(tuple(maps), None if sizes is None else tuple(out))


def _phase_taps(o, period, jump, pos, valid):
    m, phi = np.divmod(o, period)
    return pos[phi] + (jump * m)[:, None], valid[phi]


def _crop(layer, sizes, ndim):
    pairs = [(concrete_int(a, "amount", 0), concrete_int(b, "amount", 0)) for a, b in layer.amounts(ndim)]
    maps = tuple(Sliding(1, -left, 1) for left, _ in pairs)
    out = None if sizes is None else tuple(n - a - b for n, (a, b) in zip(sizes, pairs))
    return Leaf(maps, out)


def _pad(layer, sizes, ndim):
    pairs = [(concrete_int(a, "padding", 0), concrete_int(b, "padding", 0)) for a, b in layer.amounts(ndim)]
    maps = tuple(Sliding(1, before, 1) for before, _ in pairs)  # output o reads o - before
    out = None if sizes is None else tuple(n + a + b for n, (a, b) in zip(sizes, pairs))
    return Leaf(maps, out)


def every_position(n):
    """The index map of a global layer: output ``o`` reads the real input positions ``0 .. n - 1``,
    whatever ``o`` (padding positions of the output included).

    >>> every_position(3).taps(np.arange(2))[0].tolist()
    [[0, 1, 2], [0, 1, 2]]
    """
    def taps(o):
        return np.tile(np.arange(n, dtype=np.int64), (len(o), 1)), None
    return Taps(taps)


def _tiled(n, period, reads):
    """An index map defined on the real outputs ``0 .. n - 1`` by ``reads(r) -> positions`` (an
    int64 array of shape ``(len(r), T)``, entries outside ``0 .. n - 1`` masked) and repeated
    every ``n`` outputs: output ``o`` reads ``reads(o mod n)`` shifted by ``o - o mod n``."""
    def taps(o):
        r = o % n
        pos = reads(r)
        valid = (pos >= 0) & (pos < n)
        return pos + (o - r)[:, None], valid
    return Taps(taps, period=period, tiled=True)


def _window(n, w, shift):
    """Shifted-window attention: output ``o`` reads ``[o - ((o - shift) mod w), ... + w - 1]``
    clipped to the real input ``0 .. n - 1`` (Swin's masked cyclic shift); repeated every ``n``
    outputs outside ``0 .. n - 1``."""
    span = np.arange(w, dtype=np.int64)[None, :]
    clipped = shift % w != 0 or n % w != 0
    return _tiled(n, n if clipped else w, lambda r: (r - (r - shift) % w)[:, None] + span)


def _grid(n, g):
    """Grid attention (MaxViT): output ``o`` reads the ``g`` positions ``o mod (n/g) + t·(n/g)``;
    repeated every ``n`` outputs outside ``0 .. n - 1``."""
    if n % g:
        raise LayerError(f"grid={g} needs sizes divisible by {g}, got {n}", param="grid")
    cell = n // g
    if cell == 1:
        return every_position(n)
    span = cell * np.arange(g, dtype=np.int64)[None, :]
    return _tiled(n, n, lambda r: (r % cell)[:, None] + span)


def _norm(layer, sizes, ndim, strict=False):
    if layer.spatial and strict:  # statistics over positions: every output reads the whole input
        _need_sizes(sizes, f"{layer.kind} with strict=True")
        return Leaf(tuple(every_position(n) for n in sizes), sizes)
    return Leaf((IDENTITY_MAP,) * ndim, sizes)


_norm.strict_aware = True


def _attention(layer, sizes, ndim):
    _need_sizes(sizes, "Attention")
    if layer.window is None and layer.grid is None:
        return Leaf(tuple(every_position(n) for n in sizes), sizes)
    if layer.grid is not None:
        return Leaf(tuple(_grid(n, g) for n, g in zip(sizes, _per_axis(layer.grid, ndim, "grid"))), sizes)
    ws = _per_axis(layer.window, ndim, "window")
    shifts = _per_axis(layer.shift, ndim, "shift", 0)
    maps = tuple(every_position(n) if w >= n else _window(n, w, sh) for n, w, sh in zip(sizes, ws, shifts))
    return Leaf(maps, sizes)


def _pixel_shuffle(layer, sizes, ndim):
    f = concrete_int(layer.factor, "factor")
    nearest = IDENTITY_MAP if f == 1 else Taps(lambda o: ((o // f)[:, None], None), period=f)
    return Leaf((nearest,) * ndim, None if sizes is None else tuple(n * f for n in sizes))


def _pixel_unshuffle(layer, sizes, ndim):
    f = concrete_int(layer.factor, "factor")
    if sizes is not None:
        for axis, n in enumerate(sizes):
            if n % f:
                raise LayerError(f"space to depth by {f} needs sizes divisible by {f}, got {n} on axis {axis}",
                                 param="factor")
    return Leaf((Sliding(f, 0, f),) * ndim, None if sizes is None else tuple(n // f for n in sizes))


register_index_map(L.Repeat)(_repeat)
register_index_map(L.ConvTranspose)(_conv_transpose)
register_index_map(L.Upsample)(_upsample)
register_index_map(L.Crop)(_crop)
register_index_map(L.Pad)(_pad)
register_index_map(L.Norm)(_norm)
register_index_map(L.Attention)(_attention)
register_index_map(L.PixelShuffle)(_pixel_shuffle)
register_index_map(L.PixelUnshuffle)(_pixel_unshuffle)



# --------------------------------------------------------------------------- concrete values
def concrete_int(value, param, minimum=1):
    """A Python int from a layer parameter, or an error when it is symbolic or out of range.

    >>> concrete_int(3, "stride")
    3
    >>> from rfsym import symbols
    >>> concrete_int(symbols("k"), "kernel_size")
    Traceback (most recent call last):
    ...
    rfsym.errors.LayerError: kernel_size is k: enumeration needs numbers; substitute values first (layer.subs({...}))
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise LayerError(f"{param} is {value}: enumeration needs numbers; substitute values first "
                         "(layer.subs({...}))", param=param)
    out = int(value)
    if out < minimum:
        what = "a positive integer" if minimum == 1 else "a nonnegative integer"
        raise LayerError(f"{param} must be {what}, got {out}", param=param)
    return out


def _per_axis(value, ndim, param, minimum=1):
    if isinstance(value, tuple):
        if len(value) != ndim:
            raise LayerError(f"{param} has {len(value)} axes but the network has {ndim}: {value!r}",
                             param=param)
        return tuple(concrete_int(v, param, minimum) for v in value)
    return (concrete_int(value, param, minimum),) * ndim


def _pads(layer, ndim, ks, ss, ds, sizes):
    pad = layer.padding
    text = isinstance(pad, str)  # (comparing a sympy number with a string would sympify it)
    if text and pad == "valid":
        return ((0, 0),) * ndim
    if text and pad == "same":  # PyTorch: total d(k - 1), the extra position on the right
        if any(s != 1 for s in ss):
            raise LayerError("padding='same' requires stride 1", param="padding")
        return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(ks, ds))
    if text and pad == "tf_same":  # TensorFlow: depends on the input size
        if sizes is None:
            raise LayerError("padding='tf_same' depends on the input size; give input_size",
                             param="padding")
        out = []
        for n, k, s, d in zip(sizes, ks, ss, ds):
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    items = pad if isinstance(pad, tuple) else (pad,) * ndim
    if len(items) != ndim:
        raise LayerError(f"padding has {len(items)} axes but the network has {ndim}: {pad!r}",
                         param="padding")
    return tuple((concrete_int(p[0], "padding", 0), concrete_int(p[1], "padding", 0))
                 if isinstance(p, tuple) else (concrete_int(p, "padding", 0),) * 2 for p in items)


def _count_windows(n, k, s, d, pl, pr, ceil):
    """How many output windows exist, decided window by window (not by a size formula)."""
    o = np.arange(n + pl + pr + 2, dtype=np.int64)
    first = o * s - pl
    last = first + d * (k - 1)
    fits = last <= n + pr - 1  # inside the padded input
    if ceil:  # may stick out past the padded end by less than a stride if it starts before n
        fits |= (first < n) & (last - (n + pr - 1) < s)
    return int(np.count_nonzero(fits))


@register_index_map(L.Windowed)
def _windowed(layer, sizes, ndim):
    ks = _per_axis(layer.kernel_size, ndim, "kernel_size")
    ss = _per_axis(layer.stride, ndim, "stride")
    ds = _per_axis(getattr(layer, "dilation", 1), ndim, "dilation")
    pads = _pads(layer, ndim, ks, ss, ds, sizes)
    ceil = bool(getattr(layer, "ceil_mode", False)) and not (isinstance(layer.padding, str)
                                                             and layer.padding == "tf_same")
    maps = tuple(Sliding(s, pl, k, d) for k, s, d, (pl, _) in zip(ks, ss, ds, pads))
    out = None
    if sizes is not None:
        out = tuple(_count_windows(n, k, s, d, pl, pr, ceil)
                    for n, k, s, d, (pl, pr) in zip(sizes, ks, ss, ds, pads))
    return Leaf(maps, out)


def _identity(layer, sizes, ndim):
    return Leaf((IDENTITY_MAP,) * ndim, sizes)


for _cls in (L.Elementwise, L.BatchNorm, L.Flatten, L.Pointwise, L.Params):
    register_index_map(_cls)(_identity)


def _need_sizes(sizes, what):
    if sizes is None:
        raise LayerError(f"{what} reads the whole input: enumeration needs the input size",
                         param="input_size")


@register_index_map(L.AdaptiveAvgPool)
def _adaptive(layer, sizes, ndim):
    _need_sizes(sizes, type(layer).__name__)
    ms = _per_axis(layer.output_size, ndim, "output_size")
    return Leaf(tuple(Intervals(n, m) for n, m in zip(sizes, ms)), ms)


@register_index_map(L.Linear)
def _linear(layer, sizes, ndim):
    _need_sizes(sizes, "Linear")
    return Leaf(tuple(Intervals(n, 1) for n in sizes), (1,) * ndim)


# --------------------------------------------------------------------------- the graph
@dataclass
class _Node:
    index: int  # position among reported nodes (-1: the network input or a hidden node)
    label: str
    type: str
    layer: Any
    parents: tuple  # internal ids
    maps: tuple | None  # per axis; None: union of the parents (merge node)
    sizes: tuple | None
    bound: tuple  # per axis: a multiple of the output period
    broadcast: tuple = ()  # merges: per parent, True when it is broadcast (spatial size 1)


class _Graph:
    """The network's DAG (:func:`rfsym.dag.lower`) with every leaf replaced by its index maps.

    Internal node 0 is the network input; every DAG node follows in topological order. Blocks
    the lowering keeps whole (a long or custom :class:`~rfsym.layers.Repeat`, a layer whose rule
    returns :class:`Branches`) are expanded into nodes of their own."""

    def __init__(self, net, input_size, ndim, strict=False):
        if not isinstance(net, L.Layer):
            if isinstance(net, (list, tuple)):
                net = L.Sequential(*net)
            else:
                raise RfsymError(f"enumeration expects an rfsym layer or Sequential, got {type(net).__name__}")
        if not isinstance(net, L.Sequential):
            net = L.Sequential(net)
        self.net = net
        if ndim is None:
            ndim = len(input_size) if isinstance(input_size, (tuple, list)) else (net.ndim or 2)
        self.ndim = ndim
        self.strict = strict
        sizes = None
        if input_size is not None:
            sizes = input_size if isinstance(input_size, (tuple, list)) else (input_size,) * ndim
            try:
                sizes = _per_axis(tuple(sizes), ndim, "input_size")
            except LayerError as err:
                raise err.located("enumeration") from None
        self.input_sizes = sizes
        self.positions = POSITIONS
        self._rules = {}
        self.nodes = [_Node(-1, "input", "Input", None, (), None, sizes, (1,) * ndim)]
        self.reported = []
        dag = lower(net)
        ids = self._embed(dag, 0, True)
        self.outputs = [(name, 0 if i == INPUT else ids[i]) for name, i in zip(dag.output_names, dag.outputs)]
        if len(self.outputs) == 1:
            self.outputs = [(self.nodes[i].label if i else "input", i) for _, i in self.outputs]
        self.features = None if dag.features is None else ids[dag.features]

    def _embed(self, dag, src, report):
        """Add the nodes of ``dag`` reading internal node ``src``; their internal ids."""
        ids = {INPUT: src}
        for node in dag.nodes:
            parents = tuple(ids[u] for u in node.inputs)
            if node.is_merge:
                ids[node.index] = self._merge(node.name, node.kind, parents, report, node.branches)
            elif len(parents) == 2:  # an Attention with queries of its own
                ids[node.index] = self._attend(node, parents, report)
            else:
                ids[node.index] = self._leaf(node, parents[0], report)
        return ids

    def _add(self, node, report):
        self.nodes.append(node)
        if report:
            node.index = len(self.reported)
            self.reported.append(len(self.nodes) - 1)
        return len(self.nodes) - 1

    def _leaf(self, node, src, report):
        layer = node.op
        where = layer_label(layer, len(self.reported))
        rule = _rule_for(layer)
        if rule is None:
            raise LayerError(f"the enumerator does not know the index map of {type(layer).__name__}; "
                             "register one with rfsym.enumeration.register_index_map", where=where)
        sizes = self.nodes[src].sizes
        key = (rule, type(layer), layer, sizes)  # a layer repeated at the same size: its rule once
        try:
            out = self._rules.get(key)
        except TypeError:  # an unhashable layer
            key, out = None, None
        if out is None:
            try:
                if getattr(rule, "strict_aware", False):
                    out = rule(layer, sizes, self.ndim, strict=self.strict)
                else:
                    out = rule(layer, sizes, self.ndim)
            except LayerError as err:
                raise (err if err.where else err.located(where)) from None
            if key is not None:
                self._rules[key] = out
        if isinstance(out, Branches):
            return self._block(node, out, src, report, where)
        if len(out.maps) != self.ndim:
            raise LayerError(f"index-map rule gave {len(out.maps)} axes, expected {self.ndim}", where=where)
        if out.sizes is not None:
            for axis, m in enumerate(out.sizes):
                if m < 1:
                    raise SizeError(f"{where}: no output window fits on axis {axis} for input size "
                                    f"{sizes[axis]}; the input is too small for this layer")
        bound = tuple(math.lcm(b, m.period) if getattr(m, "tiled", False) else b * m.period
                      for b, m in zip(self.nodes[src].bound, out.maps))
        self._check_bound(bound, where)
        new = _Node(-1, node.name, node.kind, layer, (src,), tuple(out.maps),
                    None if out.sizes is None else tuple(out.sizes), bound)
        return self._add(new, report)

    def _attend(self, node, parents, report):
        """An Attention reading ``(source, queries)``: output ``o`` (on the queries' grid) reads
        query ``o`` and every real position of the source (a hidden node), united."""
        where = layer_label(node.op, len(self.reported))
        layer = node.op
        if layer.window is not None or layer.grid is not None:
            raise LayerError("an Attention reading queries of its own (two inputs) attends every position: "
                             "window= and grid= are not supported", where=where,
                             param="window" if layer.window is not None else "grid")
        source, queries = (self.nodes[p] for p in parents)
        _need_sizes(source.sizes, "Attention")
        keys = _Node(-1, f"{node.name} (keys)", node.kind, layer, (parents[0],),
                     tuple(every_position(n) for n in source.sizes), queries.sizes, (1,) * self.ndim)
        hidden = self._add(keys, False)
        return self._merge(node.name, node.kind, (hidden, parents[1]), report, ["source", "queries"])

    def _check_bound(self, bound, where):
        if max(bound) > MAX_PERIOD:
            raise RfsymError(f"{where}: the position period may reach {max(bound)}; too many phases to enumerate")

    def _block(self, node, out, src, report, where):
        """A layer enumerated as sub-networks: its branches (a merge unites them), or one
        branch walked hidden behind a node of the layer's own type (``merge=None``)."""
        if out.merge is None:
            if len(out.branches) != 1:
                raise GraphError(f"{where}: a block without a merge node must have exactly one branch")
            sub = lower(out.branches[0])
            end = self._embed(sub, src, False)[sub.outputs[0]]
            s = self.nodes[end]
            new = _Node(-1, node.name, node.kind, node.op, (end,), (IDENTITY_MAP,) * self.ndim, s.sizes, s.bound)
            return self._add(new, report)
        ends, names = [], []
        for j, branch in enumerate(out.branches):
            sub = lower(L.Sequential(L.Sequential(branch, name=f"{node.name}.{j}")))
            ends.append(self._embed(sub, src, report)[sub.outputs[0]])
            names.append(f"branch {j}")
        sizes = [self.nodes[e].sizes for e in ends]
        if len(set(sizes)) > 1:
            raise GraphError(f"{where}: branches give different output sizes {sorted(set(sizes), key=str)}; "
                             "they cannot be merged")
        return self._merge(node.name, out.merge, tuple(ends), report, names)

    def _merge(self, label, kind, parents, report, names):
        """A merge: every output position reads the same position of each input, except an
        input of spatial size 1 in an addition or product, read at its one position."""
        sizes = [self.nodes[p].sizes for p in parents]
        broadcast = [False] * len(parents)
        if kind != "Concat" and all(s is not None for s in sizes):
            ones = [all(n == 1 for n in s) for s in sizes]
            if any(ones) and not all(ones):
                broadcast = ones
        full = [(s, n) for s, n, b in zip(sizes, names or [f"input {j}" for j in range(len(parents))], broadcast)
                if not b]
        known = [(s, n) for s, n in full if s is not None]
        for s, n in known[1:]:
            if s != known[0][0]:
                raise GraphError(f"{kind} {label!r}: inputs must have the same output size to merge: "
                                 f"{known[0][1]} gives {known[0][0]}, {n} gives {s}")
        bound = tuple(math.lcm(*(self.nodes[p].bound[a] for p, b in zip(parents, broadcast) if not b))
                      for a in range(self.ndim))
        new = _Node(-1, label, kind, None, tuple(parents), None, known[0][0] if known else None, bound,
                    tuple(broadcast))
        return self._add(new, report)

    def count(self, node, axis):
        """How many output positions of ``node`` to enumerate on ``axis``: at least two full
        periods, and the first ``positions`` real outputs (all of them for ``"all"``)."""
        n = 2 * node.bound[axis] + 2
        if node.sizes is None:
            return n
        size = node.sizes[axis]
        return max(n, size if self.positions == "all" else min(size, self.positions))


# --------------------------------------------------------------------------- per-axis pass
def _hull(ranges, i, lo, hi):
    a, b = ranges[i]
    ranges[i] = (min(a, lo), max(b, hi))


def _gather(dp, idx, valid, rows):
    """Union over taps: ``out[r] = OR_t dp[idx[r, t]]`` (taps with ``valid`` False skipped).
    Sets are rows of bits packed into bytes (``np.packbits``)."""
    acc = np.zeros((rows, dp.shape[1]), dtype=np.uint8)
    for t in range(idx.shape[1]):
        part = dp[idx[:, t]]
        if valid is not None:
            part[~valid[:, t]] = 0
        acc |= part
    return acc


def _packed_identity(width):
    """Row ``r`` is the set ``{r}``, packed (``np.packbits`` bit order)."""
    out = np.zeros((width, (width + 7) // 8), dtype=np.uint8)
    r = np.arange(width)
    out[r, r // 8] = (1 << (7 - r % 8)).astype(np.uint8)
    return out


def _axis_pass(graph, axis, keep_sets):
    """Enumerate every node on one axis, each node's positions once (a node read by several
    others is computed once and kept until its last reader): per node an :class:`AxisCount`."""
    nodes = graph.nodes
    empty = (math.inf, -math.inf)
    ranges = [empty] * len(nodes)
    wanted = {o for _, o in graph.outputs}
    for i, node in enumerate(nodes):
        if i or 0 in wanted:
            ranges[i] = (0, graph.count(node, axis))
    consumers = [0] * len(nodes)
    taps = {}
    for i in range(len(nodes) - 1, 0, -1):  # which positions each grid must provide
        node = nodes[i]
        lo, hi = ranges[i]
        for p in node.parents:
            consumers[p] += 1
        if node.maps is None:
            for p, b in zip(node.parents, node.broadcast):
                _hull(ranges, p, *((0, 1) if b else (lo, hi)))
            continue
        pos, valid = node.maps[axis].taps(np.arange(lo, hi, dtype=np.int64))
        pos = np.asarray(pos, dtype=np.int64)
        taps[i] = (pos, valid)
        real = pos if valid is None else pos[np.asarray(valid, dtype=bool)]
        if real.size:
            _hull(ranges, node.parents[0], int(real.min()), int(real.max()) + 1)
    lo0, hi0 = ranges[0]
    if not lo0 < hi0:  # nothing reads the input: one column that stays empty
        lo0, hi0 = 0, 1
    width = int(hi0 - lo0)
    cells = (sum(hi - lo for lo, hi in ranges if lo < hi) + width) * (width // 8 + 1)
    if cells > MAX_CELLS:
        raise RfsymError(f"dense enumeration: the sets on axis {axis} would hold about {cells:.2g} array cells "
                         f"(the limit is {MAX_CELLS:.0e}); use a smaller input size, fewer layers or fewer positions")
    sets = {0: _packed_identity(width)}
    out = {}
    if 0 in wanted:  # the network input is an output
        n_out = graph.count(nodes[0], axis)
        block = np.unpackbits(sets[0][-lo0:n_out - lo0], axis=1, count=width).astype(bool)
        out[0] = AxisCount.from_sets(block, int(lo0), nodes[0].sizes[axis] if nodes[0].sizes else None,
                                     keep_sets)
    for i in range(1, len(nodes)):
        node = nodes[i]
        lo, hi = ranges[i]
        rows = hi - lo
        if node.maps is None:
            acc = np.zeros((rows, (width + 7) // 8), dtype=np.uint8)
            for p, b in zip(node.parents, node.broadcast):
                plo = ranges[p][0]
                acc |= sets[p][-plo] if b else sets[p][lo - plo:hi - plo]
        else:
            pos, valid = taps.pop(i)
            p = node.parents[0]
            if valid is not None:
                valid = np.asarray(valid, dtype=bool)
                pos = np.where(valid, pos, ranges[p][0])  # masked taps: any in-range index
            acc = _gather(sets[p], pos - ranges[p][0], valid, rows)
        for p in node.parents:
            consumers[p] -= 1
            if consumers[p] == 0:
                del sets[p]
        sets[i] = acc
        if node.index >= 0 or i in wanted:
            n_out = graph.count(node, axis)
            block = np.unpackbits(acc[-lo:n_out - lo], axis=1, count=width).astype(bool)
            out[i] = AxisCount.from_sets(block, int(lo0), node.sizes[axis] if node.sizes else None, keep_sets)
        if consumers[i] == 0:
            del sets[i]
    return out


def _signature(graph, axis):
    try:
        sig = tuple((n.maps[axis] if n.maps is not None else None, n.parents, n.broadcast,
                     None if n.sizes is None else n.sizes[axis], n.bound[axis]) for n in graph.nodes)
        hash(sig)
        return sig
    except TypeError:
        return None



# --------------------------------------------------------------------------- interval pass
#: the most interval operations (intervals produced while uniting dependency sets) one interval
#: enumeration performs before it refuses (a few seconds of work)
MAX_INTERVAL_OPS = 2 * 10**6
#: the enumeration methods: ``"intervals"`` (sets as interval lists, one per output phase) and
#: ``"dense"`` (every enumerated output as a bit row over the input range)
METHODS = ("intervals", "dense")


class _NotPeriodic(Exception):
    """Internal: an index map the interval pass cannot use (its period does not hold); the axis
    is enumerated densely instead."""


class _Family:
    """Dependency sets of every position ``x`` of a grid: ``sets[x mod period]`` shifted by
    ``(x div period)·shift``. A set is a sorted tuple of disjoint, non-adjacent closed intervals
    ``(first, last)`` of network-input positions (holes between them, from dilation)."""

    __slots__ = ("period", "shift", "sets")

    def __init__(self, period, shift, sets):
        self.period, self.shift, self.sets = period, shift, sets

    def at(self, x):
        j, r = divmod(x, self.period)
        d = j * self.shift
        return [(a + d, b + d) for a, b in self.sets[r]]


class _Budget:
    """Counts interval operations; refuses past ``limit`` (an RfsymError naming the node)."""

    def __init__(self, limit):
        self.limit, self.ops, self.where = limit, 0, "the network"

    def spend(self, n):
        self.ops += n
        if self.ops > self.limit:
            raise RfsymError(f"interval enumeration: {self.where} brings the work past {self.limit:.0e} interval "
                             "operations (every hole that dilation, strides or upsampling leave in a dependency "
                             "set is an interval of its own); use fewer layers or smaller dilations, or "
                             "method='dense'")


def _union(ivs):
    """Sorted, disjoint, non-adjacent intervals covering the same positions as ``ivs``."""
    if len(ivs) < 2:
        return tuple(ivs)
    ivs.sort()
    out = [ivs[0]]
    for a, b in ivs[1:]:
        la, lb = out[-1]
        if a <= lb + 1:
            if b > lb:
                out[-1] = (la, b)
        else:
            out.append((a, b))
    return tuple(out)


def _sweep(template, first, step, count, out, budget):
    """Append the union over ``i < count`` of ``template`` shifted by ``first + i·step``: one
    interval per template interval when the shifts overlap, else ``count`` (holes)."""
    if step < 0:
        first, step = first + (count - 1) * step, -step
    if count == 1 or step == 0:
        out.extend((a + first, b + first) for a, b in template)
        return
    last = first + (count - 1) * step
    for a, b in template:
        if b - a + 1 >= step:
            out.append((a + first, b + last))
        else:
            budget.spend(count)
            out.extend((a + first + i * step, b + first + i * step) for i in range(count))


def _read_progression(fam, first, step, count, out, budget):
    """Append the sets of the positions ``first + i·step`` (``i < count``) of family ``fam``."""
    period, shift, sets = fam.period, fam.shift, fam.sets
    if period == 1:
        _sweep(sets[0], first * shift, step * shift, count, out, budget)
    elif step % period == 0:
        j, r = divmod(first, period)
        _sweep(sets[r], j * shift, step // period * shift, count, out, budget)
    elif step != 1 or count < period:
        for i in range(count):
            out.extend(fam.at(first + i * step))
    else:  # a run of consecutive positions, at least one full period: phase by phase
        last = first + count - 1
        for r in range(period):
            j1, j2 = -((r - first) // period), (last - r) // period
            _sweep(sets[r], j1 * shift, shift, j2 - j1 + 1, out, budget)


class _Reads:
    """What output ``o`` of one index map reads, as arithmetic progressions ``(first, step,
    count)`` of positions, and the map's period: output ``o + period`` reads the positions of
    ``o`` shifted by ``shift``. A :class:`Sliding` map is read off its parameters; any other
    map is evaluated (``taps``) and its period checked on the outputs evaluated, from
    ``-period`` on (:class:`_NotPeriodic` when it does not hold)."""

    def __init__(self, m):
        self.map = m
        if isinstance(m, Sliding):
            self.period, self.shift = 1, m.stride
            return
        period = getattr(m, "period", None)
        if isinstance(period, bool) or not isinstance(period, numbers.Integral) or period < 1 or period > MAX_PERIOD:
            raise _NotPeriodic
        self.period = int(period)
        self._rows = []  # sorted tap positions of outputs -period, -period + 1, ...
        self._extend(3 * self.period)
        shift = None
        for o in range(2 * self.period):
            a, b = self._rows[o], self._rows[o + self.period]
            if len(a) != len(b):
                raise _NotPeriodic
            if len(a):
                shift = int(b[0] - a[0]) if shift is None else shift
                if not np.array_equal(b - a, np.full(len(a), shift)):
                    raise _NotPeriodic
        self.shift = 0 if shift is None else shift

    def _extend(self, n):
        """Evaluate the outputs ``-period + len(rows) .. -period + n - 1``."""
        start = len(self._rows)
        o = np.arange(start, n, dtype=np.int64) - self.period
        try:
            pos, valid = self.map.taps(o)
            pos = np.asarray(pos, dtype=np.int64)
            if valid is not None:
                valid = np.asarray(valid, dtype=bool)
        except Exception:  # a map defined on fewer outputs (none before 0): the dense pass decides
            raise _NotPeriodic from None
        for i in range(len(o)):
            row = pos[i] if valid is None else pos[i][valid[i]]
            self._rows.append(np.unique(row))
        if start >= 2 * self.period:  # outputs beyond the first check: the period still holds
            for k in range(max(start, 2 * self.period), n):
                a, b = self._rows[k - self.period], self._rows[k]
                if len(a) != len(b) or (len(a) and not np.array_equal(b - a, np.full(len(a), self.shift))):
                    raise _NotPeriodic

    def progressions(self, o):
        """Output ``o`` (``0 <= o``) as progressions ``(first, step, count)``."""
        m = self.map
        if isinstance(m, Sliding):
            return ((o * m.stride - m.pad, m.dilation, m.kernel),)
        if o + self.period >= len(self._rows):
            self._extend(o + self.period + 1)
        row = self._rows[o + self.period]
        if not len(row):
            return ()
        breaks = np.flatnonzero(np.diff(row) != 1) + 1
        starts = np.concatenate(([0], breaks))
        ends = np.concatenate((breaks, [len(row)]))
        return tuple((int(row[a]), 1, int(b - a)) for a, b in zip(starts, ends))


def _through(fams, reads, budget):
    """The families of a map node from its parent's: each family's sets read through the map."""
    out = []
    for fam in fams:
        c, pm = reads.shift, reads.period
        q = 1 if c == 0 else fam.period // math.gcd(fam.period, abs(c))
        period = pm * q
        if period > MAX_PERIOD:
            raise _NotPeriodic
        shift = q * c // fam.period * fam.shift
        sets = []
        for r in range(period):
            ivs = []
            for first, step, count in reads.progressions(r):
                _read_progression(fam, first, step, count, ivs, budget)
            budget.spend(len(ivs))
            sets.append(_union(ivs))
        out.append(_Family(period, shift, tuple(sets)))
    return _normalize(out, budget)


def _normalize(fams, budget):
    """Unite families that grow at the same rate (``shift / period``) into one (a common
    period); families of different rates (a merge of branches of different jumps) stay apart."""
    if len(fams) < 2:
        return fams
    groups = {}
    for fam in fams:
        groups.setdefault(Fraction(fam.shift, fam.period), []).append(fam)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        period = math.lcm(*(f.period for f in group))
        if period > MAX_PERIOD:
            raise _NotPeriodic
        sets = []
        for r in range(period):
            ivs = [iv for f in group for iv in f.at(r)]
            budget.spend(len(ivs))
            sets.append(_union(ivs))
        out.append(_Family(period, group[0].shift * (period // group[0].period), tuple(sets)))
    return out


def _set_at(fams, o):
    """The dependency set of position ``o``: sorted disjoint intervals."""
    if len(fams) == 1:
        return fams[0].at(o)
    return list(_union([iv for f in fams for iv in f.at(o)]))


def _positions_of(fams, o):
    ivs = _set_at(fams, o)
    if not ivs:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(a, b + 1, dtype=np.int64) for a, b in ivs])


_SAFE = 1 << 62


def _read_off(fams, n, out_size, keep, budget):
    """The :class:`AxisCount` of outputs ``0 .. n - 1`` of a node whose sets are ``fams``."""
    if len(fams) == 1:
        fam = fams[0]
        p = fam.period
        tl = [s[0][0] if s else 0 for s in fam.sets]
        th = [s[-1][1] if s else 0 for s in fam.sets]
        ts = [sum(b - a + 1 for a, b in s) for s in fam.sets]
        big = max(max(map(abs, tl)), max(map(abs, th))) + (n // p + 1) * abs(fam.shift)
        dtype = np.int64 if big < _SAFE else object
        o = np.arange(n, dtype=np.int64)
        ph, k = o % p, o // p
        if dtype is object:
            k = k.astype(object)
        d = k * fam.shift
        lo = np.array(tl, dtype=dtype)[ph] + d
        hi = np.array(th, dtype=dtype)[ph] + d
        size = np.array(ts, dtype=np.int64 if max(ts) < _SAFE else object)[ph]
    else:
        lo, hi, size = [], [], []
        for o in range(n):
            ivs = _set_at(fams, o)
            budget.spend(len(ivs))
            lo.append(ivs[0][0] if ivs else 0)
            hi.append(ivs[-1][1] if ivs else 0)
            size.append(sum(b - a + 1 for a, b in ivs))
        dtype = np.int64 if max(map(abs, lo + hi + size)) < _SAFE else object
        lo, hi, size = np.array(lo, dtype=dtype), np.array(hi, dtype=dtype), np.array(size, dtype=dtype)
    sets = (lambda o, fams=fams: _positions_of(fams, o)) if keep else None
    return AxisCount(lo, hi, size, 0, out_size, sets)


def _interval_pass(graph, axis, keep_sets, limit=MAX_INTERVAL_OPS):
    """Enumerate every node on one axis with sets as interval lists: a node's sets are computed
    for one period of its outputs (from its parent's, through its index map) and shifted for the
    others, so the work is linear in the nodes and in the intervals, not in the positions."""
    nodes = graph.nodes
    budget = _Budget(limit)
    wanted = {o for _, o in graph.outputs}
    consumers = [0] * len(nodes)
    for node in nodes[1:]:
        for p in node.parents:
            consumers[p] += 1
    fams = {0: [_Family(1, 1, (((0, 0),),))]}
    reads = {}
    out = {}
    for i, node in enumerate(nodes):
        if i:
            budget.where = (layer_label(node.layer, node.index) if node.layer is not None and node.index >= 0
                            else f"node {node.label!r}") + f" on axis {axis}"
            if node.maps is None:
                parts = []
                for p, b in zip(node.parents, node.broadcast):
                    if b:  # every output reads position 0
                        parts.append(_Family(1, 0, (tuple(_set_at(fams[p], 0)),)))
                    else:
                        parts.extend(fams[p])
                fams[i] = _normalize(parts, budget)
            else:
                m = node.maps[axis]
                try:
                    r = reads.get(m)
                except TypeError:  # an unhashable map
                    r = None
                if r is None:
                    r = _Reads(m)
                    try:
                        reads[m] = r
                    except TypeError:
                        pass
                fams[i] = _through(fams[node.parents[0]], r, budget)
            for p in node.parents:
                consumers[p] -= 1
                if consumers[p] == 0:
                    del fams[p]
        if (i and node.index >= 0) or i in wanted:
            out[i] = _read_off(fams[i], graph.count(node, axis), node.sizes[axis] if node.sizes else None,
                               keep_sets, budget)
        if i and consumers[i] == 0:
            del fams[i]
    return out


# --------------------------------------------------------------------------- results
class AxisCount:
    """What enumeration found on one axis for one layer (every value a Python int or Fraction).

    ``lo[o]``/``hi[o]`` bound the dependency set of output ``o`` (``o = 0 .. len(lo) - 1``);
    ``size[o]`` is the number of input positions in it (fewer than ``hi - lo + 1`` when dilation
    leaves holes).
    """

    def __init__(self, lo, hi, size, base, out_size, sets=None):
        self.lo, self.hi, self.size = lo, hi, size
        self.out_size = out_size
        self._base = base
        self._sets = sets
        nonempty = size > 0
        widths = np.where(nonempty, hi - lo + 1, 0)
        self.rf = int(widths.max())
        self.rf_min = int(widths.min())
        self.period = _period(lo, hi, nonempty)
        self.start = int(lo[0]) if nonempty[0] else None
        if self.period is None or self.start is None or not nonempty[self.period]:
            self.jump = None
        else:
            self.jump = _num(Fraction(int(lo[self.period] - lo[0]), self.period))
        self.center = None if self.start is None else _num(Fraction(int(lo[0] + hi[0]), 2))

    @classmethod
    def from_sets(cls, block, base, out_size, keep):
        size = block.sum(axis=1)
        width = block.shape[1]
        first = block.argmax(axis=1) + base
        last = width - 1 - block[:, ::-1].argmax(axis=1) + base
        return cls(first, last, size, base, out_size, block.copy() if keep else None)

    def positions(self, o):
        """The dependency set of output ``o`` (sorted input positions); needs ``keep_sets``."""
        if self._sets is None:
            raise RfsymError("dependency sets were not kept; pass keep_sets=True")
        if not 0 <= o < len(self.lo):
            raise RfsymError(f"output {o} was not enumerated (0 .. {len(self.lo) - 1})")
        if callable(self._sets):  # the interval method: the set rebuilt from its intervals
            return self._sets(int(o))
        return np.flatnonzero(self._sets[o]) + self._base

    def __repr__(self):
        return (f"AxisCount(rf={self.rf}, rf_min={self.rf_min}, jump={self.jump}, start={self.start}, "
                f"period={self.period}, out_size={self.out_size})")


def _num(f):
    return f.numerator if f.denominator == 1 else f


def _period(lo, hi, nonempty):
    n = len(lo)
    for p in range(1, n // 2 + 1):
        if nonempty[0] != nonempty[p] or not np.array_equal(nonempty[p:], nonempty[:-p]):
            continue
        sel = nonempty[p:] & nonempty[:-p]
        if not sel.any():
            continue
        shift = (lo[p:] - lo[:-p])[sel]
        if np.all(shift == shift[0]) and np.all((hi[p:] - hi[:-p])[sel] == shift[0]):
            return p
    return None


_FIELDS = ("rf", "rf_min", "jump", "start", "center", "period", "out_size")


class _PerAxis:
    """Per-axis rule of the engine: one value when all axes agree, else a tuple."""

    def axes(self, name):
        """The per-axis tuple of a quantity."""
        if name not in _FIELDS:
            raise RfsymError(f"unknown quantity {name!r}; one of {', '.join(_FIELDS)}")
        return tuple(getattr(a, name) for a in self.per_axis)

    def _one(self, name):
        vals = self.axes(name)
        return vals[0] if all(v == vals[0] for v in vals) else vals


for _f in _FIELDS:
    setattr(_PerAxis, _f, property(lambda self, _f=_f: self._one(_f)))


class EnumeratedLayer(_PerAxis):
    """Enumerated quantities of one layer's output (same order as ``analyze(...).layers``)."""

    def __init__(self, node, per_axis):
        self.index = node.index
        self.name = node.label
        self.type = node.type
        self.layer = node.layer
        self.per_axis = per_axis

    def positions(self, output_index, axis=0):
        """Input positions (on ``axis``) of the dependency set of ``output_index``."""
        return self.per_axis[axis].positions(output_index)

    def __repr__(self):
        return f"<EnumeratedLayer {self.index} {self.type} {self.name!r}: rf={self.rf}, jump={self.jump}>"


class Enumeration(_PerAxis):
    """Every node enumerated (``layers``, in the order of ``analyze(...).layers``); ``outputs``
    maps each output's name to its :class:`EnumeratedLayer`, and the attributes of the object
    itself describe the (first) output."""

    def __init__(self, graph, layers, outputs, features=None, methods=None):
        self.ndim = graph.ndim
        #: per axis, how the sets were enumerated: ``"intervals"``, or ``"dense"`` (asked for, or
        #: the interval method's fallback on an index map whose declared period does not hold)
        self.methods = methods
        self.input_size = graph.input_sizes
        self.layers = layers
        self.outputs = outputs
        self.features = features
        first = next(iter(outputs.values()), None)
        self.per_axis = None if first is None else first.per_axis

    def layer(self, name):
        """The enumerated node called ``name`` (the last one of that name)."""
        for layer in reversed(self.layers):
            if layer.name == name:
                return layer
        raise RfsymError(f"no enumerated layer named {name!r}")

    def __repr__(self):
        if not self.layers:
            return "<Enumeration of an empty network>"
        return (f"<Enumeration {len(self.layers)} layers: rf={self.rf}, jump={self.jump}, "
                f"start={self.start}, out_size={self.out_size}>")


def enumerate_network(net: Any, input_size: Any = None, *, ndim: int | None = None, keep_sets: bool = False,
                      positions: Any = POSITIONS, strict: bool = False, method: str = "intervals",
                      max_interval_ops: int = MAX_INTERVAL_OPS) -> Enumeration:
    """Enumerate the dependency sets of every node's outputs and count rf, jump, start, centre,
    period and out_size from them (see the module docstring).

    Outputs ``0 .. min(out_size, positions) - 1`` of every node are enumerated
    (``positions="all"``: every real output), and always at least two full periods, so every
    output phase is seen. Each node's sets are computed once, from its inputs' sets, however
    many nodes read it (fan-out), and a merge unites its inputs' sets (fan-in). With intervals,
    work and memory grow with the nodes times the intervals of their sets (plus the enumerated
    positions read off); dense, with the nodes times the positions times the span of the input.

    Args:
        net: an rfsym layer (a Sequential, a Graph with any fan-out, fan-in and outputs).
        input_size: an int or per-axis tuple of ints (None: sizes unknown; global layers refused).
        ndim: the number of spatial axes.
        keep_sets: keep the sets (``layers[i].positions(o, axis)``).
        positions: outputs enumerated per node (an int, or ``"all"``).
        strict: norms whose statistics span positions read every position (as
            ``analyze(..., strict=True)``).
        method: ``"intervals"`` (sets as interval lists, one period of every node; linear in
            depth) or ``"dense"`` (bit rows of every enumerated output; see the module docstring).
        max_interval_ops: the interval method's budget of interval operations.

    Returns:
        The :class:`Enumeration`.

    Raises:
        LayerError: a symbolic or invalid parameter, a layer without an index map.
        GraphError: merged inputs of different sizes.
        SizeError: an input too small for some layer.
        RfsymError: the work would exceed the method's budget.

    >>> from rfsym import Conv, MaxPool, Sequential
    >>> e = enumerate_network(Sequential(Conv(3, dilation=2), MaxPool(2, ceil_mode=True)), 10, ndim=1,
    ...                       keep_sets=True)
    >>> e.layers[0].positions(0).tolist()
    [0, 2, 4]
    >>> e.rf, e.jump, e.out_size
    (6, 2, 3)
    """
    if positions != "all" and not (isinstance(positions, int) and positions >= 1):
        raise RfsymError(f"positions must be a positive int or 'all', got {positions!r}")
    if method not in METHODS:
        raise RfsymError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    graph = _Graph(net, input_size, ndim, strict)
    graph.positions = positions
    done = {}
    per_axis, methods = [], []
    for axis in range(graph.ndim):
        sig = _signature(graph, axis) if graph.ndim > 1 else None  # axes alike: enumerated once
        if sig is not None and sig in done and not keep_sets:
            per_axis.append(done[sig][0])
            methods.append(done[sig][1])
            continue
        res, used = {}, method
        if len(graph.nodes) > 1 or graph.outputs[0][1] == 0:
            res = None
            if method == "intervals":
                try:
                    res = _interval_pass(graph, axis, keep_sets, max_interval_ops)
                except _NotPeriodic:  # an index map whose period does not hold: count densely
                    res, used = None, "dense"
            if res is None:
                res = _axis_pass(graph, axis, keep_sets)
        if sig is not None:
            done[sig] = (res, used)
        per_axis.append(res)
        methods.append(used)

    def enumerated(i):
        return EnumeratedLayer(graph.nodes[i], tuple(per_axis[a][i] for a in range(graph.ndim)))

    layers = [enumerated(i) for i in graph.reported]
    by_id = dict(zip(graph.reported, layers))
    outputs = {name: by_id[i] if i in by_id else enumerated(i) for name, i in graph.outputs}
    features = None if graph.features is None else by_id[graph.features]
    return Enumeration(graph, layers, outputs, features, tuple(methods))


def dependency_set(net, input_size, output_index, *, layer=None, axis=0, ndim=None):
    """Sorted input positions (unbounded grid, padding positions included) on ``axis`` that
    influence output ``output_index`` of ``layer`` (default: the network output).

    >>> from rfsym import Conv
    >>> dependency_set(Conv(3, dilation=3, padding=3), 9, 0, ndim=1).tolist()
    [-3, 0, 3]
    """
    top = max(output_index) if isinstance(output_index, (tuple, list)) else output_index
    e = enumerate_network(net, input_size, ndim=ndim, keep_sets=True, positions=int(top) + 1)
    target = e.layers[-1 if layer is None else layer]
    return target.positions(output_index, axis)


# --------------------------------------------------------------------------- dependency mask
def _target(graph, layer):
    """The internal id of ``layer``: a node index, a node name, or None (the first output)."""
    if not graph.reported:
        raise RfsymError("the network has no layers")
    if layer is None:
        return graph.outputs[0][1]
    if isinstance(layer, str):
        for i in reversed(graph.reported):
            if graph.nodes[i].label == layer:
                return i
        raise RfsymError(f"no layer named {layer!r} in this network")
    try:
        return graph.reported[layer]
    except (IndexError, TypeError):
        raise RfsymError(f"layer {layer} does not exist (the network has {len(graph.reported)} layers)") from None


def _edge_matrix(m, out_range, in_range):
    """Counts of taps from outputs in ``out_range`` to inputs in ``in_range`` (a dense matrix)."""
    lo, hi = out_range
    plo, phi = in_range
    pos, valid = m.taps(np.arange(lo, hi, dtype=np.int64))
    pos = np.asarray(pos, dtype=np.int64)
    keep = (pos >= plo) & (pos < phi)
    if valid is not None:
        keep &= np.asarray(valid, dtype=bool)
    rows = np.broadcast_to(np.arange(hi - lo)[:, None], pos.shape)[keep]
    cols = pos[keep] - plo
    width = phi - plo
    return np.bincount(rows * width + cols, minlength=(hi - lo) * width).reshape(hi - lo, width)


def dependency_mask(net, input_size, output_index, *, layer=None, counts=False,
                    through_padding=False, ndim=None):
    """Which real input pixels (``0 .. n - 1`` on every axis) feed output ``output_index`` of
    ``layer`` (a node index as in ``analyze(...).layers``, a node name, or None: the network's
    first output): a boolean numpy array of the input's shape.

    A pixel feeds an output when a path of layer taps joins them through **real** positions
    (zero padding carries no signal; this is what a gradient shows). ``through_padding=True``
    instead follows the unbounded-grid convention of the receptive field, so a padding position of
    an intermediate layer passes on what its index map reads. ``counts=True`` returns the number
    of such paths through each pixel (one per kernel tap and layer; channels are not counted) as
    integers, exact at any size. On a DAG the paths through every branch add up (a node read by
    several merges passes on each reader's count), and a broadcast input (size 1 in an
    ``"add"``/``"mul"``) receives the count of every output position.

    >>> from rfsym import Conv, Sequential
    >>> net = Sequential(Conv(3, padding=1), Conv(3, padding=1))
    >>> bool(dependency_mask(net, 5, (2, 2)).all())
    True
    >>> dependency_mask(net, 5, (2, 2), counts=True)
    array([[1, 2, 3, 2, 1],
           [2, 4, 6, 4, 2],
           [3, 6, 9, 6, 3],
           [2, 4, 6, 4, 2],
           [1, 2, 3, 2, 1]])
    """
    graph = _Graph(net, input_size, ndim)
    if graph.input_sizes is None:
        raise RfsymError("dependency_mask needs the input size")
    t = _target(graph, layer)
    sizes = graph.nodes[t].sizes
    idx = tuple(output_index) if isinstance(output_index, (tuple, list)) else (output_index,) * graph.ndim
    if len(idx) != graph.ndim:
        raise RfsymError(f"output_index has {len(idx)} axes but the network has {graph.ndim}")
    for a, (i, n) in enumerate(zip(idx, sizes)):
        if not (isinstance(i, numbers.Integral) and 0 <= i < n):
            raise RfsymError(f"output_index {tuple(idx)} is outside the output (size {tuple(sizes)}) on axis {a}")
    idx = tuple(int(i) for i in idx)  # numpy or sympy integers index as plain ints
    ranges = _mask_ranges(graph, t, idx, through_padding)
    weights = _propagate(graph, t, idx, ranges, float)
    if counts and weights is None:
        weights = _propagate(graph, t, idx, ranges, object)
    elif weights is None:  # only the support matters: float overflow to inf is still > 0
        weights = _propagate(graph, t, idx, ranges, float, check=False)
    full = np.zeros(graph.input_sizes, dtype=weights.dtype)
    src, dst = [], []
    for (lo, hi), n in zip(ranges[0], graph.input_sizes):
        a, b = max(lo, 0), min(hi, n)
        src.append(slice(a - lo, max(b - lo, a - lo)))
        dst.append(slice(a, max(a, b)))
    full[tuple(dst)] = weights[tuple(src)]
    if not counts:
        return full > 0
    return full.astype(np.int64) if full.dtype != object else full


def _mask_ranges(graph, t, idx, through_padding):
    """Per node, per axis, the positions that may carry weight."""
    nodes = graph.nodes
    if not through_padding:
        return [None if n.sizes is None else tuple((0, s) for s in n.sizes) for n in nodes]
    ranges = [None] * len(nodes)
    ranges[t] = tuple((i, i + 1) for i in idx)
    for i in range(t, 0, -1):
        if ranges[i] is None:
            continue
        node = nodes[i]
        for j, p in enumerate(node.parents):
            new = []
            for a in range(graph.ndim):
                lo, hi = ranges[i][a]
                if node.maps is None and node.broadcast[j]:
                    rlo, rhi = 0, 1
                elif node.maps is None:
                    rlo, rhi = lo, hi
                else:
                    pos, valid = node.maps[a].taps(np.arange(lo, hi, dtype=np.int64))
                    real = np.asarray(pos) if valid is None else np.asarray(pos)[np.asarray(valid, dtype=bool)]
                    rlo, rhi = (int(real.min()), int(real.max()) + 1) if real.size else (lo, lo)
                if ranges[p] is not None:
                    rlo, rhi = min(rlo, ranges[p][a][0]), max(rhi, ranges[p][a][1])
                new.append((rlo, rhi))
            ranges[p] = tuple(new)
    return ranges


def _propagate(graph, t, idx, ranges, dtype, check=True):
    """Push path counts from the target output back to the input; None when ``float`` would
    lose exactness (counts of 2**53 or more)."""
    nodes = graph.nodes
    weights = [None] * len(nodes)
    w = np.zeros(tuple(hi - lo for lo, hi in ranges[t]), dtype=dtype)
    w[tuple(i - lo for i, (lo, _) in zip(idx, ranges[t]))] = 1
    weights[t] = w
    limit = float(2 ** 53)
    for i in range(t, 0, -1):
        w = weights[i]
        if w is None:
            continue
        weights[i] = None
        node = nodes[i]
        for j, p in enumerate(node.parents):
            if node.maps is None and node.broadcast[j]:  # every output reads position 0
                contrib = np.full((1,) * graph.ndim, w.sum(), dtype=dtype)
                offset = tuple(-plo for plo, _ in ranges[p])
            elif node.maps is None:
                contrib = w
                offset = tuple(lo - plo for (lo, _), (plo, _) in zip(ranges[i], ranges[p]))
            else:
                contrib = w
                for a in range(graph.ndim):
                    mat = _edge_matrix(node.maps[a], ranges[i][a], ranges[p][a])
                    contrib = np.tensordot(contrib, mat.astype(dtype), axes=([0], [0]))
                offset = (0,) * graph.ndim
            if weights[p] is None:
                weights[p] = np.zeros(tuple(hi - lo for lo, hi in ranges[p]), dtype=dtype)
            sl = tuple(slice(o, o + s) for o, s in zip(offset, contrib.shape))
            weights[p][sl] += contrib
            if dtype is float and check and weights[p].size and weights[p].max() >= limit:
                return None
    return weights[0] if weights[0] is not None else np.zeros(
        tuple(hi - lo for lo, hi in ranges[0]), dtype=dtype)
