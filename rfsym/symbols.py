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

__all__ = ["symbols", "as_expr", "is_symbolic", "to_int"]


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


def _coerce_symbols(expr: sp.Expr, nonnegative: bool) -> sp.Expr:
    """Replace symbols lacking integer assumptions by integer positive (or nonnegative) ones."""
    repl = {}
    for sym in expr.free_symbols:
        if sym.is_integer and (sym.is_positive or (nonnegative and sym.is_nonnegative)):
            continue
        if sym.is_integer and sym.is_nonnegative:
            continue
        new = sp.Symbol(sym.name, integer=True, **({"nonnegative": True} if nonnegative else {"positive": True}))
        repl[sym] = new
    if repl:
        names = ", ".join(sorted(s.name for s in repl))
        warnings.warn(
            f"symbol(s) {names} had no integer/positive assumptions; rfsym treats them as "
            f"{'nonnegative' if nonnegative else 'positive'} integers (make them with rfsym.symbols)",
            stacklevel=4,
        )
        expr = expr.xreplace(repl)
    return expr


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
    if not isinstance(expr, sp.Expr):
        raise LayerError(f"{param} must be {what}, got {value!r}", param=param)
    if expr.free_symbols:
        expr = _coerce_symbols(expr, nonnegative=minimum == 0)
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
