"""The operation table of :func:`rfsym.from_torch`: what each traced operation does to the axes.

Every tensor computed from the input is a :class:`Data` (the graph node it belongs to and its
dims, see :mod:`rfsym.torch_layout`); parameters and anything computed from parameters alone are
a :class:`Const` (the parameters it holds, counted once, where a data tensor first uses them);
``q·kᵀ`` is a :class:`Scores`; tuples (``chunk``, ``split``, ``unbind``, ``MultiheadAttention``)
are a :class:`Many`. :class:`Builder` turns operations into graph nodes; handlers are looked up
by module class (``MODULES``, ``isinstance``: subclasses are their base layer) and by function or
method name (``FUNCTIONS``). An operation is classified by the axes it touches:

* layout only (``view``, ``reshape``, ``flatten``, ``permute``, ``transpose``, ``squeeze``,
  ``contiguous``, channel shuffle, ``expand``): no node;
* along channels only (LayerNorm/RMSNorm over channels, Linear on the channel axis, matmul with
  a weight, softmax, reductions over channels, channel slices): a position-wise node;
* spatial, on an ``(N, C, *spatial)`` tensor (convolutions, pools, pads, interpolation, pixel
  shuffles): the corresponding layer;
* over the positions of a token axis (attention, ``scaled_dot_product_attention``, window
  attention after a window partition): :class:`rfsym.Attention`;
* over all positions (global pools, ``mean`` over the spatial axes, selecting a class token):
  a global node.

>>> b = Builder(nd=2)
>>> x = b.input((1, 3, 8, 8))
>>> x.dims[1], x.node
((('C', 3),), 'input')
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import string
from dataclasses import dataclass, field

from . import layers as L
from .torch_layout import LayoutError, channel_count, normalise, reshape, standard_dims

__all__ = ["Data", "Const", "Scores", "Many", "Builder", "Unsupported", "canonical"]


class Unsupported(Exception):
    """An operation from_torch cannot express (collected, then reported together)."""


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Data:
    """A tensor computed from the input: the output of graph node ``node`` laid out as ``dims``."""

    node: str | None
    dims: tuple
    shape: tuple
    tokens: int = 0  # extra (class / distillation) tokens prepended to the token axis
    roll: tuple = ()  # a pending torch.roll, per spatial axis ((axis, shift), ...)
    pending: tuple | None = None  # (parent node, op name, scope): channels split off, node not emitted

    @property
    def channels(self):
        return channel_count(self.dims)

    def spatial(self):
        return [(j, a) for j, d in enumerate(self.dims) for a in flat_atoms(d) if a[0] == "s"]

    def with_shape(self, shape):
        """This tensor with shape ``shape`` (itself when the shape is its own: values are immutable)."""
        shape = tuple(shape)
        return self if shape == self.shape else dataclasses.replace(self, shape=shape)


def flat_atoms(d):
    """A dim's atoms with token atoms ``("t", size, inner)`` (class tokens + positions) opened."""
    out = []
    for a in d:
        out.extend(a[2] if a[0] == "t" else (a,))
    return tuple(out)


def new_data(node, dims, shape, tokens=0, roll=()):
    """``Data(node, dims, shape, tokens, roll)`` with no pending split, about twice as fast as its
    frozen ``__init__`` (one per converted operation): the fields go into the new object's
    ``__dict__`` at once (Data has no ``__post_init__``; it stays immutable)."""
    v = _new(Data)
    v.__dict__.update(node=node, dims=dims, shape=shape, tokens=tokens, roll=roll, pending=None)
    return v


_new = object.__new__


@dataclass(frozen=True)
class Const:
    """A tensor computed without the input (parameters, buffers, constants)."""

    params: frozenset = frozenset()
    shape: tuple = ()


@dataclass(frozen=True)
class Scores:
    """Attention logits / weights ``q·kᵀ``: query tokens of ``q``, key tokens of ``k``."""

    q: Data
    k: Data
    qdims: tuple  # (q's token dim,)
    kdim: int  # index of the key-token dim in the scores tensor
    dims: tuple
    params: frozenset = frozenset()


@dataclass(frozen=True)
class Many:
    """A tuple or list of values."""

    items: tuple


def canonical(name):
    """One name per operation: ``__iadd__``, ``add_``, ``torch.add``, ``operator.add`` → ``add``."""
    if not isinstance(name, str):
        name = getattr(name, "__name__", str(name))
    base = name.strip("_")
    if base.endswith("_") is False and name.endswith("_") and not name.endswith("__"):
        base = name[:-1]
    return _ALIASES.get(base, base)


_ALIASES = {"iadd": "add", "radd": "add", "isub": "sub", "rsub": "sub", "imul": "mul", "rmul": "mul",
            "truediv": "div", "itruediv": "div", "rtruediv": "div", "true_divide": "div", "floordiv": "div",
            "multiply": "mul", "subtract": "sub", "concat": "cat", "concatenate": "cat", "divide": "div",
            "matmul": "matmul", "rmatmul": "matmul", "bmm": "matmul", "mm": "matmul",
            "max_pool2d_with_indices": "max_pool2d", "swapaxes": "transpose", "swapdims": "transpose",
            "addcmul": "addcmul", "ne": "ne", "permute": "permute", "softmax": "softmax"}


def _contract(name):
    import rfsym

    cls = getattr(rfsym, name, None)
    if cls is None:
        raise Unsupported(f"needs rfsym.{name}, which this rfsym version does not have")
    return cls


def _ax(values, nd):
    """A per-axis value for an rfsym layer: one value when the axes agree."""
    values = tuple(int(v) for v in values)
    if len(values) == 1 and nd != 1:
        values = values * nd
    return values[0] if len(set(values)) == 1 else values


# --------------------------------------------------------------------------- the builder
#: the most layers the shared table of :meth:`Builder.make` holds (it starts afresh beyond)
MAX_SHARED_LAYERS = 20_000
_SHARED_LAYERS: dict = {}  # (class, args, kwargs) or a convolution's key -> the immutable layer


def _shared_layers() -> dict:
    """The process-wide table of made layers (emptied when it exceeds :data:`MAX_SHARED_LAYERS`)."""
    if len(_SHARED_LAYERS) > MAX_SHARED_LAYERS:
        _SHARED_LAYERS.clear()
    return _SHARED_LAYERS


