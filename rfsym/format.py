r"""One formatter for every value rfsym shows: plain text, Unicode, LaTeX, Markdown and HTML.

Every table and line that rfsym prints (``rfsym analyze``, ``compare``, ``summary``, the zoo page,
derivations, LaTeX reports, notebook HTML, plot labels) renders its values here, so the same value
reads the same everywhere. The rules:

* **integers** have grouped digits from 1,000 on: ``1,234`` (LaTeX ``1\,234``);
* **counts in summaries** (parameters, MACs) may use SI prefixes: :func:`si` gives ``25.6 M``,
  ``4.09 G`` (three significant digits);
* **symbolic values** print in one style per format: ``49·C² + 2·k − 1`` in Unicode (the default for
  text output), ``49*C**2 + 2*k - 1`` in plain text (what :func:`sympy.sympify` reads back),
  ``49 C^{2} + 2 k - 1`` in LaTeX, and as inline LaTeX in Markdown (``$...$``) and HTML
  (``\(...\)``, MathJax);
* **per-axis values** print once when the axes agree; otherwise sizes, kernels and receptive fields
  join with ``×`` (``3×5``) and other quantities are a tuple ``(1, 2)``;
* **unknown values** (no input size, no channel counts) are ``–`` (``-`` in plain text);
* **long values are abbreviated** (:data:`MAX_CHARS` characters by default): the rendering is cut
  at the last term boundary (`` + `` or `` − ``) that fits and ends in ``… (N chars)``, where N is
  the length of the full rendering (in cells narrower than 20 characters, ``…`` alone); values
  too large to be worth rendering (more than 30 expression nodes per allowed character, at most
  :data:`MAX_NODES`) print as ``… (large expression)``. Full values stay
  available on the result and in JSON output.

>>> import sympy as sp
>>> C, k = sp.symbols("C k", positive=True, integer=True)
>>> value(49 * C**2), value(49 * C**2, "text"), value(49 * C**2, "latex")
('49·C²', '49*C**2', '49 C^{2}')
>>> value(1234), value(1234, "latex"), value((7, 7)), value((3, 5), area=True), value((1, 2))
('1,234', '1\\,234', '7', '3×5', '(1, 2)')
>>> si(25_557_032), si(4_089_184_256, "MAC"), si(999)
('25.6 M', '4.09 GMAC', '999')
>>> value(sum(k**i for i in range(30)), max_chars=40)
'k²⁹ + k²⁸ + k²⁷ + k²⁶ + k²⁵ + k²⁴ + … (165 chars)'
"""

from __future__ import annotations

import functools
import html as _html
import math
import numbers
import re
import sys
import threading

import sympy as sp

from .lazy_numpy import is_array, is_numpy_scalar, np
from .symbols import exceeds, to_sympy

__all__ = ["STYLES", "MAX_CHARS", "MAX_NODES", "WIDTH", "value", "group", "si", "latex", "tex_escape",
           "abbreviate", "Column", "Table", "progress"]

#: the output styles every function here takes
STYLES = ("text", "unicode", "latex", "markdown", "html")
#: default length after which a symbolic value is abbreviated in tables
MAX_CHARS = 60
#: the widest a text table prints (long values are abbreviated further to fit)
WIDTH = 100
#: expressions with more nodes than this are not rendered at all in abbreviated cells
MAX_NODES = 20_000

_SUPER = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_NONE = {"text": "-", "unicode": "–", "latex": r"\text{--}", "markdown": "–", "html": "–"}
_TIMES = {"text": "x", "unicode": "×", "latex": r"\times", "markdown": "×", "html": "×"}


def _check_style(style):
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}; got {style!r}")


def group(n, sep: str = ",") -> str:
    r"""An integer with grouped digits (every integer from 1,000 on).

    >>> group(999), group(1000), group(-1234567), group(138357544, r"\,")
    ('999', '1,000', '-1,234,567', '138\\,357\\,544')
    """
    n = int(n)
    s = f"{abs(n):,}".replace(",", sep)
    return ("-" if n < 0 else "") + s


