"""Import a ``torch.nn.Module`` into an rfsym network (extra ``torch``).

:func:`from_torch` runs the module once on a zero input of ``input_shape`` (batch, channels,
*spatial*), records its data flow, and rebuilds it from rfsym layers: a chain becomes a
:class:`~rfsym.layers.Sequential`, an addition of two tensors computed from a common tensor a
``Residual``, a ``torch.cat`` along channels a ``Concat`` (nested as the data flow says). Every
layer keeps the module's path as its ``name`` (``layer1.0.conv1``); a module called twice gets
``#2`` on its second call; functional operations are named by the enclosing module's path and the
operation (``layer1.0.add``).

Tracing uses :func:`torch.fx.symbolic_trace`. Where that fails (Python control flow on tensor
values, for instance) it falls back to forward hooks on the leaf modules plus a
``TorchFunctionMode`` that records the functions called between them; both give the same graph.

Conventions:

* The module is put in ``eval`` mode for the trace (and restored): BatchNorm is a per-channel
  affine map, dropout the identity.
* Supported modules: ``Conv1d/2d/3d`` (grouped, depthwise, dilated, padding ints or
  ``'same'``/``'valid'``, ``padding_mode='zeros'``), ``ConvTranspose1d/2d/3d``, max/avg/adaptive
  pools, ``BatchNorm``, the activations rfsym has a layer for, dropout, ``Identity``, ``Linear``
  (on a flattened input), ``Flatten``, ``Upsample`` (nearest, (bi/tri)linear, integer factors);
  functions ``+``, ``torch.cat`` along channels, ``torch.flatten``/``view``/``reshape`` to
  ``(N, -1)``, ``F.interpolate``, functional pools and activations, ``mean`` over all spatial axes,
  slicing of the spatial axes (``x[:, :, 2:-2, 2:-2]``, a ``Crop``).
* Any other module or function is an error that lists **every** unsupported operation with its
  path, unless it provably has no spatial effect (an elementwise function such as ``Mish``,
  ``x * 0.5``, or a product of two tensors of the same shape): then a single warning lists what
  was treated as elementwise. ``elementwise=`` lets you declare more modules position-wise.

>>> import pytest; torch = pytest.importorskip("torch")
>>> import rfsym
>>> net = rfsym.from_torch(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1),
...                                            torch.nn.ReLU(), torch.nn.MaxPool2d(2)), (1, 3, 32, 32))
>>> net[0]
Conv(name='0', kernel_size=3, padding=1, in_channels=3, out_channels=8)
>>> r = rfsym.analyze(net, input_size=32)
>>> [(layer.name, layer.type) for layer in r.layers]
[('0', 'Conv'), ('1', 'ReLU'), ('2', 'MaxPool')]
>>> r.rf, r.jump, r.out_size, r.params
(4, 2, 16, 224)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from . import layers as L
from .errors import GraphError, LayerError, RfsymError

__all__ = ["from_torch"]


# --------------------------------------------------------------------------- the recorded graph
@dataclass(frozen=True)
class _Ref:
    """A reference, inside recorded arguments, to the tensor produced by op ``index``."""

    index: int


@dataclass
class _Op:
    """One recorded operation on data (a tensor computed from the input)."""

    index: int
    kind: str  # "input", "module" or "call"
    target: Any  # the module, or the function/method name
    path: str  # module path (module) or path of the enclosing module (call)
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    shape: tuple | None = None  # output shape; None when the output is not one tensor
    inputs: tuple = ()  # data inputs in argument order (repeats kept)

    @property
    def label(self):
        """What the operation is, for messages."""
        if self.kind == "module":
            return type(self.target).__name__
        return self.target


def _refs(obj):
    """Data references inside (nested) arguments, in order."""
    if isinstance(obj, _Ref):
        return [obj.index]
    if isinstance(obj, (list, tuple)):
        return [i for x in obj for i in _refs(x)]
    if isinstance(obj, dict):
        return [i for x in obj.values() for i in _refs(x)]
    return []


def _is_leaf(module):
    """torch.fx's default leaf rule: built-in ``torch.nn`` modules except containers."""
    import torch

    mod = type(module).__module__
    return (mod.startswith("torch.nn") or mod.startswith("torch.ao.nn")) and not isinstance(
        module, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict))


def _function_name(target):
    """Name of a traced function, or None when it does not belong to torch or operator."""
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", None)
    if name is None:
        return None
    if module.startswith(("torch", "_operator", "operator", "builtins")) or module == "":
        return name
    return f"{module}.{name}"


