r"""The derivation engine: one pass over a network gives every quantity of every layer.

Conventions (per spatial axis; coordinates are indices of the network input, padding
positions included, so they may be negative or beyond the input):

* ``rf`` — receptive field size: the number of input positions from the first to the last one
  that output 0 of the layer can read (Araujo, Norris, Sim, "Computing Receptive Fields of
  Convolutional Neural Networks", Distill 2019). Dilation leaves holes inside; they count.
  Where it depends on the output position (transposed convolution, upsampling, uneven adaptive
  pooling) ``rf`` is the maximum over positions and ``rf_min`` the minimum.
* ``jump`` — effective stride: input distance between adjacent outputs (rational when the
  output grid is finer than the input).
* ``start`` — input coordinate of the first position in the receptive field of output 0;
  negative inside the padding. Araujo's *effective padding* is ``-start``.
* ``center`` — ``start + (rf - 1)/2``, the centre of output 0's receptive field; output ``x``
  is centred at ``center + x·jump``.
* ``out_size`` — output size for the given input size: ``floor((n + pl + pr - κ)/s) + 1`` with
  ``κ = d(k - 1) + 1`` (PyTorch), pooling's ``ceil_mode`` rule, TensorFlow SAME ``ceil(n/s)``.
  None when no input size is given; symbolic when it is a symbol.
* ``params`` — trainable parameters: convolution ``(c_in/groups)·c_out·Πk + c_out`` (bias),
  linear ``in·out + out``, BatchNorm ``2C``. None when channels are unknown.
* ``macs`` — multiply–accumulates of convolutions and linear layers only (torchvision's
  convention): ``Π out_size · c_out · (c_in/groups) · Πk``; pools, BatchNorm, activations and
  additions count 0. ``flops = 2·macs``. None without an input size.

Per-axis rule: every per-axis attribute (``rf``, ``jump``, ``start``, ``center``, ``out_size``,
...) is **one value when all axes agree and a tuple (one item per axis) otherwise**;
``axes(name)`` always returns the tuple.

**The network is a DAG** (:mod:`rfsym.dag`): one topological pass derives every node from its
inputs. A layer composes its own index map onto its input's; a **merge** (``"add"``,
``"concat"``, ``"mul"``; :class:`~rfsym.layers.Residual`, :class:`~rfsym.layers.Concat`) reads
every input at the same output position, so its receptive field is the bounding box of the
union of its inputs' fields, each placed by its own ``start``: ``start = min_b start_b`` and
``rf = max_b (start_b + rf_b) - start`` (symbolic ``Max``/``Min`` stay symbolic when
undecidable). Inputs must have the same jump, sizes and (for additions) channels, except an
input of spatial size 1 in an ``"add"``/``"mul"`` (a squeeze-and-excitation gate), which is
broadcast: every output reads its whole field and the merge is global (jump 0). A merge is
*aligned* (Araujo, Norris, Sim, Distill 2019) when its inputs' centres agree. Parameters and
MACs are counted once per node, however many merges read it. Chains of layers between merges
are composed in balanced order (:mod:`rfsym.chain`), so cost is linear in nodes + edges.

Closed forms come out exact: for convolutions with kernel ``k_i``, stride ``s_i``
``rf = 1 + Σ_i (κ_i - 1) Π_{j<i} s_j``. Where a value depends on a condition the engine keeps
it (``Piecewise``, ``Max``, ``floor``) instead of guessing.

>>> from rfsym import analyze, Conv, Sequential, symbols
>>> r = analyze(Sequential(Conv(3, padding=1), Conv(3, padding=1)), input_size=5)
>>> r.rf, r.jump, r.start, r.center, r.out_size
(5, 1, -2, 0, 5)
>>> k, s = symbols("k s")
>>> analyze(Sequential(Conv(k, stride=s), Conv(k))).rf
k*s + k - s
"""


from __future__ import annotations

import gc
import math
import numbers
import operator
from typing import Any

import sympy as sp

