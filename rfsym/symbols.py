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

import numbers
import warnings

import sympy as sp

from .errors import LayerError

__all__ = ["symbols", "as_expr", "is_symbolic", "to_int", "exceeds"]


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


def as_expr(value, param: str, *, minimum: int = 1, allow_none: bool = False):
    """Sympify one scalar parameter and check it is an integer >= ``minimum``.

    Provably invalid values raise :class:`~rfsym.errors.LayerError` naming ``param``;
    undecidable symbolic ones are kept (they stay symbolic downstream).

    >>> as_expr(3, "stride")
    3
    >>> as_expr(0, "stride")
    Traceback (most recent call last):
    ...
    rfsym.errors.LayerError: stride must be a positive integer, got 0
    """
    what = "a positive integer" if minimum == 1 else "a nonnegative integer"
    if value is None:
        if allow_none:
            return None
        raise LayerError(f"{param} must be {what}, got None", param=param)
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise LayerError(f"{param} must be {what}, got {value!r}", param=param)
    if isinstance(value, numbers.Integral):
        expr = sp.Integer(int(value))
    elif isinstance(value, sp.Basic):
        expr = value
        if isinstance(expr, sp.Float):  # 3.0 -> 3; 2.5 is rejected below
            expr = sp.Integer(int(expr)) if expr.is_finite and float(expr).is_integer() else expr
    elif isinstance(value, numbers.Real):
        if float(value).is_integer():
            expr = sp.Integer(int(value))
        else:
            raise LayerError(f"{param} must be {what}, got {value!r}", param=param)
    else:
        try:
            expr = sp.sympify(value)
        except (sp.SympifyError, TypeError):
            raise LayerError(f"{param} must be {what}, got {value!r}", param=param) from None
    if isinstance(expr, sp.Float):  # Decimal('3') and friends
        expr = sp.Integer(int(expr)) if expr.is_finite and float(expr).is_integer() else expr
    if not isinstance(expr, sp.Expr) or expr.is_Matrix or expr.has(sp.nan, sp.zoo, sp.oo):
        raise LayerError(f"{param} must be {what}, got {value!r}", param=param)
    if (expr - minimum).is_negative:  # provably too small, before any coercion
        raise LayerError(f"{param} must be {what}, got {value!r}", param=param)
    if expr.free_symbols:
        expr = _coerce_symbols(expr, nonnegative=minimum == 0, param=param)
    if expr.is_integer is False or expr.is_real is False:
        raise LayerError(f"{param} must be {what}, got {value!r}", param=param)
    if (expr - minimum).is_negative:
        raise LayerError(f"{param} must be {what}, got {value!r}", param=param)
    return expr


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
