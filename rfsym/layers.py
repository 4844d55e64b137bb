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
from dataclasses import dataclass, field
from typing import Any, ClassVar

import sympy as sp

from .errors import LayerError
from .symbols import as_expr, subs

__all__ = [
    "Layer", "Window", "Conv", "MaxPool", "AvgPool", "BatchNorm", "Linear", "Flatten",
    "GlobalAvgPool", "GlobalMaxPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "Elementwise",
    "Identity", "ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish",
    "Hardsigmoid", "ELU", "Softmax", "Dropout", "Sequential", "PADDING_MODES", "MAX_NESTING", "check_nesting",
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


def _axis_tuple(value, param):
    """Normalise a scalar-or-tuple spatial parameter (positive integers)."""
    if isinstance(value, (tuple, list)):
        if not 1 <= len(value) <= 3:
            raise LayerError(f"{param} must be a scalar or a tuple of 1 to 3 values, got {tuple(value)!r}",
                             param=param)
        return tuple(as_expr(v, param) for v in value)
    return as_expr(value, param)


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


def _per_axis(value, ndim, param, owner):
    if isinstance(value, tuple):
        if len(value) != ndim:
            raise LayerError(f"{param} has {len(value)} axes but the network has {ndim}: {value!r}",
                             param=param)
        return value
    return (value,) * ndim


#: deepest nesting of blocks (Sequential, Residual, Concat, Repeat, Graph) a network may have
MAX_NESTING = 100


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


def _fmt(v):
    return repr(v) if isinstance(v, str) else str(v)


@dataclass(frozen=True)
class Layer:
    """Base class of every layer. Subclasses are frozen dataclasses."""

    name: str | None = field(default=None, kw_only=True, compare=True)

    #: class attribute: True for layers without spatial effect or parameters
    spatial: ClassVar[bool] = True

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
        dims = {len(v) for f in dataclasses.fields(self)
                if isinstance(v := getattr(self, f.name), tuple) and f.name != "layers"}
        return dims.pop() if len(dims) == 1 else None

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
        out = set()
        for f in dataclasses.fields(self):
            out |= _free(getattr(self, f.name))
        return out

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
        new = subs(v, mapping)  # values checked at the value boundary (never sympified)
        return v if new == v else new
    if isinstance(v, tuple):
        items = tuple(_subs_value(x, mapping) for x in v)
        return v if all(a is b for a, b in zip(items, v)) else items
    if isinstance(v, Layer):
        new = v.subs(mapping)
        return new
    return v


def _free(v):
    if isinstance(v, sp.Basic):
        return set(v.free_symbols)
    if isinstance(v, tuple):
        out = set()
        for x in v:
            out |= _free(x)
        return out
    if isinstance(v, Layer):
        return v.free_symbols
    return set()


class _Windowed:
    """Mixin: kernel/stride/padding/dilation layers (convolutions and pools)."""

    def windows(self, ndim: int) -> tuple[Window, ...]:
        """One :class:`Window` per spatial axis."""
        cached = self.__dict__.get("_windows_cache")  # layers are immutable: computed once per ndim
        if cached is not None and cached[0] == ndim:
            return cached[1]
        out = self._windows(ndim)
        object.__setattr__(self, "_windows_cache", (ndim, out))
        return out

    def _windows(self, ndim):
        ks = _per_axis(self.kernel_size, ndim, "kernel_size", self)
        ss = _per_axis(self.stride, ndim, "stride", self)
        ds = _per_axis(getattr(self, "dilation", sp.Integer(1)), ndim, "dilation", self)
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
                         for p in _per_axis(pad, ndim, "padding", self))
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
        if self.padding == "same":
            for s in (self.stride if isinstance(self.stride, tuple) else (self.stride,)):
                if s.is_number and s != 1:
                    raise LayerError(f"padding='same' requires stride 1 (PyTorch's rule), got stride={s}; "
                                     "use padding='tf_same' for TensorFlow's SAME", param="padding")


@dataclass(frozen=True, repr=False)
class Conv(_Windowed, Layer):
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
        for attr in ("in_channels", "out_channels"):
            c = getattr(self, attr)
            if c is not None and (c / self.groups).is_integer is False:
                raise LayerError(f"{attr} must be divisible by groups={self.groups}, got {c}", param=attr)
        self._check_tuple_lengths()


@dataclass(frozen=True, repr=False)
class _Pool(_Windowed, Layer):
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
                    if (2 * q - k).is_positive:
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

    spatial: ClassVar[bool] = False


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

    spatial: ClassVar[bool] = False


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


@dataclass(frozen=True, init=False, repr=False)
class Sequential(Layer):
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

    def subs(self, mapping):
        return Sequential(*(layer.subs(mapping) for layer in self.layers), name=self.name)

    @property
    def free_symbols(self):
        out = set()
        for layer in self.layers:
            out |= layer.free_symbols
        return out

    @property
    def ndim(self):
        seen = None  # (item index, layer, ndim) of the first layer that fixes ndim
        for i, layer in enumerate(self.layers):
            nd = layer.ndim
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

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        extra = f", name={self.name!r}" if self.name else ""
        return f"Sequential({inner}{extra})"
