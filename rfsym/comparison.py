r"""Comparisons that settle design arguments: side-by-side tables with exact differences and
ratios, the smallest depth/kernel/dilation reaching a target, and crossover points.

Everything reads the engine's results; differences and ratios are simplified with sympy under
the symbols' assumptions (positive integers), so "equal" means *proven* equal.

>>> from rfsym import Conv, Sequential, symbols
>>> C = symbols("C")
>>> one = Conv(7, in_channels=C, out_channels=C, bias=False)
>>> three = Sequential(*[Conv(3, in_channels=C, out_channels=C, bias=False)] * 3)
>>> c = compare(one, three, names=["one 7×7", "three 3×3"])
>>> c.difference("rf"), c.ratio("params"), c.equal("rf")
(0, 27/49, True)
>>> print(c.to_text())
quantity  one 7×7  three 3×3  difference  ratio
--------  -------  ---------  ----------  -----
rf              7          7           0      1
jump            1          1           0      1
params      49·C²      27·C²      −22·C²  27/49

Zoo names compare at their default input sizes; networks with a reference feature layer add its
receptive field and jump (the backbone number, :func:`rfsym.summaries.features`):

>>> print(compare("resnet18", "resnet50", quantities=("rf", "features.rf", "features.jump")).to_text())
quantity       resnet18  resnet50  difference     ratio
-------------  --------  --------  ----------  --------
rf                  627       619          −8  ≈ 0.9872
features.rf         435       427          −8  ≈ 0.9816
features.jump        32        32           0         1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sympy as sp

from .engine import Result, analyze
from .errors import RfsymError
from .format import WIDTH, Column, Table, value
from .layers import Layer
from .summaries import features, load
from .symbols import as_expr

__all__ = ["compare", "Comparison", "smallest", "crossover", "Solution", "QUANTITIES"]

#: the quantities compared by default (``features.X``: X of the reference feature layer; rows no
#: network has are left out)
QUANTITIES = ("rf", "jump", "features.rf", "features.jump", "params", "macs")


def _simplify(e):
    e = sp.sympify(e)
    return e if e.is_number else sp.simplify(e)


def _ratio(r, style):
    """Exact ratios with small denominators print exactly (27/49); others as ``≈ 1.865``."""
    e = None if r is None or isinstance(r, tuple) else sp.sympify(r)
    if e is not None and e.is_Rational and e.q > 100:
        approx = f"{float(e):.4g}"
        return rf"\approx {approx}" if style == "latex" else f"≈ {approx}"
    return value(r, style)


class Comparison:
    """Results side by side (see :func:`compare`). The first is the baseline of differences
    (``other − baseline``) and ratios (``other / baseline``)."""

    def __init__(self, results, names, quantities):
        self.results = list(results)
        self.names = list(names)
        self.quantities = [q for q in quantities if any(self.value(q, i) is not None
                                                        for i in range(len(self.results)))]

    def value(self, quantity, i=0):
        """The quantity of result ``i`` (per-axis values collapse as in the engine);
        ``features.rf`` and the like read the reference feature layer (None without one)."""
        head, dot, attr = quantity.partition(".")
        if dot and head == "features":
            f = features(self.results[i])
            return None if f is None else getattr(f, attr)
        return getattr(self.results[i], quantity)

    def _pair(self, quantity, i, base, op):
        a, b = self.value(quantity, base), self.value(quantity, i)
        if a is None or b is None:
            return None
        if isinstance(a, tuple) or isinstance(b, tuple):
            n = len(a) if isinstance(a, tuple) else len(b)
            a = a if isinstance(a, tuple) else (a,) * n
            b = b if isinstance(b, tuple) else (b,) * n
            out = tuple(op(x, y) for x, y in zip(a, b))
            return out[0] if all(v == out[0] for v in out) else out
        return op(a, b)

    def difference(self, quantity, i=1, base=0):
        """``value(i) − value(base)``, simplified."""
        return self._pair(quantity, i, base, lambda a, b: _simplify(b - a))

    def ratio(self, quantity, i=1, base=0):
        """``value(i) / value(base)``, simplified (None when the baseline is 0)."""
        return self._pair(quantity, i, base, lambda a, b: None if sp.sympify(a) == 0 else _simplify(sp.sympify(b) / a))

    def equal(self, quantity, i=1, base=0):
        """True when proven equal, False when proven different, None when undecided."""
        d = self.difference(quantity, i, base)
        if d is None:
            return None
        ds = d if isinstance(d, tuple) else (d,)
        if all(x == 0 for x in ds):
            return True
        if any(sp.sympify(x).is_zero is False for x in ds):
            return False
        return None

    def rows(self):
        """``(quantity, values, differences, ratios)`` per quantity."""
        others = range(1, len(self.results))
        return [(q, [self.value(q, i) for i in range(len(self.results))],
                 [self.difference(q, i) for i in others], [self.ratio(q, i) for i in others])
                for q in self.quantities]

    def _header(self):
        head = ["quantity"] + self.names
        if len(self.results) == 2:
            return head + ["difference", "ratio"]
        for name in self.names[1:]:
            head += [f"{name} − {self.names[0]}", f"{name} / {self.names[0]}"]
        return head

    def table(self) -> Table:
        """The comparison as a :class:`~rfsym.format.Table` (render it in any style)."""
        head = self._header()
        cols = [Column(head[0], "label")] + [Column(h) for h in head[1:]]
        n = len(self.results)
        for j in range(n + 2, len(cols), 2):  # ratio columns
            cols[j] = Column(head[j], "value", fn=_ratio)
        rows = []
        for q, values, diffs, ratios in self.rows():
            row = [q] + list(values)
            for d, r in zip(diffs, ratios):
                row += [d, r]
            rows.append(row)
        return Table(cols, rows)

    def to_text(self) -> str:
        """An aligned text table (numbers right-aligned, at most 100 columns)."""
        return self.table().render("unicode", width=WIDTH)

    def to_markdown(self) -> str:
        """A Markdown table (symbolic values as inline LaTeX)."""
        return self.table().render("markdown")

    def to_latex(self) -> str:
        """A booktabs ``tabular``."""
        return self.table().render("latex")

    def to_html(self) -> str:
        """An HTML table (symbolic values as MathJax inline math)."""
        from .html import comparison_html

        return comparison_html(self)

    def to_dict(self) -> dict:
        """Plain data: names and, per quantity, values, differences and ratios (JSON-ready)."""
        from .report import jsonable
        return {"names": self.names, "quantities": {
            q: {"values": [jsonable(v) for v in values], "differences": [jsonable(d) for d in diffs],
                "ratios": [jsonable(r) for r in ratios]} for q, values, diffs, ratios in self.rows()}}

    def _repr_markdown_(self):
        return self.to_markdown()

    def _repr_html_(self):
        return self.to_html()

    def __str__(self):
        return self.to_text()

    def __repr__(self):
        return f"<Comparison of {', '.join(self.names)}>"


def compare(*items, names=None, input_size=None, in_channels=None, quantities=QUANTITIES) -> Comparison:
    """Compare networks side by side.

    Args:
        *items (object): two or more networks: :class:`~rfsym.engine.Result`\\ s, rfsym layers or graphs,
            zoo names or one-line specs, or any model :func:`rfsym.summary` takes.
        names (list[str] | None): a column name per item (default: the networks' names, else ``net1``, ``net2``, ...).
        input_size (int | tuple | None): for items that still need analysing (zoo names default to their own).
        in_channels (int | None): likewise.
        quantities (tuple[str, ...]): the rows (:data:`QUANTITIES`); rows no item knows (``macs`` without an input
            size, ``features.rf`` without a feature layer) are left out.

    Returns:
        A :class:`Comparison`.
    """
    if len(items) < 2:
        raise RfsymError("compare needs at least two networks")
    loaded = [load(it, input_size, in_channels=in_channels) for it in items]
    results = [r for r, _ in loaded]
    if names is None:
        names = [name or f"net{i + 1}" for i, (_, name) in enumerate(loaded)]
    if len(names) != len(results):
        raise RfsymError(f"compare got {len(results)} networks but {len(names)} names")
    return Comparison(results, [str(n) for n in names], quantities)


# --------------------------------------------------------------------------- solving
@dataclass
class Solution:
    """The smallest integer ``value`` of ``symbol`` at which ``expr`` reaches the target.

    ``method`` says how it was found: ``"solved"`` (sympy solved the equation and the integer
    was checked exactly), ``"search"`` (exact evaluation over the integers), or ``"symbolic"``
    (a closed form in a symbolic target, valid when ``expr`` increases with ``symbol``).
    """

    value: Any
    symbol: Any
    expr: Any
    target: Any
    method: str

    def __int__(self):
        return int(self.value)


def _quantity_expr(item, quantity, input_size, in_channels):
    if isinstance(item, (Layer, list, tuple)):
        item = analyze(item, input_size, in_channels=in_channels)
    if isinstance(item, Result):
        v = getattr(item, quantity)
        if v is None:
            raise RfsymError(f"the network has no {quantity} (give input_size or channels)")
        return v
    return as_expr(item, "the expression", minimum=None, integer=False, text=True)


def _pick_symbol(exprs, symbol):
    syms = set()
    for e in exprs:
        syms |= sp.sympify(e).free_symbols  # engine values or as_expr's: sympy already
    if symbol is not None:
        name = symbol if isinstance(symbol, str) else getattr(symbol, "name", None)
        if not isinstance(symbol, (str, sp.Symbol)):
            raise RfsymError(f"symbol must be a sympy Symbol or its name, got {symbol!r}")
        found = [s for s in syms if s.name == name]
        if isinstance(symbol, sp.Symbol) and not found:
            return symbol
        if not found:
            raise RfsymError(f"symbol {name} does not occur in the expression "
                             f"(its symbols: {', '.join(sorted(map(str, syms))) or 'none'})")
        return found[0]
    if len(syms) != 1:
        raise RfsymError(f"say which symbol to solve for (the expression has {sorted(map(str, syms)) or 'none'})")
    return syms.pop()


def _at(expr, x, v):
    return sp.sympify(expr).subs(x, v)


def _holds(expr, x, v, target, strict):
    val = _at(expr, x, v)
    ok = sp.sympify(val > target if strict else val >= target)
    if ok not in (sp.true, sp.false):
        raise RfsymError(f"cannot decide {val} {'>' if strict else '>='} {target}: other symbols remain")
    return ok is sp.true


def _first(expr, x, target, strict, lower, upper):
    """Smallest integer v in [lower, upper] where expr(v) reaches target, by exact evaluation
    (a linear scan up to 4096 values, then doubling and bisection, assuming monotone growth)."""
    v = lower
    while v <= min(upper, lower + 4096):
        if _holds(expr, x, v, target, strict):
            return v
        v += 1
    hi = v
    while not _holds(expr, x, hi, target, strict):
        if hi >= upper:
            return None
        hi = min(2 * hi, upper)
    lo = v - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _holds(expr, x, mid, target, strict):
            hi = mid
        else:
            lo = mid
    return hi


def _solve_real(expr, x, target):
    r = sp.Dummy("r", real=True)
    e = sp.sympify(expr).subs(x, r)
    if e.has(sp.Piecewise, sp.floor, sp.ceiling, sp.Max, sp.Min, sp.Sum):
        return None
    try:
        roots = sp.solve(sp.Eq(e, target), r)
    except (NotImplementedError, ValueError, TypeError):
        return None
    return [s for s in roots if s.is_real is not False]


def _bounds(lower, upper):
    """``lower`` and ``upper`` as Python ints (checked at the value boundary)."""
    lo, hi = (as_expr(v, name, minimum=None) for v, name in ((lower, "lower"), (upper, "upper")))
    if not (lo.is_Integer and hi.is_Integer):
        raise RfsymError(f"lower and upper must be integer numbers, got {lower!r} and {upper!r}")
    return int(lo), int(hi)


def _smallest_expr(expr, x, target, strict, lower, upper):
    target = sp.sympify(target)
    roots = _solve_real(expr, x, target)
    if target.free_symbols:
        if not roots or len(roots) != 1:
            raise RfsymError(f"cannot solve {expr} = {target} for {x} symbolically")
        root = roots[0]
        value = sp.floor(root) + 1 if strict else sp.ceiling(root)
        return Solution(sp.Max(value, lower), x, expr, target, "symbolic")
    if roots:
        cands = sorted({int(math.floor(float(r))) for r in roots if sp.sympify(r).is_real})
        for c in cands:
            for v in (c - 1, c, c + 1, c + 2):
                if v < lower:
                    continue
                if _holds(expr, x, v, target, strict) and (v == lower or not _holds(expr, x, v - 1, target, strict)):
                    # the root brackets the first crossing; check nothing smaller qualifies
                    if v - lower <= 4096 and _first(expr, x, target, strict, lower, v) != v:
                        break
                    return Solution(v, x, expr, target, "solved")
    v = _first(expr, x, target, strict, lower, upper)
    if v is None:
        raise RfsymError(f"{expr} does not reach {target} for {x} in [{lower}, {upper}]")
    return Solution(v, x, expr, target, "search")


def smallest(item, target, symbol=None, *, quantity="rf", strict=False, lower=1, upper=2**62,
             input_size=None, in_channels=None) -> Solution:
    """The smallest integer value of ``symbol`` (>= ``lower``) for which ``quantity`` reaches
    ``target`` (``>=``; ``>`` with ``strict``).

    ``item`` is a network with one free symbol (a depth ``Repeat(block, n)``, a kernel size ``k``,
    a dilation ``d``), a result, or an expression. Solved symbolically where sympy can, then the
    integer is checked exactly; otherwise found by exact evaluation. With a symbolic ``target``
    the answer is a closed form (valid when the quantity increases with the symbol). Per-axis
    quantities must reach the target on every axis.

    >>> from rfsym import Conv, Sequential, symbols
    >>> k, n, T = symbols("k n T")
    >>> smallest(2 * n + 1, 100).value                # a 3×3 stack needs n = 50 layers
    50
    >>> smallest(Sequential(Conv(k), Conv(k)), 100).value   # two k×k convolutions: k = 51
    51
    >>> smallest(2 * n + 1, T).value
    Max(1, ceiling(T/2 - 1/2))
    """
    target = as_expr(target, "target", minimum=None, integer=False, text=True)
    lower, upper = _bounds(lower, upper)
    expr = _quantity_expr(item, quantity, input_size, in_channels)
    exprs = expr if isinstance(expr, tuple) else (expr,)
    x = _pick_symbol(exprs, symbol)
    sols = [_smallest_expr(e, x, target, strict, lower, upper) for e in exprs]
    if len(sols) == 1:
        return sols[0]
    best = max(sols, key=lambda s: s.value)
    return Solution(best.value, x, expr, sp.sympify(target), best.method)


def crossover(a, b, symbol=None, *, quantity="rf", lower=1, upper=2**62, input_size=None,
              in_channels=None) -> Solution:
    """The smallest value of ``symbol`` (>= ``lower``) at which ``a``'s quantity exceeds ``b``'s:
    where architecture ``a`` overtakes ``b`` as, say, depth grows.

    >>> from rfsym import symbols
    >>> n = symbols("n")
    >>> crossover(2**(n + 1) - 1, 4 * n + 1).value   # dilated doubling vs a 5×5 stack
    3
    """
    lower, upper = _bounds(lower, upper)
    ea = _quantity_expr(a, quantity, input_size, in_channels)
    eb = _quantity_expr(b, quantity, input_size, in_channels)
    if isinstance(ea, tuple) or isinstance(eb, tuple):
        raise RfsymError("crossover compares one value per network; the axes differ (compare per axis)")
    x = _pick_symbol((ea, eb), symbol)
    return _smallest_expr(sp.sympify(ea) - eb, x, 0, True, lower, upper)