_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(n, unit: str = "", style: str = "unicode") -> str:
    """A count with an SI prefix and three significant digits (``25.6 M``); counts below 1,000 as
    they are; symbolic or unknown counts as :func:`value` prints them.

    >>> si(11_689_512), si(1_814_073_856, "MAC"), si(0), si(None)
    ('11.7 M', '1.81 GMAC', '0', '–')
    """
    if n is None or not _is_number(n):
        return value(n, style)
    x = float(sp.sympify(n))
    for scale, prefix in _PREFIXES:
        if abs(x) >= scale * 0.9995:
            digits = f"{x / scale:#.3g}".rstrip(".")
            return f"{digits} {prefix}{unit}"
    return f"{int(x) if float(x).is_integer() else x:g}" + (f" {unit}" if unit else "")


def _is_number(v) -> bool:
    if isinstance(v, bool) or is_numpy_scalar(v) and v.dtype.kind == "b":
        return False
    if isinstance(v, numbers.Number):
        return True
    return isinstance(v, sp.Basic) and v.is_number


# --------------------------------------------------------------------------- LaTeX
def _run_deep(fn):
    """Run ``fn`` with a large recursion limit on a thread with a large stack (sympy's printers
    recurse once per nesting level)."""
    out = {}
    old = sys.getrecursionlimit()

    def run():
        try:
            out["value"] = fn()
        except BaseException as err:  # re-raised below, in the caller's thread
            out["error"] = err

    size = threading.stack_size()
    sys.setrecursionlimit(max(old, 100_000))
    try:
        threading.stack_size(512 * 1024 * 1024)
        t = threading.Thread(target=run)
        t.start()
        t.join()
    finally:
        threading.stack_size(size)
        sys.setrecursionlimit(old)
    if "error" in out:
        raise out["error"]
    return out["value"]


def _printed(fn, expr, **options):
    try:
        return fn(expr, **options)
    except RecursionError:
        return _run_deep(lambda: fn(expr, **options))


def latex(value, **options) -> str:
    r"""``sympy.latex`` that survives deep expressions, with thin-space digit groups.

    >>> latex(138357544), latex(sp.Symbol("k") - 1), latex((3, 5)), latex(None)
    ('138\\,357\\,544', 'k - 1', '\\left(3, 5\\right)', '\\text{--}')
    """
    if isinstance(value, (tuple, list)):
        return r"\left(" + ", ".join(latex(v, **options) for v in value) + r"\right)"
    if value is None:
        return _NONE["latex"]
    expr = to_sympy(value)  # numbers and sympy only: sympify would evaluate text
    if expr.is_Integer:
        return group(int(expr), r"\,")
    if "order" not in options and exceeds(expr, 2000):
        options["order"] = "none"  # sorting the terms of a huge sum costs more than printing it
    return _LONG_INT.sub(lambda m: group(int(m.group(0)), r"\,"), _printed(sp.latex, expr, **options))


_LONG_INT = re.compile(r"(?<![\d.\\{_^])\d{4,}(?![\d.])")