from . import depth  # noqa: F401 - registers the rule of Repeat
from . import layers as L
from .chain import Chain, compose_axes, hashable_maps
from .dag import INPUT, lower
from .errors import GraphError, LayerError, RfsymError
from .lazy_numpy import np
from .maps import IDENTITY, global_merge_exact, is_global_merge, merge
from .ops import ExactOps, SymOps
from .result import LayerResult, NodeRecord, Result
from .rules import BROADCAST, NO_EXTRA, Context, NeedsInputSize, State, attend, rule_for
from .symbols import as_expr

__all__ = ["analyze", "derive", "Result", "LayerResult"]


def _label(node, layer, index):
    kind = node.kind
    name = node.label or getattr(layer, "name", None)
    return f"layer {index} ({kind} {name!r})" if name else f"layer {index} ({kind})"


def _show(v):
    if isinstance(v, tuple):
        return "(" + ", ".join(_show(x) for x in v) + ")"
    if isinstance(v, np.ndarray):
        return np.array2string(v) if v.size < 8 else f"array{v.shape}"
    return str(v)


def _centres(m, period, ops):
    out = []
    for phi in range(period):
        reps, ph = divmod(phi, m.period)
        out.append(m.starts[ph] + m.jump * reps + ops.div(m.rfs[ph] - 1, 2))
    return out


def _alignment(branch_maps, ops):
    """(aligned, centres): whether every input has the same centre on every axis and phase."""
    verdict = True
    centres = []
    for axis_maps in zip(*branch_maps):
        period = math.lcm(*(m.period for m in axis_maps))
        cs = [_centres(m, period, ops) for m in axis_maps]
        centres.append(tuple(c[0] for c in cs))
        strides = [ops.div(m.jump, m.period) for m in axis_maps]
        if any(ops.equal(st, strides[0]) is False for st in strides[1:]):
            verdict = False  # a global input (jump 0) beside a local one
        for c in cs[1:]:
            for a, b in zip(cs[0], c):
                same = ops.equal(a, b)
                if same is False:
                    verdict = False
                elif same is None and verdict is True:
                    verdict = None
    per_branch = tuple(tuple(axis[b] for axis in centres) for b in range(len(branch_maps)))
    return verdict, per_branch


def _same_last(a, b) -> bool:
    """Whether two axes' last output indices are provably one value (numbers or one object)."""
    return a is b or type(a) is int and type(b) is int and a == b


def _key(layer):
    """A hashable key of a layer's configuration, its name left out (computed once per object)."""
    cache = layer.__dict__
    if "_key" not in cache:
        cls = type(layer)
        cache["_key"] = (cls,) + tuple(getattr(layer, name) for name in L.config_fields(cls))
    return cache["_key"]


#: the built-in rule of Identity, activations and dropout (their output is their input), as
#: registered when the engine is imported (a rule registered later for them is run as any other)
_PASS_THROUGH = rule_for(L.Identity())


class _HasSymbols(RfsymError):
    """A layer of a network taken for all-numeric holds a symbol: the sympy path analyses it."""


def _same_config(layer, state):
    """A key equal for layers of one class whose fields (the name left out) are the same objects,
    on the same state object: such layers have equal rule outputs. Made of ids, which stay unique
    while the network and the pass's states are alive (the whole pass); cheaper to make and to
    hash than :func:`_key` (no field is hashed)."""
    cls = type(layer)
    get = _GETTERS.get(cls)
    if get is None:
        names = L.config_fields(cls)
        get = _GETTERS[cls] = operator.attrgetter(*names) if len(names) > 1 else \
            (lambda x, name=names[0]: (getattr(x, name),)) if names else (lambda x: ())
    return (cls, id(state), *map(id, get(layer)))


_GETTERS: dict = {}  # layer class -> a function giving its fields but "name" (a tuple)


def _shared_axes(maps):
    """``maps`` with each axis equal to the one before replaced by that same object (exact
    numbers): composing square layers then sees identical axes and composes once."""
    out = list(maps)
    for i in range(1, len(out)):
        if out[i] == out[i - 1]:
            out[i] = out[i - 1]
    return tuple(out)


