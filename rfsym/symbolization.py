r"""What-if on any network: replace an imported network's numbers by symbols.

:func:`symbolize` takes a network (an imported :class:`~rfsym.layers.Graph` whose nodes are named
by module paths, or any nested Sequential/Residual/Concat tree) and returns a **new** network in
which *rules* replace kernel sizes, strides, dilations, paddings and channel counts by symbols or
expressions, and *depth* entries replace runs of identical blocks by a symbolic
:class:`~rfsym.layers.Repeat`. The original is never modified.

**Rules.** A rule selects layers by a glob on their node names (:mod:`fnmatch`: ``*`` matches
any text, dots included; ``"layer4.*.conv2"``) and/or by type (a layer class such as
:class:`rfsym.Conv`, or a type name such as ``"Conv"``), and sets attributes. Give rules as a
dict ``{pattern: {attribute: value}}``, as :class:`Rule` objects, or a list of either; they
apply in order, each to the result of the previous ones. A value is

* a number or a sympy expression (``k``, ``2*k + 1``): the new value (per axis: one value for
  every axis, or a tuple);
* a function of the current value (``lambda c: w*c``), applied per axis to per-axis attributes;
* ``"keep"`` for ``padding``: 'same'-style padding ``dilation·(kernel - 1)/2`` recomputed from the
  layer's new kernel and dilation (the layer must have such padding, or ``padding='same'`` /
  ``'tf_same'``, which are kept as they are). This is also what happens when a rule changes the
  kernel or dilation of a layer with 'same'-style padding and does not set ``padding``; set it
  (``padding=1``) to fix the number instead.

Channels follow: when a rule changes a layer's ``out_channels`` (a width multiplier
``lambda c: w*c``), every layer downstream reads the new count: convolutions' ``in_channels``,
depthwise convolutions' ``groups`` and ``out_channels``, ``BatchNorm``/``Norm`` ``num_features``
(an explicit ``Norm`` parameter count, ``Params`` counts, ``Attention`` ``embed_dim`` and a
flattening ``Linear``'s ``in_features`` scale with the channels), through additions, products
and concatenations.

**Depth.** ``depth={"layer3": n}`` finds, under the module path ``layer3``, its numbered
children (``layer3.0``, ``layer3.1``, ...; also ``denselayer1``, ``blocks.0``) and the run of
identical blocks that ends the sequence (torchvision's stages: ``layer3.0`` downsamples,
``layer3.1`` .. ``layer3.5`` are identical); the run becomes one node ``layer3.rest``, a
``Repeat`` of the block ``n - first`` times, where ``first`` counts the blocks before the run, so
``n`` is the number of blocks of the stage. A path whose own children are not blocks may name
an ancestor of exactly one such sequence (timm's ``stages.2`` for ``stages.2.blocks``).
A DenseNet block is a run too: dense layer ``j`` reads the concatenation of the block's input and
layers ``1 .. j-1`` and its input channels grow by the growth rate, so the block becomes
``Repeat(x -> concat(x, layer_i(x)), n)`` whose layer's channels are affine in the repetition
index ``i``; the channels of what follows the block follow its depth (a transition that halves
them needs a rule saying so). :func:`repeats` lists the runs.

The result is an unnamed :class:`~rfsym.layers.Graph` whose nodes keep the original node names
(a name that occurs several times in a nested network keeps it on its last occurrence, the one
``result.layer`` finds, and gets ``#1``, ``#2``, ... on the earlier ones); the paths of nested
blocks (``layer4``) become ``Identity`` nodes, as the importers write them, so
``result.layer("layer4")`` still works.

>>> import rfsym
>>> from rfsym import Conv, ReLU, Sequential, symbols
>>> net = Sequential(Conv(3, padding=1, in_channels=3, out_channels=8, name="a"), ReLU(name="r"),
...                  Conv(3, padding=1, in_channels=8, out_channels=8, name="b"))
>>> k, w = symbols("k w")
>>> new = symbolize(net, {"b": {"kernel_size": k, "padding": "keep"}, "*": {"out_channels": lambda c: w*c}},
...                 input_size=16)
>>> r = rfsym.analyze(new, input_size=16)
>>> r.rf, r.out_size, r.params
(k + 2, 16, 8*w*(8*k**2*w + 29))
>>> r.subs({k: 3, w: 1}).params == rfsym.analyze(net, input_size=16).params
True
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from dataclasses import dataclass
from typing import Any

import sympy as sp

from . import layers as L
from .dag import INPUT, lower
from .errors import GraphError, LayerError, RfsymError, SizeError

__all__ = ["symbolize", "repeats", "Rule", "Run", "KEEP"]

#: the padding value that keeps 'same'-style padding as the kernel changes
KEEP = "keep"

#: attributes given per spatial axis (a function applies to each axis)
_PER_AXIS = ("kernel_size", "stride", "dilation", "padding", "output_padding", "window", "shift",
             "scale_factor", "output_size")
#: values tried for the new symbols when looking for a merge a rule breaks
_PROBES = (2, 3, 5)
#: input size of those probes when symbolize is not given one
_PROBE_SIZE = 224


# =========================================================================== rules
@dataclass(frozen=True, init=False)
class Rule:
    """Select layers and set attributes.

    Args:
        pattern: a glob on node names (``"layer4.*.conv2"``; default ``"*"``, every node).
        type: a layer class (or a tuple of classes), or a type name (``"Conv"``, a ``Norm``'s
            ``kind``), or None for any type.
        **attrs: attribute -> a value, a function of the current value, or ``"keep"`` (padding).

    >>> from rfsym import Conv, symbols
    >>> Rule("layer4.*.conv2", kernel_size=symbols("k"), padding="keep")
    Rule('layer4.*.conv2', kernel_size=k, padding='keep')
    >>> Rule(type=Conv, out_channels=lambda c: 2 * c).matches("x", Conv(3))
    True
    """

    pattern: str
    type: Any
    attrs: tuple

    def __init__(self, pattern: str = "*", type: Any = None, **attrs):
        if not isinstance(pattern, str) or not pattern:
            raise LayerError(f"a rule's pattern must be a non-empty glob on node names, got {pattern!r}",
                             where="Rule", param="pattern")
        if not attrs:
            raise LayerError(f"rule {pattern!r} sets no attribute (give attribute=value)", where="Rule",
                             param="attrs")
        kinds = type if isinstance(type, tuple) else (type,)
        if type is not None and not all(isinstance(t, str) or (isinstance(t, _builtin_type) and issubclass(t, L.Layer))
                                        for t in kinds):
            raise LayerError(f"rule {pattern!r}: type must be a layer class, a type name or a tuple of them, "
                             f"got {type!r}", where="Rule", param="type")
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "attrs", tuple(attrs.items()))

    def matches(self, name: str, layer) -> bool:
        """Whether the rule selects the node ``name`` holding ``layer``."""
        if not fnmatch.fnmatchcase(name, self.pattern):
            return False
        return self.type is None or _is(layer, self.type)

    def __repr__(self):
        parts = [repr(self.pattern)]
        if self.type is not None:
            parts.append(f"type={_type_name(self.type)}")
        parts += [f"{k}={_show(v)}" for k, v in self.attrs]
        return f"Rule({', '.join(parts)})"


_builtin_type = type


def _is(layer, t):
    """Whether ``layer`` is of the type ``t`` (a class, a type name or ``kind``, or a tuple of them)."""
    if isinstance(t, tuple):
        return any(_is(layer, x) for x in t)
    if isinstance(t, str):
        return t in (_builtin_type(layer).__name__, getattr(layer, "kind", None))
    return isinstance(layer, t)


def _type_name(t):
    if isinstance(t, tuple):
        return "(" + ", ".join(map(_type_name, t)) + ")"
    return t if isinstance(t, str) else getattr(t, "__name__", repr(t))


def _show(v):
    if callable(v) and not isinstance(v, sp.Basic):
        return getattr(v, "__name__", "function")
    return repr(v) if isinstance(v, str) else str(v)


def _rules(rules) -> list:
    """The rules as a list of :class:`Rule`."""
    if rules is None:
        return []
    if isinstance(rules, (Rule, dict)):
        rules = [rules]
    out = []
    for item in rules:
        if isinstance(item, Rule):
            out.append(item)
        elif isinstance(item, dict):
            for pattern, attrs in item.items():
                if not isinstance(attrs, dict):
                    raise LayerError(f"rule {pattern!r}: give {{attribute: value}}, got {attrs!r}",
                                     where="symbolize", param="rules")
                out.append(Rule(pattern, **attrs))
        else:
            raise LayerError(f"rules are a dict {{pattern: {{attribute: value}}}} or Rule objects, got {item!r}",
                             where="symbolize", param="rules")
    return out


# =========================================================================== the flat network
@dataclass
class _Node:
    name: str  # unique node name
    path: str  # the name the network gave it (patterns match this)
    op: Any  # a layer or a merge ("add", "concat", "mul")
    inputs: tuple  # node names ("input" for the network input)


class _Flat:
    """The network as named nodes in topological order (block paths as Identity nodes), with
    ``(node, owner)`` pairs of nodes that use another node's parameters."""

    def __init__(self, nodes, outputs, features, shared=()):
        self.nodes, self.outputs, self.features, self.shared = nodes, outputs, features, shared

    @classmethod
    def of(cls, net):
        d = lower(net)
        total, seen, names = {}, {}, []
        for n in d.nodes:
            total[n.name] = total.get(n.name, 0) + 1
        for n in d.nodes:
            seen[n.name] = seen.get(n.name, 0) + 1
            names.append(n.name if seen[n.name] == total[n.name] or not n.name else f"{n.name}#{seen[n.name]}")
        names = [nm or f"node {i}" for i, nm in enumerate(names)]
        used = set(names)
        chains = {}  # node index -> alias paths, innermost first
        for path, i in sorted(d.aliases.items(), key=lambda kv: -kv[0].count(".")):
            if path not in used:
                chains.setdefault(i, []).append(path)
                used.add(path)
        label = {INPUT: "input", **dict(enumerate(names))}
        nodes, outer = [], {}
        for n in d.nodes:
            ins = tuple(_reader_view(label[u], chains.get(u, ()), n.name) for u in n.inputs)
            nodes.append(_Node(names[n.index], n.name, n.op, ins))
            prev = names[n.index]
            for path in chains.get(n.index, ()):
                nodes.append(_Node(path, path, L.Identity(), (prev,)))
                prev = path
            outer[n.index] = prev
        outputs = tuple(outer[o] if o != INPUT else "input" for o in d.outputs)
        features = None if d.features is None else names[d.features]
        return cls(nodes, outputs, features, tuple((names[i], names[o]) for i, o in d.shared.items()))

    def graph(self) -> L.Graph:
        names = {n.name for n in self.nodes}  # (a pair folded into a repeated block is gone)
        return L.Graph(*[(n.name, n.op, n.inputs) for n in self.nodes], outputs=self.outputs,
                       features=self.features, shared=[p for p in self.shared if names.issuperset(p)])

    def copy(self):
        return _Flat([dataclasses.replace(n) for n in self.nodes], self.outputs, self.features, self.shared)


