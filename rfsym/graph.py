r"""Beyond chains: branches and merges, repeated blocks of symbolic depth, transposed
convolutions and upsampling.

Conventions (full text in ``docs/conventions.md``):

* **Merge rule.** A merge (:class:`Residual`'s addition, :class:`Concat`) reads every branch at
  the same output position, so its receptive field is the *bounding box of the union* of the
  branches' receptive fields, each placed by its own ``start``:
  ``start = min_b start_b`` and ``rf = max_b (start_b + rf_b) - start``. Branches must have the
  same jump (effective stride), otherwise :class:`~rfsym.errors.GraphError` names the branches
  and their jumps — except *global* branches (jump 0: every output sees the same field, e.g. a
  body with a squeeze-and-excitation gate), which merge with local ones into a global map whose
  field is the bounding box over the merge's real outputs (:func:`~rfsym.maps.merge`; such a
  merge is not aligned). Symbolic ``Max``/``Min`` stay symbolic when undecidable.
* **Alignment** (Araujo, Norris, Sim, Distill 2019): a graph is aligned when every path from the
  input to the output has the same jump and the same centre. ``LayerResult.aligned`` of a merge
  says whether its branches' centres agree (True, False, or None when undecidable) and
  ``branch_centers`` lists them; ``Result.aligned`` combines every merge.
* **Position-dependent receptive fields.** :class:`ConvTranspose` and :class:`Upsample` make the
  output grid finer than the input: output ``o = period·m + φ`` reads an interval that depends on
  the phase ``φ``. ``rf`` is the maximum over phases, ``rf_min`` the minimum, ``jump`` is rational
  (``1/stride`` for one transposed convolution), ``period`` the number of phases.
* **Repeat.** ``Repeat(block, n)`` composes ``n`` copies of ``block``. With ``n`` symbolic the
  closed forms come from solving the recurrences: a block whose composite is the affine map
  ``(U, J, R)`` (start, jump, rf) repeated ``n`` times gives jump ``J^n``, start
  ``U·(J^n - 1)/(J - 1)`` and rf ``1 + (R - 1)(J^n - 1)/(J - 1)``, the ``J = 1`` case kept as a
  ``Piecewise`` branch. Layer parameters may contain an *index symbol* (``index=i``, the
  repetition number ``0..n-1``); the closed forms are then sums/products over ``i`` (sympy
  summation), e.g. WaveNet's dilations ``2**i``; where sympy finds no closed form the ``Sum``
  stays unevaluated (``.doit()`` it after substituting ``n``).

  ``result.layers`` lists, for an integer ``n``, every layer of every repetition (unrolled, the
  index replaced by ``0..n-1``, names ``<repeat>.<k>.<j>``); for a symbolic ``n`` one node of type
  ``"Repeat"`` standing for all ``n`` repetitions, whose ``params``/``macs`` are the totals.

  ``out_size`` of a symbolic repetition is exact: chains of floor-mode convolutions and pools map
  a size ``x`` to ``floor((x + c)/S)`` and ``n`` repetitions to ``floor((x + C_n)/S^n)``
  (``floor((floor(y) + c)/s) = floor((y + c)/s)``). ``macs`` of a size-changing block assume the
  divisions are exact: when ``0 <= c < S`` (padding that rounds up, e.g. a 3×3 stride-2 conv with
  padding 1) the input size ``x`` is assumed divisible by ``S^n``, so repetition ``t`` sees
  ``x/S^t``; otherwise ``x + C_t`` is assumed divisible by ``S^t`` (the unpadded U-Net:
  ``x + 4`` divisible by ``2^t``). When ``0 <= c < S`` is undecidable (a symbolic kernel with a
  fixed padding) ``macs`` is a ``Piecewise`` over the two assumptions, never a guess.
  ``evaluate`` and integer ``n`` are exact without assumption.

>>> from rfsym import analyze, Conv, Sequential, symbols
>>> n, k, s = symbols("n k s")
>>> analyze(Repeat(Conv(3), n)).rf
2*n + 1
>>> analyze(Repeat(Conv(k, stride=s), n)).rf
(k - 1)*Piecewise((n, Eq(s, 1)), ((s**n - 1)/(s - 1), True)) + 1
>>> i = symbols("i", nonnegative=True)
>>> analyze(Repeat(Conv(2, dilation=2**i), 10, index=i)).rf      # WaveNet, one stack
1024
>>> analyze(Repeat(Conv(2, dilation=2**i), n, index=i)).rf
2**n
>>> r = analyze(Residual(Sequential(Conv(3, padding=1), Conv(3, padding=1))), input_size=8)
>>> r.rf, r.aligned, [layer.type for layer in r.layers]
(5, True, ['Conv', 'Conv', 'Identity', 'Add'])
>>> up = analyze(ConvTranspose(3, stride=2))
>>> up.rf, up.rf_min, up.jump, up.period
(2, 1, 1/2, 2)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from . import layers as L
from .engine import LeafOut, State, _check_size, analyze, conv_counts, register_block, register_layer
from .errors import GraphError, LayerError, RfsymError
from .maps import IDENTITY, AxisMap, _reduce, merge
from .ops import NumOps, Rows, SymOps, checked
from .symbols import as_expr, bounded_subs, subs

__all__ = ["Residual", "Concat", "Graph", "Repeat", "ConvTranspose", "Upsample", "Crop", "repetition_index"]


def _as_seq(layer):
    return layer if isinstance(layer, L.Sequential) else L.Sequential(layer)


def _check_layer(value, what, owner):
    if not isinstance(value, L.Layer):
        raise LayerError(f"{what} must be an rfsym layer, got {value!r}", where=owner, param=what)
    return value


def _ndim_of(owner, parts):
    dims = {p.ndim for p in parts} - {None}
    if len(dims) > 1:
        raise LayerError(f"branches disagree on the number of spatial axes: {sorted(dims)}",
                         where=owner, param="ndim")
    return dims.pop() if dims else None


# =========================================================================== layers
@dataclass(frozen=True, repr=False)
class Residual(L.Layer):
    """``body(x) + shortcut(x)`` (merge type ``"Add"``): ResNet's basic and bottleneck blocks.

    The receptive field is the bounding box of both branches (the longest path when the
    shortcut is the identity); params and MACs are those of the branches (the addition counts 0).

    >>> from rfsym import analyze, Conv, Sequential
    >>> analyze(Residual(Sequential(Conv(3, padding=1), Conv(3, padding=1)))).rf
    5
    """

    body: Any
    shortcut: Any = L.Identity()

    def _normalise(self):
        _check_layer(self.body, "body", "Residual")
        _check_layer(self.shortcut, "shortcut", "Residual")
        L.check_nesting(self, (self.body, self.shortcut), "Residual")

    @property
    def ndim(self):
        return _ndim_of("Residual", (self.body, self.shortcut))

    def __repr__(self):
        extra = "" if self.shortcut == L.Identity() else f", shortcut={self.shortcut!r}"
        name = f", name={self.name!r}" if self.name else ""
        return f"Residual({self.body!r}{extra}{name})"


@dataclass(frozen=True, init=False, repr=False)
class Concat(L.Layer):
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
        L.check_nesting(self, self.branches, "Concat")

    def subs(self, mapping):
        return Concat(*(b.subs(mapping) for b in self.branches), name=self.name)

    @property
    def free_symbols(self):
        return set().union(*(b.free_symbols for b in self.branches))

    @property
    def ndim(self):
        return _ndim_of("Concat", self.branches)

    def __repr__(self):
        name = f", name={self.name!r}" if self.name else ""
        return f"Concat({', '.join(map(repr, self.branches))}{name})"


def repetition_index(name: str = "i"):
    """The default index symbol of :class:`Repeat` (a nonnegative integer)."""
    return sp.Symbol(name, integer=True, nonnegative=True)


@dataclass(frozen=True, init=False, repr=False)
class Repeat(L.Layer):
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
        if not isinstance(block, L.Layer):
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
        L.check_nesting(self, (block,), "Repeat")

    def at(self, k) -> L.Layer:
        """The block of repetition ``k`` (the index replaced by ``k``)."""
        return self.block.subs({self.index: k}) if self.index in self.block.free_symbols else self.block

    def unrolled(self) -> L.Sequential:
        """The explicit chain of an integer ``n``."""
        n = sp.sympify(self.n)
        if not n.is_Integer:
            raise LayerError(f"cannot unroll a symbolic number of repetitions n={n}", where="Repeat",
                             param="n")
        return L.Sequential(*(self.at(k) for k in range(int(n))), name="")

    def subs(self, mapping):
        mapping = {k: v for k, v in dict(mapping).items()
                   if not (k == self.index or getattr(k, "name", k) == self.index.name)}
        return Repeat(self.block.subs(mapping), subs(self.n, mapping), self.index, name=self.name)

    @property
    def free_symbols(self):
        return (self.block.free_symbols - {self.index}) | sp.sympify(self.n).free_symbols

    @property
    def ndim(self):
        return self.block.ndim

    def __repr__(self):
        idx = f", index={self.index}" if self.index in self.block.free_symbols else ""
        name = f", name={self.name!r}" if self.name else ""
        return f"Repeat({self.block!r}, {self.n}{idx}{name})"


@dataclass(frozen=True, repr=False)
class ConvTranspose(L._Windowed, L.Layer):
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
        L.Conv._normalise(self)  # the same arguments, validated the same way
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
        return L._per_axis(self.output_padding, ndim, "output_padding", self)


@dataclass(frozen=True, repr=False)
class Crop(L.Layer):
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
        try:
            self._set("amount", L._padding(self.amount))
        except LayerError as err:
            raise LayerError(err.detail.replace("padding", "amount"), param="amount") from None
        if isinstance(self.amount, str):
            raise LayerError(f"amount must be an int or per-axis (left, right) pairs, got {self.amount!r}",
                             param="amount")

    def amounts(self, ndim):
        per = L._per_axis(self.amount, ndim, "amount", self)
        return tuple(a if isinstance(a, tuple) else (a, a) for a in per)


_UPSAMPLE_MODES = ("nearest", "bilinear")


@dataclass(frozen=True, repr=False)
class Upsample(L.Layer):
    """Upsampling by an integer ``scale_factor`` (``torch.nn.Upsample``).

    ``mode="nearest"``: output ``o`` reads input ``floor(o/f)``. ``mode="bilinear"`` (linear
    interpolation on every spatial axis; PyTorch's ``linear``/``bilinear``/``trilinear``): with
    ``align_corners=False`` output ``o`` interpolates at ``x = (o + 0.5)/f - 0.5`` and reads
    ``floor(x)`` and ``floor(x) + 1`` (only ``x`` when ``x`` is an integer: the other weight is
    zero); the map is periodic in ``o`` with period ``f`` and, like padding, counts positions
    beyond the border that PyTorch clamps. With ``align_corners=True``, ``x = o(n - 1)/(nf - 1)``
    depends on the input size ``n``, which must then be a number; the map is exact (clamped)
    over the whole output grid.

    >>> from rfsym import analyze
    >>> r = analyze(Upsample(2, mode="bilinear"), input_size=4)
    >>> r.rf, r.rf_min, r.jump, r.start, r.out_size
    (2, 2, 1/2, -1, 8)
    """

    scale_factor: Any
    mode: str = "nearest"
    align_corners: bool = False

    def _normalise(self):
        self._set("scale_factor", L._axis_tuple(self.scale_factor, "scale_factor"))
        for f in (self.scale_factor if isinstance(self.scale_factor, tuple) else (self.scale_factor,)):
            if not f.is_Integer:
                raise LayerError(f"scale_factor must be a positive integer number (the phases of "
                                 f"the output grid are enumerated), got {f}", param="scale_factor")
        if self.mode in ("linear", "trilinear"):
            self._set("mode", "bilinear")
        if self.mode not in _UPSAMPLE_MODES:
            raise LayerError(f"mode must be 'nearest' or 'bilinear', got {self.mode!r}", param="mode")
        if not isinstance(self.align_corners, bool):
            raise LayerError(f"align_corners must be True or False, got {self.align_corners!r}",
                             param="align_corners")


@dataclass(frozen=True, init=False, repr=False)
class Graph(L.Layer):
    """A general DAG, given node by node: ``Graph(("name", layer, "input_name"), ...,
    ("sum", "add", ("a", "b")), ...)``. The graph's input is called ``"input"``; a node reads one
    earlier node, or several through a merge (``"add"`` or ``"concat"`` in place of the layer).
    The last node is the output unless ``output=`` names another.

    rfsym analyses the graph as the equivalent nesting of :class:`Residual`, :class:`Concat` and
    :class:`~rfsym.layers.Sequential` (:meth:`to_tree`): each merge's branches start at the merge's
    immediate dominator (the last node every path to it passes through). Graphs that are not
    series-parallel — an intermediate node feeding two branches of one merge — are refused, since
    nesting would duplicate that node's parameters. Layer names are node names, nested under the
    merges they feed (``"cat1.c1"``), under the graph's own name unless it is ``""``.

    >>> from rfsym import analyze, Conv, ReLU
    >>> g = Graph(("conv1", Conv(3, padding=1), "input"), ("relu", ReLU(), "conv1"),
    ...           ("conv2", Conv(3, padding=1), "relu"), ("sum", "add", ("conv2", "input")))
    >>> r = analyze(g, input_size=8)
    >>> r.rf, [layer.type for layer in r.layers]
    (5, ['Conv', 'ReLU', 'Conv', 'Identity', 'Add'])
    """

    nodes: tuple = ()
    output: Any = None

    def __init__(self, *nodes, output: str | None = None, name: str | None = None):
        if len(nodes) == 1 and isinstance(nodes[0], (list, tuple)) and nodes[0] and \
                isinstance(nodes[0][0], (list, tuple)):
            nodes = tuple(nodes[0])
        if not nodes:
            raise LayerError("needs at least one node", where="Graph", param="nodes")
        norm, seen = [], {"input"}
        for j, node in enumerate(nodes):
            if not isinstance(node, (list, tuple)) or len(node) != 3:
                raise LayerError(f"node {j} must be (name, layer or 'add'/'concat', inputs), got {node!r}",
                                 where="Graph", param="nodes")
            label, op, inputs = node
            if not isinstance(label, str) or not label or label in seen:
                raise LayerError(f"node {j}: names must be unique non-empty strings other than 'input', "
                                 f"got {label!r}", where="Graph", param="nodes")
            inputs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
            missing = [u for u in inputs if u not in seen]
            if missing:
                raise LayerError(f"node {label!r} reads {missing[0]!r}, which is not an earlier node "
                                 "(list nodes in topological order; the graph input is 'input')",
                                 where="Graph", param="nodes")
            if isinstance(op, str):
                if op not in ("add", "concat") or len(inputs) < 2:
                    raise LayerError(f"node {label!r}: a merge is 'add' or 'concat' over two or more "
                                     f"inputs, got {op!r} over {len(inputs)}", where="Graph", param="nodes")
            elif not isinstance(op, L.Layer) or len(inputs) != 1:
                raise LayerError(f"node {label!r}: a layer reads exactly one input; merge several with "
                                 f"'add' or 'concat', got {op!r} over {len(inputs)}", where="Graph",
                                 param="nodes")
            seen.add(label)
            norm.append((label, op, inputs))
        output = norm[-1][0] if output is None else output
        if output not in seen:
            raise LayerError(f"output {output!r} is not a node", where="Graph", param="output")
        object.__setattr__(self, "nodes", tuple(norm))
        object.__setattr__(self, "output", output)
        object.__setattr__(self, "name", name)
        L.check_nesting(self, [op for _, op, _ in norm if not isinstance(op, str)], "Graph")

    def subs(self, mapping):
        nodes = tuple((a, op if isinstance(op, str) else op.subs(mapping), ins) for a, op, ins in self.nodes)
        return Graph(*nodes, output=self.output, name=self.name)

    @property
    def free_symbols(self):
        return set().union(*(op.free_symbols for _, op, _ in self.nodes if not isinstance(op, str)))

    @property
    def ndim(self):
        return _ndim_of("Graph", [op for _, op, _ in self.nodes if not isinstance(op, str)])

    def to_tree(self) -> L.Sequential:
        """The equivalent nesting of Sequential, Residual and Concat (see the class docstring)."""
        table = {label: (op, ins) for label, op, ins in self.nodes}
        order = ["input"] + [label for label, _, _ in self.nodes]
        rank = {label: j for j, label in enumerate(order)}
        dom = {"input": {"input"}}
        for label, _, ins in self.nodes:
            dom[label] = {label} | set.intersection(*(dom[u] for u in ins))
        built = {}

        def idom(v):
            return max(dom[v] - {v}, key=rank.__getitem__)

        def build(v, stop):
            if v == stop:
                return []
            if v in built:
                raise GraphError(f"Graph: node {v!r} feeds two branches of a merge (reached from "
                                 f"{built[v]!r} and {stop!r}); rfsym handles series-parallel graphs only")
            built[v] = stop
            op, ins = table[v]
            if not isinstance(op, str):
                return build(ins[0], stop) + [_renamed(op, v)]
            d = idom(v)
            branches = [L.Sequential(*build(u, d), name="") for u in ins]
            branches = [b if len(b) else L.Sequential(L.Identity(), name="") for b in branches]
            if op == "concat":
                block = Concat(*branches, name=v)
            else:
                block = branches[-1]
                for b in reversed(branches[:-1]):
                    block = Residual(b, block, name=v)
            return build(d, stop) + [block]

        return L.Sequential(*build(self.output, "input"), name="")

    def __repr__(self):
        name = f", name={self.name!r}" if self.name else ""
        return f"Graph({', '.join(map(repr, self.nodes))}, output={self.output!r}{name})"


def _renamed(layer, name):
    """``layer`` carrying the node name ``name``."""
    if layer.name == name:
        return layer
    if isinstance(layer, L.Sequential):
        return L.Sequential(*layer.layers, name=name)
    if isinstance(layer, Concat):
        return Concat(*layer.branches, name=name)
    if isinstance(layer, Repeat):
        return Repeat(layer.block, layer.n, layer.index, name=name)
    if isinstance(layer, Graph):
        return Graph(*layer.nodes, output=layer.output, name=name)
    return dataclasses.replace(layer, name=name)


# =========================================================================== merges
def _label(layer, part):
    base = type(layer).__name__ + (f" {layer.name!r}" if layer.name else "")
    return f"{base} {part}"


def _branch_maps(chain, ndim):
    return chain.full() or (IDENTITY,) * ndim


def _centres(m: AxisMap, period, ops):
    out = []
    for phi in range(period):
        reps, ph = divmod(phi, m.period)
        out.append(m.starts[ph] + m.jump * reps + ops.div(m.rfs[ph] - 1, 2))
    return out


def _alignment(branch_maps, ops):
    """(aligned, centres): whether every branch has the same centre on every axis and phase."""
    verdict = True
    centres = []
    for axis_maps in zip(*branch_maps):
        period = math.lcm(*(m.period for m in axis_maps))
        cs = [_centres(m, period, ops) for m in axis_maps]
        centres.append(tuple(c[0] for c in cs))
        strides = [ops.div(m.jump, m.period) for m in axis_maps]
        if any(ops.equal(st, strides[0]) is False for st in strides[1:]):
            verdict = False  # a global branch (jump 0) beside a local one
        for c in cs[1:]:
            for a, b in zip(cs[0], c):
                same = ops.equal(a, b)
                if same is False:
                    verdict = False
                elif same is None and verdict is True:
                    verdict = None
    per_branch = tuple(tuple(axis[b] for axis in centres) for b in range(len(branch_maps)))
    return verdict, per_branch


def _agree(values, names, what, ops, where):
    """Sizes or channels that must agree across branches (error when provably different)."""
    first = values[0]
    for name, v in zip(names[1:], values[1:]):
        if first is None or v is None:
            continue
        for a, b in zip(first if isinstance(first, tuple) else (first,), v if isinstance(v, tuple) else (v,)):
            if ops.equal(a, b) is False:
                raise GraphError(f"{where}: branches must have the same {what} to merge: "
                                 f"{names[0]} gives {_show(first)}, {name} gives {_show(v)}")


def _show(v):
    if isinstance(v, tuple):
        return "(" + ", ".join(_show(x) for x in v) + ")"
    if isinstance(v, np.ndarray):
        return np.array2string(v) if v.size < 8 else f"array{v.shape}"
    return str(v)


def _merge_block(layer, state, ctx, walk, parts, merge_type):
    where = ctx.where
    names = [_label(layer, p) for p, _ in parts]
    outs = [walk(_as_seq(b), state, p) for p, b in parts]
    states = [s for s, _ in outs]
    chains = [c for _, c in outs]
    _agree([s.sizes for s in states], names, "output size", ctx.ops, where)
    if merge_type == "Add":
        _agree([s.channels for s in states], names, "channels (addition)", ctx.ops, where)
        channels = states[0].channels
    else:
        chans = [s.channels for s in states]
        channels = None if any(c is None for c in chans) else sum(chans[1:], chans[0])
    cache = {}

    def maps(ops):
        if "maps" not in cache:
            bm = [_branch_maps(c, ctx.ndim) for c in chains]
            cache["branches"] = bm
            out = next((s.sizes for s in states if s.sizes is not None), None)
            lasts = (None,) * ctx.ndim if out is None else tuple(n - 1 for n in out)
            try:
                cache["maps"] = tuple(merge(axis, ops, names, last) for axis, last in zip(zip(*bm), lasts))
            except GraphError as err:
                raise GraphError(f"{where}: {err}") from None
        return cache["maps"]

    def aligned():
        maps(ctx.ops)
        return _alignment(cache["branches"], ctx.ops)

    maps(ctx.ops)  # jump agreement is checked when the graph is built
    extra = {"aligned": lambda: aligned()[0], "branch_centers": lambda: aligned()[1],
             "branch_names": lambda: tuple(names)}
    sizes = next((s.sizes for s in states if s.sizes is not None), None) if state.sizes is not None else None
    return State(sizes, channels), maps, merge_type, 0, 0, extra


@register_block(Residual)
def _residual(layer, state, ctx, walk):
    return _merge_block(layer, state, ctx, walk, [("body", layer.body), ("shortcut", layer.shortcut)], "Add")


@register_block(Graph)
def _graph(layer, state, ctx, walk):
    out, chain = walk(layer.to_tree(), state, "")
    return out, (lambda ops: _branch_maps(chain, ctx.ndim)), None, 0, 0


@register_block(Concat)
def _concat(layer, state, ctx, walk):
    parts = [(f"branch {b}", br) for b, br in enumerate(layer.branches)]
    return _merge_block(layer, state, ctx, walk, parts, "Concat")


# =========================================================================== transposed / upsample
def _concrete_int(ctx, value, param, why):
    c = ctx.ops.concrete(value)
    if c is None:
        raise LayerError(f"{param} must be a number here ({why}), got {value}", where=ctx.where, param=param)
    return c


def _divisible(ops, a, b):
    if ops.symbolic:
        return (sp.sympify(a) / b).is_integer is True
    return bool(np.all(np.asarray(a) % b == 0))


def _transposed_axis(ctx, k, s, d, pl):
    """AxisMap of one axis of a transposed convolution (see :class:`ConvTranspose`)."""
    ops = ctx.ops
    if ops.concrete(s) == 1:
        extent = d * (k - 1) + 1
        return AxisMap.affine(pl - d * (k - 1), 1, extent)
    why = "a transposed convolution with stride > 1 has one receptive field per output phase"
    s = _concrete_int(ctx, s, "stride", why)
    d = _concrete_int(ctx, d, "dilation", why)
    pl = _concrete_int(ctx, pl, "padding", why)
    if math.gcd(s, d) != 1:
        raise LayerError(f"stride {s} and dilation {d} share a factor, so some output phases read no "
                         "input at all; rfsym does not model empty receptive fields", where=ctx.where,
                         param="dilation")
    kc = ops.concrete(k)
    if kc is None and not (d == 1 and _divisible(ops, k, s)):
        raise LayerError(f"kernel_size {k} must be a number, or a multiple of the stride {s} with "
                         "dilation 1, for a closed form per output phase", where=ctx.where,
                         param="kernel_size")
    inv = pow(d, -1, s)
    starts, rfs = [], []
    for phi in range(s):
        t0 = ((phi + pl) * inv) % s  # smallest tap landing on this phase
        if kc is not None:
            if t0 > kc - 1:
                raise LayerError(f"outputs o ≡ {phi} (mod {s}) read no input (kernel_size {kc} < "
                                 f"stride {s}); rfsym does not model empty receptive fields",
                                 where=ctx.where, param="kernel_size")
            count = (kc - 1 - t0) // s + 1
        else:
            count = ops.div(k, s) if ops.symbolic else np.asarray(k) // s
        t_last = t0 + (count - 1) * s
        starts.append(ops.floordiv(phi + pl - t_last * d, s) if not ops.symbolic
                      else sp.sympify(phi + pl - t_last * d) / s)
        rfs.append((count - 1) * d + 1)
    return _reduce(AxisMap(s, 1, tuple(starts), tuple(rfs)), ops)


@register_layer(ConvTranspose)
def _conv_transpose(layer, state, ctx):
    maps, sizes = [], []
    kprod = 1
    ops_pad = layer.output_paddings(ctx.ndim)
    for axis, w in enumerate(layer.windows(ctx.ndim)):
        k = ctx.val(w.kernel, "kernel_size", 1)
        s = ctx.val(w.stride, "stride", 1)
        d = ctx.val(w.dilation, "dilation", 1)
        pl, pr = ctx.val(w.pad[0], "padding", 0), ctx.val(w.pad[1], "padding", 0)
        op = ctx.val(ops_pad[axis], "output_padding", 0)
        kprod = kprod * k
        maps.append(_transposed_axis(ctx, k, s, d, pl))
        n = state.sizes[axis] if state.sizes else None
        if n is not None:
            out = (n - 1) * s - pl - pr + d * (k - 1) + 1 + op
            _check_size(out, ctx, axis, n)
            sizes.append(out)
    cout, params, macs = conv_counts(layer, state, ctx, kprod, state.sizes)
    return LeafOut(tuple(maps), State(tuple(sizes) if state.sizes else None, cout), params, macs)


def _upsample_axis(ctx, f, mode, align_corners, n):
    ops = ctx.ops
    if f == 1:
        return IDENTITY
    if mode == "nearest":
        return AxisMap(f, 1, (0,) * f, (1,) * f)
    if not align_corners:
        starts, rfs = [], []
        for phi in range(f):
            num, den = 2 * phi + 1 - f, 2 * f  # x = num/den for m = 0
            starts.append(num // den)
            rfs.append(1 if num % den == 0 else 2)
        return _reduce(AxisMap(f, 1, tuple(starts), tuple(rfs)), ops)
    if n is None:
        raise LayerError("bilinear upsampling with align_corners=True depends on the input size; "
                         "pass input_size to analyze", where=ctx.where, param="align_corners")
    nc = _concrete_int(ctx, n, "input_size", "align_corners=True reads positions o(n-1)/(nf-1)")
    out, den = nc * f, nc * f - 1
    starts, rfs = [], []
    for o in range(out):
        num = o * (nc - 1)
        lo = num // den
        starts.append(lo)
        rfs.append(2 if num % den and lo < nc - 1 else 1)
    return _reduce(AxisMap(out, nc, tuple(starts), tuple(rfs)), ops)


@register_layer(Upsample)
def _upsample(layer, state, ctx):
    fs = L._per_axis(layer.scale_factor, ctx.ndim, "scale_factor", layer)
    maps, sizes = [], []
    for axis, f in enumerate(fs):
        n = state.sizes[axis] if state.sizes else None
        maps.append(_upsample_axis(ctx, int(f), layer.mode, layer.align_corners, n))
        if n is not None:
            sizes.append(n * int(f))
    return LeafOut(tuple(maps), State(tuple(sizes) if state.sizes else None, state.channels))


@register_layer(Crop)
def _crop(layer, state, ctx):
    maps, sizes = [], []
    for axis, (left, right) in enumerate(layer.amounts(ctx.ndim)):
        left, right = ctx.val(left, "amount", 0), ctx.val(right, "amount", 0)
        maps.append(AxisMap.affine(left, 1, 1))
        n = state.sizes[axis] if state.sizes else None
        if n is not None:
            out = n - left - right
            _check_size(out, ctx, axis, n)
            sizes.append(out)
    return LeafOut(tuple(maps), State(tuple(sizes) if state.sizes else None, state.channels))


# =========================================================================== repeat
def _size_symbols(ndim):
    return tuple(sp.Symbol(f"_rfsym_x{a}", integer=True, positive=True) for a in range(ndim))


_CHANNELS = sp.Symbol("_rfsym_c", integer=True, positive=True)
_T = sp.Dummy("t", integer=True, nonnegative=True)  # the repetition number in sums and products
_Q = sp.Dummy("q", integer=True, nonnegative=True)


def _floor_form(e, x):
    """``(c, S)`` with ``e == floor((x + c)/S)`` for every integer ``x``, or None.

    Chains of floor-mode convolutions and pools have this form, since
    ``floor((floor(y) + c)/s) == floor((y + c)/s)`` for integers ``c`` and ``s > 0``.
    """
    e = sp.sympify(e)
    if e == x:
        return sp.Integer(0), sp.Integer(1)
    if not e.has(x):
        return None
    if e.is_Add:
        var = [a for a in e.args if a.has(x)]
        if len(var) != 1:
            return None
        k = e - var[0]
        inner = _floor_form(var[0], x)
        if inner is None or k.is_integer is not True:
            return None
        c, S = inner
        return sp.expand(c + k * S), S
    if isinstance(e, (sp.floor, sp.ceiling)):
        terms = sp.Add.make_args(sp.expand(e.args[0]))
        var = [t for t in terms if t.has(x)]
        if len(var) != 1:
            return None
        alpha, dep = var[0].as_independent(x, as_Add=False)
        q = sp.simplify(1 / alpha)
        if q.is_integer is not True or q.is_positive is not True:
            return None
        inner = _floor_form(dep, x)
        if inner is None:
            return None
        b = sp.expand(sp.Add(*[t for t in terms if not t.has(x)]) * q)
        if b.is_integer is not True:
            return None
        if isinstance(e, sp.ceiling):
            b = b + q - 1
        c, S = inner
        return sp.expand(c + b * S), S * q
    return None


def _affine_form(e, x):
    """``(a, b)`` with ``e == a·x + b`` (upsampling blocks), or None."""
    e = sp.expand(sp.sympify(e))
    if e.has(sp.floor, sp.ceiling, sp.Max, sp.Min, sp.Piecewise):
        return None
    poly = sp.Poly(e, x) if e.has(x) else None
    if poly is None or poly.degree() != 1:
        return None
    a, b = poly.all_coeffs()
    return a, b


def _prod_upto(f, i, t):
    """``Π_{q < t} f(q)`` (``f`` an expression in ``i``)."""
    if not f.has(i):
        return f ** t
    q = sp.Dummy("q", integer=True, nonnegative=True)
    return sp.product(f.subs(i, q), (q, 0, t - 1))


def _sum_upto(term, t, lo, hi):
    """``Σ_{t=lo}^{hi} term``: sums of ``c·t^p·B^t`` terms in closed form (geometric series,
    ``B = 1`` kept as a Piecewise branch when undecidable); anything else by sympy summation."""
    term = sp.sympify(term)
    if not term.has(t):
        return term * (hi - lo + 1)
    groups = {}  # (p, B) -> coefficient
    rest = []
    for piece in sp.Add.make_args(sp.expand(term, power_exp=True, mul=True, multinomial=True)):
        key = _geometric_term(piece, t)
        if key is None:
            rest.append(piece)
        else:
            (p, B), c = key
            groups[(p, B)] = groups.get((p, B), 0) + c
    out = sp.Integer(0)
    count = hi - lo + 1
    for (p, B), c in groups.items():
        if p == 0:
            if B == 1:
                out += c * count
            else:
                out += c * B**lo * SymOps.geom(B, count)
        else:
            out += c * sp.summation(t**p * B**t, (t, lo, hi))
    if rest:
        rest = sp.Add(*rest)
        if rest.has(sp.floor, sp.ceiling, sp.Piecewise, sp.Max, sp.Min):
            out += sp.Sum(rest, (t, lo, hi))  # sympy's summation can stall on these: keep it unevaluated
        else:
            out += sp.summation(rest, (t, lo, hi))
    return out


def _geometric_term(piece, t):
    """``((p, B), c)`` with ``piece == c·t^p·B^t``, or None."""
    coeff, p, B = sp.Integer(1), 0, sp.Integer(1)
    for f in sp.Mul.make_args(piece):
        if not f.has(t):
            coeff *= f
        elif f == t:
            p += 1
        elif f.is_Pow and f.base == t and f.exp.is_Integer and f.exp > 0:
            p += int(f.exp)
        elif f.is_Pow and not f.base.has(t):
            e = sp.expand(f.exp)
            a_, c_ = e.as_independent(t, as_Add=True)[1], e.as_independent(t, as_Add=True)[0]
            slope = sp.simplify(a_ / t)
            if slope.has(t):
                return None
            coeff *= f.base ** c_
            B *= f.base ** slope
        elif isinstance(f, sp.exp):
            return None
        else:
            return None
    return (p, B), coeff


def _closed_affine(u, j, r, i, n, ops):
    """Start, jump and rf of ``n`` repetitions of the affine map ``(u(i), j(i), r(i))``."""
    if not (u.has(i) or j.has(i) or r.has(i)):
        g = ops.geom(j, n)
        return u * g, ops.pow(j, n), 1 + (r - 1) * g
    P = _prod_upto(j, i, _T)
    start = _sum_upto(u.subs(i, _T) * P, _T, 0, n - 1)
    rf = 1 + _sum_upto((r.subs(i, _T) - 1) * P, _T, 0, n - 1)
    return start, P.subs(_T, n), rf


class _SizeLaw:
    """The size of one axis before repetition ``t``: exact (``size``) and with the stated
    divisibility assumption (``assumed``, floor-free, used for MACs)."""

    condition = None  # set when whether the padding rounds up is undecidable
    assumed_if = None  # the size under the other assumption, used when ``condition`` holds

    def __init__(self, f, x, i, x0):
        self.x0 = x0
        self.divisible = True
        if f is None:
            self.size = self.assumed = None
            return
        ff = _floor_form(f, x)
        if ff is not None:
            c, S = ff
            if S == 1:
                total = _sum_upto(c.subs(i, _T), _T, 0, _T - 1) if c.has(i) else c * _T
                self.size = self.assumed = x0 + total
                return
            P = _prod_upto(S, i, _T)
            C = _sum_upto(c.subs(i, _Q) * _prod_upto(S, i, _Q).subs(_T, _Q), _Q, 0, _T - 1) \
                if (c.has(i) or S.has(i)) else c * SymOps.geom(S, _T)
            self.size = sp.floor((x0 + C) / P)
            rounds_up = (sp.Ge(c, 0) & sp.Lt(c, S)).subs(i, _T) if (c.has(i) or S.has(i)) \
                else sp.And(sp.Ge(c, 0), sp.Lt(c, S))
            self.divisible = rounds_up is sp.true
            self.assumed = x0 / P if self.divisible else (x0 + C) / P
            if rounds_up is not sp.true and rounds_up is not sp.false:
                # undecidable (symbolic kernel or padding): keep both assumptions, chosen by a Piecewise
                self.condition, self.assumed_if = rounds_up, x0 / P
            return
        af = _affine_form(f, x)
        if af is not None:
            a, b = af
            if a.has(i) or b.has(i):
                self.size = self.assumed = None
                return
            self.size = self.assumed = a ** _T * x0 + b * SymOps.geom(a, _T)
            return
        self.size = self.assumed = None


def _drop_floors(expr, xs, divisible):
    """Replace each ``floor((x + c)/S)`` of an input size ``x`` by its value under the assumption
    of the module docstring: ``x/S + floor(c/S)`` when ``x`` is divisible by the strides
    (``divisible[axis]``), else ``(x + c)/S`` (exact division)."""
    def value(e):
        for x, div in zip(xs, divisible):
            ff = _floor_form(e, x)
            if ff is not None:
                c, S = ff
                return x / S + sp.floor(c / S) if div else (x + c) / S
        return e
    return sp.sympify(expr).replace(lambda e: isinstance(e, (sp.floor, sp.ceiling)) and e.has(*xs), value)


def _channel_law(g, c, i, c0):
    """Channels entering repetition ``t`` (an expression in ``_T``), or None."""
    if g is None or c0 is None:
        return None
    g = sp.sympify(g)
    if g == c:
        return c0
    if not g.has(c):
        # repetition 0 reads c0, repetition t >= 1 reads what t - 1 wrote
        return sp.Piecewise((c0, sp.Eq(_T, 0)), (g.subs(i, _T - 1), True))
    af = _affine_form(g, c)
    if af is not None and not any(v.has(i) for v in af):
        a, b = af
        return a ** _T * c0 + b * SymOps.geom(a, _T)
    return None


def _sum_reps(term, n, c_law):
    """``Σ_{t=0}^{n-1} term(t)``; a Piecewise channel law is split off at ``t = 0``."""
    term = sp.sympify(term)
    if isinstance(c_law, sp.Piecewise) and term.has(_CHANNELS):
        first = term.subs(_CHANNELS, c_law.args[0][0]).subs(_T, 0)
        rest = term.subs(_CHANNELS, c_law.args[1][0])
        return first + _sum_upto(rest, _T, 1, n - 1)
    if c_law is not None:
        term = term.subs(_CHANNELS, c_law)
    return _sum_upto(term, _T, 0, n - 1)


def _repeat_symbolic(layer, state, ctx):
    """Closed forms for a symbolic number of repetitions (SymOps)."""
    ops, i, n = ctx.ops, layer.index, layer.n
    xs = _size_symbols(ctx.ndim) if state.sizes is not None else None
    cin = _CHANNELS if state.channels is not None else None
    try:
        probe = analyze(layer.block, input_size=xs, ndim=ctx.ndim, in_channels=cin)
        starts, jumps, rfs, periods = (probe.axes(q) for q in ("start", "jump", "rf", "period"))
    except LayerError as err:
        raise LayerError(f"in the repeated block: {err}", where=ctx.where) from None
    if any(p != 1 for p in periods):
        raise LayerError(f"a block whose receptive field depends on the output position (period "
                         f"{periods}) can only be repeated an integer number of times, got n={n}",
                         where=ctx.where, param="n")
    if xs is not None and all(sp.sympify(j) == 0 for j in jumps):
        # a global block (jump 0, e.g. squeeze-and-excitation): repetitions after the first add
        # nothing, so its field at the actual input size is the whole story (geom(0, n) = 1, n >= 1)
        first = dict(zip(xs, state.sizes))
        if i is not None:
            first[i] = 0
        starts, rfs = ([sp.sympify(v).subs(first, simultaneous=True) for v in vs] for vs in (starts, rfs))
    if xs is not None and any(sp.sympify(v).has(*xs) for v in (*starts, *jumps, *rfs)):
        raise LayerError(f"the repeated block's receptive field depends on its input size (TensorFlow "
                         f"SAME padding, global or adaptive pooling), which changes from repetition "
                         f"to repetition; give n as a number, got n={n}",
                         where=ctx.where, param="n")
    maps = []
    for u, j, r in zip(starts, jumps, rfs):
        start, jump, rf = _closed_affine(sp.sympify(u), sp.sympify(j), sp.sympify(r), i, n, ops)
        maps.append(AxisMap.affine(start, jump, rf))
    # sizes
    sizes = None
    laws = None
    if xs is not None:
        outs = probe.axes("out_size")
        laws = [_SizeLaw(f, x, i, x0) for f, x, x0 in zip(outs, xs, state.sizes)]
        bad = [a for a, law in enumerate(laws) if law.size is None]
        if bad:
            raise LayerError(f"the repeated block maps the size x of axis {bad[0]} to {outs[bad[0]]}; "
                             "rfsym solves the size recurrence for floor((x + c)/S) and a·x + b "
                             "only; give n as a number", where=ctx.where, param="n")
        sizes = tuple(law.size.subs(_T, n) for law in laws)
    c_law = _channel_law(probe.out_channels, cin, i, state.channels) if cin is not None else None
    channels = probe.out_channels if cin is None else (None if c_law is None else c_law.subs(_T, n))
    if isinstance(channels, sp.Piecewise):
        channels = sp.piecewise_fold(channels)
    if channels is not None and cin is None and channels.has(i):
        channels = channels.subs(i, n - 1)

    def per_rep(expr, rounding=False):
        """One repetition's value under the divisibility assumption; with ``rounding`` the laws
        whose rounding is undecidable take the other assumption."""
        if expr is None:
            return None
        expr = sp.sympify(expr)
        if expr.has(_CHANNELS) and c_law is None:
            return None
        expr = expr.subs(i, _T)
        if xs is not None:
            flip = [rounding and law.condition is not None for law in laws]
            expr = _drop_floors(expr, xs, [law.divisible or f for law, f in zip(laws, flip)])
            expr = expr.subs({x: (law.assumed_if if f else law.assumed)
                              for x, law, f in zip(xs, laws, flip)}, simultaneous=True)
        return expr

    def total(expr):
        term = per_rep(expr)
        if term is None:
            return None
        out = _sum_reps(term, n, c_law)
        conds = [law.condition for law in laws or () if law.condition is not None]
        if conds:  # never guess an undecidable assumption: keep both, as a Piecewise
            alt = _sum_reps(per_rep(expr, rounding=True), n, c_law)
            out = sp.Piecewise((alt, sp.And(*conds).subs(_T, 0)), (out, True))
        return out

    params = total(probe.params)
    macs = total(probe.macs)
    extra = {"aligned": lambda: probe.aligned}
    return State(sizes, channels), (lambda ops_: tuple(maps)), "Repeat", params, macs, extra


def _repeat_large(layer, state, ctx):
    """An integer n above MAX_UNROLL: the closed form for a symbolic n, then n substituted
    (refused when a value would be astronomically large, see :func:`~rfsym.symbols.bounded_subs`)."""
    big = sp.Dummy("n", integer=True, positive=True)
    out_state, maps_fn, kind, params, macs, extra = _repeat_symbolic(
        Repeat(layer.block, big, layer.index, name=layer.name), state, ctx)
    at = {big: layer.n}

    def sub(e, what):
        return bounded_subs(e, at, f"{what} after n={layer.n} repetitions")

    try:
        maps = tuple(AxisMap.affine(*(sub(v, w) for v, w in zip((m.starts[0], m.jump, m.rfs[0]),
                                                                 ("start", "jump", "rf"))))
                     for m in maps_fn(ctx.ops))
        sizes = None if out_state.sizes is None else tuple(sub(v, "out_size") for v in out_state.sizes)
        out_state = State(sizes, sub(out_state.channels, "out_channels"), out_state.flattened)
        params, macs = sub(params, "params"), sub(macs, "macs")
    except RfsymError as err:
        raise LayerError(str(err), where=ctx.where, param="n") from None
    for axis, size in enumerate(sizes or ()):
        _check_size(size, ctx, axis, state.sizes[axis])
    return out_state, (lambda ops_: maps), kind, params, macs, extra


_SAFE_SIZE = 1 << 20


def _repeat_numeric(layer, state, ctx):
    """A symbolic n evaluated on numpy arrays: on the distinct configurations of what the
    repetition depends on (its symbols, input sizes and channels; :class:`~rfsym.ops.Rows`),
    spread back to every configuration."""
    from .engine import Context

    names = sorted({s.name for s in layer.free_symbols} & set(ctx.values))
    sizes = tuple(state.sizes or ())
    rows = Rows.of([ctx.values[k] for k in names] + [*sizes, state.channels])
    if rows is None:
        return _repeat_unrolled(layer, state, ctx)
    cols = rows.columns
    sub = Context(ctx.ops, ctx.ndim, dict(zip(names, cols)))
    sub.where = ctx.where
    k = len(names)
    sub_state = State(tuple(cols[k:k + len(sizes)]) if state.sizes is not None else None, cols[-1],
                      state.flattened)
    out_state, maps_fn, kind, params, macs, extra = _repeat_unrolled(layer, sub_state, sub)
    e = rows.expand
    maps, previous = [], None
    for m in maps_fn(ctx.ops):
        fields = (m.starts[0], m.jump, m.rfs[0])
        if previous is not None and all(np.array_equal(a, b) for a, b in zip(fields, previous)):
            maps.append(maps[-1])  # the axes agree: one map object, composed once downstream
        else:
            maps.append(AxisMap.affine(*(e(v) for v in fields)))
        previous = fields
    maps = tuple(maps)
    sizes = None if out_state.sizes is None else tuple(e(v) for v in out_state.sizes)
    return (State(sizes, e(out_state.channels), out_state.flattened), (lambda ops_: maps), kind,
            e(params), e(macs), extra)


def _repeat_unrolled(layer, state, ctx):
    """A symbolic n evaluated on numpy arrays: masked unrolling up to max(n), exact."""
    n = np.asarray(ctx.val(layer.n, "n", 0))
    nd = ctx.ndim
    U, J, R = [0] * nd, [1] * nd, [1] * nd
    sizes, chans = state.sizes, state.channels
    params = 0
    macs = 0 if sizes is not None else None
    aligned = True
    xs = _size_symbols(nd) if sizes is not None else None
    same_block = layer.index is None or layer.index not in layer.block.free_symbols
    for k in range(int(n.max()) if n.size else 0):
        active = k < n
        before = sizes, chans
        values = dict(ctx.values)
        if xs is not None:
            for x, v in zip(xs, sizes):
                values[x.name] = np.where(active, v, _SAFE_SIZE)
        if chans is not None:
            values[_CHANNELS.name] = np.asarray(chans)
        r = analyze(layer.at(k), input_size=xs, ndim=nd,
                    in_channels=None if chans is None else _CHANNELS, _ops=NumOps, _values=values)
        if any(np.any(np.asarray(p) != 1) for p in r.axes("period")):
            raise LayerError("a block whose receptive field depends on the output position can only "
                             "be repeated an integer number of times", where=ctx.where, param="n")
        for a, (u, j, rf) in enumerate(zip(r.axes("start"), r.axes("jump"), r.axes("rf"))):
            U[a] = np.where(active, U[a] + J[a] * u, U[a])
            R[a] = np.where(active, R[a] + J[a] * (rf - 1), R[a])
            J[a] = np.where(active, J[a] * j, J[a])
        if sizes is not None:
            sizes = tuple(np.where(active, o, v) for o, v in zip(r.axes("out_size"), sizes))
        params = None if params is None or r.params is None else params + np.where(active, r.params, 0)
        macs = None if macs is None or r.macs is None else macs + np.where(active, r.macs, 0)
        if r.out_channels is not None:
            chans = r.out_channels if chans is None else np.where(active, r.out_channels, chans)
        if not r.aligned:
            aligned = False
        if same_block and _fixed_point(before, (sizes, chans), active):
            # repetition k + 1 reads what repetition k read: so do all the others, in closed form
            m = np.maximum(n - (k + 1), 0)
            for a, (u, j, rf) in enumerate(zip(r.axes("start"), r.axes("jump"), r.axes("rf"))):
                g = NumOps.geom(j, m)
                U[a] = U[a] + J[a] * u * g
                R[a] = R[a] + J[a] * (rf - 1) * g
                J[a] = J[a] * NumOps.pow(np.asarray(j, dtype=np.int64), m)
            params = None if params is None else params + m * r.params
            macs = None if macs is None else macs + m * r.macs
            break
    maps = tuple(AxisMap.affine(_int(u), _int(j), _int(rf)) for u, j, rf in zip(U, J, R))
    extra = {"aligned": lambda: aligned}
    sizes = None if sizes is None else tuple(_int(s) for s in sizes)
    return (State(sizes, None if chans is None else _int(chans)), (lambda ops_: maps), "Repeat",
            _int(params), _int(macs), extra)


def _fixed_point(before, after, active):
    """Whether sizes and channels after a repetition equal those before it (where active)."""
    for old, new in zip((*(before[0] or ()), before[1]), (*(after[0] or ()), after[1])):
        if (old is None) != (new is None):
            return False
        if old is not None and not np.all((np.asarray(old) == np.asarray(new)) | ~active):
            return False
    return (before[0] is None) == (after[0] is None)


def _int(v):
    if v is None:
        return None
    return checked(v)


#: integer repeat counts above this use the closed form (with n substituted), not unrolling
MAX_UNROLL = 1000


@register_block(Repeat)
def _repeat(layer, state, ctx, walk):
    if sp.sympify(layer.n).is_Integer and int(layer.n) > MAX_UNROLL:
        if not ctx.ops.symbolic:  # the exact fast path re-runs on sympy; evaluate loops boundedly
            if ctx.ops.exact:
                raise LayerError("large repeat count: closed form on the sympy path", where=ctx.where)
            return _repeat_numeric(layer, state, ctx)
        return _repeat_large(layer, state, ctx)
    if sp.sympify(layer.n).is_Integer:
        out, chain = walk(layer.unrolled(), state, "")
        return out, (lambda ops: _branch_maps(chain, ctx.ndim)), None, 0, 0
    if ctx.ops.symbolic:
        return _repeat_symbolic(layer, state, ctx)
    return _repeat_numeric(layer, state, ctx)



# =========================================================================== enumeration
def _register_index_maps():
    """Crop's index map for the brute-force enumerator (output ``o`` reads ``o + left``); the
    other layers of this module have theirs in :mod:`rfsym.enumeration`."""
    from . import enumeration as E

    @E.register_index_map(Crop)
    def _crop_index_map(layer, sizes, ndim):
        amounts = layer.amount if isinstance(layer.amount, tuple) else (layer.amount,) * ndim
        pairs = [a if isinstance(a, tuple) else (a, a) for a in amounts]
        pairs = [(E.concrete_int(a, "amount", 0), E.concrete_int(b, "amount", 0)) for a, b in pairs]
        maps = tuple(E.Sliding(1, -left, 1) for left, _ in pairs)
        out = None if sizes is None else tuple(n - a - b for n, (a, b) in zip(sizes, pairs))
        return E.Leaf(maps, out)

    @E.register_index_map(Graph)
    def _graph_index_map(layer, sizes, ndim):
        return E.Branches((layer.to_tree(),), None)


_register_index_maps()
