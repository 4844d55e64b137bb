"""What an analysis returns: :class:`Result` for the network, :class:`LayerResult` per node.

Every quantity is read from the engine's node records (:class:`NodeRecord`); nothing here
derives anything. Conventions are stated in :mod:`rfsym.engine`.
"""

from __future__ import annotations

import gc
import numbers
import weakref
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sympy as sp

from . import layers as L
from .compiled import BUFFERS, LIMIT, Overflow, Program, Unsupported, as_value
from .errors import LayerError, RfsymError, layer_label
from .lazy_numpy import is_array, np
from .maps import IDENTITY, AxisMap
from .ops import ExactOps, NumOps, SymOps
from .symbols import as_expr, exceeds

__all__ = ["Result", "LayerResult", "NodeRecord", "QUANTITIES", "position_wise", "EvaluatedResult", "EvaluatedLayer"]

QUANTITIES = ("rf", "rf_min", "jump", "start", "center", "period", "out_size")


@dataclass(slots=True)
class NodeRecord:
    """What the engine derived for one DAG node (read by :class:`LayerResult`).

    ``composite`` is a zero-argument callable giving the per-axis maps from the network input
    to the node's output (computed once, on demand); ``input_maps`` the same for the grid it
    reads; ``own`` the layer's own maps (None for merges)."""

    index: int
    layer: Any
    name: str
    type: str
    composite: Any
    input_maps: Any
    in_sizes: Any
    out_sizes: Any
    in_channels: Any
    out_channels: Any
    params: Any
    macs: Any
    own: Any = None
    inputs: tuple = ()
    extra: dict = field(default_factory=dict)


_INTS = {}  # small Python ints -> their sympy Integers (filled when met)


def _number(value):
    """An exact value of the fast path (a Python int or Fraction) as the sympy number
    :class:`~rfsym.ops.SymOps` would give (None stays None)."""
    if type(value) is int:
        n = _INTS.get(value)
        if n is None:
            n = sp.Integer(value)
            if -4096 <= value <= 4096:
                _INTS[value] = n
        return n
    if isinstance(value, int):
        return sp.Integer(value)
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    return value if value is None else sp.sympify(value)


def _numbers(values):
    """Per-axis exact values as sympy numbers; an axis equal to the one before shares its object
    (one conversion, and :func:`_collapse` sees them equal at once)."""
    if len(values) < 2:
        return tuple(_number(v) for v in values)
    first = _number(values[0])
    out = [first]
    for i in range(1, len(values)):
        v, before = values[i], values[i - 1]
        out.append(out[-1] if v is before or v == before else _number(v))
    return tuple(out)


def _tidy(value, ops):
    if ops is ExactOps:  # Python ints and Fractions of the fast path: sympy numbers, as SymOps gives
        return _number(value)
    if not ops.symbolic:
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
    return _number(value)


def _small(expr, limit):
    return not exceeds(expr, limit)


def _collapse(values, ops):
    first = values[0]
    for v in values[1:]:
        if v is first:
            continue
        if ops.exact:
            if sp.sympify(v) != sp.sympify(first):
                return tuple(values)
        elif not np.array_equal(np.asarray(v), np.asarray(first)):
            return tuple(values)
    return first


def _axis_quantity(m: AxisMap, name, ops):
    """One quantity of one axis's map (computed on demand: on numpy arrays each costs a pass)."""
    if name == "rf":
        return m.rfs[0] if m.period == 1 else ops.max(*m.rfs)
    if name == "rf_min":
        return m.rfs[0] if m.period == 1 else ops.min(*m.rfs)
    if name == "jump":
        if m.period == 1 and (type(m.jump) is int or isinstance(m.jump, np.ndarray)):
            return m.jump  # dividing by 1 would cost a pass (on arrays) or a sympy call
        return ops.div(m.jump, m.period)
    if name == "start":
        return m.starts[0]
    if name == "center":
        return m.starts[0] + ops.div(m.rfs[0] - 1, 2)
    if name == "period":
        return m.period
    raise KeyError(name)


_PER_AXIS = frozenset(("rf", "rf_min", "jump", "start", "center", "period"))
_NONE = object()  # not computed yet


def _kept(values):
    """What a view keeps of a per-axis tuple: its one value when every axis holds that one
    object (no tuple per layer and quantity: long chains keep fewer objects), else the tuple."""
    if not values:
        return values
    first = values[0]
    for v in values:
        if v is not first:
            return values
    return values if type(first) is tuple else first


