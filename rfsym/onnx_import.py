"""Import an ONNX model into an rfsym :class:`~rfsym.layers.Graph` (extra ``onnx``).

:func:`from_onnx` reads an ``onnx.ModelProto`` or a file with the ``onnx`` package, runs
``onnx.shape_inference`` and rebuilds the data flow node by node from rfsym layers. Node names are
the ONNX node names (the first output's name where a node has none), so
``result.layer("/layer1/layer1.0/conv1/Conv")`` works.

Conventions:

* The single graph input is ``"input"``, laid out ``(batch, channels, *spatial)``. Every tensor's
  axes are tracked (batch, channels, a spatial axis, flattened features, tokens), so transposes to
  channels-last, squeezes, unsqueezes and reshapes that split or merge channels are followed.
  Pure shape computations (``Shape``, ``Gather``, ``Concat`` of sizes, ...) are evaluated, with
  symbolic sizes where the input's are symbolic.
* Symbolic input dims of the file (``dim_param``, e.g. ``"H"``) become rfsym symbols
  (:func:`rfsym.symbols`), unnamed unknown dims the symbols ``d2, d3, ...``; ``input_shape``
  overrides the file's shape. Use :func:`read_onnx` for the input size along with the graph.
* Parameters are the weights of the operators that own them: a convolution's weight and bias,
  BatchNormalization's scale and bias (its running statistics are buffers, as in PyTorch),
  Gemm/MatMul weights and the initializer of an addition that follows a MatMul (its bias), and any
  other initializer an operator applies to the data (layer-scale factors, position embeddings:
  an rfsym ``Params`` node), counted once. Constants (``Constant`` nodes) are not parameters.
* Operators with no spatial effect (activations, ``Clip``, ``Erf``, arithmetic with a constant)
  become elementwise layers; a product or sum of two data tensors is a ``"mul"``/``"add"`` merge.
* Anything else is one :class:`~rfsym.errors.LayerError` listing **every** unsupported node with
  its operator type.

>>> import pytest; onnx = pytest.importorskip("onnx")
>>> from onnx import helper, TensorProto, numpy_helper
>>> import numpy as np, rfsym
>>> w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
>>> graph = helper.make_graph(
...     [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
...      helper.make_node("Relu", ["y"], ["z"], name="relu"),
...      helper.make_node("MaxPool", ["z"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2])],
...     "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
...     [helper.make_tensor_value_info("p", TensorProto.FLOAT, None)], [w])
>>> net = rfsym.from_onnx(helper.make_model(graph))
>>> H, W = rfsym.symbols("H W")
>>> r = rfsym.analyze(net, input_size=(H, W), in_channels=3)
>>> r.rf, r.jump, r.out_size, r.params
(4, 2, (floor(H/2), floor(W/2)), 216)
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy as sp

from . import layers as L
from .backbone import feature_node
from .errors import LayerError, RfsymError
from .lazy_numpy import np
from .sharing import SharedCalls

__all__ = ["from_onnx", "read_onnx", "OnnxImport"]

_N, _C, _F, _T, _ONE, _PART, _MIX = "N", "C", "F", "T", "1", "c", "X"  # axis roles, and spatial 0..nd-1


@dataclass(frozen=True)
class OnnxImport:
    """What :func:`read_onnx` returns.

    Attributes:
        graph: the network (an :class:`~rfsym.layers.Graph`).
        input_shape: the input's shape ``(batch, channels, *spatial)``: ints or rfsym symbols.
        name: the ONNX graph's name.
        features: the node of the reference feature map (the last spatial map before a global
            head), or None when the outputs are spatial.
        channels_last: whether the input is ``(batch, *spatial, channels)`` (a model whose
            input is transposed to channels-first before anything else, as tf2onnx writes).
    """

    graph: Any
    input_shape: tuple
    name: str
    features: str | None = None
    channels_last: bool = False

    @property
    def input_size(self):
        """The spatial input size (one value when every axis agrees, else a tuple)."""
        sizes = tuple(self.input_shape[1:-1] if self.channels_last else self.input_shape[2:])
        return sizes[0] if len(set(sizes)) == 1 else sizes

    @property
    def in_channels(self):
        """The input's channels."""
        return self.input_shape[-1 if self.channels_last else 1]


@dataclass
class _Data:
    """A tensor computed from the input: the rfsym node producing it, its shape and axis roles."""

    node: str | None  # None: produced by an unsupported node (already reported)
    shape: tuple
    roles: tuple

    @property
    def rank(self):
        return len(self.shape)

    def axis(self, role):
        return self.roles.index(role) if role in self.roles else None


class _Unsupported(Exception):
    """A node the importer cannot express (collected, then reported together)."""


def from_onnx(model_or_path, input_shape=None):
    """Import an ONNX model as an rfsym graph.

    Args:
        model_or_path: an ``onnx.ModelProto``, a path to a ``.onnx`` file, or the file's bytes.
        input_shape: ``(batch, channels, *spatial)`` of the single input (ints or rfsym symbols),
            overriding the file's; needed when the file does not give the input's rank.

    Returns:
        The :class:`~rfsym.layers.Graph`; analyse it with ``rfsym.analyze(graph, input_size=...)``
        (:func:`read_onnx` also returns the file's input size).

    Raises:
        RfsymError: the file cannot be read or is not a valid ONNX model; the input's shape is
            unknown; an operator is not supported (all such nodes listed).

    >>> import pytest; onnx = pytest.importorskip("onnx")
    >>> import rfsym
    >>> from onnx import helper, TensorProto
    >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
    ...                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
    ...                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    >>> [layer.name for layer in rfsym.analyze(from_onnx(helper.make_model(g)), input_size=8).layers]
    ['relu']
    """
    return read_onnx(model_or_path, input_shape).graph


def read_onnx(model_or_path, input_shape=None) -> OnnxImport:
    """Like :func:`from_onnx`, also returning the input's shape (for ``analyze``'s ``input_size``).

    Args:
        model_or_path: an ``onnx.ModelProto``, a path to a ``.onnx`` file, or the file's bytes.
        input_shape: ``(batch, channels, *spatial)``, overriding the file's.

    Returns:
        An :class:`OnnxImport` (``graph``, ``input_shape``, ``input_size``, ``in_channels``, ``name``).

    Raises:
        RfsymError: as :func:`from_onnx`.

    >>> import pytest; onnx = pytest.importorskip("onnx")
    >>> from onnx import helper, TensorProto
    >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
    ...                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
    ...                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    >>> read_onnx(helper.make_model(g)).input_size
    32
    """
    model = _load(model_or_path)
    return _Importer(model, input_shape).run()


# --------------------------------------------------------------------------- loading
def _load(model_or_path):
    try:
        import onnx
    except ImportError:
        raise RfsymError("reading ONNX models needs the onnx package (pip install 'rfsym[onnx]')") from None
    if isinstance(model_or_path, onnx.ModelProto):
        model, what = model_or_path, "the ONNX model"
    elif isinstance(model_or_path, (bytes, bytearray)):
        model, what = _parse(onnx, bytes(model_or_path), "the ONNX bytes"), "the ONNX bytes"
    elif isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        what = path
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as err:
            raise RfsymError(f"cannot read the ONNX file {path}: {err.strerror or err}") from None
        model = _parse(onnx, data, path)
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
            try:
                from onnx.external_data_helper import load_external_data_for_model

                load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
            except Exception as err:  # noqa: BLE001 - any failure to read the side files
                raise RfsymError(f"{path}: cannot read its external weights: {err}") from None
    else:
        raise RfsymError(f"from_onnx expects an onnx.ModelProto, a path or bytes, got {type(model_or_path).__name__}")
    if not model.HasField("graph") or not model.graph.node:
        raise RfsymError(f"{what} is not an ONNX model (no graph nodes)")
    return model


def _parse(onnx, data, what):
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise RfsymError(f"{what} is not a valid ONNX file ({type(err).__name__}: {err})") from None
    return model


# --------------------------------------------------------------------------- helpers
def _ints(values):
    return tuple(int(v) for v in values)


def _attrs(node):
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _str(v):
    return v.decode() if isinstance(v, bytes) else v


def _expr(v):
    """A sympy integer (or expression) for a shape value."""
    if isinstance(v, sp.Basic):
        return v
    return sp.Integer(int(v))


def _simple(pairs):
    """``((l, r), ...)`` as the simplest rfsym padding: an int, per-axis ints, or the pairs."""
    if all(a == b for a, b in pairs):
        if len({a for a, _ in pairs}) == 1:
            return pairs[0][0]
        return tuple(a for a, _ in pairs)
    return tuple(pairs)


