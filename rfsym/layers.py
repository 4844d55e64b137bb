"""Layers: small frozen values holding sympy expressions.

Argument names follow PyTorch so that models transcribe line by line. Every numeric argument
takes an ``int`` or a sympy expression (symbols from :func:`rfsym.symbols`). ``kernel_size``,
``stride``, ``padding`` and ``dilation`` take a scalar, which means the same value on every
spatial axis, or a per-axis tuple (1-D, 2-D, 3-D). A network has two spatial axes unless a tuple,
the input size or ``analyze(..., ndim=...)`` says otherwise.

``padding`` takes

* an int or expression: that many positions on both sides of every axis;
* a per-axis tuple whose items are ints or ``(left, right)`` pairs;
* ``"valid"``: no padding;
* ``"same"``: PyTorch's rule, total ``d(k - 1)``, ``left = total // 2`` (stride 1 only);
* ``"tf_same"`` (alias ``"SAME"``): TensorFlow's rule, which depends on the input size ``n``:
  total ``max((ceil(n/s) - 1)s + d(k - 1) + 1 - n, 0)``, ``left = total // 2``, the extra pixel at
  the end.

Layers validate at construction; the engine validates again with the layer's position so that
errors read ``layer 3 (Conv): stride must be a positive integer, got 0``.

>>> from rfsym import Conv, symbols
>>> C = symbols("C")
>>> Conv(kernel_size=7, in_channels=C, out_channels=C, bias=False)
Conv(kernel_size=7, bias=False, in_channels=C, out_channels=C)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

import sympy as sp

from .errors import GraphError, LayerError, SizeError
from .lazy_numpy import np
from .symbols import as_expr, subs

__all__ = [
    "Layer", "Window", "Windowed", "per_axis", "Conv", "MaxPool", "AvgPool", "BatchNorm", "Linear", "Flatten",
    "GlobalAvgPool", "GlobalMaxPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "Elementwise",
    "Identity", "ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish",
    "Hardsigmoid", "ELU", "Softmax", "Dropout", "Sequential", "Block", "PADDING_MODES", "MAX_NESTING", "check_nesting", "sublayers", "config_fields",
    "Residual", "Concat", "Repeat", "repetition_index", "ConvTranspose", "Crop", "Upsample", "Graph",
    "MERGES", "Pad", "Norm", "Pointwise", "Params", "Attention", "PixelShuffle", "PixelUnshuffle",
]

PADDING_MODES = ("valid", "same", "tf_same")
_PADDING_ALIASES = {"valid": "valid", "VALID": "valid", "same": "same", "tf_same": "tf_same",
                    "SAME": "tf_same"}


@dataclass(frozen=True)
class Window:
    """One spatial axis of a sliding-window layer: output ``o`` reads inputs
    ``o*stride - pad_left + t*dilation`` for ``t = 0 .. kernel - 1``.

    ``pad`` is a ``(left, right)`` pair of expressions, or ``"tf_same"`` (resolved by the engine
    once the input size is known). ``ceil`` selects pooling's ``ceil_mode``.
    """

    kernel: sp.Expr
    stride: sp.Expr
    dilation: sp.Expr
    pad: Any
    ceil: bool = False

    @property
    def extent(self) -> sp.Expr:
        """Effective kernel ``d(k - 1) + 1``."""
        return self.dilation * (self.kernel - 1) + 1


def _axis_tuple(value, param, minimum=1):
    """Normalise a scalar-or-tuple spatial parameter (integers >= ``minimum``)."""
    if isinstance(value, (tuple, list)):
        if not 1 <= len(value) <= 3:
            raise LayerError(f"{param} must be a scalar or a tuple of 1 to 3 values, got {tuple(value)!r}",
                             param=param)
        return tuple(as_expr(v, param, minimum=minimum) for v in value)
    return as_expr(value, param, minimum=minimum)


def _padding(value):
    if isinstance(value, str):
        if value not in _PADDING_ALIASES:
            raise LayerError(
                f"padding must be an int, per-axis (left, right) pairs, 'valid', 'same' or 'tf_same', got {value!r}",
                param="padding")
        return _PADDING_ALIASES[value]
    if isinstance(value, (tuple, list)):
        if not 1 <= len(value) <= 3:
            raise LayerError(f"padding must be a scalar or a tuple of 1 to 3 values, got {tuple(value)!r}",
                             param="padding")
        items = []
        for v in value:
            if isinstance(v, (tuple, list)):
                if len(v) != 2:
                    raise LayerError(f"padding pairs must be (left, right), got {tuple(v)!r}", param="padding")
                items.append((as_expr(v[0], "padding", minimum=0), as_expr(v[1], "padding", minimum=0)))
            else:
                items.append(as_expr(v, "padding", minimum=0))
        return tuple(items)
    return as_expr(value, "padding", minimum=0)


def per_axis(value, ndim, param, owner):
    """``value`` per spatial axis: a tuple of ``ndim`` items (checked), or a scalar repeated."""
    if isinstance(value, tuple):
        if len(value) != ndim:
            raise LayerError(f"{param} has {len(value)} axes but the network has {ndim}: {value!r}",
                             param=param)
        return value
    return (value,) * ndim


#: deepest nesting of blocks (Sequential, Residual, Concat, Repeat, Graph) a network may have
MAX_NESTING = 10_000


def check_nesting(layer, children, where: str) -> None:
    """Record ``layer``'s nesting depth (one more than its deepest child's) and refuse more than
    :data:`MAX_NESTING` levels with a :class:`~rfsym.errors.LayerError` (analysis, ``repr`` and
    ``==`` walk nested blocks; Python's recursion limit would otherwise end them).

    >>> inner = Sequential(Conv(3))
    >>> inner.depth, Sequential(inner).depth
    (1, 2)
    """
    depth = 1 + max((c.__dict__.get("depth", 0) for c in children), default=0)
    if depth > MAX_NESTING + 1:  # one level more for the Sequential analyze wraps a network in
        raise LayerError(f"blocks are nested more than {MAX_NESTING} levels deep; flatten the network "
                         "(a Sequential of Sequentials is one Sequential) or use Repeat", where=where,
                         param="layers")
    object.__setattr__(layer, "depth", depth)


def sublayers(layer) -> list:
    """The layers directly inside ``layer`` (a Sequential's items, a block's branches, a Repeat's
    block, a Graph's node layers); empty for a leaf layer.

    >>> sublayers(Sequential(Conv(3), ReLU()))
    [Conv(kernel_size=3), ReLU()]
    """
    out = []
    if dataclasses.is_dataclass(layer):
        for f in dataclasses.fields(layer):
            v = getattr(layer, f.name)
            for x in (v if isinstance(v, tuple) else (v,)):
                if isinstance(x, Layer):
                    out.append(x)
                elif isinstance(x, tuple):  # graph nodes: (name, layer, inputs)
                    out.extend(y for y in x if isinstance(y, Layer))
    return out


def _fmt(v):
    return repr(v) if isinstance(v, str) else str(v)


@dataclass(frozen=True)
class Layer:
    """Base class of every layer. Subclasses are frozen dataclasses."""

    name: str | None = field(default=None, kw_only=True, compare=True)

    #: class attribute: True for layers that move positions (False: position-wise, no parameters)
    moves_positions: ClassVar[bool] = True

    def __post_init__(self):
        try:
            self._normalise()
        except LayerError as err:
            raise err.located(type(self).__name__) from None

    def _normalise(self):  # overridden
        pass

    def _set(self, attr, value):
        object.__setattr__(self, attr, value)

    @property
    def ndim(self) -> int | None:
        """Number of spatial axes fixed by a tuple argument, or None (any)."""
        cache = self.__dict__
        if "_ndim" not in cache:
            dims = {len(v) for name in config_fields(type(self))
                    if isinstance(v := getattr(self, name), tuple) and name != "layers"}
            cache["_ndim"] = dims.pop() if len(dims) == 1 else None
        return cache["_ndim"]

    def subs(self, mapping) -> Layer:
        """The same layer with symbols replaced (values validated again)."""
        changes = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            new = _subs_value(v, mapping)
            if new is not v:
                changes[f.name] = new
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def free_symbols(self) -> set:
        """The symbols in the layer's parameters (a new set)."""
        cache = self.__dict__
        if "_free" not in cache:
            out = set()
            for name in config_fields(type(self)):
                v = getattr(self, name)
                if v is not None and type(v) not in (bool, str):
                    out |= _free(v)
            cache["_free"] = frozenset(out)
        return set(cache["_free"])

    def __repr__(self):
        parts = []
        for i, f in enumerate(dataclasses.fields(self)):
            v = getattr(self, f.name)
            if f.name == "name" and v is None:
                continue
            if i == 0 and f.default is dataclasses.MISSING and not f.kw_only:
                parts.append(_fmt(v))
                continue
            if f.default is not dataclasses.MISSING and _same(v, f.default):
                continue
            if f.name == "kernel_size":
                parts.append(f"kernel_size={_fmt(v)}")
            else:
                parts.append(f"{f.name}={_fmt(v)}")
        if parts and parts[0] == _fmt(getattr(self, dataclasses.fields(self)[0].name)) and \
                dataclasses.fields(self)[0].name == "kernel_size":
            parts[0] = f"kernel_size={parts[0]}"
        return f"{type(self).__name__}({', '.join(parts)})"


def _same(v, default):
    try:
        return bool(v == default) if not isinstance(v, sp.Basic) else v == sp.sympify(default)
    except (TypeError, sp.SympifyError):
        return False


def _subs_value(v, mapping):
    if isinstance(v, sp.Basic):
        new = subs(v, mapping)  # only the pairs it needs, values checked at the value boundary
        return v if new == v else new
    if isinstance(v, tuple):
        items = tuple(_subs_value(x, mapping) for x in v)
        return v if all(a is b for a, b in zip(items, v)) else items
    if isinstance(v, Layer):
        new = v.subs(mapping)
        return new
    return v


def config_fields(cls) -> tuple:
    """The names of a layer class's fields but ``name``: what configures a layer of that class
    (computed once per class).

    Args:
        cls: a layer class.

    Returns:
        The field names, in declaration order.

    >>> config_fields(Conv)[:3]
    ('kernel_size', 'stride', 'padding')
    """
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.name != "name")
    return names


_FIELD_NAMES: dict = {}  # layer class -> its field names but "name"


def _free(v):
    if isinstance(v, sp.Basic):
        return set() if v.is_Number else set(v.free_symbols)  # numbers: no walk of their args
    if isinstance(v, tuple):
        out = set()
        for x in v:
            out |= _free(x)
        return out
    if isinstance(v, Layer):
        return v.free_symbols
    return set()


class Windowed:
    """Mixin of sliding-window layers (convolutions and pools): kernel, stride, padding, dilation."""

    def windows(self, ndim: int) -> tuple[Window, ...]:
        """One :class:`Window` per spatial axis."""
        cached = self.__dict__.get("_windows_cache")  # layers are immutable: computed once per ndim
        if cached is not None and cached[0] == ndim:
            return cached[1]
        out = self._windows(ndim)
        object.__setattr__(self, "_windows_cache", (ndim, out))
        return out

    def _windows(self, ndim):
        ks = per_axis(self.kernel_size, ndim, "kernel_size", self)
        ss = per_axis(self.stride, ndim, "stride", self)
        ds = per_axis(getattr(self, "dilation", sp.Integer(1)), ndim, "dilation", self)
        pad = self.padding
        if isinstance(pad, str):
            if pad == "valid":
                pads = ((sp.Integer(0), sp.Integer(0)),) * ndim
            elif pad == "same":
                pads = []
                for k, s, d in zip(ks, ss, ds):
                    if s != 1:
                        raise LayerError(f"padding='same' requires stride 1 (PyTorch's rule), got stride={s}; "
                                         "use padding='tf_same' for TensorFlow's SAME", param="padding")
                    total = d * (k - 1)
                    left = sp.floor(total / 2)
                    pads.append((left, total - left))
                pads = tuple(pads)
            else:
                pads = ("tf_same",) * ndim
        else:
            pads = tuple(p if isinstance(p, tuple) else (p, p)
                         for p in per_axis(pad, ndim, "padding", self))
        ceil = bool(getattr(self, "ceil_mode", False))
        return tuple(Window(k, s, d, p, ceil) for k, s, d, p in zip(ks, ss, ds, pads))

    def _check_tuple_lengths(self):
        """Per-axis tuples must agree in length; ``padding='same'`` needs stride 1."""
        given = [(name, len(v)) for name in ("kernel_size", "stride", "dilation", "padding")
                 if isinstance(v := getattr(self, name, None), tuple)]
        for name, n in given[1:]:
            if n != given[0][1]:
                first, m = given[0]
                raise LayerError(f"{name} has {n} axes but {first} has {m}; give every per-axis "
                                 "tuple the same length (or a scalar for all axes)", param=name)
        if isinstance(self.padding, str) and self.padding == "same":  # (a sympy number == str sympifies)
            for s in (self.stride if isinstance(self.stride, tuple) else (self.stride,)):
                if s.is_number and s != 1:
                    raise LayerError(f"padding='same' requires stride 1 (PyTorch's rule), got stride={s}; "
                                     "use padding='tf_same' for TensorFlow's SAME", param="padding")


@dataclass(frozen=True, repr=False)
class Conv(Windowed, Layer):
    """Convolution (``torch.nn.Conv1d/2d/3d``).

    Weights ``(in_channels/groups)·out_channels·Πk`` plus ``out_channels`` biases. Channels may be
    omitted; the engine then takes ``in_channels`` from the previous layer.

    >>> Conv(3, stride=2, padding=1)
    Conv(kernel_size=3, stride=2, padding=1)
    """

    kernel_size: Any
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: Any = 1
    bias: bool = True
    in_channels: Any = None
    out_channels: Any = None

    def _normalise(self):
        self._set("kernel_size", _axis_tuple(self.kernel_size, "kernel_size"))
        self._set("stride", _axis_tuple(self.stride, "stride"))
        self._set("dilation", _axis_tuple(self.dilation, "dilation"))
        self._set("padding", _padding(self.padding))
        self._set("groups", as_expr(self.groups, "groups"))
        if not isinstance(self.bias, bool):
            raise LayerError(f"bias must be True or False, got {self.bias!r}", param="bias")
        self._set("in_channels", as_expr(self.in_channels, "in_channels", allow_none=True))
        self._set("out_channels", as_expr(self.out_channels, "out_channels", allow_none=True))
        g = self.groups
        for attr in ("in_channels", "out_channels"):
            c = getattr(self, attr)
            if c is None:
                continue
            if c.is_Integer and g.is_Integer:  # numbers: no Rational built
                indivisible = c.p % g.p != 0
            else:
                indivisible = (c / g).is_integer is False
            if indivisible:
                raise LayerError(f"{attr} must be divisible by groups={self.groups}, got {c}", param=attr)
        self._check_tuple_lengths()


@dataclass(frozen=True, repr=False)
class _Pool(Windowed, Layer):
    def _normalise(self):
        self._set("kernel_size", _axis_tuple(self.kernel_size, "kernel_size"))
        self._set("stride", self.kernel_size if self.stride is None else _axis_tuple(self.stride, "stride"))
        if hasattr(self, "dilation"):
            self._set("dilation", _axis_tuple(self.dilation, "dilation"))
        self._set("padding", _padding(self.padding))
        if not isinstance(self.ceil_mode, bool):
            raise LayerError(f"ceil_mode must be True or False, got {self.ceil_mode!r}", param="ceil_mode")
        self._check_tuple_lengths()
        # PyTorch: pad should be at most half of the kernel size
        ks = self.kernel_size if isinstance(self.kernel_size, tuple) else (self.kernel_size,)
        pads = self.padding if isinstance(self.padding, tuple) else (self.padding,)
        if not isinstance(self.padding, str):  # per axis, as PyTorch checks it
            axes = max(len(ks), len(pads))
            for k, p in zip(ks * axes if len(ks) == 1 else ks, pads * axes if len(pads) == 1 else pads):
                for q in (p if isinstance(p, tuple) else (p,)):
                    if (2 * q.p > k.p if q.is_Integer and k.is_Integer else (2 * q - k).is_positive):
                        raise LayerError(f"padding must be at most half the kernel size "
                                         f"(PyTorch's rule for pools), got padding={q} with kernel_size={k}",
                                         param="padding")


@dataclass(frozen=True, repr=False)
class MaxPool(_Pool):
    """Max pooling (``torch.nn.MaxPool1d/2d/3d``); ``stride`` defaults to ``kernel_size``.

    >>> MaxPool(2)
    MaxPool(kernel_size=2, stride=2)
    """

    kernel_size: Any
    stride: Any = None
    padding: Any = 0
    dilation: Any = 1
    ceil_mode: bool = False


@dataclass(frozen=True, repr=False)
class AvgPool(_Pool):
    """Average pooling (``torch.nn.AvgPool1d/2d/3d``); ``stride`` defaults to ``kernel_size``."""

    kernel_size: Any
    stride: Any = None
    padding: Any = 0
    ceil_mode: bool = False


@dataclass(frozen=True, repr=False)
class Elementwise(Layer):
    """A layer with no spatial effect and no parameters (activations, dropout, identity)."""

    moves_positions: ClassVar[bool] = False


def _elementwise(name, doc):
    cls = dataclasses.make_dataclass(name, [], bases=(Elementwise,), frozen=True, repr=False,
                                     namespace={"__doc__": doc, "__module__": __name__})
    return cls


Identity = _elementwise("Identity", "Identity: output equals input.")
ReLU = _elementwise("ReLU", "Rectified linear unit (no spatial effect, no parameters).")
ReLU6 = _elementwise("ReLU6", "ReLU clipped at 6.")
LeakyReLU = _elementwise("LeakyReLU", "Leaky ReLU.")
GELU = _elementwise("GELU", "Gaussian error linear unit.")
SiLU = _elementwise("SiLU", "SiLU / swish.")
Sigmoid = _elementwise("Sigmoid", "Logistic sigmoid.")
Tanh = _elementwise("Tanh", "Hyperbolic tangent.")
Hardswish = _elementwise("Hardswish", "Hard swish.")
Hardsigmoid = _elementwise("Hardsigmoid", "Hard sigmoid.")
ELU = _elementwise("ELU", "Exponential linear unit.")
Softmax = _elementwise("Softmax", "Softmax over channels (no spatial effect).")
Dropout = _elementwise("Dropout", "Dropout (identity at inference).")


@dataclass(frozen=True, repr=False)
class BatchNorm(Layer):
    """Batch normalisation: ``2·num_features`` trainable parameters (running statistics are
    buffers; none with ``affine=False``), no spatial effect, no MACs.

    >>> BatchNorm(64)
    BatchNorm(num_features=64)
    """

    num_features: Any = None
    affine: bool = True

    def _normalise(self):
        self._set("num_features", as_expr(self.num_features, "num_features", allow_none=True))
        if not isinstance(self.affine, bool):
            raise LayerError(f"affine must be True or False, got {self.affine!r}", param="affine")


@dataclass(frozen=True, repr=False)
class Linear(Layer):
    """Fully connected layer on a flattened input: every output sees every input position.

    Parameters ``in·out + out``; MACs ``in·out``.
    """

    in_features: Any
    out_features: Any
    bias: bool = True

    def _normalise(self):
        self._set("in_features", as_expr(self.in_features, "in_features"))
        self._set("out_features", as_expr(self.out_features, "out_features"))
        if not isinstance(self.bias, bool):
            raise LayerError(f"bias must be True or False, got {self.bias!r}", param="bias")


@dataclass(frozen=True, repr=False)
class Flatten(Layer):
    """Flatten spatial axes into features (no change to any receptive field)."""

    moves_positions: ClassVar[bool] = False


@dataclass(frozen=True, repr=False)
class AdaptiveAvgPool(Layer):
    """Adaptive average pooling to ``output_size``: output ``i`` covers
    ``[floor(i·n/m), ceil((i + 1)·n/m))`` (PyTorch's rule)."""

    output_size: Any = 1

    def _normalise(self):
        self._set("output_size", _axis_tuple(self.output_size, "output_size"))


@dataclass(frozen=True, repr=False)
class AdaptiveMaxPool(AdaptiveAvgPool):
    """Adaptive max pooling to ``output_size`` (same windows as :class:`AdaptiveAvgPool`)."""


@dataclass(frozen=True, repr=False)
class GlobalAvgPool(AdaptiveAvgPool):
    """Global average pooling: one output that sees the whole input."""

    output_size: ClassVar[int] = sp.Integer(1)

    def _normalise(self):
        pass


@dataclass(frozen=True, repr=False)
class GlobalMaxPool(GlobalAvgPool):
    """Global max pooling."""


# =========================================================================== blocks
# Blocks hold layers, and networks nest blocks up to MAX_NESTING levels: every operation on a
# tree of blocks (==, hash, repr, subs, free_symbols, ndim, pickling) walks it with an explicit
# stack, so depth is bounded by MAX_NESTING, not by Python's recursion limit. Values computed
# bottom-up (hash, free symbols, ndim) are cached on each block (blocks are immutable).

class Block:
    """Mixin of the layers that hold layers (:class:`Sequential`, :class:`Residual`,
    :class:`Concat`, :class:`Repeat`, :class:`Graph`): structural ``==``, ``hash``, ``repr``,
    ``subs``, ``free_symbols``, ``ndim``, pickling and copying, all without recursion.

    Each block says what it holds (``_kids``), its own non-layer fields (``_own``), how to build
    it again with other layers (``_rebuilt``) and how its children's free symbols, ``ndim`` and
    text combine (``_free_of``, ``_ndim_from``, ``_repr_parts``).

    >>> from rfsym import Conv
    >>> x = Conv(3)
    >>> for _ in range(5000):
    ...     x = Sequential(Conv(3), x)
    >>> x == x.subs({}), x.depth, len(repr(x)) > 5000
    (True, 5000, True)
    """

    @property
    def ndim(self):
        """Number of spatial axes fixed by the layers inside, or None (any).

        Raises:
            LayerError: layers inside disagree on the number of axes.
        """
        return _fold(self, "_ndim", _leaf_ndim, "_ndim_from")

    @property
    def free_symbols(self) -> set:
        """The symbols in the parameters of the layers inside (a new set)."""
        return set(_fold(self, "_free", _leaf_free, "_free_of"))

    def subs(self, mapping):
        """The same block with symbols replaced in every layer inside (values validated again).

        Args:
            mapping: symbols (or their names) to values.

        Returns:
            The new block (``self`` where nothing changed).
        """
        return _subs_tree(self, mapping)

    def _inner(self, mapping):
        """The mapping that applies to the layers inside (a Repeat removes its index)."""
        return mapping

    def _own(self):
        """The block's own non-layer fields (its name; a block with more overrides this)."""
        return (self.name,)

    def _free_of(self, kid_free):
        """The free symbols of the block from its children's (their union unless overridden)."""
        return frozenset().union(*kid_free)

    def _subs_node(self, kids, mapping):
        if all(a is b for a, b in zip(kids, self._kids())):
            return self
        return self._rebuilt(kids, mapping)

    def _hash_from(self, kid_hashes):
        return hash((type(self), self._own(), tuple(kid_hashes)))

    def __hash__(self):
        return _fold(self, "_hash", hash, "_hash_from")

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _tree_equal(self, other)

    def __repr__(self):
        return _tree_repr(self)

    def __reduce__(self):
        return (_unflatten, (_flatten(self),))

    def __copy__(self):
        return self  # immutable

    def __deepcopy__(self, memo):
        return self  # immutable: its parts are immutable values too


def _leaf_ndim(layer):
    return layer.ndim


def _leaf_free(layer):
    cached = layer.__dict__.get("_free")  # Layer.free_symbols's cache: no copies of it
    return cached if cached is not None else frozenset(layer.free_symbols)


def _fold(root, attr, leaf_value, combine):
    """``root``'s cached bottom-up value ``attr``: computed for every block below that lacks it,
    children first (explicit stack), from ``leaf_value(leaf)`` and ``block.<combine>(values)``."""
    cache = root.__dict__
    if attr in cache:
        return cache[attr]
    stack = [root]
    while stack:
        node = stack[-1]
        if attr in node.__dict__:
            stack.pop()
            continue
        kids = node._kids()
        pending = [k for k in kids if isinstance(k, Block) and attr not in k.__dict__]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        values = [k.__dict__[attr] if isinstance(k, Block) else leaf_value(k) for k in kids]
        node.__dict__[attr] = getattr(node, combine)(values)
    return cache[attr]


def _tree_equal(a, b) -> bool:
    """Structural equality of two blocks of the same class, pair by pair (explicit stack)."""
    stack, seen = [(a, b)], set()
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        if x.__class__ is not y.__class__:
            return False
        if not isinstance(x, Block):
            if x != y:  # a leaf: its fields hold no layers
                return False
            continue
        if (id(x), id(y)) in seen:
            continue
        seen.add((id(x), id(y)))
        if hash(x) != hash(y) or x._own() != y._own():
            return False
        kx, ky = x._kids(), y._kids()
        if len(kx) != len(ky):
            return False
        stack.extend(zip(kx, ky))
    return True


def _tree_repr(root) -> str:
    """``repr`` of a block: the parts of each block expanded in place (explicit stack)."""
    out, stack = [], [iter(root._repr_parts())]
    while stack:
        for part in stack[-1]:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Block):
                stack.append(iter(part._repr_parts()))
                break
            else:
                out.append(repr(part))
        else:
            stack.pop()
    return "".join(out)