def _well_hashed(state) -> bool:
    """Whether ``state`` may key the cache of repeated layers: no size is a large expression or
    holds numbers beyond 60 bits. Python hashes an int modulo 2**61 - 1, so the output sizes of
    a deep stack on a symbolic input (``floor(x/2**m + c/2**m)``, m growing with depth) collide
    every 61 halvings, and each lookup would compare the colliding sizes term by term."""
    for n in state.sizes or ():
        if isinstance(n, sp.Basic) and not n.is_Integer:
            stack, seen = [n], 0
            while stack:
                e, seen = stack.pop(), seen + 1
                if seen > 40 or (e.is_Rational and max(abs(e.p), e.q).bit_length() > 60):
                    return False
                stack.extend(e.args)
        elif isinstance(n, sp.Integer) and abs(n.p).bit_length() > 60:
            return False
    return True


class _Pass:
    """The topological pass over a lowered network."""

    def __init__(self, ctx, dag, state):
        self.ctx = ctx
        self.dag = dag
        self.input_state = state
        self.identity = (IDENTITY,) * ctx.ndim
        self.records: list[NodeRecord] = []
        self.states: list[State] = []
        self.chains: list = []  # the chain of each node
        readers = [0] * len(dag.nodes)
        inputs = 0
        for n in dag.nodes:
            for u in n.inputs:
                if u == INPUT:
                    inputs += 1
                else:
                    readers[u] += 1
        self.readers = readers  # how many nodes read each node
        self.input_readers = inputs
        self.input_chain = self.new_chain(lambda: None)
        self.cache = {}  # (layer, input state) -> (rule output, group key): repeated layers
        self.seen = {}  # the same by object identity (cheaper to hash)
        self.groups = {}  # the group keys of the chains, one object per value
        self.alike = {}  # _same_config(layer, state) -> the cached rule output of an equal layer
        self.rules = {}  # layer class -> its rule
        self.passive = {}  # layer class -> pass_through(a layer of it)
        self.configs = {}  # _key(layer) -> a number for that configuration
        self.tokens = {}  # id(layer) -> the number of its configuration
        self.shared = {}  # id of a rule's maps -> (those maps, with equal axes shared, group key)
        self.owns = {}  # id(layer) -> the value of its in_channels (or num_features) argument
        self.checked = set()  # ids of layers shown to hold no symbols (exact numbers)
        self.exact_numbers = ctx.ops.numbers
        self.interned = {}  # exact numbers: state -> the one object of that value
        self.read = set()  # the ids of the states some layer has read
        self.canonical = set()  # the ids of those objects
        if self.exact_numbers:
            self.input_state = self.intern(state)

    def new_chain(self, base):
        return Chain(self.ctx.ops, base, self.identity)

    def composite(self, u):
        return self.identity if u == INPUT else self.records[u].composite()

    def state(self, u):
        return self.input_state if u == INPUT else self.states[u]

    def run(self):
        """Derive every node in topological order; returns the records. A layer reading one
        input is handled in this loop (the loop of a long chain); merges and two-input
        attention by :meth:`merge` and :meth:`attend`."""
        merge, attend, solve, apply = self.merge, self.attend, self.solve, self.apply
        records, states, chains, readers = self.records, self.states, self.chains, self.readers
        seen, read, alike, passive = self.seen, self.read, self.alike, self.passive
        input_state = self.input_state
        for node in self.dag.nodes:
            inputs = node.inputs
            layer = node.op
            if isinstance(layer, str):  # node.is_merge, inline
                merge(node)
                continue
            if len(inputs) == 2:  # an Attention with queries of its own
                attend(node)
                continue
            u = inputs[0]
            state = input_state if u == INPUT else states[u]
            through = passive.get(type(layer))
            if through is None:
                through = self.pass_through(node, layer, state)
            if through:  # identity, activations, dropout: the input's values, no rule run
                chain = chains[u] if u != INPUT and readers[u] == 1 else self.chain_for(u)
                before, after = chain.add(*through)
                sizes, channels = state.sizes, state.channels
                records.append(NodeRecord(node.index, layer, node.name, node.kind, after, before, sizes, sizes,
                                          channels, channels, 0, 0, through[0], inputs, NO_EXTRA))
                states.append(state)
                chains.append(chain)
                continue
            if id(state) in read:
                hit = seen.get((id(layer), id(state)))
                if hit is None:
                    same = _same_config(layer, state)
                    hit = alike.get(same)  # an equal layer's (distinct objects)
                    if hit is None:
                        hit = solve(node, layer, state, same)
            else:  # the first layer to read this state: no cache holds it (nor will: one reader in a chain)
                read.add(id(state))
                hit = apply(node, layer, state)
            out, group, in_ch = hit  # in_ch: the layer's own channel argument
            chain = chains[u] if u != INPUT and readers[u] == 1 else self.chain_for(u)
            before, after = chain.add(out.maps, group)
            if state.channels is not None:
                in_ch = state.channels
            out_state = out.state
            records.append(NodeRecord(node.index, layer, node.name, node.kind, after, before, state.sizes,
                                      out_state.sizes, in_ch, out_state.channels, out.params, out.macs,
                                      out.maps, inputs, out.extra))
            states.append(out_state)
            chains.append(chain)
        return records

    def pass_through(self, node, layer, state):
        """``(maps, group key)`` of the layers of ``layer``'s class when its output is its input
        (the rule of :class:`~rfsym.layers.Identity`, no configuration, no parameters: identity,
        activations, dropout), else False; decided once per class per pass, from the rule's
        output on ``layer``, so the pass then records such layers without running their rule."""
        cls = type(layer)
        through = False
        if rule_for(layer) is _PASS_THROUGH and not L.config_fields(cls):
            out, group, _ = self.apply(node, layer, state)
            if out.state is state and out.params == 0 and out.macs == 0 and not out.extra and \
                    all(m is IDENTITY for m in out.maps):
                through = (out.maps, group)
        self.passive[cls] = through
        return through

    def chain_for(self, u):
        """The chain a layer reading ``u`` extends (u's, when it has no other reader)."""
        if u == INPUT:
            if self.input_readers == 1:
                return self.input_chain
            return self.new_chain(lambda: None)
        if self.readers[u] == 1:
            return self.chains[u]
        base = self.records[u].composite()  # a branch point: computed now, its chain is complete
        return self.new_chain(lambda base=base: base)

    def solve(self, node, layer, state, same=None):
        """``(rule output, group key, the layer's own input channels)`` of ``layer`` on ``state``
        (cached for repeated layers); ``same``: its :func:`_same_config` key when the caller
        already found it missing from the cache of equal layers."""
        fast = (id(layer), id(state))  # both alive for the whole pass: ids are not reused
        hit = None
        if same is None:
            same = _same_config(layer, state)  # equal configurations made of the same field objects
            hit = self.alike.get(same)
            if hit is not None:  # (an equal layer's: this object is seldom read again, seen not filled)
                return hit
        key = None
        if self.exact_numbers:  # states of numbers are interned: equal ones are one object
            if id(state) in self.canonical:
                key = (self.config(layer), id(state))
                hit = self.cache.get(key)
        elif _well_hashed(state):
            try:
                key = (self.config(layer), state)
                hit = self.cache.get(key)
            except TypeError:  # arrays (numeric evaluation): no cache
                key = hit = None
        if hit is None:
            hit = self.apply(node, layer, state)
            if key is not None and not hit[0].extra:
                self.cache[key] = hit
        if key is not None and not hit[0].extra:
            self.alike[same] = hit
        if not hit[0].extra:
            self.seen[fast] = hit
        return hit

    def apply(self, node, layer, state):
        """:meth:`solve` without the caches: the layer's rule run on ``state``."""
        ctx = self.ctx
        ctx.at(lambda: _label(node, layer, node.index))
        cls = type(layer)
        rule = self.rules.get(cls)
        if rule is None:
            rule = self.rules[cls] = rule_for(layer)
        if rule is None:
            raise LayerError(f"rfsym does not know how to analyse {type(layer).__name__}", where=ctx.where)
        if self.exact_numbers and id(layer) not in self.checked:
            self.numbers_only(layer)
        try:
            out = rule(layer, state, ctx)
        except LayerError as err:
            raise (err if err.where else err.located(ctx.where)) from None
        except GraphError as err:
            raise GraphError(f"{ctx.where}: {err}") from None
        shared = self.shared.get(id(out.maps))  # rules reuse their maps objects: one look each
        if shared is None:
            maps = _shared_axes(out.maps) if self.exact_numbers else out.maps
            group = hashable_maps(maps)
            if group is not None:
                group = self.groups.setdefault(group, group)  # equal maps: one object (Chain groups by identity)
            shared = self.shared[id(out.maps)] = (out.maps, maps, group)  # (the first keeps its id alive)
        out.maps, group = shared[1], shared[2]
        if self.exact_numbers:
            out.state = self.intern(out.state)
        own = self.owns.get(id(layer), self)  # the layer's own channel argument (self: not yet read)
        if own is self:
            own = self.owns[id(layer)] = ctx.val(getattr(layer, "in_channels", None) or
                                                 getattr(layer, "num_features", None))
        return out, group, own

    def config(self, layer):
        """A small int standing for ``layer``'s configuration (:func:`_key`): equal ones share it."""
        token = self.tokens.get(id(layer))
        if token is None:
            token = self.tokens[id(layer)] = self.configs.setdefault(_key(layer), len(self.configs))
        return token

    def intern(self, state):
        """The one object of the states equal to ``state`` (exact numbers: ints, Fractions)."""
        state = self.interned.setdefault(state, state)
        self.canonical.add(id(state))
        return state

    def numbers_only(self, layer):
        """Raise :class:`_HasSymbols` when ``layer`` (about to be analysed on exact numbers) holds a
        symbol: the sympy path analyses the network instead. Layers that reach no rule share
        their fields' values with one that did (the caches are keyed by them)."""
        if layer.free_symbols:
            raise _HasSymbols(self.ctx.where)
        self.checked.add(id(layer))

    def merge(self, node):
        ctx, ops = self.ctx, self.ctx.ops
        where = f"{node.kind} {node.name!r}" if node.name else node.kind
        ctx.where = where
        states = [self.state(u) for u in node.inputs]
        names = list(node.branches) or [f"input {j}" for j in range(len(node.inputs))]
        sizes = [s.sizes for s in states]
        broadcast = [False] * len(states)
        if node.op != "concat" and all(s is not None for s in sizes):
            if self.exact_numbers:  # ints: concrete(n) == 1 is n == 1
                ones = [s.count(1) == len(s) for s in sizes]
            else:
                ones = [all(ops.concrete(n) == 1 for n in s) for s in sizes]
            if any(ones) and not all(ones):
                broadcast = ones
        full = [s for s, b in zip(sizes, broadcast) if not b]
        self._agree(full, [n for n, b in zip(names, broadcast) if not b], "output size", where)
        chans = [s.channels for s in states]
        if node.op == "concat":
            channels = None if any(c is None for c in chans) else sum(chans[1:], chans[0])
        else:
            wide = [c for c in chans if c is not None and ops.concrete(c) != 1]
            self._agree(wide, names, "channels", where) if wide else None
            channels = wide[0] if wide else next((c for c in chans if c is not None), None)
        out_sizes = next((s for s in full if s is not None), None)
        comps = []
        for u, b in zip(node.inputs, broadcast):
            c = self.composite(u)
            comps.append(compose_axes(c, (BROADCAST,) * ctx.ndim, ops) if b else c)
        lasts = (None,) * ctx.ndim if out_sizes is None else tuple(n - 1 for n in out_sizes)
        axes = list(zip(*comps))
        same = [i > 0 and _same_last(lasts[i], lasts[i - 1]) and all(a is b for a, b in zip(axes[i], axes[i - 1]))
                for i in range(len(axes))]  # square networks: the axes agree, merged once
        try:
            merged = []
            for axis, last, again in zip(axes, lasts, same):
                merged.append(merged[-1] if again else merge(axis, ops, names, last))
            merged = tuple(merged)
        except GraphError as err:
            raise GraphError(f"{where}: {err}") from None
        cache = {}

        def aligned():
            if "a" not in cache:
                cache["a"] = _alignment(comps, ops)
            return cache["a"]

        extra = {"aligned": lambda: aligned()[0], "branch_centers": lambda: aligned()[1],
                 "branch_names": lambda: tuple(names)}
        if any(is_global_merge(axis, ops) for axis, again in zip(axes, same) if not again):
            # the global convention (jump 0): exact on the real outputs when the global field
            # covers the local branches there; never at the padding positions a later layer reads
            verdicts = [global_merge_exact(axis, ops, last) for axis, last in zip(axes, lasts)]
            extra["global_merge"] = lambda: (False if False in verdicts else None if None in verdicts
                                             else True)
        chain = self.new_chain(lambda: merged)
        in_sizes = out_sizes
        record = NodeRecord(node.index, node.block if isinstance(node.block, (L.Residual, L.Concat)) else None,
                            node.name, node.kind, lambda: merged, lambda: merged, in_sizes, out_sizes,
                            channels, channels, 0, 0, inputs=node.inputs, extra=extra)
        self.records.append(record)
        state = State(out_sizes, channels)
        self.states.append(self.intern(state) if self.exact_numbers else state)
        self.chains.append(chain)

    def attend(self, node):
        """An Attention reading ``(source, queries)``: every output (on the queries' grid) reads
        its query and every position of the source, the bounding box of the two fields."""
        ctx, ops = self.ctx, self.ctx.ops
        layer = node.op
        ctx.where = _label(node, layer, node.index)
        if self.exact_numbers:
            self.numbers_only(layer)
        source, queries = (self.state(u) for u in node.inputs)
        try:
            out = attend(layer, source, queries, ctx)
        except LayerError as err:
            raise (err if err.where else err.located(ctx.where)) from None
        comps = [compose_axes(self.composite(node.inputs[0]), out.maps, ops), self.composite(node.inputs[1])]
        sizes = out.state.sizes
        lasts = (None,) * ctx.ndim if sizes is None else tuple(n - 1 for n in sizes)
        names = (f"{ctx.where} source", f"{ctx.where} queries")
        try:
            merged = tuple(merge(axis, ops, names, last) for axis, last in zip(zip(*comps), lasts))
        except GraphError as err:
            raise GraphError(f"{ctx.where}: {err}") from None
        chain = self.new_chain(lambda: merged)
        before = self.composite(node.inputs[0])
        record = NodeRecord(node.index, layer, node.name, node.kind, lambda: merged, lambda: before,
                            source.sizes, sizes, source.channels, out.state.channels, out.params, out.macs,
                            own=out.maps, inputs=node.inputs, extra=out.extra)
        self.records.append(record)
        self.states.append(self.intern(out.state) if self.exact_numbers else out.state)
        self.chains.append(chain)

    def _agree(self, values, names, what, where):
        """Sizes or channels that must agree across inputs (error when provably different)."""
        ops = self.ctx.ops
        first = values[0] if values else None
        numbers = ops.numbers  # ints and Fractions: == decides
        for name, v in zip(names[1:], values[1:]):
            if first is None or v is None or numbers and v == first:
                continue
            for a, b in zip(first if isinstance(first, tuple) else (first,), v if isinstance(v, tuple) else (v,)):
                same = ops.equal(a, b)
                if same is None and ops.symbolic:  # checked by the compiled evaluate
                    self.ctx.checks.append((sp.sympify(a) - sp.sympify(b), what, "zero", where))
                if same is False:
                    raise GraphError(f"{where}: inputs must have the same {what} to merge: "
                                     f"{names[0]} gives {_show(first)}, {name} gives {_show(v)}")


