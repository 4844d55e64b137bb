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

import sympy as sp

from .lazy_numpy import np
from .symbols import exceeds

__all__ = ["SymOps", "NumOps", "ExactOps", "exact_values", "Rows"]


class SymOps:
    """Exact sympy arithmetic."""

    symbolic = True
    exact = True  # results are exact values (sympy), not numpy arrays
    numbers = False  # values are Python ints and Fractions (ExactOps)

    @staticmethod
    def num(x):
        return sp.sympify(x)

    @classmethod
    def floordiv(cls, a, b):
        """``floor(a/b)``, with nested floors of deep stacks merged, chunk by chunk.

        For integers ``X``, ``c`` and positive integers ``D``, ``b``,
        ``floor((floor(X/D) + c)/b) = floor((X + c·D)/(D·b))`` (and ``ceiling(X/D) =
        floor((X + D - 1)/D)``), so the output size of a stack of layers on a symbolic input is
        one floor of a sum instead of one floor per layer. The merged numerator grows by a term
        per layer when kernels or strides are symbols: past :data:`CHUNK` nodes the next layer
        starts a new floor around the last one instead (the old one is shared, not copied), so
        L layers cost O(L) in time and size, and floors nest only once per chunk.

        Args:
            a: the dividend (a sympy expression or number).
            b: the divisor.

        Returns:
            The exact ``floor(a/b)`` (a sympy expression).

        >>> n = sp.Symbol("n", integer=True, positive=True)
        >>> SymOps.floordiv(SymOps.floordiv(n - 1, 2) + 1, 2)
        floor(n/4 + 1/4)
        """
        a, b = sp.sympify(a), sp.sympify(b)
        if b == 1 and _is_int(a):
            return a
        if a.is_Integer and b.is_Integer and b > 0:
            return sp.Integer(a.p // b.p)
        if not (b.is_integer and b.is_positive and _is_int(a)):
            return sp.floor(a / b)
        merged = _merge_floor(a, b)
        return merged if merged is not None else _floor_of(a, b, _nest(a))

    @classmethod
    def ceildiv(cls, a, b):
        """``ceiling(a/b)``: ``floor((a + b - 1)/b)`` for a positive integer ``b``, merged with a
        floor inside ``a`` as :meth:`floordiv` does (kept a ``ceiling`` when nothing merges).

        Args:
            a: the dividend (a sympy expression or number).
            b: the divisor.

        Returns:
            The exact ``ceiling(a/b)`` (a sympy expression).
        """
        a, b = sp.sympify(a), sp.sympify(b)
        if b == 1 and _is_int(a):
            return a
        if a.is_Integer and b.is_Integer and b > 0:
            return sp.Integer(-(-a.p // b.p))
        if not (b.is_integer and b.is_positive and _is_int(a)):
            return sp.ceiling(a / b)
        merged = _merge_floor(a + b - 1, b)
        if merged is not None:
            return merged
        if _plain(a) and _plain(b):
            out = sp.ceiling(a / b)
            if isinstance(out, sp.ceiling):
                _attach(out, _Parts(a + b - 1, b, _nest(a)))
            return out
        return _floor_of(a + b - 1, b, _nest(a))

    @staticmethod
    def max(*xs):
        return _extreme(xs, sp.Max) if len(xs) > 1 else sp.sympify(xs[0])

    @staticmethod
    def min(*xs):
        return _extreme(xs, sp.Min) if len(xs) > 1 else sp.sympify(xs[0])

    @staticmethod
    def ge(a, b):
        return sp.Ge(a, b)

    @classmethod
    def where(cls, cond, a, b):
        """``a`` where ``cond`` holds, else ``b``. A Piecewise inside the condition (the ``j = 1``
        branch of a repeated block's closed form) is lifted out, so each branch's condition is
        only evaluated where that branch applies: substituting ``s = 1`` never meets the ``0/0``
        of the other branch (sympy would raise "Invalid NaN comparison").

        >>> s = sp.Symbol("s", integer=True, positive=True)
        >>> g = sp.Piecewise((2, sp.Eq(s, 1)), ((s**2 - 1)/(s - 1), True))
        >>> SymOps.where(sp.Ge(g, 3), 10, 20).subs(s, 1)
        20
        """
        if cond is sp.true:
            return sp.sympify(a)
        if cond is sp.false:
            return sp.sympify(b)
        inner = next((p for p in sp.preorder_traversal(cond) if isinstance(p, sp.Piecewise)), None)
        if inner is not None:
            pieces = []
            for e, c in inner.args:
                rep = {inner: e}
                branch = cls.where(cond.xreplace(rep), sp.sympify(a).xreplace(rep), sp.sympify(b).xreplace(rep))
                pieces.append((branch, c))
            return sp.Piecewise(*pieces)
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


#: a merged floor numerator of more nodes than this (floors inside it counted as one node) is not
#: grown further: the next layer wraps a new floor around it (sizes stay linear in the depth).
#: The bound doubles every :data:`NEST_STEP` levels of nesting, so floors nest O(log L) deep
#: beyond that (sympy's printers and substitutions recurse once per level)
CHUNK = 120
NEST_STEP = 8
_SMALL = 40  # floors of up to this many nodes (and numbers up to 64 bits) are left to sympy's own evaluation
_PARTS = "_rfsym_floor_parts"  # attribute of a floor made here: its _Parts
_ROUNDING = (sp.floor, sp.ceiling)


class _Parts:
    """What a floor made here is: ``floor(numer/denom)`` with ``numer`` an integer expression and
    ``denom`` a positive integer one, ``nest`` floors deep; ``size`` bounds the nodes of ``numer``
    (floors inside counted as one), ``bounded`` says whether it holds a Piecewise, Max, Min, Abs
    or Mod outside floors. ``terms`` (``numer``'s terms by their non-numeric factor) is handed on
    to the floor merged next, so a chain of merges updates one dict instead of rebuilding it."""

    __slots__ = ("numer", "denom", "nest", "size", "bounded", "terms")

    def __init__(self, numer, denom, nest=1, size=None, bounded=None, terms=None):
        self.numer, self.denom, self.nest = numer, denom, nest
        self.size = _size(numer, 1 << 30) if size is None else size
        self.bounded = _bounded_terms(numer) if bounded is None else bounded
        self.terms = terms

    def take_terms(self):
        """``numer``'s terms as a dict (non-numeric factor -> term), for the caller to modify."""
        terms, self.terms = self.terms, None
        if terms is None:
            terms = {}
            for t in sp.Add.make_args(self.numer):
                m = t.as_coeff_Mul()[1]
                terms[m] = terms[m] + t if m in terms else t
        return terms


def _attach(expr, parts):
    """Remember what the floor ``expr`` is (:class:`_Parts`) on the object itself (sympy objects
    carry an instance dict; pickling leaves it out): no table that outlives an analysis, no
    lookups by value of big expressions. Sympy is told it is an integer (its argument is real),
    as its assumption system would find out itself: otherwise the first query (``(n + 1)**2``
    asks whether ``n`` is infinite) searches the signs of the whole argument, ~10 ms a floor."""
    expr.__dict__[_PARTS] = parts
    known = expr._assumptions
    if known.get("integer") is None:
        known = known.copy()
        known.deduce_all_facts((("integer", True),))
        expr._assumptions = known


def _nest(expr):
    """One more than the deepest known nesting of the floors among the terms of ``expr``."""
    return 1 + max((p.nest for t in sp.Add.make_args(expr) if (p := _parts(t)) is not None), default=0)


def _parts(expr):
    """The :class:`_Parts` of a floor or ceiling (parsed from small ones sympy made), else None."""
    if not isinstance(expr, _ROUNDING):
        return None
    parts = expr.__dict__.get(_PARTS)
    if parts is not None:
        return parts
    arg = expr.args[0]
    if exceeds(arg, _SMALL):
        return None
    numer, denom = arg.as_numer_denom()
    if not (_is_int(numer) and _is_int(denom) and denom.is_positive):
        return None
    if isinstance(expr, sp.ceiling):
        numer = numer + denom - 1
    parts = _Parts(numer, denom)
    _attach(expr, parts)
    return parts


def _size(expr, limit):
    """Nodes of ``expr`` with floors and ceilings counted as one (counting stops above ``limit``)."""
    stack, seen = [expr], 0
    while stack and seen <= limit:
        e = stack.pop()
        seen += 1
        if not isinstance(e, _ROUNDING):
            stack.extend(e.args)
    return seen


def _plain(expr):
    """Small enough for sympy's own floor evaluation: few nodes and numbers of at most 64 bits."""
    stack, seen = [expr], 0
    while stack:
        e = stack.pop()
        seen += 1
        if seen > _SMALL:
            return False
        if e.is_Rational and (abs(e.p).bit_length() > 64 or e.q.bit_length() > 64):
            return False
        stack.extend(e.args)
    return True


def _merge_floor(a, b):
    """``floor(a/b)`` as one floor when ``a = floor(X/D) + c`` (``c`` integer and free of floors)
    and the merged numerator stays within the chunk bound (:data:`CHUNK`); else None."""
    terms = sp.Add.make_args(a)
    inner = [(t, p) for t in terms if (p := _parts(t)) is not None]
    if len(inner) != 1:
        return None
    f, p = inner[0]
    rest = sp.Add(*(t for t in terms if t is not f))
    if rest.has(*_ROUNDING) or not _is_int(rest):
        return None
    limit = CHUNK << (p.nest // NEST_STEP)
    rest_size = _size(rest, limit)
    if rest != 0 and p.size + rest_size + _size(p.denom, limit) >= limit:
        return None  # a new floor around this one (a chunk boundary)
    denom = p.denom * b
    if p.denom.is_Integer and denom.is_Integer and not p.bounded and not (
            p.size <= _SMALL and _plain(p.numer) and _plain(denom)):
        if not _bounded_terms(rest):
            return _shifted_floor(p, rest, denom, rest_size)
    return _floor_of(p.numer + rest * p.denom, denom, p.nest)


def _shifted_floor(p, rest, denom, rest_size):
    """``floor((X + rest·D)/denom)`` for the parts ``p`` = (X, D) of a large floor with number
    ``D``, ``denom``: X's terms are reused (one new object per changed term, not a rebuilt and
    re-sorted sum per layer) in an unevaluated sum. Only changed terms can have a coefficient
    ``denom`` divides (X's others were not divisible by D)."""
    d, d2 = p.denom.p, denom.p
    terms = p.take_terms()
    changed, size = [], p.size
    for t in sp.Add.make_args(rest):
        c, m = t.as_coeff_Mul()
        c = c * d
        old = terms.get(m)
        if old is not None:
            c = c + old.as_coeff_Mul()[0]
        elif m is not sp.S.One:
            size += _size(t, rest_size) + 1  # a new term
        if c == 0:
            terms.pop(m, None)
        else:
            terms[m] = c if m is sp.S.One else c * m
            changed.append(m)
    outside = []
    for m in changed:
        c = terms[m].as_coeff_Mul()[0]
        if c.is_Integer and c.p % d2 == 0 and _is_int(m):
            outside.append(sp.Integer(c.p // d2) * m)
            del terms[m]
    if not terms:
        return sp.Add(*outside)
    vals = list(terms.values())
    body = vals[0] if len(vals) == 1 else sp.Add(*vals, evaluate=False)
    if body.is_Number:
        return sp.Add(*outside, sp.Integer(body.p // d2))
    out = sp.floor(sp.Mul(body, sp.Pow(denom, -1, evaluate=False), evaluate=False), evaluate=False)
    _attach(out, _Parts(body, denom, p.nest, size, False, terms))
    return sp.Add(*outside, out) if outside else out


def _floor_of(numer, denom, nest=1):
    """``floor(numer/denom)`` for an integer expression ``numer`` and a positive integer ``denom``,
    its parts attached.

    For a number ``denom`` it is built as sympy's ``floor`` builds it (the terms whose coefficient
    ``denom`` divides taken out, the rest one floor) without sympy's evaluation, which queries
    the assumptions of the whole argument (about 10 ms for ``floor((x - 1)/4)``, seconds with
    1,000-bit numbers) and only decides bounded arguments, which these linear forms in
    unbounded symbols are not (a ``Piecewise``, ``Max`` or ``Min`` term is left to sympy). Large
    ones (many terms, or numbers beyond 64 bits) stay ``floor(numer/denom)`` with ``numer`` kept
    as it is, shared with the floor before. A symbolic ``denom`` is left to sympy while small (it
    may decide ``floor((k - 1)/k) = 0``)."""
    plain = _plain(numer) and _plain(denom)
    if not denom.is_Integer or _bounded_terms(numer):
        out = sp.floor(numer / denom) if plain else sp.floor(numer / denom, evaluate=False)
        if isinstance(out, sp.floor):
            _attach(out, _Parts(numer, denom, nest))
        return out
    d = denom.p
    outside, inside = [], []
    for t in sp.Add.make_args(numer):
        c, m = t.as_coeff_Mul()
        if c.is_Integer and c.p % d == 0 and _is_int(m):
            outside.append(sp.Integer(c.p // d) * m)
        else:
            inside.append(t)
    if not inside:
        return sp.Add(*outside)
    if plain:
        arg = sp.Add(*(t / d for t in inside))
        if arg.is_Number:
            return sp.Add(*outside, arg.floor())
        out = sp.floor(arg, evaluate=False)
        body = sp.Add(*inside)
    else:
        body = numer if not outside else inside[0] if len(inside) == 1 else sp.Add(*inside, evaluate=False)
        if body.is_Number:
            return sp.Add(*outside, sp.Integer(body.p // d))
        out = sp.floor(sp.Mul(body, sp.Pow(denom, -1, evaluate=False), evaluate=False), evaluate=False)
    _attach(out, _Parts(body, denom, nest))
    return sp.Add(*outside, out) if outside else out


def _is_int(expr) -> bool:
    """``expr.is_integer is True``, answered structurally for sums and products of integers and
    floors (sympy's assumption queries on a floor ask about its whole argument)."""
    stack = [expr]
    while stack:
        e = stack.pop()
        if e.is_Integer or isinstance(e, _ROUNDING):
            continue  # the floors here have real arguments
        if e.is_Add or e.is_Mul:
            stack.extend(e.args)
        elif e.is_Pow and e.exp.is_Integer and e.exp >= 0:
            stack.append(e.base)
        elif e.is_integer is not True:
            return False
    return True


_BOUNDED = (sp.Piecewise, sp.Max, sp.Min, sp.Abs, sp.Mod)


def _bounded_terms(expr) -> bool:
    """Whether ``expr`` holds a Piecewise, Max, Min, Abs or Mod outside any floor (terms whose
    bounds sympy's floor may use)."""
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, _BOUNDED):
            return True
        if not isinstance(e, _ROUNDING):
            stack.extend(e.args)
    return False


def _extreme(xs, cls):
    """``Max``/``Min`` of ``xs``, built without sympy's own argument comparisons (which grow
    without bound for merges deep in a symbolic DAG): arguments flattened; terms every argument
    shares taken out (``Max(C + a, C + b) = C + Max(a, b)``, so merges of branches with a common
    ancestor do not repeat its expression); duplicates and provably dominated arguments dropped
    (their difference is a number, or a small expression whose sign the symbols' assumptions
    decide); the rest kept as one unevaluated ``Max``/``Min`` (equal to sympy's evaluated one)."""
    xs = [sp.sympify(x) for x in xs]
    if all(x.is_Number for x in xs):
        return max(xs) if cls is sp.Max else min(xs)
    args = list(dict.fromkeys(a for x in xs for a in (x.args if isinstance(x, cls) else (x,))))
    if len(args) == 1:
        return args[0]
    parts = [a.as_coefficients_dict() for a in args]
    common = {t for t, c in parts[0].items() if t != 1 and all(p.get(t) == c for p in parts[1:])}
    if common:
        shared = sp.Add(*(parts[0][t] * t for t in common))
        rest = [sp.Add(*(c * t for t, c in p.items() if t not in common)) for p in parts]
        return shared + _extreme(rest, cls)

    def at_most(a, b):  # provably a <= b (for Max: a is redundant beside b)
        d = (b - a) if cls is sp.Max else (a - b)
        if d.is_number:
            return bool(d >= 0)
        return not exceeds(d, 20) and d.is_nonnegative is True

    keep = []
    for i, a in enumerate(args):
        if not any(j != i and at_most(a, b) and (j < i or not at_most(b, a)) for j, b in enumerate(args)):
            keep.append(a)
    return keep[0] if len(keep) == 1 else cls(*keep, evaluate=False)


def _scalars(*xs) -> bool:
    return all(isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) for x in xs)


class NumOps:
    """Elementwise arithmetic on :class:`~rfsym.checked.Checked` int64 arrays (exact: see its docstring) or
    Python ints (scalars are computed as Python ints, so they agree with the arrays)."""

    symbolic = False
    exact = False
    numbers = False

    @staticmethod
    def num(x):
        return x

    @staticmethod
    def floordiv(a, b):
        if _scalars(a, b):
            return int(a) // int(b)
        return np.floor_divide(a, b)

    @staticmethod
    def ceildiv(a, b):
        if _scalars(a, b):
            return -(-int(a) // int(b))
        return -np.floor_divide(np.negative(a), b)

    @staticmethod
    def max(*xs):
        if _scalars(*xs):
            return max(int(x) for x in xs)
        out = xs[0]
        for x in xs[1:]:
            out = np.maximum(out, x)
        return out

    @staticmethod
    def min(*xs):
        if _scalars(*xs):
            return min(int(x) for x in xs)
        out = xs[0]
        for x in xs[1:]:
            out = np.minimum(out, x)
        return out

    @staticmethod
    def ge(a, b):
        return np.greater_equal(a, b)

    @staticmethod
    def where(cond, a, b):
        if np.ndim(cond) == 0 and _scalars(a, b):
            return int(a) if cond else int(b)
        return np.where(cond, a, b)

    @staticmethod
    def div(a, b):
        if np.ndim(a) == 0 and np.ndim(b) == 0:
            f = Fraction(int(a), int(b))
            return f.numerator if f.denominator == 1 else f
        from .checked import Checked, bound_of, narrow, wrap

        a, b = np.asanyarray(a), np.asanyarray(b)
        if a.dtype == object or b.dtype == object:
            out = np.frompyfunc(lambda x, y: _frac(Fraction(int(x), int(y))), 2, 1)(a, b)
            return narrow(out)
        if a.dtype.kind in "iu" and b.dtype.kind in "iu":
            q, r = np.divmod(a, b)
            if not r.any():
                return wrap(np.asarray(q)) if not isinstance(q, Checked) else q
            big = max(bound_of(np.asarray(a), a) or 0, bound_of(np.asarray(b), b) or 0)
            if big >= 1 << 52:  # float64 is exact only below 2**53: exact fractions instead
                return np.frompyfunc(lambda x, y: _frac(Fraction(int(x), int(y))), 2, 1)(
                    np.asarray(a), np.asarray(b))
        return np.true_divide(a, b)  # half-integers (centres) are exact in float64

    @staticmethod
    def pow(a, b):
        if _scalars(a, b):
            return int(a) ** int(b)
        return np.power(a, b)

    @staticmethod
    def geom(j, n):
        if _scalars(j, n):
            j, n = int(j), int(n)
            return n if j == 1 else (j**n - 1) // (j - 1)
        from .checked import as_checked

        j, n = as_checked(j), as_checked(n)
        one = j == 1
        safe = np.where(one, 2, j)
        reps = np.where(one, 0, n)  # 2**0 where j == 1: no big power computed only to be discarded
        out = np.where(one, n, (np.power(safe, reps) - 1) // (safe - 1))
        return out if np.ndim(out) else int(out)

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


def exact_values(expr, syms, args):
    """``expr`` evaluated exactly (sympy, entry by entry) at the given values of ``syms``: the
    fallback for parameter expressions whose float evaluation would not be exact (values of 2**53
    or more). Returns an object array of Python ints and Fractions (an int for scalars).

    >>> import sympy as sp
    >>> k = sp.Symbol("k", integer=True, positive=True)
    >>> exact_values(sp.floor(k / 2), (k,), (np.array([2**60 + 1, 7]),)).tolist()
    [576460752303423488, 3]
    """
    def one(*vals):
        v = expr.xreplace(dict(zip(syms, (sp.Integer(int(x)) for x in vals))))
        if v.is_Integer:
            return int(v)
        if v.is_Rational:
            return Fraction(int(v.p), int(v.q))
        return v

    if not args:
        return one()
    out = np.frompyfunc(one, len(syms), 1)(*(np.asarray(a) for a in args))
    return out if isinstance(out, np.ndarray) else out


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
    numbers = True  # exact and not symbolic: every value a Python int or Fraction

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
        if not arrays or any(np.asarray(values[i]).dtype == object for i in arrays):
            return None  # exact Python ints (beyond int64) are evaluated as they are
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
        from .checked import checked

        columns = list(values)
        for i, col in zip(arrays, out):
            columns[i] = checked(np.ascontiguousarray(col, dtype=np.int64))
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