def _subs_tree(root, mapping):
    """``root`` with ``mapping`` applied to every layer inside, rebuilt bottom-up (explicit
    stack); a layer shared by several blocks is substituted once per mapping."""
    done = {}
    contexts = [mapping]  # keeps each mapping alive: results are keyed by its id
    stack = [(root, mapping, None)]
    while stack:
        node, m, inner = stack.pop()
        key = (id(node), id(m))
        if key in done:
            continue
        if inner is None:  # first visit: the children first
            inner = node._inner(m)
            if inner is not m:
                contexts.append(inner)
            stack.append((node, m, inner))
            stack.extend((k, inner, None) for k in node._kids()
                         if isinstance(k, Block) and (id(k), id(inner)) not in done)
            continue
        kids = []
        for k in node._kids():
            if (id(k), id(inner)) not in done:  # a leaf (blocks are done): substituted once
                done[(id(k), id(inner))] = k.subs(inner)
            kids.append(done[(id(k), id(inner))])
        done[key] = node._subs_node(kids, m)
    return done[(id(root), id(mapping))]


_SLOT = ...  # stands for a layer inside a flattened block


def _swap(value, fill):
    """``value`` (a block's field) with each layer in it replaced by ``fill(layer)``: a layer, a
    tuple of layers or a Graph's ``(name, layer, inputs)`` nodes, as :func:`sublayers` finds them."""
    if isinstance(value, Layer) or value is _SLOT:
        return fill(value)
    if isinstance(value, tuple):
        return tuple(fill(x) if isinstance(x, Layer) or x is _SLOT else
                     tuple(fill(y) if isinstance(y, Layer) or y is _SLOT else y for y in x)
                     if isinstance(x, tuple) else x for x in value)
    return value