@dataclass
class Builder:
    """Collects graph nodes ``(name, layer or merge, inputs)`` while operations are converted."""

    nd: int
    nodes: list = field(default_factory=list)
    scopes: dict = field(default_factory=dict)
    counted: set = field(default_factory=set)  # ids of parameters already counted
    numel: dict = field(default_factory=dict)  # id of a parameter -> its number of elements
    globals_: list = field(default_factory=list)  # nodes that read every position (pools, heads)
    notes: list = field(default_factory=list)
    _taken: set = field(default_factory=lambda: {"input"})
    _count: dict = field(default_factory=dict)
    _made: dict = field(default_factory=lambda: _shared_layers())

    def input(self, shape):
        """The graph input as a :class:`Data`."""
        return Data("input", tuple(normalise(d) for d in standard_dims(shape[0], shape[1], shape[2:])),
                    tuple(shape))

    def make(self, cls, *args, **kwargs):
        """``cls(*args, **kwargs)``, one object per distinct arguments: layers are immutable, and a
        network repeats few configurations (normalising arguments costs more than the lookup; the
        engine's cache recognises a layer it has seen by identity). The table is shared by every
        import in the process (bounded, see :data:`MAX_SHARED_LAYERS`): importing a module again,
        at another input shape or after an edit elsewhere in it, reuses the layers (and what the
        engine cached on them: windows, symbols, keys) of the configurations it has seen."""
        try:
            key = (cls, args, tuple(sorted(kwargs.items())) if kwargs else ())
            layer = self._made.get(key)
        except TypeError:  # unhashable arguments
            return cls(*args, **kwargs)
        if layer is None:
            layer = self._made[key] = cls(*args, **kwargs)
        return layer

    def fresh(self, base):
        """A node name not used yet: ``base``, else ``base#2``, ``base#3``..."""
        base = base or "op"
        k = self._count.get(base, 0)
        while True:
            k += 1
            name = base if k == 1 else f"{base}#{k}"
            if name not in self._taken:
                self._count[base] = k
                self._taken.add(name)
                return name

    def emit(self, base, layer, inputs, scope):
        """Append a node; returns its name."""
        name = self.fresh(base)
        if not isinstance(inputs, str):
            inputs = tuple(inputs)
            if len(inputs) == 1:
                inputs = inputs[0]
        self.nodes.append((name, layer, inputs))
        self.scopes[name] = scope
        return name

    def node(self, v: Data, positionwise=False) -> str:
        """The node holding ``v``'s values (emitting a pending channel split). A position-wise
        reader may read a rolled tensor (it commutes with the roll); a spatial one may not."""
        if v.roll and not positionwise:
            raise Unsupported("torch.roll not undone before a spatial operation (only window attention "
                              "between a roll and its inverse is supported)")
        if v.node is not None:
            return v.node
        parent, base, scope = v.pending
        return self.emit(base, _contract("Pointwise")(out_channels=v.channels, kind="Split"), parent, scope)

    def take(self, *consts):
        """Parameters in ``consts`` not counted yet (marked counted)."""
        n = 0
        for c in consts:
            if isinstance(c, Const):
                for p in c.params:
                    if p not in self.counted:
                        self.counted.add(p)
                        n += self.numel[p]
        return n

    def take_module(self, m):
        n = 0
        for p in m.parameters():
            if id(p) not in self.counted:
                self.counted.add(id(p))
                n += p.numel()
        return n

    def params_node(self, v: Data, n, base, scope):
        """``v`` followed by a node holding ``n`` parameters (when ``n`` > 0)."""
        if n <= 0:
            return v
        node = self.node(v, positionwise=True)
        return dataclasses.replace(v, node=self.emit(base, _contract("Params")(n), node, scope), pending=None)


# --------------------------------------------------------------------------- helpers
def is_standard(v: Data, nd):
    """``(N, C, *spatial)`` with full spatial axes in order (size-1 axes may have no atom)."""
    d = v.dims
    if len(d) != nd + 2 or v.tokens:
        return False
    for a in d[0]:
        if a[0] != "N":
            return False
    for a in d[1]:
        if a[0] != "C":
            return False
    shape = v.shape
    for i in range(nd):
        axis = d[2 + i]
        if axis and axis != (("s", i, 1, shape[2 + i]),):
            return False
    return True


def _standard(v, nd, what):
    if not is_standard(v, nd):
        raise Unsupported(f"{what} on a tensor whose axes are not (batch, channels, *spatial) "
                          f"(shape {tuple(v.shape)})")


def out_data(node, shape, nd):
    """The output of graph node ``node``, an ``(N, C, *spatial)`` tensor of ``shape``."""
    shape = tuple(shape)
    return new_data(node, _normal_dims(shape, nd), shape)


@functools.lru_cache(maxsize=4096)
def _normal_dims(shape, nd):
    return tuple(normalise(d) for d in standard_dims(shape[0], shape[1], shape[2:2 + nd]))


def _dim(d, rank):
    return d + rank if d < 0 else d


def _only(dims, kinds):
    return all(a[0] in kinds for d in dims for a in d)


def _replace_dim(v, j, atoms, shape):
    dims = list(v.dims)
    dims[j] = normalise(atoms)
    return dataclasses.replace(v, dims=tuple(dims), shape=tuple(shape))


def _channels_dim(v, j, what):
    if not all(a[0] == "C" for a in v.dims[j]):
        raise Unsupported(f"{what} over an axis that holds positions (shape {tuple(v.shape)}, axis {j})")


def _positionwise(b, op, v, layer, shape, j=None, channels=None):
    """A position-wise node; the result keeps v's layout (channels of dim ``j`` replaced)."""
    name = b.emit(op.name, layer, v.node if v.node is not None else b.node(v, positionwise=True), op.scope)
    out = new_data(name, v.dims, tuple(shape), v.tokens, v.roll)  # dataclasses.replace costs more than the node
    if j is not None:
        out = _replace_dim(out, j, (("C", channels),), shape)
    return out


def _window_of(v: Data, token_dim):
    """Per spatial axis: None (all its positions are in the token dim), ``("window", w)`` (a window
    partition: ``w`` consecutive positions) or ``("grid", g)`` (a grid partition: ``g`` positions
    ``n/g`` apart, MaxViT)."""
    windows = []
    for i in range(_nd_of(v)):
        inside = [a for a in flat_atoms(v.dims[token_dim]) if a[0] == "s" and a[1] == i]
        outside = [a for j, d in enumerate(v.dims) if j != token_dim for a in flat_atoms(d)
                   if a[0] == "s" and a[1] == i]
        if not outside:
            windows.append(None)
        elif len(inside) == 1 and inside[0][2] == 1:
            windows.append(("window", inside[0][3]))
        elif len(inside) == 1 and outside == [("s", i, 1, inside[0][2])]:
            windows.append(("grid", inside[0][3]))
        else:
            windows.append(None)  # other strided partitions: bounded by the whole axis
    return windows


def _axis_sizes(v: Data):
    """Per spatial axis: its number of positions (the product of its atoms' counts)."""
    return [math.prod(a[3] for d in v.dims for a in flat_atoms(d) if a[0] == "s" and a[1] == i)
            for i in range(_nd_of(v))]


def _nd_of(v):
    return 1 + max((a[1] for d in v.dims for a in flat_atoms(d) if a[0] == "s"), default=-1)


