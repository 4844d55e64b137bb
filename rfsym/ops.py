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

__all__ = ["SymOps", "NumOps"]


class SymOps:
    """Exact sympy arithmetic."""

    symbolic = True

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
# expression and D a positive integer expression (bounded: cleared when it grows large)
_FLOOR_PARTS: dict = {}
_SMALL = 40  # expressions up to this many nodes are left to sympy's own floor evaluation


def _register(expr, numer, denom):
    if isinstance(expr, (sp.floor, sp.ceiling)) and numer.is_integer and denom.is_integer and denom.is_positive:
        if len(_FLOOR_PARTS) > 100_000:
            _FLOOR_PARTS.clear()
        _FLOOR_PARTS[expr] = (numer, denom)
    return expr


def _nodes_at_most(expr, limit):
    stack, count = [expr], 0
    while stack:
        count += 1
        if count > limit:
            return False
        stack.extend(stack.pop().args)
    return True


def _merge_floor(a, b):
    """``floor(a/b)`` as one floor when ``a = floor(X/D) + c`` came from SymOps, else None."""
    if not (b.is_integer and b.is_positive):
        return None
    terms = a.args if isinstance(a, sp.Add) else (a,)
    inner = [t for t in terms if t in _FLOOR_PARTS]
    if len(inner) != 1:
        return None
    rest = a - inner[0]
    if rest.has(sp.floor, sp.ceiling) or not rest.is_integer:
        return None
    numer, denom = _FLOOR_PARTS[inner[0]]
    if _nodes_at_most(numer, _SMALL):
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
        _FLOOR_PARTS[out] = (numer, denom)
    return out


class NumOps:
    """Elementwise int64 arithmetic on numpy arrays (or Python ints)."""

    symbolic = False

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