def _flatten(root) -> list:
    """``root`` as a flat program for pickling: each distinct layer once, children first; a leaf
    is itself, a block ``(class, fields with layers as slots, indices of its layers)``."""
    index, program = {}, []
    stack = [root]
    while stack:
        node = stack[-1]
        if id(node) in index:
            stack.pop()
            continue
        pending = [k for k in node._kids() if isinstance(k, Block) and id(k) not in index]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        refs = []
        for k in node._kids():
            if id(k) not in index:  # a leaf, itself in the program
                index[id(k)] = len(program)
                program.append(k)
            refs.append(index[id(k)])
        fields = {f.name: _swap(getattr(node, f.name), lambda _: _SLOT) for f in dataclasses.fields(node)}
        index[id(node)] = len(program)
        program.append((type(node), fields, tuple(refs)))
    return program


def _unflatten(program):
    """The block a :func:`_flatten` program describes (the last entry)."""
    built = []
    for entry in program:
        if isinstance(entry, Layer):
            built.append(entry)
            continue
        cls, fields, refs = entry
        kids = [built[r] for r in refs]
        it = iter(kids)
        block = object.__new__(cls)
        block.__dict__.update({name: _swap(v, lambda _: next(it)) for name, v in fields.items()})  # noqa: B023
        check_nesting(block, kids, cls.__name__)
        built.append(block)
    return built[-1]


