"""Symbols and the sympify boundary.

Every number a user gives rfsym passes through :func:`as_expr`, which turns ints into sympy
Integers and checks that symbols carry the assumptions rfsym needs. Symbols default to
**positive integers**: :func:`symbols` makes them that way.

>>> from rfsym import symbols
>>> k, s = symbols("k s")
>>> k.is_integer, k.is_positive
(True, True)
>>> symbols("p", nonnegative=True).is_nonnegative
True
"""

from __future__ import annotations

import decimal
import math
import numbers
import warnings
from fractions import Fraction
from typing import Any

import sympy as sp

from .errors import LayerError

__all__ = ["symbols", "as_expr", "subs", "to_sympy", "is_symbolic", "to_int", "exceeds", "magnitude_bits", "bounded_subs",
           "MAX_RESULT_BITS"]


def symbols(names: str, **assumptions):
    """Like :func:`sympy.symbols`, but integer and positive unless told otherwise.

    ``nonnegative=True`` makes integer symbols that may be zero (paddings).

    >>> symbols("k")
    k
    >>> symbols("k s n C")
    (k, s, n, C)
    """
    assumptions.setdefault("integer", True)
    if assumptions.get("nonnegative"):
        assumptions.setdefault("positive", None)
        if assumptions["positive"] is None:
            del assumptions["positive"]
    else:
        assumptions.setdefault("positive", True)
    return sp.symbols(names, **assumptions)


def _coerce_symbols(expr: sp.Expr, nonnegative: bool, param: str = "a parameter") -> sp.Expr:
    """Replace symbols lacking integer assumptions by integer positive (or nonnegative) ones.

    The replacement keeps the name, so ``Result.subs({"k": 3})`` still finds it. Warns once per
    call, pointing at the user's line (the first frame outside rfsym).
    """
    repl = {}
    for sym in expr.free_symbols:
        if sym.is_integer and (sym.is_positive or (nonnegative and sym.is_nonnegative)):
            continue
        if sym.is_integer and sym.is_nonnegative:
            continue
        new = sp.Symbol(sym.name, integer=True, **({"nonnegative": True} if nonnegative else {"positive": True}))
        repl[sym] = new
    if repl:
        names = sorted(s.name for s in repl)
        kind = "nonnegative" if nonnegative else "positive"
        hint = f"rfsym.symbols({' '.join(names)!r}{', nonnegative=True' if nonnegative else ''})"
        if len(names) == 1:
            told = f"symbol {names[0]} has no integer/{kind} assumptions; rfsym treats it as a {kind} integer"
        else:
            told = (f"symbols {', '.join(names)} have no integer/{kind} assumptions; rfsym treats them as "
                    f"{kind} integers")
        warnings.warn(
            f"{param}: {told} (create symbols with {hint})",
            stacklevel=_user_stacklevel(),
        )
        expr = expr.xreplace(repl)
    return expr


def _user_stacklevel() -> int:
    """``stacklevel`` for :func:`warnings.warn` that points at the first frame outside rfsym
    (and outside the dataclass-generated ``__init__``)."""
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1  # frame of our caller == stacklevel 1
    while frame is not None:
        fname = frame.f_code.co_filename
        if not (os.path.abspath(fname).startswith(here + os.sep) or fname.startswith("<string>")):
            return level
        frame, level = frame.f_back, level + 1
    return 1