class _Quantities:
    """Shared accessors: per-axis quantities with the collapse rule."""

    __slots__ = ()
    _ops = SymOps
    _qcache = None  # quantity -> per-axis tuple, made on the first read

    def _maps(self):  # per-axis AxisMaps, overridden
        raise NotImplementedError

    def _kept_axes(self, name):
        """The per-axis tuple of ``name`` kept by an earlier read (:func:`_kept`), or ``_NONE``."""
        cache = self._qcache
        if cache is None:
            self._qcache = {}
            return _NONE
        kept = cache.get(name, _NONE)
        if kept is _NONE or type(kept) is tuple:
            return kept
        if name == "out_size":  # (None: no input size)
            return kept if kept is None else (kept,) * len(self._sizes())
        return (kept,) * len(self._maps())

    def _q(self, name):
        kept = self._kept_axes(name)
        if kept is not _NONE:
            return kept
        cache = self._qcache
        ops = self._ops
        maps = self._maps()
        if ops is ExactOps:  # axes with one map (square kernels) computed and converted once
            if len(maps) == 2 and maps[0] is maps[1]:
                v = _number(_axis_quantity(maps[0], name, ops))
                cache[name] = v
                return v, v
            raw = []
            for i, m in enumerate(maps):
                raw.append(raw[-1] if i and m is maps[i - 1] else _axis_quantity(m, name, ops))
            out = _numbers(raw)
        else:
            out = tuple(_tidy(_axis_quantity(m, name, ops), ops) for m in maps)
        cache[name] = _kept(out)
        return out

    def axes(self, name):
        """The per-axis tuple of a quantity, whatever the collapse rule would give."""
        if not isinstance(name, str):
            raise RfsymError(f"a quantity is named by a string, got {name!r}")
        if name in _PER_AXIS:
            return self._q(name)
        if name == "out_size":
            kept = self._kept_axes(name)
            if kept is not _NONE:
                return kept
            cache = self._qcache
            sizes = self._sizes()
            if sizes is not None:
                ops = self._ops
                sizes = _numbers(sizes) if ops is ExactOps else tuple(_tidy(s, ops) for s in sizes)
                cache[name] = _kept(sizes)
            else:
                cache[name] = None
            return sizes
        raise RfsymError(f"unknown per-axis quantity {name!r}; one of rf, rf_min, jump, start, center, "
                         "period, out_size")

    def _one(self, name):
        cache = self._qcache
        if cache is not None:
            kept = cache.get(name, _NONE)
            if kept is not _NONE and type(kept) is not tuple:
                return kept  # one object for every axis
        vals = self.axes(name) if name == "out_size" else self._q(name)
        if vals is None:
            return None
        first = vals[0]
        for v in vals:
            if v is not first:
                return _collapse(vals, self._ops)
        return first

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
        if len(pos) != len(maps):
            raise RfsymError(f"position has {len(pos)} axes but the network has {len(maps)}")
        pos = tuple(int(e) if e.is_Integer else e for e in (as_expr(p, "position", minimum=None) for p in pos))
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
    """Quantities of one layer's output with respect to the network input.

    Made when first read (:attr:`Result.layers`) and light (slotted): its values are read from
    the engine's record when asked for, and kept.

    Attributes:
        index: the node's position in :attr:`Result.layers` (topological order).
        name: the layer's path (e.g. ``layer4.2.conv3``; a merge node's name).
        type: the layer's type name (e.g. ``Conv``, ``add``).
        layer: the layer object (None for a merge node).
        inputs: the indices of the nodes it reads (empty for the network input).
    """

    __slots__ = ("_node", "_ops", "_qcache", "_input")

    def __init__(self, node: NodeRecord, ops):
        self._node = node
        self._ops = ops
        self._qcache = None
        self._input = None

    index = property(lambda self: self._node.index)
    name = property(lambda self: self._node.name)
    type = property(lambda self: self._node.type)
    layer = property(lambda self: self._node.layer)
    inputs = property(lambda self: self._node.inputs)

    def _cached(self, key, make):
        cache = self._qcache
        if cache is None:
            cache = self._qcache = {}
        elif key in cache:
            return cache[key]
        cache[key] = value = make()
        return value

    @property
    def in_channels(self):
        """Channels of the layer's input (None when unknown)."""
        return self._cached("in_channels", lambda: _fast_out(self._node.in_channels, self._ops))

    @property
    def out_channels(self):
        """Channels of the layer's output (None when unknown)."""
        return self._cached("out_channels", lambda: _fast_out(self._node.out_channels, self._ops))

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
        if self._input is None:
            self._input = _InputView(self._node, self._ops)
        return self._input

    @property
    def in_size(self):
        sizes = self._node.in_sizes
        return None if sizes is None else _collapse(tuple(_tidy(s, self._ops) for s in sizes), self._ops)

    @property
    def params(self):
        """Trainable parameters of this layer alone."""
        return self._cached("params", lambda: None if self._node.params is None else _tidy(self._node.params, self._ops))

    @property
    def macs(self):
        """MACs of this layer alone."""
        return self._cached("macs", lambda: None if self._node.macs is None else _tidy(self._node.macs, self._ops))

    def _repr_html_(self):  # notebooks: the layer's quantities as a table (rfsym.html)
        from .html import layer_html
        return layer_html(self)

    def _repr_markdown_(self):
        from .html import layer_markdown
        return layer_markdown(self)

    def __repr__(self):
        return f"<LayerResult {self.index} {self.type} {self.name!r}: rf={self.rf}, jump={self.jump}>"


class _InputView(_Quantities):
    """Quantities of the grid a layer reads (see :attr:`LayerResult.input`)."""

    __slots__ = ("_node", "_ops", "_qcache")

    def __init__(self, node, ops):
        self._node = node
        self._ops = ops
        self._qcache = None

    def _maps(self):
        return self._node.input_maps()

    def _sizes(self):
        return self._node.in_sizes


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
    return arr.astype(np.int64, copy=False)




