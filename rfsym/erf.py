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
* residual and concatenation branches *mix*: with branch weights ``w_b`` (equal by default) the
  mean is ``Σ w_b m_b`` and the variance ``Σ w_b (v_b + m_b²) - mean²``;
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

import numpy as np
import sympy as sp

from . import layers as L
from .engine import analyze
from .errors import RfsymError

__all__ = ["erf", "ERF", "discrete_erf", "discrete_erf_map", "register_erf_block"]


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
    total = sum(weights)
    w = [sp.nsimplify(x) / total for x in weights]
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


# ----------------------------------------------------------------- structure walk
_BLOCKS: dict = {}


def register_erf_block(cls):
    """Decorator for graph layers: ``fn(layer, walk) -> (list_of_branch_moments, merge_kind)``
    where ``walk(seq)`` returns the branch's per-axis moments."""

    def deco(fn):
        _BLOCKS[cls] = fn
        return fn

    return deco


class _Walker:
    def __init__(self, result, profiles, branch_weights):
        self.result = result
        self.ndim = result.ndim
        self.nodes = iter(result.layers)
        self.profiles = profiles or {}
        self.branch_weights = branch_weights or {}

    def profile_for(self, layer, index):
        for key in (index, layer.name, type(layer).__name__, type(layer)):
            if key is not None and key in self.profiles:
                return self.profiles[key]
        return self.profiles.get("default", "uniform")

    def chain(self, seq) -> tuple:
        parts = [self.item(layer) for layer in seq.layers]
        return _balanced(parts, self.ndim)

    def item(self, layer):
        if isinstance(layer, L.Sequential):
            return self.chain(layer)
        for cls in type(layer).__mro__:
            if cls in _BLOCKS:
                branches, kind = _BLOCKS[cls](layer, self.chain)
                merge_node = next(self.nodes) if kind is not None else None
                key = layer.name or (merge_node.name if merge_node is not None else None)
                weights = self.branch_weights.get(key, [1] * len(branches))
                if len(weights) != len(branches):
                    raise RfsymError(f"branch weights for {key!r} give {len(weights)} values for "
                                     f"{len(branches)} branches")
                try:
                    return tuple(_mix([b[a] for b in branches], weights) for a in range(self.ndim))
                except RfsymError as err:
                    where = merge_node.name if merge_node is not None else key
                    raise RfsymError(f"{type(layer).__name__} {where!r}: {err}") from None
        node = next(self.nodes)
        return self.leaf(layer, node)

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
            z = sp.sqrt(2) * sp.erfinv(sp.nsimplify(mass))
        else:
            z = sp.nsimplify(sigmas)
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
        moments = tuple(_Moments(sp.sympify(x.jump).subs(m), sp.sympify(x.mean).subs(m),
                                 sp.sympify(x.var).subs(m)) for x in self._moments)
        return ERF(moments, self.result.subs(mapping))

    def __repr__(self):
        return f"<ERF mean={self.mean}, variance={self.variance}, rf={self.rf}>"


def erf(net, input_size=None, *, profiles=None, branch_weights=None, ndim=None, in_channels=None) -> ERF:
    """Derive the effective receptive field of ``net`` (mean and variance per axis).

    ``profiles`` maps a layer index, layer name, layer class name or ``"default"`` to a profile:
    ``"uniform"`` (default), a sequence of tap weights, ``("gaussian", sigma)`` or a callable
    ``k -> weights``. ``branch_weights`` maps a graph block's name to its branches' weights.
    """
    result = analyze(net, input_size, ndim=ndim, in_channels=in_channels)
    walker = _Walker(result, profiles, branch_weights)
    moments = walker.chain(result.network)
    return ERF(moments, result)


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
    plan = [_plan(layer, walker) for layer in result.network.layers]
    lo, w = (0,) * result.ndim, np.ones((1,) * result.ndim)
    return _apply("seq", plan, walker, lo, w)


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


def _plan(layer, walker):
    """The network's structure with each leaf paired with its engine node (consumed in order)."""
    if isinstance(layer, L.Sequential):
        return "seq", [_plan(x, walker) for x in layer.layers]
    for cls in type(layer).__mro__:
        if cls in _BLOCKS:
            seqs, kind = _BLOCKS[cls](layer, _identity_walk)
            branches = [[_plan(x, walker) for x in s.layers] for s in seqs]
            merge = next(walker.nodes) if kind is not None else None
            key = layer.name or (merge.name if merge is not None else None)
            weights = walker.branch_weights.get(key, [1] * len(branches))
            return "block", (branches, weights)
    return "leaf", (layer, next(walker.nodes))


def _apply(kind, payload, walker, lo, w):
    """Push weights ``w`` (N-D, element 0 at upper coordinates ``lo``) down through one item."""
    if kind == "seq":
        for k, p in reversed(payload):
            lo, w = _apply(k, p, walker, lo, w)
        return lo, w
    if kind == "block":
        branches, weights = payload
        results = [_apply("seq", plan, walker, lo, w) for plan in branches]
        new_lo = tuple(min(r[0][a] for r in results) for a in range(w.ndim))
        hi = tuple(max(r[0][a] + r[1].shape[a] for r in results) for a in range(w.ndim))
        acc = np.zeros(tuple(h - low for h, low in zip(hi, new_lo)))
        total = float(sum(weights))
        for (blo, bw), wt in zip(results, weights):
            idx = tuple(slice(b - low, b - low + n) for b, low, n in zip(blo, new_lo, bw.shape))
            acc[idx] += bw * (float(wt) / total)
        return new_lo, acc
    layer, node = payload
    lo = list(lo)
    for axis in range(w.ndim):
        U, J, offsets, taps = _leaf_kernel(layer, node, walker, axis)
        if J == 1 and len(offsets) == 1 and U == 0:
            continue
        moved = np.moveaxis(w, axis, 0)
        acc = np.zeros((J * (moved.shape[0] - 1) + offsets[-1] + 1,) + moved.shape[1:])
        base = np.arange(moved.shape[0]) * J
        for off, tw in zip(offsets, taps):
            acc[base + off] += moved * tw
        w = np.moveaxis(acc, 0, axis)
        lo[axis] = U + J * lo[axis]
    return tuple(lo), w


# ----------------------------------------------------------------- graph layers
def _register_graph():
    from . import layers as G

    def seq(layer):
        return layer if isinstance(layer, L.Sequential) else L.Sequential(layer)

    @register_erf_block(G.Residual)
    def _residual(layer, walk):
        return [walk(seq(layer.body)), walk(seq(layer.shortcut))], "Add"

    @register_erf_block(G.Concat)
    def _concat(layer, walk):
        return [walk(seq(b)) for b in layer.branches], "Concat"

    @register_erf_block(G.Repeat)
    def _repeat(layer, walk):
        if sp.sympify(layer.n).is_Integer:
            return [walk(layer.unrolled())], None
        if walk is _identity_walk:
            raise RfsymError("the exact discrete effective receptive field needs an integer number of "
                             f"repetitions, got n={layer.n}")
        return [_repeat_moments(layer)], "Repeat"


def _identity_walk(s):
    return s


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


_register_graph()
