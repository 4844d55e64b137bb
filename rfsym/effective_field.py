r"""The effective receptive field (ERF) in closed form.

Luo, Li, Urtasun, Zemel, "Understanding the Effective Receptive Field in Deep Convolutional
Neural Networks" (NeurIPS 2016) showed that the influence of the input on one output is roughly
Gaussian and fills a shrinking fraction of the theoretical receptive field. rfsym derives it.

Model (per spatial axis; the network is linearised):

* every layer spreads an output position over its taps with a *weight profile* that sums to 1:
  uniform by default (also average pooling; max pooling is linearised as uniform), or a profile
  you give (a sequence of tap weights, or ``"gaussian"`` with a width). Tap ``t`` of a layer with
  stride ``s``, padding ``p`` and dilation ``d`` sits at input position ``o·s - p + t·d``;
* the impulse response from output 0 back to the network input is the distribution of
  ``X = Σ_l j_{l-1}(-p_l + d_l T_l)`` with independent taps ``T_l``. Its **mean** is therefore
  ``Σ_l j_{l-1}(-p_l + d_l μ_l)`` (the theoretical centre when every profile is symmetric) and its
  **variance** ``Σ_l (j_{l-1} d_l)² σ_l²``; a uniform ``k``-tap profile has ``σ² = (k² - 1)/12``, so
  ``n`` stride-1 ``k``-tap layers give ``n(k² - 1)/12`` and the standard deviation grows like
  ``√n`` while the theoretical field grows like ``n``;
* the network is its DAG (:mod:`rfsym.dag`): every merge (``"add"``, ``"concat"``, ``"mul"``,
  residual and concatenation blocks) *mixes* its inputs' responses, with a weight ``w_b`` per
  edge (equal by default): the mean is ``Σ w_b m_b`` and the variance
  ``Σ w_b (v_b + m_b²) - mean²``; each node's moments are derived once, however many merges read
  it (a DenseNet block's response is the mixture over all its paths);
* global layers (global pooling, ``Linear``) spread uniformly over their whole input.

The Gaussian approximation ``N(mean, variance)`` gives the radius that holds a chosen mass
(``radius(sigmas=2)`` = 2σ, or ``radius(mass=0.95)``), and :meth:`ERF.ratio` compares its diameter
with the theoretical receptive field (``→ 0`` like ``1/√n``).

>>> from rfsym import Conv, Sequential, symbols
>>> n = symbols("n")
>>> e = erf(Sequential(*[Conv(3, padding=1)] * 4))
>>> e.variance, e.rf
(8/3, 9)
>>> erf(Sequential(Conv(5), Conv(5, stride=1, dilation=2))).variance
10
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import sympy as sp

from . import layers as L
from .engine import analyze
from .errors import RfsymError
from .lazy_numpy import np
from .symbols import subs as safe_subs

__all__ = ["erf", "ERF", "discrete_erf", "discrete_erf_map"]


@dataclass(frozen=True)
class _Moments:
    """One axis of a composite: output o -> X = jump·o + A, A with ``mean`` and ``var``."""

    jump: Any
    mean: Any
    var: Any


def _compose(lower: _Moments, upper: _Moments) -> _Moments:
    j = lower.jump
    return _Moments(j * upper.jump, lower.mean + j * upper.mean, lower.var + j**2 * upper.var)


def _mix(parts, weights) -> _Moments:
    jumps = {sp.simplify(p.jump) for p in parts}
    if len(jumps) > 1 and 0 in jumps:
        raise RfsymError("a global branch (jump 0: every output reads the same field, e.g. a "
                         "squeeze-and-excitation gate) cannot be mixed with a local branch in the "
                         "Gaussian model (the response is no longer jump·o + A); discrete_erf gives "
                         "the numeric response")
    if len(jumps) > 1:
        raise RfsymError(f"branches with different jumps cannot be mixed: {sorted(map(str, jumps))}")
    weights = [_real(x, "branch weight") for x in weights]
    total = sum(weights)
    w = [x / total for x in weights]
    mean = sum(wi * p.mean for wi, p in zip(w, parts))
    second = sum(wi * (p.var + p.mean**2) for wi, p in zip(w, parts))
    return _Moments(parts[0].jump, mean, sp.expand(second - mean**2))


def _profile_weights(profile, k):
    """Tap weights (sympy Rationals or floats) for a k-tap profile, summing to 1."""
    if isinstance(profile, str):
        if profile == "uniform":
            return None
        raise RfsymError(f"unknown profile {profile!r}: use 'uniform', a sequence of tap weights, "
                         "('gaussian', sigma) or a callable k -> weights")
    if isinstance(profile, tuple) and len(profile) == 2 and profile[0] == "gaussian":
        kc = _int(k, "a Gaussian profile's kernel size")
        sigma = profile[1]
        raw = [math.exp(-((t - (kc - 1) / 2) ** 2) / (2 * sigma**2)) for t in range(kc)]
    elif callable(profile):
        raw = list(profile(_int(k, "a callable profile's kernel size")))
    else:
        raw = list(profile)
    kc = _int(k, "a tap-weight profile's kernel size")
    if len(raw) != kc:
        raise RfsymError(f"profile has {len(raw)} taps but the layer's kernel has {kc}")
    if any(float(x) < 0 for x in raw) or float(sum(raw)) <= 0:
        raise RfsymError(f"profile weights must be nonnegative with a positive sum, got {raw}")
    exact = all(isinstance(x, (numbers.Rational, sp.Rational)) for x in raw)
    raw = [sp.Rational(x) if exact else sp.Float(float(x)) for x in raw]
    total = sum(raw)
    return [x / total for x in raw]


def _real(x, what):
    """A real number (int, float, Fraction or sympy number) as an exact sympy number; text and
    other objects are refused (never sympified)."""
    if isinstance(x, bool) or not isinstance(x, (numbers.Real, sp.Basic)) or \
            (isinstance(x, sp.Basic) and not (x.is_number and x.is_real)) or \
            (isinstance(x, float) and not math.isfinite(x)):
        raise RfsymError(f"{what} must be a real number, got {x!r}")
    return sp.nsimplify(x) if isinstance(x, float) else sp.sympify(x)


def _int(k, what):
    k = sp.sympify(k)
    if not k.is_Integer:
        raise RfsymError(f"{what} must be a number, got {k}")
    return int(k)


def _tap_moments(k, d, profile):
    """Mean and variance of tap positions ``t·d`` under the profile."""
    w = _profile_weights(profile, k)
    if w is None:
        return d * (k - 1) / sp.Integer(2), d**2 * (k**2 - 1) / sp.Integer(12)
    mu = sum(wi * t for t, wi in enumerate(w))
    var = sum(wi * (t - mu) ** 2 for t, wi in enumerate(w))
    return d * mu, d**2 * var


# ----------------------------------------------------------------- the DAG walk
class _Walker:
    """Per-layer profiles and per-merge branch weights, over the engine's DAG nodes."""

    def __init__(self, result, profiles, branch_weights):
        self.result = result
        self.ndim = result.ndim
        self.profiles = profiles or {}
        self.branch_weights = branch_weights or {}

    def profile_for(self, layer, index):
        for key in (index, layer.name, type(layer).__name__, type(layer)):
            if key is not None and key in self.profiles:
                return self.profiles[key]
        return self.profiles.get("default", "uniform")

    def weights_for(self, node):
        """The weights of a merge's inputs (one per edge; equal by default), by the merge node's
        name or the name of the block it comes from."""
        block = getattr(node.layer, "name", None)
        key = node.name if node.name in self.branch_weights else block
        weights = self.branch_weights.get(key, [1] * len(node.inputs))
        if len(weights) != len(node.inputs):
            raise RfsymError(f"branch weights for {key!r} give {len(weights)} values for "
                             f"{len(node.inputs)} branches")
        return weights

    def moments(self):
        """Per DAG node, the per-axis moments of output 0's response (each node once: a node
        read by several merges is derived once)."""
        ident = tuple(_Moments(sp.Integer(1), sp.Integer(0), sp.Integer(0)) for _ in range(self.ndim))
        memo = []

        def of(u):
            return ident if u < 0 else memo[u]

        for node in self.result.layers:
            if node.own_maps is None:  # a merge: its inputs' responses mix
                parts = [of(u) for u in node.inputs]
                weights = self.weights_for(node)
                try:
                    memo.append(tuple(_mix([p[a] for p in parts], weights) for a in range(self.ndim)))
                except RfsymError as err:
                    kind = type(node.layer).__name__ if node.layer is not None else node.type
                    raise RfsymError(f"{kind} {node.name!r}: {err}") from None
                continue
            _one_input(node)
            if isinstance(node.layer, L.Repeat):
                own = _repeat_moments(node.layer)
            else:
                own = self.leaf(node.layer, node)
            memo.append(tuple(_compose(a, b) for a, b in zip(of(node.inputs[0]), own)))
        return memo, of

    def leaf(self, layer, node):
        own = node.own_maps
        if own is None:
            raise RfsymError(f"layer {node.index} ({node.type}): no index map for the effective receptive field")
        windows = layer.windows(self.ndim) if hasattr(layer, "windows") else None
        out = []
        for axis, m in enumerate(own):
            if m.period != 1:
                raise RfsymError(f"layer {node.index} ({node.type}): the effective receptive field of "
                                 "position-dependent layers (transposed convolution, upsampling, uneven "
                                 "adaptive pooling) is not derived yet")
            if m.rfs[0] == 1 and m.jump == 1 and m.starts[0] == 0:
                out.append(_Moments(sp.Integer(1), sp.Integer(0), sp.Integer(0)))
                continue
            if windows is not None:
                k, d = windows[axis].kernel, windows[axis].dilation
            else:  # global layers: uniform over the whole input
                if m.rfs[0] is sp.oo:
                    raise RfsymError(f"layer {node.index} ({node.type}): a global layer's effective "
                                     "receptive field needs the input size")
                k, d = m.rfs[0], sp.Integer(1)
            mu, var = _tap_moments(k, d, self.profile_for(layer, node.index))
            out.append(_Moments(m.jump, m.starts[0] + mu, var))
        return tuple(out)