class Result(_Quantities):
    """Everything rfsym derived about one network (conventions in :mod:`rfsym.engine`).

    The attributes of the result itself (``rf``, ``jump``, ``start``, ``center``, ``out_size``,
    ``out_channels``, ...) describe the network's (first) output; ``params`` and ``macs`` are
    totals over every node, each counted once.

    Attributes:
        network: the analysed layer.
        input_size: the per-axis input size (None when not given).
        ndim: the number of spatial axes.
        in_channels: the input's channel count (None when not given).
        layers: one :class:`LayerResult` per DAG node, in topological order.
        outputs: output name -> :class:`LayerResult` of each output node.
        notes: conventions the analysis applied, as sentences (e.g. how norms whose statistics
            span positions were treated).
        strict: whether such norms were made global (``analyze(..., strict=True)``).

    >>> from rfsym import analyze, Conv, Sequential
    >>> r = analyze(Sequential(Conv(3, stride=2, name="a"), Conv(3, name="b")), input_size=9)
    >>> r.rf, r.jump, r.out_size, [layer.name for layer in r.layers]
    (7, 2, 2, ['a', 'b'])
    """

    def __init__(self, network, input_size, ndim, in_channels, ops, records, outputs, features,
                 aliases, notes, strict, derive, values=None, checks=()):
        self.network = network
        self._checks = checks  # what the symbolic pass could not decide (see rfsym.compiled)
        self.input_size = input_size
        self.ndim = ndim
        self.in_channels = in_channels
        self._ops = ops
        self._derive = derive
        self._values = values
        self._aliases = aliases
        self._records = records
        self._layers = {}
        # (name, node index, or None when the output is the input itself)
        self._output_index = outputs
        self._features = features
        self.notes = notes
        self.strict = strict

    @property
    def open_conditions(self) -> tuple:
        """Conditions on the symbols that the symbolic derivation could not decide, as tuples
        ``(expression, parameter, minimum, layer)``: the expression must be an integer at least
        ``minimum``, or zero when ``minimum`` is ``"zero"`` (``None``: integral only; an
        expression None: a condition the compiled :meth:`evaluate` leaves to the engine).
        :meth:`evaluate` checks them on its values.

        >>> from rfsym import Conv, analyze, symbols
        >>> k = symbols("k")
        >>> [c[:3] for c in analyze(Conv(k - 2), input_size=9, ndim=1).open_conditions]
        [(k - 2, 'kernel_size', 1), (12 - k, 'output size', 1)]
        """
        return self._checks

    @property
    def layers(self) -> list:
        """One :class:`LayerResult` per DAG node, in topological order (each node once)."""
        if "all" not in self._layers:
            made, ops = self._layers, self._ops  # the layers read before (outputs) are kept
            enabled = gc.isenabled()
            gc.disable()  # one object a node, none freed: collections would only cost time (as in analyze)
            try:
                made["all"] = [made.get(i) or LayerResult(node, ops) for i, node in enumerate(self._records)]
            finally:
                if enabled:
                    gc.enable()
        return self._layers["all"]

    def _layer_at(self, i):
        made = self._layers
        everything = made.get("all")
        if everything is not None:
            return everything[i]
        if i not in made:
            made[i] = LayerResult(self._records[i], self._ops)
        return made[i]

    @property
    def _outputs(self):
        return [(name, None if i is None else self._layer_at(i)) for name, i in self._output_index]

    def _first(self):
        i = self._output_index[0][1]
        return None if i is None else self._layer_at(i)

    def _maps(self):
        first = self._first()
        return (IDENTITY,) * self.ndim if first is None else first._maps()

    def _sizes(self):
        first = self._first()
        if first is None:
            return None if self.input_size is None else tuple(self.input_size)
        return first._sizes()

    @property
    def out_channels(self):
        """Channels of the (first) output (None when unknown)."""
        first = self._first()
        return _fast_out(self.in_channels, self._ops) if first is None else first.out_channels

    @property
    def outputs(self) -> dict:
        """Output name -> :class:`LayerResult`, for every output of the network."""
        return {name: (lr if lr is not None else self) for name, lr in self._outputs}

    @property
    def features(self):
        """The reference feature map (the backbone layer: a zoo entry's, or ``Graph(features=)``),
        as a :class:`LayerResult`, or None."""
        return None if self._features is None else self._layer_at(self._features)

    def set_features(self, name: str) -> None:
        """Make the layer or block called ``name`` the reference feature map (:attr:`features`).

        Args:
            name: a layer's or block's path.

        Raises:
            RfsymError: no such layer.
        """
        lr = self.layer(name)
        self._features = lr.index

    def layer(self, name: str) -> LayerResult:
        """The layer called ``name`` (its full path, e.g. ``layer4.2.conv3``), or the node that
        produces the output of the block called ``name`` (e.g. ``layer4``).

        Args:
            name: a layer's path or a block's path.

        Returns:
            The :class:`LayerResult`.

        Raises:
            RfsymError: no such layer (the message lists close names).

        >>> from rfsym import analyze, Conv, Sequential
        >>> analyze(Sequential(Conv(3, name="a"), Sequential(Conv(3), name="b"))).layer("b.0").rf
        5
        """
        if not isinstance(name, str):
            raise RfsymError(f"a layer is named by its path (a string), got {name!r}")
        by_name = self.__dict__.get("_by_name")
        if by_name is None:  # the last node of each name (a block's output shares its last layer's)
            by_name = self._by_name = {node.name: i for i, node in enumerate(self._records)}
        if name in by_name:
            return self._layer_at(by_name[name])
        if name in self._aliases:
            return self._layer_at(self._aliases[name])
        names = [layer.name for layer in self.layers]
        close = [n for n in names if isinstance(name, str) and name in n][:5]
        hint = f"; names containing it: {', '.join(close)}" if close else ""
        raise RfsymError(f"no layer named {name!r} in this network{hint}")

    def at(self, name: str) -> LayerResult:
        """Same as :meth:`layer`: the quantities at the layer or block called ``name``."""
        return self.layer(name)

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

    @property
    def exact(self):
        """Whether every quantity is exact: False when some may be an upper bound, None when
        that depends on the symbols.

        After a transposed convolution with both a stride and a dilation above 1 (its output
        phases interleave and some read sparse sets), the layers that follow may be given a
        bounding interval larger than what they read: their ``rf`` (and ``start``, ``rf_min``)
        may exceed what enumeration finds; :func:`rfsym.verify` gives the exact values. The
        flag is conservative (False may be given where the values happen to be exact).

        A merge of a global branch (jump 0: a gate after global pooling, broadcast; a
        squeeze-and-excitation body) with a local one is taken as global: one interval for every
        output (:func:`rfsym.maps.merge`). That is exact on the merge's real outputs when the
        global field covers what the local branches read there; but at the merge's positions
        beyond them (padding, which a padded convolution reads) the true field is the hull of the global field and the local branch's
        extension, which no interval map with a jump describes (the true fields differ at the
        border, jump and period are undefined). So the result is not exact (False) when a layer
        after such a merge reads other positions than its own (conservative: any layer but
        position-wise ones and 1x1 windows of stride 1).

        >>> from rfsym import ConvTranspose, Sequential, analyze
        >>> analyze(Sequential(ConvTranspose(3, stride=2, dilation=3), ConvTranspose(3, dilation=3))).exact
        False
        >>> analyze(Sequential(ConvTranspose(4, stride=2), ConvTranspose(3))).exact
        True
        >>> from rfsym import Conv, GlobalAvgPool, Graph
        >>> gate = [("c", Conv(3, padding=1), "input"), ("g", GlobalAvgPool(), "c"), ("m", "mul", ("c", "g"))]
        >>> analyze(Graph(*gate), 8, ndim=1).exact, analyze(Graph(*gate, ("d", Conv(1), "m")), 8, ndim=1).exact
        (True, True)
        >>> analyze(Graph(*gate, ("d", Conv(3, padding=1), "m")), 8, ndim=1).exact
        False
        """
        verdict = _global_merges_exact(self.layers)
        if verdict is False:
            return False
        last = max((lr.index for lr in self.layers), default=-1)
        for lr in self.layers:
            windows = getattr(lr.layer, "output_paddings", None) and lr.layer.windows(self.ndim)
            if not windows or lr.index == last:
                continue
            for w in windows:
                k, st, d = (v if isinstance(v, int) else v.p if getattr(v, "is_Integer", False) else None
                            for v in (w.kernel, w.stride, w.dilation))
                if None in (k, st, d):
                    verdict = None
                elif d > 1 and st > 1 and k > 1:
                    return False
        return verdict

    def _total(self, attr):
        total, arrays, exprs = 0, [], []
        for node in self._records:
            v = getattr(node, attr)
            if type(v) is int:  # the exact fast path's numbers (most): no other test
                total += v
                continue
            if v is None:
                return None
            if is_array(v) and v.ndim:
                arrays.append(v)  # added last: a scalar plus an array costs a pass over the array
            elif isinstance(v, sp.Basic) and not v.is_Number:
                exprs.append(v)  # one sum at the end: adding one by one re-sorts every term each time
            else:
                total = total + v
        if exprs:
            total = sp.Add(total, *exprs)
        for v in arrays:
            total = total + v
        return _tidy(total, self._ops)

    @property
    def params(self):
        """Trainable parameters of the whole network, each node counted once (None if some
        channel count is unknown)."""
        return self._total("params")

    @property
    def macs(self):
        """Multiply-accumulates of the whole network (None without an input size or channels)."""
        return self._total("macs")

    @property
    def free_symbols(self) -> set:
        """The symbols the network, its input size and channels contain."""
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
            if lr.layer is None:
                continue
            try:
                lr.layer.subs(mapping)
            except LayerError as inner:
                return inner.located(layer_label(lr.layer, lr.index))
        return err

    def subs(self, mapping: dict) -> Result:
        """The result for the network with symbols replaced by values (exact, re-derived).

        Args:
            mapping: symbols (or their names) to integers or sympy expressions.

        Returns:
            A new :class:`Result`.

        Raises:
            RfsymError: an unknown symbol or a value that is not an integer or expression.

        >>> from rfsym import analyze, Conv, symbols
        >>> k = symbols("k")
        >>> analyze(Conv(k)).subs({k: 5}).rf
        5
        """
        m = self._mapping(mapping)
        for s, value in m.items():
            if isinstance(value, (str, bytes, bool)) or not isinstance(value, (numbers.Number, sp.Basic)):
                raise RfsymError(f"subs: the value for {s.name} must be an integer or a sympy expression, "
                                 f"got {value!r}")
        try:
            net = self.network.subs(m)
        except LayerError as err:
            raise self._locate(err, m) from None
        size = None if self.input_size is None else tuple(sp.sympify(n).subs(m) for n in self.input_size)
        ch = None if self.in_channels is None else sp.sympify(self.in_channels).subs(m)
        return self._derive(net, input_size=size, ndim=self.ndim, in_channels=ch, strict=self.strict)

    def evaluate(self, values: dict) -> Result:
        """Vectorised numeric evaluation: ``values`` maps symbols (or names) to numbers or numpy
        arrays (broadcast together); every quantity of the returned result is an int64 array (or
        a Python int) equal to what :meth:`subs` gives, configuration by configuration.

        On arrays the closed forms are compiled once per result (:mod:`rfsym.compiled`) and
        each quantity of each layer is computed when read (an :class:`EvaluatedResult`), so
        memory grows with the quantities read, not with the layers. The value arrays come from a
        pool (:data:`rfsym.compiled.BUFFERS`, up to 256 MB, shared by all results): an array is
        reused by a later evaluation once nothing refers to it, which spares the system
        zero-filling fresh memory on every call (``BUFFERS.clear()`` releases the free ones).
        Nothing wraps around: the
        compiled program bounds every intermediate value on the input ranges first, and where a
        bound could reach 2**62, or values break a condition the symbolic derivation left open
        (a stride that must be positive, a size at least 1), the engine re-derives on checked
        arrays (:class:`~rfsym.checked.Checked`): an operation that could overflow int64 is
        recomputed exactly on Python ints, values beyond int64 come back in an object array of
        Python ints, and invalid values raise the error naming the layer. Scalar values are
        computed on Python ints by the engine.

        ``center`` (and ``jump`` when the output grid is finer than the input) may be a
        half-integer or a fraction: those come as float64, exact for half-integers.

        Args:
            values: symbols (or names) to integers or integer arrays.

        Returns:
            An :class:`EvaluatedResult` (a :class:`Result` of the engine path for scalars, values
            beyond int64 or closed forms that could overflow), with the attributes of a result.

        Raises:
            RfsymError: a missing symbol, non-integer values or shapes that do not broadcast.
            LayerError: values invalid for some layer (named, with the parameter).

        >>> import numpy as np
        >>> from rfsym import Conv, Sequential, analyze, symbols
        >>> k, s = symbols("k s")
        >>> e = analyze(Sequential(Conv(k, stride=s), Conv(3))).evaluate({k: np.array([3, 5]), s: 2})
        >>> e.rf.tolist(), e.jump, e.layers[0].rf.tolist()
        ([7, 9], 2, [3, 5])
        """
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
        ranges = _ranges(named) if self._ops is SymOps else None
        if ranges is not None:
            ev = _Evaluator(self, named, ranges)
            if ev.valid():
                return EvaluatedResult(self, ev)
        return self._engine_evaluate(named)

    def _engine_evaluate(self, named):
        """The engine's evaluation (checked arrays, every layer re-derived on numpy)."""
        return self._derive(self.network, input_size=self.input_size, ndim=self.ndim,
                            in_channels=self.in_channels, strict=self.strict, ops=NumOps,
                            numeric_values=named)

    def _repr_html_(self):  # notebooks: closed forms, the backbone row, a per-layer table (rfsym.html)
        from .html import result_html
        return result_html(self)

    def _repr_markdown_(self):
        from .html import result_markdown
        return result_markdown(self)

    def __repr__(self):
        return (f"<Result {len(self._records)} layers: rf={self.rf}, jump={self.jump}, start={self.start}, "
                f"out_size={self.out_size}, params={self.params}, macs={self.macs}>")