def _infer_ndim(net, input_size, ndim):
    dims = set()
    if ndim is not None:
        if isinstance(ndim, bool) or not isinstance(ndim, numbers.Integral) or not 1 <= ndim <= 3:
            raise LayerError(f"ndim must be 1, 2 or 3, got {ndim!r}", where="analyze", param="ndim")
        dims.add(int(ndim))
    if isinstance(input_size, (tuple, list)):
        if not 1 <= len(input_size) <= 3:
            raise LayerError(f"input_size must be a number or a tuple of 1 to 3 sizes, got {input_size!r}",
                             where="analyze", param="input_size")
        dims.add(len(input_size))
    try:
        nd = net.ndim
    except LayerError:
        raise
    if nd is not None:
        dims.add(nd)
    if len(dims) > 1:
        raise LayerError(f"the number of spatial axes is ambiguous: {sorted(dims)} "
                         "(from ndim, input_size and per-axis layer arguments); make them agree",
                         where="analyze", param="ndim")
    return dims.pop() if dims else 2


def analyze(net: Any, input_size: Any = None, *, ndim: int | None = None, in_channels: Any = None,
            strict: bool = False, features: str | None = None) -> Result:
    """Derive rf, jump, start, center, out_size, params and macs of every node of ``net``.

    Args:
        net: an rfsym layer (a Sequential, a Graph, any block) or a list of layers.
        input_size: an int, a symbol or a per-axis tuple; None leaves sizes and MACs unknown.
        ndim: the number of spatial axes (default: from the input size or the layers, else 2).
        in_channels: the input's channels when the first layers do not say.
        strict: make norms whose statistics span positions (GroupNorm, ...) global.
        features: the name of the reference feature layer or block (the backbone number that
            summaries show); default: the Graph's ``features=``, else the layer a classification
            head (global pooling, flatten, linear) reads.

    Returns:
        The :class:`~rfsym.result.Result`.

    Raises:
        LayerError: an invalid layer parameter (named, with the layer).
        GraphError: inputs of a merge that disagree, a malformed graph.
        SizeError: an input too small for some layer.

    >>> from rfsym import Conv, Sequential
    >>> analyze(Sequential(*[Conv(3, padding=1)] * 4)).rf
    9
    """
    result = derive(net, input_size, ndim=ndim, in_channels=in_channels, strict=strict)
    if features is not None:
        result.set_features(features)
    return result