def tex_escape(s: str) -> str:
    r"""Text for LaTeX: special characters escaped, ``×`` and ``−`` as math.

    >>> tex_escape("layer4.2_conv & 7×7")
    'layer4.2\\_conv \\& 7$\\times$7'
    """
    for a, b in (("\\", "\x00"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        s = s.replace(a, b)
    return s.replace("\x00", r"\textbackslash{}").replace("×", r"$\times$").replace("−", "-")


# --------------------------------------------------------------------------- values
_POW = re.compile(r"\*\*(\d+)")
_POW_ANY = re.compile(r"\*\*")


def _unicode(s: str) -> str:
    s = _POW.sub(lambda m: m.group(1).translate(_SUPER), s)
    s = _POW_ANY.sub("^", s).replace("*", "·")
    s = re.sub(r"(^|[\s(,\[])-", r"\1−", s)
    return s.replace(" - ", " − ")


def _scalar(v, style):
    """One scalar, unabbreviated."""
    if v is None:
        return _NONE[style]
    if isinstance(v, str):
        return v
    if is_array(v):
        return np.array2string(v, separator=", ", threshold=8)
    if is_numpy_scalar(v):
        v = v.item()
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, numbers.Integral):
        v = sp.Integer(int(v))
    elif isinstance(v, float):
        return f"{v:,.6g}" if style != "latex" else latex(sp.Float(v, 6))
    e = to_sympy(v)  # numbers and sympy only: sympify would evaluate text
    if e.is_Integer:
        n = int(e)
        if style == "latex":
            return group(n, r"\,")
        s = group(n)
        return s.replace("-", "−") if style == "unicode" and n < 0 else s
    if style == "latex":
        return latex(e)
    if style == "markdown" and not e.is_Rational:
        return f"${latex(e)}$"
    if style == "html" and not e.is_Rational:  # MathJax's (and Jupyter's) inline delimiters
        return rf"\({latex(e)}\)"
    s = _printed(sp.sstr, e, **({"order": "none"} if exceeds(e, 2000) else {}))
    return s if style == "text" else _unicode(s)


@functools.lru_cache(maxsize=4096, typed=True)  # True, 1 and 1.0 are equal keys otherwise
def _cached(v, style):
    return _scalar(v, style)


def _rendered(v, style):
    """:func:`_scalar`, remembered (tables render each cell at several widths)."""
    try:
        return _cached(v, style)
    except (TypeError, ArithmeticError):  # unhashable (numpy arrays; a signalling Decimal NaN)
        return _scalar(v, style)


def abbreviate(s: str, max_chars: int | None = MAX_CHARS) -> str:
    """``s`` cut at the last term boundary that fits in ``max_chars``, ending in ``… (N chars)``
    (``…`` alone when ``max_chars`` is below 20; see the module docstring); ``s`` itself when it
    fits or ``max_chars`` is None.

    >>> abbreviate("a + b + c + d + e + f + g + h", 20)
    'a + b + c + d + e + … (29 chars)'
    >>> abbreviate("a + b + c + d", 9), abbreviate("a + b", 9)
    ('a + b…', 'a + b')
    """
    if max_chars is None or len(s) <= max_chars:
        return s
    cut = s[:max_chars]
    # a term boundary: " + " or " - " / " − ", outside parentheses
    best, depth = -1, 0
    for i, ch in enumerate(cut):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in "+-−" and cut[i - 1:i] == " " and cut[i + 1:i + 2] == " ":
            best = i - 1
    head = cut[:best] if best > 0 else cut
    if max_chars < 20:  # a narrow cell: the ellipsis alone
        return f"{head.rstrip()}…"
    return f"{head.rstrip()} {'+ ' if best > 0 and s[best + 1] == '+' else ''}… ({len(s):,} chars)"


def value(v, style: str = "unicode", *, area: bool = False, max_chars: int | None = None) -> str:
    r"""One value (a number, an expression, a per-axis tuple, None) in ``style``.

    ``area``: the quantity is a size, kernel or receptive field, whose differing axes join with
    ``×``; others print as a tuple. ``max_chars``: abbreviate longer renderings (the module's rule).

    >>> value((3, 5), "latex", area=True), value(None, "text"), value(sp.Rational(1, 2), "markdown")
    ('3 \\times 5', '-', '1/2')
    >>> value(-1), value(-1, "text"), value(sp.Symbol("k") - 2, "html")
    ('−1', '-1', '\\(k - 2\\)')
    """
    _check_style(style)
    if isinstance(v, (tuple, list)):
        vals = tuple(v)
        if vals and all(_same(x, vals[0]) for x in vals):
            return value(vals[0], style, max_chars=max_chars)
        parts = [value(x, style, max_chars=max_chars) for x in vals]
        if area:
            return f" {_TIMES[style]} ".join(parts) if style == "latex" else _TIMES[style].join(parts)
        return "(" + ", ".join(parts) + ")"
    if max_chars is not None and isinstance(v, sp.Basic) and exceeds(v, min(MAX_NODES, max(300, 30 * max_chars))):
        return "…" if max_chars < 20 else "… (large expression)"  # too long to be worth printing
    s = _rendered(v, style)
    if max_chars is None or len(s) <= max_chars:
        return s
    for left, right in (("$", "$"), ("\\(", "\\)")):
        if style in ("markdown", "html") and s.startswith(left):
            inner = abbreviate(s[len(left):-len(right)], max_chars)
            head, _, tail = inner.rpartition(" … ")
            return f"{left}{head}{right} … {tail}" if head else f"{left}{inner}{right}"
    if style == "latex":
        head, _, tail = abbreviate(s, max_chars).rpartition(" … ")
        return rf"{head} \dots \text{{{tail}}}" if head else s
    return abbreviate(s, max_chars)


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError, ArithmeticError):
        return False


