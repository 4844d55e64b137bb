"""The network as a DAG: nodes are leaf layers and merges, edges are tensors.

Every way of writing a network lowers to one flat DAG (:func:`lower`): a
:class:`~rfsym.layers.Sequential` chains its items; :class:`~rfsym.layers.Residual` and
:class:`~rfsym.layers.Concat` are sub-graphs (their branches read the block's input and meet in
an ``"add"`` or ``"concat"`` merge node named after the block); a :class:`~rfsym.layers.Graph`
contributes its nodes as they are; an integer :class:`~rfsym.layers.Repeat` is unrolled (up to
:data:`UNROLL_LIMIT` repetitions), a symbolic or larger one stays one node solved in closed form.
Lowering is iterative, so nesting depth is limited by :data:`MAX_DEPTH`, not by Python's stack.

Names: a layer's name is its path, ``parent.segment``, where the segment is the layer's own
``name`` or, without one, its index in the Sequential (torchvision's module paths:
``features.0``, ``layer4.2.conv3``); an empty name adds no segment, and so does an unnamed
Graph. Branches of a Residual are ``body`` and ``shortcut``, of a Concat ``branch 0``, ...
Every block's path is also an *alias* of the node that produces its output
(``result.layer("layer4")`` is the last node of the block ``layer4``).

>>> from rfsym import Conv, Residual, Sequential
>>> d = lower(Sequential(Conv(3), Residual(Conv(3, padding=1), name="res")))
>>> [(n.name, n.kind, n.inputs) for n in d.nodes]
[('0', 'Conv', (-1,)), ('res.body.0', 'Conv', (0,)), ('res.shortcut.0', 'Identity', (0,)), ('res', 'Add', (1, 2))]
>>> d.aliases["res.body"]
1
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from . import layers as L
from .errors import GraphError, LayerError

__all__ = ["Node", "Dag", "lower", "UNROLL_LIMIT", "MAX_DEPTH", "INPUT"]

#: integer repeat counts up to this are unrolled; larger ones are solved in closed form
UNROLL_LIMIT = 4096
#: deepest nesting of blocks accepted (the limit layers enforce when they are built)
MAX_DEPTH = L.MAX_NESTING
#: lowering frames per level of nesting (a Residual: the item, its merge, a branch's sequence)
_FRAMES_PER_LEVEL = 3
#: the index standing for the network input in ``Node.inputs``
INPUT = -1

_CONTAINERS = (L.Sequential, L.Residual, L.Concat, L.Graph, L.Repeat)
_MERGE_TYPES = {"add": "Add", "concat": "Concat", "mul": "Mul"}


@dataclass(frozen=True, slots=True)
class Node:
    """One DAG node: a leaf layer (``op`` a Layer) or a merge (``op`` ``"add"``, ``"concat"`` or
    ``"mul"``) reading the nodes ``inputs`` (indices; :data:`INPUT` is the network input). A leaf
    reads one input, except an :class:`~rfsym.layers.Attention` with queries of its own, which
    reads two: ``(source, queries)``.

    ``kind`` is what results call its type (the layer class, a layer's ``kind``, or ``Add``,
    ``Concat``, ``Mul``); ``block`` is the layer a merge comes from and ``branches`` names its
    inputs for messages; ``label`` is a Graph node's own name."""

    index: int
    name: str
    op: Any
    inputs: tuple
    kind: str
    block: Any = None
    branches: tuple = ()
    label: Any = None  # a Graph node's own name, for messages

    @property
    def is_merge(self) -> bool:
        return isinstance(self.op, str)


@dataclass(frozen=True)
class Dag:
    """Nodes in topological order, the output nodes and their names, the reference feature
    node (or None), block aliases (path -> node index) and the nodes whose parameters are
    counted at another node (a Graph's ``shared``)."""

    nodes: tuple
    outputs: tuple
    output_names: tuple
    features: Any = None
    aliases: dict = field(default_factory=dict)
    shared: dict = field(default_factory=dict)  # node index -> the index of the node counting its parameters

    def consumers(self) -> list:
        """For each node, the indices of the nodes reading it."""
        out = [[] for _ in self.nodes]
        for node in self.nodes:
            for u in node.inputs:
                if u != INPUT:
                    out[u].append(node.index)
        return out