def derive(net: Any, input_size: Any = None, *, ndim: int | None = None, in_channels: Any = None,
           strict: bool = False, ops: Any = None, numeric_values: dict | None = None) -> Result:
    """:func:`analyze` with a chosen arithmetic backend (for rules and :meth:`Result.evaluate`).

    Args:
        net: as for :func:`analyze`.
        input_size: as for :func:`analyze`.
        ndim: as for :func:`analyze`.
        in_channels: as for :func:`analyze`.
        strict: as for :func:`analyze`.
        ops: the backend (:class:`~rfsym.ops.SymOps` default, :class:`~rfsym.ops.NumOps`).
        numeric_values: symbol names to integer arrays, for :class:`~rfsym.ops.NumOps`.

    Returns:
        The :class:`~rfsym.result.Result`.
    """
    enabled = gc.isenabled()
    gc.disable()  # the analysis allocates many small objects and frees few: collections only cost time
    try:
        return _derive_checked(net, input_size, ndim, in_channels, strict, ops, numeric_values)
    finally:
        if enabled:
            gc.enable()


def _derive_checked(net, input_size, ndim, in_channels, strict, ops, numeric_values):
    if not isinstance(net, L.Layer):
        if isinstance(net, (list, tuple)):
            net = L.Sequential(*net)
        else:
            kind = type(net).__name__
            hint = ""
            if any(c.__module__.startswith(("torch", "keras", "onnx")) for c in type(net).__mro__):
                hint = ("; import framework models first with rfsym.from_torch, rfsym.from_keras or "
                        "rfsym.from_onnx, or call rfsym.summary(model, input_size)")
            raise RfsymError(f"analyze expects an rfsym layer or Sequential, got {kind}{hint}")
    if not isinstance(net, L.Sequential):
        net = L.Sequential(net)
    if not isinstance(strict, bool):
        raise RfsymError(f"strict must be True or False, got {strict!r}")
    _ops = SymOps if ops is None else ops
    _values = numeric_values
    nd = _infer_ndim(net, input_size, ndim)
    if input_size is not None:
        sizes = tuple(input_size) if isinstance(input_size, (tuple, list)) else (input_size,) * nd
        sizes = tuple(_input_value(n) for n in sizes)
    else:
        sizes = None
    if in_channels is not None:
        in_channels = _input_value(in_channels, "in_channels")
    try:
        return _fast_or_exact(net, sizes, nd, in_channels, strict, ops, _ops, _values)
    except NeedsInputSize:
        if sizes is not None:
            raise
    # global layers and no input size: derive in terms of a symbolic one (never an infinite field)
    sizes = _size_symbols(net, nd)
    result = _fast_or_exact(net, sizes, nd, in_channels, strict, ops, _ops, _values)
    names = ", ".join(str(n) for n in sizes)
    result.notes = result.notes + (f"no input size was given and the network has global layers: sizes "
                                   f"and fields are in terms of the input size {names}",)
    return result


