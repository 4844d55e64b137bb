"""Import a ``torch.nn.Module`` into an rfsym :class:`~rfsym.Graph` (extra ``torch``).

:func:`from_torch` runs the module's forward on a stand-in input carrying a *meta* tensor and
converts each operation as it runs (:class:`_Direct`: torch.nn's modules are converted whole, not
run; parameters read by the module's code are constants; the operations are those torch.fx would
record, without an fx graph). Shapes only: no convolution is computed and no tensor of activation
size is allocated; the module is not modified. Where the forward reads a value computed from the
input, the module is traced with :mod:`torch.fx` and meta tensors are propagated through the
traced graph; where fx cannot trace it either, the same is done by running the module on a meta
input with forward hooks on its leaf modules and a ``TorchFunctionMode`` recording the functions
called between them (parameters swapped for meta copies with
:func:`torch.func.functional_call`).

Every operation is classified by what it does to the axes of its operands (batch, channels,
positions: :mod:`rfsym.torch_layout`, :mod:`rfsym.torch_ops`), not by a list of accepted modules:
layout changes (``permute``, ``view``, channel shuffles, tokens ``flatten(2).transpose(1, 2)``
and back) add no node; LayerNorm/RMSNorm/Linear/matmul over the channel axis are position-wise
nodes (:class:`rfsym.Norm`, ``Conv(1)``, :class:`rfsym.Pointwise`); convolutions, pools, pads,
interpolation and pixel shuffles are their layers; attention (explicit ``q @ k.transpose``,
``einsum``, ``scaled_dot_product_attention``, ``nn.MultiheadAttention``, torchvision's
``shifted_window_attention``) is :class:`rfsym.Attention`, windowed when the tokens attended are
a window partition of the positions; ``x * gate`` is a ``"mul"`` merge; parameters used outside a
layer (class tokens, position embeddings, layer scales) are :class:`rfsym.Params` nodes.

Node names are module paths (``layer4.2.conv3``; ``#2`` on a module's second call); functions are
named ``<enclosing module>.<function>`` (``layer1.0.add``). The output of every module that is
not a leaf (``layer4``, ``layer4.2``, ``features``) is an ``Identity`` node named by its path, so
``result.layer("layer4")`` is that module's output. ``features`` is the last feature map before
the first global operation that every way to the output passes through (global pool, flatten
into a linear layer, class-token selection; not a squeeze-excitation gate's pool, which the gated
path bypasses).

>>> import pytest; torch = pytest.importorskip("torch")
>>> import rfsym
>>> net = rfsym.from_torch(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1),
...                                            torch.nn.ReLU(), torch.nn.MaxPool2d(2)), (3, 32, 32))
>>> [node[0] for node in net.nodes]
['0', '1', '2']
>>> r = rfsym.analyze(net, input_size=32)
>>> r.rf, r.jump, r.out_size, r.params
(4, 2, 16, 224)
"""

from __future__ import annotations

import dataclasses
import gc
import operator
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import layers as L
from . import torch_ops as T
from .backbone import feature_node
from .errors import GraphError, LayerError, RfsymError
from .layers import Graph
from .sharing import SharedCalls

__all__ = ["from_torch"]


@dataclass(slots=True)
class _Op:
    name: str  # base node name
    scope: str  # path of the enclosing module
    kind: str  # "module", "function" or "method"
    target: object
    label: str


def _leaf_classes():
    """timm's no-trace modules that are torch.nn layers (BatchNormAct2d, Conv2dSame, pools); none
    when timm is not imported (then no module can be one of them)."""
    import sys

    import torch.nn as nn

    if "timm" not in sys.modules:
        return ()
    try:
        from timm.layers import get_notrace_modules
    except ImportError:
        return ()
    known = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.modules.pooling._MaxPoolNd,
             nn.modules.pooling._AvgPoolNd)
    return tuple(c for c in get_notrace_modules() if issubclass(c, known))


def _is_leaf(m, extra=()):
    import torch.nn as nn

    if isinstance(m, extra):
        return True
    mod = type(m).__module__
    return (mod.startswith("torch.nn") or mod.startswith("torch.ao.nn")) and not isinstance(
        m, (nn.Sequential, nn.ModuleList, nn.ModuleDict))


# --------------------------------------------------------------------------- dispatch
def _walk(obj, fn):
    if isinstance(obj, (list, tuple)):
        return type(obj)(_walk(v, fn) for v in obj) if not hasattr(obj, "_fields") else \
            type(obj)(*(_walk(v, fn) for v in obj))
    if isinstance(obj, dict):
        return {k: _walk(v, fn) for k, v in obj.items()}
    if isinstance(obj, slice):
        return slice(_walk(obj.start, fn), _walk(obj.stop, fn), _walk(obj.step, fn))
    return fn(obj)


def _flat(obj, out=None):
    out = [] if out is None else out
    if isinstance(obj, (list, tuple)):
        for v in obj:
            _flat(v, out)
    elif isinstance(obj, dict):
        for v in obj.values():
            _flat(v, out)
    elif isinstance(obj, slice):
        _flat((obj.start, obj.stop, obj.step), out)
    else:
        out.append(obj)
    return out


def _is_data(v):
    return isinstance(v, (T.Data, T.Scores)) or isinstance(v, T.Many) and any(_is_data(i) for i in v.items)


def _const_params(values):
    out = frozenset()
    for v in values:
        if isinstance(v, T.Const):
            out |= v.params
        elif isinstance(v, T.Many):
            out |= _const_params(v.items)
    return out