def _inside(name, path):
    return name == path or name.startswith(path + ".")


def _reader_view(target, chain, reader):
    """The name a reader uses for ``target``: its outermost alias that does not contain the reader."""
    best = target
    for path in chain:
        if _inside(reader, path):
            break
        best = path
    return best


# =========================================================================== applying rules
def _where(rule, node):
    return f"rule {rule!r} at {node.name!r} ({type(node.op).__name__})"


def _apply(rule, node, original, set_attrs):
    """Set the rule's attributes on one node's layer (``original``: its layer before any rule)."""
    layer = node.op
    fields = {f.name for f in dataclasses.fields(layer) if f.name != "name"}
    changes, keep = {}, False
    for attr, value in rule.attrs:
        if attr not in fields:
            raise LayerError(f"{type(layer).__name__} has no attribute {attr!r} (it has: "
                             f"{', '.join(sorted(fields)) or 'none'})", where=_where(rule, node), param=attr)
        if attr == "padding" and isinstance(value, str) and value == KEEP:
            keep = True
            continue
        old = getattr(layer, attr)
        if callable(value) and not isinstance(value, sp.Basic):
            if old is None:
                raise LayerError(f"{attr} is not given on this layer, so there is no value to transform",
                                 where=_where(rule, node), param=attr)
            try:
                new = tuple(value(v) for v in old) if isinstance(old, tuple) and attr in _PER_AXIS else value(old)
            except (TypeError, ValueError, ArithmeticError) as err:
                raise LayerError(f"the function given for {attr} failed on {old}: {err}",
                                 where=_where(rule, node), param=attr) from None
        else:
            new = value
        changes[attr] = new
        set_attrs.add(attr)
    if not keep and "padding" not in set_attrs and {"kernel_size", "dilation"} & set(changes):
        keep = _is_same_style(original)  # the default: 'same'-style padding stays 'same'
    try:
        layer = dataclasses.replace(layer, **changes) if changes else layer
        if keep:
            layer = dataclasses.replace(layer, padding=_kept_padding(original, layer))
            set_attrs.add("padding")
    except LayerError as err:
        raise LayerError(err.detail, where=_where(rule, node), param=err.param) from None
    except (TypeError, ValueError, sp.SympifyError) as err:  # an unusable value
        raise LayerError(f"invalid value: {err}", where=_where(rule, node)) from None
    node.op = layer