def _size_symbols(net, nd):
    taken = {s.name for s in net.free_symbols}
    base = ("n",) if nd == 1 else ("H", "W") if nd == 2 else ("D", "H", "W") if nd == 3 else \
        tuple(f"n{a}" for a in range(nd))
    names = [b if b not in taken else f"{b}_in" for b in base]
    return tuple(sp.Symbol(b, integer=True, positive=True) for b in names)


def _fast_or_exact(net, sizes, nd, in_channels, strict, ops, _ops, _values):
    if ops is None and _all_numbers(sizes, in_channels):
        # fast path: the same rules on Python ints and Fractions, sympy numbers at the boundary;
        # on any error the sympy path below runs again and raises its own message
        try:
            return _derive(net, sizes, nd, in_channels, strict, ExactOps, None)
        except NeedsInputSize:
            raise  # derive() retries with a symbolic input size (the sympy path)
        except Exception:  # noqa: BLE001 - re-raised, with the canonical message, by the sympy path
            pass
    return _derive(net, sizes, nd, in_channels, strict, _ops, _values)


def _all_numbers(sizes, in_channels) -> bool:
    """Whether ``analyze`` may take the exact fast path: a numeric input size or none (the pass
    leaves that path for the sympy one at the first layer holding a symbol)."""
    if sizes is not None and not all(getattr(n, "is_Integer", False) for n in sizes):
        return False
    return in_channels is None or getattr(in_channels, "is_Integer", False)


