"""Composition of index maps along a chain of layers, cached and balanced.

A :class:`Chain` holds the per-axis maps of consecutive layers on top of a *base* (the maps
from the network input to the chain's input). It composes symbolic ones in balanced order, so
expressions stay ``O(log L)`` deep even for thousands of symbolic layers, exact numbers in
order (every prefix one step from the one before), and runs of identical layers in closed form
(:func:`~rfsym.maps.power`).

>>> from rfsym.maps import AxisMap
>>> from rfsym.ops import SymOps
>>> chain = Chain(SymOps, lambda: None)
>>> for _ in range(3):
...     before, after = chain.add((AxisMap.affine(0, 1, 3),))
>>> after()[0].rfs, before()[0].rfs
((7,), (5,))
"""

from __future__ import annotations

import bisect

from .lazy_numpy import np
from .maps import AxisMap, affine_numbers, compose, power

__all__ = ["Chain", "Prefix", "compose_axes", "hashable_maps"]


class Chain:
    """A Sequential's items with cached compositions (prefixes in O(log L)).

    Runs of at least ``RUN`` consecutive layers with identical index maps are composed in closed
    form (:func:`~rfsym.maps.power`), so 10,000 copies of one symbolic layer give
    ``1 + (k - 1)·(s**n - 1)/(s - 1)`` instead of a 10,000-term sum.

    Symbolic chains are composed in balanced order (expressions stay ``O(log L)`` deep). On
    exact numbers (:class:`~rfsym.ops.ExactOps`) a chain of period-1 maps on a period-1 base is
    composed in order instead, group after group: every prefix is then one composition away
    from the one before, so all L prefixes cost O(L). The two orders agree exactly there: on
    period-1 maps composition is exact affine arithmetic (``start``, ``jump`` and ``rf`` are
    associative; the map's ``step`` may differ, but a period-1 map from the network input is
    only ever composed as the lower map, where :func:`~rfsym.maps.compose` does not read it).
    """

    RUN = 16

    def __init__(self, ops, base, identity=None):
        self.ops = ops
        self.identity = identity  # the composite of an empty chain on no base
        self.items = []  # per-axis maps of each item
        self.keys = []  # hashable maps of leaf items, one object per value (None: never grouped)
        self._base = base  # callable -> per-axis maps at the chain's input
        self._seg = {}
        self._groups = None
        self._prefix = {}
        self._in_order = ops.numbers  # exact numbers: composed in order
        self._cum = None  # in order: the composites at every CHECKPOINT-th item
        self._last = None  # the Prefix of the whole chain so far
        self._size = 0  # the items the caches were made for

    def add(self, maps, key=None):
        """Append an item (its per-axis maps; items whose ``key`` is one object are grouped
        into runs, None never).

        Returns:
            ``(before, after)``: :class:`Prefix` callables giving the composites at the item's
            input and output.
        """
        before = self._last if self._last is not None else Prefix(self, 0)
        self.items.append(maps)
        self.keys.append(key)
        self._last = after = Prefix(self, len(self.items))
        return before, after

    def _current(self):
        """Drop what was composed before the last items were added (then the caches hold)."""
        if self._size != len(self.items):
            self._size = len(self.items)
            self._groups, self._prefix, self._cum = None, {}, None

    def groups(self):
        """(first item, count) of each group: a run of >= RUN identical leaves, or one item.
        Keys are compared by identity: equal keys are one object (the engine interns them)."""
        self._current()
        if self._groups is None:
            groups, i, keys = [], 0, self.keys
            n, run = len(keys), self.RUN
            add = groups.append
            while i < n:
                key = keys[i]
                j = i + 1
                if key is not None:
                    while j < n and keys[j] is key:
                        j += 1
                if j - i >= run:
                    add((i, j - i))
                else:
                    for t in range(i, j):
                        add((t, 1))
                i = j
            self._groups = groups
            self._firsts = [g[0] for g in groups]
            self._seg = {}
        return self._groups

    def _group_maps(self, g, count=None):
        first, n = self.groups()[g]
        maps = self.items[first]
        count = n if count is None else count
        if count == 1:
            return maps
        out = []
        for i, m in enumerate(maps):
            out.append(out[-1] if i and m is maps[i - 1] else power(m, count, self.ops))
        return tuple(out)

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

    def _ordered_prefix(self, t):
        """prefix(t) composed in order (exact numbers, period-1 maps), or None when some map
        up to there has a period above 1."""
        item = self.items[t - 1]
        if not all(m.period == 1 for m in item):
            return None
        prev = self._prefix.get(t - 1)  # read in order (every layer's field): one step from the last
        if prev is not None and all(m.period == 1 for m in prev):
            return compose_axes(prev, item, self.ops)
        cum = self._cum
        if cum is None:
            base = self._base()
            cum = self._cum = [None if base is None else _numbers(base)]
        K = self.CHECKPOINT
        c = t // K
        while len(cum) <= c:  # cum[i]: the base and items[0:i·K], as (start, jump, rf, step) per axis
            lo = (len(cum) - 1) * K
            cum.append(self._advance(cum[-1], lo, lo + K))
        acc = self._advance(cum[c], c * K, t)
        return None if acc is False or acc is None else _maps_of(acc)

    #: the in-order composites kept: one every CHECKPOINT items (the rest recomputed on demand)
    CHECKPOINT = 64

    def _advance(self, acc, lo, hi):
        """``acc`` (per-axis 4-tuples; None: nothing yet; False: a period above 1) composed with
        items[lo:hi] in turn (False when one of them has a period above 1)."""
        if acc is False or lo == hi:
            return acc
        items = self.items
        if acc is None:
            acc = _numbers(items[lo])
            lo += 1
            if acc is False or lo == hi:
                return acc
        out, before = [], None
        for i in range(len(acc)):
            column = [maps[i] for maps in items[lo:hi]]
            if i and acc[i] is acc[i - 1] and all(a is b for a, b in zip(column, before)):
                out.append(out[-1])  # square kernels: the axes agree, compose once
            else:
                value = affine_numbers(acc[i], column, self.ops, self.RUN)
                if value is None:
                    return False
                out.append(value)
            before = column
        return out

    def prefix(self, t):
        """Maps from the network input to the output of items[t - 1] (cached: the layers of a
        nested block share their parents' prefix)."""
        self._current()
        if t not in self._prefix:
            out = self._ordered_prefix(t) if self._in_order and t else None
            if out is None:
                base = self._base()
                local = self.local_prefix(t)
                if local is None:
                    out = base
                else:
                    out = local if base is None else compose_axes(base, local, self.ops)
            self._prefix[t] = out
        return self._prefix[t]

    def full(self):
        return self.seg(0, len(self.groups())) if self.items else None