def _arg(args, kwargs, i, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


def _module_kind(t):
    """The conversion rule of module class ``t`` (the first of :func:`_convert_module`'s cases
    that holds; computed once per class)."""
    import torch.nn as nn

    pools = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
             nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
    cases = (("conv", nn.modules.conv._ConvNd), ("pool", pools), ("batchnorm", nn.modules.batchnorm._BatchNorm),
             ("norm", (nn.GroupNorm, nn.modules.instancenorm._InstanceNorm, nn.LocalResponseNorm)),
             ("layernorm", nn.LayerNorm), ("rmsnorm", getattr(nn, "RMSNorm", ())), ("linear", nn.Linear),
             ("mha", nn.MultiheadAttention), ("flatten", (nn.Flatten, nn.Unflatten)), ("upsample", nn.Upsample),
             ("shuffle", (nn.PixelShuffle, nn.PixelUnshuffle)),
             ("pad", (nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
                      nn.modules.padding._ReplicationPadNd)),
             ("channel_shuffle", nn.ChannelShuffle))
    for kind, classes in cases:
        if issubclass(t, classes):
            return kind
    cls = t.__name__
    if cls in ("Softmax", "Softmax2d", "LogSoftmax"):
        return "softmax"
    if cls in T._ACTIVATIONS:
        return "activation"
    if cls in T._ELEMENTWISE_MODULES:
        return "elementwise"
    return None


_MODULE_KINDS: dict = {}  # module class -> _module_kind(class)


def _convert_module(b, op, m, args, kwargs, out, module_params):
    x = args[0] if args else next(iter(kwargs.values()))
    t = type(m)
    cls = t.__name__
    if isinstance(x, T.Scores):
        if cls in T._ACTIVATIONS or cls in ("Softmax", "LogSoftmax"):  # dropout / softmax of attention weights
            return x
        raise T.Unsupported(f"{cls} on attention weights")
    counted = b.counted
    n_params = 0
    for pid, n in module_params:
        if pid not in counted:
            n_params += n
            counted.add(pid)
    try:
        kind = _MODULE_KINDS[t]
    except KeyError:
        kind = _MODULE_KINDS[t] = _module_kind(t)
    if kind == "conv":
        weight, bias = m.weight, m.bias
        v = T.conv_module(b, op, m, x, out, weight, bias)
        numel = b.numel
        expected = (numel.get(id(weight)) or weight.numel()) + (
            0 if bias is None else numel.get(id(bias)) or bias.numel())
        return b.params_node(v, n_params - expected, op.name + ".params", op.scope)
    if kind == "activation":
        if (cls == "Identity" or cls.startswith("Dropout")) and x.pending is not None:
            return x  # keep a channel split pending (q/k/v of attention)
        return T._positionwise(b, op, x, b.make(T._ACTIVATIONS[cls]), out.shape)
    if kind == "batchnorm":
        return T.batch_norm(b, op, x, out, m.num_features, n_params)
    if kind == "pool":
        return T.pool_module(b, op, m, x, out)
    if kind == "norm":
        import torch.nn as nn

        c = x.channels
        layer = T._contract("Norm")(num_features=c, params=n_params, spatial=not isinstance(
            m, nn.LocalResponseNorm), kind=cls)
        return T._positionwise(b, op, x, layer, out.shape)
    if kind == "layernorm":
        return T.norm_over(b, op, x, out, len(m.normalized_shape), n_params, "LayerNorm")
    if kind == "rmsnorm":
        return T.norm_over(b, op, x, out, len(m.normalized_shape), n_params, "RMSNorm")
    if kind == "linear":
        used = m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
        return T.linear(b, op, x, out, tuple(m.weight.shape), m.bias is not None, n_params - used)
    if kind == "mha":
        b.counted.difference_update(pid for pid, _ in module_params)
        return T.mha_module(b, op, m, x, out)
    if kind == "flatten":
        return _layout(b, op, "reshape", x, (), {}, out)
    if kind == "upsample":
        return T.upsample(b, op, x, out, m.mode, m.align_corners, m.scale_factor,
                          getattr(m, "recompute_scale_factor", None))
    if kind == "shuffle":
        import torch.nn as nn

        down = isinstance(m, nn.PixelUnshuffle)
        return T.pixel_shuffle(b, op, x, out, m.downscale_factor if down else m.upscale_factor, down)
    if kind == "pad":
        return T.pad(b, op, x, out, tuple(m.padding))
    if kind == "channel_shuffle":
        return x.with_shape(out.shape)
    if kind == "softmax":
        return _softmax(b, op, x, 1 if cls == "Softmax2d" else m.dim, out, cls)
    if kind == "elementwise":
        if cls == "GLU":
            raise T.Unsupported("GLU")
        v = T._positionwise(b, op, x, L.Elementwise(), out.shape)
        return b.params_node(v, n_params, op.name + ".params", op.scope)
    raise T.Unsupported(cls)


def _softmax(b, op, x, dim, out, label="softmax"):
    if isinstance(x, T.Scores):
        return x
    rank = len(x.dims)
    dim = T._dim(dim if dim is not None else 1, rank)
    T._channels_dim(x, dim, label)
    return T._positionwise(b, op, x, L.Softmax(), out.shape)


def _layout(b, op, fn, x, args, kwargs, out):
    if isinstance(x, T.Scores):
        return x
    return T.layout(b, op, fn, x, args, kwargs, out)


_LAYOUT = frozenset("view reshape flatten unflatten squeeze unsqueeze permute transpose t movedim expand "
                    "expand_as broadcast_to repeat view_as reshape_as".split())


def _convert_function(b, op, fn, args, kwargs, out):
    import torch

    x = next((a for a in _flat((args, kwargs)) if _is_data(a)), None)
    if fn in ("getattr", "size", "dim", "numel", "shape"):
        return out
    if fn == "getitem":
        return T.getitem(b, op, args[0], args[1], out)
    if fn in _LAYOUT:
        if fn in ("view_as", "reshape_as"):
            fn = "reshape"
        if not isinstance(args[0], T.Data):
            if isinstance(args[0], T.Scores):
                return args[0]
            raise T.Unsupported(f"{fn} of a computed value")
        rest = args[1:]
        if len(rest) == 1 and isinstance(rest[0], (tuple, list, torch.Size)):
            rest = tuple(rest[0])
        return _layout(b, op, fn, args[0], rest, kwargs, out)
    if fn in T._ELEMENTWISE and fn not in ("sigmoid", "tanh", "pow") or \
            fn in ("sigmoid", "tanh") and len([a for a in args if _is_data(a)]) == 1 and len(args) == 1:
        if isinstance(x, T.Scores):
            return x
        if fn in ("sigmoid", "tanh"):
            return T._positionwise(b, op, x, b.make(T._FUNCTIONAL[fn]), out.shape)
        return x.with_shape(out.shape) if isinstance(out, torch.Tensor) else x
    if fn in T._FUNCTIONAL:
        if isinstance(x, T.Scores):
            return x
        return T._positionwise(b, op, x, b.make(T._FUNCTIONAL[fn]), out.shape)
    if fn in ("softmax", "log_softmax"):
        return _softmax(b, op, args[0], _arg(args, kwargs, 1, "dim"), out)
    if fn in T._ARITHMETIC and fn != "pow" or fn == "pow" and len([a for a in args if _is_data(a)]) == 2:
        a, c = (args + (kwargs.get("other"),))[:2]
        return T.binary(b, op, fn, a, c, out)
    if fn == "pow":
        return x.with_shape(out.shape)
    if fn == "addcmul":
        a, t1, t2 = args[:3]
        v = T.binary(b, op, "mul", t1, t2, out)
        return T.binary(b, dataclasses.replace(op, name=op.name + ".add"), "add", a, v, out)
    if fn in ("cat", "stack") and fn == "cat":
        return T.cat(b, op, list(_arg(args, kwargs, 0, "tensors")), _arg(args, kwargs, 1, "dim", 0), out)
    if fn in ("chunk", "split", "unbind", "tensor_split", "split_with_sizes"):
        dim = _arg(args, kwargs, 2, "dim", 0) if fn != "unbind" else _arg(args, kwargs, 1, "dim", 0)
        return T.split(b, op, args[0], dim, list(out))
    if fn in ("mean", "sum", "amax", "std", "var", "logsumexp", "norm", "max", "min", "amin"):
        if fn in ("max", "min") and len(args) >= 2 and _is_data(args[1]):
            return T.binary(b, op, "maximum", args[0], args[1], out)
        dims = _arg(args, kwargs, 1, "dim")
        if fn == "norm":
            dims = _arg(args, kwargs, 2, "dim")
        keep = bool(_arg(args, kwargs, 2, "keepdim", False)) if fn != "norm" else bool(
            _arg(args, kwargs, 3, "keepdim", False))
        if fn in ("std", "var"):
            keep = bool(kwargs.get("keepdim", False))
        single = out if isinstance(out, torch.Tensor) else out[0]
        v = T.reduce(b, op, "amax" if fn in ("max", "amax") else fn, args[0], dims, keep, single)
        return v if isinstance(out, torch.Tensor) else T.Many((v, T.Const()))
    if fn in ("conv1d", "conv2d", "conv3d"):
        xx, w = args[0], _arg(args, kwargs, 1, "weight")
        bias = _arg(args, kwargs, 2, "bias")
        stride, padding = _arg(args, kwargs, 3, "stride", 1), _arg(args, kwargs, 4, "padding", 0)
        dil, groups = _arg(args, kwargs, 5, "dilation", 1), _arg(args, kwargs, 6, "groups", 1)
        wshape = tuple(w.shape)
        n = b.take(w, bias)
        v = T.conv(b, op, xx, out, wshape, bias is not None, stride, padding, dil, groups)
        expected = _numel(wshape) + (wshape[0] if bias is not None else 0)
        return b.params_node(v, n - expected, op.name + ".params", op.scope)
    if fn == "linear":
        w, bias = _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 2, "bias")
        n = b.take(w, bias)
        wshape = tuple(w.shape)
        return T.linear(b, op, args[0], out, wshape, bias is not None, n - _numel(wshape) -
                        (wshape[0] if bias is not None else 0))
    if fn == "batch_norm":
        w, bias = _arg(args, kwargs, 3, "weight"), _arg(args, kwargs, 4, "bias")
        n = b.take(w, bias)
        return T.batch_norm(b, op, args[0], out, args[0].shape[1], n)
    if fn in ("layer_norm", "rms_norm"):
        shape = _arg(args, kwargs, 1, "normalized_shape")
        n = b.take(*[a for a in _flat((args[2:], kwargs)) if isinstance(a, T.Const)])
        return T.norm_over(b, op, args[0], out, len(shape), n, "LayerNorm" if fn == "layer_norm" else "RMSNorm")
    if fn in ("group_norm", "instance_norm"):
        n = b.take(*[a for a in _flat((args[1:], kwargs)) if isinstance(a, T.Const)])
        layer = T._contract("Norm")(num_features=args[0].channels, params=n, spatial=True,
                                    kind="GroupNorm" if fn == "group_norm" else "InstanceNorm")
        return T._positionwise(b, op, args[0], layer, out.shape)
    if fn in ("max_pool1d", "max_pool2d", "max_pool3d"):
        k = _arg(args, kwargs, 1, "kernel_size")
        return T.pool(b, op, args[0], out, True, k, _arg(args, kwargs, 2, "stride"),
                      _arg(args, kwargs, 3, "padding", 0), _arg(args, kwargs, 4, "dilation", 1),
                      _arg(args, kwargs, 5, "ceil_mode", False))
    if fn in ("avg_pool1d", "avg_pool2d", "avg_pool3d"):
        k = _arg(args, kwargs, 1, "kernel_size")
        return T.pool(b, op, args[0], out, False, k, _arg(args, kwargs, 2, "stride"),
                      _arg(args, kwargs, 3, "padding", 0), 1, _arg(args, kwargs, 4, "ceil_mode", False))
    if fn.startswith(("adaptive_avg_pool", "adaptive_max_pool")):
        single = out if isinstance(out, torch.Tensor) else out[0]
        v = T.adaptive(b, op, args[0], single, "max" in fn)
        return v if isinstance(out, torch.Tensor) else T.Many((v, T.Const()))
    if fn in ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear"):
        mode = {"upsample_nearest": "nearest", "upsample_bilinear": "bilinear"}.get(
            fn, _arg(args, kwargs, 3, "mode", "nearest"))
        align = True if fn == "upsample_bilinear" else _arg(args, kwargs, 4, "align_corners", None)
        return T.upsample(b, op, args[0], out, mode, align, _arg(args, kwargs, 2, "scale_factor"),
                          _arg(args, kwargs, 5, "recompute_scale_factor"), _arg(args, kwargs, 6, "antialias", False))
    if fn == "pad":
        return T.pad(b, op, args[0], out, tuple(_arg(args, kwargs, 1, "pad")), _arg(args, kwargs, 2, "mode",
                                                                                  "constant"))
    if fn in ("pixel_shuffle", "pixel_unshuffle"):
        return T.pixel_shuffle(b, op, args[0], out, args[1], fn == "pixel_unshuffle")
    if fn == "channel_shuffle" or fn == "native_channel_shuffle":
        return args[0].with_shape(out.shape)
    if fn == "roll":
        return _roll(b, args[0], _arg(args, kwargs, 1, "shifts"), _arg(args, kwargs, 2, "dims"), out)
    if fn == "matmul":
        return T.matmul_op(b, op, args[0], args[1], out)
    if fn == "einsum":
        eq = args[0]
        operands = args[1:] if len(args) > 2 or not isinstance(args[1], (list, tuple)) else tuple(args[1])
        return T.einsum(b, op, eq, list(operands), out)
    if fn == "scaled_dot_product_attention":
        return T.sdpa(b, op, args[0], args[1], args[2], out)
    if fn == "patch_merging_pad":
        return T.patch_merging_pad(b, op, args[0], out)
    if fn == "shifted_window_attention":
        return T.shifted_window_attention(b, op, args, kwargs, out)
    if fn in ("masked_fill", "where") and isinstance(args[0], T.Scores):
        return args[0]
    raise T.Unsupported(fn)