def _derive(net, sizes, nd, in_channels, strict, ops, values) -> Result:
    ctx = Context(ops, nd, values, strict, derive)
    state = State(None if sizes is None else tuple(ctx.val(n, "input_size", 1) for n in sizes),
                  ctx.val(in_channels, "in_channels", 1))
    dag = lower(net)
    records = _Pass(ctx, dag, state).run()
    for index in dag.shared:  # its parameters are counted at the node that holds them
        if records[index].params is not None:
            records[index].params = 0
    outputs = []
    for name, index in zip(dag.output_names, dag.outputs):
        if len(dag.outputs) == 1:
            name = "input" if index == INPUT else records[index].name
        outputs.append((name, None if index == INPUT else index))
    features = dag.features
    if features is None and len(dag.outputs) == 1:
        features = _head_input(dag, records)
    return Result(net, sizes, nd, in_channels, ops, records, outputs, features, dag.aliases,
                  _notes(ctx), strict, derive, values, checks=tuple(ctx.checks))


_HEAD = (L.AdaptiveAvgPool, L.Flatten, L.Linear)
_PASSIVE = (L.Elementwise, L.Dropout, L.Identity)


def _head_input(dag, records):
    """The node a classification head reads (the backbone's last feature map): walking back from
    the output through global pooling, flattening, linear layers and activations, the first
    other node; None when the network has no such head."""
    v, seen_head = dag.outputs[0], False
    while v != INPUT:
        node = dag.nodes[v]
        if node.is_merge or not isinstance(node.op, _HEAD + _PASSIVE):
            break
        if isinstance(node.op, L.AdaptiveAvgPool) and records[v].out_sizes is not None and \
                any(not (getattr(n, "is_Integer", isinstance(n, int)) and n == 1) for n in records[v].out_sizes):
            break  # an adaptive pool to a larger grid is part of the trunk
        seen_head = seen_head or isinstance(node.op, _HEAD)
        v = node.inputs[0]
    return v if seen_head and v != INPUT else None


def _notes(ctx):
    notes = []
    if ctx.notes.get("position-wise"):
        notes.append(f"{len(ctx.notes['position-wise'])} normalisation layer(s) whose statistics span "
                     "positions were treated position-wise (the default; analyze(..., strict=True) makes "
                     "them global)")
    if ctx.notes.get("strict"):
        notes.append(f"{len(ctx.notes['strict'])} normalisation layer(s) whose statistics span positions "
                     "were treated as global (strict=True)")
    return tuple(notes)


def _input_value(n, param="input_size"):
    try:
        return as_expr(n, param)
    except LayerError as err:
        raise LayerError(err.detail, where="analyze", param=param) from None
