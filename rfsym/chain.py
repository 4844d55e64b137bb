"""Composition of index maps along a chain of layers, cached and balanced.

A :class:`Chain` holds the per-axis maps of consecutive layers (each a zero-argument callable
evaluated once) on top of a *base* (the maps from the network input to the chain's input). It
composes them in balanced order, so expressions stay ``O(log L)`` deep even for thousands of
symbolic layers, and runs of identical layers in closed form (:func:`~rfsym.maps.power`).

>>> from rfsym.maps import AxisMap
>>> from rfsym.ops import SymOps
>>> chain = Chain(SymOps, lambda: None)
>>> for _ in range(3):
...     chain.add(lambda: (AxisMap.affine(0, 1, 3),))
>>> chain.prefix(3)[0].rfs
(7,)
"""

from __future__ import annotations

import bisect
import dataclasses

import numpy as np

from .maps import compose, power

__all__ = ["Chain", "Once", "compose_axes", "hashable_maps"]


class Chain:
    """A Sequential's items with cached balanced compositions (prefixes in O(log L)).

    Runs of at least ``RUN`` consecutive layers with identical index maps are composed in closed
    form (:func:`~rfsym.maps.power`), so 10,000 copies of one symbolic layer give
    ``1 + (k - 1)·(s**n - 1)/(s - 1)`` instead of a 10,000-term sum.
    """

    RUN = 16

    def __init__(self, ops, base):
        self.ops = ops
        self.items = []  # each: a callable returning per-axis maps
        self.keys = []  # hashable maps of leaf items (None: never grouped)
        self._base = base  # callable -> per-axis maps at the chain's input
        self._seg = {}
        self._groups = None
        self._prefix = {}

    def add(self, fn, key=None):
        self.items.append(Once(fn))
        self.keys.append(key)
        self._groups = None
        self._prefix = {}

    def groups(self):
        """(first item, count) of each group: a run of >= RUN identical leaves, or one item."""
        if self._groups is None:
            groups, i, n = [], 0, len(self.items)
            while i < n:
                j = i + 1
                if self.keys[i] is not None:
                    while j < n and self.keys[j] == self.keys[i]:
                        j += 1
                if j - i >= self.RUN:
                    groups.append((i, j - i))
                else:
                    groups.extend((t, 1) for t in range(i, j))
                i = j
            self._groups = groups
            self._firsts = [g[0] for g in groups]
            self._seg = {}
        return self._groups

    def _group_maps(self, g, count=None):
        first, n = self.groups()[g]
        maps = self.items[first]()
        count = n if count is None else count
        if count == 1:
            return maps
        return tuple(power(m, count, self.ops) for m in maps)

    def seg(self, lo, hi):
        """Composition of groups lo..hi-1."""
        key = (lo, hi)
        if key not in self._seg:
            if hi - lo == 1:
                self._seg[key] = self._group_maps(lo)
            else:
                mid = (lo + hi) // 2
                self._seg[key] = compose_axes(self.seg(lo, mid), self.seg(mid, hi), self.ops)
        return self._seg[key]

    def _group_prefix(self, t, lo, hi):
        """Composition of groups lo..t-1 within the segment [lo, hi) (t > lo)."""
        if t == hi:
            return self.seg(lo, hi)
        mid = (lo + hi) // 2
        if t <= mid:
            return self._group_prefix(t, lo, mid)
        return compose_axes(self.seg(lo, mid), self._group_prefix(t, mid, hi), self.ops)

    def local_prefix(self, t):
        """Composition of items[0:t] (None for t == 0)."""
        if t == 0:
            return None
        groups = self.groups()
        g = bisect.bisect_right(self._firsts, t - 1) - 1
        first, count = groups[g]
        before = self._group_prefix(g, 0, len(groups)) if g > 0 else None
        if t - first == count:
            return self._group_prefix(g + 1, 0, len(groups))
        return compose_axes(before, self._group_maps(g, t - first), self.ops)

    def prefix(self, t):
        """Maps from the network input to the output of items[t - 1] (cached: the layers of a
        nested block share their parents' prefix)."""
        if t not in self._prefix:
            base = self._base()
            local = self.local_prefix(t)
            if local is None:
                self._prefix[t] = base
            else:
                self._prefix[t] = local if base is None else compose_axes(base, local, self.ops)
        return self._prefix[t]

    def full(self):
        return self.seg(0, len(self.groups())) if self.items else None


class Once:
    """A zero-argument callable evaluated once; then it drops the function. Items of a chain
    refer to nested chains, which refer back to their parent for prefixes: releasing the
    function after its first call breaks that reference cycle, so the (possibly huge) arrays of
    an evaluated result are freed as soon as the result is dropped, not at the next full
    garbage collection."""

    __slots__ = ("fn", "value")

    def __init__(self, fn):
        self.fn = fn

    def __call__(self):
        if self.fn is not None:
            self.value, self.fn = self.fn(), None
        return self.value


def hashable_maps(maps):
    """``maps`` when hashable (grouping identical layers), else None."""
    try:
        hash(maps)
    except TypeError:
        return None
    return maps


def compose_axes(lower, upper, ops):
    """Per-axis composition of two tuples of maps (either may be None: the identity)."""
    if lower is None:
        return upper
    if upper is None:
        return lower
    out = []
    for i, (a, b) in enumerate(zip(lower, upper)):
        if i and not ops.symbolic and _same_map(a, lower[i - 1]) and _same_map(b, upper[i - 1]):
            out.append(out[-1])  # square kernels: the axes agree, compose once (numeric backends)
        else:
            out.append(compose(a, b, ops))
    return tuple(out)


def _same_map(a, b) -> bool:
    """``a == b`` for maps of numbers; array fields count as equal only when identical."""
    if a is b:
        return True
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        xs, ys = (x, y) if isinstance(x, tuple) else ((x,), (y,))
        if len(xs) != len(ys):
            return False
        for u, v in zip(xs, ys):
            if u is not v and (isinstance(u, np.ndarray) or isinstance(v, np.ndarray) or u != v):
                return False
    return True