def _roll(b, x, shifts, dims, out):
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    roll = dict(x.roll)
    for s, d in zip(shifts, dims):
        atoms = x.dims[T._dim(d, len(x.dims))]
        if len(atoms) != 1 or atoms[0][0] != "s" or atoms[0][2] != 1:
            raise T.Unsupported("torch.roll of an axis that is not one whole spatial axis")
        i, n = atoms[0][1], atoms[0][3]
        roll[i] = (roll.get(i, 0) + s) % n
        if roll[i] > n // 2:
            roll[i] -= n
    return dataclasses.replace(x, roll=tuple(sorted((i, s) for i, s in roll.items() if s)), shape=tuple(out.shape))



def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


# --------------------------------------------------------------------------- tracing
class _Recorder:
    """Converts operations as a trace produces them (shared by the direct, fx and hook tracers)."""

    def __init__(self, module, shape, modules=None):
        import torch

        self.tensor = torch.Tensor
        self.b = T.Builder(nd=len(shape) - 2)
        self.unsupported = []
        self._param_ids = None
        self._module_params = {}
        #: the nodes of every call of a module with parameters (a module called twice: shared)
        self.calls = SharedCalls()
        #: ``(path, module)`` of every submodule, shared ones at each of their paths
        self.modules = modules if modules is not None else list(module.named_modules(remove_duplicate=False))
        numel = self.b.numel
        known = self._module_params  # modules without children: their own parameters, here
        for _, m in self.modules:  # named_parameters(remove_duplicate=False), from the same walk
            params = m._parameters
            if params:
                own = {}
                for p in params.values():
                    if p is not None:
                        own[id(p)] = numel[id(p)] = p.numel()
                if not m._modules:
                    known[id(m)] = list(own.items())
            elif not m._modules:  # (most modules hold no parameters of their own)
                known[id(m)] = []

    @property
    def param_ids(self):
        """``{dotted parameter name: id}`` over the same walk (the fx and hook tracers read it)."""
        if self._param_ids is None:
            self._param_ids = {f"{path}.{k}" if path else k: id(p) for path, m in self.modules
                               for k, p in m._parameters.items() if p is not None}
        return self._param_ids

    def module_params(self, m):
        """``[(id, numel)]`` of the parameters of module ``m`` (computed on first use)."""
        out = self._module_params.get(id(m))
        if out is None:
            own = getattr(m, "_parameters", None)  # a module without children: its own parameters
            if isinstance(own, dict) and not getattr(m, "_modules", True):
                params = {id(p): p for p in own.values() if p is not None}
                numel = self.b.numel  # counted in the walk above
                out = [(pid, numel[pid] if pid in numel else p.numel()) for pid, p in params.items()]
            else:
                out = [(id(p), p.numel()) for p in m.parameters()]
            self._module_params[id(m)] = out
        return out

    def op(self, kind, target, path, scope, args, kwargs, out):
        """Convert one operation; args hold descriptions (Data/Const/...) in place of tensors."""
        if kind == "module":
            label = type(target).__name__
            base = path
        else:
            fn = T.canonical(target if isinstance(target, str) else getattr(target, "__name__", repr(target)))
            label = fn
            base = f"{scope}.{fn}" if scope else fn
        op = _Op(base, scope if kind != "module" else path, kind, target, label)
        n = len(args)
        if type(out) is self.tensor and not kwargs and (
                n == 1 and type(args[0]) is T.Data or n == 2 and T.Data in (type(args[0]), type(args[1]))):
            pass  # the common cases (one tensor out of one or two operands, one computed from the input): no checks
        elif not _has_tensor(out):
            return out  # a value query (x.shape, x.size(0), x.item()): its value
        elif not any(_is_data(v) for v in _flat((args, kwargs))):
            values = _flat((args, kwargs))
            params = _const_params(values)
            if kind == "module":
                params |= frozenset(pid for pid, _ in self.module_params(target))
            return _const_like(out, params)
        try:
            if kind == "module":
                first = len(self.b.nodes)
                params = self.module_params(target)
                v = _convert_module(self.b, op, target, args, kwargs, out, params)
                if params:  # the same parameters (one module called twice, or tied): counted once
                    self.calls.record(tuple(pid for pid, _ in params), self.b.nodes[first:])
                return v
            return _convert_function(self.b, op, label, args, kwargs, out)
        except (T.Unsupported, LayerError) as err:
            where = path if kind == "module" else (scope or "<top>")
            detail = str(err)
            self.unsupported.append(f"{where}: {label}" + (f" ({detail})" if detail and detail != label else ""))
            return _poison(out)


def _has_tensor(out):
    import torch

    return any(isinstance(o, torch.Tensor) for o in _flat(out if isinstance(out, (tuple, list, dict)) else [out]))


def _const_like(out, params):
    import torch

    if isinstance(out, (tuple, list)) and any(isinstance(o, torch.Tensor) for o in out):
        return T.Many(tuple(T.Const(params, tuple(o.shape)) if isinstance(o, torch.Tensor) else o for o in out))
    if isinstance(out, torch.Tensor):
        return T.Const(params, tuple(out.shape))
    return out


def _poison(out):
    """After an unsupported operation: a stand-in that lets the trace go on (to list every error)."""
    import torch

    def one(o):
        if isinstance(o, torch.Tensor):
            return T.Data("<unsupported>", tuple((("C", n),) for n in o.shape), tuple(o.shape))
        return o
    if isinstance(out, (tuple, list)):
        return T.Many(tuple(one(o) for o in out))
    return one(out)


def _scope_of(node):
    scope = node.meta.get("rfsym_scope")
    if scope is not None:
        return scope
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


_TRACERS = {}


def _tracer(fx):
    """The fx tracer of from_torch (one class per set of leaf classes): leaves are torch.nn's
    modules (and timm's untraceable layers), decided once per module class; each node records the
    path of its innermost module (``rfsym_scope``) instead of a copy of fx's whole module stack,
    and gets a short name (fx derives one from the target, for code generation rfsym never does)."""
    extra = _leaf_classes()
    cls = _TRACERS.get(extra)
    if cls is not None:
        return cls
    leaf = {}

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            t = type(m)
            out = leaf.get(t)
            if out is None:
                out = leaf[t] = _is_leaf(m, extra)
            return out

        def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
            if kind not in ("call_module", "call_function", "call_method") or self.check_mutable_operations \
                    or self.record_stack_traces:
                return super().create_node(kind, target, args, kwargs, name, type_expr)
            node = self.graph.create_node(kind, target, args, kwargs, name or "n", type_expr)
            stack = self.module_stack
            node.meta["rfsym_scope"] = next(reversed(stack.values()))[0] if stack else ""
            return node

    _TRACERS[extra] = Tracer
    return Tracer


def _meta_state(module):
    import itertools

    return {k: v.to("meta") for k, v in itertools.chain(module.named_parameters(remove_duplicate=False),
                                                        module.named_buffers(remove_duplicate=False))}


def _shape_preserving():
    import torch.nn as nn

    names = set(T._ACTIVATIONS) | set(T._ELEMENTWISE_MODULES) - {"GLU"}
    classes = tuple(getattr(nn, n) for n in sorted(names) if hasattr(nn, n))
    return classes + (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm,
                      nn.LayerNorm, nn.LocalResponseNorm, nn.Softmax, nn.Softmax2d, nn.LogSoftmax)


# --------------------------------------------------------------------------- output shapes
# The fx trace needs each operation's output only for its shape (and dtype). torch's meta kernels
# of elementwise operations, reductions and cat are Python decompositions costing 0.1-1 ms a call,
# more than rfsym's whole conversion of the operation, so the common ones are computed here from
# their operands' shapes; anything else runs on meta tensors.

#: functions and methods (canonical names) whose output has their first operand's shape and dtype
_SAME_SHAPE = frozenset("""
relu relu6 leaky_relu gelu silu sigmoid tanh hardswish hardsigmoid hardtanh elu selu celu mish softplus
logsigmoid softsign tanhshrink dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout
stochastic_depth drop_path softmax log_softmax layer_norm rms_norm batch_norm group_norm instance_norm
contiguous clone detach neg abs exp sqrt rsqrt erf square reciprocal sign
""".split())
#: functions and methods whose output has the broadcast shape of two operands
_BROADCAST = frozenset("add sub mul div maximum minimum".split())
_REDUCE = frozenset("mean sum amax amin".split())