@dataclass(frozen=True, init=False, repr=False, eq=False)
class Sequential(Block, Layer):
    """A chain of layers, applied in order.

    >>> from rfsym import Conv
    >>> Sequential(Conv(3), Conv(3)).layers
    (Conv(kernel_size=3), Conv(kernel_size=3))
    """

    layers: tuple = ()

    def __init__(self, *layers, name: str | None = None):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise LayerError(f"item {i} must be an rfsym layer, got {layer!r}", where="Sequential",
                                 param="layers")
        object.__setattr__(self, "layers", tuple(layers))
        object.__setattr__(self, "name", name)
        check_nesting(self, self.layers, "Sequential")

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def _kids(self):
        return self.layers

    def _rebuilt(self, kids, mapping):
        return Sequential(*kids, name=self.name)

    def _ndim_from(self, dims):
        seen = None  # (item index, layer, ndim) of the first layer that fixes ndim
        for i, (layer, nd) in enumerate(zip(self.layers, dims)):
            if nd is None:
                continue
            if seen is None:
                seen = (i, layer, nd)
            elif nd != seen[2]:
                j, first, m = seen
                raise LayerError(f"layers disagree on the number of spatial axes: item {i} "
                                 f"({type(layer).__name__}) has {nd}, item {j} ({type(first).__name__}) "
                                 f"has {m}", where="Sequential", param="ndim")
        return None if seen is None else seen[2]

    def _repr_parts(self):
        parts = ["Sequential("]
        for i, layer in enumerate(self.layers):
            parts += [", ", layer] if i else [layer]
        if self.name:
            parts.append(f", name={self.name!r}")
        parts.append(")")
        return parts


def _check_layer(value, what, owner):
    if not isinstance(value, Layer):
        raise LayerError(f"{what} must be an rfsym layer, got {value!r}", where=owner, param=what)
    return value


def _ndim_of(owner, dims):
    dims = set(dims) - {None}
    if len(dims) > 1:
        raise LayerError(f"branches disagree on the number of spatial axes: {sorted(dims)}",
                         where=owner, param="ndim")
    return dims.pop() if dims else None


# =========================================================================== layers
@dataclass(frozen=True, repr=False, eq=False)
class Residual(Block, Layer):
    """``body(x) + shortcut(x)`` (merge type ``"Add"``): ResNet's basic and bottleneck blocks.

    The receptive field is the bounding box of both branches (the longest path when the
    shortcut is the identity); params and MACs are those of the branches (the addition counts 0).

    >>> from rfsym import analyze, Conv, Sequential
    >>> analyze(Residual(Sequential(Conv(3, padding=1), Conv(3, padding=1)))).rf
    5
    """

    body: Any
    shortcut: Any = Identity()

    def _normalise(self):
        _check_layer(self.body, "body", "Residual")
        _check_layer(self.shortcut, "shortcut", "Residual")
        check_nesting(self, (self.body, self.shortcut), "Residual")

    def _kids(self):
        return (self.body, self.shortcut)

    def _rebuilt(self, kids, mapping):
        return Residual(kids[0], kids[1], name=self.name)

    def _ndim_from(self, dims):
        return _ndim_of("Residual", dims)

    def _repr_parts(self):
        parts = ["Residual(", self.body]
        if not (type(self.shortcut) is Identity and self.shortcut.name is None):
            parts += [", shortcut=", self.shortcut]
        if self.name:
            parts.append(f", name={self.name!r}")
        parts.append(")")
        return parts


@dataclass(frozen=True, init=False, repr=False, eq=False)
class Concat(Block, Layer):
    """Channel concatenation of parallel branches (merge type ``"Concat"``), Inception-style.

    Branches must produce the same spatial size and jump; channels add. (With a symbolic input
    size, sizes that cannot be shown equal are assumed equal: the first branch's is reported.)

    >>> from rfsym import analyze, Conv, MaxPool
    >>> r = analyze(Concat(Conv(1, out_channels=8), Conv(5, padding=2, out_channels=4),
    ...                    MaxPool(3, stride=1, padding=1)), input_size=7, in_channels=3)
    >>> r.rf, r.out_channels, r.out_size
    (5, 15, 7)
    """

    branches: tuple = ()

    def __init__(self, *branches, name: str | None = None):
        if len(branches) == 1 and isinstance(branches[0], (list, tuple)):
            branches = tuple(branches[0])
        if not branches:
            raise LayerError("needs at least one branch", where="Concat", param="branches")
        for b in branches:
            _check_layer(b, "branches", "Concat")
        object.__setattr__(self, "branches", tuple(branches))
        object.__setattr__(self, "name", name)
        check_nesting(self, self.branches, "Concat")

    def _kids(self):
        return self.branches

    def _rebuilt(self, kids, mapping):
        return Concat(*kids, name=self.name)

    def _ndim_from(self, dims):
        return _ndim_of("Concat", dims)

    def _repr_parts(self):
        parts = ["Concat("]
        for i, b in enumerate(self.branches):
            parts += [", ", b] if i else [b]
        if self.name:
            parts.append(f", name={self.name!r}")
        parts.append(")")
        return parts


def repetition_index(name: str = "i"):
    """The default index symbol of :class:`Repeat` (a nonnegative integer)."""
    return sp.Symbol(name, integer=True, nonnegative=True)


@dataclass(frozen=True, init=False, repr=False, eq=False)
class Repeat(Block, Layer):
    """``n`` copies of ``block`` in a chain; ``n`` an int or a symbol (see the module docstring).

    ``block`` is a layer (usually a :class:`~rfsym.layers.Sequential`), or a function of the
    repetition index returning one. Parameters may contain ``index`` (default: the symbol ``i``),
    which takes the values ``0, 1, ..., n - 1``: ``Repeat(lambda i: Conv(2, dilation=2**i), 10)``
    is WaveNet's dilation stack 1, 2, ..., 512, and
    ``Repeat(lambda i: Conv(3, in_channels=C*2**i, out_channels=C*2**(i+1)), n)`` doubles channels.

    >>> from rfsym import analyze, Conv, symbols
    >>> n, C = symbols("n C")
    >>> r = analyze(Repeat(lambda i: Conv(3, in_channels=C * 2**i, out_channels=C * 2**(i + 1),
    ...                                   bias=False), n))
    >>> r.params, r.out_channels
    (6*C**2*(4**n - 1), 2**n*C)
    """

    block: Any = None
    n: Any = 1
    index: Any = None

    def __init__(self, block, n, index=None, *, name: str | None = None):
        if index is None:
            index = repetition_index()
        elif not isinstance(index, sp.Symbol):
            raise LayerError(f"index must be a sympy Symbol, got {index!r}", where="Repeat", param="index")
        if not isinstance(block, Layer):
            if not callable(block):
                raise LayerError(f"block must be an rfsym layer or a function of the repetition "
                                 f"index returning one, got {block!r}", where="Repeat", param="block")
            block = block(index)
            _check_layer(block, "block", "Repeat")
        try:
            n = as_expr(n, "n", minimum=0)
        except LayerError as err:
            raise err.located("Repeat") from None
        if index in n.free_symbols:
            raise LayerError(f"n must not contain the index symbol {index}", where="Repeat", param="n")
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "name", name)
        check_nesting(self, (block,), "Repeat")

    def at(self, k) -> Layer:
        """The block of repetition ``k`` (the index replaced by ``k``)."""
        return self.block.subs({self.index: k}) if self.index in self.block.free_symbols else self.block

    def unrolled(self) -> Sequential:
        """The explicit chain of an integer ``n``."""
        n = sp.sympify(self.n)
        if not n.is_Integer:
            raise LayerError(f"cannot unroll a symbolic number of repetitions n={n}", where="Repeat",
                             param="n")
        return Sequential(*(self.at(k) for k in range(int(n))), name="")

    def _kids(self):
        return (self.block,)

    def _own(self):
        return (self.name, self.n, self.index)

    def _inner(self, mapping):
        """``mapping`` without the repetition index (the block's own variable)."""
        return {k: v for k, v in dict(mapping).items()
                if not (k == self.index or getattr(k, "name", k) == self.index.name)}

    def _rebuilt(self, kids, mapping):
        return Repeat(kids[0], subs(self.n, self._inner(mapping)), self.index, name=self.name)

    def _subs_node(self, kids, mapping):
        n = subs(self.n, self._inner(mapping))
        if kids[0] is self.block and n == self.n:
            return self
        return Repeat(kids[0], n, self.index, name=self.name)

    def _free_of(self, kid_free):
        return (kid_free[0] - {self.index}) | sp.sympify(self.n).free_symbols

    def _ndim_from(self, dims):
        return dims[0]

    def _repr_parts(self):
        idx = f", index={self.index}" if self.index in self.block.free_symbols else ""
        name = f", name={self.name!r}" if self.name else ""
        return ["Repeat(", self.block, f", {self.n}{idx}{name})"]