def _node_maker():
    """A function building a :class:`Node` from its eight fields (all given, in field order)
    about twice as fast as its frozen ``__init__``: the slots are filled through their own
    descriptors, once each (a Node has no ``__post_init__``; it stays immutable)."""
    new = object.__new__
    s_index, s_name, s_op, s_inputs, s_kind, s_block, s_branches, s_label = (
        getattr(Node, f.name).__set__ for f in dataclasses.fields(Node))

    def make(index, name, op, inputs, kind, block, branches, label):
        node = new(Node)
        s_index(node, index)
        s_name(node, name)
        s_op(node, op)
        s_inputs(node, inputs)
        s_kind(node, kind)
        s_block(node, block)
        s_branches(node, branches)
        s_label(node, label)
        return node

    return make


_make_node = _node_maker()


def _join(path, segment):
    return f"{path}.{segment}" if path and segment else (path or segment)


def kind_of(layer) -> str:
    """The type a result shows for a leaf layer: its ``kind`` when it has one, else its class."""
    kind = getattr(layer, "kind", None)
    return kind if isinstance(kind, str) else type(layer).__name__


class _Lowering:
    def __init__(self):
        self.nodes: list[Node] = []
        self.aliases: dict = {}
        self.shared: dict = {}  # node index -> the node holding its parameters
        self.features = None
        self.outputs = None
        self.kinds: dict = {}  # id(layer) -> kind_of(layer), for layers used many times
        self.several_outputs = False  # whether some Graph with several outputs was lowered

    def add(self, name, op, inputs, kind, block=None, branches=(), label=None):
        index = len(self.nodes)
        self.nodes.append(_make_node(index, name, op, tuple(inputs), kind, block, tuple(branches), label))
        return index

    def kind(self, layer):
        """``kind_of(layer)``, computed once per layer object (layers are used many times)."""
        kind = self.kinds.get(id(layer))
        if kind is None:
            kind = self.kinds[id(layer)] = kind_of(layer)
        return kind

    def alias(self, path, index):
        if path and index != INPUT:
            self.aliases[path] = index

    # each method is a generator: ``yield (method, args)`` lowers a sub-block and returns the
    # index of the node that produces its output (run() drives them without recursion)
    def sequence(self, seq, x, path):
        containers = _CONTAINERS
        for i, layer in enumerate(seq.layers):
            if isinstance(layer, L.Graph) and layer.name is None:
                label = path
            else:
                segment = str(i) if layer.name is None else layer.name
                label = f"{path}.{segment}" if path and segment else (path or segment)
            if isinstance(layer, containers):
                x = yield (self.item, (layer, x, label))
            else:  # a leaf: no sub-generator
                x = self.add(label, layer, (x,), self.kind(layer))
        self.alias(path, x)
        return x

    def item(self, layer, x, label):
        if isinstance(layer, L.Sequential):
            return (yield (self.sequence, (layer, x, label)))
        if isinstance(layer, L.Residual):
            return (yield (self.merge, (layer, x, label, "add",
                                        [("body", layer.body), ("shortcut", layer.shortcut)])))
        if isinstance(layer, L.Concat):
            return (yield (self.merge, (layer, x, label, "concat",
                                        [(f"branch {b}", br) for b, br in enumerate(layer.branches)])))
        if isinstance(layer, L.Graph):
            return (yield (self.graph, (layer, x, label)))
        if isinstance(layer, L.Repeat):
            n = sp.sympify(layer.n)
            if n.is_Integer and int(n) <= UNROLL_LIMIT:
                return (yield (self.sequence, (layer.unrolled(), x, label)))
        return self.add(label, layer, (x,), kind_of(layer))

    def merge(self, layer, x, label, op, parts):
        ins, names = [], []
        for part, branch in parts:
            seq = branch if isinstance(branch, L.Sequential) else L.Sequential(branch)
            own = seq.name
            path = _join(label, part if own is None else own)
            ins.append((yield (self.sequence, (seq, x, path))))
            names.append(f"{type(layer).__name__}{f' {layer.name!r}' if layer.name else ''} {part}")
        out = self.add(label, op, ins, _MERGE_TYPES[op], layer, names)
        return out

    def graph(self, g, x, path):
        where = {"input": x}
        self.several_outputs = self.several_outputs or len(g.outputs) > 1
        containers = _CONTAINERS
        aliases = self.aliases
        nodes = self.nodes
        kinds = self.kinds
        make = _make_node
        for name, op, inputs in g.nodes:
            label = f"{path}.{name}" if path else name
            kind = kinds.get(id(op))  # a leaf met before (the kinds are of leaves only): no type test
            if kind is None and isinstance(op, str):
                ins = [where[u] for u in inputs]
                where[name] = self.add(label, op, ins, _MERGE_TYPES[op], g,
                                       [f"node {u!r}" for u in inputs])
            elif kind is None and isinstance(op, containers):
                where[name] = yield (self.item, (op, where[inputs[0]], label))
            else:  # one input (an Attention may read two: source, queries)
                if kind is None:
                    kind = self.kind(op)
                index = len(nodes)
                ins = (where[inputs[0]],) if len(inputs) == 1 else tuple([where[u] for u in inputs])
                nodes.append(make(index, label, op, ins, kind, None, (), name))
                where[name] = aliases[label] = index  # (self.alias, inlined: a node is never the input)
                continue
            index = where[name]
            if index != INPUT:  # self.alias, inlined (label is never empty)
                aliases[label] = index
        if g.features is not None:
            self.features = where[g.features]
        self.shared.update((where[node], where[owner]) for node, owner in g.shared)
        self.alias(path, where[g.outputs[0]])
        self.last_graph = (g, [where[o] for o in g.outputs], [_join(path, o) for o in g.outputs])
        return where[g.outputs[0]]


