"""Compiled closed forms: the fast path of :meth:`rfsym.result.Result.evaluate`.

A :class:`Program` translates sympy closed forms (polynomials with rational coefficients,
``floor``, ``ceiling``, ``Max``, ``Min``, ``Mod`` by a number, ``Piecewise``, integer powers)
into a straight-line program of exact ``int64`` numpy operations. Subexpressions are shared
across every expression compiled into one program (the layers of a network share most of their
terms). A rational value ``p/q`` is carried as an integer numerator and a constant
denominator, so nothing is rounded.

Before any array operation the program propagates intervals: from the smallest and largest
value of each input it bounds every intermediate result; when a bound could reach 2**62 it
raises :class:`Overflow` instead of computing, and the caller falls back to the checked engine
path (:class:`~rfsym.checked.Checked`), which recomputes on exact Python integers. So a compiled
value never wraps around.

>>> import numpy as np, sympy as sp
>>> k, s = sp.symbols("k s", integer=True, positive=True)
>>> p = Program()
>>> node, den = p.compile(sp.floor((k * s + 1) / 2))
>>> p.run([node], {"k": np.array([3, 4]), "s": np.array([1, 5])})[0].tolist()
[2, 10]
"""

from __future__ import annotations

import functools
import math
import sys
import threading
from fractions import Fraction

import sympy as sp

from .lazy_numpy import np

__all__ = ["Program", "Buffers", "BUFFERS", "Overflow", "Unsupported", "LIMIT"]

#: magnitudes up to this are safe in int64 (the rule of :class:`~rfsym.checked.Checked`)
LIMIT = (1 << 62) - 1


class Unsupported(Exception):
    """An expression the compiler does not translate (the engine path evaluates it)."""


class Overflow(Exception):
    """Some intermediate value could exceed :data:`LIMIT` on the given input ranges."""


#: sympy's relations and the names of numpy's comparisons (looked up when run: numpy loads on first use)
_CMP = {sp.StrictLessThan: "less", sp.LessThan: "less_equal", sp.StrictGreaterThan: "greater",
        sp.GreaterThan: "greater_equal", sp.Equality: "equal", sp.Unequality: "not_equal"}