def _axes(layer):
    sizes = {len(v) for a in ("kernel_size", "dilation", "padding")
             if isinstance(v := getattr(layer, a, None), tuple)}
    return max(sizes) if sizes else None


def _same_style(layer, nd):
    """Per-axis 'same'-style paddings ``d(k - 1)/2`` of a windowed layer."""
    ks = L.per_axis(layer.kernel_size, nd or 1, "kernel_size", layer)
    ds = L.per_axis(getattr(layer, "dilation", sp.Integer(1)), nd or 1, "dilation", layer)
    return tuple(d * (k - 1) / 2 for k, d in zip(ks, ds))


def _is_same_style(layer):
    """Whether a windowed layer has numeric 'same'-style padding ``d(k - 1)/2`` on every axis."""
    if not isinstance(layer, L.Windowed) or isinstance(layer.padding, str):
        return False
    try:
        _kept_padding(layer, layer)
    except LayerError:
        return False
    return True


def _kept_padding(old, new):
    """The padding ``keep`` gives ``new`` (``old`` before the rule)."""
    if not isinstance(old, L.Windowed):
        raise LayerError(f"padding='keep' applies to convolutions and pools, not {type(old).__name__}",
                         param="padding")
    if isinstance(old.padding, str):
        if old.padding in ("same", "tf_same"):
            return old.padding
        raise LayerError("padding='keep' keeps 'same'-style padding, but this layer has padding='valid'",
                         param="padding")
    nd = _axes(old) or _axes(new)
    pads = L.per_axis(old.padding, nd or 1, "padding", old)
    for p, want in zip(pads, _same_style(old, nd)):
        if any(sp.expand(q - want) != 0 for q in (p if isinstance(p, tuple) else (p,))):
            raise LayerError(f"padding='keep' keeps 'same'-style padding dilation*(kernel - 1)/2, but this "
                             f"layer has padding {old.padding} with kernel_size {old.kernel_size}", param="padding")
    out = _same_style(new, _axes(new) or nd)
    return out[0] if len(set(out)) == 1 and (nd is None or _axes(new) is None) else out


