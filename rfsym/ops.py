"""Two arithmetic backends for one engine: exact sympy expressions, and numpy integer arrays.

The engine's rules are written once against this small interface, so the symbolic derivation
and the vectorised numeric evaluation cannot drift apart. :class:`SymOps` keeps what it cannot
decide symbolic (``floor``, ``Max``, ``Piecewise``); :class:`NumOps` computes the same values
elementwise on ``int64`` arrays.

>>> SymOps.floordiv(7, 2), int(NumOps.floordiv(7, 2))
(3, 3)
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import sympy as sp

from .symbols import exceeds

__all__ = ["SymOps", "NumOps", "ExactOps"]


class SymOps:
    """Exact sympy arithmetic."""

    symbolic = True
    exact = True  # results are exact values (sympy), not numpy arrays

    @staticmethod
    def num(x):
        return sp.sympify(x)

    @classmethod
    def floordiv(cls, a, b):
        """``floor(a/b)``, with nested floors of deep stacks merged into one.

        For integers ``X``, ``c`` and positive integers ``D``, ``b``,
        ``floor((floor(X/D) + c)/b) = floor((X + c·D)/(D·b))`` (and ``ceiling(X/D) =
        floor((X + D - 1)/D)``), so the output size of L layers on a symbolic input is one floor
        of a sum instead of L nested floors (which sympy evaluates in quadratic time, and prints
        and lambdifies only up to a few hundred levels).

        >>> n = sp.Symbol("n", integer=True, positive=True)
        >>> SymOps.floordiv(SymOps.floordiv(n - 1, 2) + 1, 2)
        floor(n/4 + 1/4)
        """
        a, b = sp.sympify(a), sp.sympify(b)
        if b == 1 and a.is_integer:
            return a
        merged = _merge_floor(a, b)
        if merged is not None:
            return merged
        return _register(sp.floor(a / b), a, b)

    @classmethod
    def ceildiv(cls, a, b):
        a, b = sp.sympify(a), sp.sympify(b)
        if b == 1 and a.is_integer:
            return a
        merged = _merge_floor(a + b - 1, b) if b.is_integer and b.is_positive else None
        if merged is not None:
            return merged
        return _register(sp.ceiling(a / b), a + b - 1, b)

    @staticmethod
    def max(*xs):
        return sp.Max(*xs) if len(xs) > 1 else sp.sympify(xs[0])

    @staticmethod
    def min(*xs):
        return sp.Min(*xs) if len(xs) > 1 else sp.sympify(xs[0])

    @staticmethod
    def ge(a, b):
        return sp.Ge(a, b)

    @staticmethod
    def where(cond, a, b):
        if cond is sp.true:
            return sp.sympify(a)
        if cond is sp.false:
            return sp.sympify(b)
        return sp.Piecewise((a, cond), (b, True))

    @staticmethod
    def div(a, b):
        """Exact (rational) division."""
        return sp.sympify(a) / b

    @staticmethod
    def pow(a, b):
        return sp.sympify(a) ** b

    @classmethod
    def geom(cls, j, n):
        """``1 + j + ... + j**(n-1)``, with the ``j = 1`` case as a Piecewise branch."""
        j, n = sp.sympify(j), sp.sympify(n)
        if j == 1:
            return n
        closed = (j**n - 1) / (j - 1)
        if j.is_number or (j - 1).is_positive:
            return sp.simplify(closed) if j.is_number and n.is_number else closed
        return sp.Piecewise((n, sp.Eq(j, 1)), (closed, True))

    @staticmethod
    def is_true(cond) -> bool | None:
        """True/False when decided, None when it depends on the symbols."""
        cond = sp.sympify(cond)
        if cond is sp.true:
            return True
        if cond is sp.false:
            return False
        return None

    @staticmethod
    def equal(a, b) -> bool | None:
        d = sp.simplify(sp.sympify(a) - b)
        if d == 0:
            return True
        if d.is_zero is False:
            return False
        return None

    @staticmethod
    def concrete(x):
        """Python int of a numeric value, or None when symbolic."""
        x = sp.sympify(x)
        return int(x) if x.is_Integer else None


# floor(X/D) or ceiling(...) created by SymOps -> (X', D) with the value floor(X'/D), X' an integer
# expression and D a positive integer expression (bounded: cleared when it grows large). Keyed by
# object identity (the expression is kept alive in the value): looking big expressions up by
# value compares them term by term whenever a later analysis builds an equal one.
_FLOOR_PARTS: dict = {}


def _parts(expr):
    hit = _FLOOR_PARTS.get(id(expr))
    return None if hit is None or hit[0] is not expr else hit[1:]
_SMALL = 40  # expressions up to this many nodes are left to sympy's own floor evaluation


def _register(expr, numer, denom):
    if isinstance(expr, (sp.floor, sp.ceiling)) and numer.is_integer and denom.is_integer and denom.is_positive:
        if len(_FLOOR_PARTS) > 100_000:
            _FLOOR_PARTS.clear()
        _FLOOR_PARTS[id(expr)] = (expr, numer, denom)
    return expr


def _merge_floor(a, b):
    """``floor(a/b)`` as one floor when ``a = floor(X/D) + c`` came from SymOps, else None."""
    if not (b.is_integer and b.is_positive):
        return None
    terms = a.args if isinstance(a, sp.Add) else (a,)
    inner = [(t, p) for t in terms if (p := _parts(t)) is not None]
    if len(inner) != 1:
        return None
    rest = a - inner[0][0]
    if rest.has(sp.floor, sp.ceiling) or not rest.is_integer:
        return None
    numer, denom = inner[0][1]
    if not exceeds(numer, _SMALL):
        numer, denom = numer + rest * denom, denom * b
        out = sp.floor(numer / denom)
    else:
        # a long sum of products (L terms for L layers): build it flat without sympy's sorting
        # and merging of every term and factor (which compares big products, O(L^2 log L) per
        # layer), and skip sympy's floor evaluation, which queries assumptions over the whole
        # argument; the expression stays a flat sum of products of the strides
        factors = denom.args if isinstance(denom, sp.Mul) else (denom,)
        term = sp.Mul(rest, *factors, evaluate=False)
        numer = sp.Add(*(numer.args if isinstance(numer, sp.Add) else (numer,)), term, evaluate=False)
        denom = sp.Mul(*factors, b, evaluate=False)
        out = sp.floor(sp.Mul(numer, sp.Pow(denom, -1, evaluate=False), evaluate=False), evaluate=False)
    if isinstance(out, sp.floor):
        _FLOOR_PARTS[id(out)] = (out, numer, denom)
    return out


class NumOps:
    """Elementwise int64 arithmetic on numpy arrays (or Python ints)."""

    symbolic = False
    exact = False

    @staticmethod
    def num(x):
        return x

    @staticmethod
    def floordiv(a, b):
        return np.floor_divide(a, b)

    @staticmethod
    def ceildiv(a, b):
        return -np.floor_divide(np.negative(a), b)

    @staticmethod
    def max(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = np.maximum(out, x)
        return out

    @staticmethod
    def min(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = np.minimum(out, x)
        return out

    @staticmethod
    def ge(a, b):
        return np.greater_equal(a, b)

    @staticmethod
    def where(cond, a, b):
        return np.where(cond, a, b)

    @staticmethod
    def div(a, b):
        if np.ndim(a) == 0 and np.ndim(b) == 0:
            f = Fraction(int(a), int(b))
            return f.numerator if f.denominator == 1 else f
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind in "iu" and b.dtype.kind in "iu":
            q, r = np.divmod(a, b)
            if not r.any():
                return q  # exact everywhere: stay integer
        return np.true_divide(a, b)  # half-integers (centres) are exact in float64

    @staticmethod
    def pow(a, b):
        return np.power(a, b)

    @staticmethod
    def geom(j, n):
        j = np.asarray(j, dtype=np.int64)
        n = np.asarray(n, dtype=np.int64)
        one = j == 1
        safe = np.where(one, 2, j)
        out = np.where(one, n, (np.power(safe, n) - 1) // (safe - 1))
        return out if out.ndim else int(out)

    @staticmethod
    def is_true(cond):
        arr = np.asarray(cond)
        if arr.all():
            return True
        if not arr.any():
            return False
        return None

    @staticmethod
    def equal(a, b):
        return bool(np.all(np.asarray(a) == np.asarray(b)))

    @staticmethod
    def concrete(x):
        arr = np.asarray(x)
        if arr.ndim == 0:
            return int(arr)
        if arr.size and (arr == arr.flat[0]).all():
            return int(arr.flat[0])
        return None


def _frac(f):
    return f.numerator if f.denominator == 1 else f


class ExactOps(NumOps):
    """Exact arithmetic on Python ints and Fractions: the fast path for networks without symbols.

    Same results as :class:`SymOps` on numbers (the engine turns them into sympy numbers at the
    boundary), without building a sympy object per operation: a ResNet-152 at 224 derives about
    ten times faster.

    >>> ExactOps.div(3, 6), ExactOps.geom(2, 10), ExactOps.ceildiv(-7, 2)
    (Fraction(1, 2), 1023, -3)
    """

    exact = True

    @staticmethod
    def floordiv(a, b):
        return a // b

    @staticmethod
    def ceildiv(a, b):
        return -((-a) // b)

    @staticmethod
    def max(*xs):
        return max(xs)

    @staticmethod
    def min(*xs):
        return min(xs)

    @staticmethod
    def ge(a, b):
        return a >= b

    @staticmethod
    def where(cond, a, b):
        return a if cond else b

    @staticmethod
    def div(a, b):
        if type(a) is int and type(b) is int:
            q, r = divmod(a, b)
            if not r:
                return q
        return _frac(Fraction(a) / b)

    @staticmethod
    def pow(a, b):
        return _frac(Fraction(a) ** b) if isinstance(a, Fraction) else a**b

    @staticmethod
    def geom(j, n):
        if j == 1:
            return n
        return _frac((Fraction(j) ** n - 1) / (j - 1))

    @staticmethod
    def is_true(cond):
        return bool(cond)

    @staticmethod
    def equal(a, b):
        return a == b

    @staticmethod
    def concrete(x):
        if type(x) is int:
            return x
        if isinstance(x, Fraction):
            return x.numerator if x.denominator == 1 else None
        try:
            return int(x)
        except TypeError:  # a sympy infinity (size unknown)
            return None


class Rows:
    """The distinct configurations among broadcast integer arrays, and how to spread results back.

    A sweep of 10⁶ configurations often holds far fewer distinct ones for one part of a network
    (a repeated block sees only the values of its own symbols): that part is evaluated on
    :attr:`columns` (one entry per distinct configuration) and :meth:`expand` gives every
    configuration its value. :meth:`of` returns None when compressing would not pay.

    >>> rows = Rows.of([np.array([2, 3, 2, 2]), 5], min_size=1, max_fraction=1)
    >>> rows.count, rows.columns[0].tolist(), rows.columns[1]
    (2, [2, 3], 5)
    >>> rows.expand(rows.columns[0] ** 2).tolist()
    [4, 9, 4, 4]
    """

    #: fewer configurations than this are evaluated as they are
    MIN_SIZE = 4096

    def __init__(self, columns, inverse, shape, count):
        self.columns, self.inverse, self.shape, self.count = columns, inverse, shape, count

    @classmethod
    def of(cls, values, min_size=MIN_SIZE, max_fraction=0.25):
        """Rows of ``values`` (ints, or integer arrays broadcasting together; scalars pass through
        as they are), or None when there are fewer than ``min_size`` configurations or more than
        ``max_fraction`` of them are distinct."""
        arrays = [i for i, v in enumerate(values) if np.ndim(v) > 0]
        if not arrays:
            return None
        shape = np.broadcast_shapes(*(np.shape(values[i]) for i in arrays))
        size = int(np.prod(shape))
        if size < min_size:
            return None
        cols = [np.broadcast_to(np.asarray(values[i], dtype=np.int64), shape).ravel() for i in arrays]
        los = [int(c.min()) for c in cols]
        spans = [int(c.max()) - lo + 1 for c, lo in zip(cols, los)]
        total = 1
        for s in spans:
            total *= s
        if total < 1 << 62:  # one mixed-radix key per configuration
            key = np.zeros(size, dtype=np.int64)
            radix = 1
            for c, lo, s in zip(cols, los, spans):
                key += (c - lo) * radix
                radix *= s
            if total <= 8 * size:  # a presence table instead of a sort
                present = np.zeros(total, dtype=bool)
                present[key] = True
                uniq = np.flatnonzero(present)
                if len(uniq) > max_fraction * size:
                    return None
                rank = np.cumsum(present, dtype=np.int64) - 1
                inverse = rank[key]
            else:
                uniq, inverse = np.unique(key, return_inverse=True)
                if len(uniq) > max_fraction * size:
                    return None
            out, radix = [], 1
            for lo, s in zip(los, spans):
                out.append((uniq // radix) % s + lo)
                radix *= s
        else:
            uniq, inverse = np.unique(np.stack(cols, axis=1), axis=0, return_inverse=True)
            if len(uniq) > max_fraction * size:
                return None
            out = list(uniq.T)
        columns = list(values)
        for i, col in zip(arrays, out):
            columns[i] = np.ascontiguousarray(col, dtype=np.int64)
        return cls(columns, np.asarray(inverse).ravel(), shape, len(out[0]))

    def expand(self, value):
        """A result computed on :attr:`columns`, for every configuration: None and scalars stay
        as they are, an array equal everywhere becomes one int."""
        if value is None or np.ndim(value) == 0:
            return value
        arr = np.asarray(value)
        if arr.shape != (self.count,):
            arr = np.broadcast_to(arr, (self.count,))
        if (arr == arr[0]).all():
            return int(arr[0]) if arr.dtype.kind in "iu" else arr[0].item()
        return arr[self.inverse].reshape(self.shape)