@dataclass(frozen=True, repr=False)
class ConvTranspose(Windowed, Layer):
    """Transposed convolution (``torch.nn.ConvTranspose1d/2d/3d``).

    Output size ``(n - 1)s - pl - pr + d(k - 1) + 1 + output_padding``; output ``o`` receives
    input ``i`` when ``i·s - pl + t·d = o`` for a tap ``t`` in ``0..k-1``. With ``s > 1`` the
    receptive field depends on ``o mod s`` (``period = s``, ``jump = 1/s``); when ``s`` divides
    ``k`` (and ``d = 1``) every phase reads ``k/s`` inputs, also for symbolic ``k``. Weights
    ``c_in·(c_out/groups)·Πk + c_out``; MACs ``Π in_size · c_in · (c_out/groups) · Πk`` (every
    input meets every tap, fvcore's convention).

    >>> from rfsym import analyze
    >>> r = analyze(ConvTranspose(4, stride=2, padding=1), input_size=8)
    >>> r.rf, r.rf_min, r.jump, r.out_size
    (2, 2, 1/2, 16)
    """

    kernel_size: Any
    stride: Any = 1
    padding: Any = 0
    output_padding: Any = 0
    dilation: Any = 1
    groups: Any = 1
    bias: bool = True
    in_channels: Any = None
    out_channels: Any = None

    def _normalise(self):
        if isinstance(self.padding, str):
            raise LayerError(f"ConvTranspose takes integer padding (PyTorch), got {self.padding!r}",
                             param="padding")
        Conv._normalise(self)  # the same arguments, validated the same way
        if isinstance(self.output_padding, (tuple, list)):
            if not 1 <= len(self.output_padding) <= 3:
                raise LayerError(f"output_padding must be a scalar or a tuple of 1 to 3 values, got "
                                 f"{tuple(self.output_padding)!r}", param="output_padding")
            self._set("output_padding", tuple(as_expr(v, "output_padding", minimum=0)
                                              for v in self.output_padding))
        else:
            self._set("output_padding", as_expr(self.output_padding, "output_padding", minimum=0))
        ops_ = self.output_padding if isinstance(self.output_padding, tuple) else (self.output_padding,)
        ss = self.stride if isinstance(self.stride, tuple) else (self.stride,)
        ds = self.dilation if isinstance(self.dilation, tuple) else (self.dilation,)
        axes = max(len(ops_), len(ss), len(ds))
        if len({len(t) for t in (ops_, ss, ds)} - {1}) > 1:
            raise LayerError(f"output_padding has {len(ops_)} axes but stride has {len(ss)}",
                             param="output_padding")
        for a in range(axes):  # per axis, as PyTorch checks it
            op, s, d = (t[a] if len(t) > 1 else t[0] for t in (ops_, ss, ds))
            if (op - s).is_nonnegative and (op - d).is_nonnegative:
                raise LayerError(f"output_padding must be smaller than stride or dilation "
                                 f"(PyTorch's rule), got output_padding={op}, stride={s}, "
                                 f"dilation={d}" + (f" on axis {a}" if axes > 1 else ""),
                                 param="output_padding")

    def output_paddings(self, ndim):
        return per_axis(self.output_padding, ndim, "output_padding", self)


@dataclass(frozen=True, repr=False)
class Crop(Layer):
    """Remove ``amount`` positions from each end of every spatial axis (an int, or per-axis ints
    or ``(left, right)`` pairs): U-Net's cropped skip connections. Output ``o`` reads input
    ``o + left``; ``out_size = n - left - right``.

    >>> from rfsym import analyze
    >>> r = analyze(Crop(4), input_size=64)
    >>> r.rf, r.start, r.out_size
    (1, 4, 56)
    """

    amount: Any = 0

    def _normalise(self):
        _amounts(self, "amount")

    def amounts(self, ndim):
        """Per-axis ``(left, right)`` pairs."""
        return _pairs(self.amount, ndim, "amount", self)


_UPSAMPLE_MODES = ("nearest", "nearest-exact", "bilinear")


def _scale_value(v):
    """A scale factor as a positive sympy Rational: floats by their shortest decimal (``2.5`` is
    5/2; ``float`` of it gives the same double back, which PyTorch's formulas use)."""
    if isinstance(v, (float, np.floating)) and not isinstance(v, bool):
        if not math.isfinite(v) or v <= 0:
            raise LayerError(f"scale_factor must be a positive number, got {v!r}", param="scale_factor")
        v = Fraction(repr(float(v)))
    f = as_expr(v, "scale_factor", minimum=None, integer=False)
    if not (f.is_Rational and f > 0):
        raise LayerError(f"scale_factor must be a positive number (its output phases are enumerated), got {f}",
                         param="scale_factor")
    return f