# --------------------------------------------------------------------------- modules
def conv_module(b, op, m, x, out, weight=None, bias=None):
    """A ``torch.nn`` convolution module ``m`` on ``x`` (``weight``, ``bias``: ``m.weight`` and
    ``m.bias`` when the caller has read them). An ordinary convolution's layer follows from the
    module's attributes alone: it is looked up by them in the builder's table before anything is
    normalised."""
    if weight is None:
        weight, bias = m.weight, m.bias
    nd = b.nd
    wshape = tuple(weight.shape)
    try:
        key = ("conv module", type(m), wshape, bias is not None, m.stride, m.padding, m.dilation, m.groups,
               m.padding_mode, nd)
        layer = b._made.get(key)
    except TypeError:  # unhashable attributes (lists)
        key = layer = None
    if layer is not None and is_standard(x, nd):
        return out_data(b.emit(op.name, layer, b.node(x), op.scope), out.shape, nd)
    if m.padding_mode == "circular":
        raise Unsupported("padding_mode='circular' (wraps around: not a window of the input)")
    import torch.nn as nn

    pad = m.padding if isinstance(m.padding, str) else _ax(m.padding, nd)
    if type(m).__name__.endswith("Same"):  # timm's Conv2dSame / StdConv2dSame: TensorFlow SAME
        pad = "tf_same"
    n = len(b.nodes)
    v = conv(b, op, x, out, wshape, bias is not None, m.stride, pad, m.dilation, m.groups,
             transposed=isinstance(m, nn.modules.conv._ConvTransposeNd), module=m)
    if key is not None and len(b.nodes) == n + 1 and type(b.nodes[-1][1]) is L.Conv:
        b._made[key] = b.nodes[-1][1]  # a windowed convolution (not one over the channel axis)
    return v


def conv(b, op, x, out, wshape, bias, stride, padding, dilation, groups, transposed=False, module=None):
    nd = b.nd
    k = wshape[2:]
    if transposed:
        cin, cout = wshape[0], wshape[1] * groups
    else:
        cout, cin = wshape[0], wshape[1] * groups
    if len(k) == nd and is_standard(x, nd):
        key = ("conv", wshape, bias, stride, padding, dilation, groups)
        try:
            layer = None if transposed else b._made.get(key)  # the same convolution as an earlier one
        except TypeError:  # unhashable arguments (lists from a functional call)
            key = layer = None
        if layer is not None:
            return out_data(b.emit(op.name, layer, b.node(x), op.scope), out.shape, nd)
        common = dict(kernel_size=_ax(k, nd), stride=_ax(_seq(stride, len(k)), nd),
                      dilation=_ax(_seq(dilation, len(k)), nd), groups=int(groups), bias=bool(bias),
                      in_channels=int(cin), out_channels=int(cout))
        if transposed:
            from .layers import ConvTranspose

            extra = []
            for n, o, kk, s, p, d in zip(x.shape[2:], out.shape[2:], k, _seq(stride, nd), _seq(padding, nd),
                                         _seq(dilation, nd)):
                e = o - ((n - 1) * s - 2 * p + d * (kk - 1) + 1)
                if not 0 <= e < max(s, d):
                    raise Unsupported(f"output size {o} does not follow from input size {n}")
                extra.append(e)
            layer = ConvTranspose(padding=_ax(_seq(padding, nd), nd), output_padding=_ax(extra, nd), **common)
        else:
            pad = padding if isinstance(padding, str) else _ax(_seq(padding, len(k)), nd)
            layer = b.make(L.Conv, padding=pad, **common)
            if key is not None:
                b._made[key] = layer
        name = b.emit(op.name, layer, b.node(x), op.scope)
        return out_data(name, tuple(out.shape), nd)
    # a convolution over the channel axis (ECA's Conv1d on a pooled vector): position-wise
    if not transposed and all(a[0] in ("C", "N") for d in x.dims[1:] for a in d) and not x.spatial() \
            or not transposed and _only(x.dims[1:], ("C",)) and not any(a[0] == "s" for d in x.dims for a in d):
        expected = math.prod(wshape) + (cout if bias else 0)
        macs = math.prod(out.shape[1:]) * math.prod(wshape[1:])
        layer = _contract("Pointwise")(params=expected, macs=macs, kind="Conv")
        return _positionwise(b, op, x, layer, out.shape)
    raise Unsupported(f"{len(k)}-d convolution on a tensor of shape {tuple(x.shape)} in a {nd}-d network")