def _trace_fx(module, x):
    """Record the data flow with torch.fx (raises whatever fx raises when it cannot trace)."""
    import torch
    import torch.fx as fx

    gm = fx.symbolic_trace(module)
    values = {}

    class _Recorder(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            values[n] = out
            return out

    _Recorder(gm).run(x)
    ops, index = [], {}
    output = None

    def convert(a):
        if isinstance(a, fx.Node):
            return _Ref(index[a]) if a in index else values.get(a)
        if isinstance(a, slice):
            return slice(convert(a.start), convert(a.stop), convert(a.step))
        if isinstance(a, (list, tuple)):
            return type(a)(convert(v) for v in a)
        if isinstance(a, dict):
            return {k: convert(v) for k, v in a.items()}
        return a

    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            if n is placeholders[0]:
                index[n] = 0
                ops.append(_Op(0, "input", None, "", shape=tuple(values[n].shape)))
            continue
        if n.op == "output":
            output = convert(n.args[0])
            continue
        if n.op == "get_attr":
            continue
        args, kwargs = convert(n.args), convert(n.kwargs)
        inputs = tuple(_refs(args) + _refs(kwargs))
        if not inputs:
            continue
        val = values[n]
        stack = n.meta.get("nn_module_stack") or {}
        scope = list(stack.values())[-1][0] if stack else ""
        if n.op == "call_module":
            sub = gm.get_submodule(n.target)
            kind, target, path = "module", sub, n.target
        else:
            name = n.target if n.op == "call_method" else _function_name(n.target)
            kind, target, path = "call", name or repr(n.target), scope
        if not isinstance(val, torch.Tensor):
            if not _contains_tensor(val):
                continue  # shape queries such as x.size(0)
            shape = None
        else:
            shape = tuple(val.shape)
        index[n] = len(ops)
        ops.append(_Op(len(ops), kind, target, path, args, kwargs, shape, inputs))
    return ops, output


def _contains_tensor(val):
    import torch

    if isinstance(val, torch.Tensor):
        return True
    if isinstance(val, (list, tuple)):
        return any(_contains_tensor(v) for v in val)
    if isinstance(val, dict):
        return any(_contains_tensor(v) for v in val.values())
    return False


def _trace_hooks(module, x):
    """Record the data flow by running the module: forward hooks on leaf modules, and a
    TorchFunctionMode for the torch functions called outside them."""
    import torch
    from torch.overrides import TorchFunctionMode

    ops = [_Op(0, "input", None, "", shape=tuple(x.shape))]
    ids = {id(x): 0}
    keep = [x]  # keep every tensor alive so that ids are not reused
    paths = {}
    for path, m in module.named_modules(remove_duplicate=False):
        paths.setdefault(id(m), path)
    scope = [""]  # enclosing (non-leaf) module paths
    inside = [None]  # the leaf module being run, if any

    def convert(a):
        if isinstance(a, torch.Tensor):
            return _Ref(ids[id(a)]) if id(a) in ids else a
        if isinstance(a, (list, tuple)):
            return type(a)(convert(v) for v in a)
        if isinstance(a, dict):
            return {k: convert(v) for k, v in a.items()}
        return a

    def record(kind, target, path, args, kwargs, out):
        args, kwargs = convert(args), convert(kwargs)
        inputs = tuple(_refs(args) + _refs(kwargs))
        if not inputs:
            return
        if not isinstance(out, torch.Tensor):
            if not _contains_tensor(out):
                return
            shape = None
        else:
            shape = tuple(out.shape)
        op = _Op(len(ops), kind, target, path, args, kwargs, shape, inputs)
        ops.append(op)
        if isinstance(out, torch.Tensor):
            ids[id(out)] = op.index
            keep.append(out)

    def pre(mod, args, kwargs):
        if inside[0] is not None:
            return
        if _is_leaf(mod):
            inside[0] = (mod, args, kwargs)
        else:
            scope.append(paths.get(id(mod), ""))

    def post(mod, args, kwargs, out):
        if inside[0] is not None:
            if inside[0][0] is mod:
                _, a, k = inside[0]
                inside[0] = None
                if not getattr(mod, "inplace", False):
                    out = _fresh(out, a, k)
                record("module", mod, paths.get(id(mod), ""), a, k, out)
                return out
            return
        if not _is_leaf(mod):
            scope.pop()

    class _Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if inside[0] is None:
                name = getattr(func, "__name__", repr(func))
                if not (name.endswith("_") and not name.endswith("__")) and not name.startswith("__i"):
                    out = _fresh(out, args, kwargs)
                record("call", name, scope[-1], args, kwargs, out)
            return out

    def _fresh(out, args, kwargs):
        # An operation that returns its input object unchanged (Identity, eval-mode dropout,
        # .contiguous()) gets a fresh alias, so later uses of the input still mean the input
        # (as in torch.fx's graph); in-place operations keep the object: its value changed.
        inputs = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)]
        if isinstance(out, torch.Tensor) and any(out is a for a in inputs):
            return out.view_as(out)
        return out

    handles = []
    try:
        for m in module.modules():
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post, with_kwargs=True))
        with _Mode():
            out = module(x)
    finally:
        for h in handles:
            h.remove()
    return ops, convert(out)