def _global_merges_exact(layers) -> bool | None:
    """Whether the global merges (:attr:`Result.exact`) leave the values exact: False when one
    is inexact on its real outputs or a later layer reads other positions than its own (then
    the positions beyond the merge's real outputs matter); None when undecidable."""
    verdict, after = True, set()  # after: nodes downstream of a global merge
    for lr in layers:  # topological order
        merge = lr._node.extra.get("global_merge")
        if merge is not None:
            own = merge()
            if own is False:
                return False
            if own is None:
                verdict = None
        if any(u in after for u in lr.inputs):
            if not position_wise(lr.layer):
                return False
            after.add(lr.index)
        if merge is not None:
            after.add(lr.index)
    return verdict


def position_wise(layer) -> bool:
    """Whether ``layer`` (a leaf, or a block solved as one node) reads position ``o`` of its input
    only, at every position of the unbounded grid: layers with no spatial effect, channel-wise
    layers, and 1x1 windows of stride 1 without padding (conservative: False when in doubt).

    Args:
        layer: the node's layer (None for a merge node).

    Returns:
        True or False.
    """
    stack = [layer]
    while stack:
        x = stack.pop()
        if x is None or isinstance(x, str):
            continue
        if isinstance(x, L.Block):
            stack.extend(L.sublayers(x))
        elif isinstance(x, L.Norm):
            if x.spatial:
                return False
        elif isinstance(x, (L.Elementwise, L.BatchNorm, L.Pointwise, L.Params)):
            continue
        elif isinstance(x, (L.Conv, L.MaxPool, L.AvgPool)):
            pad = x.padding
            ones = [v for v in (x.kernel_size, x.stride) for v in (v if isinstance(v, tuple) else (v,))]
            if any(sp.sympify(v) != 1 for v in ones) or \
                    (pad != "valid" if isinstance(pad, str) else any(sp.sympify(v) != 0 for v in _flat_amounts(pad))):
                return False
        else:
            return False
    return True