def _apply_rules(flat, rules):
    """Apply the rules in order (on ``flat``, in place); returns node -> attributes set."""
    set_attrs, originals = {}, {n.name: n.op for n in flat.nodes}
    for rule in rules:
        hits = [n for n in flat.nodes if not isinstance(n.op, str) and rule.matches(n.path, n.op)]
        if not hits:
            close = sorted({n.path for n in flat.nodes if _near(n.path, rule.pattern)})[:5]
            hint = f" (names like it: {', '.join(close)})" if close else ""
            kind = "" if rule.type is None else f" of type {_type_name(rule.type)}"
            raise LayerError(f"the pattern matches no node{kind}{hint}", where=f"rule {rule!r}", param="pattern")
        able = [n for n in hits if all(_has(n.op, attr) for attr, _ in rule.attrs)]
        for n in able or hits[:1]:  # a glob may match layers without the attribute: only none is an error
            _apply(rule, n, originals[n.name], set_attrs.setdefault(n.name, set()))
    return set_attrs


def _has(layer, attr):
    return attr != "name" and attr in {f.name for f in dataclasses.fields(layer)}


def _near(name, pattern):
    stem = re.split(r"[*?\[]", pattern)[0].rstrip(".")
    return bool(stem) and (name.startswith(stem.rsplit(".", 1)[0]) or stem in name)


# =========================================================================== channels follow
def _channels(op, c_in):
    """Output channels of a node's layer given its input channels (None: unknown)."""
    if isinstance(op, (L.Conv, L.ConvTranspose, L.Pointwise)):
        return op.out_channels if op.out_channels is not None else c_in
    if isinstance(op, L.Linear):
        return op.out_features
    return c_in