def lower(net: L.Layer) -> Dag:
    """The DAG of a network (any layer; a Sequential, Graph, nested blocks).

    Args:
        net: an rfsym layer.

    Returns:
        The :class:`Dag`: nodes in topological order, outputs, features node and aliases.

    Raises:
        LayerError: nesting deeper than :data:`MAX_DEPTH`.
        GraphError: a Graph with several outputs that is not the whole network.
    """
    low = _Lowering()
    low.last_graph = None
    top = net if isinstance(net, L.Sequential) else L.Sequential(net, name="")
    whole = _whole_graph(top)
    stack = [low.sequence(top, INPUT, "")]
    value = None
    while stack:
        try:
            fn, args = stack[-1].send(value)
        except StopIteration as stop:
            stack.pop()
            value = stop.value
            continue
        if len(stack) > _FRAMES_PER_LEVEL * (MAX_DEPTH + 2):
            raise LayerError(f"the network nests blocks more than {MAX_DEPTH} levels deep",
                             where="analyze", param="net")
        stack.append(fn(*args))
        value = None
    outputs, names = (value,), ("output",)
    if whole is not None:
        _, idx, labels = low.last_graph
        outputs, names = tuple(idx), tuple(labels)
    elif low.several_outputs:  # (every Graph the check visits was lowered)
        _check_single_outputs(net)
    return _compact(low.nodes, outputs, names, low.features, low.aliases, low.shared)


def _whole_graph(top):
    """The Graph that is the whole network (alone in the top-level Sequential), or None."""
    if len(top.layers) == 1 and isinstance(top.layers[0], L.Graph):
        return top.layers[0]
    return None


def _check_single_outputs(net):
    stack = [net]
    while stack:
        layer = stack.pop()
        if isinstance(layer, L.Graph):
            if len(layer.outputs) > 1:
                label = f"Graph {layer.name!r}" if layer.name else "Graph"
                raise GraphError(f"{label}: a graph with several outputs ({', '.join(layer.outputs)}) "
                                 "must be the whole network")
            stack.extend(op for _, op, _ in layer.nodes if not isinstance(op, str))
        elif isinstance(layer, L.Sequential):
            stack.extend(layer.layers)
        elif isinstance(layer, L.Residual):
            stack.extend((layer.body, layer.shortcut))
        elif isinstance(layer, L.Concat):
            stack.extend(layer.branches)


def _compact(nodes, outputs, names, features, aliases, shared):
    """Keep the nodes some output (or the features node) depends on, renumbered in order."""
    keep = [False] * len(nodes)
    for v in (*outputs, features):
        if v is not None and v != INPUT:
            keep[v] = True
    for v in range(len(nodes) - 1, -1, -1):  # inputs come before their readers
        if keep[v]:
            for u in nodes[v].inputs:
                if u != INPUT:
                    keep[u] = True
    if all(keep):
        return Dag(tuple(nodes), tuple(outputs), tuple(names), features, aliases, shared)
    new = {INPUT: INPUT}
    out = []
    for node in nodes:
        if keep[node.index]:
            new[node.index] = len(out)
            out.append(dataclasses.replace(node, index=len(out), inputs=tuple(new[u] for u in node.inputs)))
    return Dag(tuple(out), tuple(new[o] for o in outputs), tuple(names),
               None if features is None else new[features],
               {path: new[i] for path, i in aliases.items() if i in new},
               {new[i]: new[o] for i, o in shared.items() if i in new and o in new})