def _flat_amounts(value):
    """The numbers of a padding value (a scalar, per-axis items or (left, right) pairs)."""
    if isinstance(value, tuple):
        return [v for item in value for v in (item if isinstance(item, tuple) else (item,))]
    return [value]


# ---- the compiled evaluation (Result.evaluate's fast path; rfsym.compiled)

def _ranges(named):
    """Input name -> (min, max), or None when the engine path is the one to take: every value a
    scalar (computed as Python ints), a value beyond int64 or an empty array."""
    ranges, arrays = {}, False
    for name, a in named.items():
        if a.dtype == object or a.size == 0:
            return None
        if a.ndim:
            arrays = True
            ranges[name] = (int(a.min()), int(a.max()))
        else:
            ranges[name] = (int(a), int(a))
    return ranges if arrays else None


def _kept_by(result, name, make):
    """What the symbolic ``result`` keeps under ``name`` for all its evaluations (the compiled
    program, caches of closed forms): ``make()`` on first use."""
    value = result.__dict__.get(name)
    if value is None:
        value = result.__dict__[name] = make()
    return value


def _after_symbolic_repeats(result):
    """The indices of the nodes at or after a Repeat with a symbolic count (see
    :meth:`_Evaluator.arrayed`)."""
    marked = set()
    for lr in result.layers:
        if (isinstance(lr.layer, L.Repeat) and sp.sympify(lr.layer.n).free_symbols) or \
                any(u in marked for u in lr.inputs):
            marked.add(lr.index)
    return marked