def _balanced(parts, ndim):
    if not parts:
        return tuple(_Moments(sp.Integer(1), sp.Integer(0), sp.Integer(0)) for _ in range(ndim))
    while len(parts) > 1:
        nxt = [tuple(_compose(a, b) for a, b in zip(parts[i], parts[i + 1]))
               for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


# ----------------------------------------------------------------- result
def _collapse(values):
    first = values[0]
    return first if all(sp.simplify(v - first) == 0 for v in values[1:]) else tuple(values)


def _tidy(x):
    x = sp.sympify(x)
    return sp.factor_terms(sp.simplify(x)) if x.free_symbols else sp.nsimplify(x) if x.is_Float is False else x


class ERF:
    """Closed forms of the effective receptive field of one output (see the module docstring).

    ``mean`` and ``variance`` are per axis (one value when all axes agree); ``result`` is the
    engine's :class:`~rfsym.engine.Result` of the same network (theoretical ``rf``, ``center``).
    """

    def __init__(self, moments, result):
        self._moments = moments
        self.result = result

    def axes(self, name):
        """Per-axis tuple of ``mean``, ``variance``, ``std``, ``shift``."""
        if name == "mean":
            return tuple(_tidy(m.mean) for m in self._moments)
        if name == "variance":
            return tuple(_tidy(m.var) for m in self._moments)
        if name == "std":
            return tuple(sp.sqrt(v) for v in self.axes("variance"))
        if name == "shift":
            return tuple(_tidy(m - c) for m, c in zip(self.axes("mean"), self.result.axes("center")))
        raise AttributeError(name)

    mean = property(lambda self: _collapse(self.axes("mean")), doc="Mean input position (output 0).")
    variance = property(lambda self: _collapse(self.axes("variance")), doc="Variance of the impulse response.")
    std = property(lambda self: _collapse(self.axes("std")), doc="Standard deviation σ.")
    shift = property(lambda self: _collapse(self.axes("shift")),
                     doc="Mean minus the theoretical centre (0 for symmetric profiles).")

    @property
    def rf(self):
        """The theoretical receptive field (from the engine)."""
        return self.result.rf

    def radius(self, sigmas=2, mass=None):
        """Radius of the Gaussian approximation: ``sigmas·σ``, or the radius holding ``mass``
        of a 1-D Gaussian (``√2·erfinv(mass)·σ``)."""
        if mass is not None:
            z = sp.sqrt(2) * sp.erfinv(_real(mass, "mass"))
        else:
            z = _real(sigmas, "sigmas")
        return _collapse(tuple(z * s for s in self.axes("std")))

    def ratio(self, sigmas=2, mass=None):
        """Diameter of the Gaussian region over the theoretical receptive field, per axis."""
        radius = self.radius(sigmas, mass)
        radii = radius if isinstance(radius, tuple) else (radius,) * self.result.ndim
        return _collapse(tuple(sp.simplify(2 * r / rf) for r, rf in zip(radii, self.result.axes("rf"))))

    def gaussian(self, x=None, axis=0):
        """The Gaussian density approximating the impulse response on one axis."""
        x = sp.Symbol("x", real=True) if x is None else x
        m, v = self.axes("mean")[axis], self.axes("variance")[axis]
        return sp.exp(-((x - m) ** 2) / (2 * v)) / sp.sqrt(2 * sp.pi * v)

    def subs(self, mapping) -> ERF:
        """Substitute symbols (keys may be names) in every moment."""
        by_name = {s.name: s for m in self._moments for e in (m.mean, m.var, m.jump)
                   for s in sp.sympify(e).free_symbols}
        m = {by_name.get(k, k) if isinstance(k, str) else k: v for k, v in dict(mapping).items()}
        moments = tuple(_Moments(*(safe_subs(sp.sympify(e), m) for e in (x.jump, x.mean, x.var)))
                        for x in self._moments)
        return ERF(moments, self.result.subs(mapping))

    def __repr__(self):
        return f"<ERF mean={self.mean}, variance={self.variance}, rf={self.rf}>"


def erf(net: Any, input_size: Any = None, *, profiles: Any = None, branch_weights: dict | None = None,
        ndim: int | None = None, in_channels: Any = None) -> ERF:
    """Derive the effective receptive field of ``net`` (mean and variance per axis).

    ``profiles`` maps a layer index, layer name, layer class name or ``"default"`` to a profile:
    ``"uniform"`` (default), a sequence of tap weights, ``("gaussian", sigma)`` or a callable
    ``k -> weights``. ``branch_weights`` maps a merge node's name (or its block's) to the weights
    of its inputs, one per edge in the merge's input order (equal by default): the response of
    a merge is the weighted mixture of its inputs' responses, on any DAG.

    Args:
        net: an rfsym layer (a Sequential, a Graph with any fan-out and fan-in).
        input_size: the input size (needed for global layers).
        profiles: tap-weight profiles, as above.
        branch_weights: merge name -> weights of its inputs.
        ndim: the number of spatial axes, as in :func:`rfsym.analyze`.
        in_channels: the input's channels, as in :func:`rfsym.analyze`.

    Returns:
        The :class:`ERF` of the network's (first) output.

    Raises:
        RfsymError: a bad profile or weights, a position-dependent layer, a global input mixed
            with a local one.

    >>> from rfsym import Conv, Graph
    >>> g = Graph(("a", Conv(3, padding=1), "input"), ("b", Conv(3, padding=1), "a"),
    ...           ("cat", "concat", ("input", "a", "b")))
    >>> erf(g, ndim=1).variance  # (0 + 2/3 + 4/3) / 3: the input, one and two 3-tap layers
    2/3
    """
    result = analyze(net, input_size, ndim=ndim, in_channels=in_channels)
    _, of = _Walker(result, profiles, branch_weights).moments()
    return ERF(of(_output_index(result)), result)


def _output_index(result):
    """The DAG index of the result's (first) output; -1 when it is the input."""
    first = next(iter(result.outputs.values()))
    return first.index if first is not result else -1


# ----------------------------------------------------------------- exact discrete ERF
def discrete_erf(net, input_size=None, *, profiles=None, branch_weights=None, ndim=None):
    """The exact impulse response of output 0 per axis by convolving the profiles numerically.

    Returns a list (one per axis) of ``(positions, weights)`` numpy arrays: input coordinates
    (padding positions included) and the weight of each, summing to 1: the *marginal* of the
    impulse response on that axis (:func:`discrete_erf_map` gives the joint N-D response; for
    chains it is the outer product of the marginals, merges mix joint responses).
    Independent of the closed forms; used to verify them.

    >>> from rfsym import Conv, Sequential
    >>> pos, w = discrete_erf(Sequential(Conv(3), Conv(3)))[0]
    >>> pos.tolist(), (w * 9).round(6).tolist()
    ([0, 1, 2, 3, 4], [1.0, 2.0, 3.0, 2.0, 1.0])
    """
    origin, w = discrete_erf_map(net, input_size, profiles=profiles, branch_weights=branch_weights, ndim=ndim)
    out = []
    for axis in range(w.ndim):
        marginal = w.sum(axis=tuple(a for a in range(w.ndim) if a != axis))
        out.append((np.arange(origin[axis], origin[axis] + len(marginal)), marginal))
    return out


def discrete_erf_map(net, input_size=None, *, profiles=None, branch_weights=None, ndim=None):
    """The joint impulse response of output 0: ``(origin, weights)`` with ``weights`` an N-D array
    whose element ``[0, 0]`` sits at input coordinates ``origin`` (padding included).

    >>> from rfsym import Conv, Residual, Sequential
    >>> origin, w = discrete_erf_map(Residual(Sequential(Conv(3, padding=1))))
    >>> origin, (w * 18).round(6).tolist()
    ((-1, -1), [[1.0, 1.0, 1.0], [1.0, 10.0, 1.0], [1.0, 1.0, 1.0]])
    """
    result = analyze(net, input_size, ndim=ndim)
    walker = _Walker(result, profiles, branch_weights)
    t = _output_index(result)
    pending = {t: ((0,) * result.ndim, np.ones((1,) * result.ndim))}
    for node in reversed(result.layers[:t + 1]):  # each node pushed once, after all its readers
        if node.index not in pending:
            continue
        lo, w = pending.pop(node.index)
        if node.own_maps is None:
            weights = walker.weights_for(node)
            total = float(sum(weights))
            for u, wt in zip(node.inputs, weights):
                part = w * (float(wt) / total)
                if _broadcast(result, node, u):  # every output reads the input's one position
                    _accumulate(pending, u, (0,) * result.ndim, np.full((1,) * result.ndim, part.sum()))
                else:
                    _accumulate(pending, u, lo, part)
            continue
        _one_input(node)
        if isinstance(node.layer, L.Repeat):
            raise RfsymError(f"layer {node.index} ({node.type}): the exact discrete effective receptive "
                             f"field needs an integer number of repetitions, got n={node.layer.n}")
        _accumulate(pending, node.inputs[0], *_push(node.layer, node, walker, lo, w))
    return pending[-1]


def _one_input(node):
    """Refuse a layer reading two inputs (an Attention with queries of its own): its response
    mixes a global and a local part that the effective field does not model."""
    if len(node.inputs) > 1:
        raise RfsymError(f"layer {node.index} ({node.type} {node.name!r}): the effective receptive field of an "
                         "Attention with queries of its own (two inputs) is not supported")


def _broadcast(result, node, u):
    """Whether merge ``node`` broadcasts its input ``u`` (spatial size 1 against a larger one)."""
    if node.type == "Concat":
        return False
    size = result.input_size if u < 0 else result.layers[u].axes("out_size")
    mine = node.axes("out_size")
    return size is not None and mine is not None and all(n == 1 for n in size) and any(n != 1 for n in mine)


def _accumulate(pending, u, lo, w):
    """Add weights ``w`` (element 0 at coordinates ``lo`` of node ``u``'s grid) to ``u``'s."""
    if u not in pending:
        pending[u] = (tuple(lo), w)
        return
    plo, pw = pending[u]
    new_lo = tuple(min(a, b) for a, b in zip(plo, lo))
    hi = tuple(max(a + n, b + m) for a, n, b, m in zip(plo, pw.shape, lo, w.shape))
    acc = np.zeros(tuple(h - low for h, low in zip(hi, new_lo)))
    for start, arr in ((plo, pw), (lo, w)):
        acc[tuple(slice(b - low, b - low + n) for b, low, n in zip(start, new_lo, arr.shape))] += arr
    pending[u] = (new_lo, acc)


def _leaf_kernel(layer, node, walker, axis):
    """(start U, jump J, tap offsets, tap weights) of one layer on one axis, numerically."""
    m = node.own_maps[axis]
    U, J, R = (int(sp.sympify(v)) for v in (m.starts[0], m.jump, m.rfs[0]))
    if hasattr(layer, "windows"):
        win = layer.windows(walker.ndim)[axis]
        k, d = int(win.kernel), int(win.dilation)
    else:
        k, d = R, 1
    w = _profile_weights(walker.profile_for(layer, node.index), k)
    weights = np.full(k, 1.0 / k) if w is None else np.array([float(x) for x in w])
    return U, J, np.arange(k) * d, weights


def _push(layer, node, walker, lo, w):
    """Push weights ``w`` (N-D, element 0 at output coordinates ``lo``) down through one layer."""
    lo = list(lo)
    for axis in range(w.ndim):
        U, J, offsets, taps = _leaf_kernel(layer, node, walker, axis)
        if J == 1 and len(offsets) == 1 and U == 0:
            continue
        moved = np.moveaxis(w, axis, 0)
        acc = np.zeros((J * (moved.shape[0] - 1) + offsets[-1] + 1,) + moved.shape[1:])
        base = np.arange(moved.shape[0]) * J
        for off, tw in zip(offsets, taps):
            np.add.at(acc, base + off, moved * tw)  # unbuffered: a global layer (jump 0) repeats indices
        w = np.moveaxis(acc, 0, axis)
        lo[axis] = U + J * lo[axis]
    return tuple(lo), w


# ----------------------------------------------------------------- symbolic repeats
def _repeat_moments(layer):
    """Moments of ``n`` repetitions in closed form: sums over the repetition index."""
    inner = erf(layer.block, ndim=layer.ndim)._moments if layer.ndim else erf(layer.block)._moments
    i, n = layer.index, sp.sympify(layer.n)
    t = sp.Dummy("t", integer=True, nonnegative=True)
    out = []
    for m in inner:
        J, mu, v = (sp.sympify(x) for x in (m.jump, m.mean, m.var))
        if i not in (J.free_symbols | mu.free_symbols | v.free_symbols):
            from .ops import SymOps
            g = SymOps.geom(J, n)
            out.append(_Moments(J**n, mu * g, v * SymOps.geom(J**2, n)))
            continue
        before = sp.product(J.subs(i, t), (t, 0, i - 1))  # jump accumulated before repetition i
        mean = sp.summation(before * mu, (i, 0, n - 1))
        var = sp.summation(before**2 * v, (i, 0, n - 1))
        out.append(_Moments(sp.product(J, (i, 0, n - 1)), mean, var))
    return tuple(out)