def html_text(s: str) -> str:
    """Text escaped for HTML."""
    return _html.escape(str(s), quote=False)


# --------------------------------------------------------------------------- tables
class Column:
    """One table column: ``name`` (the header), ``kind`` (``label``: left-aligned text;
    ``value``: a quantity; ``area``: a size, kernel or field; ``count``: parameters or MACs with
    grouped digits; ``si``: counts with SI prefixes), ``unit`` for ``si`` columns, ``header`` (a
    string or a dict style -> string) and ``fn(value, style) -> str`` for cells rendered otherwise."""

    def __init__(self, name, kind="value", unit="", header=None, fn=None):
        self.name, self.kind, self.unit, self.fn = name, kind, unit, fn
        self.header = header if header is not None else name

    @property
    def right(self) -> bool:
        return self.kind != "label"

    def render(self, v, style, max_chars):
        if self.fn is not None:
            return self.fn(v, style)
        if self.kind == "label":
            return "" if v is None else str(v)
        if self.kind == "si":
            return si(v, self.unit, style)
        return value(v, style, area=self.kind == "area", max_chars=max_chars)


def _headers(cols, style):
    out = []
    for c in cols:
        h = c.header if isinstance(c.header, str) else c.header.get(style, c.name)
        out.append(h)
    return out