def _numeric(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _prod(xs):
    out = sp.Integer(1)
    for x in xs:
        out = out * x
    return out


_ELEMENTWISE = {
    "Relu": L.ReLU, "Sigmoid": L.Sigmoid, "Tanh": L.Tanh, "HardSwish": L.Hardswish,
    "HardSigmoid": L.Hardsigmoid, "LeakyRelu": L.LeakyReLU, "Elu": L.ELU, "Gelu": L.GELU,
    "Identity": None, "Dropout": None, "Cast": None, "CastLike": None,
}
_UNARY = {"Erf", "Softplus", "Softsign", "Selu", "Celu", "Mish", "Abs", "Neg", "Exp", "Log", "Sqrt",
          "Reciprocal", "Floor", "Ceil", "Round", "Sin", "Cos", "Sign", "ThresholdedRelu", "Not",
          "IsNaN", "IsInf", "Shrink", "Swish"}
_BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Equal", "Less",
           "Greater", "Where", "And", "Or"}
_SHAPE_OPS = {"Shape", "Size"}


class _Importer:
    def __init__(self, model, input_shape):
        import onnx
        from onnx import numpy_helper

        self.onnx = onnx
        self.model = model
        graph = model.graph
        self.init = {t.name: t for t in graph.initializer}
        self.numpy_helper = numpy_helper
        inputs = [i for i in graph.input if i.name not in self.init]
        if len(inputs) != 1:
            raise RfsymError(f"the ONNX graph has {len(inputs)} data inputs "
                             f"({', '.join(i.name for i in inputs) or 'none'}); rfsym reads models with one input")
        self.input = inputs[0]
        self.shape0 = self._input_shape(input_shape)
        self._infer()
        self.const: dict[str, Any] = {}
        self.data: dict[str, _Data] = {}
        self.nodes: list = []
        self.names: set = {"input"}
        self.owned: set = set()
        self.unsupported: list = []
        self.poisoned: set = set()
        self.global_nodes: set = set()
        self.alias: dict = {}
        self.scores: dict = {}  # pending attention scores: output name -> (q, k)
        self.mixed: dict = {}  # channels and positions reshaped together (GroupNorm): name -> origin

    # ---------------------------------------------------------------- input and shapes
    def _input_shape(self, input_shape):
        from .symbols import symbols

        tt = self.input.type.tensor_type
        if input_shape is not None:
            shape = (input_shape,) if not isinstance(input_shape, (tuple, list)) else tuple(input_shape)
            file_rank = len(tt.shape.dim) if tt.HasField("shape") else None
            if file_rank is not None and file_rank != len(shape):
                raise RfsymError(f"input_shape {tuple(shape)} has {len(shape)} axes but the model's input "
                                 f"{self.input.name!r} has {file_rank}")
        elif not tt.HasField("shape"):
            raise RfsymError(f"the model's input {self.input.name!r} has no shape: pass input_shape="
                             "(batch, channels, *spatial), e.g. rfsym.from_onnx(path, input_shape=(1, 3, 224, 224))")
        else:
            shape = []
            for j, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value"):
                    shape.append(int(d.dim_value))
                else:
                    name = d.dim_param if d.HasField("dim_param") and d.dim_param.isidentifier() else f"d{j}"
                    shape.append(1 if j == 0 else symbols(name))
        if len(shape) < 3:
            raise RfsymError(f"the model's input has shape {tuple(shape)}: rfsym reads (batch, channels, "
                             "*spatial) inputs with at least one spatial axis")
        out = []
        for j, v in enumerate(shape):
            if isinstance(v, str):
                v = symbols(v)
            try:
                e = _expr(v)
            except (TypeError, ValueError):
                raise RfsymError(f"input_shape entries must be ints or symbols, got {v!r}") from None
            if e.is_number and (not e.is_Integer or e < 1):
                raise RfsymError(f"input_shape entries must be positive, got {v!r} at axis {j}")
            out.append(int(e) if e.is_Integer else e)
        return tuple(out)

    def _infer(self):
        """ONNX shape inference on a copy whose input has the (numeric) dims of ``shape0``."""
        onnx = self.onnx
        model = onnx.ModelProto()  # a copy without the large weights (their types are enough)
        for field in ("ir_version", "opset_import", "functions"):
            if field == "ir_version":
                model.ir_version = self.model.ir_version
            else:
                getattr(model, field).extend(getattr(self.model, field))
        src, g = self.model.graph, model.graph
        g.name = src.name
        g.node.extend(src.node)
        g.input.extend(src.input)
        g.output.extend(src.output)
        g.value_info.extend(src.value_info)
        listed = {i.name for i in src.input}
        for t in src.initializer:
            if math.prod(t.dims) <= 4096:
                g.initializer.append(t)
            elif t.name not in listed:
                g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        for i in model.graph.input:
            if i.name == self.input.name:
                dims = i.type.tensor_type.shape
                del dims.dim[:]
                for v in self.shape0:
                    d = dims.dim.add()
                    if isinstance(v, int):
                        d.dim_value = v
                    else:
                        d.dim_param = str(v)
        self.shapes = {}
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception:  # noqa: BLE001 - e.g. an operator of an unknown domain: our own shapes only
            return
        g = inferred.graph
        for vi in list(g.value_info) + list(g.output) + list(g.input):
            tt = vi.type.tensor_type
            if tt.HasField("shape"):
                self.shapes[vi.name] = tuple(int(d.dim_value) if d.HasField("dim_value") else None
                                             for d in tt.shape.dim)

    def _onnx_shape(self, name, mine):
        """The output shape: ONNX's numeric dims where known, ours elsewhere."""
        theirs = self.shapes.get(name)
        if theirs is None or len(theirs) != len(mine):
            return tuple(_expr(v) for v in mine)
        return tuple(_expr(t) if t is not None else _expr(m) for t, m in zip(theirs, mine))

    # ---------------------------------------------------------------- constants
    def _const_value(self, name):
        if name in self.const:
            return self.const[name]
        if name in self.init:
            value = self.numpy_helper.to_array(self.init[name])
            self.const[name] = value
            return value
        return None

    def _dims(self, name):
        """The shape of a constant input (an initializer, or one computed from constants)."""
        if name in self.init:
            return tuple(int(v) for v in self.init[name].dims)
        value = self.const.get(name)
        return None if value is None else tuple(np.shape(value))

    def _ints_of(self, name, what):
        value = self._const_value(name)
        if value is None:
            raise _Unsupported(f"{what} must be a constant")
        return [v for v in np.asarray(value).reshape(-1).tolist()]

    def _eval_const(self, node):
        """Evaluate a node whose inputs are all constants (shape arithmetic, folded weights)."""
        a = _attrs(node)
        op = node.op_type
        ins = [self._const_value(i) if i else None for i in node.input]
        if op == "Constant":
            from onnx import numpy_helper

            if "value" in a:
                out = numpy_helper.to_array(a["value"])
            else:
                key = next(iter(a))
                out = np.asarray(a[key])
            return [out]
        if any(isinstance(v, np.ndarray) and v.dtype == object for v in ins if v is not None):
            return self._eval_symbolic(node, a, ins)
        from onnx.reference import ReferenceEvaluator

        try:
            feeds = {n: v for n, v in zip(node.input, ins) if n}
            return list(ReferenceEvaluator(node).run(None, feeds))
        except Exception as err:  # noqa: BLE001 - the reference runtime raises many types
            raise _Unsupported(f"cannot evaluate this constant computation ({type(err).__name__})") from None

    def _eval_symbolic(self, node, a, ins):
        """Shape arithmetic on symbolic sizes (numpy object arrays of sympy values)."""
        op = node.op_type
        x = ins[0]
        if op in ("Identity", "Cast", "Floor", "Ceil"):
            if op == "Floor":
                return [np.vectorize(sp.floor, otypes=[object])(x)]
            if op == "Ceil":
                return [np.vectorize(sp.ceiling, otypes=[object])(x)]
            return [x]
        if op == "Gather":
            return [np.take(x, np.asarray(ins[1]).astype(int), axis=int(a.get("axis", 0)))]
        if op == "Unsqueeze":
            axes = a.get("axes", None) if len(ins) < 2 else np.asarray(ins[1]).tolist()
            out = x
            rank = np.ndim(x) + len(axes)
            for ax in sorted(int(v) % rank for v in axes):
                out = np.expand_dims(out, ax)
            return [out]
        if op == "Squeeze":
            axes = a.get("axes", None) if len(ins) < 2 else np.asarray(ins[1]).tolist()
            return [np.squeeze(x, axis=tuple(int(v) for v in axes)) if axes is not None else np.squeeze(x)]
        if op == "Concat":
            return [np.concatenate([np.asarray(v, dtype=object).reshape(-1) if np.ndim(v) == 0 else
                                    np.asarray(v, dtype=object) for v in ins], axis=int(a.get("axis", 0)))]
        if op == "Slice":
            starts, ends = np.asarray(ins[1]).tolist(), np.asarray(ins[2]).tolist()
            axes = np.asarray(ins[3]).tolist() if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
            steps = np.asarray(ins[4]).tolist() if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
            index = [slice(None)] * np.ndim(x)
            for s, e, ax, st in zip(starts, ends, axes, steps):
                n = x.shape[int(ax)]
                index[int(ax)] = slice(max(min(int(s), n), -n), max(min(int(e), n), -n - 1), int(st))
            return [x[tuple(index)]]
        binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
                  "Div": lambda p, q: np.vectorize(lambda u, v: sp.floor(sp.sympify(u) / v), otypes=[object])(p, q),
                  "Max": np.maximum, "Min": np.minimum}
        if op in binary and len(ins) == 2:
            return [binary[op](np.asarray(ins[0], dtype=object), np.asarray(ins[1], dtype=object))]
        if op == "Reshape":
            return [np.reshape(x, [int(v) for v in np.asarray(ins[1]).tolist()])]
        if op == "ReduceProd":
            return [np.asarray(_prod(np.asarray(x).reshape(-1)), dtype=object).reshape((1,) * (np.ndim(x)
                    if a.get("keepdims", 1) else 0))]
        raise _Unsupported("cannot evaluate this shape computation on symbolic sizes")

    # ---------------------------------------------------------------- emitting nodes
    def _name(self, node):
        base = node.name or (node.output[0] if node.output else node.op_type)
        name, k = base, 2
        while name in self.names:
            name, k = f"{base}#{k}", k + 1
        self.names.add(name)
        return name

    def _emit(self, node, layer, inputs, name=None):
        name = name or self._name(node)
        if isinstance(layer, str):
            self.nodes.append((name, layer, tuple(inputs)))
        else:
            self.nodes.append((name, dataclasses.replace(layer, name=name), inputs[0]))
        return name

    def _own(self, *names):
        """Parameter count of these initializers not owned yet (each counted once)."""
        count = 0
        for n in names:
            n = self.alias.get(n, n)
            if n and n in self.init and n not in self.owned:
                self.owned.add(n)
                count += int(np.prod(self.init[n].dims)) if self.init[n].dims else 1
        return count

    # ---------------------------------------------------------------- the walk
    def run(self) -> OnnxImport:
        nd = len(self.shape0) - 2
        self.nd = nd
        users = [n for n in self.model.graph.node if self.input.name in n.input]
        to_first = [0, nd + 1] + list(range(1, nd + 1))
        self.channels_last = bool(users) and all(
            n.op_type == "Transpose" and list(_attrs(n).get("perm", [])) == to_first for n in users)
        roles = (_N,) + tuple(range(nd)) + (_C,) if self.channels_last else (_N, _C) + tuple(range(nd))
        self.data[self.input.name] = _Data("input", tuple(_expr(v) for v in self.shape0), roles)
        self._plan_fusion()
        # the nodes of every operator reading weights: operators reading the same weights by name
        # are one module called twice (equal weights an exporter merged are read through
        # Identity nodes, under names of their own: each keeps its parameters)
        calls = SharedCalls()
        for node in self.model.graph.node:
            first = len(self.nodes)
            self._visit(node)
            weights = tuple(n for n in node.input if self.alias.get(n, n) in self.init)
            if weights and len(self.nodes) > first:
                calls.record(weights, self.nodes[first:])
        if self.unsupported:
            lines = "\n".join(f"  {where} ({op}){': ' + why if why else ''}" for where, op, why in self.unsupported)
            raise LayerError(f"{len(self.unsupported)} ONNX node(s) rfsym cannot import:\n{lines}",
                             where="from_onnx", param="op_type")
        outputs = []
        for o in self.model.graph.output:
            d = self.data.get(o.name)
            if d is not None and d.node not in outputs:
                outputs.append(d.node)
        if not outputs:
            raise RfsymError("the ONNX graph's outputs do not depend on its input")
        if outputs == ["input"] or not self.nodes:
            raise RfsymError("the ONNX graph has no operation on its input")
        features = feature_node(self.nodes, outputs, lambda label, _: label in self.global_nodes)
        try:  # name None: layers keep the ONNX node names, unprefixed
            graph = L.Graph(*self.nodes, outputs=tuple(outputs), features=features,
                            shared=calls.pairs(n[0] for n in self.nodes))
        except RfsymError as err:
            raise type(err)(f"from_onnx: {err}") from None
        return OnnxImport(graph, self.shape0, self.model.graph.name, features, self.channels_last)

    def _plan_fusion(self):
        """MatMul followed only by an Add of a 1-D initializer: the Add is the MatMul's bias."""
        consumers: dict[str, list] = {}
        for node in self.model.graph.node:
            for i in node.input:
                consumers.setdefault(i, []).append(node)
        root = {n.output[0]: n.input[0] for n in self.model.graph.node
                if n.op_type == "Identity" and n.input and n.input[0] in self.init}
        init = {**{k: self.init[v] for k, v in root.items()}, **self.init}
        self.fused_bias = {}
        for node in self.model.graph.node:
            if node.op_type == "MatMul" and len(node.input) == 2 and node.input[1] in init:
                users = consumers.get(node.output[0], [])
                if len(users) == 1 and users[0].op_type == "Add":
                    add = users[0]
                    other = [i for i in add.input if i != node.output[0]]
                    if len(other) == 1 and other[0] in init and len(init[other[0]].dims) == 1:
                        self.fused_bias[node.name or node.output[0]] = (add, other[0])
        self.skip = {add.output[0] for add, _ in self.fused_bias.values()}

    def _visit(self, node):
        if node.output and node.output[0] in self.skip:  # a bias already fused into its MatMul
            return
        if any(i in self.scores for i in node.input):
            try:
                return self._scores_op(node)
            except _Unsupported as err:
                self.unsupported.append((node.name or node.output[0], node.op_type, str(err)))
                self.poisoned.update(node.output)
                return
        data_in = [i for i in node.input if i in self.data]
        if not data_in:
            if any(i in self.poisoned for i in node.input):  # shape arithmetic after an unsupported node
                self.poisoned.update(node.output)
                return
            try:
                if node.op_type == "Identity" and node.input[0] in self.init:
                    self.alias[node.output[0]] = node.input[0]  # an exporter's shared copy of a weight
                for out, value in zip(node.output, self._eval_const(node)):
                    self.const[out] = value
            except _Unsupported as err:
                self.unsupported.append((node.name or node.output[0], node.op_type, str(err)))
                self.poisoned.update(node.output)
            return
        handler = getattr(self, f"_op_{node.op_type}", None)
        known = handler is not None or node.op_type in _ELEMENTWISE or node.op_type in _UNARY or \
            node.op_type in _BINARY or node.op_type in _SHAPE_OPS
        if any(self.data[i].node is None for i in data_in) or any(i in self.poisoned for i in node.input):
            if not known:
                self.unsupported.append((node.name or node.output[0], node.op_type, ""))
            self._poison(node, data_in)
            return
        if node.op_type in _SHAPE_OPS:
            self._shape_value(node)
            return
        try:
            if handler is None:
                if node.op_type in _ELEMENTWISE or node.op_type in _UNARY:
                    return self._unary(node)
                if node.op_type in _BINARY:
                    return self._binary(node)
                raise _Unsupported("")
            handler(node)
        except _Unsupported as err:
            self.unsupported.append((node.name or node.output[0], node.op_type, str(err)))
            self._poison(node, data_in)
        except LayerError as err:
            self.unsupported.append((node.name or node.output[0], node.op_type, err.detail))
            self._poison(node, data_in)

    def _poison(self, node, data_in):
        d = self.data[data_in[0]]
        if node.op_type in _SHAPE_OPS:
            self.poisoned.update(node.output)
            return
        for out in node.output:
            self.data[out] = _Data(None, d.shape, d.roles)

    def _shape_value(self, node):
        d = self.data[node.input[0]]
        if node.op_type == "Size":
            self.const[node.output[0]] = np.asarray(_prod(d.shape), dtype=object)
            return
        a = _attrs(node)
        start, end = int(a.get("start", 0)), a.get("end", None)
        dims = list(d.shape)[start:None if end is None else int(end)]
        self.const[node.output[0]] = np.asarray([int(v) if v.is_Integer else v for v in dims], dtype=object) \
            if any(not v.is_Integer for v in dims) else np.asarray([int(v) for v in dims], dtype=np.int64)

    def _set(self, node, node_name, shape, roles, index=0):
        out = node.output[index]
        self.data[out] = _Data(node_name, self._onnx_shape(out, shape), tuple(roles))

    def _x(self, node):
        return self.data[node.input[0]]

    def _channels_first(self, d, what):
        if d.roles[:2 + self.nd] != (_N, _C) + tuple(range(self.nd)) or d.rank != 2 + self.nd:
            raise _Unsupported(f"{what} needs a (batch, channels, *spatial) tensor, got axes {_show(d.roles)}")

    # ---------------------------------------------------------------- convolutions and pools
    def _window_attrs(self, node, d, kernel, strides_default=1):
        a = _attrs(node)
        nd = self.nd
        k = _ints(a.get("kernel_shape", kernel))
        if len(k) != nd:
            raise _Unsupported(f"kernel_shape {k} has {len(k)} axes, the input {nd}")
        s = _ints(a.get("strides", [strides_default] * nd))
        dil = _ints(a.get("dilations", [1] * nd))
        auto = _str(a.get("auto_pad", "NOTSET"))
        if auto == "VALID":
            pads = ((0, 0),) * nd
        elif auto == "SAME_UPPER":
            pads = "tf_same"
        elif auto == "SAME_LOWER":
            pads = []
            for axis in range(nd):
                n = d.shape[2 + axis]
                total = sp.Max((sp.ceiling(n / s[axis]) - 1) * s[axis] + (k[axis] - 1) * dil[axis] + 1 - n, 0)
                pads.append((sp.ceiling(total / 2), sp.floor(total / 2)))
            pads = tuple(pads)
        elif auto in ("NOTSET", ""):
            p = _ints(a.get("pads", [0] * 2 * nd))
            pads = tuple((p[i], p[i + nd]) for i in range(nd))
        else:
            raise _Unsupported(f"auto_pad={auto!r}")
        return k, s, dil, pads, a

    def _out_sizes(self, d, k, s, dil, pads, ceil=False):
        sizes = []
        for axis in range(self.nd):
            n = d.shape[2 + axis]
            if pads == "tf_same":
                sizes.append(sp.ceiling(n / s[axis]))
                continue
            span = n + pads[axis][0] + pads[axis][1] - dil[axis] * (k[axis] - 1) - 1
            sizes.append((sp.ceiling if ceil else sp.floor)(sp.Rational(1, 1) * span / s[axis]) + 1)
        return sizes

    def _conv_input(self, node):
        """The data and the weight's shape of a (transposed) convolution."""
        d = self._x(node)
        self._channels_first(d, node.op_type)
        w = self._dims(node.input[1])
        if w is None:
            raise _Unsupported("the weight must be a constant")
        return d, w

    def _op_Conv(self, node):
        d, w = self._conv_input(node)
        k, s, dil, pads, a = self._window_attrs(node, d, w[2:])
        groups = int(a.get("group", 1))
        cout, cin = w[0], w[1] * groups
        bias = len(node.input) > 2 and bool(node.input[2])
        self._own(*node.input[1:])
        layer = L.Conv(k, stride=s, padding="tf_same" if pads == "tf_same" else _simple(pads),
                       dilation=dil, groups=groups, bias=bias, in_channels=cin, out_channels=cout)
        name = self._emit(node, layer, [d.node])
        shape = (d.shape[0], cout, *self._out_sizes(d, k, s, dil, pads))
        self._set(node, name, shape, d.roles)

    def _op_ConvTranspose(self, node):
        d, w = self._conv_input(node)
        a = _attrs(node)
        if "output_shape" in a or _str(a.get("auto_pad", "NOTSET")) not in ("NOTSET", ""):
            raise _Unsupported("output_shape/auto_pad are not supported: give pads")
        nd = self.nd
        k = _ints(a.get("kernel_shape", w[2:]))
        s = _ints(a.get("strides", [1] * nd))
        dil = _ints(a.get("dilations", [1] * nd))
        p = _ints(a.get("pads", [0] * 2 * nd))
        pads = tuple((p[i], p[i + nd]) for i in range(nd))
        if any(lo != hi for lo, hi in pads):
            raise _Unsupported(f"asymmetric pads {p}")
        op = _ints(a.get("output_padding", [0] * nd))
        groups = int(a.get("group", 1))
        cin, cout = w[0], w[1] * groups
        bias = len(node.input) > 2 and bool(node.input[2])
        self._own(*node.input[1:])
        layer = L.ConvTranspose(k, stride=s, padding=_simple(tuple((lo, lo) for lo, _ in pads)),
                              output_padding=op[0] if len(set(op)) == 1 else op, dilation=dil,
                              groups=groups, bias=bias, in_channels=cin, out_channels=cout)
        name = self._emit(node, layer, [d.node])
        sizes = [(d.shape[2 + i] - 1) * s[i] - 2 * pads[i][0] + dil[i] * (k[i] - 1) + 1 + op[i] for i in range(nd)]
        self._set(node, name, (d.shape[0], cout, *sizes), d.roles)

    def _pool(self, node, cls):
        d = self._x(node)
        self._channels_first(d, node.op_type)
        if len(node.output) > 1 and node.output[1]:
            raise _Unsupported("the indices output is not supported")
        k, s, dil, pads, a = self._window_attrs(node, d, None)
        ceil = bool(a.get("ceil_mode", 0))
        kwargs = {"dilation": dil} if cls is L.MaxPool else {}
        if cls is L.AvgPool and any(v != 1 for v in dil):
            raise _Unsupported(f"dilations {dil}")
        layer = cls(k, stride=s, padding="tf_same" if pads == "tf_same" else _simple(pads),
                    ceil_mode=ceil, **kwargs)
        name = self._emit(node, layer, [d.node])
        self._set(node, name, (d.shape[0], d.shape[1], *self._out_sizes(d, k, s, dil, pads, ceil)), d.roles)

    def _op_MaxPool(self, node):
        self._pool(node, L.MaxPool)

    def _op_AveragePool(self, node):
        self._pool(node, L.AvgPool)

    def _global(self, node, layer, d, keep=True, axes=None):
        name = self._emit(node, layer, [d.node])
        self.global_nodes.add(name)
        axes = [d.axis(i) for i in range(self.nd)] if axes is None else axes
        shape = [1 if j in axes else n for j, n in enumerate(d.shape)]
        roles = list(d.roles)
        if not keep:
            shape = [n for j, n in enumerate(shape) if j not in axes]
            roles = [r for j, r in enumerate(roles) if j not in axes]
        self._set(node, name, shape, roles)

    def _op_GlobalAveragePool(self, node):
        d = self._x(node)
        self._channels_first(d, node.op_type)
        self._global(node, L.GlobalAvgPool(), d)

    def _op_GlobalMaxPool(self, node):
        d = self._x(node)
        self._channels_first(d, node.op_type)
        self._global(node, L.GlobalMaxPool(), d)

    def _reduce(self, node, cls, kind):
        d = self._x(node)
        a = _attrs(node)
        if len(node.input) > 1 and node.input[1]:
            axes = self._ints_of(node.input[1], "axes")
        else:
            axes = a.get("axes", None)
        axes = list(range(d.rank)) if not axes else sorted(int(v) % d.rank for v in axes)
        keep = bool(a.get("keepdims", 1))
        roles = {d.roles[j] for j in axes}
        spatial = {r for r in d.roles if isinstance(r, int) or r == _T}
        if roles == spatial and spatial:
            return self._global(node, cls(), d, keep, axes)
        if roles <= {_C, _ONE, _PART}:
            layer = L.Pointwise(out_channels=1, kind=kind)
            name = self._emit(node, layer, [d.node])
            shape = [1 if j in axes else n for j, n in enumerate(d.shape)]
            roles2 = list(d.roles)
            if not keep:
                shape = [n for j, n in enumerate(shape) if j not in axes]
                roles2 = [r for j, r in enumerate(roles2) if j not in axes]
            return self._set(node, name, shape, roles2)
        raise _Unsupported(f"reduction over axes {_show(tuple(d.roles[j] for j in axes))}")

    def _op_ReduceMean(self, node):
        self._reduce(node, L.GlobalAvgPool, "ReduceMean")

    def _op_ReduceMax(self, node):
        self._reduce(node, L.GlobalMaxPool, "ReduceMax")

    def _op_ReduceSum(self, node):
        self._reduce(node, L.GlobalAvgPool, "ReduceSum")

    # ---------------------------------------------------------------- normalisations
    def _op_BatchNormalization(self, node):
        d = self._x(node)
        if d.axis(_C) != 1:
            raise _Unsupported(f"BatchNormalization needs channels on axis 1, got axes {_show(d.roles)}")
        c = d.shape[1]
        self._own(*node.input[1:5])  # scale and bias: 2C parameters; running statistics are buffers
        layer = L.BatchNorm(c)
        name = self._emit(node, layer, [d.node])
        self._set(node, name, d.shape, d.roles)

    def _norm(self, node, spatial, kind, params_inputs):
        d = self._x(node)
        params = self._own(*params_inputs)
        c = d.shape[d.axis(_C)] if d.axis(_C) is not None else None
        layer = L.Norm(num_features=c, params=params, spatial=spatial, kind=kind)
        name = self._emit(node, layer, [d.node])
        self._set(node, name, d.shape, d.roles)

    def _op_LayerNormalization(self, node):
        d = self._x(node)
        axis = int(_attrs(node).get("axis", -1)) % d.rank
        roles = set(d.roles[axis:])
        if not roles <= {_C, _F, _PART, _ONE, _N}:
            if not roles <= {_C, _F, _PART, _ONE, _T} | set(range(self.nd)):
                raise _Unsupported(f"normalised axes {_show(d.roles[axis:])}")
            return self._norm(node, True, "LayerNorm", node.input[1:3])
        self._norm(node, False, "LayerNorm", node.input[1:3])

    def _op_InstanceNormalization(self, node):
        origin = self.mixed.get(node.input[0])
        if origin is None:
            return self._norm(node, True, "InstanceNorm", node.input[1:3])
        d = self._x(node)  # statistics per group of channels, over all positions: GroupNorm
        layer = L.Norm(num_features=origin.shape[1], params=self._own(*node.input[1:3]), spatial=True,
                       kind="GroupNorm")
        name = self._emit(node, layer, [d.node])
        self._set(node, name, d.shape, d.roles)
        self.mixed[node.output[0]] = origin

    def _op_GroupNormalization(self, node):
        self._norm(node, True, "GroupNorm", node.input[1:3])

    def _op_LpNormalization(self, node):
        d = self._x(node)
        axis = int(_attrs(node).get("axis", -1)) % d.rank
        if d.roles[axis] not in (_C, _F):
            raise _Unsupported(f"normalisation over axis {_show((d.roles[axis],))}")
        self._norm(node, False, "LpNorm", ())

    # ---------------------------------------------------------------- linear layers
    def _op_Gemm(self, node):
        d = self._x(node)
        a = _attrs(node)
        w = self._dims(node.input[1])
        if d.rank != 2 or int(a.get("transA", 0)) or w is None or len(w) != 2:
            raise _Unsupported("Gemm reads a (batch, features) tensor and a constant weight")
        fin, fout = (w[1], w[0]) if int(a.get("transB", 0)) else w
        bias = len(node.input) > 2 and bool(node.input[2])
        self._own(*node.input[1:])
        name = self._emit(node, L.Linear(fin, fout, bias=bias), [d.node])
        self.global_nodes.add(name)
        self._set(node, name, (d.shape[0], fout), (d.roles[0], _F))

    def _op_MatMul(self, node):
        if node.input[0] in self.scores or (node.input[0] in self.data and node.input[1] in self.data):
            return self._attention(node)
        if node.input[0] not in self.data:
            raise _Unsupported("a constant times data (the data must be the first factor)")
        d = self._x(node)
        w = self._dims(node.input[1])
        if w is None or len(w) != 2:
            raise _Unsupported("MatMul with a constant needs a 2-D weight")
        fin, fout = w
        fused = self.fused_bias.get(node.name or node.output[0])
        self._own(node.input[1], fused[1] if fused else "")
        last = d.roles[-1]
        if last == _C:
            layer = L.Conv(1, in_channels=fin, out_channels=fout, bias=fused is not None)
        elif last == _F and d.rank == 2:
            layer = L.Linear(fin, fout, bias=fused is not None)
        else:
            raise _Unsupported(f"MatMul over axis {_show((last,))}")
        name = self._emit(node, layer, [d.node])
        if isinstance(layer, L.Linear):
            self.global_nodes.add(name)
        out = fused[0] if fused else node
        self.data[out.output[0]] = _Data(name, self._onnx_shape(out.output[0], (*d.shape[:-1], fout)), d.roles)

    # ---------------------------------------------------------------- attention
    def _attention(self, node):
        """``q·kᵀ`` of two token tensors gives pending scores (no node); scaling and a softmax
        over the keys keep them pending; ``scores·v`` is one global :class:`~rfsym.layers.Attention`
        reading q, k and v (a ``"mul"`` merge of them), with ``embed_dim`` q's channels."""
        a, b = node.input[0], node.input[1]
        if a in self.scores:
            q, k = self.scores[a]
            v = self.data.get(b)
            if v is None or not _tokens_last(v, 2):
                raise _Unsupported("attention weights times a tensor that is not (..., tokens, channels)")
            srcs = list(dict.fromkeys(x.node for x in (q, k, v)))
            base = self._name(node)
            embed = _prod(n for n, r in zip(q.shape, q.roles) if r in (_C, _PART))
            if len(srcs) > 1:
                self.names.add(f"{base}.qkv")
                self.nodes.append((f"{base}.qkv", "mul", tuple(srcs)))
                srcs = [f"{base}.qkv"]
            self.nodes.append((base, L.Attention(embed_dim=embed, name=base), srcs[0]))
            self._set(node, base, v.shape, v.roles)
            return
        q, k = self.data[a], self.data[b]
        if not (_tokens_last(q, 2) and _tokens_last(k, 1)):
            raise _Unsupported(f"a product of data tensors with axes {_show(q.roles)} and {_show(k.roles)} "
                               "(rfsym reads attention's q·kᵀ over tokens)")
        self.scores[node.output[0]] = (q, k)

    def _scores_op(self, node):
        """A node reading pending attention scores: scaling or the softmax over the keys."""
        src = next(i for i in node.input if i in self.scores)
        op = node.op_type
        if op in ("Mul", "Div") and all(i == src or self._is_constant(i) for i in node.input) or \
                op in ("Softmax", "Identity", "Dropout", "Cast"):
            if op == "Softmax" and int(_attrs(node).get("axis", -1)) not in (-1, 3):
                raise _Unsupported("softmax of attention scores over another axis than the keys")
            self.scores[node.output[0]] = self.scores[src]
            return
        if op == "MatMul" and node.input[0] == src:
            return self._attention(node)
        raise _Unsupported("attention scores used otherwise than scaled, softmaxed and multiplied by v")

    def _is_constant(self, name):
        return name in self.init or name in self.const

    # ---------------------------------------------------------------- elementwise
    def _unary(self, node):
        d = self._x(node)
        op = node.op_type
        cls = _ELEMENTWISE.get(op)
        if op in ("Identity", "Dropout", "Cast", "CastLike"):
            self.data[node.output[0]] = d
            return
        if op == "PRelu":
            return self._binary(node)
        layer = cls() if cls is not None else L.Elementwise()
        name = self._emit(node, layer, [d.node])
        self._set(node, name, d.shape, d.roles)

    def _op_Clip(self, node):
        d = self._x(node)
        lo = self._const_value(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        hi = self._const_value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        a = _attrs(node)
        lo = a.get("min", lo)
        hi = a.get("max", hi)
        relu6 = lo is not None and hi is not None and float(np.asarray(lo)) == 0 and float(np.asarray(hi)) == 6
        name = self._emit(node, L.ReLU6() if relu6 else L.Elementwise(), [d.node])
        self._set(node, name, d.shape, d.roles)

    def _op_Softmax(self, node):
        d = self._x(node)
        axis = int(_attrs(node).get("axis", -1)) % d.rank
        if d.roles[axis] not in (_C, _F, _PART, _ONE):
            raise _Unsupported(f"softmax over axis {_show((d.roles[axis],))} (attention) is not supported")
        name = self._emit(node, L.Softmax(), [d.node])
        self._set(node, name, d.shape, d.roles)

    _op_LogSoftmax = _op_Softmax

    def _broadcast(self, shapes, roles):
        """Numpy broadcasting of shapes; each axis keeps the role of an operand that is not 1 there."""
        rank = max(len(s) for s in shapes)
        out_shape, out_roles = [], []
        for j in range(rank):
            dims = [(s[j - rank + len(s)], r[j - rank + len(r)]) for s, r in zip(shapes, roles)
                    if j - rank + len(s) >= 0]
            big = [(n, r) for n, r in dims if n != 1]
            named = [(n, r) for n, r in dims if r != _ONE]
            n, r = (big or named or dims)[0]
            out_shape.append(n)
            out_roles.append(r)
        return tuple(out_shape), tuple(out_roles)

    def _binary(self, node):
        op = node.op_type
        datas = [self.data[i] for i in node.input if i in self.data]
        consts = [i for i in node.input if i and i not in self.data]
        if op == "Where":
            raise _Unsupported("Where on data")
        if len(datas) == 1:
            d = datas[0]
            params = self._own(*consts)
            for c in consts:
                value = self._const_value(c)
                if value is not None and np.ndim(value) > d.rank:
                    raise _Unsupported("a constant of higher rank than the data")
            if params:
                layer = L.Params(params, kind=op)
            else:
                layer = L.Elementwise()
            name = self._emit(node, layer, [d.node])
            shapes = [d.shape] + [tuple(_expr(v) for v in np.shape(self._const_value(c))) for c in consts
                                  if self._const_value(c) is not None]
            roles = [d.roles] + [(_ONE,) * len(s) for s in shapes[1:]]
            shape, _ = self._broadcast(shapes, roles)
            if shape != d.shape:
                raise _Unsupported(f"a constant that broadcasts the data to shape {shape}")
            return self._set(node, name, d.shape, d.roles)
        if consts and self._own(*consts):
            raise _Unsupported("parameters combined with several data tensors")
        merge = "add" if op in ("Add", "Sum", "Sub", "Mean", "Max", "Min") else "mul"
        shape, roles = self._broadcast([d.shape for d in datas], [d.roles for d in datas])
        srcs = [d.node for d in datas]
        if len(set(srcs)) == 1:  # x * x, x + x: position-wise on one tensor
            name = self._emit(node, L.Elementwise(), [srcs[0]])
        else:
            name = self._emit(node, merge, srcs)
        self._set(node, name, shape, roles)

    # ---------------------------------------------------------------- merges and splits
    def _op_Concat(self, node):
        axis = int(_attrs(node).get("axis", 0))
        datas = [self.data[i] for i in node.input if i in self.data]
        if len(datas) != len([i for i in node.input if i]):
            raise _Unsupported("concatenation with constants (class tokens) is not supported")
        d = datas[0]
        axis %= d.rank
        if d.roles[axis] != _C:
            raise _Unsupported(f"concatenation along axis {_show((d.roles[axis],))}")
        total = sum((x.shape[axis] for x in datas), sp.Integer(0))
        shape = list(d.shape)
        shape[axis] = total
        if len(datas) == 1:
            self.data[node.output[0]] = d
            return
        name = self._emit(node, "concat", [x.node for x in datas])
        self._set(node, name, shape, d.roles)

    def _op_Split(self, node):
        d = self._x(node)
        a = _attrs(node)
        axis = int(a.get("axis", 0)) % d.rank
        n = d.shape[axis]
        if len(node.input) > 1 and node.input[1]:
            parts = self._ints_of(node.input[1], "split")
        elif "split" in a:
            parts = list(a["split"])
        else:
            k = len(node.output)
            parts = [n / k] * k
        if d.roles[axis] == _N:
            for out in node.output:
                self.data[out] = d
            return
        if d.roles[axis] != _C:
            raise _Unsupported(f"split along axis {_show((d.roles[axis],))}")
        base = self._name(node)
        for j, (out, c) in enumerate(zip(node.output, parts)):
            label = base if j == 0 else f"{base}:{j}"
            self.names.add(label)
            self.nodes.append((label, L.Pointwise(out_channels=c, kind="Split", name=label), d.node))
            shape = list(d.shape)
            shape[axis] = _expr(c)
            self.data[out] = _Data(label, self._onnx_shape(out, shape), d.roles)

    def _op_Gather(self, node):
        d = self._x(node)
        axis = int(_attrs(node).get("axis", 0)) % d.rank
        index = self._const_value(node.input[1])
        if index is None or d.roles[axis] not in (_C, _PART):
            raise _Unsupported(f"gathering along axis {_show((d.roles[axis],))}")
        shape, roles = list(d.shape), list(d.roles)
        if np.ndim(index) == 0:
            del shape[axis], roles[axis]
        else:
            shape[axis:axis + 1] = [_expr(n) for n in np.shape(index)]
            roles[axis:axis + 1] = [_PART] * np.ndim(index)
        channels = _prod(n for n, r in zip(shape, roles) if r in (_C, _PART))
        name = self._emit(node, L.Pointwise(out_channels=channels, kind="Gather"), [d.node])
        self._set(node, name, shape, roles)

    def _op_Slice(self, node):
        d = self._x(node)
        a = _attrs(node)
        if len(node.input) > 1:
            starts = self._ints_of(node.input[1], "starts")
            ends = self._ints_of(node.input[2], "ends")
            axes = self._ints_of(node.input[3], "axes") if len(node.input) > 3 and node.input[3] \
                else list(range(len(starts)))
            steps = self._ints_of(node.input[4], "steps") if len(node.input) > 4 and node.input[4] \
                else [1] * len(starts)
        else:
            starts, ends = list(a["starts"]), list(a["ends"])
            axes = list(a.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        crop = [(sp.Integer(0), sp.Integer(0))] * self.nd
        shape, channels = list(d.shape), None
        for s, e, ax, st in zip(starts, ends, axes, steps):
            ax = int(ax) % d.rank
            n = d.shape[ax]
            if int(st) != 1:
                raise _Unsupported(f"steps {steps}")
            lo = _clamp(int(s), n)
            hi = _clamp(int(e), n)
            role = d.roles[ax]
            shape[ax] = hi - lo
            if isinstance(role, int):
                crop[role] = (lo, n - hi)
            elif role == _C:
                channels = hi - lo
            elif role != _N:
                raise _Unsupported(f"slicing axis {_show((role,))}")
        if channels is not None and any(c != (0, 0) for c in crop):
            raise _Unsupported("slicing channels and spatial axes at once")
        if channels is not None:
            layer = L.Pointwise(out_channels=channels, kind="Slice")
        elif any(c != (0, 0) for c in crop):
            layer = L.Crop(_simple(tuple(crop)))
        else:
            self.data[node.output[0]] = d
            return
        name = self._emit(node, layer, [d.node])
        self._set(node, name, shape, d.roles)

    def _op_Pad(self, node):
        d = self._x(node)
        a = _attrs(node)
        if len(node.input) > 1 and node.input[1]:
            pads = self._ints_of(node.input[1], "pads")
        else:
            pads = list(a.get("pads", []))
        if len(node.input) > 3 and node.input[3]:
            axes = [int(v) % d.rank for v in self._ints_of(node.input[3], "axes")]
        else:
            axes = list(range(d.rank))
        k = len(axes)
        per = [(sp.Integer(0), sp.Integer(0))] * self.nd
        shape = list(d.shape)
        for j, ax in enumerate(axes):
            lo, hi = int(pads[j]), int(pads[j + k])
            role = d.roles[ax]
            if lo == hi == 0:
                continue
            if not isinstance(role, int):
                raise _Unsupported(f"padding axis {_show((role,))}")
            if lo < 0 or hi < 0:
                raise _Unsupported(f"negative pads {pads}")
            per[role] = (sp.Integer(lo), sp.Integer(hi))
            shape[ax] = shape[ax] + lo + hi
        if all(p == (0, 0) for p in per):
            self.data[node.output[0]] = d
            return
        name = self._emit(node, L.Pad(_simple(tuple(per))), [d.node])
        self._set(node, name, shape, d.roles)

    # ---------------------------------------------------------------- resampling
    def _op_Resize(self, node):
        d = self._x(node)
        self._channels_first(d, node.op_type)
        a = _attrs(node)
        scales = sizes = None
        if node.op_type == "Upsample":
            scales = self._const_value(node.input[1]) if len(node.input) > 1 else a.get("scales")
        else:
            if len(node.input) > 2 and node.input[2]:
                scales = self._const_value(node.input[2])
            if len(node.input) > 3 and node.input[3]:
                sizes = self._const_value(node.input[3])
            if (len(node.input) > 2 and node.input[2] and scales is None) or \
                    (len(node.input) > 3 and node.input[3] and sizes is None):
                raise _Unsupported("scales/sizes must be computable from constants and the input's shape")
        if int(a.get("antialias", 0)) or a.get("axes") is not None or \
                _str(a.get("keep_aspect_ratio_policy", "stretch")) != "stretch":
            raise _Unsupported("Resize with antialias, axes or keep_aspect_ratio_policy")
        ins = [d.shape[2 + axis] for axis in range(self.nd)]
        given = [(k, np.asarray(v).reshape(-1)) for k, v in (("scales", scales), ("sizes", sizes))
                 if v is not None and np.size(v)]
        if len(given) > 1:
            raise _Unsupported("Resize with both scales and sizes (ONNX allows one of them)")
        for key, values in given:
            if values.size != 2 + self.nd:
                raise _Unsupported(f"Resize {key} has {values.size} entries, expected {2 + self.nd} (batch, "
                                   "channels and each spatial axis)")
            numbers = [float(v) if sp.sympify(v).is_number else None for v in values.tolist()]  # sizes may be
            if any(v is not None and not (math.isfinite(v) and v > 0) for v in numbers):  # symbolic (from Shape)
                raise _Unsupported(f"Resize {key} must be positive, got {values.tolist()}")
            keeps = (1.0, 1.0) if key == "scales" else tuple(_numeric(n) for n in d.shape[:2])
            if any(v is not None and k is not None and v != k for v, k in zip(numbers[:2], keeps)):
                raise _Unsupported(f"Resize of the batch or channel axis ({key} {values.tolist()})")
        if sizes is not None and np.size(sizes):
            outs = [_expr(np.asarray(sizes).reshape(-1)[2 + axis]) for axis in range(self.nd)]
            factors = [sp.simplify(o / n) for o, n in zip(outs, ins)]
            if not all(f.is_Integer and f >= 1 for f in factors):  # to a size: PyTorch's n/size
                if any(_numeric(v) is None for v in ins + outs):
                    raise _Unsupported("resize to sizes that are not integer multiples needs a static input_shape")
                factors = None
        elif scales is not None and np.size(scales):
            factors = [_scale(float(np.asarray(scales).reshape(-1)[2 + axis])) for axis in range(self.nd)]
            outs = [n * f if f.is_Integer else _floor_size(n, f) for n, f in zip(ins, factors)]
        else:
            raise _Unsupported("neither scales nor sizes given")
        mode = _str(a.get("mode", "nearest"))
        ctm = _str(a.get("coordinate_transformation_mode", "half_pixel" if node.op_type == "Resize" else "asymmetric"))
        if factors is not None and all(f == 1 for f in factors):
            self.data[node.output[0]] = d
            return
        if factors is not None:
            shared = dict(scale_factor=factors[0] if len(set(factors)) == 1 else tuple(factors))
        else:
            shared = dict(size=outs[0] if len(set(outs)) == 1 else tuple(outs))
        if mode == "nearest":
            rounding = _str(a.get("nearest_mode", "round_prefer_floor")) if node.op_type == "Resize" else "floor"
            per_axis = [_nearest_kinds(ctm, rounding, n, o, f) for n, o, f in
                        zip(ins, outs, factors or [None] * self.nd)]
            if None in per_axis:
                raise _Unsupported(f"nearest resize from {ins} to {outs}: more than {_NEAREST_CHECKS:,} output "
                                   "phases to compare with PyTorch's modes")
            kinds = set.intersection(*per_axis)
            if not kinds:
                raise _Unsupported(f"nearest resize with coordinate_transformation_mode={ctm!r}, "
                                   f"nearest_mode={rounding!r} from {ins} to {outs}: output o reads neither "
                                   "input floor(o·scale) nor floor((o + 1/2)·scale) (PyTorch's nearest and "
                                   "nearest-exact, which rfsym models)")
            layer = L.Upsample(mode="nearest" if "nearest" in kinds else "nearest-exact", **shared)
        elif mode in ("linear", "bilinear"):
            if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners") or (
                    ctm == "pytorch_half_pixel" and any(o == 1 and n != 1 for n, o in zip(ins, outs))):
                raise _Unsupported(f"linear resize with coordinate_transformation_mode={ctm!r}")
            layer = L.Upsample(mode="bilinear", align_corners=ctm == "align_corners", **shared)
        else:
            raise _Unsupported(f"mode={mode!r}")
        name = self._emit(node, layer, [d.node])
        self._set(node, name, (d.shape[0], d.shape[1], *outs), d.roles)

    _op_Upsample = _op_Resize

    def _op_DepthToSpace(self, node):
        d = self._x(node)
        self._channels_first(d, node.op_type)
        b = int(_attrs(node)["blocksize"])
        name = self._emit(node, L.PixelShuffle(b), [d.node])
        self._set(node, name, (d.shape[0], d.shape[1] / b**self.nd, *(n * b for n in d.shape[2:])), d.roles)

    def _op_SpaceToDepth(self, node):
        d = self._x(node)
        self._channels_first(d, node.op_type)
        b = int(_attrs(node)["blocksize"])
        name = self._emit(node, L.PixelUnshuffle(b), [d.node])
        self._set(node, name, (d.shape[0], d.shape[1] * b**self.nd, *(sp.floor(n / b) for n in d.shape[2:])),
                  d.roles)

    # ---------------------------------------------------------------- layout
    def _op_Transpose(self, node):
        d = self._x(node)
        perm = _attrs(node).get("perm", list(range(d.rank))[::-1])
        self.data[node.output[0]] = _Data(d.node, tuple(d.shape[p] for p in perm),
                                          tuple(d.roles[p] for p in perm))

    def _axes(self, node, a):
        if len(node.input) > 1 and node.input[1]:
            return [int(v) for v in self._ints_of(node.input[1], "axes")]
        return a.get("axes", None)

    def _op_Unsqueeze(self, node):
        d = self._x(node)
        axes = self._axes(node, _attrs(node))
        rank = d.rank + len(axes)
        shape, roles = list(d.shape), list(d.roles)
        for ax in sorted(int(v) % rank for v in axes):
            shape.insert(ax, sp.Integer(1))
            roles.insert(ax, _ONE)
        self.data[node.output[0]] = _Data(d.node, tuple(shape), tuple(roles))

    def _op_Squeeze(self, node):
        d = self._x(node)
        axes = self._axes(node, _attrs(node))
        axes = [j for j, n in enumerate(d.shape) if n == 1] if axes is None else [int(v) % d.rank for v in axes]
        keep = [j for j in range(d.rank) if j not in axes]
        gone = {d.roles[j] for j in axes}
        if _C in gone:
            raise _Unsupported("squeezing the channel axis")
        self._layout(node, d, tuple(d.shape[j] for j in keep), tuple(d.roles[j] for j in keep),
                     [d.roles[j] for j in axes])

    def _layout(self, node, d, shape, roles, removed):
        """An alias of ``d``; removing size-1 spatial axes makes it global (a Flatten)."""
        if any(isinstance(r, int) for r in removed):
            if any(isinstance(r, int) for r in roles):
                raise _Unsupported(f"removing some spatial axes only ({_show(tuple(removed))})")
            name = self._emit(node, L.Flatten(), [d.node])
            self.global_nodes.add(name)
            self.data[node.output[0]] = _Data(name, shape, tuple(_F if r == _C else r for r in roles))
            return
        self.data[node.output[0]] = _Data(d.node, shape, roles)

    def _op_Flatten(self, node):
        d = self._x(node)
        axis = int(_attrs(node).get("axis", 1)) % max(d.rank, 1)
        if d.roles[:axis] not in ((_N,), (_N, _ONE)) and axis != 1:
            raise _Unsupported(f"flattening from axis {axis} of axes {_show(d.roles)}")
        tail = d.roles[axis:]
        shape = (_prod(d.shape[:axis]), _prod(d.shape[axis:]))
        if not any(isinstance(r, int) or r == _T for r in tail):
            self.data[node.output[0]] = _Data(d.node, shape, (_N, _F if _F in tail else _C))
            return
        name = self._emit(node, L.Flatten(), [d.node])
        self.global_nodes.add(name)
        self.data[node.output[0]] = _Data(name, shape, (_N, _F))

    def _op_Reshape(self, node):
        d = self._x(node)
        target = self._const_value(node.input[1])
        if target is None:
            raise _Unsupported("the target shape must be computable from constants and the input's shape")
        target = [v for v in np.asarray(target).reshape(-1).tolist()]
        allowzero = int(_attrs(node).get("allowzero", 0))
        dims = [d.shape[j] if (v == 0 and not allowzero and j < d.rank) else _expr(v) for j, v in enumerate(target)]
        if any(v == -1 for v in dims):
            known = _prod(v for v in dims if v != -1)
            dims = [sp.simplify(_prod(d.shape) / known) if v == -1 else v for v in dims]
        dims = tuple(self._onnx_shape(node.output[0], dims))
        origin = self.mixed.get(node.input[0])
        if origin is not None and tuple(origin.shape) == dims:  # back from GroupNorm's groups
            self.data[node.output[0]] = _Data(d.node, dims, origin.roles)
            return
        roles = _regroup(d.shape, d.roles, dims, self.nd) if origin is None else None
        if roles is None and origin is None and d.roles[:2] == (_N, _C) and d.rank == 2 + self.nd and \
                len(dims) >= 2 and dims[0] == d.shape[0]:
            # channels and positions mixed, (N, C, H, W) -> (N, G, C/G·H·W): GroupNorm's layout
            self.mixed[node.output[0]] = d
            self.data[node.output[0]] = _Data(d.node, dims, (_N,) + (_MIX,) * (len(dims) - 1))
            return
        if roles is None:
            raise _Unsupported(f"reshape of axes {_show(d.roles)} {tuple(d.shape)} to {dims}")
        before = [r for r in d.roles if isinstance(r, int) and d.shape[d.roles.index(r)] != 1]
        after = [r for r in roles if isinstance(r, int)]
        if before and not after and _T not in roles:
            name = self._emit(node, L.Flatten(), [d.node])
            self.global_nodes.add(name)
            self.data[node.output[0]] = _Data(name, dims, roles)
            return
        self.data[node.output[0]] = _Data(d.node, dims, roles)

    def _op_Expand(self, node):
        d = self._x(node)
        target = self._const_value(node.input[1])
        if target is None:
            raise _Unsupported("the target shape must be a constant")
        shape, roles = self._broadcast([d.shape, tuple(_expr(v) for v in np.asarray(target).reshape(-1))],
                                       [d.roles, (_ONE,) * np.size(target)])
        if tuple(shape) != tuple(d.shape):
            raise _Unsupported(f"expanding {tuple(d.shape)} to {tuple(shape)}")
        self.data[node.output[0]] = d


def _tokens_last(d, position):
    """Whether ``d`` has its tokens ``position`` axes from the end (1: last) and channel axes
    elsewhere after the batch: ``(batch, heads, tokens, dim)`` is ``_tokens_last(d, 2)``."""
    if d.rank < 3:
        return False
    tok = d.roles[-position]
    rest = [r for j, r in enumerate(d.roles) if j != d.rank - position and j != 0]
    return (tok == _T or isinstance(tok, int)) and all(r in (_C, _PART, _ONE) for r in rest)


def _scale(s):
    """An ONNX scale (a float32) as a Rational: the simplest fraction (denominator up to 1000)
    whose float32 is ``s`` (exporters write float32 of the intended factor), else ``s`` itself."""
    if not np.isfinite(s) or s <= 0:
        raise _Unsupported(f"scale {s}")
    simple = Fraction(s).limit_denominator(1000)
    if np.float32(float(simple)) == np.float32(s):
        return sp.Rational(simple.numerator, simple.denominator)
    return sp.Rational(Fraction(repr(s)))


def _floor_size(n, f):
    ni = _numeric(n)
    return sp.Integer(math.floor(ni * float(f))) if ni is not None else sp.floor(n * f)


def _nearest_kinds(ctm, rounding, n, out, factor):
    """The PyTorch nearest modes that read what ONNX's nearest resize reads on one axis, in exact
    arithmetic (a set): ``"nearest"`` (input ``floor(o·scale)``), ``"nearest-exact"``
    (``floor((o + 1/2)·scale)``). ``scale`` is ``1/factor`` or ``n/out``; the outputs
    checked are two periods of the map at each end (every output for ``align_corners``); None
    when that is more than :data:`_NEAREST_CHECKS` outputs."""
    ni, no = _numeric(n), _numeric(out)
    if factor is not None:
        r = 1 / Fraction(int(factor.p), int(factor.q))
        count = 2 * r.denominator if ni is None else no
    elif ni is not None and no is not None:
        r, count = Fraction(ni, no), no
    else:
        return set()
    if ctm == "align_corners" and (ni is None or no is None):
        return set()
    rounds = {"floor": math.floor, "ceil": math.ceil, "round_prefer_floor": lambda x: math.ceil(x - Fraction(1, 2)),
              "round_prefer_ceil": lambda x: math.floor(x + Fraction(1, 2))}
    if rounding not in rounds:
        return set()
    coords = {"asymmetric": lambda o: o * r, "half_pixel": lambda o: (o + Fraction(1, 2)) * r - Fraction(1, 2),
              "pytorch_half_pixel": lambda o: (o + Fraction(1, 2)) * r - Fraction(1, 2) if no != 1 else Fraction(0),
              "align_corners": lambda o: Fraction(o * (ni - 1), no - 1) if no > 1 else Fraction(0)}
    if ctm not in coords:
        return set()
    hi = (ni - 1) if ni is not None else None

    def clamp(i):
        return max(0, i if hi is None else min(i, hi))

    if ctm == "align_corners":
        if count > _NEAREST_CHECKS:
            return None
        outputs = range(count)
    else:  # periodic with period r.denominator between the clamped borders: two periods at each end
        period = r.denominator
        if period > _NEAREST_CHECKS:
            return None
        outputs = sorted(set(range(min(count, 2 * period))) | set(range(max(0, count - 2 * period), count)))
    read = [clamp(rounds[rounding](coords[ctm](o))) for o in outputs]
    kinds = {"nearest": lambda o: math.floor(o * r), "nearest-exact": lambda o: math.floor((o + Fraction(1, 2)) * r)}
    return {kind for kind, fn in kinds.items() if read == [clamp(fn(o)) for o in outputs]}


#: the most outputs (or phases) :func:`_nearest_kinds` compares one by one
_NEAREST_CHECKS = 1 << 16


def _clamp(v, n):
    """ONNX's slice index rule (negative from the end, clamped to ``[0, n]``)."""
    big = 2**62
    if v >= big:
        return n
    if v <= -big:
        return sp.Integer(0)
    if v < 0:
        return sp.Max(n + v, 0)
    ni = _numeric(n)
    return sp.Integer(min(v, ni)) if ni is not None else sp.Min(sp.Integer(v), n)


def _regroup(shape, roles, dims, nd):
    """Axis roles after reshaping ``shape`` to ``dims``: groups of consecutive axes with equal
    products. Splitting or merging channels keeps them channels, merging spatial axes makes
    tokens, merging channels with spatial axes flattens; None when the groups do not line up."""
    src = [(n, r) for n, r in zip(shape, roles)]
    out, i, j = [], 0, 0
    while i < len(src) or j < len(dims):
        gi, gj = [], []
        pi, pj = sp.Integer(1), sp.Integer(1)
        while True:
            if gi and gj and sp.simplify(pi - pj) == 0:
                # absorb trailing size-1 axes on either side
                while i < len(src) and src[i][0] == 1 and (j >= len(dims) or dims[j] != 1):
                    gi.append(src[i])
                    i += 1
                while j < len(dims) and dims[j] == 1 and (i >= len(src) or src[i][0] != 1):
                    gj.append(dims[j])
                    j += 1
                break
            if (not gi or (sp.simplify(pi - pj) != 0 and _less(pi, pj))) and i < len(src):
                gi.append(src[i])
                pi = pi * src[i][0]
                i += 1
            elif j < len(dims):
                gj.append(dims[j])
                pj = pj * dims[j]
                j += 1
            elif i < len(src):
                gi.append(src[i])
                pi = pi * src[i][0]
                i += 1
            else:
                return None
        rs = {r for n, r in gi if n != 1 or r in (_N,)}
        group = _group_roles(rs, gj, nd)
        if group is None:
            return None
        out.extend(group)
    return tuple(out)


def _less(a, b):
    ca, cb = _numeric(a) if a.is_number else None, _numeric(b) if b.is_number else None
    if ca is not None and cb is not None:
        return ca < cb
    return bool(sp.simplify(b / a).is_integer) if a != 0 else True


def _group_roles(rs, gj, nd):
    """Roles of the output axes ``gj`` of one reshape group whose input axes had roles ``rs``
    (None: not expressible)."""
    if not gj:
        return []
    real = [n for n in gj if n != 1]
    if len(gj) == 1 and rs and rs <= {_C, _PART}:
        return [_C]
    if len(gj) == 1 and len(rs) <= 1:
        return [next(iter(rs)) if rs else _ONE]
    if rs <= {_C, _PART, _F}:
        role = _C if _C in rs or _PART in rs else _F
        if len(gj) == 1:
            return [role]
        return [(_PART if role == _C else _F) if n != 1 else _ONE for n in gj]
    if rs and rs <= set(range(nd)) | {_T}:  # positions: merged into tokens, or tokens split back
        if len(real) <= 1:
            return [_T if n != 1 else _ONE for n in gj]
        if rs == {_T} and len(real) == nd:
            axes = iter(range(nd))
            return [next(axes) if n != 1 else _ONE for n in gj]
        return None
    if len(gj) == 1 and _N not in rs:
        return [_F]
    if rs == {_N}:
        return [_N if k == 0 else _ONE for k in range(len(gj))]
    return None


def _show(roles):
    names = {_N: "batch", _C: "channels", _F: "features", _T: "tokens", _ONE: "1", _PART: "channel part",
             _MIX: "channels and positions"}
    return "(" + ", ".join(names.get(r, f"spatial {r}") if not isinstance(r, int) else f"spatial {r}"
                           for r in roles) + ")"
