r"""LaTeX and Markdown for results: formulas, per-layer tables, a standalone report.

Everything here reads a :class:`~rfsym.engine.Result`; nothing re-derives. For a chain of
sliding-window layers (convolutions, pools, with activations or BatchNorm between them) the
receptive field is written twice, as the notes write it:

* the **structured form**, the general formula instantiated term by term,
  ``R = 1 + Σ_i (κ_i − 1) Π_{j<i} s_j`` with ``κ = d(k − 1) + 1`` (each term is
  ``(κ_i − 1)·J_{i−1}`` with ``J_{i−1}`` the engine's jump at the layer's input);
* the **closed form**, the engine's simplified expression.

Graphs (residual, concat) and position-dependent layers get the closed forms only. Symbols in
the generic line: ``R`` receptive field, ``J`` jump (effective stride), ``u`` start (first input
coordinate of output 0's field; effective padding ``-u``), ``n_out`` output size.

>>> from rfsym import Conv, Sequential, analyze, symbols
>>> r = analyze(Sequential(*[Conv(3, padding=1)] * 3))
>>> print(to_latex(r, quantities=("rf",)))
\begin{aligned}
R &= 1 + \sum_{i=1}^{L} (k_i - 1) \\
&= 1 + (3 - 1) + (3 - 1) + (3 - 1) \\
&= 7
\end{aligned}
>>> k, s = symbols("k s")
>>> print(to_latex(analyze(Sequential(Conv(k, stride=s), Conv(k))), quantities=("rf", "jump")))
\begin{aligned}
R &= 1 + \sum_{i=1}^{L} (k_i - 1) \prod_{j=1}^{i-1} s_j \\
&= 1 + (k - 1) + (k - 1) \cdot s \\
&= k s + k - s \\
J &= \prod_{i=1}^{L} s_i = s
\end{aligned}
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from . import layers as L
from .errors import RfsymError
from .steps import WINDOW_TYPES, _is_one, _small
from .symbols import exceeds, to_sympy

__all__ = ["latex", "to_latex", "repr_latex", "structured", "table", "report", "cell"]

DEFAULT_QUANTITIES = ("rf", "jump", "start", "out_size", "params", "macs")
_NAMES = {"rf": "R", "jump": "J", "start": "u", "center": "c", "out_size": r"n_{\mathrm{out}}",
          "params": r"\#\mathrm{params}", "macs": r"\mathrm{MACs}", "flops": r"\mathrm{FLOPs}",
          "rf_min": r"R_{\min}", "effective_padding": "P"}


# --------------------------------------------------------------------------- printing
def _run_deep(fn):
    """Run ``fn`` with a large recursion limit on a thread with a large stack."""
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


def latex(value, **options) -> str:
    r"""``sympy.latex`` that survives deep expressions, with thin-space digit groups.

    >>> latex(138357544)
    '138\\,357\\,544'
    >>> latex(sp.Symbol("k") - 1)
    'k - 1'
    """
    if isinstance(value, tuple):
        return r"\left(" + ", ".join(latex(v, **options) for v in value) + r"\right)"
    if value is None:
        return r"\text{--}"
    expr = to_sympy(value)
    if expr.is_Integer:
        return _group(int(expr), r"\,")
    if "order" not in options and exceeds(expr, 2000):
        options["order"] = "none"  # sorting the terms of a huge sum costs more than printing it
    try:
        return sp.latex(expr, **options)
    except RecursionError:
        return _run_deep(lambda: sp.latex(expr, **options))


def _group(n: int, sep: str) -> str:
    s = str(abs(n))
    if len(s) > 4:
        s = sep.join(s[max(i - 3, 0):i] for i in range(len(s), 0, -3)[::-1])
    return ("-" if n < 0 else "") + s


def _text(value) -> str:
    from .steps import _text as plain
    expr = value if isinstance(value, tuple) else sp.sympify(value)
    if not isinstance(expr, tuple) and expr.is_Integer:
        return _group(int(expr), ",")
    return plain(expr)


def cell(values, style="latex", area=False, max_chars=None) -> str:
    """One table cell from a per-axis tuple (or a single value).

    Equal axes print once, except ``area`` quantities (kernel, rf, size) with numbers, which
    print as the notes do: ``7×7``. ``style``: ``latex`` (symbolic values in ``$...$``),
    ``markdown`` (likewise) or ``text``. Expressions longer than ``max_chars`` print as ``…``.

    >>> cell((7, 7), "markdown", area=True), cell((2, 2), "markdown"), cell((3, 5), "text", area=True)
    ('7×7', '2', '3×5')
    """
    if values is None:
        return "–" if style != "latex" else "--"
    vals = tuple(values) if isinstance(values, tuple) else (values,)
    vals = tuple(v if isinstance(v, str) else to_sympy(v) for v in vals)
    same = all(v == vals[0] for v in vals)
    if same and not (area and len(vals) > 1 and all(getattr(v, "is_Integer", False) for v in vals)):
        vals = vals[:1]
    if style == "text":
        return "×".join(v if isinstance(v, str) else _text(v) for v in vals)
    parts = []
    for v in vals:
        if isinstance(v, str):
            parts.append(v)
        elif v.is_Integer:
            g = _group(int(v), r"\," if style == "latex" else ",")
            parts.append(f"${g}$" if style == "latex" and v < 0 else g)
        elif max_chars is not None and (not _small(v, max_chars) or len(latex(v)) > max_chars):
            parts.append(r"\dots" if style == "latex" else "…")
        else:
            parts.append(f"${latex(v)}$")
    joiner = r"$\times$" if style == "latex" else "×"
    if not area and len(parts) > 1:
        return "(" + ", ".join(parts) + ")"
    return joiner.join(parts)


# --------------------------------------------------------------------------- structured form
def _flat_layers(net):
    for layer in net.layers:
        if isinstance(layer, L.Sequential):
            yield from _flat_layers(layer)
        else:
            yield layer


_IDENTITY_TYPES = (L.Elementwise, L.BatchNorm, L.Flatten)


def is_chain(result) -> bool:
    """True when the network is a chain of sliding windows (convolutions, pools) with layers of
    no spatial effect between them: the notes' general formula applies. Decided from the layer
    classes alone, so it costs nothing on deep networks."""
    if not hasattr(result, "network"):
        return False
    return all(isinstance(layer, WINDOW_TYPES + _IDENTITY_TYPES) for layer in _flat_layers(result.network))


@dataclass
class WindowTerm:
    """One sliding-window layer on one axis: its kernel, stride, dilation and left padding (None
    for TensorFlow SAME, which depends on the input size) and ``jump_in = Π_{j<i} s_j``."""

    kernel: object
    stride: object
    dilation: object
    pad_left: object
    strides: list  # the strides of every window layer of the chain (shared)
    index: int

    @property
    def jump_in(self):
        return sp.Mul(*self.strides[:self.index])

    @property
    def extent_minus_1(self):
        return self.dilation * (self.kernel - 1)


class Structured:
    """The notes' general formula for one axis, instantiated: ``terms`` holds one
    :class:`WindowTerm` per sliding-window layer."""

    def __init__(self, result, axis, terms):
        self.result = result
        self.axis = axis
        self.terms = terms

    @property
    def dilated(self) -> bool:
        return any(not _is_one(t.dilation) for t in self.terms)

    @property
    def strided(self) -> bool:
        return any(not _is_one(t.stride) for t in self.terms)

    def sum(self):
        """``1 + Σ (κ_i − 1)·J_{i−1}`` as a sympy expression."""
        return sp.Add(1, *(t.extent_minus_1 * t.jump_in for t in self.terms))

    def _factor(self, i):
        """LaTeX of ``J_{i−1}``, as the product of the earlier strides when it is one."""
        t = self.terms[i]
        strides = [s for s in t.strides[:t.index] if not _is_one(s)]
        if not strides:
            return ""
        if len(strides) <= 6:
            return r" \cdot " + r" \cdot ".join(_paren(s) for s in strides)
        return r" \cdot " + _paren(t.jump_in)

    def _term(self, i):
        t = self.terms[i]
        base = f"({latex(t.kernel)} - 1)"
        if not _is_one(t.dilation):
            base = f"{_paren(t.dilation)} \\cdot {base}"
        return base + self._factor(i)

    def generic(self) -> str:
        k = r"\kappa_i" if self.dilated else "k_i"
        out = rf"1 + \sum_{{i=1}}^{{L}} ({k} - 1)"
        if self.strided:
            out += r" \prod_{j=1}^{i-1} s_j"
        if self.dilated:
            out += r", \quad \kappa_i = d_i (k_i - 1) + 1"
        return out

    def instantiated(self, max_terms=8, wrap=6) -> list[str]:
        """The instantiated sum, as lines (broken every ``wrap`` terms)."""
        n = len(self.terms)
        idx = list(range(n))
        if n > max_terms:
            idx = idx[: max_terms - 2] + [None] + idx[-2:]
        pieces = ["1"] + [r"\cdots" if i is None else self._term(i) for i in idx]
        lines = []
        for j in range(0, len(pieces), wrap):
            lines.append(" + ".join(pieces[j:j + wrap]))
        return lines

    def start_terms(self, max_terms=8) -> str | None:
        """``-(p_1 + p_2 J_1 + ...)`` instantiated, or None when a padding is unknown."""
        if any(t.pad_left is None for t in self.terms):
            return None
        items = [(i, t) for i, t in enumerate(self.terms) if not (sp.sympify(t.pad_left) == 0)]
        if not items:
            return "0"
        if len(items) > max_terms:
            items = items[: max_terms - 2] + [None] + items[-2:]
        parts = []
        for it in items:
            if it is None:
                parts.append(r"\cdots")
                continue
            i, t = it
            parts.append(_paren(t.pad_left) + self._factor(i) if self._factor(i) else latex(t.pad_left))
        return r"-\left(" + " + ".join(parts) + r"\right)"


def _paren(v) -> str:
    e = sp.sympify(v)
    s = latex(e)
    return rf"\left({s}\right)" if isinstance(e, sp.Add) or (e.is_Number and e < 0) else s


def structured(result, axis=0) -> Structured | None:
    """The structured form of ``result`` on ``axis``, or None when the network is not a chain of
    sliding windows (graphs, global pooling, transposed convolution).

    The terms are the general formula written with the layers' own parameters; the closed form
    beside it is the engine's (tests check that the two agree on random networks).
    """
    if not is_chain(result):
        return None
    terms, strides = [], []
    for layer in _flat_layers(result.network):
        if isinstance(layer, WINDOW_TYPES):
            w = layer.windows(result.ndim)[axis]
            pad = None if w.pad == "tf_same" else w.pad[0]
            terms.append(WindowTerm(w.kernel, w.stride, w.dilation, pad, strides, len(strides)))
            strides.append(w.stride)
    return Structured(result, axis, terms)


# --------------------------------------------------------------------------- formulas
def _axis_values(result, name):
    if name in ("params", "macs", "flops"):
        v = getattr(result, name)
        return None if v is None else (v,)
    if name == "effective_padding":
        return tuple(-v for v in result.axes("start"))
    return result.axes(name)


def _fits(s, max_chars):
    return max_chars is None or len(s) <= max_chars


def _value(v, max_chars):
    s = latex(v)
    if _fits(s, max_chars):
        return s
    return rf"\text{{(closed form of {len(s):,} characters omitted)}}"


def require_exact(result, what):
    """Raise a clear error for results of :meth:`Result.evaluate` (numpy arrays, not expressions)."""
    if not getattr(getattr(result, "_ops", None), "exact", False):
        raise RfsymError(f"{what} needs an exact result; this one comes from evaluate() and holds numpy "
                         "arrays (use result.subs({...}) for one configuration)")


def formula_rows(result, quantities=DEFAULT_QUANTITIES, form="both", max_terms=8, max_chars=None,
                 wrap=6) -> list[str]:
    """The rows of :func:`to_latex` (``lhs &= rhs``), for an ``aligned`` or ``align*`` block."""
    require_exact(result, "LaTeX")
    rows = []
    ndim = len(result.axes("rf"))
    sts = [structured(result, a) for a in range(ndim)] if form in ("both", "structured") else [None] * ndim
    for name in quantities:
        vals = _axis_values(result, name)
        if vals is None:
            continue
        axes = range(len(vals))
        same_axes = all(v == vals[0] for v in vals) and all(
            _signature(s, name) == _signature(sts[0], name) for s in sts)
        if same_axes:
            axes = [0]
        for a in axes:
            sym = _NAMES.get(name, rf"\mathrm{{{name}}}")
            if len(axes) > 1:
                sym += f"^{{({a})}}"
            closed = _value(vals[a], max_chars)
            st = sts[a] if name in ("rf", "jump", "start") and a < len(sts) else None
            if st is None or form == "closed":
                rows.append(f"{sym} &= {closed}")
                continue
            if name == "rf":
                lines = st.instantiated(max_terms, wrap)
                rows.append(f"{sym} &= {st.generic()}")
                rows.append(f"&= {lines[0]}")
                rows.extend(rf"&\quad + {line}" for line in lines[1:])
                if form == "both" and lines != [closed]:
                    rows.append(f"&= {closed}")
            elif name == "jump":
                strides = [t.stride for t in st.terms if not _is_one(t.stride)]
                parts = [r"\prod_{i=1}^{L} s_i"] if strides else []
                if 1 < len(strides) <= 6:
                    parts.append(r" \cdot ".join(_paren(x) for x in strides))
                if form == "both" or not parts:
                    parts.append(closed)
                rows.append(f"{sym} &= " + " = ".join(dict.fromkeys(parts)))
            elif name == "start":
                inst = st.start_terms(max_terms)
                generic = r"-\sum_{i=1}^{L} p_i \prod_{j=1}^{i-1} s_j" if st.strided else r"-\sum_{i=1}^{L} p_i"
                parts = [generic] + ([inst] if inst not in (None, closed) else [])
                rows.append(f"{sym} &= " + " = ".join(parts + ([closed] if form == "both" else [])))
    return rows


def _signature(st, name):
    """What the structured form of ``name`` shows on one axis (axes with equal ones print once)."""
    if st is None:
        return None
    fields = {"rf": ("kernel", "dilation", "stride"), "jump": ("stride",), "start": ("pad_left", "stride")}
    return [tuple(getattr(t, f) for f in fields.get(name, ())) for t in st.terms]


def to_latex(result, quantities=DEFAULT_QUANTITIES, *, form="both", max_terms=8, max_chars=None,
             wrap=6, env="aligned") -> str:
    r"""LaTeX of a result's formulas.

    ``form``: ``"both"`` (structured Σ/Π form, then the closed form), ``"structured"`` or
    ``"closed"``. ``quantities`` from ``rf, jump, start, center, out_size, params, macs, flops,
    rf_min, effective_padding`` (unknown ones are skipped). Long sums show ``max_terms`` terms
    with ``\cdots``; closed forms longer than ``max_chars`` are replaced by a note. ``env``:
    the environment wrapping the rows (``None``: the rows only, for ``align*``).

    >>> from rfsym import Conv, Sequential, analyze
    >>> print(to_latex(analyze(Sequential(Conv(3, stride=2), Conv(3))), ("rf", "jump"), form="structured"))
    \begin{aligned}
    R &= 1 + \sum_{i=1}^{L} (k_i - 1) \prod_{j=1}^{i-1} s_j \\
    &= 1 + (3 - 1) + (3 - 1) \cdot 2 \\
    J &= \prod_{i=1}^{L} s_i
    \end{aligned}
    """
    if form not in ("both", "structured", "closed"):
        raise ValueError(f"form must be 'both', 'structured' or 'closed', got {form!r}")
    rows = formula_rows(result, quantities, form, max_terms, max_chars, wrap)
    body = " \\\\\n".join(rows)
    return body if env is None else f"\\begin{{{env}}}\n{body}\n\\end{{{env}}}"


def repr_latex(result) -> str:
    """What Jupyter shows: :func:`to_latex` in display math, long closed forms abbreviated."""
    return "$$" + to_latex(result, max_chars=2000) + "$$"


# --------------------------------------------------------------------------- tables
COLUMNS = ("index", "name", "type", "kernel", "stride", "padding", "dilation", "rf", "jump", "start",
           "out_size", "params", "macs")
_HEAD = {
    "latex": {"index": r"\#", "name": "name", "type": "type", "kernel": "$k$", "stride": "$s$",
              "padding": "$p$", "dilation": "$d$", "rf": "$R$", "jump": "$J$", "start": "$u$",
              "out_size": "size", "params": "params", "macs": "MACs", "center": "$c$"},
    "markdown": {"index": "#", "name": "name", "type": "type", "kernel": "kernel", "stride": "stride",
                 "padding": "padding", "dilation": "dilation", "rf": "rf", "jump": "jump",
                 "start": "start", "out_size": "out size", "params": "params", "macs": "MACs",
                 "center": "center"},
}
_AREA = {"kernel", "rf", "out_size"}
_RIGHT = {"index", "kernel", "stride", "padding", "dilation", "rf", "jump", "start", "out_size",
          "params", "macs", "center"}


def _layer_arg(lr, attr):
    layer = lr.layer
    if not isinstance(layer, L.Windowed) or lr.type != type(layer).__name__:
        return None
    v = getattr(layer, {"kernel": "kernel_size"}.get(attr, attr), None)
    if v is None:
        return None
    ndim = len(lr.axes("rf"))
    if isinstance(v, str):
        return (v,)
    if isinstance(v, tuple):
        return tuple(f"{a}/{b}" if isinstance(x, tuple) and (a := x[0]) != (b := x[1]) else
                     (x[0] if isinstance(x, tuple) else x) for x in v)
    return (v,) * ndim


def _cells(lr, col, style, max_chars=None):
    if col == "index":
        return str(lr.index)
    if col == "name":
        return _tex_escape(str(lr.name)) if style == "latex" else str(lr.name)
    if col == "type":
        return lr.type
    if col in ("kernel", "stride", "padding", "dilation"):
        return cell(_layer_arg(lr, col), style, area=col == "kernel")
    if col in ("params", "macs"):
        v = getattr(lr, col)
        return cell(None if v is None else (v,), style, max_chars=max_chars)
    return cell(lr.axes(col), style, area=col in _AREA, max_chars=max_chars)


def _columns(result, columns):
    if columns is not None:
        return list(columns)
    cols = list(COLUMNS)
    lrs = result.layers
    if all(_layer_arg(lr, "dilation") is None or all(_is_one(x) for x in _layer_arg(lr, "dilation")
                                                     if not isinstance(x, str)) for lr in lrs):
        cols.remove("dilation")
    for col in ("out_size", "params", "macs"):
        if all((lr.axes(col) if col == "out_size" else getattr(lr, col)) is None for lr in lrs):
            cols.remove(col)
    return cols


def table(result, format="markdown", columns=None, *, env="tabular", total=True, max_chars=None) -> str:
    r"""Per-layer table: one row per layer (merges included), quantities with respect to the
    network input, ``params``/``macs`` of each layer alone; a final ``total`` row.

    ``format``: ``"markdown"`` or ``"latex"`` (booktabs; ``env="longtable"`` for long networks).
    Columns default to :data:`COLUMNS` minus those with nothing to show. Expressions longer
    than ``max_chars`` print as an ellipsis.

    >>> from rfsym import Conv, Sequential, analyze
    >>> print(table(analyze(Sequential(*[Conv(3, padding=1)] * 2)), columns=("index", "kernel", "rf")))
    | # | kernel | rf |
    |--:|--:|--:|
    | 0 | 3×3 | 3×3 |
    | 1 | 3×3 | 5×5 |
    | total |  | 5×5 |
    """
    if format not in ("markdown", "latex"):
        raise ValueError(f"format must be 'markdown' or 'latex', got {format!r}")
    require_exact(result, "a table")
    cols = _columns(result, columns)
    head = [_HEAD[format].get(c, c) for c in cols]
    rows = [[_cells(lr, c, format, max_chars) for c in cols] for lr in result.layers]
    if total:
        tot = []
        for c in cols:
            if c == cols[0]:
                tot.append("total")
            elif c in ("params", "macs"):
                v = getattr(result, c)
                tot.append(cell(None if v is None else (v,), format, max_chars=max_chars))
            elif c in ("rf", "jump", "start", "out_size", "center"):
                tot.append(cell(result.axes(c), format, area=c in _AREA, max_chars=max_chars))
            else:
                tot.append("")
        rows.append(tot)
    if format == "markdown":
        out = ["| " + " | ".join(head) + " |",
               "|" + "|".join("--:" if c in _RIGHT else "---" for c in cols) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    spec = "".join("r" if c in _RIGHT else "l" for c in cols)
    lines = [rf"\begin{{{env}}}{{{spec}}}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    if env == "longtable":
        lines += [r"\endhead"]
    body = [" & ".join(r) + r" \\" for r in rows]
    if total:
        body.insert(len(body) - 1, r"\midrule")
    lines += body + [r"\bottomrule", rf"\end{{{env}}}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- report
_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{booktabs,longtable}
\allowdisplaybreaks
"""


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        s = s.replace(a, b) if a != "\\" else s.replace(a, "\x00")
    return s.replace("\x00", r"\textbackslash{}").replace("×", r"$\times$").replace("−", "-")


