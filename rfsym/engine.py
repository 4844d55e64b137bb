r"""The derivation engine: one pass over a network gives every quantity of every layer.

Conventions (per spatial axis; coordinates are indices of the network input, padding
positions included, so they may be negative or beyond the input):

* ``rf`` — receptive field size: the number of input positions from the first to the last one
  that output 0 of the layer can read (Araujo, Norris, Sim, "Computing Receptive Fields of
  Convolutional Neural Networks", Distill 2019). Dilation leaves holes inside; they count.
  Where it depends on the output position (transposed convolution, upsampling, uneven adaptive
  pooling) ``rf`` is the maximum over positions and ``rf_min`` the minimum.
* ``jump`` — effective stride: input distance between adjacent outputs (rational when the
  output grid is finer than the input).
* ``start`` — input coordinate of the first position in the receptive field of output 0;
  negative inside the padding. Araujo's *effective padding* is ``-start``.
* ``center`` — ``start + (rf - 1)/2``, the centre of output 0's receptive field; output ``x``
  is centred at ``center + x·jump``.
* ``out_size`` — output size for the given input size: ``floor((n + pl + pr - κ)/s) + 1`` with
  ``κ = d(k - 1) + 1`` (PyTorch), pooling's ``ceil_mode`` rule, TensorFlow SAME ``ceil(n/s)``.
  None when no input size is given; symbolic when it is a symbol.
* ``params`` — trainable parameters: convolution ``(c_in/groups)·c_out·Πk + c_out`` (bias),
  linear ``in·out + out``, BatchNorm ``2C``. None when channels are unknown.
* ``macs`` — multiply–accumulates of convolutions and linear layers only (torchvision's
  convention): ``Π out_size · c_out · (c_in/groups) · Πk``; pools, BatchNorm, activations and
  additions count 0. ``flops = 2·macs``. None without an input size.

Per-axis rule: every per-axis attribute (``rf``, ``jump``, ``start``, ``center``, ``out_size``,
...) is **one value when all axes agree and a tuple (one item per axis) otherwise**;
``axes(name)`` always returns the tuple.

Closed forms come out exact: for convolutions with kernel ``k_i``, stride ``s_i``
``rf = 1 + Σ_i (κ_i - 1) Π_{j<i} s_j``. Where a value depends on a condition the engine keeps
it (``Piecewise``, ``Max``, ``floor``) instead of guessing.

>>> from rfsym import analyze, Conv, Sequential, symbols
>>> r = analyze(Sequential(Conv(3, padding=1), Conv(3, padding=1)), input_size=5)
>>> r.rf, r.jump, r.start, r.center, r.out_size
(5, 1, -2, 0, 5)
>>> k, s = symbols("k s")
>>> analyze(Sequential(Conv(k, stride=s), Conv(k))).rf
k*s + k - s
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import numbers
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from . import layers as L
from .errors import LayerError, RfsymError, SizeError, layer_label
from .maps import IDENTITY, AxisMap, compose, power
from .ops import ExactOps, NumOps, SymOps, checked, exact_values
from .symbols import exceeds

__all__ = ["analyze", "Result", "LayerResult", "register_layer", "register_block"]

_QUANTITIES = ("rf", "rf_min", "jump", "start", "center", "period", "out_size")


# --------------------------------------------------------------------------- state
@dataclass(frozen=True)
class State:
    """What flows between layers: per-axis sizes (None when unknown) and the channel count."""

    sizes: tuple | None
    channels: Any = None
    flattened: bool = False


@dataclass
class LeafOut:
    """What a layer rule returns."""

    maps: tuple
    state: State
    params: Any = 0
    macs: Any = 0


class Context:
    """Backend, numeric values and bookkeeping shared by every rule of one analysis."""

    def __init__(self, ops, ndim, values=None):
        self.ops = ops
        self.ndim = ndim
        self.values = values or {}
        self.where = ""

    def val(self, expr, param=None, minimum=None):
        """The value of a layer parameter in this backend (checked when numeric)."""
        if expr is None:
            return None
        if self.ops.symbolic:
            return expr
        if isinstance(expr, numbers.Integral):
            out = int(expr)
        elif isinstance(expr, sp.Basic) and expr.is_Integer:
            out = int(expr)
        else:
            try:
                out = _numeric(expr, self.values)
            except RfsymError as err:
                raise LayerError(f"{param} = {expr}: {err}", where=self.where, param=param) from None
        if minimum is not None and (out < minimum if isinstance(out, int) else np.any(np.asarray(out) < minimum)):
            bad = np.asarray(out)[np.asarray(out) < minimum].flat[0]
            what = "a positive integer" if minimum == 1 else "a nonnegative integer"
            raise LayerError(f"{param} must be {what}, got {bad} for some of the given values",
                             where=self.where, param=param)
        return out


def _numeric(expr, values):
    if isinstance(expr, sp.Symbol):
        if expr.name not in values:
            raise RfsymError(f"no value given for symbol {expr.name}")
        return _as_int_array(values[expr.name], expr)
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    args = []
    for s in syms:
        if s.name not in values:
            raise RfsymError(f"no value given for symbol {s.name} (needed by {expr})")
        args.append(values[s.name])
    out = _lambdified(expr, tuple(syms))(*args)
    if np.asarray(out).dtype.kind in "fO" and any(np.asarray(a).dtype == object or np.any(
            np.abs(np.asarray(a, dtype=float)) >= 2.0**52) for a in args):
        out = exact_values(expr, tuple(syms), args)  # floats would not be exact
    return _as_int_array(out, expr)


def _as_int_array(out, expr):
    arr = np.asarray(out)
    if arr.dtype == object:
        bad = [v for v in arr.flat if not isinstance(v, (int, np.integer))]
        if bad:
            raise RfsymError(f"{expr} must be an integer, got {bad[0]} for some of the given values")
        return checked(arr)
    if arr.dtype.kind == "f":
        rounded = np.rint(arr)
        if not np.all(rounded == arr):
            bad = arr[rounded != arr].flat[0]
            raise RfsymError(f"{expr} must be an integer, got {bad} for some of the given values")
        arr = rounded
    return checked(arr)


@functools.lru_cache(maxsize=4096)
def _lambdified(expr, syms):
    return sp.lambdify(syms, expr, modules="numpy")


# --------------------------------------------------------------------------- rules
_RULES: dict = {}
_BLOCKS: dict = {}


def register_layer(cls):
    """Decorator: register ``rule(layer, state, ctx) -> LeafOut`` for a leaf layer class."""

    def deco(fn):
        _RULES[cls] = fn
        return fn

    return deco


def register_block(cls):
    """Decorator: register a graph layer (a layer holding branches).

    The function receives ``(layer, state, ctx, walk)`` where ``walk(seq, state, label)``
    analyses one branch and returns ``(state, branch)``; it returns ``(state, combine, merge_type,
    params, macs)`` where ``combine(branch_composites, ops)`` gives the block's per-axis maps, and
    ``merge_type`` names the merge node listed after the branches (None for no merge node).
    An optional sixth item, a dict of zero-argument callables, gives the merge node's lazily
    computed extra attributes (``"aligned"``, ``"branch_centers"``; see :mod:`rfsym.graph`).
    """

    def deco(fn):
        _BLOCKS[cls] = fn
        return fn

    return deco


def _rule_for(layer):
    for cls in type(layer).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None


def _block_for(layer):
    for cls in type(layer).__mro__:
        if cls in _BLOCKS:
            return _BLOCKS[cls]
    return None


def _check_size(out, ctx, axis, n):
    ops = ctx.ops
    if ops.symbolic:
        c = ops.concrete(out)
        if c is not None and c < 1:
            raise SizeError(f"{ctx.where}: output size must be at least 1, got {c} on axis {axis} "
                            f"(this layer's input size is {n}); give a larger input_size or more padding")
    elif np.any(np.asarray(out) < 1):
        arr, ns = np.broadcast_arrays(np.asarray(out), np.asarray(n))
        i = np.flatnonzero(arr < 1)[0]
        raise SizeError(f"{ctx.where}: output size must be at least 1, got {arr.flat[i]} on axis {axis} "
                        f"for some of the given values (this layer's input size {ns.flat[i]} there); "
                        "give a larger input_size or more padding")


def _tf_same_pad(n, w, ops, ctx):
    if n is None:
        raise LayerError("padding='tf_same' depends on the input size; pass input_size "
                         "(a number or a symbol) to analyze", where=ctx.where, param="padding")
    s, k, d = ctx.val(w.stride), ctx.val(w.kernel), ctx.val(w.dilation)
    if ops.concrete(d * (k - 1)) == 0:
        return 0, 0  # a one-tap window never pads: (ceil(n/s) - 1)·s + 1 - n <= 0
    out = ops.ceildiv(n, s)
    total = ops.max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    left = ops.floordiv(total, 2)
    return left, total - left


@register_layer(L._Windowed)
def _windowed(layer, state, ctx):
    ops = ctx.ops
    maps, sizes = [], []
    kprod = 1
    for axis, w in enumerate(layer.windows(ctx.ndim)):
        k = ctx.val(w.kernel, "kernel_size", 1)
        s = ctx.val(w.stride, "stride", 1)
        d = ctx.val(w.dilation, "dilation", 1)
        kprod = kprod * k
        n = state.sizes[axis] if state.sizes else None
        if w.pad == "tf_same":
            pl, pr = _tf_same_pad(n, w, ops, ctx)
        else:
            pl, pr = ctx.val(w.pad[0], "padding", 0), ctx.val(w.pad[1], "padding", 0)
        extent = d * (k - 1) + 1
        maps.append(AxisMap.affine(-pl, s, extent, step=d))
        if n is not None:
            if w.pad == "tf_same":
                out = ops.ceildiv(n, s)
            elif w.ceil:
                c = ops.ceildiv(n + pl + pr - extent, s) + 1
                out = ops.where(ops.ge((c - 1) * s, n + pl), c - 1, c)
            else:
                out = ops.floordiv(n + pl + pr - extent, s) + 1
            _check_size(out, ctx, axis, n)
            sizes.append(out)
    sizes = tuple(sizes) if state.sizes else None
    if not isinstance(layer, L.Conv):
        return LeafOut(tuple(maps), State(sizes, state.channels))
    cout, params, macs = conv_counts(layer, state, ctx, kprod, sizes)
    return LeafOut(tuple(maps), State(sizes, cout), params, macs)


def conv_counts(layer, state, ctx, kprod, positions_of):
    """``(out_channels, params, macs)`` of a (transposed) convolution: weights
    ``c_in·c_out·Πk / groups`` plus biases; MACs are the weights times the positions of
    ``positions_of`` (per-axis sizes: the output's for a convolution, the input's for a transposed
    one), None where channels or sizes are unknown."""
    ops = ctx.ops
    groups = ctx.val(layer.groups, "groups", 1)
    cin = _channels(ctx, layer.in_channels, state.channels, "in_channels")
    cout = ctx.val(layer.out_channels, "out_channels", 1)
    if cin is None or cout is None:
        return cout, None, None
    weights = cin * cout * kprod
    per = ops.floordiv(weights, groups) if not ops.symbolic else weights / groups
    params = per + (cout if layer.bias else 0)
    macs = None if positions_of is None else _prod(positions_of) * per
    return cout, params, macs


def _prod(xs):
    out = 1
    for x in xs:
        out = out * x
    return out


def _channels(ctx, given, incoming, param):
    """Channel count a layer reads: its own argument, else what the previous layer gives."""
    if given is None:
        return incoming
    value = ctx.val(given, param, 1)
    if incoming is not None:
        a, b = ctx.ops.concrete(value), ctx.ops.concrete(incoming)
        if a is not None and b is not None and a != b:
            raise LayerError(f"{param}={a} but the previous layer gives {b} channels; use {param}={b}, "
                             "or leave it out to take it from the previous layer",
                             where=ctx.where, param=param)
    return value


@register_layer(L.Elementwise)
def _elementwise(layer, state, ctx):
    return LeafOut((IDENTITY,) * ctx.ndim, state)


@register_layer(L.Flatten)
def _flatten(layer, state, ctx):
    return LeafOut((IDENTITY,) * ctx.ndim, State(state.sizes, state.channels, flattened=True))


@register_layer(L.BatchNorm)
def _batchnorm(layer, state, ctx):
    c = _channels(ctx, layer.num_features, state.channels, "num_features")
    params = 0 if not layer.affine else None if c is None else 2 * c
    return LeafOut((IDENTITY,) * ctx.ndim, State(state.sizes, c, state.flattened), params, 0)


def _global_map(n):
    """Every output position reads the whole input: one window of size n (``n`` may be None)."""
    if n is None:
        return AxisMap.affine(0, sp.oo, sp.oo)
    return AxisMap.affine(0, n, n)


@register_layer(L.AdaptiveAvgPool)
def _adaptive(layer, state, ctx):
    ops = ctx.ops
    ms = layer.output_size if isinstance(layer.output_size, tuple) else (layer.output_size,) * ctx.ndim
    if len(ms) != ctx.ndim:
        raise LayerError(f"output_size has {len(ms)} axes but the network has {ctx.ndim}",
                         where=ctx.where, param="output_size")
    maps, sizes = [], []
    for axis, m in enumerate(ms):
        n = state.sizes[axis] if state.sizes else None
        mm = ctx.val(m, "output_size", 1)
        if ops.concrete(mm) == 1:
            maps.append(_global_map(n))
        elif n is None:
            raise LayerError("adaptive pooling to more than one output needs the input size; "
                             "pass input_size to analyze", where=ctx.where, param="output_size")
        else:
            nc, mc = ops.concrete(n), ops.concrete(mm)
            if nc is not None and mc is not None:
                starts = tuple((i * nc) // mc for i in range(mc))
                ends = tuple(-((-(i + 1) * nc) // mc) for i in range(mc))
                from .maps import _reduce
                maps.append(_reduce(AxisMap(mc, nc, starts, tuple(e - b for b, e in zip(starts, ends))), ops))
            elif ops.symbolic and (sp.sympify(n) / mm).is_integer:
                maps.append(AxisMap.affine(0, n / mm, n / mm))
            else:
                raise LayerError(f"adaptive pooling of a symbolic size {n} to {mm} outputs needs "
                                 f"{mm} to divide {n}", where=ctx.where, param="output_size")
        sizes.append(mm)
    return LeafOut(tuple(maps), State(tuple(sizes) if state.sizes else None, state.channels))


@register_layer(L.Linear)
def _linear(layer, state, ctx):
    ops = ctx.ops
    fin = ctx.val(layer.in_features, "in_features", 1)
    fout = ctx.val(layer.out_features, "out_features", 1)
    if state.sizes is not None and state.channels is not None:
        expected = state.channels * _prod(state.sizes)
        a, b = ops.concrete(fin), ops.concrete(expected)
        if a is not None and b is not None and a != b:
            raise LayerError(f"in_features={a} but the input flattens to {b} features "
                             f"({state.channels} channels x sizes {tuple(state.sizes)})",
                             where=ctx.where, param="in_features")
    maps = tuple(_global_map(n) for n in (state.sizes or (None,) * ctx.ndim))
    params = fin * fout + (fout if layer.bias else 0)
    sizes = (1,) * ctx.ndim if state.sizes is not None else None
    return LeafOut(maps, State(sizes, fout, True), params, fin * fout)


# --------------------------------------------------------------------------- structure
class _Chain:
    """A Sequential's items with cached balanced compositions (prefixes in O(log L)).

    Runs of at least ``RUN`` consecutive layers with identical index maps are composed in closed
    form (:func:`~rfsym.maps.power`), so 10,000 copies of one symbolic layer give
    ``1 + (k - 1)·(s**n - 1)/(s - 1)`` instead of a 10,000-term sum.
    """

    RUN = 16

    def __init__(self, ops, base):
        self.ops = ops
        self.items = []  # each: a callable returning per-axis maps
        self.keys = []  # hashable maps of leaf items (None: never grouped)
        self._base = base  # callable -> per-axis maps at the chain's input
        self._seg = {}
        self._groups = None
        self._prefix = {}

    def add(self, fn, key=None):
        self.items.append(_Once(fn))
        self.keys.append(key)
        self._groups = None
        self._prefix = {}

    def groups(self):
        """(first item, count) of each group: a run of >= RUN identical leaves, or one item."""
        if self._groups is None:
            groups, i, n = [], 0, len(self.items)
            while i < n:
                j = i + 1
                if self.keys[i] is not None:
                    while j < n and self.keys[j] == self.keys[i]:
                        j += 1
                if j - i >= self.RUN:
                    groups.append((i, j - i))
                else:
                    groups.extend((t, 1) for t in range(i, j))
                i = j
            self._groups = groups
            self._firsts = [g[0] for g in groups]
            self._seg = {}
        return self._groups

    def _group_maps(self, g, count=None):
        first, n = self.groups()[g]
        maps = self.items[first]()
        count = n if count is None else count
        if count == 1:
            return maps
        return tuple(power(m, count, self.ops) for m in maps)

    def seg(self, lo, hi):
        """Composition of groups lo..hi-1."""
        key = (lo, hi)
        if key not in self._seg:
            if hi - lo == 1:
                self._seg[key] = self._group_maps(lo)
            else:
                mid = (lo + hi) // 2
                self._seg[key] = _compose_axes(self.seg(lo, mid), self.seg(mid, hi), self.ops)
        return self._seg[key]

    def _group_prefix(self, t, lo, hi):
        """Composition of groups lo..t-1 within the segment [lo, hi) (t > lo)."""
        if t == hi:
            return self.seg(lo, hi)
        mid = (lo + hi) // 2
        if t <= mid:
            return self._group_prefix(t, lo, mid)
        return _compose_axes(self.seg(lo, mid), self._group_prefix(t, mid, hi), self.ops)

    def local_prefix(self, t):
        """Composition of items[0:t] (None for t == 0)."""
        if t == 0:
            return None
        groups = self.groups()
        g = bisect.bisect_right(self._firsts, t - 1) - 1
        first, count = groups[g]
        before = self._group_prefix(g, 0, len(groups)) if g > 0 else None
        if t - first == count:
            return self._group_prefix(g + 1, 0, len(groups))
        return _compose_axes(before, self._group_maps(g, t - first), self.ops)

    def prefix(self, t):
        """Maps from the network input to the output of items[t - 1] (cached: the layers of a
        nested block share their parents' prefix)."""
        if t not in self._prefix:
            base = self._base()
            local = self.local_prefix(t)
            if local is None:
                self._prefix[t] = base
            else:
                self._prefix[t] = local if base is None else _compose_axes(base, local, self.ops)
        return self._prefix[t]

    def full(self):
        return self.seg(0, len(self.groups())) if self.items else None


class _Once:
    """A zero-argument callable evaluated once; then it drops the function. Items of a chain
    refer to nested chains, which refer back to their parent for prefixes: releasing the
    function after its first call breaks that reference cycle, so the (possibly huge) arrays of
    an evaluated result are freed as soon as the result is dropped, not at the next full
    garbage collection."""

    __slots__ = ("fn", "value")

    def __init__(self, fn):
        self.fn = fn

    def __call__(self):
        if self.fn is not None:
            self.value, self.fn = self.fn(), None
        return self.value


def _hashable(maps):
    try:
        hash(maps)
    except TypeError:
        return None
    return maps


def _compose_axes(lower, upper, ops):
    if lower is None:
        return upper
    if upper is None:
        return lower
    out = []
    for i, (a, b) in enumerate(zip(lower, upper)):
        if i and not ops.symbolic and _same_map(a, lower[i - 1]) and _same_map(b, upper[i - 1]):
            out.append(out[-1])  # square kernels: the axes agree, compose once (numeric backends)
        else:
            out.append(compose(a, b, ops))
    return tuple(out)


def _same_map(a, b) -> bool:
    """``a == b`` for maps of numbers; array fields count as equal only when identical."""
    if a is b:
        return True
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        xs, ys = (x, y) if isinstance(x, tuple) else ((x,), (y,))
        if len(xs) != len(ys):
            return False
        for u, v in zip(xs, ys):
            if u is not v and (isinstance(u, np.ndarray) or isinstance(v, np.ndarray) or u != v):
                return False
    return True


@dataclass
class _Node:
    index: int
    layer: Any
    name: str
    type: str
    chain: Any
    position: int
    in_sizes: Any
    out_sizes: Any
    in_channels: Any
    out_channels: Any
    params: Any
    macs: Any
    own: Any = None
    extra: dict = field(default_factory=dict)  # lazily computed attributes of merge nodes
    composite_cache: Any = field(default=None, repr=False)

    def composite(self):
        if self.composite_cache is None:
            self.composite_cache = self.chain.prefix(self.position + 1)
        return self.composite_cache


class _Builder:
    def __init__(self, ctx):
        self.ctx = ctx
        self.nodes: list[_Node] = []

    def where(self, layer, index):
        return layer_label(layer, index)

    def walk(self, seq, state, path, base):
        """Analyse a Sequential; returns (state, chain).

        Naming: a layer's name is its full path, ``parent.segment``, where the segment is the
        layer's own ``name`` or, without one, its index in the Sequential (torchvision's module
        paths: ``features.0``, ``layer4.2.conv3``). An empty name adds no segment.
        """
        chain = _Chain(self.ctx.ops, base)
        for i, layer in enumerate(seq.layers):
            label = _join(path, str(i) if layer.name is None else layer.name)
            state = self.item(layer, state, label, chain)
        return state, chain

    def item(self, layer, state, label, chain):
        ctx = self.ctx
        position = len(chain.items)
        prefix = functools.partial(chain.prefix, position)
        if isinstance(layer, L.Sequential):
            state, sub = self.walk(layer, state, label, prefix)
            chain.add(lambda sub=sub: sub.full() or (IDENTITY,) * ctx.ndim)
            return state
        block = _block_for(layer)
        if block is not None:
            def walk(seq, st, sublabel):
                # a branch's own name (possibly empty) replaces the block's default label
                own = getattr(seq, "name", None)
                return self.walk(seq, st, _join(label, sublabel if own is None else own), prefix)

            ctx.where = self.where(layer, len(self.nodes))
            try:
                out = block(layer, state, ctx, walk)
                out_state, combine, merge_type, params, macs = out[:5]
                extra = out[5] if len(out) > 5 else {}
            except LayerError as err:
                raise (err if err.where else err.located(ctx.where)) from None
            cache = {}

            def block_maps():
                if "m" not in cache:
                    cache["m"] = combine(ctx.ops)
                return cache["m"]

            chain.add(block_maps)
            if merge_type is not None:
                self.nodes.append(_Node(len(self.nodes), layer, label, merge_type, chain,
                                        position, state.sizes, out_state.sizes, state.channels,
                                        out_state.channels, params, macs, extra=extra))
            return out_state
        rule = _rule_for(layer)
        index = len(self.nodes)
        ctx.where = self.where(layer, index)
        if rule is None:
            raise LayerError(f"rfsym does not know how to analyse {type(layer).__name__}",
                             where=ctx.where)
        try:
            out = rule(layer, state, ctx)
        except LayerError as err:
            raise (err if err.where else err.located(ctx.where)) from None
        chain.add(lambda out=out: out.maps, _hashable(out.maps))
        in_ch = state.channels
        if in_ch is None:
            in_ch = ctx.val(getattr(layer, "in_channels", None) or getattr(layer, "num_features", None))
        self.nodes.append(_Node(index, layer, label, type(layer).__name__, chain,
                                position, state.sizes, out.state.sizes, in_ch,
                                out.state.channels, out.params, out.macs, own=out.maps))
        return out.state


def _join(path, segment):
    """``path.segment``, skipping empty parts."""
    return f"{path}.{segment}" if path and segment else (path or segment)


# --------------------------------------------------------------------------- results
def _tidy(value, ops):
    if ops is ExactOps:  # Python ints and Fractions of the fast path: sympy numbers, as SymOps gives
        if isinstance(value, int):
            return sp.Integer(value)
        if isinstance(value, Fraction):
            return sp.Rational(value.numerator, value.denominator)
        return value if value is None else sp.sympify(value)
    if not ops.symbolic:
        if isinstance(value, np.ndarray):
            return value
        return value
    value = sp.sympify(value)
    if value.free_symbols and not value.has(sp.Piecewise, sp.floor, sp.ceiling, sp.Max, sp.Min):
        if _small(value, 400):
            value = sp.expand(value)
            if isinstance(value, sp.Add) and _small(value, 120):
                value = sp.factor_terms(value)
                value = sp.expand(value) if sp.count_ops(value) > sp.count_ops(sp.expand(value)) else value
    return value


def _fast_out(value, ops):
    """Values handed out as they are: sympy numbers for the exact fast path (nested tuples too)."""
    if ops is not ExactOps or value is None:
        return value
    if isinstance(value, tuple):
        return tuple(_fast_out(v, ops) for v in value)
    return _tidy(value, ops)


def _small(expr, limit):
    return not exceeds(expr, limit)


def _collapse(values, ops):
    first = values[0]
    for v in values[1:]:
        if ops.exact:
            if sp.sympify(v) != sp.sympify(first):
                return tuple(values)
        elif not np.array_equal(np.asarray(v), np.asarray(first)):
            return tuple(values)
    return first


def _axis_quantity(m: AxisMap, name, ops):
    """One quantity of one axis's map (computed on demand: on numpy arrays each costs a pass)."""
    if name == "rf":
        return ops.max(*m.rfs)
    if name == "rf_min":
        return ops.min(*m.rfs)
    if name == "jump":
        if m.period == 1 and isinstance(m.jump, np.ndarray):
            return m.jump  # an integer array: dividing by 1 would cost a pass
        return ops.div(m.jump, m.period)
    if name == "start":
        return m.starts[0]
    if name == "center":
        return m.starts[0] + ops.div(m.rfs[0] - 1, 2)
    if name == "period":
        return m.period
    raise KeyError(name)


class _Quantities:
    """Shared accessors: per-axis quantities with the collapse rule."""

    _ops = SymOps

    def _maps(self):  # per-axis AxisMaps, overridden
        raise NotImplementedError

    def _q(self, name):
        cache = self.__dict__.setdefault("_qcache", {})
        if name not in cache:
            cache[name] = tuple(_tidy(_axis_quantity(m, name, self._ops), self._ops) for m in self._maps())
        return cache[name]

    def axes(self, name):
        """The per-axis tuple of a quantity, whatever the collapse rule would give."""
        if name == "out_size":
            sizes = self._sizes()
            return None if sizes is None else tuple(_tidy(s, self._ops) for s in sizes)
        return self._q(name)

    def _one(self, name):
        vals = self.axes(name)
        return None if vals is None else _collapse(vals, self._ops)

    rf = property(lambda self: self._one("rf"), doc="Receptive field size (max over positions).")
    rf_min = property(lambda self: self._one("rf_min"), doc="Smallest receptive field over positions.")
    jump = property(lambda self: self._one("jump"), doc="Effective stride.")
    start = property(lambda self: self._one("start"), doc="First input coordinate seen by output 0.")
    center = property(lambda self: self._one("center"), doc="Centre of output 0's receptive field.")
    period = property(lambda self: self._one("period"), doc="Output positions after which rf repeats.")
    out_size = property(lambda self: self._one("out_size"), doc="Output size (None without input size).")

    @property
    def effective_padding(self):
        """Araujo's effective padding, ``-start``."""
        vals = tuple(-v for v in self._q("start"))
        return _collapse(vals, self._ops)

    @property
    def flops(self):
        """``2·macs``."""
        return None if self.macs is None else 2 * self.macs

    def span(self, position):
        """Per-axis ``(first, last)`` input coordinates read by the output at ``position`` (an
        index, or a per-axis tuple); padding positions count, so they may lie outside the input."""
        maps = self._maps()
        pos = tuple(position) if isinstance(position, (tuple, list)) else (position,) * len(maps)
        return _fast_out(tuple((m.lo(p, self._ops), m.hi(p, self._ops)) for m, p in zip(maps, pos)), self._ops)

    def to_latex(self, **options):
        """LaTeX of the closed forms (and, for chains, the structured Σ/Π form); see
        :func:`rfsym.latex.to_latex`."""
        from .latex import to_latex
        return to_latex(self, **options)

    def _repr_latex_(self):
        from .latex import repr_latex
        return repr_latex(self)


class LayerResult(_Quantities):
    """Quantities of one layer's output with respect to the network input."""

    def __init__(self, node: _Node, ops):
        self._node = node
        self._ops = ops
        self.index = node.index
        self.name = node.name
        self.type = node.type
        self.layer = node.layer
        self.in_channels = _fast_out(node.in_channels, ops)
        self.out_channels = _fast_out(node.out_channels, ops)

    def _maps(self):
        return self._node.composite()

    def _sizes(self):
        return self._node.out_sizes

    @property
    def aligned(self):
        """For a merge: whether its branches have the same centre (Araujo's alignment; True,
        False, or None when undecidable). True for every other layer."""
        f = self._node.extra.get("aligned")
        return True if f is None else f()

    @property
    def branch_centers(self):
        """For a merge: each branch's per-axis centre of output 0 relative to the merge's input
        grid (None for other layers)."""
        f = self._node.extra.get("branch_centers")
        return None if f is None else _fast_out(f(), self._ops)

    @property
    def own_maps(self):
        """This layer's own index map per axis (its input grid to its output grid), or None for
        merge nodes; see :class:`~rfsym.maps.AxisMap`."""
        return self._node.own

    @property
    def input(self):
        """The grid this layer (or merge) reads, with the same quantities as a result: its
        ``rf``, ``jump``, ``start`` with respect to the network input and its ``out_size`` (the
        layer's input size)."""
        if "_input" not in self.__dict__:
            self._input = _InputView(self._node, self._ops)
        return self._input

    @property
    def in_size(self):
        sizes = self._node.in_sizes
        return None if sizes is None else _collapse(tuple(_tidy(s, self._ops) for s in sizes), self._ops)

    @property
    def params(self):
        """Trainable parameters of this layer alone."""
        return None if self._node.params is None else _tidy(self._node.params, self._ops)

    @property
    def macs(self):
        """MACs of this layer alone."""
        return None if self._node.macs is None else _tidy(self._node.macs, self._ops)

    def __repr__(self):
        return f"<LayerResult {self.index} {self.type} {self.name!r}: rf={self.rf}, jump={self.jump}>"


class _InputView(_Quantities):
    """Quantities of the grid a layer reads (see :attr:`LayerResult.input`)."""

    def __init__(self, node, ops):
        self._node = node
        self._ops = ops

    def _maps(self):
        maps = self._node.chain.prefix(self._node.position)
        return maps if maps is not None else (IDENTITY,) * len(self._node.composite())

    def _sizes(self):
        return self._node.in_sizes


class Result(_Quantities):
    """Everything rfsym derived about one network (see the module docstring for conventions).

    ``layers[i]`` holds layer ``i``'s output with respect to the network input (topological
    order, merges included); the attributes of the result itself describe the network output,
    with ``params`` and ``macs`` summed over all layers.
    """

    def __init__(self, network, input_size, ndim, in_channels, ops, nodes, top, state, values=None):
        self.network = network
        self.input_size = input_size
        self.ndim = ndim
        self.in_channels = in_channels
        self._ops = ops
        self._top = top
        self._state = state
        self._values = values
        self.layers = [LayerResult(n, ops) for n in nodes]

    def _maps(self):
        return self._top.full() or (IDENTITY,) * self.ndim

    def _sizes(self):
        return self._state.sizes

    @property
    def out_channels(self):
        return _fast_out(self._state.channels, self._ops)

    def layer(self, name: str) -> LayerResult:
        """The last layer called ``name`` (its full path, e.g. ``layer4.2.conv3``).

        >>> from rfsym import Conv, Sequential
        >>> analyze(Sequential(Conv(3, name="a"), Sequential(Conv(3), name="b"))).layer("b.0").rf
        5
        """
        for layer in reversed(self.layers):
            if layer.name == name:
                return layer
        names = [layer.name for layer in self.layers]
        close = [n for n in names if name in n][:5]
        hint = f"; names containing it: {', '.join(close)}" if close else ""
        raise RfsymError(f"no layer named {name!r} in this network{hint}")

    @property
    def aligned(self):
        """Araujo's alignment: every path from input to output has the same jump and centre.
        True when every merge is aligned, False when one provably is not, else None."""
        verdict = True
        for layer in self.layers:
            a = layer.aligned
            if a is False:
                return False
            if a is None:
                verdict = None
        return verdict

    def _total(self, attr):
        total, arrays = 0, []
        for layer in self.layers:
            v = getattr(layer._node, attr)
            if v is None:
                return None
            if isinstance(v, np.ndarray) and v.ndim:
                arrays.append(v)  # added last: a scalar plus an array costs a pass over the array
            else:
                total = total + v
        for v in arrays:
            total = total + v
        return _tidy(total, self._ops)

    @property
    def params(self):
        """Trainable parameters of the whole network (None if some channel count is unknown)."""
        return self._total("params")

    @property
    def macs(self):
        """MACs of the whole network (None without an input size or channels)."""
        return self._total("macs")

    @property
    def free_symbols(self) -> set:
        syms = set(self.network.free_symbols)
        if self.input_size is not None:
            for n in self.input_size:
                syms |= sp.sympify(n).free_symbols
        if self.in_channels is not None:
            syms |= sp.sympify(self.in_channels).free_symbols
        return syms

    def _mapping(self, mapping):
        by_name = {}  # a name may stand for several symbols (e.g. coerced positive and nonnegative)
        for s in self.free_symbols:
            by_name.setdefault(s.name, []).append(s)
        out = {}
        for key, value in dict(mapping).items():
            name = key if isinstance(key, str) else getattr(key, "name", str(key))
            if name not in by_name:
                raise RfsymError(f"symbol {name} does not occur in this network "
                                 f"(its symbols: {', '.join(sorted(by_name)) or 'none'})")
            for s in by_name[name]:
                out[s] = value
        return out

    def _locate(self, err, mapping):
        """Re-raise a LayerError from substituting into the network at the first failing layer."""
        for lr in self.layers:
            try:
                lr.layer.subs(mapping)
            except LayerError as inner:
                return inner.located(layer_label(lr.layer, lr.index))
        return err

    def subs(self, mapping) -> Result:
        """The result for the network with symbols replaced by values (exact, re-derived).

        Keys are symbols or their names.
        """
        m = self._mapping(mapping)
        for s, value in m.items():
            if isinstance(value, (str, bytes)) or not isinstance(value, (numbers.Number, sp.Basic)):
                raise RfsymError(f"subs: the value for {s.name} must be an integer or a sympy expression, "
                                 f"got {value!r}")
        try:
            net = self.network.subs(m)
        except LayerError as err:
            raise self._locate(err, m) from None
        size = None if self.input_size is None else tuple(sp.sympify(n).subs(m) for n in self.input_size)
        ch = None if self.in_channels is None else sp.sympify(self.in_channels).subs(m)
        return analyze(net, input_size=size, ndim=self.ndim, in_channels=ch)

    def evaluate(self, values) -> Result:
        """Vectorised numeric evaluation: ``values`` maps symbols (or names) to numbers or numpy
        arrays (broadcast together); every quantity of the returned result is an int64 array (or
        a Python int) equal to what :meth:`subs` gives, configuration by configuration.

        ``center`` (and ``jump`` when the output grid is finer than the input) may be a
        half-integer or a fraction: those come as float64, exact for half-integers. Values must
        stay below 2**63: int64 arithmetic wraps around silently (a stack of 63 stride-2 layers
        already overflows the jump); use :meth:`subs` for exact big integers."""
        m = self._mapping(values)
        named = {s.name: _int_values(s.name, v) for s, v in m.items()}
        try:
            np.broadcast_shapes(*(a.shape for a in named.values()))
        except ValueError:
            shapes = ", ".join(f"{k} {a.shape}" for k, a in sorted(named.items()))
            raise RfsymError(f"evaluate: the value arrays must broadcast together, got shapes {shapes}") from None
        missing = sorted(s.name for s in self.free_symbols if s.name not in named)
        if missing:
            raise RfsymError(f"evaluate needs a value for every symbol; missing: {', '.join(missing)}")
        return analyze(self.network, input_size=self.input_size, ndim=self.ndim,
                       in_channels=self.in_channels, _ops=NumOps, _values=named)

    def __repr__(self):
        return (f"<Result {len(self.layers)} layers: rf={self.rf}, jump={self.jump}, start={self.start}, "
                f"out_size={self.out_size}, params={self.params}, macs={self.macs}>")


def _int_values(name, value):
    """A value for :meth:`Result.evaluate`: an integer array (integral floats accepted)."""
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything numpy cannot take is reported below
        arr = np.asarray(None, dtype=object)
    if arr.dtype.kind == "f":
        ok = np.isfinite(arr) & (arr == np.round(np.where(np.isfinite(arr), arr, 0)))
        if not ok.all():
            raise RfsymError(f"evaluate: the values for {name} must be integers, got {arr[~ok].flat[0]}")
        return arr.astype(np.int64)
    if arr.dtype == object and arr.size and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                                for v in arr.flat):
        return arr  # Python ints beyond int64: exact arithmetic
    if arr.dtype.kind not in "iu":
        shown = value if arr.ndim == 0 else arr.flat[0] if arr.size else value
        raise RfsymError(f"evaluate: the values for {name} must be integers (a number or an integer "
                         f"numpy array), got {shown!r}")
    return arr.astype(np.int64)