def as_expr(value: Any, param: str, *, minimum: int | None = 1, allow_none: bool = False, text: bool = False,
            integer: bool = True) -> sp.Expr | None:
    """The value boundary: every number a user gives rfsym passes through here.

    Accepted: Python and numpy integers, integral floats below 2**53 (``3.0``), sympy integers and
    expressions, :class:`fractions.Fraction` equal to an integer, and (``text=True`` only) strings,
    parsed by rfsym's own expression parser (:func:`rfsym.expr.parse_value`, which never
    evaluates Python). Nothing reaches :func:`sympy.sympify`, which evaluates text. Refused, with
    a :class:`~rfsym.errors.LayerError` naming ``param``: bools, other floats, NaN, infinities,
    complex numbers, non-integer numbers (unless ``integer=False``: rationals for targets), symbols
    declared non-integer (``Symbol('k', integer=False)``), containers (a list is not a scalar),
    strings without ``text=True``, and values provably below ``minimum`` (None: no bound).
    Undecidable symbolic values are kept; symbols without assumptions become positive (or, for
    ``minimum=0``, nonnegative) integers, with a warning.

    Args:
        value: the value given by the user.
        param: its name, used in the error message.
        minimum: the smallest allowed value (1, 0, or None for any integer).
        allow_none: whether None passes through.
        text: whether a string is parsed (rfsym's expression syntax) instead of refused.
        integer: whether the value must be an integer (False: any real rational expression).

    Returns:
        A sympy expression (or None).

    Raises:
        LayerError: the value is not acceptable.

    >>> as_expr(3, "stride")
    3
    >>> as_expr("2*k + 1", "kernel_size", text=True)
    2*k + 1
    >>> as_expr(0, "stride")
    Traceback (most recent call last):
    ...
    rfsym.errors.LayerError: stride must be a positive integer, got 0
    >>> as_expr(["__import__('os')"], "stride")
    Traceback (most recent call last):
    ...
    rfsym.errors.LayerError: stride must be a positive integer, got ["__import__('os')"]
    """
    if type(value) is int and (minimum is None or value >= minimum):
        return sp.Integer(value)  # the common case: every check below holds for a plain int in range
    what = ("a positive integer" if minimum == 1 else "a nonnegative integer" if minimum == 0
            else f"an integer >= {minimum}" if minimum is not None else "an integer")
    if not integer:
        what = "a number or an expression"

    def refuse(extra=""):
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:60] + "..." + shown[-10:]
        return LayerError(f"{param} must be {what}, got {shown}{extra}", param=param)

    if value is None:
        if allow_none:
            return None
        raise refuse()
    if isinstance(value, bool) or isinstance(value, (bytes, bytearray)):
        raise refuse()
    if isinstance(value, str):
        if not text:
            raise refuse()
        from .errors import RfsymError
        from .expr import parse_value

        try:
            expr = parse_value(value, origin=f"{param}: ")
        except RfsymError as err:
            raise LayerError(str(err), param=param) from None
        if isinstance(expr, tuple):
            raise refuse(" (a per-axis tuple where one value is expected)")
    elif isinstance(value, numbers.Integral):
        expr = sp.Integer(int(value))
    elif isinstance(value, sp.Basic):
        expr = value
        if isinstance(expr, sp.Float):  # 3.0 -> 3; 2.5 is rejected below
            expr = _float_integer(float(expr)) if expr.is_finite else expr
    elif isinstance(value, float) or type(value).__module__ == "numpy" and isinstance(value, numbers.Real):
        expr = _float_integer(float(value))
        if expr is None:
            raise refuse()
    elif isinstance(value, Fraction):
        if value.denominator != 1 and integer:
            raise refuse()
        expr = sp.Rational(value.numerator, value.denominator)
    elif isinstance(value, decimal.Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise refuse()
        expr = sp.Integer(int(value))
    else:  # lists, dicts, complex, arbitrary objects: never sympified
        raise refuse()
    if expr is None or not isinstance(expr, sp.Expr) or expr.is_Matrix:
        raise refuse()
    if isinstance(expr, sp.Float) or expr.has(sp.Float):
        raise refuse(" (floats are not exact; use integers)")
    if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo, sp.I):
        raise refuse()
    if exceeds(expr, 100_000):
        raise refuse(" (the expression is too large)")
    for sym in expr.free_symbols:
        if sym.is_integer is False or sym.is_real is False or (integer and sym.is_rational is False):
            raise LayerError(f"{param}: symbol {sym.name} is declared non-integer; rfsym symbols are "
                             f"integers (create it with rfsym.symbols({sym.name!r}))", param=param)
    if minimum is not None and (expr - minimum).is_negative:  # provably too small, before any coercion
        raise refuse()
    if expr.free_symbols:
        expr = _coerce_symbols(expr, nonnegative=minimum == 0, param=param)
    if expr.is_real is False or (integer and expr.is_integer is False):
        raise refuse()
    if minimum is not None and (expr - minimum).is_negative:
        raise refuse()
    return expr


def _float_integer(x: float):
    """The sympy Integer of an integral float below 2**53 (exactly representable), else None."""
    if math.isfinite(x) and x.is_integer() and abs(x) < 2**53:
        return sp.Integer(int(x))
    return None


def subs(expr, mapping):
    """``expr`` with symbols replaced, the values checked at the value boundary first.

    ``mapping`` maps symbols (or their names) to values; only the pairs ``expr`` needs are looked
    at (a 2,000-symbol mapping over a 1,000-layer network costs no more than the symbols each
    value has). Each value passes :func:`as_expr` (any integer expression): text, floats and
    containers are refused, never handed to sympy, whose ``subs`` would ``sympify`` (evaluate)
    them.

    Raises:
        LayerError: a value is not an integer or an integer expression.

    >>> k, s = symbols("k s")
    >>> subs(2 * k + s, {"k": 3, s: k})
    k + 6
    >>> subs(k, {k: "__import__('os')"})
    Traceback (most recent call last):
    ...
    rfsym.errors.LayerError: the value for k must be an integer, got "__import__('os')"
    """
    if not isinstance(mapping, dict):
        try:
            mapping = dict(mapping)
        except (TypeError, ValueError):
            raise LayerError(f"subs takes a dict of symbol: value, got {mapping!r}", param="mapping") from None
    if not isinstance(expr, sp.Basic) or not expr.free_symbols:
        return expr
    pairs = {}
    for sym in expr.free_symbols:
        if sym in mapping:
            value = mapping[sym]
        elif getattr(sym, "name", None) in mapping:
            value = mapping[sym.name]
        else:
            continue
        pairs[sym] = as_expr(value, f"the value for {sym.name}", minimum=None)
    return expr.subs(pairs) if pairs else expr