class Program:
    """A growing set of compiled expressions sharing one node table.

    Nodes are tuples ``(op, args)`` over earlier nodes, so creation order is topological.
    :meth:`compile` returns ``(node, den)``: the expression equals node's value divided by
    the positive integer ``den``; :meth:`run` evaluates nodes.
    """

    def __init__(self):
        self.nodes = []
        self._memo = {}  # sympy expression -> (node, den)
        self._keys = {}  # node tuple -> node index (structural sharing)
        self._top = {}  # expression as given -> (node, den) of its rewritten form

    # ---- building
    def _node(self, op, *args):
        key = (op, args)
        i = self._keys.get(key)
        if i is None:
            i = self._keys[key] = len(self.nodes)
            self.nodes.append(key)
        return i

    def _const(self, v):
        return self._node("const", int(v))

    def _scale(self, node, factor):
        return node if factor == 1 else self._node("mul", node, self._const(factor))

    def _reuse_sum(self, nodes):
        """``nodes`` (the terms of a sum) with a pair that is already a node replaced by that
        node (one pass fewer: Horner forms repeat ``k - 1`` at every level)."""
        if len(nodes) < 3:
            return nodes
        for i, a in enumerate(nodes):
            for j in range(i + 1, len(nodes)):
                b = nodes[j]
                pair = self._keys.get(("add", (a, b)), self._keys.get(("add", (b, a))))
                if pair is not None:
                    rest = [n for k, n in enumerate(nodes) if k not in (i, j)]
                    return self._reuse_sum([pair, *rest])
        return nodes

    def compile(self, expr):
        """The node of ``expr`` (an integer-valued expression; see :meth:`compile_ratio`).

        Args:
            expr: a sympy expression (or Python int).

        Returns:
            ``(node, den)`` with the expression equal to ``value(node) / den``.
        """
        expr = sp.sympify(expr)
        hit = self._top.get(expr)
        if hit is None:
            hit = self._top[expr] = self.compile_ratio(_rewrite(expr))
        return hit

    def compile_ratio(self, expr):
        expr = sp.sympify(expr)
        hit = self._memo.get(expr)
        if hit is None:
            hit = self._memo[expr] = self._emit(expr)
        return hit

    def _common(self, parts):
        den = math.lcm(*(d for _, d in parts))
        return [self._scale(n, den // d) for n, d in parts], den

    def _emit(self, e):
        if e.is_Integer:
            return self._const(int(e)), 1
        if e.is_Rational:
            return self._const(int(e.p)), int(e.q)
        if e.is_Symbol:
            return self._node("sym", e.name), 1
        if e.is_Add:
            nodes, den = self._common([self.compile_ratio(a) for a in e.args])
            return self._node("add", *self._reuse_sum(nodes)), den
        if e.is_Mul:
            coeff, rest = e.as_coeff_Mul()
            parts = [self.compile_ratio(a) for a in sp.Mul.make_args(rest)]
            num = [n for n, _ in parts]
            den = int(sp.Rational(coeff).q) * math.prod(d for _, d in parts)
            c = int(sp.Rational(coeff).p)
            if c != 1:
                num.append(self._const(c))
            return (self._node("mul", *num) if len(num) > 1 else num[0]), den
        if e.is_Pow:
            b, x = e.args
            if x.is_Integer and x > 0:
                n, d = self.compile_ratio(b)
                return self._node("pow", n, self._const(int(x))), d ** int(x)
            if x.is_number:
                raise Unsupported(f"power {e}")
            (nb, db), (nx, dx) = self.compile_ratio(b), self.compile_ratio(x)
            if db != 1 or dx != 1:
                raise Unsupported(f"power {e}")
            return self._node("pow", nb, nx), 1
        if isinstance(e, (sp.floor, sp.ceiling)):
            op = "floordiv" if isinstance(e, sp.floor) else "ceildiv"
            arg = e.args[0]
            if any(x.exp.is_negative and not x.base.is_number for x in arg.atoms(sp.Pow)):
                top, bottom = sp.fraction(sp.together(arg))  # a symbolic divisor: floor(top / bottom)
                (nt, dt), (nb, db) = self.compile_ratio(top), self.compile_ratio(bottom)
                return self._node(op, self._scale(nt, db), self._scale(nb, dt)), 1
            n, d = self.compile_ratio(arg)
            if d == 1:
                return n, 1
            return self._node(op, n, self._const(d)), 1
        if isinstance(e, (sp.Max, sp.Min)):
            nodes, den = self._common([self.compile_ratio(a) for a in e.args])
            return self._node("max" if isinstance(e, sp.Max) else "min", *nodes), den
        if isinstance(e, sp.Mod):
            (n, d), m = self.compile_ratio(e.args[0]), e.args[1]
            if d != 1 or not m.is_Integer or m <= 0:
                raise Unsupported(f"{e}")
            return self._node("mod", n, self._const(int(m))), 1
        if isinstance(e, sp.Piecewise):
            values = [self.compile_ratio(v) for v, _ in e.args]
            conds = [self._cond(c) for _, c in e.args]
            nodes, den = self._common(values)
            args = [a for pair in zip(conds, nodes) for a in pair]
            return self._node("select", *args), den
        raise Unsupported(f"{type(e).__name__}: {e}")

    def _cond(self, c):
        if c is sp.true:
            return self._node("const", True)
        if c is sp.false:
            return self._node("const", False)
        if type(c) in _CMP:
            n, _ = self.compile_ratio(c.lhs - c.rhs)  # den > 0: the sign of the numerator decides
            return self._node(type(c).__name__, n)
        if isinstance(c, (sp.And, sp.Or)):
            return self._node("and" if isinstance(c, sp.And) else "or", *(self._cond(a) for a in c.args))
        if isinstance(c, sp.Not):
            return self._node("not", self._cond(c.args[0]))
        raise Unsupported(f"condition {c}")

    # ---- bounds
    def bounds(self, targets, ranges, cache):
        """Intervals ``(lo, hi)`` (Python ints) of every node ``targets`` need.

        Args:
            targets: node indices.
            ranges: input name -> ``(lo, hi)``.
            cache: a dict of intervals already known (filled in place).

        Returns:
            ``cache``.

        Raises:
            Overflow: some intermediate value could exceed :data:`LIMIT`.
        """
        for i in self._needed(targets, cache):
            cache[i] = self._interval(i, ranges, cache)
        return cache

    def _needed(self, targets, have):
        seen, stack = set(), [t for t in targets if t not in have]
        while stack:
            i = stack.pop()
            if i in seen or i in have:
                continue
            seen.add(i)
            op, args = self.nodes[i]
            if op not in ("const", "sym"):
                stack.extend(a for a in args if a not in have)
        return sorted(seen)

    def _interval(self, i, ranges, b):
        op, args = self.nodes[i]
        if op == "const":
            v = int(args[0])
            return v, v
        if op == "sym":
            return ranges[args[0]]
        iv = [b[a] for a in args]
        if op == "add":
            lo = hi = mag = 0
            for a, c in iv:
                lo, hi, mag = lo + a, hi + c, mag + max(-a, c)
            out = lo, hi
            if mag > LIMIT:
                raise Overflow(i)
        elif op == "mul":
            lo, hi = iv[0]
            for a, c in iv[1:]:
                ps = (lo * a, lo * c, hi * a, hi * c)
                lo, hi = min(ps), max(ps)
                _check(lo, hi, i)
            out = lo, hi
        elif op == "pow":
            (lo, hi), (elo, ehi) = iv
            if elo < 0:
                raise Unsupported("negative exponent")
            m = max(-lo, hi)
            if m > 1 and ehi * m.bit_length() > 63:
                raise Overflow(i)
            top = m ** ehi if m > 1 else m
            if lo >= 0:
                out = (lo ** elo if lo else (0 if elo else 1)), top
            else:
                out = -top, top
        elif op in ("floordiv", "ceildiv"):
            (lo, hi), (dlo, dhi) = iv
            if dlo <= 0 <= dhi:
                raise Unsupported("a divisor that may be 0")
            qs = [Fraction(a, b) for a in (lo, hi) for b in (dlo, dhi)]  # extremes at the corners
            f = math.floor if op == "floordiv" else math.ceil
            out = f(min(qs)), f(max(qs))
        elif op in ("max", "min"):
            f = max if op == "max" else min
            out = f(a for a, _ in iv), f(c for _, c in iv)
        elif op == "mod":
            out = 0, iv[1][0] - 1
        elif op == "select":
            vals = iv[1::2]
            out = min(a for a, _ in vals), max(c for _, c in vals)
        else:  # conditions
            out = 0, 1
        _check(*out, i)
        return out

    # ---- evaluation
    def run(self, targets, inputs, buffers=None):
        """The values of ``targets``: int64 arrays (or Python ints when constant) and bool arrays
        for conditions. Intermediate arrays are freed (or reused in place) after their last use.

        Args:
            targets: node indices.
            inputs: input name -> int64 array (broadcastable together).
            buffers: a :class:`Buffers` the new int64 arrays come from (None: numpy allocates).

        Returns:
            A list, one value per target.
        """
        order = self._needed(targets, {})
        uses = {}
        for i in order:
            op, args = self.nodes[i]
            if op not in ("const", "sym"):
                for a in args:
                    uses[a] = uses.get(a, 0) + 1
        keep = set(targets)
        vals = {}
        for i in order:
            op, args = self.nodes[i]
            if op == "const":
                vals[i] = args[0]
                continue
            if op == "sym":
                vals[i] = inputs[args[0]]
                continue
            xs = [vals[a] for a in args]
            own = [a for a in args if uses[a] == 1 and a not in keep and self.nodes[a][0] not in ("const", "sym")
                   and isinstance(vals[a], np.ndarray)]
            vals[i] = _apply(op, xs, [vals[a] for a in own], buffers)
            for a in args:
                uses[a] -= 1
                if uses[a] == 0 and a not in keep:
                    vals.pop(a, None)
        return [vals[t] for t in targets]


def _rewrite(e):
    """Polynomials in Horner form (fewer array passes), inside floors, extrema and cases too."""
    if e.is_Add and e.free_symbols and len(e.args) > 2 and sp.count_ops(e) <= 200 and e.is_polynomial():
        gens = sorted(e.free_symbols, key=lambda s: s.name)
        best = e
        for order in (gens, gens[::-1]):
            h = sp.horner(e, *order)
            if sp.count_ops(h) < sp.count_ops(best):
                best = h
        return best
    if isinstance(e, (sp.floor, sp.ceiling, sp.Max, sp.Min)):
        return e.func(*(_rewrite(a) for a in e.args), evaluate=False)
    if isinstance(e, sp.Piecewise):
        return sp.Piecewise(*((_rewrite(v), c) for v, c in e.args), evaluate=False)
    return e


def _check(lo, hi, i):
    if lo < -LIMIT or hi > LIMIT:
        raise Overflow(i)


def _out(a, b, spare):
    """``a`` or ``b`` when it is a spare array (used for the last time here) of the result's
    shape, so the operation can write into it; else None."""
    shape = np.broadcast_shapes(np.shape(a), np.shape(b))
    for s in (a, b):
        if any(s is x for x in spare) and s.shape == shape and s.dtype == np.int64:
            return s
    return None


def _fresh(xs, buffers):
    """An int64 array of the broadcast shape of ``xs`` from ``buffers``, or None (numpy allocates)."""
    if buffers is None:
        return None
    shape = np.broadcast_shapes(*(np.shape(x) for x in xs))
    return buffers.empty(shape) if shape else None


def _fold(f, xs, spare, buffers=None):
    out = xs[0]
    for x in xs[1:]:
        o = _out(out, x, spare)
        if o is None:
            o = _fresh((out, x), buffers)
        out = f(out, x, out=o) if o is not None else f(out, x)
        if isinstance(out, np.ndarray) and not any(out is s for s in spare):
            spare = [*spare, out]  # our own temporary from now on
    return out


def _apply(op, xs, spare, buffers=None):
    if all(isinstance(x, (int, bool)) for x in xs):
        return _scalar(op, xs)
    if op == "add":
        return _fold(np.add, xs, spare, buffers)
    if op == "mul":
        return _fold(np.multiply, xs, spare, buffers)
    if op == "pow":
        b, e = xs
        if isinstance(e, int) and e <= 4:
            return _fold(np.multiply, [b] * e, spare, buffers) if e > 1 else (b if e == 1 else np.ones_like(b))
        return np.power(b, e)
    if op in ("floordiv", "ceildiv", "mod"):
        a, d = xs
        o = _out(a, d, spare)
        if o is None:
            o = _fresh((a, d), buffers)
        if op == "mod":
            return np.mod(a, d, out=o)
        if op == "floordiv":
            return np.floor_divide(a, d, out=o)
        if o is None:  # ceil(a / d) = -floor(-a / d)
            return -np.floor_divide(-np.asarray(a), d)
        t = np.negative(a, out=o)
        return np.negative(np.floor_divide(t, d, out=t), out=t)
    if op == "max":
        return _fold(np.maximum, xs, spare, buffers)
    if op == "min":
        return _fold(np.minimum, xs, spare, buffers)
    if op == "select":
        conds, vals = xs[0::2], xs[1::2]
        return np.select([np.asarray(c, dtype=bool) for c in conds], vals, default=0)
    if op in _BOOL:
        return _BOOL[op](xs)
    return getattr(np, _CMP_BY_NAME[op])(xs[0], 0)


_BOOL = {"and": lambda xs: np.logical_and.reduce([np.asarray(x, dtype=bool) for x in xs]) if len(xs) > 1 else xs[0],
         "or": lambda xs: np.logical_or.reduce([np.asarray(x, dtype=bool) for x in xs]) if len(xs) > 1 else xs[0],
         "not": lambda xs: np.logical_not(xs[0])}
_CMP_BY_NAME = {t.__name__: f for t, f in _CMP.items()}


def _scalar(op, xs):
    if op == "add":
        return sum(xs)
    if op == "mul":
        return math.prod(xs)
    if op == "pow":
        return xs[0] ** xs[1]
    if op == "floordiv":
        return xs[0] // xs[1]
    if op == "ceildiv":
        return -(-xs[0] // xs[1])
    if op == "max":
        return max(xs)
    if op == "min":
        return min(xs)
    if op == "mod":
        return xs[0] % xs[1]
    if op == "select":
        for c, v in zip(xs[0::2], xs[1::2]):
            if c:
                return v
        return 0
    if op == "and":
        return all(xs)
    if op == "or":
        return any(xs)
    if op == "not":
        return not xs[0]
    return bool(getattr(np, _CMP_BY_NAME[op])(xs[0], 0))


def as_value(num, den, bound):
    """A compiled ``num / den`` as :meth:`~rfsym.result.Result.evaluate` returns it: a
    :class:`~rfsym.checked.Checked` int64 array (bound attached) or Python int when integral, else float64 (exact: the
    numerator is below 2**52) or a Fraction for a constant.

    Raises:
        Overflow: a fraction whose numerator float64 would round.
    """
    from .checked import Checked

    if isinstance(num, (int, np.integer)):
        f = Fraction(int(num), den)
        return f.numerator if f.denominator == 1 else f
    if den != 1:
        if bound >= 1 << 52:
            raise Overflow("fraction")
        q, r = np.divmod(num, den)
        if r.any():
            return np.true_divide(num, den)
        num = q
    out = np.asarray(num).view(Checked)
    out.bound = bound
    return out


class Buffers:
    """Reusable ``int64`` arrays for the values compiled programs compute.

    An array is handed out again only when nothing but this pool refers to it: every numpy
    array viewing a buffer (views of views, memoryviews and arrays made from them included)
    holds a reference to it, so a value someone still holds is never overwritten. Reuse spares
    the allocator returning megabytes to the system after each evaluation and the kernel
    zero-filling fresh pages on the next one, which costs more than the arithmetic. At most
    ``limit`` bytes are pooled: a new array that would exceed it first drops free buffers
    (those of other shapes first), else it is allocated unpooled. :data:`BUFFERS` is the pool
    :meth:`~rfsym.result.Result.evaluate` uses; :meth:`clear` releases its free buffers.

    >>> pool = Buffers(limit=1 << 20)
    >>> a = pool.empty((4,))
    >>> pool.empty((4,)) is a  # still held
    False
    >>> del a
    >>> pool.nbytes
    64
    """

    def __init__(self, limit=256 << 20):
        """
        Args:
            limit: the most bytes the pool keeps.
        """
        self.limit = limit
        self.nbytes = 0
        self._free = {}  # shape -> the buffers of that shape
        self._lock = threading.Lock()  # a free buffer is handed to one thread only

    def __getstate__(self):  # a pickled or copied pool starts empty
        return {"limit": self.limit}

    def __setstate__(self, state):
        self.__init__(state["limit"])

    def empty(self, shape):
        """An uninitialised int64 array of ``shape`` that nothing else refers to.

        Args:
            shape: a tuple of ints.

        Returns:
            A pooled buffer not referenced elsewhere, or a new array.
        """
        shape = tuple(shape)
        unheld = _unheld()
        if unheld is None:
            return np.empty(shape, np.int64)
        with self._lock:
            bufs = self._free.get(shape, ())
            for i in range(len(bufs)):
                if sys.getrefcount(bufs[i]) <= unheld:  # no local name: a tracer's frame snapshot cannot add one
                    return bufs[i]
            b = np.empty(shape, np.int64)
            if self.nbytes + b.nbytes > self.limit:
                self._drop(self.nbytes + b.nbytes - self.limit, shape)
            if self.nbytes + b.nbytes <= self.limit:
                self._free.setdefault(shape, []).append(b)
                self.nbytes += b.nbytes
            return b

    def _drop(self, need, shape):
        """Unpool free buffers, other shapes than ``shape`` first, until ``need`` bytes are dropped."""
        unheld = _unheld()
        for sh in sorted(self._free, key=lambda k: k == shape):
            kept, bufs = [], self._free[sh]
            for i in range(len(bufs)):
                if need > 0 and sys.getrefcount(bufs[i]) <= unheld:
                    need -= bufs[i].nbytes
                    self.nbytes -= bufs[i].nbytes
                else:
                    kept.append(bufs[i])
            if kept:
                self._free[sh] = kept
            else:
                del self._free[sh]

    def clear(self):
        """Unpool every buffer (those still held live on with their holders)."""
        with self._lock:
            self._free = {}
            self.nbytes = 0


@functools.cache
def _unheld():
    """The reference count ``sys.getrefcount(bufs[i])`` gives for a pooled buffer nothing else
    holds (the pool's list and the call's argument, in CPython), checked to grow when a view
    holds it; None when it does not (this interpreter's counts do not tell: no pooling)."""
    bufs = [np.empty(1, np.int64)]
    free = sys.getrefcount(bufs[0])
    view = bufs[0][:]
    held = sys.getrefcount(bufs[0])
    del view
    return free if held > free and sys.getrefcount(bufs[0]) == free else None



#: the pool of :meth:`~rfsym.result.Result.evaluate`'s arrays (shared by every result)
BUFFERS = Buffers()