class _Evaluator:
    """One compiled evaluation: the symbolic result, the input arrays and their ranges.

    Values are computed on demand from the symbolic closed forms (compiled once per symbolic
    result, shared by its evaluations) and never stored here but for the last value of each
    quantity (the next layer's is often that one plus a constant) and at most one value per
    quantity computed on the way to it (:meth:`_delta`)."""

    def __init__(self, result, named, ranges):
        self.result = result
        self.inputs = {k: (int(a) if a.ndim == 0 else a) for k, a in named.items()}
        self.named = named
        self.ranges = ranges
        # intervals and the interval proofs of the open conditions depend on the ranges only:
        # shared by the evaluations of this result on the same ranges
        by_ranges = _kept_by(result, "_by_ranges", dict)
        key = tuple(sorted(ranges.items()))
        entry = by_ranges.get(key)
        if entry is None:
            if len(by_ranges) >= 64:
                by_ranges.clear()
            entry = by_ranges[key] = {"bounds": {}, "proved": False}
        self._entry = entry
        self.bounds = entry["bounds"]
        self.recent = {}
        # expression -> its value while someone holds it (layers share most values)
        self.shared = weakref.WeakValueDictionary()
        self.spare = {}  # key -> (expression, value) computed on the way to that key's last value
        self.shape = np.broadcast_shapes(*(a.shape for a in named.values()))
        self._engine = None
        self._arrayed = None

    def arrayed(self, nodes):
        """Whether node ``index`` is at or after a Repeat with a symbolic count: the engine unrolls
        those on arrays, so even their constant quantities come as arrays (kept so here)."""
        if self._arrayed is None:
            self._arrayed = _kept_by(self.result, "_arrayed", lambda: _after_symbolic_repeats(self.result))
        return any(u in self._arrayed for u in nodes)

    @property
    def program(self):
        return _kept_by(self.result, "_program", Program)

    #: the pool the value arrays come from (shared by every result's evaluations)
    buffers = BUFFERS

    def engine(self):
        if self._engine is None:
            self._engine = self.result._engine_evaluate(self.named)
        return self._engine

    def _compiled(self, expr):
        node, den = self.program.compile(expr)
        self.program.bounds([node], self.ranges, self.bounds)
        lo, hi = self.bounds[node]
        return node, den, max(-lo, hi)

    def valid(self):
        """Whether every condition the symbolic pass left open holds (interval proofs first,
        then one pass per open condition); False sends evaluate to the engine path, which
        raises the error naming the layer and parameter."""
        if self._entry["proved"]:
            return True
        proved = True  # by intervals alone, so for any values in these ranges
        unique = _kept_by(self.result, "_unique_checks", lambda: list(dict.fromkeys(  # one per expression and bound
            (e, m) for e, _, m, _ in self.result.open_conditions)))
        for expr, minimum in unique:
            if expr is None:
                return False
            try:
                node, den, _ = self._compiled(expr)
            except (Unsupported, Overflow):
                return False
            lo, hi = self.bounds[node]
            if minimum == "zero":
                if lo == hi == 0:
                    continue
            elif den == 1 and (minimum is None or lo >= minimum):
                continue
            proved = False
            num = np.asarray(self.program.run([node], self.inputs, self.buffers)[0])
            if minimum == "zero":
                ok = not num.any()
            else:
                ok = (den == 1 or not np.any(num % den)) and (minimum is None or not np.any(num < minimum * den))
            if not ok:
                return False
        self._entry["proved"] = proved
        return True

    def value(self, expr, key):
        """The numeric value of ``expr`` (a symbolic quantity), exact.

        Raises:
            Unsupported, Overflow: the caller takes the engine's value instead.
        """
        if expr is None:
            return None
        plain = _kept_by(self.result, "_plain", dict)  # expression -> its number, or None when symbolic
        number = plain.get(expr, _NONE)
        if number is _NONE:
            e = sp.sympify(expr)
            if e.free_symbols:
                number = None
            elif not e.is_Rational:
                raise Unsupported(str(e))
            else:
                number = int(e) if e.is_Integer else Fraction(int(e.p), int(e.q))
            plain[expr] = number
        if number is not None:
            return number
        expr = sp.sympify(expr)
        prev = self.recent.get(key)
        if prev is not None and prev[0] == expr:
            return prev[1]
        held = self.shared.get(expr)
        if held is None:
            held = self._spare(expr)
        if held is not None:
            self.recent[key] = (expr, held, getattr(held, "bound", None) or LIMIT)
            return held
        out = self._delta(expr, prev, key) if prev is not None else None
        if out is None:
            node, den, bound = self._compiled(expr)
            value = as_value(self.program.run([node], self.inputs, self.buffers)[0], den, bound)
            out = value, bound
        self.recent[key] = (expr, *out)
        if isinstance(out[0], np.ndarray):
            self.shared[expr] = out[0]
        return out[0]

    def _spare(self, expr):
        """A value computed on the way to another one (:meth:`_delta`), now asked for: handed
        out (and shared from then on), or None."""
        if not self.spare:
            return None
        expanded = _kept_by(self.result, "_expanded", dict)  # the tidied closed forms may be factored
        if expr not in expanded:
            expanded[expr] = sp.expand(expr) if _small(expr, 400) else expr
        flat = expanded[expr]
        for k, (e, arr) in self.spare.items():
            if e == expr or e == flat:
                del self.spare[k]
                self.shared[expr] = arr
                return arr
        return None

    def _plan(self, pexpr, expr):
        """How ``expr`` follows from ``pexpr`` (cached per result): ``(diff, poly, const)`` with
        ``diff = expr - pexpr = poly + const`` when the difference is cheaper than ``expr``, else None."""
        deltas = _kept_by(self.result, "_deltas", dict)
        plan = deltas.get((pexpr, expr), _NONE)
        if plan is _NONE:
            plan = None
            if _small(expr, 400) and _small(pexpr, 400):
                diff = sp.expand(expr - pexpr)
                if not diff.free_symbols or sp.count_ops(diff) < sp.count_ops(expr):
                    const, poly = diff.as_coeff_Add()
                    plan = diff, poly, const
            deltas[(pexpr, expr)] = plan
        return plan

    #: networks up to this many nodes have their fields looked up for :meth:`_wanted`
    WANTED_NODES = 2000

    def _wanted(self, key, expr) -> bool:
        """Whether some layer's per-axis quantity of ``key`` (or the network's) has the closed
        form ``expr``: only such an intermediate is worth keeping (the lookup is made once per
        result and quantity, for networks of at most :data:`WANTED_NODES` nodes)."""
        name = key[1]
        if not (isinstance(name, tuple) and name[0] in _PER_AXIS):
            return False
        sym = self.result
        if len(sym._records) > self.WANTED_NODES:
            return False
        forms = _kept_by(sym, "_forms", dict)
        if name[0] not in forms:
            found = set()
            for view in (sym, *sym.layers):
                for e in view.axes(name[0]):
                    e = sp.sympify(e)
                    found.add(e)
                    if _small(e, 400):
                        found.add(sp.expand(e))
            forms[name[0]] = found
        return expr in forms[name[0]]

    def _delta(self, expr, prev, key):
        """``expr`` as the previous value of its quantity plus a cheaper difference, or None.

        A difference ``poly + c`` (``poly`` symbolic, ``c`` a nonzero integer) costs three
        passes whichever way it is computed; computed as ``(previous + poly) + c``, the
        intermediate ``previous + poly`` is kept (one per quantity, when some layer has that
        field: :meth:`_wanted`) and handed out when asked for: in a ResNet a stage's layers alternate between such a pair of fields (``… + 3`` and
        ``… + 19``), so the second one costs no pass."""
        pexpr, pval, pbound = prev
        if not isinstance(pval, np.ndarray) or pval.dtype != np.int64:
            return None
        plan = self._plan(pexpr, expr)
        if plan is None:
            return None
        diff, poly, const = plan
        split = const != 0 and const.is_Integer and poly.free_symbols and self._wanted(key, sp.Add(pexpr, poly))
        try:
            node, den, bound = self._compiled(poly if split else diff)
        except (Unsupported, Overflow):
            return None
        total = pbound + bound + (abs(int(const)) if split else 0)
        if den != 1 or total > LIMIT:
            return None
        d = self.program.run([node], self.inputs, self.buffers)[0]
        own = isinstance(d, np.ndarray) and self.program.nodes[node][0] != "sym" and d.shape == pval.shape
        shape = np.broadcast_shapes(pval.shape, np.shape(d))
        out = np.add(pval.view(np.ndarray), d, out=d if own else self.buffers.empty(shape))  # d: a temporary of its own
        if out.shape != pval.shape:
            return None
        out = out.view(type(pval))
        if split:  # out is previous + poly: kept; the value asked for is one more pass
            out.bound = pbound + bound
            self.spare[key] = (sp.Add(pexpr, poly), out)
            out = np.add(out.view(np.ndarray), int(const), out=self.buffers.empty(out.shape)).view(type(pval))
        out.bound = total
        return out, out.bound