def _follow(flat, old_ops, set_attrs, old_channels, repeats=None):
    """Update the layers downstream of a channel change (in place). ``old_ops``: node -> its layer
    before the change; ``old_channels``: node -> its channels before; ``repeats``: Repeat nodes
    made by a depth entry (their output channels are derived)."""
    new_c = {"input": old_channels.get("input")}
    for node in flat.nodes:
        if isinstance(node.op, str):
            ins = [new_c[u] for u in node.inputs]
            olds = [old_channels[u] for u in node.inputs]
            if node.op == "concat":
                new_c[node.name] = None if any(c is None for c in ins) else sum(ins[1:], ins[0])
            else:
                wide = [c for c, o in zip(ins, olds) if o is not None and o != 1]
                new_c[node.name] = wide[0] if wide else ins[0]
            continue
        c_old, c_new = old_channels[node.inputs[0]], new_c[node.inputs[0]]
        if node.name in (repeats or ()):
            new_c[node.name] = _repeat_channels(node.op, c_new)
            continue
        if c_old is not None and c_new is not None and sp.expand(c_new - c_old) != 0:
            node.op = _followed(node, old_ops.get(node.name, node.op), c_old, c_new, set_attrs.get(node.name, set()))
        out_old = old_channels[node.name]
        explicit = isinstance(node.op, (L.Conv, L.ConvTranspose, L.Pointwise)) and node.op.out_channels is not None
        if explicit or isinstance(node.op, L.Linear):
            new_c[node.name] = _channels(node.op, c_new)
        elif out_old is None or c_old is None or c_new is None:
            new_c[node.name] = out_old
        else:
            new_c[node.name] = out_old * c_new / c_old
    return new_c


def _repeat_channels(rep, c_in):
    """Output channels of a Repeat node reading ``c_in`` channels (None: unknown)."""
    from .engine import analyze

    return analyze(rep, in_channels=c_in).out_channels if c_in is not None else None


def _followed(node, old, c_old, c_new, fixed):
    """``node.op`` reading ``c_new`` channels instead of ``c_old``."""
    op, ratio = node.op, c_new / c_old
    changes = {}

    def scale(attr):
        v = getattr(op, attr)
        if v is not None and attr not in fixed:
            changes[attr] = v * ratio

    if isinstance(op, (L.Conv, L.ConvTranspose)):
        if op.in_channels is not None and "in_channels" not in fixed:
            changes["in_channels"] = c_new
        if sp.sympify(old.groups) == c_old and c_old != 1 and "groups" not in fixed:  # depthwise
            changes["groups"] = c_new
            scale("out_channels")
    elif isinstance(op, (L.BatchNorm, L.Norm)):
        if op.num_features is not None and "num_features" not in fixed:
            changes["num_features"] = c_new
        if isinstance(op, L.Norm):
            scale("params")
    elif isinstance(op, L.Linear):
        scale("in_features")
    elif isinstance(op, L.Attention):
        scale("embed_dim")
    elif isinstance(op, L.Params):
        scale("count")
    elif isinstance(op, L.Pointwise):
        if (op.params != 0 or op.macs != 0) and not {"params", "macs"} & fixed:
            raise LayerError(f"its input channels change from {c_old} to {c_new}, and its parameters and "
                             f"MACs cannot follow (set them with a rule)", where=f"node {node.name!r} (Pointwise)",
                             param="in_channels")
        if op.out_channels is not None and op.out_channels != 1:
            scale("out_channels")
    elif isinstance(op, (L.Repeat, L.Sequential, L.Graph, L.Residual, L.Concat)):
        raise LayerError(f"its input channels change from {c_old} to {c_new}; channels cannot follow into a "
                         f"{type(op).__name__} node", where=f"node {node.name!r}", param="in_channels")
    return dataclasses.replace(op, **changes) if changes else op


def _channel_table(flat, input_size):
    """Every node's output channels in ``flat`` (by analysing it; None where unknown)."""
    from .engine import analyze

    try:
        r = analyze(flat.graph(), input_size=input_size)
    except LayerError as err:  # a layer that needs the input size (adaptive pooling, TensorFlow SAME)
        raise LayerError(f"to let channels follow, the network is analysed, which needs input_size here: {err}",
                         where="symbolize", param="input_size") from None
    table = {"input": r.in_channels}
    names = {lr.name: lr.out_channels for lr in r.layers}
    for n in flat.nodes:
        table[n.name] = names.get(n.name)
    return table


# =========================================================================== depth
@dataclass(frozen=True)
class Run:
    """A run of identical blocks ending a numbered sequence (see :func:`repeats`).

    Attributes:
        path: the sequence's path (``layer3``).
        count: the number of identical blocks in the run (5 for ResNet-50's ``layer3``).
        first: the number of blocks before the run (1: ``layer3.0`` differs).
        blocks: the paths of the run's blocks (``layer3.1`` .. ``layer3.5``).
    """

    path: str
    count: int
    first: int
    blocks: tuple