class _Shapes:
    """Output shapes of traced operations without meta kernels where they follow from the
    operands' shapes; one instance per import (it holds the meta copies of parameters)."""

    def __init__(self, torch, dtype):
        import torch.nn as nn

        self.torch = torch
        self.dtype = dtype
        self.same = _shape_preserving()
        self.rules = {}  # a module class's forward -> (shape rule, number of spatial axes)
        for nd, c in enumerate((nn.Conv1d, nn.Conv2d, nn.Conv3d), 1):
            self.rules[c.forward] = (self._conv, nd)
        for nd, c in enumerate((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d), 1):
            self.rules[c.forward] = (self._pool, nd)
        for nd, c in enumerate((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), 1):
            self.rules[c.forward] = (self._pool, nd)
        for nd, c in enumerate((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d), 1):
            self.rules[c.forward] = (self._adaptive_module, nd)
        for nd, c in enumerate((nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d), 1):
            self.rules[c.forward] = (self._adaptive_module, nd)
        self.rules[nn.Linear.forward] = (self._linear, 0)
        self.rules[nn.MultiheadAttention.forward] = (self._mha, 0)
        self.meta = {}  # id of a parameter or buffer -> its meta copy
        self.kinds = {}  # module class -> "same", its shape rule or "run"

    def empty(self, shape, dtype=None):
        """A meta tensor of ``shape``."""
        return self.torch.empty(shape, dtype=dtype or self.dtype, device="meta")

    def as_meta(self, t):
        """The meta copy of a tensor (parameters and buffers: once)."""
        if t.is_meta:
            return t
        m = self.meta.get(id(t))
        if m is None:
            m = self.meta[id(t)] = self.torch.empty(tuple(t.shape), dtype=t.dtype, device="meta")
        return m

    # ----------------------------------------------------------------- modules
    def module(self, m, args, kwargs):
        """The output of leaf module ``m`` on meta ``args``."""
        torch = self.torch
        x = args[0] if args else None
        t = type(m)
        kind = self.kinds.get(t)
        if kind is None:  # once per module class: shape-preserving, a shape rule, or neither
            kind = self.kinds[t] = "same" if issubclass(t, self.same) else \
                self.rules.get(getattr(t, "forward", None), "run")
        if kind == "same" and isinstance(x, torch.Tensor):
            return x  # shape-preserving leaves: their meta output is their input
        rule = kind if isinstance(kind, tuple) else None
        if rule is not None:
            out = rule[0](m, args, kwargs, rule[1])
            if out is not None:
                return out
        state = [(k, v) for k, v in m.named_parameters(remove_duplicate=False)]
        state += [(k, v) for k, v in m.named_buffers(remove_duplicate=False) if v is not None]
        if not state:
            return m(*args, **kwargs)
        return torch.func.functional_call(m, {k: self.as_meta(v) for k, v in state}, args, kwargs,
                                          tie_weights=False, strict=False)

    def _one_input(self, args, kwargs, rank):
        x = args[0] if len(args) == 1 and not kwargs else None
        if isinstance(x, self.torch.Tensor) and x.dim() in rank and x.is_meta:
            return x
        return None

    def _conv(self, m, args, kwargs, nd):
        x = self._one_input(args, kwargs, (nd + 1, nd + 2))
        if x is None:
            return None
        shape = tuple(x.shape)
        dtype = x.dtype
        if shape[-nd - 1] != m.in_channels or dtype != m.weight.dtype:
            return None
        sizes = shape[-nd:]
        padding = m.padding
        if padding == "same":
            out = sizes
        else:
            pads = (0,) * nd if padding == "valid" else padding
            out = tuple([(n + 2 * p - d * (k - 1) - 1) // s + 1
                         for n, p, d, k, s in zip(sizes, pads, m.dilation, m.kernel_size, m.stride)])
        if min(out) < 1:
            return None  # too small: let torch say so
        return self.empty(shape[:-nd - 1] + (m.out_channels,) + out, dtype)

    def _pool(self, m, args, kwargs, nd):
        if getattr(m, "return_indices", False):
            return None
        k = m.kernel_size
        x = self._one_input(args, kwargs, (nd + 1, nd + 2))
        if x is None:
            return None

        def axes(v):
            return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd
        ks, ss = axes(k), axes(m.stride if m.stride is not None else k)
        ps, ds = axes(m.padding), axes(getattr(m, "dilation", 1))
        out = []
        for n, kk, st, p, d in zip(x.shape[-nd:], ks, ss, ps, ds):
            if 2 * p > kk or st < 1:
                return None
            o = (n + 2 * p - d * (kk - 1) - 1 + (st - 1 if m.ceil_mode else 0)) // st + 1
            if m.ceil_mode and (o - 1) * st >= n + p:
                o -= 1
            if o < 1:
                return None
            out.append(o)
        return self.empty(tuple(x.shape[:-nd]) + tuple(out), x.dtype)

    def _adaptive_module(self, m, args, kwargs, nd):
        if getattr(m, "return_indices", False):
            return None
        return self._adaptive(self._one_input(args, kwargs, (nd + 1, nd + 2)), m.output_size, nd)

    def _adaptive(self, x, size, nd):
        if x is None or x.dim() not in (nd + 1, nd + 2):
            return None
        size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
        if len(size) != nd or not all(s is None or isinstance(s, int) and s > 0 for s in size):
            return None
        out = tuple(n if s is None else s for n, s in zip(x.shape[-nd:], size))
        return self.empty(tuple(x.shape[:-nd]) + out, x.dtype)

    def _linear(self, m, args, kwargs, nd):
        x = self._one_input(args, kwargs, range(1, 9))
        if x is None or x.shape[-1] != m.in_features or x.dtype != m.weight.dtype:
            return None
        return self.empty(tuple(x.shape[:-1]) + (m.out_features,), x.dtype)

    def _mha(self, m, args, kwargs, nd):
        """``nn.MultiheadAttention`` without attention weights: the query's shape."""
        q = args[0] if args else kwargs.get("query")
        kw = dict(zip(("query", "key", "value", "key_padding_mask", "need_weights"), args))
        kw.update(kwargs)
        if kw.get("need_weights", True) is not False or not isinstance(q, self.torch.Tensor) or \
                q.dim() not in (2, 3) or q.shape[-1] != m.embed_dim:
            return None
        return self.empty(tuple(q.shape), q.dtype), None

    # ----------------------------------------------------------------- functions and methods
    def function(self, name, fn, args, kwargs):
        """The output of a traced function or method (``fn`` called on meta values unless its
        shape follows from the operands'); ``name`` is its canonical name."""
        torch = self.torch
        x = args[0] if args else None
        if isinstance(x, torch.Tensor):
            if name in _SAME_SHAPE and "dtype" not in kwargs and "out" not in kwargs and \
                    not any(isinstance(a, torch.Tensor) and a.dim() > 1 for a in args[1:2]):
                if x.is_floating_point():  # a view's strides are not kept (x.contiguous() after a permute)
                    return x if x.is_contiguous() else self.empty(tuple(x.shape), x.dtype)
            elif name in _BROADCAST and len(args) == 2 and (not kwargs or set(kwargs) <= {"alpha"}):
                out = self._broadcast(x, args[1])
                if out is not None:
                    return out
            elif name == "cat":
                out = self._cat(args, kwargs)
                if out is not None:
                    return out
            elif name in _REDUCE:
                out = self._reduce(args, kwargs)
                if out is not None:
                    return out
            elif name in ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d") and \
                    len(args) == 2 and not kwargs:
                out = self._adaptive(x, args[1], int(name[-2]))
                if out is not None:
                    return out
        elif isinstance(x, (list, tuple)) and name == "cat":
            out = self._cat(args, kwargs)
            if out is not None:
                return out
        elif isinstance(x, (int, float)) and name in _BROADCAST and len(args) == 2 and not kwargs and \
                isinstance(args[1], torch.Tensor):
            out = self._broadcast(args[1], x)
            if out is not None:
                return out
        return fn(*args, **kwargs)

    def _broadcast(self, a, c):
        torch = self.torch
        if isinstance(c, (int, float)) and not isinstance(c, bool):
            if not a.is_floating_point():
                return None
            return a if a.is_contiguous() else self.empty(tuple(a.shape), a.dtype)
        if not isinstance(c, torch.Tensor) or c.dtype != a.dtype or not a.is_floating_point() or \
                not c.is_meta:
            return None
        if a.shape == c.shape:
            return self.empty(tuple(a.shape), a.dtype)
        sa, sc = tuple(a.shape), tuple(c.shape)
        n = max(len(sa), len(sc))
        sa, sc = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sc)) + sc
        out = []
        for i, j in zip(sa, sc):
            if i != j and 1 not in (i, j):
                return None  # let torch report it
            out.append(j if i == 1 else i)
        return self.empty(tuple(out), a.dtype)

    def _cat(self, args, kwargs):
        torch = self.torch
        tensors = args[0] if args else kwargs.get("tensors")
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        if not isinstance(tensors, (list, tuple)) or not tensors or len(args) > 2 or \
                set(kwargs) - {"tensors", "dim"} or not isinstance(dim, int):
            return None
        first = tensors[0]
        if not all(isinstance(t, torch.Tensor) and t.is_meta and t.dtype == first.dtype and
                   t.dim() == first.dim() for t in tensors) or first.dim() == 0:
            return None
        d = dim + first.dim() if dim < 0 else dim
        if not 0 <= d < first.dim():
            return None
        shape = list(first.shape)
        for t in tensors[1:]:
            if any(a != b for i, (a, b) in enumerate(zip(t.shape, shape)) if i != d):
                return None
            shape[d] += t.shape[d]
        return self.empty(tuple(shape), first.dtype)

    def _reduce(self, args, kwargs):
        x = args[0]
        if len(args) > 3 or set(kwargs) - {"dim", "keepdim"} or not x.is_floating_point():
            return None
        dims = args[1] if len(args) > 1 else kwargs.get("dim")
        keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
        if not isinstance(keep, bool) or dims is None:
            return None
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        rank = x.dim()
        if not dims or not all(isinstance(d, int) and -rank <= d < rank for d in dims):
            return None
        dims = {d % rank for d in dims}
        shape = tuple(1 if i in dims else n for i, n in enumerate(x.shape) if keep or i not in dims)
        return self.empty(shape, x.dtype)


_AUGMENTED = {getattr(operator, f"i{n}") for n in "add sub mul truediv floordiv mod pow matmul and or xor".split()}
_SLICE_WRITE = ("from_torch: an in-place write into part of a tensor (x[...] = y) in {scope} is not supported "
                "(write it as torch.cat or torch.where of the parts)")


def _in_place_name(name):
    """Whether a method or function named ``name`` writes its first operand (``add_``, ``relu_``)."""
    return name.endswith("_") and not name.startswith("_")