class _EvalView(_Quantities):
    """Per-axis quantities of one view (a layer, its input grid, the network) of a compiled
    evaluation, computed on first access from the symbolic closed forms and kept."""

    _ops = NumOps

    def __init__(self, sym, ev, engine_view, key, nodes=()):
        self._index = nodes
        self._sym = sym
        self._ev = ev
        self._engine_view = engine_view  # zero-argument callable: the engine path's same view
        self._key = key
        self._cache = {}

    _index = ()  # the nodes whose quantities these are (none: the network input)

    def _value(self, expr, name, engine_value):
        try:
            out = self._ev.value(expr, (self._key, name))
        except (Unsupported, Overflow):
            return engine_value()
        if not isinstance(out, np.ndarray) and out is not None and self._ev.arrayed(self._index):
            out = np.broadcast_to(np.array(out, dtype=np.int64 if isinstance(out, int) else float), self._ev.shape)
        return out

    def axes(self, name):
        """The per-axis tuple of a quantity (see :meth:`LayerResult.axes`)."""
        if name in self._cache:
            return self._cache[name]
        exprs = self._sym.axes(name)  # validates the name
        if exprs is None:
            out = None
        else:
            vals = []
            for a, e in enumerate(exprs):
                if a and e == exprs[0]:
                    vals.append(vals[0])
                else:
                    vals.append(self._value(e, (name, a), lambda a=a: self._engine_view().axes(name)[a]))
            out = tuple(vals)
        self._cache[name] = out
        return out

    def _q(self, name):
        return self.axes(name)

    def _one(self, name):
        vals = self.axes(name)
        if vals is None:
            return None
        return vals[0] if all(v is vals[0] for v in vals) else _collapse(vals, NumOps)

    def _maps(self):
        return self._engine_view()._maps()

    def _scalar(self, name):
        if name not in self._cache:
            self._cache[name] = self._value(getattr(self._sym, name), name,
                                            lambda: getattr(self._engine_view(), name))
        return self._cache[name]

    def __getattr__(self, attr):  # anything not compiled: the engine path's value
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self._engine_view(), attr)

    def _repr_html_(self):  # notebooks: the engine path's table
        return self._engine_view()._repr_html_()

    def _repr_markdown_(self):
        return self._engine_view()._repr_markdown_()