@dataclass(frozen=True, repr=False)
class Upsample(Layer):
    """Upsampling (or resampling) by a ``scale_factor`` or to an output ``size``
    (``torch.nn.Upsample``, ``F.interpolate``), with PyTorch's index conventions.

    Give exactly one of ``scale_factor`` (a positive int, fraction or float per axis: the output
    size is ``floor(n·scale_factor)``) and ``size`` (the output size per axis). PyTorch then
    samples input positions at a ``scale`` of ``1/scale_factor`` (PyTorch's default
    ``recompute_scale_factor=None``) or ``n/size``:

    * ``mode="nearest"``: output ``o`` reads ``floor(o·scale)``;
    * ``mode="nearest-exact"``: output ``o`` reads ``floor((o + 1/2)·scale)``;
    * ``mode="bilinear"`` (linear interpolation on every spatial axis; PyTorch's
      ``linear``/``bilinear``/``trilinear``): with ``align_corners=False`` output ``o``
      interpolates at ``x = (o + 1/2)·scale - 1/2`` and reads ``floor(x)`` and ``floor(x) + 1``
      (only ``floor(x)`` when ``x`` is an integer: the other weight is zero); like padding, the
      positions beyond the border that PyTorch clamps are counted (``x = -1/4`` reads ``-1`` and
      ``0``). With ``align_corners=True``, ``x = o(n - 1)/(size - 1)`` (clamped, as PyTorch).

    **Periods.** With ``scale = p/q`` in lowest terms the map is periodic: output ``o + q``
    reads the positions of ``o`` shifted by ``p``, so the engine's map has period ``q`` and jump
    ``p/q`` (the effective stride, a Rational), ``rf`` is the largest window over the ``q``
    phases, ``rf_min`` the smallest, ``start`` output 0's first position. An integer factor
    ``f`` gives period ``f`` and jump ``1/f``. A map that needs the input size (``size=``,
    ``align_corners=True``) or that PyTorch's float32 arithmetic makes aperiodic is defined on
    the real output grid ``0 .. out - 1`` (period ``out``, jump ``n/out``) and repeated shifted
    by ``n`` beyond it.

    **Exactness.** With a numeric input size rfsym evaluates PyTorch's CPU float32 formulas
    exactly (``scale`` rounded to float32, ``x`` rounded once as by a fused multiply-add, the
    copy for ``size == n`` and nearest's ``o >> 1`` for ``size == 2n``, the output size
    ``floor(float(n)·scale_factor)`` in double), checked against the input gradients of
    ``F.interpolate``. With a symbolic input size the periodic map above is used in exact
    arithmetic (``size=`` and ``align_corners=True`` then need ``input_size``). Above
    :data:`FLOAT_MAP_LIMIT` (2^20) positions per axis (input or output) the float32 formulas
    are not evaluated: the exact periodic map is used, and ``align_corners=True`` is refused.

    Args:
        scale_factor: the factor per axis (scalar or tuple), or None when ``size`` is given.
        mode: ``"nearest"``, ``"nearest-exact"`` or ``"bilinear"`` (``"linear"``,
            ``"trilinear"`` are aliases).
        align_corners: PyTorch's flag for the linear modes.
        size: the output size per axis (positive ints), or None.

    Raises:
        LayerError: both or neither of ``scale_factor`` and ``size``, a value that is not a
            positive number, or an unknown mode.

    >>> from rfsym import analyze
    >>> r = analyze(Upsample(2, mode="bilinear"), input_size=4)
    >>> r.rf, r.rf_min, r.jump, r.start, r.out_size
    (2, 2, 1/2, -1, 8)
    >>> r = analyze(Upsample(size=65, mode="bilinear"), input_size=33, ndim=1)
    >>> r.rf, r.jump, r.period, r.out_size
    (2, 33/65, 65, 65)
    """

    scale_factor: Any = None
    mode: str = "nearest"
    align_corners: bool = False
    size: Any = None

    def _normalise(self):
        if (self.scale_factor is None) == (self.size is None):
            raise LayerError("give exactly one of scale_factor and size", param="scale_factor"
                             if self.scale_factor is None else "size")
        if self.scale_factor is not None:
            vals = self.scale_factor if isinstance(self.scale_factor, (tuple, list)) else None
            if vals is not None and not 1 <= len(vals) <= 3:
                raise LayerError(f"scale_factor must be a scalar or a tuple of 1 to 3 values, got {tuple(vals)!r}",
                                 param="scale_factor")
            self._set("scale_factor", tuple(_scale_value(v) for v in vals) if vals is not None
                      else _scale_value(self.scale_factor))
        else:
            self._set("size", _axis_tuple(self.size, "size"))
            for s in (self.size if isinstance(self.size, tuple) else (self.size,)):
                if not s.is_Integer:
                    raise LayerError(f"size must be a positive integer number, got {s}", param="size")
        if self.mode in ("linear", "trilinear"):
            self._set("mode", "bilinear")
        if self.mode not in _UPSAMPLE_MODES:
            raise LayerError(f"mode must be 'nearest', 'nearest-exact' or 'bilinear', got {self.mode!r}",
                             param="mode")
        if not isinstance(self.align_corners, bool):
            raise LayerError(f"align_corners must be True or False, got {self.align_corners!r}",
                             param="align_corners")

    def _axis(self, axis, ndim):
        """``(scale_factor, size)`` on one axis (one of them None)."""
        if self.size is not None:
            return None, per_axis(self.size, ndim, "size", self)[axis]
        return per_axis(self.scale_factor, ndim, "scale_factor", self)[axis], None

    def output_size(self, axis: int, ndim: int, n: int) -> int:
        """PyTorch's output size on ``axis`` for a numeric input size ``n``: ``size``, or
        ``floor(float(n)·scale_factor)`` computed in double as ``F.interpolate`` does.

        >>> Upsample(2.5).output_size(0, 1, 33)
        82
        """
        f, size = self._axis(axis, ndim)
        if size is not None:
            return int(size)
        if f.is_Integer:
            return int(n * f)
        if n > 2 ** 53:  # float(n) would round (and overflow beyond 1e308): the double factor, exactly
            return math.floor(Fraction(n) * Fraction(_double(f)))
        return math.floor(float(n) * _double(f))

    def phases(self, axis: int, ndim: int, n: int | None, max_period: int):
        """The index map on one axis as ``(period, jump, positions, valid)``: output
        ``o = period·m + φ`` reads ``positions[φ][valid[φ]] + jump·m`` (int64 and bool arrays of
        shape ``(period, 2)``; see the class docstring for the conventions).

        Args:
            axis: the spatial axis.
            ndim: the number of spatial axes.
            n: the numeric input size on ``axis``, or None (unknown or symbolic).
            max_period: the largest period accepted.

        Returns:
            ``(period, jump, positions, valid)``.

        Raises:
            LayerError: the map needs the input size, or its period exceeds ``max_period``.
            SizeError: the output size is below 1.

        >>> period, jump, pos, valid = Upsample(2.5).phases(0, 1, None, 100)
        >>> period, jump, pos[:, 0].tolist()
        (5, 2, [0, 0, 0, 1, 1])
        """
        f, size = self._axis(axis, ndim)
        corners = self.mode == "bilinear" and self.align_corners
        if n is None:
            if size is not None or corners:
                why = f"size={size}" if size is not None else "bilinear upsampling with align_corners=True"
                raise LayerError(f"{why} depends on the input size (the positions read); pass a numeric "
                                 "input_size to analyze", param="size" if size is not None else "align_corners")
            return self._periodic(1 / f, max_period, "scale_factor")
        out = self.output_size(axis, ndim, n)
        if out < 1:
            raise SizeError(f"Upsample: output size must be at least 1, got {out} for input size {n}; "
                            "give a larger input_size")
        if out > FLOAT_MAP_LIMIT or n > FLOAT_MAP_LIMIT:  # no float32 emulation at such sizes: exact arithmetic
            if corners:
                raise LayerError(f"bilinear upsampling with align_corners=True from {n:,} to {out:,} "
                                 f"positions: rfsym evaluates it up to {FLOAT_MAP_LIMIT:,} positions per "
                                 "axis; give a smaller input_size", param="align_corners")
            ratio = sp.Rational(n, out) if size is not None else 1 / f
            return self._periodic(ratio, max_period, "size" if size is not None else "scale_factor")
        pos, valid = _torch_taps(self.mode, corners, n, out, None if f is None else _double(f))
        if not corners:
            ratio = sp.Rational(n, out) if size is not None else 1 / f
            if ratio.q <= out:  # PyTorch's float32 map agrees with the exact periodic one?
                period, jump, p, v = self._periodic(ratio, max_period, "size")
                o = np.arange(out)
                m, phi = np.divmod(o, period)
                if _same_sets(p[phi] + (jump * m)[:, None], v[phi], pos, valid):
                    return period, jump, p, v
        if out > max_period:
            raise LayerError(f"{out:,} output phases with their own receptive field; rfsym enumerates at most "
                             f"{max_period:,} per axis", param="size" if size is not None else "scale_factor")
        return out, n, pos, valid

    def _periodic(self, ratio, max_period, param):
        """The map in exact arithmetic at ``scale = ratio = p/q``: period ``q``, jump ``p``."""
        p, q = int(ratio.p), int(ratio.q)
        if q > max_period:
            raise LayerError(f"scale {ratio} gives {q:,} output phases with their own receptive field; rfsym "
                             f"enumerates at most {max_period:,} per axis (give the factor as a fraction with a "
                             f"smaller denominator, or a numeric input_size)", param=param)
        if (2 * q + 1) * p >= 2 ** 62:
            raise LayerError(f"scale {1 / ratio} is too small: its positions (multiples of {p:,}/{q:,}) are "
                             "beyond 64-bit integers", param=param)
        o = np.arange(q, dtype=np.int64)
        if self.mode == "nearest":
            lo, second = (o * p) // q, np.zeros(q, bool)
        elif self.mode == "nearest-exact":
            lo, second = ((2 * o + 1) * p) // (2 * q), np.zeros(q, bool)
        else:  # x = (o + 1/2)·p/q - 1/2 = num/(2q)
            num = (2 * o + 1) * p - q
            lo, second = num // (2 * q), num % (2 * q) != 0
        return q, p, np.stack([lo, lo + 1], axis=1), np.stack([np.ones(q, bool), second], axis=1)


#: the largest output size per axis at which :class:`Upsample` evaluates PyTorch's float32 index
#: map output by output (2^20, bounding the work and memory; no image model comes near it)
FLOAT_MAP_LIMIT = 1 << 20


def _double(f):
    """The double nearest a Rational."""
    return float(Fraction(int(f.p), int(f.q)))


def _torch_taps(mode, corners, n, out, factor):
    """PyTorch's CPU float32 index map over the real outputs ``0 .. out - 1``: ``(positions,
    valid)`` of shape ``(out, 2)`` (``factor`` the scale factor as a double, or None for a size)."""
    f32 = np.float32
    o = np.arange(out, dtype=np.int64)
    scale = f32(1.0 / factor) if factor is not None else f32(n) / f32(out)
    second = np.zeros(out, bool)
    if (out == n and mode != "nearest-exact") or (mode == "nearest" and out == 2 * n):  # no floats
        lo = o if out == n else o >> 1
    elif mode == "nearest":
        lo = np.minimum(np.floor(o.astype(f32) * scale).astype(np.int64), n - 1)
    elif mode == "nearest-exact":
        lo = np.minimum(np.floor((o.astype(f32) + f32(0.5)) * scale).astype(np.int64), n - 1)
    elif not corners:  # x = scale·(o + 1/2) - 1/2 rounded once, unclamped (the border convention)
        x = (np.float64(scale) * (o + 0.5) - 0.5).astype(f32)
        lo = np.floor(x).astype(np.int64)
        second = x - lo.astype(f32) != 0
    else:
        scale = f32(n - 1) / f32(out - 1) if out > 1 else f32(0)
        x = o.astype(f32) * scale
        i0 = np.minimum(np.floor(x).astype(np.int64), n - 1)
        lam = np.clip(x - i0.astype(f32), f32(0), f32(1))
        i1 = i0 + (i0 < n - 1)
        first = f32(1) - lam != 0
        lo = np.where(first, i0, i1)
        second = first & (lam != 0) & (i1 > i0)
    return np.stack([lo, lo + 1], axis=1), np.stack([np.ones(out, bool), second], axis=1)


def _same_sets(pos_a, valid_a, pos_b, valid_b):
    """Whether two ``(positions, valid)`` tables read the same positions row by row (each row an
    interval of one or two positions starting at column 0)."""
    return bool(np.array_equal(pos_a[:, 0], pos_b[:, 0]) and np.array_equal(valid_a, valid_b))


MERGES = ("add", "concat", "mul")