def _redirect_in_place(graph):
    """torch.fx records an in-place write (``x.add_(y)``, ``x += y``, ``out=x``) as a new node, but
    the forward's later reads of ``x`` (and of its aliases) still name the old one: point them at
    the write. A write into part of a tensor (``x[...] = y``) is refused."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    for node in list(graph.nodes):
        target = node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", "")
        written = None
        if node.op == "call_function" and target is operator.setitem:
            raise _Refused(_SLICE_WRITE.format(scope=node.name))
        if "out" in node.kwargs:
            written = node.kwargs["out"]
        elif node.op in ("call_method", "call_function") and node.args and (
                target in _AUGMENTED or node.kwargs.get("inplace") is True or _in_place_name(name)):
            written = node.args[0]
        if written is None or not hasattr(written, "users"):
            continue
        for user in list(written.users):
            if user is not node and order[user] > order[node]:
                user.replace_input_with(written, node)


def _trace_fx(module, shape, rec):
    """Trace ``module`` with torch.fx and convert its graph node by node; each node's output is
    a meta tensor (or computed from its operands' shapes, see :class:`_Shapes`)."""
    import torch
    import torch.fx as fx

    graph = _tracer(fx)().trace(module)
    _redirect_in_place(graph)
    env = {}  # fx node -> description (Data, Const, ...)
    val = {}  # fx node -> meta value
    shapes = _Shapes(torch, _dtype(module))
    modules = {}
    b = rec.b
    Node = fx.Node

    def desc(a):
        return env[a] if isinstance(a, Node) else a

    def aggregate(a, fn):
        if isinstance(a, Node):
            return fn(a)
        if isinstance(a, (tuple, list, dict, slice)):
            return fx.node.map_aggregate(a, fn)
        return a

    def both(a):
        """(meta value, description) of an argument (nodes replaced inside containers)."""
        if isinstance(a, Node):
            return val[a], env[a]
        if isinstance(a, (tuple, list)):
            if not a:
                return a, a
            ms, ds = zip(*[both(x) for x in a])
            if type(a) is tuple:
                return ms, ds
            if isinstance(a, tuple):  # a named tuple
                return type(a)(*ms), type(a)(*ds)
            return list(ms), list(ds)
        if isinstance(a, dict):
            pairs = {k: both(v) for k, v in a.items()}
            return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}
        if isinstance(a, slice):
            (m0, d0), (m1, d1), (m2, d2) = both(a.start), both(a.stop), both(a.step)
            return slice(m0, m1, m2), slice(d0, d1, d2)
        return a, a

    first = True
    with torch.no_grad():
        for n in graph.nodes:
            op = n.op
            if op == "placeholder":
                if first:
                    out = torch.empty(shape, device="meta", dtype=shapes.dtype)
                    env[n] = b.input(tuple(shape))
                    first = False
                else:  # further arguments of forward take their defaults
                    if not n.args:
                        raise RfsymError(f"forward of {type(module).__name__} takes more than one input")
                    out = n.args[0]
                    env[n] = T.Const()
                val[n] = out
                continue
            if op == "get_attr":
                owner, _, attr = n.target.rpartition(".")
                owner = module.get_submodule(owner) if owner else module
                out = getattr(owner, attr)
                if isinstance(out, torch.Tensor):  # parameters, buffers, fx's tensor constants
                    pid = rec.param_ids.get(n.target)
                    out = shapes.as_meta(out)
                    env[n] = T.Const(frozenset([pid]) if pid is not None else frozenset(), tuple(out.shape))
                else:
                    env[n] = out
                val[n] = out
                continue
            if op == "output":
                env[n] = aggregate(n.args[0], desc)
                val[n] = None
                continue
            args, dargs = both(n.args)
            kwargs, dkwargs = both(n.kwargs) if n.kwargs else ({}, {})
            if op == "call_module":
                sub = modules.get(n.target)
                if sub is None:
                    sub = modules[n.target] = module.get_submodule(n.target)
                out = shapes.module(sub, args, kwargs)
                env[n] = rec.op("module", sub, n.target, _scope_of(n), dargs, dkwargs, out)
            elif op == "call_function":
                target = n.target
                out = shapes.function(T.canonical(target), target, args, kwargs)
                env[n] = rec.op("function", target, "", _scope_of(n), dargs, dkwargs, out)
            else:  # call_method
                self_obj, *rest = args
                fn = getattr(self_obj, n.target)
                out = shapes.function(T.canonical(n.target), lambda *a, fn=fn, **k: fn(*a[1:], **k),
                                      args, kwargs) if isinstance(self_obj, torch.Tensor) else fn(*rest, **kwargs)
                env[n] = rec.op("method", n.target, "", _scope_of(n), dargs, dkwargs, out)
            val[n] = out
    out_node = next(n for n in reversed(graph.nodes) if n.op == "output")
    return env[out_node]


# --------------------------------------------------------------------------- the direct tracer
_MISSING = object()
#: the attributes torch.nn.Module keeps its own state in (no stand-in is ever stored there)
_MODULE_STATE = frozenset("""training _parameters _buffers _non_persistent_buffers_set _backward_pre_hooks
_backward_hooks _is_full_backward_hook _forward_hooks _forward_hooks_with_kwargs _forward_hooks_always_called
_forward_pre_hooks _forward_pre_hooks_with_kwargs _state_dict_hooks _state_dict_pre_hooks
_load_state_dict_pre_hooks _load_state_dict_post_hooks _modules""".split())


def _torch_own(m):
    """Whether module ``m`` is of one of torch's own classes (``torch.nn``, ``torch.ao.nn``) and
    runs no hook of its own: its forward writes none of its attributes (torch's code does not),
    so only code outside it can, which :class:`_Direct` records as it runs."""
    t = type(m)
    own = _TORCH_CLASSES.get(t)
    if own is None:
        own = _TORCH_CLASSES[t] = t.__module__.startswith(("torch.nn.", "torch.ao.nn."))
    return own and not (m._forward_pre_hooks or m._forward_hooks)


_TORCH_CLASSES: dict = {}  # module class -> whether it is one of torch's own (for _torch_own)


def _global_hooks():
    """Whether hooks registered for every module are installed (forward hooks run any code)."""
    from torch.nn.modules import module as mm

    return any(getattr(mm, name, True) for name in ("_global_forward_pre_hooks", "_global_forward_hooks",
                                                     "_global_backward_pre_hooks", "_global_backward_hooks"))


def _snapshot(modules, saved=None, everything=True):
    """The state a forward may write into its modules: per module, its own attributes (not
    torch's bookkeeping in :data:`_MODULE_STATE`) with a shallow copy of each dict, list and set
    value (timm's LeViT and EfficientFormer cache attention biases per device in a dict).

    Args:
        modules: ``(path, module)`` pairs.
        saved: an earlier snapshot to add the modules it lacks to (changed in place), or None.
        everything: False to leave out the modules of torch's own classes without hooks
            (:func:`_torch_own`; for the direct tracer, which records writes into them), unless
            global forward hooks are installed.

    Returns:
        ``{id(module): (module, attributes, contents)}`` for :func:`_restore`.
    """
    saved = {} if saved is None else saved
    skip = not everything and not _global_hooks()
    for _, m in modules:
        if id(m) in saved or skip and _torch_own(m):
            continue
        state = m.__dict__
        attrs = {k: state[k] for k in state.keys() - _MODULE_STATE}  # the set difference in C
        contents = {k: type(v)(v) for k, v in attrs.items() if type(v) in (dict, list, set)}
        saved[id(m)] = (m, attrs, contents)
    return saved


def _restore(saved):
    """Put back what :func:`_snapshot` saw: attributes a trace added are removed, overwritten ones
    restored, and dicts, lists and sets refilled with their old items (the module is not modified)."""
    for m, attrs, contents in saved.values():
        state = m.__dict__
        for k in state.keys() - attrs.keys() - _MODULE_STATE:  # set operations in C: usually empty
            del state[k]
        for k, v in attrs.items():
            if state.get(k, _MISSING) is not v:
                state[k] = v
        for k, items in contents.items():  # refilled whatever happened (== could compare tensors)
            v = attrs[k]
            v.clear()
            if isinstance(v, list):
                v.extend(items)
            else:
                v.update(items)


class _Refused(RfsymError):
    """What no tracer imports correctly (torch.fx would silently get it wrong): no fallback."""


class _DataDependent(Exception):
    """The forward reads a value computed from the input (no trace without real data)."""


#: binary operators of stand-ins (reflected: the operands swapped), as torch.fx's Proxy records them
_BINARY = ("add sub mul truediv floordiv mod pow matmul lshift rshift and_ or_ xor eq ne lt le gt ge")


class _Var:
    """A stand-in for a tensor during :func:`_trace_direct`: its meta value (shape and dtype) and
    its description (Data, Const, ...). Torch functions reach the tracer through
    ``__torch_function__``, tensor methods through ``__getattr__``, operators through the dunder
    methods below; a read of its value (``bool``, ``int``, ``item``) raises :class:`_DataDependent`."""

    __slots__ = ("meta", "desc")
    tracer = None  # the running _Direct

    def __init__(self, meta, desc):
        self.meta = meta
        self.desc = desc

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return cls.tracer.torch_function(func, args, kwargs or {})

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.tracer.attribute(self, name)

    @property
    def shape(self):
        return self.meta.shape

    @property
    def dtype(self):
        return self.meta.dtype

    @property
    def device(self):
        return self.meta.device

    @property
    def ndim(self):
        return self.meta.dim()

    def size(self, dim=None):
        return self.meta.size() if dim is None else self.meta.size(dim)

    def dim(self):
        return self.meta.dim()

    def numel(self):
        return self.meta.numel()

    def __len__(self):
        return self.meta.shape[0]

    def __iter__(self):
        return iter(self.tracer.method("unbind", (self,), {}))

    def __bool__(self):
        raise _DataDependent("bool() of a tensor computed from the input")

    def __int__(self):
        raise _DataDependent("int() of a tensor computed from the input")

    __float__ = __index__ = __int__

    def __hash__(self):
        return id(self)

    def __getitem__(self, idx):
        return self.tracer.function(operator.getitem, (self, idx), {})

    def __setitem__(self, idx, value):
        self.tracer.function(operator.setitem, (self, idx, value), {})

    def __neg__(self):
        return self.tracer.function(operator.neg, (self,), {})

    def __pos__(self):
        return self.tracer.function(operator.pos, (self,), {})

    def __invert__(self):
        return self.tracer.function(operator.invert, (self,), {})


