"""Per-layer rules: each layer class's index map, size law, channels, parameters and MACs.

A rule is ``rule(layer, state, ctx) -> LeafOut``: given the :class:`State` flowing into the layer
(per-axis sizes, channels) and the analysis :class:`Context` (backend, numeric values), it returns
the layer's own per-axis :class:`~rfsym.maps.AxisMap` (its input grid to its output grid), the
outgoing state and its parameters and MACs. Rules register by class (:func:`register_layer`);
subclasses inherit their base class's rule. Conventions are stated in :mod:`rfsym.engine`.

>>> from rfsym import Conv
>>> from rfsym.ops import SymOps
>>> out = rule_for(Conv(3, stride=2))(Conv(3, stride=2, out_channels=4), State((9,), 2), Context(SymOps, 1))
>>> out.state.sizes, out.params, out.macs
((4,), 28, 96)
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import sympy as sp

from . import layers as L
from .errors import LayerError, RfsymError, SizeError
from .lazy_numpy import np
from .maps import IDENTITY, AxisMap, reduce_map
from .ops import exact_values

__all__ = ["State", "LeafOut", "Context", "register_layer", "rule_for", "check_size", "conv_counts",
           "channels_of", "global_map", "numeric_value", "BROADCAST", "NeedsInputSize", "check_period",
           "MAX_PERIOD", "attend", "NO_EXTRA"]

#: the map of a broadcast input: every output position reads its one position
BROADCAST = AxisMap(1, 0, (0,), (1,))

class State(NamedTuple):
    """What flows between layers: per-axis sizes (None when unknown), the channel count and
    whether the features were flattened. Immutable and hashable (a named tuple: made and
    hashed at C speed, once per layer of a long chain)."""

    sizes: tuple | None
    channels: Any = None
    flattened: bool = False


#: the ``extra`` of a rule output without extra attributes (one read-only mapping, shared)
NO_EXTRA = MappingProxyType({})


@dataclass
class LeafOut:
    """What a layer rule returns: its own per-axis maps, the outgoing state, its parameters and
    MACs, and lazily computed extra attributes (``"aligned"``: a zero-argument callable)."""

    maps: tuple
    state: State
    params: Any = 0
    macs: Any = 0
    extra: dict = field(default_factory=dict)


class Context:
    """Backend, numeric values and bookkeeping shared by every rule of one analysis.

    ``strict`` makes norms whose statistics span positions global; ``notes`` collects what the
    result should say about conventions applied; ``derive`` is the engine's analysis function
    (for rules that analyse a sub-network, such as a repeated block)."""

    def __init__(self, ops, ndim, values=None, strict=False, derive=None):
        self.ops = ops
        self.ndim = ndim
        self.values = values or {}
        self._where = ""
        self._label = None
        self.strict = strict
        self.notes = {}
        self.derive = derive
        #: per-layer constants a rule computed once (keyed by the layer's id: layers live as
        #: long as the analysis)
        self.plans = {}
        #: conditions the symbolic pass could not decide (the compiled evaluate checks them):
        #: (expression, parameter, minimum, "zero" (must vanish) or None (integral only), layer)
        self.checks = []

    @property
    def where(self) -> str:
        """The layer being analysed, for messages (made on first use after :meth:`at`)."""
        where = self._where
        if where is None:
            where = self._where = self._label()
        return where

    @where.setter
    def where(self, text):
        self._where = text

    def at(self, label):
        """Name the layer being analysed, lazily: most layers raise nothing and note nothing, so
        their label is never made.

        Args:
            label: a zero-argument callable giving the text of :attr:`where`, called on its
                first read.
        """
        self._where, self._label = None, label

    def val(self, expr, param=None, minimum=None):
        """The value of a layer parameter in this backend (checked when numeric)."""
        if expr is None:
            return None
        if self.ops.symbolic:
            if isinstance(expr, sp.Basic) and expr.free_symbols:
                self.checks.append((expr, param, minimum, self.where))
            return expr
        if type(expr) is int:
            out = expr
        elif getattr(expr, "is_Integer", False):  # a sympy integer (before the slower ABC check)
            out = int(expr)
        elif isinstance(expr, numbers.Integral):
            out = int(expr)
        elif isinstance(expr, sp.Basic) and expr.is_Integer:
            out = int(expr)
        else:
            try:
                out = numeric_value(expr, self.values)
            except RfsymError as err:
                raise LayerError(f"{param} = {expr}: {err}", where=self.where, param=param) from None
        if minimum is not None and (out < minimum if isinstance(out, int) else np.any(np.asarray(out) < minimum)):
            bad = np.asarray(out)[np.asarray(out) < minimum].flat[0]
            what = "a positive integer" if minimum == 1 else "a nonnegative integer"
            raise LayerError(f"{param} must be {what}, got {bad} for some of the given values",
                             where=self.where, param=param)
        return out


def numeric_value(expr, values):
    """The value of ``expr`` at ``values`` (symbol names to ints or integer arrays)."""
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
    from .checked import checked  # (numpy: loaded with the first array)

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


_RULES: dict = {}


def register_layer(cls):
    """Decorator: register ``rule(layer, state, ctx) -> LeafOut`` for a leaf layer class."""

    def deco(fn):
        _RULES[cls] = fn
        return fn

    return deco


def rule_for(layer):
    """The rule registered for ``layer``'s class (or a base class), or None."""
    for cls in type(layer).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None