# --------------------------------------------------------------------------- entry point
def _infer_ndim(net, input_size, ndim):
    dims = set()
    if ndim is not None:
        if isinstance(ndim, bool) or not isinstance(ndim, numbers.Integral) or not 1 <= ndim <= 3:
            raise LayerError(f"ndim must be 1, 2 or 3, got {ndim!r}", where="analyze", param="ndim")
        dims.add(int(ndim))
    if isinstance(input_size, (tuple, list)):
        dims.add(len(input_size))
    try:
        nd = net.ndim
    except LayerError:
        raise
    if nd is not None:
        dims.add(nd)
    if len(dims) > 1:
        raise LayerError(f"the number of spatial axes is ambiguous: {sorted(dims)} "
                         "(from ndim, input_size and per-axis layer arguments); make them agree",
                         where="analyze", param="ndim")
    return dims.pop() if dims else 2


def analyze(net, input_size=None, *, ndim=None, in_channels=None, _ops=SymOps, _values=None) -> Result:
    """Derive rf, jump, start, center, out_size, params and macs of every layer of ``net``.

    ``net`` is a layer or a :class:`~rfsym.layers.Sequential`; ``input_size`` an int, symbol or
    per-axis tuple (None: sizes and MACs stay unknown); ``in_channels`` the input's channels when
    the first layers do not say.

    >>> from rfsym import Conv, Sequential
    >>> analyze(Sequential(*[Conv(3, padding=1)] * 4)).rf
    9
    """
    if not isinstance(net, L.Layer):
        if isinstance(net, (list, tuple)):
            net = L.Sequential(*net)
        else:
            raise RfsymError(f"analyze expects an rfsym layer or Sequential, got {type(net).__name__}")
    if not isinstance(net, L.Sequential):
        net = L.Sequential(net)
    nd = _infer_ndim(net, input_size, ndim)
    if input_size is not None:
        sizes = tuple(input_size) if isinstance(input_size, (tuple, list)) else (input_size,) * nd
        sizes = tuple(_input_value(n) for n in sizes)
    else:
        sizes = None
    if in_channels is not None:
        in_channels = _input_value(in_channels, "in_channels")
    if _ops is SymOps and _all_numbers(net, sizes, in_channels):
        # fast path: the same rules on Python ints and Fractions, sympy numbers at the boundary
        # (_tidy); on any error the sympy path below runs again and raises its own message
        try:
            return _derive(net, sizes, nd, in_channels, ExactOps, None)
        except Exception:  # noqa: BLE001 - re-raised, with the canonical message, by the sympy path
            pass
    return _derive(net, sizes, nd, in_channels, _ops, _values)


def _all_numbers(net, sizes, in_channels) -> bool:
    """Whether ``analyze`` may take the exact fast path: numeric input size, no symbols."""
    if sizes is None or not all(getattr(n, "is_Integer", False) for n in sizes):
        return False
    if in_channels is not None and not getattr(in_channels, "is_Integer", False):
        return False
    return not net.free_symbols


def _derive(net, sizes, nd, in_channels, ops, values) -> Result:
    ctx = Context(ops, nd, values)
    state = State(None if sizes is None else tuple(ctx.val(n, "input_size", 1) for n in sizes),
                  ctx.val(in_channels, "in_channels", 1))
    builder = _Builder(ctx)
    final, top = builder.walk(net, state, "", lambda: None)
    return Result(net, sizes, nd, in_channels, ops, builder.nodes, top, final, values)


def _input_value(n, param="input_size"):
    from .symbols import as_expr
    try:
        return as_expr(n, param)
    except LayerError as err:
        raise LayerError(err.detail, where="analyze", param=param) from None