def _operator(fn, reflected):
    if reflected:
        def method(self, other):
            return self.tracer.function(fn, (other, self), {})
    else:
        def method(self, other):
            return self.tracer.function(fn, (self, other), {})
    return method


def _in_place(target, result):
    """An in-place write (``x.add_(y)``, ``x += y``, ``out=x``, ``inplace=True``): the written
    stand-in takes the result's value and description, so every alias of it sees the write."""
    if type(target) is _Var and type(result) is _Var and target is not result:
        target.meta, target.desc = result.meta, result.desc
        return target
    return result


def _augmented(fn):
    def method(self, other):
        return _in_place(self, self.tracer.function(fn, (self, other), {}))
    return method


for _name in _BINARY.split():
    _fn = getattr(operator, _name)
    _dunder = _name.rstrip("_")
    setattr(_Var, f"__{_dunder}__", _operator(_fn, False))
    if _dunder not in ("eq", "ne", "lt", "le", "gt", "ge"):
        setattr(_Var, f"__r{_dunder}__", _operator(_fn, True))
        setattr(_Var, f"__i{_dunder}__", _augmented(_fn))  # x += y writes x (its aliases see it)
_Var.__div__ = _Var.__truediv__
_Var.__abs__ = lambda self: self.tracer.function(operator.abs, (self,), {})


class _Direct:
    """Runs ``module.forward`` on a :class:`_Var` input: the operations are converted as they
    run (the fx tracer's semantics: torch.nn modules are leaves, parameters read in a forward are
    constants holding them, ``torch.fx.wrap``-ed functions are not traced into), without building
    an fx graph. Shapes are concrete, so Python code on sizes (``if x.shape[-1] % 2``) runs."""

    def __init__(self, module, shape, rec, torch):
        self.torch = torch
        self.rec = rec
        self.shapes = _Shapes(torch, _dtype(module))
        self.paths = {id(m): path for path, m in reversed(rec.modules)}  # a shared module: its first path
        self.scope = [""]
        self.user = False  # inside the module's own code (not rfsym's)
        self.leaf = {}
        self.extra = _leaf_classes()
        self.module = module
        self.shape = shape
        self.params = rec.b.numel  # id of a parameter -> numel
        self.tensor = torch.Tensor
        # torch.nn.Module.__call__ (when no global hooks are installed: it then only calls forward
        # for a module without hooks of its own, outside torch.jit tracing), else None
        jit = torch._C._get_tracing_state()
        self.plain_call = None if _global_hooks() or jit else torch.nn.Module.__call__

    # ----------------------------------------------------------------- arguments
    def arguments(self, args, kwargs):
        """(meta args, meta kwargs, described args, described kwargs) of a call."""
        if not kwargs and len(args) == 1 and type(args[0]) is _Var:  # most calls: one stand-in
            return (args[0].meta,), {}, (args[0].desc,), {}
        if not kwargs and len(args) == 2 and type(args[0]) is _Var and type(args[1]) is _Var:  # x * gate
            a, c = args
            return (a.meta, c.meta), {}, (a.desc, c.desc), {}
        margs, dargs = self.both(args)
        mkw, dkw = self.both(kwargs) if kwargs else ({}, {})
        return margs, mkw, dargs, dkw

    def both(self, a):
        """(meta value, description) of an argument (stand-ins replaced inside containers)."""
        if type(a) is _Var:
            return a.meta, a.desc
        if isinstance(a, self.torch.Tensor):
            pid = id(a)
            return self.shapes.as_meta(a), T.Const(frozenset([pid]) if pid in self.params else frozenset(),
                                                   tuple(a.shape))
        if isinstance(a, (tuple, list)):
            if not a:
                return a, a
            ms, ds = zip(*[self.both(x) for x in a])
            if type(a) is tuple:
                return ms, ds
            if isinstance(a, list):
                return list(ms), list(ds)
            if hasattr(a, "_fields"):  # a named tuple
                return type(a)(*ms), type(a)(*ds)
            return type(a)(ms), type(a)(ds)  # torch.Size
        if isinstance(a, dict):
            pairs = {k: self.both(v) for k, v in a.items()}
            return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}
        if isinstance(a, slice):
            (m0, d0), (m1, d1), (m2, d2) = self.both(a.start), self.both(a.stop), self.both(a.step)
            return slice(m0, m1, m2), slice(d0, d1, d2)
        return a, a

    def wrap(self, out, d):
        """The stand-in(s) of an operation's output ``out`` described by ``d``."""
        torch = self.torch
        if isinstance(out, torch.Tensor):
            return _Var(out, d)
        if isinstance(out, (tuple, list)) and isinstance(d, T.Many):
            items = [self.wrap(o, dd) for o, dd in zip(out, d.items)]
            return type(out)(*items) if hasattr(out, "_fields") else type(out)(items)
        return out

    # ----------------------------------------------------------------- operations
    def function(self, target, args, kwargs):
        if target is operator.setitem and args and type(args[0]) is _Var:
            raise _Refused(_SLICE_WRITE.format(scope=self.scope[-1] or "<top>"))
        self.user = False
        try:
            margs, mkw, dargs, dkw = self.arguments(args, kwargs)
            out = self.shapes.function(T.canonical(target), target, margs, mkw)
            result = self.wrap(out, self.rec.op("function", target, "", self.scope[-1], dargs, dkw, out))
        finally:
            self.user = True
        if type(kwargs.get("out")) is _Var:
            return _in_place(kwargs["out"], result)
        if args and type(args[0]) is _Var and (kwargs.get("inplace") is True
                                               or _in_place_name(getattr(target, "__name__", ""))):
            return _in_place(args[0], result)
        return result

    def method(self, name, args, kwargs):
        self.user = False
        try:
            margs, mkw, dargs, dkw = self.arguments(args, kwargs)
            self_obj = margs[0]
            fn = getattr(self_obj, name)
            out = self.shapes.function(T.canonical(name), lambda *a, **k: fn(*a[1:], **k), margs, mkw)
            result = self.wrap(out, self.rec.op("method", name, "", self.scope[-1], dargs, dkw, out))
        finally:
            self.user = True
        if _in_place_name(name):  # x.add_(y), x.relu_()
            return _in_place(args[0], result)
        return result

    def torch_function(self, func, args, kwargs):
        if isinstance(func, self.torch._C.ScriptMethod):
            raise _DataDependent("a TorchScript method")
        if self.torch.overrides.is_tensor_method_or_property(func):
            return self.method(func.__name__, args, kwargs)
        return self.function(func, args, kwargs)

    def attribute(self, v, name):
        if name in ("item", "tolist", "numpy", "__array__"):
            raise _DataDependent(f"Tensor.{name}() of a tensor computed from the input")
        kind = getattr(self.torch.Tensor, name, None)
        if kind is None:
            raise AttributeError(f"'Tensor' object has no attribute {name!r}")
        if callable(kind):
            return lambda *args, **kwargs: self.method(name, (v,) + args, kwargs)
        value = getattr(v.meta, name)  # a property (x.T, x.mT, x.is_meta)
        if isinstance(value, self.torch.Tensor):
            return self.function(getattr, (v, name), {})
        return value

    def module_call(self, call, m, args, kwargs):
        """``m(*args, **kwargs)`` while tracing: a leaf is converted, other modules run."""
        if not self.user:
            return call(m, *args, **kwargs)
        t = type(m)
        leaf = self.leaf.get(t)
        if leaf is None:
            leaf = self.leaf[t] = _is_leaf(m, self.extra)
        path = self.paths.get(id(m), "")
        if not leaf:
            self.scope.append(path)
            try:
                if call is self.plain_call and not (m._forward_pre_hooks or m._forward_hooks or m._backward_hooks
                                                    or m._backward_pre_hooks or m._compiled_call_impl):
                    return m.forward(*args, **kwargs)  # what torch's __call__ does without hooks
                return call(m, *args, **kwargs)
            finally:
                self.scope.pop()
        self.user = False
        try:
            if not kwargs and len(args) == 1 and type(args[0]) is _Var:  # most calls: one stand-in
                x = args[0]
                out = self.shapes.module(m, (x.meta,), {})
                d = self.rec.op("module", m, path, path, (x.desc,), {}, out)
            else:
                margs, mkw, dargs, dkw = self.arguments(args, kwargs)
                out = self.shapes.module(m, margs, mkw)
                d = self.rec.op("module", m, path, path, dargs, dkw, out)
            return _Var(out, d) if type(out) is self.tensor else self.wrap(out, d)
        finally:
            self.user = True

    def getattr(self, get, m, name):
        """A module attribute read by the module's code: parameters are constants holding them."""
        value = get(m, name)
        if self.user and isinstance(value, self.torch.Tensor) and isinstance(value, self.torch.nn.Parameter):
            return _Var(self.shapes.as_meta(value), T.Const(frozenset([id(value)]), tuple(value.shape)))
        return value

    # ----------------------------------------------------------------- the run
    def run(self):
        import torch.fx._symbolic_trace as st

        torch = self.torch
        x = _Var(torch.empty(self.shape, device="meta", dtype=self.shapes.dtype), self.rec.b.input(self.shape))

        def wrapped(orig):
            def fn(*args, **kwargs):
                if self.user and any(type(a) is _Var for a in _flat((args, kwargs))):
                    return self.function(orig, args, kwargs)
                return orig(*args, **kwargs)
            return fn

        def calls(call):
            return lambda m, *a, **k: self.module_call(call, m, a, k)

        def reads(get):
            if get is not torch.nn.Module.__getattr__:  # a class's own __getattr__: its rules
                return lambda m, name: self.getattr(get, m, name)

            parameter = torch.nn.Parameter

            def read(m, name):  # torch's lookup, inlined (a name is in one of these dicts only)
                state = m.__dict__
                kids = state.get("_modules")
                if kids is not None and name in kids:
                    return kids[name]
                params = state.get("_parameters")
                if params is not None and name in params:
                    value = params[name]
                    if self.user and isinstance(value, parameter):
                        return _Var(self.shapes.as_meta(value), T.Const(frozenset([id(value)]), tuple(value.shape)))
                    return value
                return self.getattr(get, m, name)  # buffers, and the error for a missing name
            return read

        # Module calls and parameter reads are intercepted on the classes of the module's own
        # submodules (torch.fx patches nn.Module itself: assigning to it invalidates the method
        # caches of every nn.Module subclass loaded, about 0.2 ms each with timm imported).
        classes = list(dict.fromkeys(type(m) for _, m in self.rec.modules))
        patches = [(cls, "__call__", calls(cls.__call__)) for cls in classes]
        patches += [(cls, "__getattr__", reads(cls.__getattr__)) for cls in classes]
        # from_torch snapshots no module of torch's own classes (their code writes none of their
        # attributes): the writes of other code into them are recorded here, and undone
        written = {}  # id(module) -> (module, {attribute: previous value or _MISSING})

        def recorded(change):
            def fn(m, name, *value):
                if name not in _MODULE_STATE:
                    old = written.get(id(m))
                    if old is None:
                        old = written[id(m)] = (m, {})
                    if name not in old[1]:
                        old[1][name] = m.__dict__.get(name, _MISSING)
                change(m, name, *value)
            return fn

        own = [cls for cls in classes if cls.__module__.startswith(("torch.nn.", "torch.ao.nn."))]
        patches += [(cls, "__setattr__", recorded(cls.__setattr__)) for cls in own]
        patches += [(cls, "__delattr__", recorded(cls.__delattr__)) for cls in own]
        saved = []  # (owner, name, previous value or _MISSING)
        previous = _Var.tracer
        _Var.tracer = self
        try:
            for owner, name, value in patches:
                saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
                setattr(owner, name, value)
            for (_, name), frame in list(st._wrapped_fns_to_patch.items()):
                if name in frame:
                    saved.append((frame, name, frame[name]))
                    frame[name] = wrapped(frame[name])
            self.user = True
            with torch.no_grad():
                out = self.module.forward(x)
        finally:
            self.user = False
            _Var.tracer = previous
            for owner, name, value in reversed(saved):
                if isinstance(owner, dict):
                    owner[name] = value
                elif value is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, value)
            for m, attrs in written.values():
                state = m.__dict__
                for name, value in attrs.items():
                    if value is _MISSING:
                        state.pop(name, None)
                    else:
                        state[name] = value
        return _walk(out, lambda v: v.desc if type(v) is _Var else v)