class Prefix:
    """The composite at position ``t`` of a chain (``chain.prefix(t)``; the identity where the
    chain and its base are empty), computed on the first call; then it drops the chain. Chains
    refer to their base's record, records to their chain: releasing the chain after the first
    call breaks that reference cycle, so the (possibly huge) arrays of an evaluated result are
    freed as soon as the result is dropped, not at the next full garbage collection."""

    __slots__ = ("chain", "t", "value")

    def __init__(self, chain, t):
        self.chain, self.t = chain, t

    def __call__(self):
        chain = self.chain
        if chain is not None:
            value = chain.prefix(self.t)
            if value is None:
                value = chain.identity
            self.value, self.chain = value, None
        return self.value


def _numbers(maps):
    """Per-axis period-1 maps as ``(start, jump, rf, step)`` (False when a period is above 1);
    equal axes share one tuple."""
    out = []
    for i, m in enumerate(maps):
        if m.period != 1:
            return False
        out.append(out[-1] if i and m is maps[i - 1] else (m.starts[0], m.jump, m.rfs[0], m.step))
    return out


def _maps_of(acc):
    """Per-axis 4-tuples as period-1 maps (axes sharing a tuple share the map)."""
    out = []
    for i, (u, j, r, st) in enumerate(acc):
        out.append(out[-1] if i and acc[i] is acc[i - 1] else AxisMap(1, j, (u,), (r,), st))
    return tuple(out)


def hashable_maps(maps):
    """``maps`` when runs of them may be composed in closed form (hashable, period 1 on every
    axis: :func:`~rfsym.maps.power` takes no periodic map), else None (never grouped)."""
    try:
        hash(maps)
    except TypeError:
        return None
    return maps if all(m.period == 1 for m in maps) else None


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
    for x, y in ((a.period, b.period), (a.jump, b.jump), (a.starts, b.starts), (a.rfs, b.rfs), (a.step, b.step)):
        xs, ys = (x, y) if isinstance(x, tuple) else ((x,), (y,))
        if len(xs) != len(ys):
            return False
        for u, v in zip(xs, ys):
            if u is not v and (isinstance(u, np.ndarray) or isinstance(v, np.ndarray) or u != v):
                return False
    return True