_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _sequences(flat):
    """Path -> [(number, block path)] for every numbered child segment (``layer3.2``, ``denselayer4``)."""
    seqs = {}
    for n in flat.nodes:
        parts = n.path.split(".")
        for j in range(1, len(parts) + 1):
            m = _NUMBERED.match(parts[j - 1])
            if m:
                parent = ".".join(parts[:j - 1])
                seqs.setdefault((parent, m.group(1)), set()).add((int(m.group(2)), ".".join(parts[:j])))
    return {key: sorted(v) for key, v in seqs.items() if len(v) >= 2}


def _block(flat, path):
    """(nodes, input name, output name) of the block ``path``, or None when it is not a
    single-input single-output piece of the graph."""
    nodes = [n for n in flat.nodes if _inside(n.path, path)]
    names = {n.name for n in nodes}
    ext = {u for n in nodes for u in n.inputs if u not in names}
    read_outside = {u for n in flat.nodes if n.name not in names for u in n.inputs if u in names}
    read_outside |= {o for o in (*flat.outputs, flat.features) if o in names}
    if len(ext) != 1 or len(read_outside) != 1 or len(nodes) < 2:
        return None
    return nodes, ext.pop(), read_outside.pop()


def _signature(block, path):
    nodes, source, out = block
    rel = {n.name: _relative(n.name, path) for n in nodes}
    rel[source] = "input"
    items = tuple((rel[n.name], _anonymous(n.op), tuple(rel[u] for u in n.inputs)) for n in nodes)
    return items, rel[out]


def _relative(name, path):
    return "(block)" if name == path else name[len(path) + 1:]


def _anonymous(op):
    if isinstance(op, str) or op.name is None or isinstance(op, (L.Sequential, L.Graph, L.Concat, L.Repeat)):
        return op
    return dataclasses.replace(op, name=None)


@dataclass
class _Site:
    """Where a run is and what replaces it: the nodes dropped, the node read before the run
    (``source``) and the node whose readers read the Repeat instead (``last``); the block."""

    run: Run
    drop: set
    source: str
    last: str
    items: tuple
    out: str
    index: Any = None


def _runs(flat):
    """Every trailing run of identical blocks, and every dense run, as :class:`_Site`."""
    out = []
    for (parent, _stem), children in _sequences(flat).items():
        blocks = [(p, _block(flat, p)) for _, p in children]
        dense = _dense(flat, parent, blocks)
        if dense is not None:
            out.append(dense)
            continue
        k = len(blocks) - 1
        if blocks[k][1] is None:
            continue
        sig = _signature(blocks[k][1], blocks[k][0])
        while k > 0 and blocks[k - 1][1] is not None and _signature(blocks[k - 1][1], blocks[k - 1][0]) == sig \
                and blocks[k][1][1] == blocks[k - 1][1][2]:
            k -= 1
        count = len(blocks) - k
        if count == 1 and k == 0:
            continue
        if count == 1 and (_stem or len(blocks[k][1][0]) < 3):
            continue  # one block after different ones: a stage only among indexed blocks (layer2.1)
        run = Run(parent, count, k, tuple(p for p, _ in blocks[k:]))
        drop = {nd.name for _, b in blocks[k:] for nd in b[0]}
        out.append(_Site(run, drop, blocks[k][1][1], blocks[-1][1][2], *sig))
    # a lone block holding a run itself is a stage among different stages (timm's stages.3), not a run
    return [x for x in out if x.run.count > 1 or not any(_inside(y.run.path, x.run.blocks[0]) for y in out)]


def _dense(flat, parent, blocks):
    """A DenseNet block: block j reads the concatenation of the block input and the outputs of
    blocks 1 .. j-1, a concatenation of all of them ends it, and the blocks differ only by
    attributes affine in j (input channels growing by the growth rate). As a :class:`_Site`
    whose block is ``x -> concat(x, layer_i(x))`` parametrised by the repetition index, or None."""
    by_name = {n.name: n for n in flat.nodes}
    sigs, outs, drop, source = [], [], set(), None
    for j, (path, _) in enumerate(blocks):
        nodes = [n for n in flat.nodes if _inside(n.path, path)]
        names = {n.name for n in nodes}
        first = nodes[0] if nodes else None
        if first is None or any(u not in names for n in nodes[1:] for u in n.inputs):
            return None
        if j == 0:
            if len(first.inputs) != 1 or first.op == "concat":
                return None
            source, entry, body = first.inputs[0], first.inputs[0], nodes
        else:
            if first.op != "concat" or first.inputs != (source, *outs):
                return None
            entry, body = first.name, nodes[1:]
        readers = {u for n in flat.nodes if n.name not in names for u in n.inputs if u in names}
        if len(readers) != 1 or not body:
            return None
        (last,) = readers
        rel = {n.name: _relative(n.name, path) for n in body}
        rel[entry] = "input"
        items = [(rel[n.name], _anonymous(n.op), tuple(rel[u] for u in n.inputs)) for n in body]
        items.append(("(concat)", "concat", ("input", rel[last])))
        sigs.append(items)
        outs.append(last)
        drop |= names
    ends = [n for n in flat.nodes if n.op == "concat" and n.inputs == (source, *outs) and n.name not in drop]
    if len(blocks) < 2 or len(ends) != 1 or by_name.get(source) is None and source != "input":
        return None
    index = L.repetition_index()
    items = _affine(sigs, index)
    if items is None:
        return None
    run = Run(parent, len(blocks), 0, tuple(p for p, _ in blocks))
    return _Site(run, drop | {ends[0].name}, source, ends[0].name, items, "(concat)", index)