def _trace_direct(module, shape, rec):
    """Convert ``module`` by running its forward on a stand-in input (see :class:`_Direct`)."""
    import torch

    return _Direct(module, shape, rec, torch).run()


def _trace_hooks(module, shape, rec, meta=True):
    """Run the module on a meta input (``meta=False``: zeros, for forwards that read tensor values);
    leaf modules via hooks, functions via a TorchFunctionMode."""
    import torch
    from torch.overrides import TorchFunctionMode

    extra = _leaf_classes()
    b = rec.b
    ids = {}
    keep = []
    paths = {}
    for path, m in module.named_modules(remove_duplicate=False):
        paths.setdefault(id(m), path)
    scope = [""]
    inside = [None]
    state = _meta_state(module) if meta else {}
    param_by_meta = {}

    def desc(a):
        if isinstance(a, torch.Tensor):
            if id(a) in ids:
                return ids[id(a)]
            return T.Const(param_by_meta.get(id(a), frozenset()), tuple(a.shape))
        return a

    def store(out, d):
        if isinstance(out, torch.Tensor):
            ids[id(out)] = d
            keep.append(out)
        elif isinstance(out, (tuple, list)) and isinstance(d, T.Many):
            for o, dd in zip(out, d.items):
                store(o, dd)

    def pre(mod, args, kwargs):
        if inside[0] is not None:
            return
        if _is_leaf(mod, extra):
            inside[0] = mod
        else:
            scope.append(paths.get(id(mod), ""))

    def post(mod, args, kwargs, out):
        if inside[0] is not None:
            if inside[0] is mod:
                inside[0] = None
                out = _fresh(out, args, kwargs)
                d = rec.op("module", mod, paths.get(id(mod), ""), scope[-1], _walk(args, desc), _walk(kwargs, desc),
                           out)
                store(out, d)
                return out
            return None
        if not _is_leaf(mod, extra):
            scope.pop()
        return None

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if inside[0] is None:
                name = getattr(func, "__name__", repr(func))
                if name in ("__get__", "__set__"):
                    name = "getattr"
                if not any(isinstance(a, torch.Tensor) and id(a) in ids for a in _flat((args, kwargs))):
                    return out
                out = _fresh(out, args, kwargs)
                d = rec.op("function", name, "", scope[-1], _walk(args, desc), _walk(kwargs, desc), out)
                store(out, d)
            return out

    def _fresh(out, args, kwargs):
        ins = [a for a in _flat((args, kwargs)) if isinstance(a, torch.Tensor)]
        if isinstance(out, torch.Tensor) and any(out is a for a in ins):
            return out.view_as(out)
        return out

    x = torch.empty(shape, device="meta", dtype=_dtype(module)) if meta else torch.zeros(shape, dtype=_dtype(module))
    ids[id(x)] = b.input(shape)
    handles = []
    try:
        for m in module.modules():
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post, with_kwargs=True))

        class Runner(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = module

            def forward(self, x):
                for name, p in self.m.named_parameters(remove_duplicate=False):
                    param_by_meta[id(p)] = frozenset([rec.param_ids.get(name)])
                with Mode():
                    return self.m(x)

        with torch.no_grad():
            out = torch.func.functional_call(Runner(), {f"m.{k}": v for k, v in state.items()}, (x,),
                                             tie_weights=False, strict=False)
    finally:
        for h in handles:
            h.remove()
    return _walk(out, desc)


# --------------------------------------------------------------------------- entry point
def from_torch(module: Any, input_shape: Sequence[int], *, trace: str = "auto") -> Graph:
    """Import a ``torch.nn.Module`` as an rfsym :class:`~rfsym.Graph` (see the module docstring).

    Args:
        module: the ``torch.nn.Module`` (real or ``meta`` weights; it is traced in eval mode, its
            training flags are restored, nothing else changes).
        input_shape: the shape ``forward`` takes without or with the batch axis: ``(C, H, W)`` or
            ``(N, C, H, W)`` (``(C, L)`` / ``(C, D, H, W)`` for 1-d / 3-d networks with a batch axis).
        trace: ``"auto"`` (the forward run on a stand-in input, falling back to torch.fx, then
            to hooks), ``"direct"``, ``"fx"`` or ``"hooks"``.

    Returns:
        The network as a :class:`~rfsym.Graph` (node names are module paths), with ``outputs=``
        for dict/tuple outputs and ``features=`` set to the last feature map before the head.

    Raises:
        RfsymError: torch missing, not a module, bad ``input_shape``, or the chosen tracer could
            not trace (``trace="direct"`` or ``"fx"``).
        LayerError: the module uses operations rfsym cannot express (all listed, with paths).
        GraphError: the output is not computed from the input.

    >>> import pytest; torch = pytest.importorskip("torch")
    >>> g = from_torch(torch.nn.Conv2d(3, 4, 3, stride=2), (3, 9, 9))
    >>> g.nodes[0][0], g.nodes[0][1]
    ('conv2d', Conv(kernel_size=3, stride=2, in_channels=3, out_channels=4))
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised where torch is absent
        raise RfsymError("from_torch needs PyTorch: pip install 'rfsym[torch]'") from None
    if not isinstance(module, torch.nn.Module):
        raise RfsymError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise RfsymError(f"input_shape must be a tuple such as (3, 224, 224), got {input_shape!r}") from None
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape) or len(shape) < 2:
        raise RfsymError(f"input_shape must be (channels, *spatial) or (batch, channels, *spatial) with "
                         f"positive integers, got {input_shape!r}")
    modules = _named_modules(module)
    if len(shape) == 3 and _first_conv_dims(modules) != 1:
        shape = (1,) + shape
    elif len(shape) == 2:
        shape = (1,) + shape
    elif len(shape) == 4 and _first_conv_dims(modules) == 3:
        shape = (1,) + shape
    if trace not in ("auto", "direct", "fx", "hooks"):
        raise RfsymError(f"trace must be 'auto', 'direct', 'fx' or 'hooks', got {trace!r}")
    modes = {m: m.training for _, m in modules}
    if any(modes.values()):
        module.eval()
    collect = gc.isenabled()
    gc.disable()  # the trace allocates many small objects and frees few: collections only cost time
    saved = _snapshot(modules, everything=trace not in ("auto", "direct"))
    try:
        out = rec = None
        if trace in ("auto", "direct"):
            rec = _Recorder(module, shape, modules)
            try:
                out = _trace_direct(module, shape, rec)
            except _Refused:
                raise
            except Exception as err:  # noqa: BLE001 - the module's own code raises anything
                if trace == "direct":
                    raise RfsymError(f"from_torch could not run {type(module).__name__} on a stand-in input: "
                                     f"{type(err).__name__}: {err}") from err
                out = None
        if out is None:
            _snapshot(modules, saved)  # the other tracers run torch's modules too: every module
        if out is None and trace in ("auto", "fx"):
            rec = _Recorder(module, shape, modules)
            try:
                out = _trace_fx(module, shape, rec)
            except _Refused:
                raise
            except Exception as err:  # noqa: BLE001 - fx raises anything; fall back or report
                if trace == "fx":
                    raise RfsymError(f"torch.fx could not trace {type(module).__name__}: "
                                     f"{type(err).__name__}: {err}") from err
                out = None
        if out is None:
            rec = _Recorder(module, shape)
            try:
                try:
                    out = _trace_hooks(module, shape, rec)
                except (RuntimeError, NotImplementedError) as err:
                    if "meta" not in str(err) or _on_meta(module):
                        raise
                    rec = _Recorder(module, shape)  # the forward reads values: run it on zeros
                    out = _trace_hooks(module, shape, rec, meta=False)
            except RfsymError:
                raise
            except Exception as err:  # noqa: BLE001
                raise RfsymError(f"from_torch could not run {type(module).__name__} on a meta input of "
                                 f"shape {shape}: {type(err).__name__}: {err}") from err
    finally:
        _restore(saved)  # a forward that caches what it computed (in any tracer) leaves no stand-in
        if collect:
            gc.enable()
        for m, mode in modes.items():  # the flags as they were (train() would recurse per module)
            if m.training != mode:
                m.training = mode
    return _finish(module, rec, out)


def _named_modules(module):
    """``list(module.named_modules(remove_duplicate=False))``, walked with an explicit stack
    (torch's nested generators cost about 2 us per module); torch's own walk where a module
    class overrides ``named_modules``.

    Args:
        module: a ``torch.nn.Module``.

    Returns:
        ``[(path, submodule)]`` in torch's order (pre-order, shared modules at each path).

    >>> import pytest; torch = pytest.importorskip("torch")
    >>> [p for p, _ in _named_modules(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Sequential(torch.nn.ReLU())))]
    ['', '0', '1', '1.0']
    """
    import torch.nn as nn

    base = nn.Module.named_modules
    out = []
    stack = [("", module)]
    while stack:
        prefix, m = stack.pop()
        if type(m).named_modules is not base:
            return list(module.named_modules(remove_duplicate=False))
        out.append((prefix, m))
        kids = m._modules
        if kids:
            dot = prefix + "." if prefix else ""
            stack.extend(reversed([(dot + name, c) for name, c in kids.items() if c is not None]))
    return out


def _dtype(module):
    import torch

    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.get_default_dtype())


def _on_meta(module):
    return any(p.is_meta for p in module.parameters())


def _first_conv_dims(modules):
    """Spatial axes of the first convolution among ``(path, module)`` pairs (2 without one)."""
    import torch.nn as nn

    for _, m in modules:
        if isinstance(m, nn.modules.conv._ConvNd):
            return len(m.kernel_size)
    return 2


def _outputs(out, prefix=None):
    """(key, Data) pairs of the module's output: a tensor (key None), or the tensors anywhere in
    nested dicts, tuples and lists, keyed by their path (``"0"``, ``"aux"``, ``"1.0"``)."""
    if isinstance(out, T.Data):
        return [(prefix, out)]
    if isinstance(out, dict):
        items = [(str(k), v) for k, v in out.items()]
    elif isinstance(out, T.Many):
        items = [(str(i), v) for i, v in enumerate(out.items)]
    elif isinstance(out, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(out)]
    else:
        return []
    pairs = []
    for k, v in items:
        pairs += _outputs(v, k if prefix is None else f"{prefix}.{k}")
    return pairs


def _finish(module, rec, out):
    b = rec.b
    name = type(module).__name__
    if rec.unsupported:
        msgs = list(dict.fromkeys(rec.unsupported))
        err = LayerError(f"{len(msgs)} unsupported operation(s) in {name}: " + "; ".join(msgs), where="from_torch")
        err.unsupported = msgs
        raise err
    outs = _outputs(out)
    if not outs:
        raise GraphError(f"from_torch: {name} returns nothing computed from its input")
    heads = [(k, b.node(v)) for k, v in outs]
    nodes = list(b.nodes)
    if not nodes:
        nodes.append(("identity", L.Identity(), "input"))
        heads = [(k, "identity") for k, _ in heads]
        b.scopes["identity"] = ""
    nodes, heads = _aliases(nodes, b.scopes, heads)
    names = [n for _, n in heads]
    nodes = _live(nodes, names, module)
    if len(heads) > 1 or heads[0][0] is not None:
        taken = {n[0] for n in nodes}
        final = []
        for k, n in heads:
            label = k if k not in taken else f"output.{k}"
            taken.add(label)
            nodes.append((label, L.Identity(), n))
            final.append(label)
        outputs = tuple(final)
    else:
        outputs = None
    globals_ = set(b.globals_)
    features = feature_node(nodes, names, lambda label, _: label in globals_) if globals_ else None
    kw = {"name": None}  # node names are module paths, not prefixed by the class name
    shared = rec.calls.pairs(n[0] for n in nodes)
    if shared:
        kw["shared"] = shared
    if outputs is not None and len(outputs) > 1:
        kw["outputs"] = outputs
    elif outputs is not None:
        kw["output"] = outputs[0]
    elif nodes[-1][0] != names[0]:
        kw["output"] = names[0]
    if features is not None:
        kw["features"] = features
    try:
        return Graph(*nodes, **kw)
    except TypeError:  # an rfsym whose Graph has no outputs=/features= yet
        kw.pop("features", None)
        kw.pop("shared", None)
        if "outputs" in kw:
            raise RfsymError(f"{name} has several outputs; this rfsym's Graph takes one") from None
        return Graph(*nodes, **kw)


def _aliases(nodes, scopes, heads):
    """An ``Identity`` node named after every non-leaf module with one output tensor.

    The aliases of one tensor nest (``layer4.2`` inside ``layer4``) and follow it directly; a
    reader outside a module reads the outermost alias of a module that does not contain it.
    """
    taken = {n[0] for n in nodes}
    none = ((), frozenset())
    # scope -> the paths of its enclosing modules that can be aliases (not node names), outermost
    # first, and the same as a set
    known = {"": none}

    def prefixes(scope):
        out = known.get(scope)
        if out is None:
            out = prefixes(scope.rpartition(".")[0])
            if scope not in taken:  # (a node's name: its parent's object, so most readers are `is` theirs)
                paths = out[0] + (scope,)
                out = (paths, frozenset(paths))
            known[scope] = out
        return out

    pre = {}
    many = object()
    exits = {}  # module path -> the one node read from outside it (or an output), or `many`

    def crossed(paths, mine, u):
        """Note ``u`` as read from outside each of its enclosing modules ``paths`` (outermost
        first) that is not in ``mine``, the reader's: the innermost ones (the enclosing modules
        of a tree's nodes, filtered alike, so the reader's are a prefix of u's)."""
        for i in range(len(paths) - 1, -1, -1):
            p = paths[i]
            if p in mine:
                return
            seen = exits.get(p)
            if seen is None:
                exits[p] = u
            elif seen is not many and seen != u:
                exits[p] = many

    get_scope = scopes.get
    for label, _, inputs in nodes:  # in order: a node's inputs have their prefixes
        scope = get_scope(label, "")
        own = known.get(scope)
        if own is None:
            own = known[scope] = prefixes(scope.rpartition(".")[0]) if scope in taken else prefixes(scope)
        pre[label] = own
        if isinstance(inputs, str):
            theirs = pre.get(inputs, none)
            if theirs is not own:  # (a reader in the same scope, most, is inside every one of them)
                crossed(theirs[0], own[1], inputs)
        else:
            for u in inputs:
                theirs = pre.get(u, none)
                if theirs is not own:
                    crossed(theirs[0], own[1], u)
    for _, h in heads:
        crossed(pre.get(h, none)[0], (), h)
    chains = {}  # node -> its aliases, innermost first
    for p, src in exits.items():
        if src is not many:
            chains.setdefault(src, []).append(p)
    if not chains:
        return nodes, heads
    for own_aliases in chains.values():
        if len(own_aliases) > 1:  # (paths enclosing one node: their depths differ)
            own_aliases.sort(key=lambda s: -s.count("."))

    def seen_from(u, mine):
        best = u
        for alias in chains.get(u, ()):
            if alias in mine:
                break
            best = alias
        return best

    out = []
    identity = L.Identity()  # layers are immutable: one object serves every alias
    for node in nodes:
        label, op, inputs = node
        if isinstance(inputs, str):
            if inputs in chains:
                node = (label, op, seen_from(inputs, pre[label][1]))
        elif any(u in chains for u in inputs):
            mine = pre[label][1]
            ins = tuple(seen_from(u, mine) if u in chains else u for u in inputs)
            node = (label, op, ins if len(ins) > 1 else ins[0])
        out.append(node)
        own_aliases = chains.get(label)
        if own_aliases:
            prev = label
            for alias in own_aliases:
                out.append((alias, identity, prev))
                prev = alias
    return out, [(k, seen_from(h, set())) for k, h in heads]


def _live(nodes, outputs, module):
    need = set(outputs)
    keep = []
    for node in reversed(nodes):
        if node[0] in need:
            keep.append(node)
            inputs = node[2]
            if isinstance(inputs, str):
                need.add(inputs)
            else:
                need.update(inputs)
    keep.reverse()
    if len(keep) == len(nodes):  # (labels are distinct: every node kept)
        return keep
    kept = {k[0] for k in keep}
    dead = [n for n in nodes if n[0] not in kept]
    lost = [n[0] for n in dead if getattr(n[1], "params", 0) not in (0, None) and not isinstance(n[1], str)
            and not isinstance(n[1], L.Elementwise)]
    if lost:
        warnings.warn(f"from_torch: these operations do not reach the output of {type(module).__name__}: "
                      + ", ".join(lost), stacklevel=4)
    return keep