class EvaluatedLayer(_EvalView):
    """A :class:`LayerResult` of :meth:`Result.evaluate`: the same attributes, numeric, computed
    on first access (only the quantities read cost memory)."""

    def __init__(self, sym, ev, engine_view):
        super().__init__(sym, ev, engine_view, "layer", (sym.index,))
        self.index, self.name, self.type = sym.index, sym.name, sym.type
        self.layer, self.inputs = sym.layer, sym.inputs

    in_channels = property(lambda self: self._scalar("in_channels"), doc="Input channels.")
    out_channels = property(lambda self: self._scalar("out_channels"), doc="Output channels.")
    params = property(lambda self: self._scalar("params"), doc="Trainable parameters of this layer.")
    macs = property(lambda self: self._scalar("macs"), doc="MACs of this layer.")

    @property
    def input(self):
        """The grid this layer reads (see :attr:`LayerResult.input`)."""
        if "input" not in self._cache:
            view = self._engine_view  # not self: no reference cycle keeps the values alive
            self._cache["input"] = _EvalView(self._sym.input, self._ev, lambda: view().input,
                                             "input", tuple(self._sym.inputs))
        return self._cache["input"]

    @property
    def in_size(self):
        sizes = self.input.axes("out_size")
        return None if sizes is None else _collapse(sizes, NumOps)

    def __repr__(self):
        return f"<EvaluatedLayer {self.index} {self.type} {self.name!r}>"


class EvaluatedResult(_EvalView):
    """What :meth:`Result.evaluate` returns: the attributes of a :class:`Result`, each an int64
    array (float64 for half-integer centres) computed on first access from the compiled closed
    forms; memory grows with the quantities read, not with the layers.

    >>> import numpy as np
    >>> from rfsym import Conv, Sequential, analyze, symbols
    >>> k, s = symbols("k s")
    >>> e = analyze(Sequential(Conv(k, stride=s), Conv(k))).evaluate({k: np.array([3, 5]), s: 2})
    >>> e.rf.tolist(), e.layers[0].rf.tolist(), e.jump
    ([7, 13], [3, 5], 2)
    """

    def __init__(self, sym, ev):
        first = sym._first()
        super().__init__(sym, ev, ev.engine, "network", () if first is None else (first.index,))
        self.network, self.input_size, self.ndim = sym.network, sym.input_size, sym.ndim
        self.in_channels, self.notes, self.strict = sym.in_channels, sym.notes, sym.strict
        self._layers = None

    @property
    def layers(self) -> list:
        """One :class:`EvaluatedLayer` per DAG node, in topological order."""
        if self._layers is None:
            ev = self._ev  # not self: no reference cycle keeps the values alive
            self._layers = [EvaluatedLayer(lr, ev, lambda i=i: ev.engine().layers[i])
                            for i, lr in enumerate(self._sym.layers)]
        return self._layers

    def _wrap(self, lr):
        return self if lr is self._sym else self.layers[lr.index]

    def layer(self, name: str) -> EvaluatedLayer:
        """The layer called ``name`` (see :meth:`Result.layer`)."""
        return self.layers[self._sym.layer(name).index]

    def at(self, name: str) -> EvaluatedLayer:
        """Same as :meth:`layer`."""
        return self.layer(name)

    @property
    def outputs(self) -> dict:
        """Output name -> :class:`EvaluatedLayer` (or this result when the output is the input)."""
        return {name: self._wrap(lr) for name, lr in self._sym.outputs.items()}

    @property
    def features(self):
        """The reference feature map (see :attr:`Result.features`), or None."""
        f = self._sym.features
        return None if f is None else self.layers[f.index]

    @property
    def free_symbols(self) -> set:
        return self._sym.free_symbols

    out_channels = property(lambda self: self._scalar("out_channels"), doc="Output channels.")
    params = property(lambda self: self._scalar("params"), doc="Trainable parameters of the network.")
    macs = property(lambda self: self._scalar("macs"), doc="MACs of the network.")

    def __repr__(self):
        return f"<EvaluatedResult {len(self._sym.layers)} layers: rf={self.rf}, jump={self.jump}>"