@dataclass(frozen=True, init=False, repr=False, eq=False)
class Graph(Block, Layer):
    """A general DAG, given node by node.

    Each node is ``(name, layer, input)`` or ``(name, merge, inputs)`` with ``merge`` one of
    ``"add"``, ``"concat"`` or ``"mul"`` over two or more inputs; the graph's input is called
    ``"input"``. An :class:`Attention` may read two inputs, ``(name, Attention(...), (source,
    queries))``: keys and values from ``source``, queries (and the output grid) from ``queries``. Any fan-out and any fan-in are allowed (a node may feed several merges, as in a
    DenseNet block); nodes may be listed in any order (they are sorted topologically; a cycle is
    an error naming its nodes). ``"add"`` and ``"mul"`` broadcast an input whose spatial size is 1
    on every axis (a squeeze-and-excitation gate): every output then reads that input's whole
    field. ``outputs`` names the output nodes (default: the last node; ``output=`` names one);
    ``features`` names the reference feature map (the backbone layer) that summaries report.

    Node names are the names of the layers in results (``result.layer("conv1")``), under the
    graph's own ``name`` when it has one. Parameters and MACs are counted once per node however
    many merges read it. A layer applied twice with the same weights (a module called twice) is
    two nodes: ``shared={"second": "first"}`` says that node ``second`` uses the parameters of
    node ``first``, so they are counted once, at ``first`` (``second`` has 0 parameters of its
    own; its MACs are counted as usual).

    Args:
        *nodes: the nodes, as tuples (or one list of tuples).
        outputs: names of the output nodes; the result describes the first one and lists all of
            them in ``result.outputs``.
        output: the single output node (same as ``outputs=(output,)``).
        features: the name of the reference feature map, or None.
        name: the graph's name (a prefix of its node names), or None.
        shared: ``{node: owner}`` (or pairs): nodes that use the parameters of another node of
            the same layer type, counted there.

    Raises:
        GraphError: a dangling input name, a cycle, a malformed node, an unknown output or a
            ``shared`` entry that does not name two layer nodes of one type.

    >>> from rfsym import analyze, Conv, ReLU
    >>> g = Graph(("conv1", Conv(3, padding=1), "input"), ("relu", ReLU(), "conv1"),
    ...           ("conv2", Conv(3, padding=1), "relu"), ("sum", "add", ("conv2", "input")))
    >>> r = analyze(g, input_size=8)
    >>> r.rf, [layer.type for layer in r.layers]
    (5, ['Conv', 'ReLU', 'Conv', 'Add'])
    """

    nodes: tuple = ()
    outputs: tuple = ()
    features: Any = None
    shared: tuple = ()  # ((node, owner), ...), sorted

    def __init__(self, *nodes: tuple, outputs: tuple | str | None = None, output: str | None = None,
                 features: str | None = None, name: str | None = None, shared: Any = None):
        if len(nodes) == 1 and isinstance(nodes[0], (list, tuple)) and nodes[0] and \
                isinstance(nodes[0][0], (list, tuple)):
            nodes = tuple(nodes[0])
        if not nodes:
            raise GraphError("Graph: needs at least one node")
        norm, names = [], set()
        nested = []  # the node layers that are blocks (they have a nesting depth)
        ordered = True  # every input named before its reader (then no sort is needed)
        for j, node in enumerate(nodes):
            if not isinstance(node, (list, tuple)) or len(node) != 3:
                raise GraphError(f"Graph: node {j} must be (name, layer or 'add'/'concat'/'mul', inputs), "
                                 f"got {node!r}")
            label, op, inputs = node
            if not isinstance(label, str) or not label or label == "input" or label in names:
                raise GraphError(f"Graph: node {j}: names must be unique non-empty strings other than "
                                 f"'input', got {label!r}")
            if isinstance(inputs, str):
                inputs = (inputs,)
            elif not isinstance(inputs, (list, tuple)):
                raise GraphError(f"Graph: node {label!r}: inputs must be a node name or a tuple of names, "
                                 f"got {inputs!r}")
            for u in inputs:
                if not isinstance(u, str):
                    raise GraphError(f"Graph: node {label!r}: inputs must be a node name or a tuple of "
                                     f"names, got {inputs!r}")
                if ordered and u not in names and u != "input":
                    ordered = False
            inputs = tuple(inputs)
            if isinstance(op, str):
                if op not in MERGES or len(inputs) < 2:
                    raise GraphError(f"Graph: node {label!r}: a merge is 'add', 'concat' or 'mul' over two "
                                     f"or more inputs, got {op!r} over {len(inputs)}")
            elif not isinstance(op, Layer) or len(inputs) != 1 and not (isinstance(op, Attention)
                                                                         and len(inputs) == 2):
                raise GraphError(f"Graph: node {label!r}: a layer reads exactly one input (an Attention one "
                                 f"or two: source, queries); merge several with 'add', 'concat' or 'mul', "
                                 f"got {op!r} over {len(inputs)}")
            elif "depth" in op.__dict__:
                nested.append(op)
            names.add(label)
            norm.append((label, op, inputs))
        if not ordered:  # dangling inputs and cycles are reported there
            norm = _topological(norm, names)
        if outputs is not None and output is not None:
            raise GraphError("Graph: give outputs= or output=, not both")
        if outputs is None:
            outputs = (norm[-1][0],) if output is None else (output,)
        elif isinstance(outputs, str):
            outputs = (outputs,)
        outputs = tuple(outputs)
        if not outputs:
            raise GraphError("Graph: outputs must name at least one node")
        for out in outputs:
            if out not in names and out != "input":
                raise GraphError(f"Graph: output {out!r} is not a node (nodes: {_few(names)})")
        if len(set(outputs)) != len(outputs):
            raise GraphError(f"Graph: outputs name a node twice: {outputs}")
        if features is not None and features not in names:
            raise GraphError(f"Graph: features={features!r} is not a node (nodes: {_few(names)})")
        object.__setattr__(self, "nodes", tuple(norm))
        object.__setattr__(self, "outputs", outputs)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "shared", _shared_pairs(shared, norm) if shared else ())
        object.__setattr__(self, "name", name)
        check_nesting(self, nested, "Graph")  # leaves have no depth: 0, as check_nesting reads

    @property
    def output(self) -> str:
        """The first output node."""
        return self.outputs[0]

    def _kids(self):
        return tuple(op for _, op, _ in self.nodes if not isinstance(op, str))

    def _own(self):
        return (self.name, self.outputs, self.features, self.shared,
                tuple((a, op if isinstance(op, str) else None, ins) for a, op, ins in self.nodes))

    def _rebuilt(self, kids, mapping):
        kids = iter(kids)
        nodes = tuple((a, op if isinstance(op, str) else next(kids), ins) for a, op, ins in self.nodes)
        return Graph(*nodes, outputs=self.outputs, features=self.features, name=self.name, shared=self.shared)

    def _ndim_from(self, dims):
        return _ndim_of("Graph", dims)

    def _repr_parts(self):
        parts = ["Graph("]
        for j, (a, op, ins) in enumerate(self.nodes):
            parts.append(f"{', ' if j else ''}({a!r}, ")
            parts += [repr(op) if isinstance(op, str) else op, f", {ins!r})"]
        extra = f", outputs={self.outputs!r}" if len(self.outputs) > 1 else f", output={self.output!r}"
        if self.features is not None:
            extra += f", features={self.features!r}"
        if self.shared:
            extra += f", shared={dict(self.shared)!r}"
        if self.name:
            extra += f", name={self.name!r}"
        parts.append(extra + ")")
        return parts


def _shared_pairs(shared, nodes):
    """``Graph(shared=...)`` as sorted ``(node, owner)`` pairs, checked against the nodes."""
    pairs = shared.items() if isinstance(shared, dict) else shared
    try:
        pairs = [tuple(p) for p in pairs]
    except TypeError:
        pairs = None
    if pairs is None or any(len(p) != 2 for p in pairs):
        raise GraphError(f"Graph: shared must map node names to node names, got {shared!r}")
    ops = {label: op for label, op, _ in nodes}
    seen = set()
    for node, owner in pairs:
        for u in (node, owner):
            op = ops.get(u) if isinstance(u, str) else None
            if op is None or isinstance(op, (str, Block)):
                raise GraphError(f"Graph: shared: {u!r} is not a layer node (shared parameters belong to "
                                 f"layers, not merges or blocks; nodes: {_few(ops)})")
        if node == owner or node in seen:
            raise GraphError(f"Graph: shared: node {node!r} is given {'itself' if node == owner else 'twice'}")
        if type(ops[node]) is not type(ops[owner]):
            raise GraphError(f"Graph: shared: node {node!r} ({type(ops[node]).__name__}) cannot use the "
                             f"parameters of {owner!r} ({type(ops[owner]).__name__})")
        seen.add(node)
    return tuple(sorted(pairs))


def _few(names, limit=8):
    names = sorted(names)
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(map(repr, names[:limit])) + more