def report(result, path=None, *, title="Receptive field report", description=None,
           max_chars=3000, max_steps=200, max_rows=500) -> str:
    r"""A standalone LaTeX document (``pdflatex``-ready: amsmath, booktabs, longtable) with the
    network's closed forms, its step-by-step derivation and the per-layer table. Written to
    ``path`` when given; the source is returned.

    Closed forms longer than ``max_chars`` characters are left out with a note (TeX cannot
    typeset a single formula line of unbounded width); the derivation of networks of more than
    ``max_steps`` layers and the table of more than ``max_rows`` are left out likewise (per-layer
    closed forms of deep symbolic networks are expensive).

    >>> from rfsym import Conv, Sequential, analyze
    >>> tex = report(analyze(Sequential(*[Conv(3, padding=1)] * 3), input_size=5))
    >>> tex.startswith(r"\documentclass") and r"\toprule" in tex and tex.rstrip().endswith(r"\end{document}")
    True
    """
    from .steps import derivation

    parts = [_PREAMBLE, rf"\title{{{_tex_escape(title)}}}", r"\date{}", r"\begin{document}", r"\maketitle"]
    n = len(result.layers)
    size = "unknown" if result.input_size is None else "$" + r" \times ".join(
        latex(v) for v in result.input_size) + "$"
    intro = (description + " ") if description else ""
    parts.append(
        _tex_escape(intro) + f"{n} layers, {result.ndim} spatial axes, input size {size}. "
        r"Conventions: $R$ is the receptive field in input pixels (padding positions count), "
        r"$J$ the jump (effective stride), $u$ the input coordinate of the first pixel seen by "
        r"output~0 (effective padding $-u$), MACs count multiply--accumulates of convolutions and "
        r"linear layers (FLOPs $= 2\cdot$MACs); Araujo, Norris, Sim, Distill 2019.")
    parts.append(r"\section*{Closed forms}")
    rows = formula_rows(result, form="both", max_chars=max_chars)
    parts.append("\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}")
    parts.append(r"\section*{Step by step}")
    if n > max_steps:
        parts.append(f"The network has {n} layers; the derivation is left out here "
                     r"(\texttt{rfsym.steps.derivation} prints it).")
    else:
        d = derivation(result, ("rf", "jump", "start", "out_size"), headers=True, max_chars=200)
        if d.steps:
            parts.append(d.latex())
    parts.append(r"\section*{Per-layer table}")
    if n > max_rows:
        parts.append(f"The network has {n} layers; the table is left out here "
                     r"(\texttt{rfsym.latex.table} writes it).")
    else:
        parts.append(r"{\small" + "\n" + table(result, "latex", env="longtable", max_chars=120) + "\n}")
    parts.append(r"\end{document}")
    tex = "\n\n".join(parts) + "\n"
    if path is not None:
        Path(path).write_text(tex, encoding="utf-8")
    return tex