def to_sympy(value):
    """A number or sympy object as sympy, for formatting and comparing computed values: ints,
    floats, Fractions, Decimals, numpy scalars and sympy objects are converted; text and anything
    else are refused (:func:`sympy.sympify` would evaluate text).

    >>> to_sympy(3), to_sympy(0.5)
    (3, 0.500000000000000)
    >>> to_sympy("__import__('os')")
    Traceback (most recent call last):
    ...
    rfsym.errors.RfsymError: expected a number or a sympy expression, got "__import__('os')"
    """
    from .errors import RfsymError

    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, (numbers.Number, decimal.Decimal)) and not isinstance(value, bool):
        return sp.sympify(value)  # numbers only: never text
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return sp.sympify(value.item()) if not isinstance(value.item(), (str, bytes, bool)) else _refuse(value)
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:60] + "..."
    raise RfsymError(f"expected a number or a sympy expression, got {shown}")


def _refuse(value):
    from .errors import RfsymError
    raise RfsymError(f"expected a number or a sympy expression, got {value!r}")


def is_symbolic(value) -> bool:
    """True when ``value`` is a sympy expression with free symbols."""
    return isinstance(value, sp.Basic) and bool(value.free_symbols)


def to_int(value):
    """A Python int for numeric sympy values, the value itself otherwise."""
    if isinstance(value, sp.Integer):
        return int(value)
    return value


def exceeds(expr, limit: int) -> bool:
    """True when ``expr`` has more than ``limit`` nodes; counted iteratively, so expressions of
    any depth are safe.

    >>> import sympy as sp
    >>> exceeds(sp.Symbol("x") + 1, 2), exceeds(sp.Symbol("x") + 1, 3)
    (True, False)
    """
    stack, seen = [expr], 0
    while stack:
        seen += 1
        if seen > limit:
            return True
        stack.extend(stack.pop().args)
    return False


#: largest result, in bits, that :func:`bounded_subs` lets sympy compute (2**65536)
MAX_RESULT_BITS = 1 << 16


def magnitude_bits(expr, values=None) -> float:
    """An upper bound on ``log2 |expr|`` once the symbols in ``values`` (a dict symbol -> number)
    are replaced; symbols without a value count as small. Computed iteratively over the tree
    without evaluating anything, so ``2**(10**12)`` is estimated, not built.

    >>> import sympy as sp
    >>> n = sp.Symbol("n", integer=True, positive=True)
    >>> magnitude_bits(2**n, {n: 10**12}) >= 10**12
    True
    """
    import math

    values = {k: sp.Integer(v) if isinstance(v, int) else v for k, v in (values or {}).items()}
    memo: dict = {}
    stack = [(expr, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in memo:
            continue
        if not done and node.args:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if id(a) not in memo)
            continue
        if node in values:
            bits = magnitude_bits(values[node]) if values[node].free_symbols else \
                float(abs(int(values[node])).bit_length())
        elif getattr(node, "is_Rational", False):
            bits = float(max(abs(node.p).bit_length(), node.q.bit_length()))
        elif not node.args:
            bits = 1.0  # a free symbol or a constant (pi, oo)
        else:
            sub = [memo[id(a)] for a in node.args]
            if node.is_Mul:
                bits = sum(sub)
            elif node.is_Pow:
                exp = node.exp.xreplace(values) if values else node.exp
                e = abs(exp) if exp.is_number and exp.is_finite else None
                if e is None:
                    bits = max(sub)
                else:
                    e = float(e) if e < 2**1000 else math.inf
                    bits = sub[0] * max(e, 1.0)
            else:  # Add, functions (floor, Max, Piecewise, ...): the largest argument, doubled per term
                bits = max(sub) + math.log2(len(sub) + 1)
        memo[key] = bits
    return memo[id(expr)]


def bounded_subs(expr, values, what="the result", limit=MAX_RESULT_BITS):
    """``expr.subs(values)`` when the result has at most ``limit`` bits (estimated first by
    :func:`magnitude_bits`), else a :class:`~rfsym.errors.RfsymError`: sympy would spend
    unbounded time and memory building a number such as ``2**(10**12)``.

    >>> import sympy as sp
    >>> n = sp.Symbol("n", integer=True, positive=True)
    >>> bounded_subs(2**n - 1, {n: 10})
    1023
    >>> bounded_subs(2**n, {n: 10**12}, "jump")
    Traceback (most recent call last):
    ...
    rfsym.errors.RfsymError: jump would have about 2000000000000 bits (more than 65536); rfsym does not build numbers that large
    """
    from .errors import RfsymError

    if expr is None or not isinstance(expr, sp.Basic):
        return expr
    bits = magnitude_bits(expr, values)
    if bits > limit:
        raise RfsymError(f"{what} would have about {int(bits) if bits < 1e300 else 'infinitely many'} bits "
                         f"(more than {limit}); rfsym does not build numbers that large")
    return expr.subs(values)