# --------------------------------------------------------------------------- conversion
_ALIASES = {"iadd": "add", "radd": "add", "isub": "sub", "rsub": "sub", "imul": "mul", "rmul": "mul",
            "truediv": "div", "itruediv": "div", "rtruediv": "div", "idiv": "div", "true_divide": "div",
            "multiply": "mul", "subtract": "sub", "concat": "cat", "concatenate": "cat",
            "max_pool2d_with_indices": "max_pool2d"}

_ACTIVATIONS = {"ReLU": L.ReLU, "ReLU6": L.ReLU6, "LeakyReLU": L.LeakyReLU, "GELU": L.GELU, "SiLU": L.SiLU,
                "Sigmoid": L.Sigmoid, "Tanh": L.Tanh, "Hardswish": L.Hardswish,
                "Hardsigmoid": L.Hardsigmoid, "ELU": L.ELU, "Identity": L.Identity}
_FUNCTIONAL_ACTIVATIONS = {"relu": L.ReLU, "relu6": L.ReLU6, "leaky_relu": L.LeakyReLU, "gelu": L.GELU,
                           "silu": L.SiLU, "sigmoid": L.Sigmoid, "tanh": L.Tanh, "hardswish": L.Hardswish,
                           "hardsigmoid": L.Hardsigmoid, "elu": L.ELU}
_DROPOUT_MODULES = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")
_DROPOUT_FUNCTIONS = ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                      "feature_alpha_dropout")
#: torch.nn modules that act on each position separately (no spatial effect) but have no rfsym layer
_ELEMENTWISE_MODULES = ("Hardtanh", "Softplus", "Mish", "SELU", "CELU", "RReLU", "Softsign", "Softshrink",
                        "Hardshrink", "Tanhshrink", "LogSigmoid", "Threshold", "PReLU")
#: unary torch functions and tensor methods that act on each element separately
_ELEMENTWISE_FUNCTIONS = frozenset("""
abs neg exp exp2 expm1 log log2 log10 log1p sqrt rsqrt square reciprocal sign sin cos tan sinh cosh
asin acos atan erf erfc sigmoid tanh clamp clamp_min clamp_max clip hardtanh softplus mish selu celu
rrelu softsign softshrink hardshrink tanhshrink logsigmoid threshold prelu pow nan_to_num
""".split())
#: binary arithmetic: a data tensor with a constant is elementwise; two data tensors merge like add
_ARITHMETIC = ("add", "sub", "mul", "div", "floordiv", "pow", "maximum", "minimum")
#: operations that return their input unchanged (as far as values at positions go)
_PASS = frozenset("contiguous clone detach float double half bfloat16 to type cpu requires_grad".split())


def _canonical(name):
    """One name per operation: ``__iadd__``, ``add_``, ``torch.add`` and ``operator.add`` are
    ``add``; a function from outside torch keeps its qualified name."""
    if not isinstance(name, str):
        return str(name)
    if "." in name:
        return name
    base = name.strip("_")
    return _ALIASES.get(base, base)