def _topological(nodes, names):
    """``nodes`` in a topological order (the given order where it is one); GraphError for a
    dangling input or a cycle."""
    for label, _, inputs in nodes:
        for u in inputs:
            if u != "input" and u not in names:
                raise GraphError(f"Graph: node {label!r} reads {u!r}, which is not a node "
                                 f"(the graph input is 'input'; nodes: {_few(names)})")
    position = {label: j for j, (label, _, _) in enumerate(nodes)}
    if all(u == "input" or position[u] < position[label] for label, _, ins in nodes for u in ins):
        return list(nodes)
    waiting = {label: sum(1 for u in ins if u != "input") for label, _, ins in nodes}
    readers: dict = {}
    for label, _, ins in nodes:
        for u in ins:
            if u != "input":
                readers.setdefault(u, []).append(label)
    import heapq
    ready = [position[label] for label, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        j = heapq.heappop(ready)
        order.append(nodes[j])
        for v in readers.get(nodes[j][0], ()):
            waiting[v] -= 1
            if waiting[v] == 0:
                heapq.heappush(ready, position[v])
    if len(order) < len(nodes):
        stuck = {label for label, n in waiting.items() if n > 0}
        # walk back along unfinished inputs until a node repeats: that is a cycle
        table = {label: ins for label, _, ins in nodes}
        v, seen = min(stuck, key=position.__getitem__), []
        while v not in seen:
            seen.append(v)
            v = next(u for u in table[v] if u in stuck)
        cycle = seen[seen.index(v):] + [v]
        raise GraphError(f"Graph: the nodes form a cycle: {' -> '.join(reversed(cycle))}")
    return order


def _pairs(value, ndim, param, owner):
    """Per-axis ``(before, after)`` amounts of a Pad or Crop."""
    per = per_axis(value, ndim, param, owner)
    return tuple(a if isinstance(a, tuple) else (a, a) for a in per)


def _amounts(self, param):
    try:
        value = _padding(getattr(self, param))
    except LayerError as err:
        raise LayerError(err.detail.replace("padding", param), param=param) from None
    if isinstance(value, str):
        raise LayerError(f"{param} must be an int or per-axis (before, after) pairs, got {value!r}",
                         param=param)
    self._set(param, value)


@dataclass(frozen=True, repr=False)
class Pad(Layer):
    """Explicit padding (``torch.nn.functional.pad``, ONNX ``Pad``, Keras ``ZeroPadding``): an int,
    per-axis ints or per-axis ``(before, after)`` pairs. Zero, reflect and replicate padding read
    the same positions, counted as padding: output ``o`` reads input ``o - before``;
    ``out_size = n + before + after``.

    >>> from rfsym import analyze
    >>> r = analyze(Pad(((1, 2), (0, 0))), input_size=(4, 4))
    >>> r.start, r.out_size
    ((-1, 0), (7, 4))
    """

    padding: Any = 0

    def _normalise(self):
        _amounts(self, "padding")

    def amounts(self, ndim):
        """Per-axis ``(before, after)`` pairs."""
        return _pairs(self.padding, ndim, "padding", self)


@dataclass(frozen=True, repr=False)
class Norm(Layer):
    """A normalisation whose output at a position depends on that position's channels
    (LayerNorm over channels, RMSNorm, GroupNorm, InstanceNorm, ...).

    ``params`` is its parameter count (default ``2·num_features``, an affine scale and shift).
    ``spatial=True`` says that its statistics span positions (GroupNorm, InstanceNorm, LayerNorm
    over C, H, W): by default rfsym treats it position-wise, as receptive-field tools treat
    BatchNorm; ``analyze(..., strict=True)`` makes such a norm global (every output reads every
    position) and the result's ``notes`` say which convention applied.

    >>> from rfsym import analyze
    >>> analyze(Norm(64), input_size=8).params
    128
    >>> analyze(Norm(64, params=64, spatial=True, kind="GroupNorm"), input_size=8, strict=True).rf
    8
    """

    num_features: Any = None
    params: Any = None
    spatial: bool = False
    kind: str = "LayerNorm"

    def _normalise(self):
        self._set("num_features", as_expr(self.num_features, "num_features", allow_none=True))
        self._set("params", as_expr(self.params, "params", minimum=0, allow_none=True))
        _check_flag(self.spatial, "spatial")
        _check_kind(self.kind)


@dataclass(frozen=True, repr=False)
class Pointwise(Layer):
    """Any position-wise operation (it may mix channels): einsum/matmul over channels, a
    channel-axis linear map given by its counts, a channel split or reduction.

    ``out_channels`` is its output channel count (None: unchanged), ``params`` its parameter
    count and ``macs`` its multiply-accumulates **per output position** (the engine multiplies
    by the number of positions).

    >>> from rfsym import analyze
    >>> r = analyze(Pointwise(out_channels=16, params=0, macs=16, kind="Split"), input_size=4, in_channels=32)
    >>> r.out_channels, r.rf, r.macs
    (16, 1, 256)
    """

    out_channels: Any = None
    params: Any = 0
    macs: Any = 0
    kind: str = "Pointwise"

    def _normalise(self):
        self._set("out_channels", as_expr(self.out_channels, "out_channels", allow_none=True))
        self._set("params", as_expr(self.params, "params", minimum=0))
        self._set("macs", as_expr(self.macs, "macs", minimum=0))
        _check_kind(self.kind)


@dataclass(frozen=True, repr=False)
class Params(Layer):
    """Parameters that belong to no layer (a class token, position embeddings, a layer-scale
    vector): a position-wise identity that adds ``count`` parameters.

    >>> from rfsym import analyze
    >>> analyze(Params(768)).params
    768
    """

    count: Any = 0
    kind: str = "Parameter"

    def _normalise(self):
        self._set("count", as_expr(self.count, "count", minimum=0))
        _check_kind(self.kind)


@dataclass(frozen=True, repr=False)
class Attention(Layer):
    """Token mixing by attention (the matmuls ``q·kᵀ`` and ``attention·v``).

    ``window=None`` and ``grid=None``: global, every output reads every position. ``window=w``
    (an int or per-axis tuple) with ``shift`` (Swin's shifted windows): output ``o`` reads the
    ``w`` positions of its window, ``o - ((o - shift) mod w)`` onwards, clipped to the feature map
    ``0 .. n - 1`` (Swin rolls the map by ``-shift`` and masks the windows that wrap around, so
    the first window is ``0 .. shift - 1`` and the last one ends at ``n - 1``); a window as large
    as the feature map is global on that axis. ``grid=g`` (MaxViT's grid attention): the map is
    cut into ``g`` cells of ``n/g`` positions per axis and output ``o`` reads the ``g`` positions
    ``o mod (n/g) + t·(n/g)``, ``t = 0 .. g - 1`` (its field spans ``n - n/g + 1`` positions).
    Outside ``0 .. n - 1`` (padding read by a later layer) clipped windows and grid groups repeat
    with period ``n``: output ``o + n`` reads what ``o`` reads, shifted by ``n``.

    In a :class:`Graph` an Attention may read two inputs ``(source, queries)`` (LeViT's attention
    downsampling, whose queries come from a subsampled grid): keys and values come from
    ``source``, the output lies on the grid of ``queries`` and reads every position of
    ``source`` (windows and grids are not supported then).

    MACs ``N·M·(embed_dim + C)`` for ``N`` queries each attending to ``M`` positions (all of
    them, or a window's or grid group's): ``q·kᵀ`` over ``embed_dim`` (default: the channels
    ``C`` of the input) and ``attention·v`` over the ``C`` channels of the values. The
    projections (q, k, v, output) are separate layers; parameters 0.

    >>> from rfsym import analyze
    >>> r = analyze(Attention(embed_dim=8), input_size=(4, 4))
    >>> r.rf, r.macs
    (4, 4096)
    >>> analyze(Attention(embed_dim=8, window=7, shift=3), input_size=56).rf
    7
    >>> analyze(Attention(grid=7), input_size=56, in_channels=8).rf
    49
    """

    embed_dim: Any = None
    window: Any = None
    shift: Any = 0
    grid: Any = None
    kind: str = "Attention"

    def _normalise(self):
        self._set("embed_dim", as_expr(self.embed_dim, "embed_dim", allow_none=True))
        if self.window is not None:
            self._set("window", _axis_tuple(self.window, "window"))
        self._set("shift", _axis_tuple(self.shift, "shift", minimum=0))
        if self.grid is not None:
            if self.window is not None:
                raise LayerError("give window= or grid=, not both (one partition per attention layer)",
                                 param="grid")
            self._set("grid", _axis_tuple(self.grid, "grid"))
            if any(v != 0 for v in (self.shift if isinstance(self.shift, tuple) else (self.shift,))):
                raise LayerError("shift= applies to windows, not to grid attention", param="shift")
        _check_kind(self.kind)


@dataclass(frozen=True, repr=False)
class PixelShuffle(Layer):
    """Depth to space (``torch.nn.PixelShuffle``, ONNX ``DepthToSpace``): channels ``C/f^d``,
    sizes ``n·f``; output ``o`` reads input ``floor(o/f)``.

    >>> from rfsym import analyze
    >>> r = analyze(PixelShuffle(2), input_size=4, in_channels=8)
    >>> r.out_channels, r.out_size, r.jump
    (2, 8, 1/2)
    """

    factor: Any = 2

    def _normalise(self):
        self._set("factor", as_expr(self.factor, "factor"))


@dataclass(frozen=True, repr=False)
class PixelUnshuffle(Layer):
    """Space to depth (``torch.nn.PixelUnshuffle``, ONNX ``SpaceToDepth``): channels ``C·f^d``,
    sizes ``n/f``; output ``o`` reads inputs ``f·o .. f·o + f - 1``.

    >>> from rfsym import analyze
    >>> r = analyze(PixelUnshuffle(2), input_size=8, in_channels=3)
    >>> r.out_channels, r.out_size, r.rf, r.jump
    (12, 4, 2, 2)
    """

    factor: Any = 2

    def _normalise(self):
        self._set("factor", as_expr(self.factor, "factor"))


def _check_flag(value, param):
    if not isinstance(value, bool):
        raise LayerError(f"{param} must be True or False, got {value!r}", param=param)


def _check_kind(value):
    if not isinstance(value, str) or not value:
        raise LayerError(f"kind must be a non-empty string, got {value!r}", param="kind")