def _affine(sigs, index):
    """One block whose attributes are ``v_1 + index·d`` where the blocks' values step by ``d``
    (equal values stay), or None when the blocks differ otherwise."""
    first = sigs[0]
    if any(len(s) != len(first) or [(a, c) for a, _, c in s] != [(a, c) for a, _, c in first] for s in sigs):
        return None
    out = []
    for pos, (name, op, ins) in enumerate(first):
        ops = [s[pos][1] for s in sigs]
        if isinstance(op, str):
            if any(o != op for o in ops):
                return None
            out.append((name, op, ins))
            continue
        if any(type(o) is not type(op) for o in ops) or isinstance(op, (L.Sequential, L.Graph, L.Repeat)):
            return None
        changes = {}
        for f in dataclasses.fields(op):
            values = [getattr(o, f.name) for o in ops]
            if all(v == values[0] for v in values):
                continue
            step = _step(values, index)
            if step is None:
                return None
            changes[f.name] = step
        out.append((name, dataclasses.replace(op, **changes) if changes else op, ins))
    return tuple(out)


def _step(values, index):
    """``values[0] + index·d`` when the values are numbers stepping by ``d``, else None."""
    if not all(isinstance(v, sp.Integer) for v in values):
        return None
    d = values[1] - values[0]
    if any(b - a != d for a, b in zip(values, values[1:])):
        return None
    return values[0] + index * d


def repeats(net) -> list:
    """The runs of identical blocks :func:`symbolize` can turn into a symbolic depth.

    A run is the trailing part of a numbered sequence of blocks (``layer3.0``, ``layer3.1``, ...)
    whose blocks have the same layers, wired the same way, each reading the previous one; or a
    DenseNet block, whose layers read the concatenation of everything before them and differ by
    attributes that step with their position (``first`` is then 0: every layer is in the run).

    Args:
        net: a network (an imported Graph or any nested tree).

    Returns:
        A list of :class:`Run` (path, count, first, blocks), in the order of the network.

    >>> from rfsym import zoo
    >>> [(r.path, r.count, r.first) for r in repeats(zoo.get("resnet50"))]
    [('layer1', 2, 1), ('layer2', 3, 1), ('layer3', 5, 1), ('layer4', 2, 1)]
    """
    return [site.run for site in _runs(_Flat.of(net))]


def _collapse(flat, key, n, sites):
    """Replace the run named by ``key`` with ``Repeat(block, n - first)`` (in place)."""
    mine = [r for r in sites if r.run.path == key]
    if not mine:
        mine = [r for r in sites if _inside(r.run.path, key)]
    if len(mine) != 1:
        found = ", ".join(f"{r.run.path} ({r.run.first} + {r.run.count} blocks)" for r in sites) or "none"
        what = "no run of identical blocks" if not mine else f"{len(mine)} runs"
        raise LayerError(f"{what} under {key!r} (runs: {found})", where=f"depth {key!r}", param="depth")
    site = mine[0]
    run = site.run
    try:
        n = sp.sympify(n) - run.first
        body = L.Graph(*site.items, output=site.out)
        rep = L.Repeat(body, n, site.index, name=f"{run.path}.rest" if run.path else "rest")
    except (RfsymError, TypeError, sp.SympifyError) as err:
        raise LayerError(f"cannot repeat the blocks of {run.path!r} {n} times: {err}",
                         where=f"depth {key!r}", param="depth") from None
    label, last = rep.name, site.last
    kept = []
    for nd in flat.nodes:
        if nd.name in site.drop:
            if nd.name == last:
                kept.append(_Node(label, label, rep, (site.source,)))
            continue
        nd.inputs = tuple(label if u == last else u for u in nd.inputs)
        kept.append(nd)
    flat.nodes = kept
    flat.outputs = tuple(label if o == last else o for o in flat.outputs)
    if flat.features in site.drop:
        flat.features = label if flat.features == last else None
    return label, last