class Table:
    """A table of raw values rendered in any style: ``render("unicode")`` (aligned columns,
    numbers right-aligned), ``"text"``, ``"markdown"``, ``"latex"`` (booktabs) or ``"html"``.

    ``rows`` hold raw values (numbers, expressions, tuples, None); ``rules`` lists row indices
    before which a separating rule is drawn (e.g. before the total row).

    >>> t = Table([Column("name", "label"), Column("rf"), Column("params", "count")],
    ...           [["conv1", 3, 1792], ["conv2", 5, 36928]], rules=[1])
    >>> print(t.render())
    name   rf  params
    -----  --  ------
    conv1   3   1,792
    -----  --  ------
    conv2   5  36,928
    >>> print(t.render("markdown"))
    | name | rf | params |
    |:--|--:|--:|
    | conv1 | 3 | 1,792 |
    | conv2 | 5 | 36,928 |
    """

    def __init__(self, columns, rows, *, rules=(), max_chars=MAX_CHARS, title=None):
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        self.rows = [list(r) for r in rows]
        self.rules = set(rules)
        self.max_chars = max_chars
        self.title = title

    def cells(self, style="unicode", max_chars="default"):
        """The rendered cells, row by row."""
        limit = self.max_chars if max_chars == "default" else max_chars
        return [[c.render(v, style, limit) for c, v in zip(self.columns, row)] for row in self.rows]

    def render(self, style="unicode", *, env="tabular", indent="", width=None) -> str:
        """The table in ``style``; ``env`` names the LaTeX environment (``longtable`` for long
        tables). Text tables wider than ``width`` columns re-render with long values abbreviated
        harder (40, 24, 16, 10 characters), then lines are cut with ``…``."""
        _check_style(style)
        head = _headers(self.columns, style)
        if style in ("text", "unicode"):
            limits = [self.max_chars] + [m for m in (40, 24, 16, 10) if self.max_chars is None or m < self.max_chars]
            for limit in limits if width else limits[:1]:
                out = self._aligned(head, self.cells(style, limit), indent)
                if width is None or max(map(len, out.splitlines())) <= width:
                    return out
            return "\n".join(line if len(line) <= width else line[:width - 1] + "…" for line in out.splitlines())
        cells = self.cells(style)
        if style == "markdown":
            out = ["| " + " | ".join(head) + " |",
                   "|" + "|".join("--:" if c.right else ":--" for c in self.columns) + "|"]
            out += ["| " + " | ".join(x.replace("|", r"\|") for x in r) + " |" for r in cells]
            return "\n".join(out)
        if style == "latex":
            spec = "".join("r" if c.right else "l" for c in self.columns)
            lines = [rf"\begin{{{env}}}{{{spec}}}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
            if env == "longtable":
                lines.append(r"\endhead")
            for i, r in enumerate(cells):
                if i in self.rules:
                    lines.append(r"\midrule")
                lines.append(" & ".join(f"${x}$" if c.right and x else tex_escape(x)
                                        for c, x in zip(self.columns, r)) + r" \\")
            return "\n".join(lines + [r"\bottomrule", rf"\end{{{env}}}"])
        return self._html(head, cells)

    def _aligned(self, head, cells, indent):
        widths = [max([len(h)] + [len(r[j]) for r in cells]) for j, h in enumerate(head)]

        def line(r):
            return (indent + "  ".join(x.rjust(w) if c.right else x.ljust(w)
                                       for c, x, w in zip(self.columns, r, widths))).rstrip()

        rule = indent + "  ".join("-" * w for w in widths)
        out = [line(head), rule]
        for i, r in enumerate(cells):
            if i in self.rules:
                out.append(rule)
            out.append(line(r))
        return "\n".join(out)

    def _html(self, head, cells):
        def td(c, x, tag="td"):
            align = ' style="text-align:right"' if c.right else ' style="text-align:left"'
            body = html_text(x)  # math too: the browser decodes &lt; before MathJax reads it
            return f"<{tag}{align}>{body}</{tag}>"

        out = ["<table>"]
        if self.title:
            out.append(f"<caption>{html_text(self.title)}</caption>")
        out.append("<thead><tr>" + "".join(td(c, h, "th") for c, h in zip(self.columns, head)) + "</tr></thead>")
        out.append("<tbody>")
        for i, r in enumerate(cells):
            style = ' style="border-top:2px solid #888"' if i in self.rules else ""
            out.append(f"<tr{style}>" + "".join(td(c, x) for c, x in zip(self.columns, r)) + "</tr>")
        out.append("</tbody></table>")
        return "\n".join(out)

    def __str__(self):
        return self.render()


# --------------------------------------------------------------------------- progress
def progress(iterable, total=None, desc=None, *, delay=1.0, stream=None):
    """``iterable`` with a progress bar on stderr (tqdm) that appears only when the work takes more
    than ``delay`` seconds and stderr is a terminal; the plain iterable without tqdm.

    >>> list(progress(range(3), desc="demo"))
    [0, 1, 2]
    """
    stream = sys.stderr if stream is None else stream
    if not getattr(stream, "isatty", lambda: False)():
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return iterable
    return tqdm(iterable, total=total, desc=desc, delay=delay, file=stream, leave=False,
                dynamic_ncols=True)


def finite(x) -> bool:
    """True for a finite real number.

    >>> finite(3), finite(float("nan")), finite(sp.oo)
    (True, False, False)
    """
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError, OverflowError):
        return False