def check_size(out, ctx, axis, n):
    ops = ctx.ops
    if ops.symbolic:
        c = ops.concrete(out)
        if c is not None and c < 1:
            raise SizeError(f"{ctx.where}: output size must be at least 1, got {c} on axis {axis} "
                            f"(this layer's input size is {n}); give a larger input_size or more padding")
        if c is None:
            ctx.checks.append((sp.sympify(out), "output size", 1, ctx.where))
    elif type(out) is int:
        if out < 1:  # one value: said as the symbolic path says it
            raise SizeError(f"{ctx.where}: output size must be at least 1, got {out} on axis {axis} "
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


def _window_plan(layer, ctx):
    """What a sliding-window layer's rule needs that does not depend on its input: per axis
    ``(map or None, s, d, pl, pr, extent, ceil, window)`` (map None: TensorFlow SAME, whose
    padding and map depend on the input size), the maps when every axis has one (one tuple for
    every input), the product of the kernel sizes and, when the size law is
    ``(n + pl + pr - extent) // s + 1`` on Python ints on every axis (exact numbers, whose sizes
    are ints), ``(one (pl + pr - extent, s) when every axis has it, else None, those per axis)``;
    then a convolution's ``(groups, in_channels or None, out_channels or None, bias)`` on exact
    numbers (else None)."""
    axes = _window_axes(layer.windows(ctx.ndim), ctx)
    counts = None
    if axes[3] is not None and isinstance(layer, L.Conv):  # exact numbers: the channel arguments once
        cin = None if layer.in_channels is None else ctx.val(layer.in_channels, "in_channels", 1)
        cout = ctx.val(layer.out_channels, "out_channels", 1)
        counts = (ctx.val(layer.groups, "groups", 1), cin, cout, layer.bias)
    return axes + (counts,)


def _windows_key(windows):
    """A key equal for window tuples whose fields are the same objects (ids: the layers, and so
    their fields, outlive the analysis's plans), or None (a padding that is neither a pair nor
    ``"tf_same"``). Cheaper than hashing the windows (no sympy hash)."""
    key = ["windows"]
    for w in windows:
        pad = w.pad
        if type(pad) is tuple:
            key.extend((id(w.kernel), id(w.stride), id(w.dilation), id(w.ceil), *map(id, pad)))
        elif pad == "tf_same":
            key.extend((id(w.kernel), id(w.stride), id(w.dilation), id(w.ceil), pad))
        else:
            return None
    return tuple(key)


def _window_axes(windows, ctx):
    """The input-independent part of :func:`_window_plan` that depends on the windows only:
    ``(per-axis plan, maps or None, kernel product, ints or None)``. On exact numbers layers
    whose windows hold the same objects share one (and so one tuple of maps, which the engine sees once).

    Args:
        windows: the layer's per-axis :class:`~rfsym.layers.Window` tuple.
        ctx: the analysis :class:`Context`.

    Returns:
        The 4-tuple above.
    """
    key = None
    if ctx.ops.numbers:  # (no symbolic checks to note per layer)
        key = _windows_key(windows)  # (the plans of layers are keyed by ints: no clash)
        hit = None if key is None else ctx.plans.get(key)
        if hit is not None:
            return hit
    plan, kprod = [], 1
    for w in windows:
        k = ctx.val(w.kernel, "kernel_size", 1)
        s = ctx.val(w.stride, "stride", 1)
        d = ctx.val(w.dilation, "dilation", 1)
        kprod = kprod * k
        extent = d * (k - 1) + 1
        if w.pad == "tf_same":
            plan.append((None, s, d, None, None, extent, w.ceil, w))
        else:
            pl, pr = ctx.val(w.pad[0], "padding", 0), ctx.val(w.pad[1], "padding", 0)
            plan.append((AxisMap.affine(-pl, s, extent, step=d), s, d, pl, pr, extent, w.ceil, w))
    maps = None if any(a[0] is None for a in plan) else tuple(a[0] for a in plan)
    ints = None
    if ctx.ops.numbers and maps is not None and not any(a[6] for a in plan) and \
            all(type(v) is int for a in plan for v in (a[1], a[3], a[4], a[5])):
        axes = tuple((pl + pr - extent, s) for _, s, _, pl, pr, extent, _, _ in plan)
        ints = (axes[0] if axes.count(axes[0]) == len(axes) else None, axes)
    out = (tuple(plan), maps, kprod, ints)
    if key is not None:
        ctx.plans[key] = out
    return out


@register_layer(L.Windowed)
def _windowed(layer, state, ctx):
    plan = ctx.plans.get(id(layer))  # the layer is alive for the whole analysis: its id is not reused
    if plan is None:
        plan = ctx.plans[id(layer)] = _window_plan(layer, ctx)
    axes, maps, kprod, ints, counts = plan
    known = state.sizes
    sizes = None
    if ints is not None and known is not None:
        # exact numbers (sizes are ints): the floor law inline (the general one below on a size < 1)
        if ints[0] is not None and known.count(known[0]) == len(known):  # square: one axis for all
            c, s = ints[0]
            out = (known[0] + c) // s + 1
            sizes = (out,) * len(known) if out >= 1 else None
        else:
            sizes = tuple([(n + c) // s + 1 for n, (c, s) in zip(known, ints[1])])
            if min(sizes) < 1:
                sizes = None
    if sizes is None:
        own, sizes = _window_sizes(axes, known, ctx)
        maps = own if maps is None else maps  # (one tuple for every input where it can)
    incoming = state.channels
    if counts is not None and (counts[1] is None or incoming is None or counts[1] == incoming):
        groups, cin, cout, bias = counts  # (a mismatch of channels: conv_counts raises)
        if cin is None:
            cin = incoming
        if cin is None or cout is None:
            return LeafOut(maps, State(sizes, cout), None, None, NO_EXTRA)
        params, macs = _conv_totals(ctx.ops, cin, cout, kprod, groups, bias, sizes)
        return LeafOut(maps, State(sizes, cout), params, macs, NO_EXTRA)
    if not isinstance(layer, L.Conv):
        return LeafOut(maps, State(sizes, incoming), 0, 0, NO_EXTRA)
    cout, params, macs = conv_counts(layer, state, ctx, kprod, sizes)
    return LeafOut(maps, State(sizes, cout), params, macs, NO_EXTRA)


def _window_sizes(axes, known, ctx):
    """The maps and output sizes of a sliding-window layer (per-axis plan ``axes``) on input sizes
    ``known`` (None: unknown)."""
    ops = ctx.ops
    maps, sizes = [], []
    for axis, (m, s, d, pl, pr, extent, ceil, w) in enumerate(axes):
        n = known[axis] if known else None
        if m is None:  # TensorFlow SAME: the padding follows the input size
            maps.append(AxisMap.affine(-_tf_same_pad(n, w, ops, ctx)[0], s, extent, step=d))
        else:
            maps.append(m)
        if n is not None:
            if m is None:
                out = ops.ceildiv(n, s)
            elif ceil:
                c = ops.ceildiv(n + (pl + pr - extent), s) + 1
                out = ops.where(ops.ge((c - 1) * s, n + pl), c - 1, c)
            else:
                out = ops.floordiv(n + (pl + pr - extent), s) + 1
            check_size(out, ctx, axis, n)
            sizes.append(out)
    return tuple(maps), tuple(sizes) if known else None


def conv_counts(layer, state, ctx, kprod, positions_of):
    """``(out_channels, params, macs)`` of a (transposed) convolution: weights
    ``c_in·c_out·Πk / groups`` plus biases; MACs are the weights times the positions of
    ``positions_of`` (per-axis sizes: the output's for a convolution, the input's for a transposed
    one), None where channels or sizes are unknown."""
    ops = ctx.ops
    groups = ctx.val(layer.groups, "groups", 1)
    cin = channels_of(ctx, layer.in_channels, state.channels, "in_channels")
    cout = ctx.val(layer.out_channels, "out_channels", 1)
    if cin is None or cout is None:
        return cout, None, None
    return (cout, *_conv_totals(ops, cin, cout, kprod, groups, layer.bias, positions_of))


def _conv_totals(ops, cin, cout, kprod, groups, bias, positions_of):
    """``(params, macs)`` of a convolution of known channels (see :func:`conv_counts`)."""
    weights = cin * cout * kprod
    per = ops.floordiv(weights, groups) if not ops.symbolic else weights / groups
    params = per + (cout if bias else 0)
    macs = None if positions_of is None else _prod(positions_of) * per
    return params, macs


def _prod(xs):
    out = 1
    for x in xs:
        out = out * x
    return out


def channels_of(ctx, given, incoming, param):
    """Channel count a layer reads: its own argument, else what the previous layer gives."""
    if given is None:
        return incoming
    value = ctx.val(given, param, 1)
    if incoming is not None:
        a, b = ctx.ops.concrete(value), ctx.ops.concrete(incoming)
        if ctx.ops.symbolic and (a is None or b is None) and sp.sympify(value) != sp.sympify(incoming):
            ctx.checks.append((sp.sympify(value) - sp.sympify(incoming), param, "zero", ctx.where))
        if a is not None and b is not None and a != b:
            raise LayerError(f"{param}={a} but the previous layer gives {b} channels; use {param}={b}, "
                             "or leave it out to take it from the previous layer",
                             where=ctx.where, param=param)
    return value


_IDENTITY_MAPS = {n: (IDENTITY,) * n for n in (1, 2, 3)}


def _identities(ndim):
    """The identity maps of ``ndim`` axes: one tuple per ndim (the engine sees it once)."""
    maps = _IDENTITY_MAPS.get(ndim)
    return (IDENTITY,) * ndim if maps is None else maps


@register_layer(L.Elementwise)
def _elementwise(layer, state, ctx):
    return LeafOut(_identities(ctx.ndim), state)


@register_layer(L.Flatten)
def _flatten(layer, state, ctx):
    return LeafOut(_identities(ctx.ndim), State(state.sizes, state.channels, flattened=True))


@register_layer(L.BatchNorm)
def _batchnorm(layer, state, ctx):
    c = channels_of(ctx, layer.num_features, state.channels, "num_features")
    params = 0 if not layer.affine else None if c is None else 2 * c
    return LeafOut(_identities(ctx.ndim), State(state.sizes, c, state.flattened), params, 0)


class NeedsInputSize(RfsymError):
    """A global layer met without an input size: the engine derives again with a symbolic one."""


def global_map(n, jump=None):
    """Every output position reads the whole input: one window of size ``n`` (jump ``n``, or
    ``jump``); raises :class:`NeedsInputSize` when ``n`` is unknown (never an infinite field)."""
    if n is None:
        raise NeedsInputSize("a global layer's field is the whole input: it needs the input size")
    return AxisMap(1, n if jump is None else jump, (0,), (n,))


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
            maps.append(global_map(n))
        elif n is None:
            raise LayerError("adaptive pooling to more than one output needs the input size; "
                             "pass input_size to analyze", where=ctx.where, param="output_size")
        else:
            nc, mc = ops.concrete(n), ops.concrete(mm)
            check_period(ctx, mc, "output_size")
            check_period(ctx, nc, "input_size")
            if nc is not None and mc is not None:
                starts = tuple((i * nc) // mc for i in range(mc))
                ends = tuple(-((-(i + 1) * nc) // mc) for i in range(mc))
                maps.append(reduce_map(AxisMap(mc, nc, starts, tuple(e - b for b, e in zip(starts, ends))), ops))
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
        if ops.symbolic and (a is None or b is None) and sp.sympify(fin) != sp.sympify(expected):
            ctx.checks.append((sp.sympify(fin) - sp.sympify(expected), "in_features", "zero", ctx.where))
        if a is not None and b is not None and a != b:
            raise LayerError(f"in_features={a} but the input flattens to {b} features "
                             f"({state.channels} channels x sizes {tuple(state.sizes)})",
                             where=ctx.where, param="in_features")
    maps = tuple(global_map(n) for n in (state.sizes or (None,) * ctx.ndim))
    params = fin * fout + (fout if layer.bias else 0)
    sizes = (1,) * ctx.ndim if state.sizes is not None else None
    return LeafOut(maps, State(sizes, fout, True), params, fin * fout)


# --------------------------------------------------------------------------- transposed / upsample
def _concrete_int(ctx, value, param, why):
    c = ctx.ops.concrete(value)
    if c is None:
        raise LayerError(f"{param} must be a number here ({why}), got {value}", where=ctx.where, param=param)
    return c


def _divisible(ops, a, b):
    if ops.symbolic:
        return (sp.sympify(a) / b).is_integer is True
    return bool(np.all(np.asarray(a) % b == 0))


def _transposed_axis(ctx, k, s, d, pl):
    """AxisMap of one axis of a transposed convolution (see :class:`ConvTranspose`)."""
    ops = ctx.ops
    if ops.concrete(s) == 1:
        extent = d * (k - 1) + 1
        return AxisMap.affine(pl - d * (k - 1), 1, extent)
    why = "a transposed convolution with stride > 1 has one receptive field per output phase"
    s = _concrete_int(ctx, s, "stride", why)
    check_period(ctx, s, "stride")
    d = _concrete_int(ctx, d, "dilation", why)
    pl = _concrete_int(ctx, pl, "padding", why)
    if math.gcd(s, d) != 1:
        raise LayerError(f"stride {s} and dilation {d} share a factor, so some output phases read no "
                         "input at all; rfsym does not model empty receptive fields", where=ctx.where,
                         param="dilation")
    kc = ops.concrete(k)
    if kc is None and not (d == 1 and _divisible(ops, k, s)):
        raise LayerError(f"kernel_size {k} must be a number, or a multiple of the stride {s} with "
                         "dilation 1, for a closed form per output phase", where=ctx.where,
                         param="kernel_size")
    inv = pow(d, -1, s)
    starts, rfs = [], []
    for phi in range(s):
        t0 = ((phi + pl) * inv) % s  # smallest tap landing on this phase
        if kc is not None:
            if t0 > kc - 1:
                raise LayerError(f"outputs o ≡ {phi} (mod {s}) read no input (kernel_size {kc} < "
                                 f"stride {s}); rfsym does not model empty receptive fields",
                                 where=ctx.where, param="kernel_size")
            count = (kc - 1 - t0) // s + 1
        else:
            count = ops.div(k, s) if ops.symbolic else np.asarray(k) // s
        t_last = t0 + (count - 1) * s
        starts.append(ops.floordiv(phi + pl - t_last * d, s) if not ops.symbolic
                      else sp.sympify(phi + pl - t_last * d) / s)
        rfs.append((count - 1) * d + 1)
    return reduce_map(AxisMap(s, 1, tuple(starts), tuple(rfs)), ops)


@register_layer(L.ConvTranspose)
def _conv_transpose(layer, state, ctx):
    maps, sizes = [], []
    kprod = 1
    ops_pad = layer.output_paddings(ctx.ndim)
    for axis, w in enumerate(layer.windows(ctx.ndim)):
        k = ctx.val(w.kernel, "kernel_size", 1)
        s = ctx.val(w.stride, "stride", 1)
        d = ctx.val(w.dilation, "dilation", 1)
        pl, pr = ctx.val(w.pad[0], "padding", 0), ctx.val(w.pad[1], "padding", 0)
        op = ctx.val(ops_pad[axis], "output_padding", 0)
        kprod = kprod * k
        maps.append(_transposed_axis(ctx, k, s, d, pl))
        n = state.sizes[axis] if state.sizes else None
        if n is not None:
            out = (n - 1) * s - pl - pr + d * (k - 1) + 1 + op
            check_size(out, ctx, axis, n)
            sizes.append(out)
    cout, params, macs = conv_counts(layer, state, ctx, kprod, state.sizes)
    return LeafOut(tuple(maps), State(tuple(sizes) if state.sizes else None, cout), params, macs)


@register_layer(L.Upsample)
def _upsample(layer, state, ctx):
    """The layer's own index map (:meth:`~rfsym.layers.Upsample.phases`) as interval maps: each
    phase reads the interval from its first to its last position."""
    ops = ctx.ops
    maps, sizes = [], []
    for axis in range(ctx.ndim):
        n = state.sizes[axis] if state.sizes else None
        nc = None if n is None else ops.concrete(n)
        if nc is not None:  # PyTorch's output size
            sizes.append(layer.output_size(axis, ctx.ndim, nc))
        elif n is not None:  # symbolic or several sizes: floor(n·f) in exact arithmetic (size= fails below)
            f = L.per_axis(layer.scale_factor, ctx.ndim, "scale_factor", layer)[axis] if layer.size is None \
                else sp.Integer(1)
            sizes.append(n * int(f) if f.is_Integer else ops.floordiv(n * int(f.p), int(f.q)))
        if n is not None:
            check_size(sizes[-1], ctx, axis, n)
        try:
            period, jump, pos, valid = layer.phases(axis, ctx.ndim, nc, MAX_PERIOD)
        except LayerError as err:
            raise err.located(ctx.where) from None
        lo = pos[:, 0]
        hi = np.where(valid[:, 1], pos[:, 1], pos[:, 0])
        m = AxisMap(period, jump, tuple(int(v) for v in lo), tuple(int(v) for v in hi - lo + 1))
        maps.append(reduce_map(m, ops))
    return LeafOut(tuple(maps), State(tuple(sizes) if state.sizes else None, state.channels))


@register_layer(L.Crop)
def _crop(layer, state, ctx):
    maps, sizes = [], []
    for axis, (left, right) in enumerate(layer.amounts(ctx.ndim)):
        left, right = ctx.val(left, "amount", 0), ctx.val(right, "amount", 0)
        maps.append(AxisMap.affine(left, 1, 1))
        n = state.sizes[axis] if state.sizes else None
        if n is not None:
            out = n - left - right
            check_size(out, ctx, axis, n)
            sizes.append(out)
    return LeafOut(tuple(maps), State(tuple(sizes) if state.sizes else None, state.channels))


# --------------------------------------------------------------------------- position-wise and token mixing
def _positions(sizes):
    return None if sizes is None else _prod(sizes)


@register_layer(L.Pad)
def _pad(layer, state, ctx):
    maps, sizes = [], []
    for axis, (before, after) in enumerate(layer.amounts(ctx.ndim)):
        before, after = ctx.val(before, "padding", 0), ctx.val(after, "padding", 0)
        maps.append(AxisMap.affine(-before, 1, 1))
        if state.sizes is not None:
            sizes.append(state.sizes[axis] + before + after)
    return LeafOut(tuple(maps), State(tuple(sizes) if state.sizes else None, state.channels))


@register_layer(L.Norm)
def _norm(layer, state, ctx):
    c = channels_of(ctx, layer.num_features, state.channels, "num_features")
    if layer.params is not None:
        params = ctx.val(layer.params, "params", 0)
    else:
        params = None if c is None else 2 * c
    if layer.spatial:
        key = "strict" if ctx.strict else "position-wise"
        ctx.notes.setdefault(key, []).append(ctx.where)
    if layer.spatial and ctx.strict:  # every output reads the same whole input: jump 0
        maps = tuple(global_map(n, jump=0) for n in (state.sizes or (None,) * ctx.ndim))
    else:
        maps = _identities(ctx.ndim)
    return LeafOut(maps, State(state.sizes, c, state.flattened), params, 0)


@register_layer(L.Pointwise)
def _pointwise(layer, state, ctx):
    c = state.channels if layer.out_channels is None else ctx.val(layer.out_channels, "out_channels", 1)
    positions = _positions(state.sizes)
    per = ctx.val(layer.macs, "macs", 0)
    macs = None if positions is None else positions * per
    return LeafOut(_identities(ctx.ndim), State(state.sizes, c, state.flattened),
                   ctx.val(layer.params, "params", 0), macs)


@register_layer(L.Params)
def _params(layer, state, ctx):
    return LeafOut(_identities(ctx.ndim), state, ctx.val(layer.count, "count", 0), 0)


def _window_axis(ctx, w, shift, n):
    """Shifted-window attention on one axis: output ``o`` reads the window from
    ``o - ((o - shift) mod w)``, ``w`` positions, clipped to ``0 .. n - 1``; global when the window
    covers the axis. Windows that tile the axis (no shift, ``w`` divides ``n``) are a period-``w``
    map; clipped ones a period-``n`` map (each position of the axis its own phase)."""
    ops = ctx.ops
    wc = ops.concrete(w)
    check_period(ctx, wc, "window")
    nc = None if n is None else ops.concrete(n)
    if nc is not None and wc is not None and wc >= nc:
        return global_map(n, jump=0), n
    if wc is None:
        raise LayerError(f"window {w} must be a number (one receptive field per window position)",
                         where=ctx.where, param="window")
    sc = ops.concrete(shift)
    if sc is None:
        raise LayerError(f"shift {shift} must be a number", where=ctx.where, param="shift")
    if nc is None or (sc % wc == 0 and nc % wc == 0):
        if sc % wc:
            raise LayerError(f"shifted windows (shift {sc}) are clipped to the feature map: give the input "
                             "size as a number", where=ctx.where, param="shift")
        return reduce_map(AxisMap(wc, wc, (0,) * wc, (wc,) * wc), ops), wc
    check_period(ctx, nc, "input size")
    starts, rfs = [], []
    for phi in range(nc):
        lo = phi - ((phi - sc) % wc)
        lo, hi = max(lo, 0), min(lo + wc - 1, nc - 1)
        starts.append(lo)
        rfs.append(hi - lo + 1)
    return reduce_map(AxisMap(nc, nc, tuple(starts), tuple(rfs)), ops), wc


def _grid_axis(ctx, g, n):
    """Grid attention on one axis: ``g`` cells of ``s = n/g`` positions; output ``o`` reads
    ``o mod s + t·s`` for ``t = 0 .. g - 1`` (bounding interval ``[o mod s, o mod s + n - s]``),
    a period-``n`` map."""
    ops = ctx.ops
    gc = ops.concrete(g)
    if gc is None:
        raise LayerError(f"grid {g} must be a number", where=ctx.where, param="grid")
    nc = None if n is None else ops.concrete(n)
    if nc is None:
        raise LayerError("grid attention needs the input size as a number (its groups span the feature map)",
                         where=ctx.where, param="grid")
    if nc % gc:
        raise LayerError(f"grid={gc} needs sizes divisible by {gc}, got {nc}", where=ctx.where, param="grid")
    cell = nc // gc
    if cell == 1:
        return global_map(n, jump=0), n
    if gc == 1:  # one cell: every position attends itself only
        return IDENTITY, 1
    check_period(ctx, nc, "input size")
    starts = tuple(phi % cell for phi in range(nc))
    return AxisMap(nc, nc, starts, (nc - cell + 1,) * nc, cell), gc  # reads every cell-th position


def _attention_macs(layer, queries, attended, channels, ctx):
    """``N·M·(embed_dim + C)``: ``q·kᵀ`` and ``attention·v`` for ``N`` queries over ``M`` keys."""
    e = channels if layer.embed_dim is None else ctx.val(layer.embed_dim, "embed_dim", 1)
    values = e if channels is None else channels
    if queries is None or attended is None or e is None:
        return None
    return queries * attended * (e + values)


@register_layer(L.Attention)
def _attention(layer, state, ctx):
    sizes = state.sizes or (None,) * ctx.ndim
    if layer.window is None and layer.grid is None:  # every output reads the same whole input: jump 0
        maps = tuple(global_map(n, jump=0) for n in sizes)
        attended = _positions(state.sizes)
    else:
        if layer.window is not None:
            windows = L.per_axis(layer.window, ctx.ndim, "window", layer)
            shifts = L.per_axis(layer.shift, ctx.ndim, "shift", layer)
            axes = [_window_axis(ctx, ctx.val(w, "window", 1), ctx.val(sh, "shift", 0), n)
                    for w, sh, n in zip(windows, shifts, sizes)]
        else:
            grids = L.per_axis(layer.grid, ctx.ndim, "grid", layer)
            axes = [_grid_axis(ctx, ctx.val(g, "grid", 1), n) for g, n in zip(grids, sizes)]
        maps, attended = [], 1
        for m, span in axes:
            maps.append(m)
            attended = None if span is None or attended is None else attended * span
        maps = tuple(maps)
    macs = _attention_macs(layer, _positions(state.sizes), attended, state.channels, ctx)
    return LeafOut(maps, State(state.sizes, state.channels, state.flattened), 0, macs)


def attend(layer, source, queries, ctx):
    """An :class:`~rfsym.layers.Attention` reading two inputs (LeViT's attention downsampling).

    Args:
        layer: the Attention (global: no window, no grid).
        source: the :class:`State` of the input giving keys and values.
        queries: the :class:`State` of the input giving the queries (and the output grid).
        ctx: the analysis :class:`Context`.

    Returns:
        A :class:`LeafOut`: the global maps on ``source`` (jump 0; the engine unites them with the
        queries' own field), the queries' sizes with the source's channels, parameters 0 and MACs
        ``N_q·N_k·(embed_dim + C)``.

    Raises:
        LayerError: a window or grid partition (queries of their own are global attention only).
    """
    if layer.window is not None or layer.grid is not None:
        raise LayerError("an Attention reading queries of its own (two inputs) attends every position: "
                         "window= and grid= are not supported", where=ctx.where,
                         param="window" if layer.window is not None else "grid")
    sizes = source.sizes or (None,) * ctx.ndim
    maps = tuple(global_map(n, jump=0) for n in sizes)
    macs = _attention_macs(layer, _positions(queries.sizes), _positions(source.sizes), source.channels, ctx)
    return LeafOut(maps, State(queries.sizes, source.channels, queries.flattened), 0, macs)


#: the largest number of output phases (positions with distinct receptive fields) one axis of
#: a layer may have: each is enumerated, so larger ones are refused instead of filling memory
MAX_PERIOD = 1 << 16


def check_period(ctx, value, param):
    """Refuse a number of phases above :data:`MAX_PERIOD` (``value`` an int or None)."""
    if value is not None and value > MAX_PERIOD:
        raise LayerError(f"{param}={value} gives {value:,} output phases with their own receptive field; "
                         f"rfsym enumerates at most {MAX_PERIOD:,} per axis", where=ctx.where, param=param)


def _factor(ctx, layer):
    f = ctx.val(layer.factor, "factor", 1)
    if ctx.ops.concrete(f) is None:
        raise LayerError(f"factor must be a number (one receptive field per output phase), got {f}",
                         where=ctx.where, param="factor")
    check_period(ctx, int(ctx.ops.concrete(f)), "factor")
    return int(ctx.ops.concrete(f))


def _shuffled_channels(ctx, c, f, up):
    if c is None:
        return None
    per = f ** ctx.ndim
    if not up:
        return c * per
    cc = ctx.ops.concrete(c)
    if cc is not None and cc % per:
        raise LayerError(f"depth to space by {f} needs channels divisible by {per}, got {cc}",
                         where=ctx.where, param="factor")
    return c / per if ctx.ops.symbolic else c // per


@register_layer(L.PixelShuffle)
def _pixel_shuffle(layer, state, ctx):
    f = _factor(ctx, layer)
    maps = (IDENTITY if f == 1 else AxisMap(f, 1, (0,) * f, (1,) * f),) * ctx.ndim
    sizes = None if state.sizes is None else tuple(n * f for n in state.sizes)
    return LeafOut(maps, State(sizes, _shuffled_channels(ctx, state.channels, f, True)))


@register_layer(L.PixelUnshuffle)
def _pixel_unshuffle(layer, state, ctx):
    f = _factor(ctx, layer)
    maps = (AxisMap.affine(0, f, f),) * ctx.ndim
    sizes = None
    if state.sizes is not None:
        sizes = []
        for axis, n in enumerate(state.sizes):
            nc = ctx.ops.concrete(n)
            if nc is not None and nc % f:
                raise LayerError(f"space to depth by {f} needs sizes divisible by {f}, got {nc} on axis {axis}",
                                 where=ctx.where, param="factor")
            sizes.append(ctx.ops.floordiv(n, f))
        sizes = tuple(sizes)
    return LeafOut(maps, State(sizes, _shuffled_channels(ctx, state.channels, f, False)))