class _Unsupported(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Converted:
    """What one op becomes: layers (``kind='layers'``, empty for a pass-through) or a merge."""

    kind: str  # "layers" or "merge"
    layers: list = field(default_factory=list)
    merge: str | None = None  # "add" or "cat"
    note: str | None = None  # set when the op is treated as elementwise (warned)


def _ax(value, nd):
    """A per-axis value from torch: scalar when the network is 2-D and all axes agree."""
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        value = tuple(int(v) for v in value)
        if len(value) == 1 and nd != 1:
            value = value * nd
        if nd == 2 and len(set(value)) == 1:
            return value[0]
        return value
    value = int(value)
    return value if nd == 2 else (value,) * nd


def _norm_dim(dim, rank):
    return dim + rank if dim < 0 else dim


class _Converter:
    def __init__(self, ops, nd, elementwise):
        self.ops = ops
        self.nd = nd
        self.elementwise = elementwise

    def in_shape(self, op, i=0):
        return self.ops[op.inputs[i]].shape

    # ----------------------------------------------------------------- modules
    def module(self, op, name):
        import torch.nn as nn

        m, nd = op.target, self.nd
        cls = type(m).__name__
        user = self._user_elementwise(m, op.path)
        if user:
            return _Converted("layers", [L.Elementwise(name=name)])
        if isinstance(m, nn.modules.conv._ConvNd):
            if m.padding_mode != "zeros":
                raise _Unsupported(f"padding_mode={m.padding_mode!r} (only 'zeros' pads outside the input)")
            if len(m.kernel_size) != nd:
                raise _Unsupported(f"{len(m.kernel_size)}-d convolution in a {nd}-d network")
            common = dict(kernel_size=_ax(m.kernel_size, nd), stride=_ax(m.stride, nd),
                          dilation=_ax(m.dilation, nd), groups=m.groups, bias=m.bias is not None,
                          in_channels=m.in_channels, out_channels=m.out_channels, name=name)
            if not m.transposed:
                return _Converted("layers", [L.Conv(padding=_ax(m.padding, nd), **common)])
            from .layers import ConvTranspose

            n_in, n_out = self.in_shape(op)[2:], op.shape[2:]
            extra = []
            for n, o, k, s, p, d in zip(n_in, n_out, m.kernel_size, m.stride, m.padding, m.dilation):
                e = o - ((n - 1) * s - 2 * p + d * (k - 1) + 1)
                if not 0 <= e < max(s, d):
                    raise _Unsupported(f"output size {o} does not follow from input size {n}")
                extra.append(e)
            return _Converted("layers", [ConvTranspose(padding=_ax(m.padding, nd),
                                                       output_padding=_ax(extra, nd), **common)])
        if isinstance(m, nn.modules.pooling._MaxPoolNd):
            if m.return_indices:
                raise _Unsupported("return_indices=True (MaxUnpool is not supported)")
            return _Converted("layers", [L.MaxPool(_ax(m.kernel_size, nd), stride=_ax(m.stride, nd),
                                                   padding=_ax(m.padding, nd), dilation=_ax(m.dilation, nd),
                                                   ceil_mode=bool(m.ceil_mode), name=name)])
        if isinstance(m, nn.modules.pooling._AvgPoolNd):
            return _Converted("layers", [L.AvgPool(_ax(m.kernel_size, nd), stride=_ax(m.stride, nd),
                                                   padding=_ax(m.padding, nd), ceil_mode=bool(m.ceil_mode),
                                                   name=name)])
        if isinstance(m, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
            if getattr(m, "return_indices", False):
                raise _Unsupported("return_indices=True")
            return self._adaptive(op, name, "Max" in cls)
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return _Converted("layers", [self._batchnorm(m.num_features, m.affine, name)])
        if cls in _ACTIVATIONS:
            return _Converted("layers", [_ACTIVATIONS[cls](name=name)])
        if cls in ("Softmax", "Softmax2d", "LogSoftmax"):
            dim = 1 if cls == "Softmax2d" else m.dim
            rank = len(self.in_shape(op))
            if dim is None:
                dim = 0 if rank in (0, 1, 3) else 1  # torch's legacy implicit dim
            if _norm_dim(dim, rank) != 1:
                raise _Unsupported(f"{cls} over axis {dim} mixes positions (only axis 1, channels, does not)")
            if cls == "LogSoftmax":
                return self._elementwise(name, f"{name!r} ({cls})")
            return _Converted("layers", [L.Softmax(name=name)])
        if cls in _DROPOUT_MODULES:
            return _Converted("layers", [L.Dropout(name=name)])
        if cls in _ELEMENTWISE_MODULES:
            n = sum(p.numel() for p in m.parameters(recurse=False))
            extra = f", its {n} parameters not counted" if n else ""
            return self._elementwise(name, f"{name!r} ({cls}{extra})")
        if isinstance(m, nn.Linear):
            if len(self.in_shape(op)) != 2:
                raise _Unsupported("Linear on a tensor with spatial axes acts on the last axis; "
                                   "flatten first")
            return _Converted("layers", [L.Linear(m.in_features, m.out_features, bias=m.bias is not None,
                                                  name=name)])
        if isinstance(m, nn.Flatten):
            return self._flatten(op, name)
        if isinstance(m, nn.Upsample):
            return self._upsample(op, name, m.mode, m.align_corners)
        raise _Unsupported(cls)

    def _user_elementwise(self, m, path):
        for item in self.elementwise:
            if isinstance(item, str):
                if item == path:
                    return True
            elif isinstance(item, type) and isinstance(m, item):
                return True
        return False

    def _batchnorm(self, num_features, affine, name):
        if affine:
            return L.BatchNorm(num_features, name=name)
        return L.BatchNorm(num_features, affine=False, name=name)

    def _elementwise(self, name, note):
        return _Converted("layers", [L.Elementwise(name=name)], note=note)

    def _adaptive(self, op, name, is_max):
        out = op.shape[2:]
        cls = L.AdaptiveMaxPool if is_max else L.AdaptiveAvgPool
        return _Converted("layers", [cls(_ax(out, self.nd), name=name)])

    def _flatten(self, op, name):
        shape_in = self.in_shape(op)
        if op.shape == shape_in[:1] + (math.prod(shape_in[1:]),):
            if len(shape_in) == 2:
                return _Converted("layers")
            return _Converted("layers", [L.Flatten(name=name)])
        if op.shape == shape_in:
            return _Converted("layers")
        raise _Unsupported(f"reshape from {shape_in} to {op.shape} (only (N, -1) flattening is supported)")

    def _upsample(self, op, name, mode, align_corners):
        from .layers import Upsample

        shape_in = self.in_shape(op)
        modes = {"nearest": "nearest", "linear": "bilinear", "bilinear": "bilinear", "trilinear": "bilinear"}
        if mode not in modes:
            raise _Unsupported(f"mode={mode!r} (supported: nearest, linear, bilinear, trilinear)")
        factors = []
        for n, o in zip(shape_in[2:], op.shape[2:]):
            if o % n:
                raise _Unsupported(f"non-integer scale factor {o}/{n}")
            factors.append(o // n)
        return _Converted("layers", [Upsample(_ax(factors, self.nd), mode=modes[mode],
                                              align_corners=bool(align_corners), name=name)])

    # ----------------------------------------------------------------- functions
    def call(self, op, name):
        fn = _canonical(op.target)
        args, kwargs = op.args, op.kwargs
        rank = len(self.in_shape(op)) if self.in_shape(op) is not None else None
        if fn in _FUNCTIONAL_ACTIVATIONS and len(set(op.inputs)) == 1:
            return _Converted("layers", [_FUNCTIONAL_ACTIVATIONS[fn](name=name)])
        if fn in _DROPOUT_FUNCTIONS:
            return _Converted("layers", [L.Dropout(name=name)])
        if fn in ("softmax", "log_softmax"):
            dim = _arg(args, kwargs, 1, "dim", None)
            if dim is None or _norm_dim(dim, rank) != 1:
                raise _Unsupported(f"{fn} over axis {dim} mixes positions (only axis 1, channels, does not)")
            if fn == "softmax":
                return _Converted("layers", [L.Softmax(name=name)])
            return self._elementwise(name, f"{name!r} ({fn})")
        if fn in _PASS and op.shape == self.in_shape(op):
            return _Converted("layers")
        if fn in _ARITHMETIC:
            if len(op.inputs) >= 2:
                shapes = {self.ops[i].shape for i in op.inputs}
                if len(shapes) != 1 or op.shape not in shapes:
                    raise _Unsupported(f"{fn} of tensors of shapes {sorted(shapes)}: broadcasting over "
                                       "positions (as in squeeze-and-excitation) is not supported")
                note = None if fn == "add" else f"{name!r} ({fn} of two tensors, merged like add)"
                return _Converted("merge", merge="add", note=note)
            if op.shape == self.in_shape(op):
                return self._elementwise(name, f"{name!r} ({fn} with a constant)")
            raise _Unsupported(f"{fn} with a constant broadcasts the tensor to {op.shape}")
        if fn in _ELEMENTWISE_FUNCTIONS and len(set(op.inputs)) == 1 and op.shape == self.in_shape(op):
            return self._elementwise(name, f"{name!r} ({fn})")
        if fn == "cat":
            tensors = args[0] if args else kwargs.get("tensors")
            dim = _arg(args, kwargs, 1, "dim", 0)
            if _norm_dim(dim, len(op.shape)) != 1:
                raise _Unsupported(f"cat along axis {dim} (only axis 1, channels, is supported)")
            if not all(isinstance(t, _Ref) for t in tensors):
                raise _Unsupported("cat with a constant tensor")
            if len(tensors) == 1:
                return _Converted("layers")
            return _Converted("merge", merge="cat")
        if fn == "flatten":
            start = _arg(args, kwargs, 1, "start_dim", 0)
            end = _arg(args, kwargs, 2, "end_dim", -1)
            if _norm_dim(start, rank) != 1 or _norm_dim(end, rank) != rank - 1:
                raise _Unsupported(f"flatten(start_dim={start}, end_dim={end}) (only (N, -1) flattening "
                                   "is supported)")
            return self._flatten(op, name)
        if fn in ("view", "reshape"):
            return self._flatten(op, name)
        if fn == "getitem":
            return self._crop(op, name)
        if fn in ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"):
            return self._pool(fn, args, kwargs, name)
        if fn.startswith(("adaptive_avg_pool", "adaptive_max_pool")):
            if isinstance(op.shape, tuple):
                return self._adaptive(op, name, "max" in fn)
            raise _Unsupported("return_indices=True")
        if fn in ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear"):
            mode = {"upsample_nearest": "nearest", "upsample_bilinear": "bilinear"}.get(
                fn, _arg(args, kwargs, 3, "mode", "nearest"))
            align = True if fn == "upsample_bilinear" else _arg(args, kwargs, 4, "align_corners", None)
            return self._upsample(op, name, mode, align)
        if fn in ("mean", "amax"):
            dims = _arg(args, kwargs, 1, "dim", None)
            keep = _arg(args, kwargs, 2, "keepdim", False)
            dims = (dims,) if isinstance(dims, int) else dims
            spatial = set(range(2, rank))
            if dims is None or {_norm_dim(d, rank) for d in dims} != spatial:
                raise _Unsupported(f"{fn} over axes {dims} (only the spatial axes {sorted(spatial)} together "
                                   "are supported)")
            pool = (L.GlobalAvgPool if fn == "mean" else L.GlobalMaxPool)(name=name)
            return _Converted("layers", [pool] if keep else [pool, L.Flatten(name=f"{name}.flatten")])
        raise _Unsupported(fn)

    def _crop(self, op, name):
        """``x[:, :, a:b, c:d]``: slices of the spatial axes (step 1) are a ``Crop``."""
        from .layers import Crop

        shape_in = self.in_shape(op)
        rank = len(shape_in)
        idx = op.args[1] if isinstance(op.args[1], tuple) else (op.args[1],)
        if any(i is Ellipsis for i in idx):
            e = next(j for j, i in enumerate(idx) if i is Ellipsis)
            idx = idx[:e] + (slice(None),) * (rank - len(idx) + 1) + idx[e + 1:]
        idx = idx + (slice(None),) * (rank - len(idx))
        if len(idx) != rank or not all(isinstance(i, slice) for i in idx):
            raise _Unsupported("indexing other than slicing the spatial axes")
        if any(i != slice(None) for i in idx[:2]):
            raise _Unsupported("slicing the batch or channel axis")
        amounts = []
        for i, n in zip(idx[2:], shape_in[2:]):
            if i.step not in (None, 1):
                raise _Unsupported(f"slice step {i.step}")
            a, b, _ = i.indices(n)
            if b <= a:
                raise _Unsupported("an empty slice")
            amounts.append((a, n - b))
        if all(a == amounts[0] for a in amounts) and amounts[0][0] == amounts[0][1] and self.nd == 2:
            return _Converted("layers", [Crop(amounts[0][0], name=name)])
        return _Converted("layers", [Crop(tuple(amounts), name=name)])

    def _pool(self, fn, args, kwargs, name):
        nd = self.nd
        k = _arg(args, kwargs, 1, "kernel_size", None)
        s = _arg(args, kwargs, 2, "stride", None) or k
        p = _arg(args, kwargs, 3, "padding", 0)
        if fn.startswith("max"):
            d = _arg(args, kwargs, 4, "dilation", 1)
            ceil = _arg(args, kwargs, 5, "ceil_mode", False)
            if _arg(args, kwargs, 6, "return_indices", False):
                raise _Unsupported("return_indices=True")
            return _Converted("layers", [L.MaxPool(_ax(k, nd), stride=_ax(s, nd), padding=_ax(p, nd),
                                                   dilation=_ax(d, nd), ceil_mode=bool(ceil), name=name)])
        ceil = _arg(args, kwargs, 4, "ceil_mode", False)
        return _Converted("layers", [L.AvgPool(_ax(k, nd), stride=_ax(s, nd), padding=_ax(p, nd),
                                               ceil_mode=bool(ceil), name=name)])

    def convert(self, op, name):
        if op.shape is None:
            raise _Unsupported(f"{op.label} returns several tensors")
        if op.kind == "module":
            return self.module(op, name)
        return self.call(op, name)


def _arg(args, kwargs, position, name, default):
    if name in kwargs:
        return kwargs[name]
    if len(args) > position:
        return args[position]
    return default


# --------------------------------------------------------------------------- structure
def _dominators(ops, live):
    """Immediate dominators (from the input, op 0) of the live ops, in topological order."""
    idom, depth = {0: None}, {0: 0}
    for op in ops[1:]:
        if op.index not in live:
            continue
        preds = list(dict.fromkeys(op.inputs))
        d = preds[0]
        for b in preds[1:]:
            a = d
            while a != b:
                if depth[a] >= depth[b]:
                    a = idom[a]
                else:
                    b = idom[b]
            d = a
        idom[op.index] = d
        depth[op.index] = depth[d] + 1
    return idom


@dataclass
class _Merge:
    """A merge while the structure is being built: its kind, full name, scope and branches."""

    kind: str  # "add" or "cat"
    name: str
    scope: str
    branches: list


class _Builder:
    def __init__(self, ops, converted, names, idom):
        self.ops = ops
        self.converted = converted
        self.names = names
        self.idom = idom
        self.uses = {}

    def chain(self, src, v):
        """The items (layers and merges) mapping the value of op ``src`` to that of op ``v``."""
        items = []
        while v != src:
            self.uses[v] = self.uses.get(v, 0) + 1
            conv = self.converted[v]
            op = self.ops[v]
            if conv.kind == "merge":
                fork = self.idom[v]
                branches = [self.chain(fork, u) for u in self._merge_inputs(op)]
                items.append(_Merge(conv.merge, self.names[v], op.path, branches))
                v = fork
            else:
                items.extend(reversed(conv.layers))
                v = op.inputs[0]
        return items[::-1]

    def _merge_inputs(self, op):
        if _canonical(op.target) == "cat":
            tensors = op.args[0] if op.args else op.kwargs["tensors"]
            return [t.index for t in tensors]
        return list(op.inputs)


def _parts(path):
    return path.split(".") if path else []


def _common(paths):
    """Longest common dotted prefix."""
    parts = [_parts(p) for p in paths]
    out = []
    for segs in zip(*parts):
        if len(set(segs)) != 1:
            break
        out.append(segs[0])
    return ".".join(out)


def _paths(items):
    """Full names of the leaves inside ``items`` (merges contribute their scope)."""
    out = []
    for item in items:
        if isinstance(item, _Merge):
            out.append(item.scope)
            for b in item.branches:
                out.extend(_paths(b))
        else:
            out.append(item.name)
    return out


def _relative(path, prefix):
    if not prefix:
        return path
    assert path == prefix or path.startswith(prefix + "."), (path, prefix)
    return path[len(prefix) + 1:]


def _emit(items, prefix):
    """rfsym layers whose engine names (``parent.segment`` paths) are the recorded full names.

    A merge is named by its scope (the module whose ``forward`` adds or concatenates, as the
    model zoo names a residual block by its path) cut back to a prefix of everything inside it,
    since the engine names a branch's layers below their merge.
    """
    from . import graph

    out = []
    for item in items:
        if not isinstance(item, _Merge):
            rel = _relative(item.name, prefix)
            out.append(item if rel == item.name else dataclasses.replace(item, name=rel))
            continue
        inside = [p for b in item.branches for p in _paths(b)]
        scope = _common([item.scope] + inside)
        seqs = [L.Sequential(*_emit(b, scope), name="") if b else L.Identity(name="")
                for b in item.branches]
        name = _relative(scope, prefix)
        if item.kind == "cat":
            out.append(graph.Concat(*seqs, name=name))
        else:
            # the longer branch is the body, the other the shortcut
            order = sorted(range(len(seqs)), key=lambda i: -len(item.branches[i]))
            out.append(graph.Residual(seqs[order[0]], seqs[order[1]], name=name))
    return out


def _names(ops):
    """Unique layer names: module paths (``#2`` for a second call), ``scope.function`` otherwise."""
    names, seen = {}, {}
    for op in ops[1:]:
        if op.kind == "module":
            base = op.path or type(op.target).__name__
        else:
            fn = _canonical(op.target).rsplit(".", 1)[-1]
            base = f"{op.path}.{fn}" if op.path else fn
        count = seen.get(base, 0) + 1
        seen[base] = count
        names[op.index] = base if count == 1 else f"{base}#{count}"
    return names


def _live(ops, output):
    """Ops whose value reaches the output."""
    live, todo = set(), [output]
    while todo:
        i = todo.pop()
        if i in live:
            continue
        live.add(i)
        todo.extend(ops[i].inputs)
    return live


# --------------------------------------------------------------------------- entry point
def from_torch(module, input_shape, *, elementwise=(), trace="auto"):
    """Rebuild a ``torch.nn.Module`` from rfsym layers (see the module docstring).

    ``input_shape`` is the shape of the tensor ``forward`` takes, batch and channels first:
    ``(1, 3, 224, 224)``. The module runs once on zeros of that shape (in eval mode, without
    gradients). ``elementwise`` lists module classes or module paths to treat as position-wise
    (for instance ``torch.nn.GroupNorm`` if you accept ignoring its spatial statistics).
    ``trace`` is ``"auto"`` (torch.fx, falling back to hooks), ``"fx"`` or ``"hooks"``.

    Returns a :class:`~rfsym.layers.Sequential` named after the module's class; analyse it with
    ``rfsym.analyze(net, input_size=input_shape[2:])``.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised where torch is absent
        raise RfsymError("from_torch needs PyTorch: pip install 'rfsym[torch]'") from None
    if not isinstance(module, torch.nn.Module):
        raise RfsymError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    shape = tuple(input_shape)
    if len(shape) < 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        raise RfsymError(f"input_shape must be (batch, channels, *spatial) with positive integers, "
                         f"got {tuple(input_shape)!r}")
    if trace not in ("auto", "fx", "hooks"):
        raise RfsymError(f"trace must be 'auto', 'fx' or 'hooks', got {trace!r}")
    nd = len(shape) - 2
    dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.get_default_dtype())
    x = torch.zeros(shape, dtype=dtype)
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        with torch.no_grad():
            ops = output = None
            if trace in ("auto", "fx"):
                try:
                    ops, output = _trace_fx(module, x)
                except Exception as err:
                    if trace == "fx":
                        raise RfsymError(f"torch.fx could not trace {type(module).__name__}: {err}") from err
            if ops is None:
                ops, output = _trace_hooks(module, x)
    finally:
        for m, mode in modes.items():
            m.train(mode)
    return _build(module, ops, output, nd, elementwise)


def _build(module, ops, output, nd, elementwise):
    if not isinstance(output, _Ref):
        what = "nothing computed from its input" if output is None or not _refs(output) else \
            f"{type(output).__name__} of tensors"
        raise GraphError(f"from_torch handles modules returning one tensor; {type(module).__name__} "
                         f"returns {what}")
    live = _live(ops, output.index)
    names = _names(ops)
    conv = _Converter(ops, nd, elementwise)
    converted, unsupported, notes = {}, [], []
    for op in ops[1:]:
        if op.index not in live:
            continue
        try:
            c = conv.convert(op, names[op.index])
        except _Unsupported as err:
            what = op.label if err.reason == op.label else f"{op.label}: {err.reason}"
            unsupported.append(f"{names[op.index]} ({what})")
            continue
        except LayerError as err:
            unsupported.append(f"{names[op.index]} ({op.label}: {err})")
            continue
        if c.kind == "layers" and len(set(op.inputs)) != 1:
            unsupported.append(f"{names[op.index]} ({op.label} of {len(set(op.inputs))} tensors)")
            continue
        converted[op.index] = c
        if c.note:
            notes.append(c.note)
    if unsupported:
        err = LayerError(f"{len(unsupported)} unsupported operation(s) in {type(module).__name__}: "
                         + "; ".join(unsupported), where="from_torch")
        err.unsupported = unsupported
        raise err
    if notes:
        warnings.warn("from_torch treated these as elementwise (no spatial effect): " + ", ".join(notes),
                      stacklevel=3)
    _warn_unused(module, ops, live)
    idom = _dominators(ops, live)
    builder = _Builder(ops, converted, names, idom)
    items = builder.chain(0, output.index)
    shared = sorted(names[i] for i, n in builder.uses.items() if n > 1)
    if shared:
        raise GraphError("from_torch can express a graph as nested Residual/Concat blocks only when "
                         "every branch is used by one merge; these operations feed several merges "
                         f"(a DenseNet-like graph): {', '.join(shared)}")
    return L.Sequential(*_emit(items, ""), name=type(module).__name__)


def _warn_unused(module, ops, live):
    used = {id(op.target) for op in ops if op.kind == "module" and op.index in live}
    idle = []
    for path, m in module.named_modules():
        if _is_leaf(m) and id(m) not in used:
            n = sum(p.numel() for p in m.parameters(recurse=False))
            if n:
                idle.append(f"{path} ({n})")
    if idle:
        warnings.warn("from_torch: these modules have parameters but do not contribute to the output; "
                      "their parameters are not counted: " + ", ".join(idle), stacklevel=4)

