"""Shared hypothesis strategies: random architectures for the property tests.

:func:`architectures` draws numeric stacks over 1, 2 (often anisotropic) or 3 spatial axes:
convolutions (kernel 1-7, stride 1-3, dilation 1-3, padding 0-3 as one int, per-axis ints or
asymmetric ``(left, right)`` pairs, ``"valid"``, ``"same"`` at stride 1, TensorFlow ``"tf_same"``),
max and average pools (``ceil_mode`` either way, padding at most half the kernel as PyTorch
demands), elementwise layers and BatchNorm, and sometimes an adaptive or global pool, or
``Flatten`` + ``Linear`` at the end. Channels are tracked so parameter counts can be checked.
The input size is drawn first; a layer whose output would be empty at the size reached so far
is left out, so every drawn network is valid (output size >= 1 everywhere).

:func:`symbolic_stacks` draws stacks whose kernel sizes, strides, dilations and paddings are
symbols or numbers, together with several concrete assignments of the symbols.

The output-size rules here (PyTorch's documented formulas) only decide which layers to keep; the
tests compare the engine with enumeration, which counts windows on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st

import rfsym as R

KERNELS = st.integers(1, 7)
STRIDES = st.integers(1, 3)
DILATIONS = st.integers(1, 3)
PADS = st.integers(0, 3)


@dataclass(frozen=True)
class Arch:
    """A drawn network: ``net`` (a Sequential), ``input_size`` (per-axis tuple), ``ndim``,
    ``in_channels``; ``sizes`` lists the per-axis output sizes of every top-level layer."""

    net: R.Sequential
    input_size: tuple
    ndim: int
    in_channels: int
    sizes: tuple

    def __repr__(self):
        return f"Arch(input_size={self.input_size}, in_channels={self.in_channels}, net={self.net!r})"


# --------------------------------------------------------------------------- sizes (PyTorch)
def _axis(value, axis):
    return value[axis] if isinstance(value, tuple) else value


def _pad_pair(padding, axis):
    p = _axis(padding, axis)
    return p if isinstance(p, tuple) else (p, p)


def out_size(layer, n, axis):
    """Output size of a conv/pool on one axis by PyTorch's (and TensorFlow's) formulas."""
    k, s = _axis(layer.kernel_size, axis), _axis(layer.stride, axis)
    d = _axis(getattr(layer, "dilation", 1), axis)
    k, s, d = int(k), int(s), int(d)
    extent = d * (k - 1) + 1
    pad = layer.padding
    if pad == "tf_same":
        return -(-n // s)
    if pad == "valid":
        pl = pr = 0
    elif pad == "same":
        pl, pr = (extent - 1) // 2, extent - 1 - (extent - 1) // 2
    else:
        pl, pr = (int(x) for x in _pad_pair(pad, axis))
    if getattr(layer, "ceil_mode", False):
        out = -(-(n + pl + pr - extent) // s) + 1
        if (out - 1) * s >= n + pl:
            out -= 1
        return out
    return (n + pl + pr - extent) // s + 1


# --------------------------------------------------------------------------- per-axis values
def per_axis(values, ndim):
    """A scalar, or (sometimes anisotropic) per-axis tuple, of ``values``."""
    return st.one_of(values, st.tuples(*[values] * ndim))


@st.composite
def conv_padding(draw, ndim, stride):
    stride1 = all(s == 1 for s in (stride if isinstance(stride, tuple) else (stride,)))
    options = ["int", "axes", "pairs", "valid", "tf_same"] + (["same"] if stride1 else [])
    kind = draw(st.sampled_from(options))
    if kind == "int":
        return draw(PADS)
    if kind == "axes":
        return draw(st.tuples(*[PADS] * ndim))
    if kind == "pairs":
        return draw(st.tuples(*[st.one_of(PADS, st.tuples(PADS, PADS))] * ndim))
    return kind


@st.composite
def convs(draw, ndim, channels=None):
    """A random convolution; with ``channels`` (its input's) also groups and channel counts."""
    stride = draw(per_axis(STRIDES, ndim))
    if channels is None:
        return R.Conv(draw(per_axis(KERNELS, ndim)), stride=stride, padding=draw(conv_padding(ndim, stride)),
                      dilation=draw(per_axis(DILATIONS, ndim)))
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
    out = groups * draw(st.integers(1, 4))
    return R.Conv(draw(per_axis(KERNELS, ndim)), stride=stride, padding=draw(conv_padding(ndim, stride)),
                  dilation=draw(per_axis(DILATIONS, ndim)), groups=groups, bias=draw(st.booleans()),
                  in_channels=draw(st.sampled_from([None, channels])), out_channels=out)


@st.composite
def pools(draw, ndim):
    kernel = draw(per_axis(st.integers(1, 5), ndim))
    ks = kernel if isinstance(kernel, tuple) else (kernel,) * ndim
    if draw(st.integers(0, 9)) == 0:
        padding, ceil = "tf_same", False
    else:
        pads = tuple(draw(st.integers(0, k // 2)) for k in ks)
        padding = pads if draw(st.booleans()) else min(pads)
        ceil = draw(st.booleans())
    stride = draw(st.one_of(st.none(), per_axis(STRIDES, ndim)))
    if draw(st.booleans()):
        return R.MaxPool(kernel, stride=stride, padding=padding, dilation=draw(per_axis(DILATIONS, ndim)),
                         ceil_mode=ceil)
    return R.AvgPool(kernel, stride=stride, padding=padding, ceil_mode=ceil)


ELEMENTWISE = [R.ReLU, R.Identity, R.Dropout, R.GELU, R.Sigmoid]


@st.composite
def architectures(draw, max_layers=8, ndims=(1, 2, 2, 3), max_size=64, tails=True):
    """A random valid numeric network (see the module docstring)."""
    ndim = draw(st.sampled_from(ndims))
    sizes = tuple(draw(st.lists(st.integers(1, max_size), min_size=ndim, max_size=ndim)))
    size0 = sizes
    channels = c0 = draw(st.integers(1, 6))
    layers, trace = [], []
    for _ in range(draw(st.integers(1, max_layers))):
        kind = draw(st.sampled_from(["conv", "conv", "conv", "pool", "pool", "elementwise", "bn"]))
        if kind == "conv":
            layer = draw(convs(ndim, channels))
        elif kind == "pool":
            layer = draw(pools(ndim))
        elif kind == "bn":
            layer = R.BatchNorm(draw(st.sampled_from([None, channels])))
        else:
            layer = draw(st.sampled_from(ELEMENTWISE))()
        if isinstance(layer, (R.Conv, R.MaxPool, R.AvgPool)):
            new = tuple(out_size(layer, n, a) for a, n in enumerate(sizes))
            if min(new) < 1:
                continue
            sizes = new
            if isinstance(layer, R.Conv):
                channels = int(layer.out_channels)
        layers.append(layer)
        trace.append(sizes)
    if not layers:  # every drawn layer was too big for the input
        layers.append(R.Identity())
        trace.append(sizes)
    if tails:
        tail = draw(st.sampled_from(["none", "none", "none", "global", "adaptive", "linear"]))
        if tail == "global":
            layers.append(R.GlobalAvgPool())
            sizes = (1,) * ndim
            trace.append(sizes)
        elif tail == "adaptive":
            m = tuple(draw(st.integers(1, n)) for n in sizes)
            layers.append(R.AdaptiveAvgPool(m))
            sizes = m
            trace.append(sizes)
        elif tail == "linear":
            features = channels
            for n in sizes:
                features *= n
            layers += [R.Flatten(), R.Linear(features, draw(st.integers(1, 5)))]
            trace += [sizes, (1,) * ndim]
    return Arch(R.Sequential(*layers), size0, ndim, c0, tuple(trace))


# --------------------------------------------------------------------------- symbolic stacks
@dataclass(frozen=True)
class SymbolicStack:
    """A 1-D stack whose parameters are symbols or numbers, the input-size symbol ``n``, and
    ``configs``: a list of ``{symbol: value}`` assignments under which every layer's output
    is non-empty."""

    net: R.Sequential
    n: object
    configs: tuple

    def __repr__(self):
        return f"SymbolicStack(net={self.net!r}, configs={list(self.configs)!r})"


@st.composite
def symbolic_stacks(draw, max_layers=4, max_configs=4):
    """Random 1-D convolution/pool stacks with symbolic parameters and concrete assignments."""
    n = R.symbols("n")
    ranges = {}  # symbol -> strategy of its values
    layers = []

    def param(prefix, values, nonnegative=False):
        if draw(st.booleans()):
            return draw(values)
        sym = R.symbols(f"{prefix}{len(layers)}", **({"nonnegative": True} if nonnegative else {}))
        ranges[sym] = values
        return sym

    for _ in range(draw(st.integers(1, max_layers))):
        if draw(st.integers(0, 3)):
            stride = param("s", STRIDES)
            padding = draw(st.sampled_from(["int", "pair", "tf_same", "valid"]))
            if padding == "int":
                padding = param("p", PADS, nonnegative=True)
            elif padding == "pair":
                padding = ((param("p", PADS, nonnegative=True), param("q", PADS, nonnegative=True)),)
            layers.append(R.Conv(param("k", KERNELS), stride=stride, padding=padding,
                                 dilation=param("d", DILATIONS)))
        else:
            k = draw(st.integers(1, 4))
            layers.append(R.MaxPool(k, stride=param("s", STRIDES), padding=draw(st.integers(0, k // 2)),
                                    ceil_mode=draw(st.booleans())))
    net = R.Sequential(*layers)
    configs = []
    for _ in range(draw(st.integers(1, max_configs))):
        values = {sym: draw(vals) for sym, vals in ranges.items()}
        values[n] = draw(st.integers(1, 200))
        concrete = net.subs(values)
        size, ok = values[n], True
        for layer in concrete.layers:
            size = out_size(layer, size, 0)
            ok = ok and size >= 1
        if ok:
            configs.append(values)
    return SymbolicStack(net, n, tuple(configs))


# --------------------------------------------------------------------------- graphs
@st.composite
def size_preserving(draw, ndim):
    """A layer that keeps the spatial size: a stride-1 convolution with ``"same"`` padding, a
    stride-1 pool padded by half its odd kernel, or an elementwise layer."""
    kind = draw(st.sampled_from(["conv", "conv", "pool", "relu"]))
    if kind == "conv":
        return R.Conv(draw(per_axis(KERNELS, ndim)), padding="same", dilation=draw(per_axis(DILATIONS, ndim)))
    if kind == "pool":
        k = draw(st.sampled_from([1, 3, 5]))
        return R.MaxPool(k, stride=1, padding=k // 2)
    return R.ReLU()


@st.composite
def blocks(draw, ndim):
    """A residual block (identity, 1×1 or a second body as shortcut; or a strided body with a
    strided 1×1 shortcut, as ResNet downsamples), an Inception-like concatenation, a repeated
    block (``Repeat`` with an integer count, 0 included) or nested merges."""
    kind = draw(st.sampled_from(["residual", "down", "concat", "repeat", "nested"]))

    def body():
        return R.Sequential(*draw(st.lists(size_preserving(ndim), min_size=1, max_size=3)))

    if kind == "repeat":
        return R.Repeat(body(), draw(st.integers(0, 3))), 1
    if kind == "nested":
        return R.Residual(R.Concat(body(), R.Residual(body()))), 1
    if kind == "residual":
        shortcut = draw(st.sampled_from(["identity", "conv1", "body"]))
        short = {"identity": R.Identity(), "conv1": R.Conv(1)}.get(shortcut) or body()
        return R.Residual(body(), short), 1
    if kind == "down":
        k, s = draw(st.sampled_from([1, 3, 5, 7])), draw(STRIDES)
        return R.Residual(R.Sequential(R.Conv(k, stride=s, padding=k // 2), body()), R.Conv(1, stride=s)), s
    return R.Concat(*[body() for _ in range(draw(st.integers(1, 3)))]), 1


@st.composite
def upsamplers(draw, ndim, dilated=False):
    """Upsampling (nearest, bilinear with or without aligned corners) or a transposed
    convolution whose every output phase reads some input (kernel >= stride, stride and
    dilation coprime, output_padding below stride or dilation, as PyTorch requires).

    Dilation (``dilated=True``) can make a transposed convolution's index map non-monotone
    (phases interleave), where the engine's interval maps cannot represent the holes a dilated
    layer above leaves: see ``test_graph_limitations``."""
    if draw(st.booleans()):
        mode = draw(st.sampled_from(["nearest", "bilinear"]))
        return R.Upsample(draw(st.integers(1, 3)), mode=mode,
                          align_corners=mode == "bilinear" and draw(st.booleans()))
    s = draw(st.integers(1, 3))
    d = draw(st.sampled_from([d for d in (1, 2, 3) if np.gcd(d, s) == 1])) if dilated else 1
    k = draw(st.integers(s, 5))
    return R.ConvTranspose(k, stride=s, padding=draw(st.integers(0, 2)), dilation=d,
                           output_padding=draw(st.integers(0, max(s, d) - 1)))


def _graph_size(layer, n, axis, stride):
    if isinstance(layer, R.Upsample):
        return n * int(_axis(layer.scale_factor, axis))
    if isinstance(layer, R.ConvTranspose):
        k, s, d = (int(_axis(v, axis)) for v in (layer.kernel_size, layer.stride, layer.dilation))
        pl, pr = (int(x) for x in _pad_pair(layer.padding, axis))
        return (n - 1) * s - pl - pr + d * (k - 1) + 1 + int(_axis(layer.output_padding, axis))
    return (n - 1) // stride + 1 if stride > 1 else n


@st.composite
def graph_architectures(draw, max_items=5, max_size=24):
    """Random chains of residual blocks, concatenations, upsampling and transposed
    convolutions mixed with ordinary layers (1-D or 2-D), every output non-empty."""
    ndim = draw(st.sampled_from([1, 2]))
    sizes = tuple(draw(st.lists(st.integers(1, max_size), min_size=ndim, max_size=ndim)))
    size0, layers = sizes, []
    for _ in range(draw(st.integers(1, max_items))):
        kind = draw(st.sampled_from(["block", "block", "up", "conv", "pool"]))
        stride = 1
        if kind == "block":
            layer, stride = draw(blocks(ndim))
        elif kind == "up":
            layer = draw(upsamplers(ndim))
        else:
            layer = draw(convs(ndim) if kind == "conv" else pools(ndim))
        if isinstance(layer, (R.Conv, R.MaxPool, R.AvgPool)):
            new = tuple(out_size(layer, n, a) for a, n in enumerate(sizes))
        else:
            new = tuple(_graph_size(layer, n, a, stride) for a, n in enumerate(sizes))
        if min(new) < 1 or max(new) > 4 * max_size:
            continue
        layers.append(layer)
        sizes = new
    if not layers:
        layers.append(R.Identity())
    return Arch(R.Sequential(*layers), size0, ndim, 1, ())


# --------------------------------------------------------------------------- general DAGs
@dataclass(frozen=True)
class DagArch:
    """A drawn DAG: ``net`` (a :class:`rfsym.Graph`, maybe with several outputs), ``input_size``
    (per-axis tuple) and ``ndim``; ``merges`` counts its merge nodes and ``shared`` the nodes read
    by more than one node."""

    net: R.Graph
    input_size: tuple
    ndim: int
    merges: int
    shared: int

    def __repr__(self):
        return f"DagArch(input_size={self.input_size}, net={self.net!r})"


def _grid_step(layer, axis):
    """How a layer scales its input's jump on one axis (a Fraction)."""
    if isinstance(layer, (R.Conv, R.MaxPool, R.AvgPool)):
        return Fraction(int(_axis(layer.stride, axis)))
    if isinstance(layer, R.ConvTranspose):
        return Fraction(1, int(_axis(layer.stride, axis)))
    if isinstance(layer, R.Upsample):
        return Fraction(1, int(_axis(layer.scale_factor, axis)))
    if isinstance(layer, R.PixelShuffle):
        return Fraction(1, 2)
    if isinstance(layer, R.PixelUnshuffle):
        return Fraction(2)
    return Fraction(1)


@st.composite
def _dag_layer(draw, ndim, sizes):
    """A layer for a DAG node and its per-axis output sizes (by PyTorch's formulas)."""
    kind = draw(st.sampled_from(["conv", "conv", "conv", "pool", "up", "pad", "crop", "pointwise"]))
    if kind == "conv":
        layer = draw(convs(ndim))
    elif kind == "pool":
        layer = draw(pools(ndim))
    elif kind == "up":
        layer = draw(st.one_of(upsamplers(ndim), st.sampled_from([R.PixelShuffle(2), R.PixelUnshuffle(2)])))
        if isinstance(layer, R.PixelUnshuffle) and any(n % 2 for n in sizes):
            layer = R.PixelShuffle(2)
    elif kind == "pad":
        layer = R.Pad(tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(ndim)))
    elif kind == "crop":
        layer = R.Crop(1)
    else:
        layer = draw(st.sampled_from([R.ReLU(), R.BatchNorm(), R.Norm(params=0), R.Params(3),
                                      R.Pointwise(params=0, macs=0)]))
    if isinstance(layer, (R.Conv, R.MaxPool, R.AvgPool)):
        new = tuple(out_size(layer, n, a) for a, n in enumerate(sizes))
    elif isinstance(layer, R.Pad):
        new = tuple(n + sum(p) for n, p in zip(sizes, layer.padding))
    elif isinstance(layer, R.Crop):
        new = tuple(n - 2 for n in sizes)
    elif isinstance(layer, (R.PixelShuffle, R.PixelUnshuffle)):
        new = tuple(n * 2 if isinstance(layer, R.PixelShuffle) else n // 2 for n in sizes)
    else:
        new = tuple(_graph_size(layer, n, a, 1) for a, n in enumerate(sizes))
    return layer, new


@st.composite
def dag_architectures(draw, max_steps=8, max_size=20):
    """Random DAGs (1-D or 2-D): layers reading any earlier node (fan-out), ``"add"``/``"concat"``/
    ``"mul"`` merges of two or three earlier nodes on the same grid (fan-in, shared inputs), a
    branch that keeps the grid merged back (a residual), sigmoid gates multiplied in, and one to
    three outputs. Layers: strided/dilated/padded convolutions, pools, transposed convolutions,
    upsampling, explicit padding, crops and position-wise layers; every output non-empty."""
    ndim = draw(st.sampled_from([1, 1, 2]))
    size0 = tuple(draw(st.lists(st.integers(3, max_size), min_size=ndim, max_size=ndim)))
    # per tensor: (name, sizes, per-axis jump)
    tensors = [("input", size0, (Fraction(1),) * ndim)]
    nodes = []

    def add(op, inputs, sizes, jump):
        name = f"n{len(nodes)}"
        nodes.append((name, op, inputs))
        tensors.append((name, sizes, jump))
        return name

    for _ in range(draw(st.integers(1, max_steps))):
        kind = draw(st.sampled_from(["layer", "layer", "layer", "merge", "merge", "residual", "gate"]))
        # half the time the newest tensor (deep chains, merges after strides), else any (fan-out)
        pick = len(tensors) - 1 if draw(st.booleans()) else draw(st.integers(0, len(tensors) - 1))
        src, sizes, jump = tensors[pick]
        if kind == "layer":
            layer, new = draw(_dag_layer(ndim, sizes))
            if min(new) < 1 or max(new) > 4 * max_size:
                continue
            add(layer, src, new, tuple(j * _grid_step(layer, a) for a, j in enumerate(jump)))
        elif kind == "residual":  # a grid-keeping branch merged with its input
            k, d = draw(st.integers(1, 4)), draw(st.integers(1, 2))
            pads = []
            for _ in range(ndim):
                left = draw(st.integers(0, d * (k - 1)))
                pads.append((left, d * (k - 1) - left))
            body = add(R.Conv(k, dilation=d, padding=tuple(pads)), src, sizes, jump)
            add(draw(st.sampled_from(["add", "concat", "mul"])), (src, body), sizes, jump)
        elif kind == "gate":  # x * sigmoid(conv1x1(x))
            g = add(R.Conv(1), src, sizes, jump)
            s = add(R.Sigmoid(), g, sizes, jump)
            add("mul", (src, s), sizes, jump)
        else:
            same = [t[0] for t in tensors if t[1] == sizes and t[2] == jump]
            if len(same) < 2:
                continue
            picked = draw(st.lists(st.sampled_from(same), min_size=2, max_size=3, unique=True))
            add(draw(st.sampled_from(["add", "concat", "mul"])), tuple(picked), sizes, jump)
    if not nodes:
        add(R.Identity(), "input", size0, (Fraction(1),) * ndim)
    names = [n for n, _, _ in nodes]
    extra = draw(st.lists(st.sampled_from(names[:-1]), max_size=2, unique=True)) if len(names) > 1 else []
    outputs = (names[-1], *extra)
    readers = {}
    for _, _, ins in nodes:
        for u in (ins if isinstance(ins, tuple) else (ins,)):
            readers[u] = readers.get(u, 0) + 1
    merges = sum(1 for _, op, _ in nodes if isinstance(op, str))
    return DagArch(R.Graph(*nodes, outputs=outputs), size0, ndim, merges,
                   sum(1 for v in readers.values() if v > 1))
