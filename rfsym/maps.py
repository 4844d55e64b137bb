"""Index maps on one spatial axis, their composition, and the merge of branches.

An :class:`AxisMap` says which positions of a lower grid an output position of an upper grid
reads. Write the output index as ``o = period·m + φ`` (``0 <= φ < period``); then output ``o``
reads exactly the positions in the interval

    ``[starts[φ] + jump·m,  starts[φ] + jump·m + rfs[φ] - 1]``

(a bounding interval: dilation leaves holes inside it, padding positions count). Ordinary
layers have period 1 (``start + jump·o``, constant ``rf``); transposed convolutions, upsampling
and adaptive pooling have a period larger than one, so their receptive field depends on the
output position. The effective stride of a map is ``jump / period`` (rational in general).

Maps are monotone, so composing two of them composes the interval end points; composition is
associative, and the engine composes chains in balanced order so that expressions stay shallow
(depth ``O(log L)``) even for thousands of symbolic layers.

>>> import sympy as sp
>>> from rfsym.ops import SymOps
>>> k, s = sp.symbols("k s", integer=True, positive=True)
>>> conv = AxisMap.affine(start=0, jump=s, rf=k)
>>> two = compose(conv, conv, SymOps)
>>> sp.expand(two.rfs[0])
k*s + k - s
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import GraphError, RfsymError

__all__ = ["AxisMap", "compose", "affine_numbers", "merge", "is_global_merge", "global_merge_exact", "power", "reduce_map",
           "IDENTITY"]


@dataclass(frozen=True)
class AxisMap:
    """A periodic interval map on one axis (see the module docstring)."""

    period: int
    jump: Any
    starts: tuple
    rfs: tuple
    step: Any = 1  # positions read inside an interval: start + step·t (a dilation's holes)

    @classmethod
    def affine(cls, start, jump, rf, step=1) -> AxisMap:
        """The ordinary period-1 map ``o -> [start + jump·o, start + jump·o + rf - 1]``; ``step``
        > 1 says that only every ``step``-th position of the interval is read (dilation)."""
        return cls(1, jump, (start,), (rf,), step)

    def lo(self, y, ops):
        """First lower position read by output ``y`` (``y`` concrete when the period > 1)."""
        if self.period == 1:
            return self.starts[0] + self.jump * y
        m, phi = divmod(_concrete(y, ops, "output index"), self.period)
        return self.starts[phi] + self.jump * m

    def hi(self, y, ops):
        """Last lower position read by output ``y``."""
        if self.period == 1:
            return self.starts[0] + self.jump * y + self.rfs[0] - 1
        m, phi = divmod(_concrete(y, ops, "output index"), self.period)
        return self.starts[phi] + self.jump * m + self.rfs[phi] - 1


def _concrete(x, ops, what):
    c = ops.concrete(x)
    if c is None:
        raise RfsymError(
            f"a position-dependent receptive field (period > 1) needs a concrete {what}, got {x}; "
            "give the strides, paddings and kernel sizes of transposed/upsampling layers, and of the "
            "layers after them, as numbers")
    return c


def compose(lower: AxisMap, upper: AxisMap, ops) -> AxisMap:
    """The map of ``upper`` applied on top of ``lower`` (``lower`` is nearer the input)."""
    if lower.period == 1 and upper.period == 1 and ops.numbers:
        return _compose_numbers(lower, upper, ops)
    if lower.period == 1:
        # lo(y) = U + J y is affine: compose symbolically, phase by phase.
        U, J, R = lower.starts[0], lower.jump, lower.rfs[0]
        if _is_zero(J, ops):  # global lower map: every upper position sees the same field
            return AxisMap(1, J, (U,), (R,))
        starts = tuple(U + J * u for u in upper.starts)
        rfs = tuple(R + J * (r - 1) for r in upper.rfs)
        # single positions read at spacing step·J keep their holes; wider windows fill them
        step = J * upper.step if ops.concrete(R) == 1 and ops.concrete(J * upper.step) else 1
        return AxisMap(upper.period, J * upper.jump, starts, rfs, step)
    ju = _concrete(upper.jump, ops, "jump")
    reps = lower.period // math.gcd(ju, lower.period)
    period = upper.period * reps
    starts, rfs = [], []
    scan = not _monotone(lower, ops)
    P = lower.period
    step = ops.concrete(upper.step) or 1
    # the holes survive when every position read lies on one lattice: the lower sets' own step
    # and the offsets of their first positions (a grid attention read by another one)
    lattice = ops.concrete(lower.step) or 1 if step > 1 else 1
    for psi in range(period):
        m, phi = divmod(psi, upper.period)
        a = _concrete(upper.starts[phi], ops, "start") + ju * m
        b = a + _concrete(upper.rfs[phi], ops, "receptive field") - 1
        if scan:
            # the positions read are a, a + step, ..., b; lo(y + P) = lo(y) + jump, so the
            # extremes lie among the first (last) P of them: every residue mod P appears there
            taps = range(a, b + 1, step)
            lo = ops.min(*(lower.lo(y, ops) for y in taps[:P]))
            hi = ops.max(*(lower.hi(y, ops) for y in taps[-P:]))
        else:
            lo, hi = lower.lo(a, ops), lower.hi(b, ops)
        if lattice > 1:
            read = range(a, b + 1, step)  # lo(y + P) = lo(y) + jump: the first P and the jump
            firsts = [ops.concrete(lower.lo(y, ops) - lo) for y in read[:P]]
            if len(read) > P:
                firsts.append(ops.concrete(lower.jump))
            lattice = 1 if None in firsts else math.gcd(lattice, *firsts)
        starts.append(lo)
        rfs.append(hi - lo + 1)
    jump = lower.jump * (ju * reps // lower.period)
    return reduce_map(AxisMap(period, jump, tuple(starts), tuple(rfs), lattice), ops)


def _compose_numbers(lower: AxisMap, upper: AxisMap, ops) -> AxisMap:
    """:func:`compose` of two period-1 maps of exact numbers (ints, Fractions)."""
    start, jump, rf, step = affine_numbers((lower.starts[0], lower.jump, lower.rfs[0], lower.step), (upper,), ops)
    return AxisMap(1, jump, (start,), (rf,), step)


def affine_numbers(lower: tuple, uppers, ops, run=None):
    """:func:`compose` of a period-1 map given as ``(start, jump, rf, step)`` with the maps
    ``uppers`` in turn (nearest the input first), on exact numbers (ints, Fractions; ``ops`` is
    :class:`~rfsym.ops.ExactOps`), as the same 4-tuple: the values :func:`compose` gives,
    without building maps (the fast path of long numeric chains). ``run`` consecutive
    occurrences of one map object or more are composed at once in closed form (:func:`power`).

    Returns:
        The 4-tuple, or None when some upper map has a period above 1.

    >>> from rfsym.ops import ExactOps
    >>> conv = AxisMap.affine(-1, 1, 3)
    >>> affine_numbers((-1, 2, 3, 1), [conv], ExactOps), affine_numbers((0, 1, 1, 1), [conv] * 3, ExactOps, 2)
    ((-3, 2, 7, 1), (-3, 1, 7, 1))
    """
    U, J, R, step = lower
    i, n = 0, len(uppers)
    while i < n:
        upper = uppers[i]
        if upper.period != 1:
            return None
        i += 1
        if run is not None and i < n and uppers[i] is upper:
            j = i
            while j < n and uppers[j] is upper:
                j += 1
            if j - i + 1 >= run:
                upper, i = power(upper, j - i + 1, ops), j
        if J == 0:  # global lower map: every upper position sees the same field
            step = 1
            continue
        step = 1
        if R == 1:  # single positions read at spacing step·J keep their holes; wider windows fill them
            js = J * upper.step
            if js if type(js) is int else ops.concrete(js):
                step = js
        U, R, J = U + J * upper.starts[0], R + J * (upper.rfs[0] - 1), J * upper.jump
    return U, J, R, step


def _monotone(m: AxisMap, ops) -> bool:
    """True when first and last positions read never decrease with the output position (not
    so for a transposed convolution whose dilation exceeds its stride: phases interleave)."""
    ends = [st + r - 1 for st, r in zip(m.starts, m.rfs)]
    for seq in (list(m.starts), ends):
        nxt = seq[1:] + [seq[0] + m.jump]
        for a, b in zip(seq, nxt):
            if ops.is_true(ops.ge(b, a)) is not True:
                return False
    return True


def reduce_map(m: AxisMap, ops) -> AxisMap:
    """Shrink the period when the phases repeat (e.g. a period-2 map whose phases agree)."""
    p = m.period
    for q in range(1, p):
        if p % q:
            continue
        reps = p // q
        jq = ops.div(m.jump, reps)
        if ops.concrete(jq) is None and not ops.symbolic:
            continue
        ok = True
        for psi in range(p):
            base, extra = psi % q, psi // q
            if not (_eq(m.starts[psi], m.starts[base] + jq * extra, ops) and _eq(m.rfs[psi], m.rfs[base], ops)):
                ok = False
                break
        if ok and (not ops.symbolic or getattr(jq, "is_integer", False)):
            return AxisMap(q, jq, m.starts[:q], m.rfs[:q], m.step)
    return m


def _eq(a, b, ops):
    return ops.equal(a, b) is True


def _is_zero(x, ops) -> bool:
    """True when a jump is provably 0 (a global map: every output reads the same field)."""
    return ops.concrete(x) == 0 and ops.equal(x, 0) is True


def merge(maps, ops, names=None, last=None) -> AxisMap:
    """Bounding box of the union of branch maps that read the same lower grid.

    Branches must agree on the effective stride ``jump/period``; the merged receptive field of
    each output spans from the smallest start to the largest end over the branches.

    **Global branches** (jump 0, e.g. a body holding a squeeze-and-excitation gate: every output
    reads the same field) merge with local ones into a global map (jump 0) whose interval is the
    bounding box of the global branches' fields and of what the local branches read at output 0
    and, when ``last`` (the merge's last output index) is given, at output ``last``. This is
    exact — every output reads exactly this interval — when the global field covers what the
    local branches read at the real outputs (a squeeze-and-excitation body behind a padded
    convolution and an identity shortcut: the gate reads every position the shortcut reads).
    Otherwise the outputs' true fields differ near the ends; with ``last`` the interval is the
    smallest one holding every real output's field (``0 .. last``), without it only output 0's.
    Positions of the merge's grid outside ``0 .. last`` (padding read by a later layer) are
    given the same field: the global convention.

    >>> from rfsym.ops import SymOps
    >>> gate = AxisMap(1, 0, (-1,), (10,))                   # reads [-1, 8] for every output
    >>> m = merge([gate, IDENTITY], SymOps, last=7)
    >>> m.jump, m.starts, m.rfs
    (0, (-1,), (10,))
    >>> merge([AxisMap(1, 0, (0,), (2,)), IDENTITY], SymOps, last=7).rfs   # outputs 0..7 read 0..7
    (8,)
    """
    maps = list(maps)
    if len(maps) == 1:
        return maps[0]
    if ops.numbers:  # exact numbers, period 1, one jump: the hull of the fields
        j0 = maps[0].jump
        if all(m.period == 1 and m.jump == j0 for m in maps):
            lo = min([m.starts[0] for m in maps])
            hi = max([m.starts[0] + m.rfs[0] for m in maps])
            return AxisMap(1, ops.div(j0, 1), (lo,), (hi - lo,))
    strides = [ops.div(m.jump, m.period) for m in maps]
    flat = [_is_zero(st, ops) for st in strides]
    if any(flat) and not all(flat):
        return _merge_global(maps, flat, ops, last)
    for i, st in enumerate(strides[1:], 1):
        same = ops.equal(st, strides[0])
        if same is not True:
            label = (lambda j: names[j]) if names else (lambda j: f"branch {j}")
            verdict = "differ" if same is False else "cannot be shown equal"
            raise GraphError(f"branches must have the same jump (effective stride) to merge: "
                             f"{label(0)} has {strides[0]}, {label(i)} has {st} ({verdict})")
    period = math.lcm(*(m.period for m in maps))
    starts, rfs = [], []
    for phi in range(period):
        los, his = [], []
        for m in maps:
            reps, ph = divmod(phi, m.period)
            lo = m.starts[ph] + m.jump * reps
            los.append(lo)
            his.append(lo + m.rfs[ph] - 1)
        lo = ops.min(*los)
        starts.append(lo)
        rfs.append(ops.max(*his) - lo + 1)
    jump = ops.div(maps[0].jump * period, maps[0].period)
    return AxisMap(period, jump, tuple(starts), tuple(rfs))


def is_global_merge(maps, ops) -> bool:
    """Whether :func:`merge` takes ``maps`` by the global convention: some branches are global
    (effective stride 0) and some are not."""
    if ops.numbers and all(m.period == 1 for m in maps):  # exact numbers: jump == 0
        flat = [m.jump == 0 for m in maps]
    else:
        flat = [_is_zero(ops.div(m.jump, m.period), ops) for m in maps]
    return any(flat) and not all(flat)


def global_merge_exact(maps, ops, last) -> bool | None:
    """Whether the global merge of ``maps`` is exact on the merge's real outputs ``0 .. last``:
    the global branches' field holds what every local branch reads there (True), does not
    (False), or that is undecidable or ``last`` unknown (None).

    Positions outside ``0 .. last`` (padding, read by a later padded layer) are not exact either
    way: their true field is the hull of the global field and the local branch's extension, which
    is no periodic interval map (see :attr:`rfsym.result.Result.exact`).

    >>> from rfsym.ops import SymOps
    >>> global_merge_exact([AxisMap(1, 0, (-1,), (10,)), IDENTITY], SymOps, 7)
    True
    >>> global_merge_exact([AxisMap(1, 0, (0,), (2,)), IDENTITY], SymOps, 7)
    False
    """
    if last is None:
        return None
    flat = [_is_zero(ops.div(m.jump, m.period), ops) for m in maps]
    glo = ops.min(*(st for m, g in zip(maps, flat) if g for st in m.starts))
    ghi = ops.max(*(st + r - 1 for m, g in zip(maps, flat) if g for st, r in zip(m.starts, m.rfs)))
    verdict = True
    for m, g in zip(maps, flat):
        if g:
            continue
        y = ops.concrete(last)
        if m.period == 1:
            ends = [(m.lo(0, ops), m.hi(last, ops))]
        elif y is None:
            return None
        else:
            ends = [(m.lo(x, ops), m.hi(x, ops)) for x in range(min(y + 1, m.period))] + \
                   [(m.lo(x, ops), m.hi(x, ops)) for x in range(max(0, y - m.period + 1), y + 1)]
        for lo, hi in ends:
            for cond in (ops.ge(lo, glo), ops.ge(ghi, hi)):
                ok = ops.is_true(cond)
                if ok is False:
                    return False
                if ok is None:
                    verdict = None
    return verdict


def _merge_global(maps, flat, ops, last):
    """Merge of global (jump 0) and local branches: one interval for every output."""
    los, his = [], []
    for m, glob in zip(maps, flat):
        los.extend(m.starts)  # outputs 0 .. period - 1 (the first and lowest for jump >= 0)
        if glob or last is None:
            his.extend(st + r - 1 for st, r in zip(m.starts, m.rfs))
        elif m.period == 1:
            his.append(m.hi(last, ops))
        else:
            y = _concrete(last, ops, "output size")
            his.extend(m.hi(x, ops) for x in range(max(0, y - m.period + 1), y + 1))
    lo = ops.min(*los)
    return AxisMap(1, 0, (lo,), (ops.max(*his) - lo + 1,))


def power(m: AxisMap, n, ops) -> AxisMap:
    """``m`` composed with itself ``n`` times (``n`` may be a symbol), in closed form.

    For a period-1 map ``(U, J, R)``: jump ``J**n``, start ``U·g`` and receptive field
    ``1 + (R - 1)·g`` with ``g = 1 + J + ... + J**(n-1)`` (:meth:`~rfsym.ops.SymOps.geom`, which
    keeps the ``J = 1`` case as a Piecewise branch).

    >>> import sympy as sp
    >>> from rfsym.ops import SymOps
    >>> k, s, n = sp.symbols("k s n", integer=True, positive=True)
    >>> power(AxisMap.affine(0, 1, k), n, SymOps).rfs[0]
    n*(k - 1) + 1
    >>> power(AxisMap.affine(0, 2, 3), 4, SymOps).rfs
    (31,)
    """
    if m.period != 1:
        raise RfsymError("repeating a position-dependent map (period > 1) in closed form is not supported; "
                         "give the repeat count as a number to unroll it")
    g = ops.geom(m.jump, n)
    start = 0 if ops.concrete(m.starts[0]) == 0 else m.starts[0] * g  # 0*g is slow in sympy
    return AxisMap(1, ops.pow(m.jump, n), (start,), (1 + (m.rfs[0] - 1) * g,))


IDENTITY = AxisMap(1, 1, (0,), (1,))