def _seq(v, n):
    if isinstance(v, str):
        return v
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def pool_module(b, op, m, x, out):
    import torch.nn as nn

    if isinstance(m, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
        return adaptive(b, op, x, out, "Max" in type(m).__name__)
    same = type(m).__name__.endswith("Same")
    if isinstance(m, nn.modules.pooling._MaxPoolNd):
        if m.return_indices:
            raise Unsupported("return_indices=True")
        return pool(b, op, x, out, True, m.kernel_size, m.stride, "tf_same" if same else m.padding,
                    m.dilation, m.ceil_mode)
    if isinstance(m, nn.modules.pooling._AvgPoolNd):
        return pool(b, op, x, out, False, m.kernel_size, m.stride, "tf_same" if same else m.padding, 1,
                    m.ceil_mode)
    raise Unsupported(type(m).__name__)


def pool(b, op, x, out, is_max, k, s, p, d, ceil):
    nd = b.nd
    _standard(x, nd, "a pool")
    s = s or k
    kw = dict(kernel_size=_ax(_seq(k, nd), nd), stride=_ax(_seq(s, nd), nd),
              padding=p if isinstance(p, str) else _ax(_seq(p, nd), nd), ceil_mode=bool(ceil))
    layer = b.make(L.MaxPool, dilation=_ax(_seq(d, nd), nd), **kw) if is_max else b.make(L.AvgPool, **kw)
    name = b.emit(op.name, layer, b.node(x), op.scope)
    return out_data(name, tuple(out.shape), nd)


def adaptive(b, op, x, out, is_max):
    nd = b.nd
    _standard(x, nd, "an adaptive pool")
    sizes = tuple(out.shape[2:])
    if all(n == 1 for n in sizes):
        layer = b.make(L.GlobalMaxPool if is_max else L.GlobalAvgPool)
    else:
        layer = b.make(L.AdaptiveMaxPool if is_max else L.AdaptiveAvgPool, _ax(sizes, nd))
    name = b.emit(op.name, layer, b.node(x), op.scope)
    if all(n == 1 for n in sizes):
        b.globals_.append(name)
    return out_data(name, tuple(out.shape), nd)


def norm_over(b, op, x, out, ndims, params, kind):
    """A norm whose statistics span the last ``ndims`` axes (LayerNorm, RMSNorm)."""
    last = x.dims[len(x.dims) - ndims:]
    spatial = not _only(last, ("C",))
    if spatial and not is_standard(x, b.nd) and any(a[0] == "s" for d in x.dims[:len(x.dims) - ndims]
                                                    for a in d):
        raise Unsupported(f"{kind} over some spatial axes only")
    layer = b.make(_contract("Norm"), num_features=x.channels, params=params, spatial=spatial, kind=kind)
    return _positionwise(b, op, x, layer, out.shape)


def batch_norm(b, op, x, out, channels, params):
    if not (len(x.dims) > 1 and all(a[0] == "C" for a in x.dims[1])):
        raise Unsupported("batch norm over an axis that holds positions")
    affine = params > 0
    layer = b.make(L.BatchNorm, channels) if affine else b.make(L.BatchNorm, channels, affine=False)
    v = _positionwise(b, op, x, layer, out.shape)
    extra = params - (2 * channels if affine else 0)
    return b.params_node(v, extra, op.name + ".params", op.scope) if extra > 0 else v


def linear(b, op, x, out, wshape, bias, extra=0):
    fout, fin = wshape
    j = len(x.dims) - 1
    last = x.dims[j]
    other_c = math.prod(a[1] for jj, d in enumerate(x.dims) if jj != j for a in d if a[0] == "C")
    has_space = bool(x.spatial())
    if any(a[0] in ("s", "t") for a in last):  # flattened positions into features: a global Linear
        flat = b.emit(op.name + ".flatten", L.Flatten(), b.node(x), op.scope)
        b.globals_.append(flat)
        name = b.emit(op.name, L.Linear(fin, fout, bias=bias), flat, op.scope)
        return Data(name, tuple(normalise(d) for d in ((("N", x.shape[0]),), (("C", fout),))),
                    tuple(out.shape))
    _channels_dim(x, j, "Linear")
    if other_c == 1 and not has_space:
        layer = b.make(L.Linear, fin, fout, bias=bias)
    elif other_c == 1:
        layer = b.make(L.Conv, 1, in_channels=fin, out_channels=fout, bias=bias)
    else:
        layer = _contract("Pointwise")(out_channels=other_c * fout, params=fin * fout + (fout if bias else 0),
                                       macs=other_c * fin * fout, kind="Linear")
    v = _positionwise(b, op, x, layer, out.shape, j, fout)
    return b.params_node(v, extra, op.name + ".params", op.scope)


def attention(b, op, q, k, v, out_dims, out_shape, params=0, scores_params=0, token=None):
    """Global, window or grid attention reading q, k, v (their node, a channel split, or their
    sum); queries on another grid than the keys (LeViT's attention downsampling) make an
    Attention reading two nodes, ``(keys and values, queries)``. ``token`` is q's token dim
    (default: the second last)."""
    token = len(q.dims) - 2 if token is None else token
    if not any(a[0] == "s" for a in flat_atoms(q.dims[token])):
        raise Unsupported("attention over a tensor without positions")
    window = _window_of(q, token)
    roll = dict(v.roll)
    shift = tuple(-roll.get(i, 0) for i in range(b.nd))
    ts = [dataclasses.replace(t, roll=()) for t in (q, k, v)]
    queries = None
    if _axis_sizes(q) != _axis_sizes(k):  # queries on a grid of their own (LeViT's attention downsampling)
        if any(w is not None for w in window) or any(shift):
            raise Unsupported("window attention with queries on another grid than the keys")
        queries = b.node(ts[0], positionwise=True)
        ts = ts[1:]
    if all(t.node is None for t in ts) and len({t.pending[0] for t in ts}) == 1 or \
            all(t.node is not None for t in ts) and len({t.node for t in ts}) == 1:
        src = b.node(ts[-1])  # q, k, v split from one node: attention reads v's channels
    else:
        names = list(dict.fromkeys(b.node(t, positionwise=True) for t in ts))
        src = names[0] if len(names) == 1 else b.emit(op.name + ".qkv", "add", names, op.scope)
    kw = {"embed_dim": q.channels}
    kinds = {w[0] for w in window if w is not None}
    if kinds == {"window"}:
        kw["window"] = _ax([w[1] if w is not None else 10**9 for w in window], b.nd)
        if any(shift):
            kw["shift"] = _ax(shift, b.nd)
    elif kinds == {"grid"}:
        if any(shift):
            raise Unsupported("grid attention on a rolled tensor")
        kw["grid"] = _ax([w[1] if w is not None else n for w, n in zip(window, _axis_sizes(q))], b.nd)
    elif kinds:
        raise Unsupported("attention over a window partition on some axes and a grid partition on others")
    name = b.emit(op.name, _contract("Attention")(**kw), src if queries is None else (src, queries), op.scope)
    res = Data(name, out_dims, tuple(out_shape), tokens=q.tokens, roll=v.roll)
    return b.params_node(res, params + scores_params, op.name + ".params", op.scope)


def mha_module(b, op, m, x, out):
    if not m.batch_first:
        raise Unsupported("MultiheadAttention with batch_first=False")
    e = m.embed_dim
    _channels_dim(x, len(x.dims) - 1, "MultiheadAttention")
    n_in = b.take_module(m)
    qkv = b.emit(op.name + ".in_proj", L.Conv(1, in_channels=e, out_channels=3 * e, bias=m.in_proj_bias is not None),
                 b.node(x), op.scope)
    v = b.emit(op.name + ".v", _contract("Pointwise")(out_channels=e, kind="Split"), qkv, op.scope)
    t = dataclasses.replace(x, node=v, pending=None)
    a = attention(b, op, t, t, t, x.dims, x.shape)
    res = _positionwise(b, dataclasses.replace(op, name=op.name + ".out_proj"), a,
                        L.Conv(1, in_channels=e, out_channels=e, bias=m.out_proj.bias is not None), out[0].shape)
    used = 3 * e * e + (3 * e if m.in_proj_bias is not None else 0) + e * e + \
        (e if m.out_proj.bias is not None else 0)
    res = b.params_node(res, n_in - used, op.name + ".params", op.scope)
    return Many((res, Const()))


def upsample(b, op, x, out, mode, align_corners, scale_factor=None, recompute_scale_factor=None,
             antialias=False):
    """``nn.Upsample`` / ``F.interpolate``: an :class:`~rfsym.layers.Upsample` by the scale factor
    PyTorch samples with (``1/scale_factor`` unless ``recompute_scale_factor``), else to the
    traced output size (PyTorch then samples at ``n/size``)."""
    from .layers import Upsample

    _standard(x, b.nd, "interpolate")
    modes = {"nearest": "nearest", "nearest-exact": "nearest-exact", "linear": "bilinear",
             "bilinear": "bilinear", "trilinear": "bilinear"}
    if mode not in modes:
        raise Unsupported(f"interpolate mode={mode!r}")
    if antialias:
        raise Unsupported("interpolate with antialias=True")
    ins, outs = tuple(int(n) for n in x.shape[2:]), tuple(int(o) for o in out.shape[2:])
    corners = bool(align_corners) and modes[mode] == "bilinear"
    layer = None
    if scale_factor is not None and not recompute_scale_factor:
        factors = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * len(ins)
        if len(factors) == 1:
            factors = factors * len(ins)
        layer = Upsample(factors[0] if len(set(factors)) == 1 else factors, mode=modes[mode], align_corners=corners)
        if tuple(layer.output_size(a, len(ins), n) for a, n in enumerate(ins)) != outs:
            layer = None  # not the size PyTorch computed: read the traced one
    if layer is None:
        layer = Upsample(size=_ax(outs, b.nd), mode=modes[mode], align_corners=corners)
    if ins == outs and all(_copies(layer.phases(a, len(ins), n, n)) for a, n in enumerate(ins)):
        return x  # PyTorch copies
    name = b.emit(op.name, layer, b.node(x), op.scope)
    return out_data(name, tuple(out.shape), b.nd)


def _copies(phases):
    period, jump, pos, valid = phases
    return period == 1 and jump == 1 and pos[0, 0] == 0 and not valid[0, 1]


def pad(b, op, x, out, amounts, mode="constant"):
    """``F.pad``: ``amounts`` = (last-axis before, after, previous axis before, after, ...)."""
    if mode == "circular":
        raise Unsupported("circular padding")
    pairs = [(amounts[2 * j], amounts[2 * j + 1]) for j in range(len(amounts) // 2)]
    rank = len(x.dims)
    per_axis = {}
    for j, (lo, hi) in enumerate(pairs):
        d = rank - 1 - j
        if lo == hi == 0:
            continue
        atoms = x.dims[d]
        if len(atoms) == 1 and atoms[0][0] == "s" and atoms[0][2] == 1:
            per_axis[atoms[0][1]] = (lo, hi)
        else:
            raise Unsupported(f"pad of axis {d}, which is not one whole spatial axis")
    if not per_axis:
        return x.with_shape(out.shape)
    padding = tuple(per_axis.get(i, (0, 0)) for i in range(b.nd))
    name = b.emit(op.name, _contract("Pad")(padding), b.node(x), op.scope)
    dims = list(x.dims)
    for i, (lo, hi) in per_axis.items():
        j = next(j for j, d in enumerate(dims) if d and d[0][0] == "s" and d[0][1] == i)
        dims[j] = (("s", i, 1, dims[j][0][3] + lo + hi),)
    return Data(name, tuple(dims), tuple(out.shape))


def pixel_shuffle(b, op, x, out, factor, down):
    _standard(x, b.nd, "pixel (un)shuffle")
    layer = _contract("PixelUnshuffle" if down else "PixelShuffle")(int(factor))
    name = b.emit(op.name, layer, b.node(x), op.scope)
    return out_data(name, tuple(out.shape), b.nd)


def patch_merging_pad(b, op, x, out):
    """torchvision's Swin ``_patch_merging_pad``: pad to even sizes, 2×2 space-to-depth (channels-last)."""
    rank = len(x.dims)
    hd, wd = rank - 3, rank - 2
    if not (x.dims[hd] and x.dims[hd][0][:3] == ("s", 0, 1) and x.dims[wd] and x.dims[wd][0][:3] == ("s", 1, 1)):
        raise Unsupported("patch merging on a tensor that is not channels-last")
    h, w = x.shape[hd], x.shape[wd]
    src = b.node(x)
    if h % 2 or w % 2:
        src = b.emit(op.name + ".pad", _contract("Pad")(((0, h % 2), (0, w % 2))), src, op.scope)
    name = b.emit(op.name, _contract("PixelUnshuffle")(2), src, op.scope)
    dims = list(x.dims)
    dims[hd] = normalise((("s", 0, 1, out.shape[hd]),))
    dims[wd] = normalise((("s", 1, 1, out.shape[wd]),))
    dims[-1] = (("C", out.shape[-1]),)
    return Data(name, tuple(dims), tuple(out.shape))


def shifted_window_attention(b, op, args, kwargs, out):
    """torchvision's ``shifted_window_attention(input, qkv_weight, proj_weight, bias, window, heads,
    shift, ...)``: qkv projection, window attention with the (clipped) shift, output projection."""
    names = ["input", "qkv_weight", "proj_weight", "relative_position_bias", "window_size", "num_heads",
             "shift_size", "attention_dropout", "dropout", "qkv_bias", "proj_bias", "logit_scale", "training"]
    a = dict(zip(names, args))
    a.update(kwargs)
    x = a["input"]
    c = x.shape[-1]
    window = list(a["window_size"])
    shift = list(a["shift_size"])
    sizes = [x.shape[1] + (-x.shape[1]) % window[0], x.shape[2] + (-x.shape[2]) % window[1]]
    for i in range(2):
        if window[i] >= sizes[i]:
            shift[i] = 0
    qkv_b, proj_b = a.get("qkv_bias"), a.get("proj_bias")
    n_qkv = b.take(a["qkv_weight"], qkv_b)
    qkv = b.emit(op.name + ".qkv", L.Conv(1, in_channels=c, out_channels=3 * c, bias=qkv_b is not None),
                 b.node(x), op.scope)
    extra = n_qkv - (3 * c * c + (3 * c if qkv_b is not None else 0))
    v = b.emit(op.name + ".v", _contract("Pointwise")(out_channels=c, kind="Split"), qkv, op.scope)
    kw = {"embed_dim": c, "window": _ax(window, 2)}
    if any(shift):
        kw["shift"] = _ax(shift, 2)
    att = b.emit(op.name, _contract("Attention")(**kw), v, op.scope)
    n_proj = b.take(a["proj_weight"], proj_b)
    proj = b.emit(op.name + ".proj", L.Conv(1, in_channels=c, out_channels=c, bias=proj_b is not None), att,
                  op.scope)
    extra += n_proj - (c * c + (c if proj_b is not None else 0))
    extra += b.take(a["relative_position_bias"], a.get("logit_scale"))
    res = dataclasses.replace(x, node=proj, pending=None, shape=tuple(out.shape))
    return b.params_node(res, extra, op.name + ".params", op.scope)


# --------------------------------------------------------------------------- elementwise and merges
_ACTIVATIONS = {"ReLU": L.ReLU, "ReLU6": L.ReLU6, "LeakyReLU": L.LeakyReLU, "GELU": L.GELU, "SiLU": L.SiLU,
                "Sigmoid": L.Sigmoid, "Tanh": L.Tanh, "Hardswish": L.Hardswish, "Hardsigmoid": L.Hardsigmoid,
                "ELU": L.ELU, "Identity": L.Identity, "Dropout": L.Dropout, "Dropout1d": L.Dropout,
                "Dropout2d": L.Dropout, "Dropout3d": L.Dropout, "AlphaDropout": L.Dropout,
                "FeatureAlphaDropout": L.Dropout}
_FUNCTIONAL = {"relu": L.ReLU, "relu6": L.ReLU6, "leaky_relu": L.LeakyReLU, "gelu": L.GELU, "silu": L.SiLU,
               "sigmoid": L.Sigmoid, "tanh": L.Tanh, "hardswish": L.Hardswish, "hardsigmoid": L.Hardsigmoid,
               "elu": L.ELU}
#: torch.nn modules that act on each element separately (no rfsym layer of their own)
_ELEMENTWISE_MODULES = frozenset("""Hardtanh Softplus Mish SELU CELU RReLU Softsign Softshrink Hardshrink
Tanhshrink LogSigmoid Threshold PReLU GLU""".split())
#: unary torch functions and tensor methods that act on each element separately
_ELEMENTWISE = frozenset("""
abs neg exp exp2 expm1 log log2 log10 log1p sqrt rsqrt square reciprocal sign sin cos tan sinh cosh
asin acos atan erf erfc clamp clamp_min clamp_max clip hardtanh softplus mish selu celu rrelu softsign
softshrink hardshrink tanhshrink logsigmoid threshold prelu nan_to_num float double half bfloat16 to type
contiguous clone detach requires_grad cpu type_as sigmoid tanh dropout dropout1d dropout2d dropout3d
alpha_dropout feature_alpha_dropout stochastic_depth drop_path identity pow
""".split())
_ARITHMETIC = frozenset("add sub mul div maximum minimum pow".split())
_MERGE = {"add": "add", "sub": "add", "maximum": "add", "minimum": "add", "mul": "mul", "div": "mul"}


def binary(b, op, fn, a, c, out):
    """``a ∘ c`` elementwise (with broadcasting)."""
    datas, scores, consts = [], [], []
    for t in (a, c):
        if isinstance(t, Data):
            datas.append(t)
        elif isinstance(t, Scores):
            scores.append(t)
        elif isinstance(t, Const):
            consts.append(t)
    if scores:
        if datas:
            raise Unsupported(f"{fn} of attention scores with a tensor computed from the input")
        s = scores[0]
        extra = frozenset().union(*(t.params for t in consts)) if consts else frozenset()
        for t in scores[1:]:
            extra |= t.params
        return dataclasses.replace(s, params=s.params | extra)
    if len(datas) == 1:
        x = datas[0]
        x = x.with_shape(out.shape) if hasattr(out, "shape") else x
        n = b.take(*consts)
        return b.params_node(x, n, op.name, op.scope)
    x, y = datas
    if x.roll != y.roll:
        raise Unsupported(f"{fn} of a rolled and an unrolled tensor")
    nx, ny = b.node(x, positionwise=True), b.node(y, positionwise=True)
    if nx == ny:
        return dataclasses.replace(x, node=nx, pending=None, shape=tuple(out.shape))
    if fn not in _MERGE:
        raise Unsupported(f"{fn} of two tensors")
    base = x if x.dims == y.dims or len(x.spatial()) >= len(y.spatial()) else y
    if x.tokens != y.tokens:
        raise Unsupported("a merge of token sequences with different numbers of class tokens")
    name = b.emit(op.name, _MERGE[fn], (nx, ny), op.scope)
    return new_data(name, base.dims, tuple(out.shape), base.tokens, base.roll)  # replace(): node, no pending


def cat(b, op, tensors, dim, out):
    rank = len(out.shape)
    dim = _dim(dim, rank)
    datas = [t for t in tensors if isinstance(t, Data)]
    if not datas:
        return Const(frozenset().union(*(t.params for t in tensors if isinstance(t, Const))))
    first = datas[0]
    atoms = first.dims[dim]
    if any(a[0] in ("s", "t") for a in atoms):  # along the token axis: class / distillation tokens
        consts = [t for t in tensors if isinstance(t, Const)]
        if len(datas) != 1 or not isinstance(tensors[-1], Data):
            raise Unsupported("cat along positions (only prepending class tokens is supported)")
        extra = out.shape[dim] - first.shape[dim]
        v = _replace_dim(first, dim, (("t", out.shape[dim], flat_atoms(atoms)),), out.shape)
        v = dataclasses.replace(v, tokens=first.tokens + extra)
        return b.params_node(v, b.take(*consts), op.name, op.scope)
    if not all(a[0] == "C" for a in atoms):
        raise Unsupported(f"cat along axis {dim}, which is not a channel axis")
    if len(tensors) != len(datas):
        raise Unsupported("cat of a tensor computed from the input with a constant along channels")
    if len({t.roll for t in datas}) != 1:
        raise Unsupported("cat of rolled and unrolled tensors")
    names = [b.node(t, positionwise=True) for t in datas]
    if len(names) == 1:
        return _replace_dim(first, dim, (("C", out.shape[dim]),), out.shape)
    if len(set(names)) != len(names):
        # a tensor concatenated with itself: its channels repeat (position-wise)
        names = list(dict.fromkeys(names))
        if len(names) == 1:
            v = dataclasses.replace(first, node=names[0], pending=None)
            return _positionwise(b, op, v, _contract("Pointwise")(out_channels=out.shape[dim] *
                                 (v.channels // max(1, first.shape[dim])), kind="Repeat"), out.shape)
    name = b.emit(op.name, "concat", names, op.scope)
    v = dataclasses.replace(first, node=name, pending=None, roll=first.roll)
    return _replace_dim(v, dim, (("C", out.shape[dim]),), out.shape)


def split(b, op, x, dim, out_items):
    """chunk / split / unbind along a channel axis: pieces whose node is emitted when used."""
    rank = len(x.dims)
    dim = _dim(dim, rank)
    _channels_dim(x, dim, "split")
    parent = b.node(x, positionwise=True)
    items = []
    for i, t in enumerate(out_items):
        if len(t.shape) == rank:
            v = _replace_dim(x, dim, (("C", t.shape[dim]),), t.shape)
        else:  # unbind: the axis disappears
            dims = x.dims[:dim] + x.dims[dim + 1:]
            v = dataclasses.replace(x, dims=dims, shape=tuple(t.shape))
        if v.channels == x.channels:
            items.append(dataclasses.replace(v, node=parent, pending=None))
        else:
            items.append(dataclasses.replace(v, node=None, pending=(parent, f"{op.name}.{i}", op.scope)))
    return Many(tuple(items))


def reduce(b, op, fn, x, dims, keep, out):
    rank = len(x.dims)
    if dims is None:
        dims = tuple(range(1, rank))
    dims = {_dim(d, rank) for d in ((dims,) if isinstance(dims, int) else dims)}
    atoms = [a for j in dims for a in flat_atoms(x.dims[j])]
    if any(a[0] == "N" for a in atoms):
        raise Unsupported(f"{fn} over the batch axis")
    s_in = {a[1] for a in atoms if a[0] == "s"}
    s_all = {a[1] for _, a in x.spatial()}
    kept = [(j, d) for j, d in enumerate(x.dims) if j not in dims]
    if s_in and any(a[0] == "s" and a[1] in s_in for _, d in kept for a in flat_atoms(d)):
        raise Unsupported(f"{fn} over part of a spatial axis")
    v = x
    is_max = fn in ("amax", "max")
    if s_in:
        _std = Data(x.node, x.dims, x.shape, pending=x.pending)
        if s_in == s_all:
            layer = L.GlobalMaxPool() if is_max else L.GlobalAvgPool()
        else:
            sizes = [1 if i in s_in else math.prod(a[3] for _, a in x.spatial() if a[1] == i)
                     for i in range(b.nd)]
            layer = (L.AdaptiveMaxPool if is_max else L.AdaptiveAvgPool)(_ax(sizes, b.nd))
        name = b.emit(op.name, layer, b.node(_std), op.scope)
        if s_in == s_all:
            b.globals_.append(name)
        v = dataclasses.replace(x, node=name, pending=None, tokens=0)
    c_out = math.prod(a[1] for _, d in kept for a in d if a[0] == "C")
    if any(a[0] == "C" for a in atoms) and c_out != v.channels:
        v = _positionwise(b, op if not s_in else dataclasses.replace(op, name=op.name + ".channels"), v,
                          _contract("Pointwise")(out_channels=c_out, kind="Reduce"), out.shape)
    new_dims = []
    for j, d in enumerate(x.dims):
        if j in dims:
            if keep:
                new_dims.append(())
        else:
            new_dims.append(d)
    return dataclasses.replace(v, dims=tuple(new_dims), shape=tuple(out.shape))


def getitem(b, op, x, idx, out):
    """Indexing: channel selections, spatial crops and strides, class tokens."""
    from .layers import Crop

    if isinstance(x, Many):
        return x.items[idx] if isinstance(idx, int) else Many(tuple(x.items[idx]))
    if isinstance(x, (Const, Scores)):
        return x
    idx = idx if isinstance(idx, tuple) else (idx,)
    rank = len(x.dims)
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if any(i is Ellipsis for i in idx):
        e = next(j for j, i in enumerate(idx) if i is Ellipsis)
        idx = idx[:e] + (slice(None),) * (rank - n_real) + idx[e + 1:]
    idx = idx + (slice(None),) * (rank - sum(1 for i in idx if i is not None))
    dims, j, v = [], 0, x
    crops, strides = {}, {}
    channels_changed = False
    for i in idx:
        if i is None:
            dims.append(())
            continue
        d, n = x.dims[j], x.shape[j]
        j += 1
        if isinstance(i, slice) and (i == slice(None) or i.indices(n) == (0, n, 1)):
            dims.append(d)
            continue
        if not isinstance(i, (int, slice)):
            raise Unsupported(f"indexing with {type(i).__name__}")
        if all(a[0] == "C" for a in d):
            channels_changed = True
            if isinstance(i, slice):
                dims.append((("C", len(range(*i.indices(n)))),))
            continue
        if any(a[0] == "N" for a in d):
            raise Unsupported("indexing the batch axis")
        if x.tokens and any(a[0] == "t" for a in d):
            lo = i if isinstance(i, int) else i.indices(n)[0]
            if isinstance(i, int) or i.indices(n)[1] <= x.tokens:  # a class token
                name = b.emit(op.name, L.GlobalAvgPool(), b.node(x), op.scope)
                b.globals_.append(name)
                if not isinstance(i, int):
                    dims.append(())
                v = dataclasses.replace(x, node=name, pending=None, tokens=0)
                continue
            if lo == x.tokens and i.indices(n)[1] == n and i.indices(n)[2] == 1:  # the patch tokens
                dims.append(flat_atoms(d))
                v = dataclasses.replace(v, tokens=0)
                continue
            raise Unsupported("indexing a token sequence other than its class tokens")
        if len(d) == 1 and d[0][0] == "s" and d[0][2] == 1 and isinstance(i, slice):
            start, stop, step = i.indices(n)
            if stop <= start:
                raise Unsupported("an empty slice")
            crops[d[0][1]] = (start, n - stop)
            strides[d[0][1]] = step
            size = len(range(start, stop, step))
            dims.append((("s", d[0][1], 1, size),))
            continue
        raise Unsupported(f"indexing an axis that holds positions with {i!r}")
    out_v = dataclasses.replace(v, dims=tuple(normalise(d) for d in dims), shape=tuple(out.shape))
    if crops:
        if not is_standard(x, b.nd) and not _only(x.dims, ("N", "C", "s")):
            raise Unsupported("slicing positions of a tensor that is not (batch, channels, *spatial)")
        amount = tuple(crops.get(a, (0, 0)) for a in range(b.nd))
        src = b.node(x)
        if any(lo or hi for lo, hi in amount):
            src = b.emit(op.name, Crop(amount), src, op.scope)
        if any(s != 1 for s in strides.values()):
            st = _ax([strides.get(a, 1) for a in range(b.nd)], b.nd)
            src = b.emit(op.name + ".stride", L.AvgPool(1, stride=st), src, op.scope)
        out_v = dataclasses.replace(out_v, node=src, pending=None)
    if channels_changed:
        parent = b.node(out_v, positionwise=not crops)
        if out_v.channels != x.channels:
            out_v = dataclasses.replace(out_v, node=None, pending=(parent, op.name, op.scope))
    return out_v


def layout(b, op, fn, x, args, kwargs, out):
    """Ops that only move axes."""
    shape = tuple(out.shape)
    rank = len(x.dims)
    if fn in ("permute",):
        order = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
        order = kwargs.get("dims", order)
        dims = tuple(x.dims[_dim(d, rank)] for d in order)
    elif fn == "transpose":
        d0, d1 = (_dim(d, rank) for d in args[:2])
        dims = list(x.dims)
        dims[d0], dims[d1] = dims[d1], dims[d0]
        dims = tuple(dims)
    elif fn == "t":
        dims = tuple(reversed(x.dims))
    elif fn == "movedim":
        src, dst = args[:2]
        order = list(range(rank))
        order.remove(_dim(src, rank))
        order.insert(_dim(dst, rank), _dim(src, rank))
        dims = tuple(x.dims[d] for d in order)
    elif fn in ("expand", "expand_as", "repeat", "broadcast_to"):
        if any(a[0] == "s" for d in x.dims for a in d) and math.prod(shape) != math.prod(x.shape):
            if fn == "repeat":
                raise Unsupported("repeat of a tensor with positions")
        dims = tuple(x.dims[j - (len(shape) - rank)] if j >= len(shape) - rank and shape[j] == x.shape[j - (
            len(shape) - rank)] else ((("B", shape[j]),) if shape[j] > 1 else ()) for j in range(len(shape)))
        return dataclasses.replace(x, dims=tuple(normalise(d) for d in dims), shape=shape)
    else:  # view / reshape / flatten / unflatten / squeeze / unsqueeze
        try:
            dims = reshape(x.dims, x.shape, shape)
        except LayoutError as err:
            raise Unsupported(str(err)) from None
        return _space_to_depth(b, op, dataclasses.replace(x, dims=dims, shape=shape))
    return dataclasses.replace(x, dims=tuple(dims), shape=shape)


def _space_to_depth(b, op, v):
    """A reshape that moves the inner ``f`` positions of every spatial axis into a dim holding
    channels (Swin's patch merging, YOLO's focus): a ``PixelUnshuffle(f)`` node, the positions
    renumbered on the coarser grid."""
    moved = {}
    for d in v.dims:
        if any(a[0] == "C" for a in d):
            for a in d:
                if a[0] == "s":
                    moved.setdefault(a[1], []).append(a)
    if not moved:
        return v
    factors = set()
    for i in range(b.nd):
        inner = moved.get(i, [])
        if len(inner) != 1 or inner[0][2] != 1:
            raise Unsupported("a reshape that mixes positions into channels other than a space-to-depth")
        factors.add(inner[0][3])
    if len(factors) != 1:
        raise Unsupported("a space-to-depth with different factors per axis")
    f = factors.pop()
    name = b.emit(op.name, _contract("PixelUnshuffle")(f), b.node(v), op.scope)
    dims = []
    for d in v.dims:
        new = []
        for a in d:
            if a[0] == "s" and a in moved.get(a[1], []):
                new.append(("C", a[3]))
            elif a[0] == "s":
                new.append(("s", a[1], a[2] // f, a[3]))
            else:
                new.append(a)
        dims.append(normalise(new))
    return dataclasses.replace(v, node=name, pending=None, dims=tuple(dims))


def matmul(b, op, a, c, out, a_k, c_k, out_from, free):
    """A contraction of ``a`` (dims ``a_k``) with ``c`` (dims ``c_k``); ``out_from`` gives, per output
    dim, ``(0 or 1, dim)`` (from a or c); ``free`` the output dims only a has and only c has."""
    shape = tuple(out.shape)

    def build(srcs):
        return tuple(normalise(srcs[s].dims[d]) if d is not None else () for s, d in out_from)

    if isinstance(a, Const) and isinstance(c, Const):
        return Const(a.params | c.params)
    if isinstance(a, Data) and isinstance(c, Const) or isinstance(a, Const) and isinstance(c, Data):
        x, ks = (a, a_k) if isinstance(a, Data) else (c, c_k)
        if any(ch[0] != "C" for d in ks for ch in x.dims[d]):
            raise Unsupported("matmul with a constant over positions (a token-mixing weight)")
        fin = math.prod(x.shape[d] for d in ks)
        dims = build({0: a, 1: c} if isinstance(a, Data) else {0: a, 1: c})
        dims = tuple(d if all(t[0] != "B" for t in d) else () for d in dims)
        cout = channel_count(dims)
        params = b.take(a if isinstance(a, Const) else c)
        positions = math.prod(t[3] for _, t in x.spatial())
        macs = math.prod(shape) // max(1, positions * shape[0]) * fin if shape else 0
        v = _positionwise(b, op, x, _contract("Pointwise")(out_channels=cout, params=params, macs=macs,
                                                            kind="Linear"), shape)
        return dataclasses.replace(v, dims=dims)
    if isinstance(a, Data) and isinstance(c, Data):
        ka = [t for d in a_k for t in a.dims[d]]
        kc = [t for d in c_k for t in c.dims[d]]
        if _only([ka, kc], ("C",)):  # q·kᵀ over channels: scores
            qd = [j for j in free[0] if any(t[0] in ("s", "t") for t in a.dims[out_from[j][1]])]
            kd = [j for j in free[1] if any(t[0] in ("s", "t") for t in c.dims[out_from[j][1]])]
            if len(qd) == 1 and len(kd) == 1:
                dims = build({0: a, 1: c})
                return Scores(a, c, (out_from[qd[0]][1],), kd[0], dims)
        raise Unsupported("matmul of two tensors computed from the input over positions")
    if isinstance(a, Scores) and isinstance(c, Data):
        kc = [t for d in c_k for t in c.dims[d]]
        if not any(t[0] in ("s", "t") for t in kc) or len(a_k) != 1 or a_k[0] != a.kdim:
            raise Unsupported("attention weights applied over other than the key tokens")
        q = a.q
        dims = []
        for s, d in out_from:
            dims.append(normalise(a.dims[d] if s == 0 else c.dims[d]) if d is not None else ())
        qv = q if q.node is not None or q.pending is not None else q
        return attention(b, op, qv, a.k, c, tuple(dims), shape, scores_params=b.take(Const(a.params)),
                         token=a.qdims[0])
    raise Unsupported("matmul of these operands")


def einsum(b, op, eq, operands, out):
    eq = eq.replace(" ", "")
    if "->" not in eq or len(operands) != 2 or "." in eq:
        raise Unsupported(f"einsum {eq!r}")
    lhs, rhs = eq.split("->")
    sa, sc = lhs.split(",")
    contracted = [ch for ch in sa if ch in sc and ch not in rhs]
    a_k = [sa.index(ch) for ch in contracted]
    c_k = [sc.index(ch) for ch in contracted]
    out_from = []
    for ch in rhs:
        out_from.append((0, sa.index(ch)) if ch in sa else (1, sc.index(ch)))
    a, c = operands
    free = ([j for j, ch in enumerate(rhs) if ch in sa and ch not in sc],
            [j for j, ch in enumerate(rhs) if ch in sc and ch not in sa])
    return matmul(b, op, a, c, out, a_k, c_k, out_from, free)


_LETTERS = string.ascii_letters


def matmul_op(b, op, a, c, out):
    ra = len(a.dims) if not isinstance(a, Const) else None
    rc = len(c.dims) if not isinstance(c, Const) else None
    ra = ra if ra is not None else len(out.shape) - (rc - 2 if rc else 0) if False else ra
    shape = tuple(out.shape)
    rank = len(shape)
    if ra is None:
        ra = rank if rc == rank else 2
    if rc is None:
        rc = 2 if ra == rank else rank
    a_k, c_k = [ra - 1], [rc - 2 if rc >= 2 else 0]
    out_from = []
    for j in range(rank - 2):
        ja, jc = j - (rank - ra), j - (rank - rc)
        if ja >= 0 and (isinstance(a, Data) or isinstance(a, Scores)):
            out_from.append((0, ja))
        elif jc >= 0:
            out_from.append((1, jc))
        else:
            out_from.append((0, None))
    out_from += [(0, ra - 2), (1, rc - 1)]
    return matmul(b, op, a, c, out, a_k, c_k, out_from, ([rank - 2], [rank - 1]))


def sdpa(b, op, q, k, v, out, params=0):
    rank = len(q.dims)
    dims = q.dims[:rank - 1] + (v.dims[-1],)
    return attention(b, op, q, k, v, dims, tuple(out.shape))


_OPS = operator