# =========================================================================== checks
def _check(graph, before, input_size, in_channels):
    """Analyse ``graph`` (symbolically at ``input_size`` when given, then numerically with its
    new symbols at small probe values); a merge that a probe breaks is a GraphError."""
    from .engine import analyze

    if input_size is not None:
        analyze(graph, input_size=input_size, in_channels=in_channels)
    new = sorted(graph.free_symbols - before, key=lambda s: s.name)
    first = input_size[0] if isinstance(input_size, tuple) else input_size
    size = input_size if first is not None and not sp.sympify(first).free_symbols else _PROBE_SIZE
    for v in _PROBES if new else (None,):
        mapping = {s: v for s in new}
        try:
            analyze(graph.subs(mapping) if new else graph, input_size=size, in_channels=in_channels)
        except GraphError as err:
            values = ", ".join(f"{s}={v}" for s in new)
            raise GraphError(f"{err}{f' (at {values})' if new else ''}") from None
        except (LayerError, SizeError):
            continue  # the values are not valid for this network: no evidence either way


def _build(net, rules, depth, input_size=None):
    flat = _Flat.of(net)
    if rules:
        old = flat.copy()
        set_attrs = _apply_rules(flat, rules)
        if any({"out_channels", "in_channels", "out_features", "groups"} & s for s in set_attrs.values()):
            _follow(flat, {n.name: n.op for n in old.nodes}, set_attrs, _channel_table(old, input_size))
    else:
        set_attrs = {}
    if depth:
        before, made = flat.copy(), {}
        for key, n in dict(depth).items():
            label, last = _collapse(flat, key, n, _runs(flat))
            made[label] = last
        table = _channel_table(before, input_size)
        table.update({label: table[last] for label, last in made.items()})
        _follow(flat, {}, set_attrs, table, made)  # a dense block's output channels change with its depth
    return flat.graph()


def symbolize(net, rules=None, *, depth=None, input_size=None, in_channels=None) -> L.Graph:
    """A new network in which rules replace numbers with symbols (see the module docstring).

    Args:
        net: the network (an imported Graph or any rfsym layer); not modified.
        rules: a dict ``{pattern: {attribute: value}}``, a :class:`Rule`, or a list of either.
        depth: ``{module path: n}``: the run of identical blocks under the path becomes a
            symbolic Repeat such that the path holds ``n`` blocks.
        input_size: used only to check the result (sizes of merged inputs must agree); the
            result does not depend on it.
        in_channels: the input's channels, for the same check.

    Returns:
        The new network, an unnamed :class:`~rfsym.layers.Graph`.

    Raises:
        LayerError: a rule whose pattern matches nothing, an attribute the layer does not have,
            an invalid value (the message names the rule and the node); a depth path with no run.
        GraphError: the rules break a merge (its inputs' sizes, channels or strides disagree),
            shown by analysing the result at small values of the new symbols; the message names
            the first rule that breaks it.

    >>> from rfsym import analyze, zoo, symbols
    >>> b3 = symbols("b3")
    >>> net = symbolize(zoo.get("resnet50"), depth={"layer3": b3})
    >>> analyze(net, input_size=224).layer("layer4").rf
    32*b3 + 235
    """
    rules = _rules(rules)
    if depth is not None and not isinstance(depth, dict):
        raise LayerError(f"depth is a dict {{module path: n}}, got {depth!r}", where="symbolize", param="depth")
    before = net.free_symbols
    try:
        graph = _build(net, rules, depth, input_size)
        _check(graph, before, input_size, in_channels)
        return graph
    except GraphError as err:
        culprit = _culprit(net, rules, depth, before, input_size, in_channels)
        raise GraphError(f"{culprit}: {err}") from None


def _culprit(net, rules, depth, before, input_size, in_channels):
    """The first rule (or depth entry) after which the network no longer checks."""
    for j in range(1, len(rules) + 1):
        try:
            _check(_build(net, rules[:j], None, input_size), before, input_size, in_channels)
        except GraphError:
            return f"rule {rules[j - 1]!r} breaks a merge"
    return f"depth {depth!r} breaks a merge" if depth else "the rules break a merge"
