r"""LaTeX and Markdown for results: formulas, per-layer tables, a standalone report.

Everything here reads a :class:`~rfsym.engine.Result`; nothing re-derives. For a chain of
sliding-window layers (convolutions, pools, with activations or BatchNorm between them) the
receptive field is written twice:

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

from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from . import layers as L
from .format import latex, tex_escape
from .report import layer_table
from .steps import WINDOW_TYPES, require_exact

__all__ = ["latex", "to_latex", "repr_latex", "structured", "table", "report"]

DEFAULT_QUANTITIES = ("rf", "jump", "start", "out_size", "params", "macs")
_NAMES = {"rf": "R", "jump": "J", "start": "u", "center": "c", "out_size": r"n_{\mathrm{out}}",
          "params": r"\#\mathrm{params}", "macs": r"\mathrm{MACs}", "flops": r"\mathrm{FLOPs}",
          "rf_min": r"R_{\min}", "effective_padding": "P"}


def _is_one(x) -> bool:
    return sp.sympify(x) == 1


# --------------------------------------------------------------------------- structured form
def _flat_layers(net):
    """The layers of nested Sequentials in order (explicit stack: nesting is deep)."""
    stack = [iter(net.layers)]
    while stack:
        for layer in stack[-1]:
            if isinstance(layer, L.Sequential):
                stack.append(iter(layer.layers))
                break
            yield layer
        else:
            stack.pop()


_IDENTITY_TYPES = (L.Elementwise, L.BatchNorm, L.Flatten)


def is_chain(result) -> bool:
    """True when the network is a chain of sliding windows (convolutions, pools) with layers of
    no spatial effect between them: the general formula applies. Decided from the layer
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
    """The general formula for one axis, instantiated: ``terms`` holds one
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
def table(result, format="markdown", columns=None, *, env="tabular", total=True, max_chars=None) -> str:
    r"""Per-layer table in Markdown or LaTeX (booktabs; ``env="longtable"`` for long networks):
    the same columns and values as the text table of ``rfsym analyze``
    (:func:`rfsym.report.layer_table`), with a final ``total`` row (and ``features`` row).
    Expressions longer than ``max_chars`` are abbreviated (see :mod:`rfsym.format`).

    >>> from rfsym import Conv, Sequential, analyze
    >>> print(table(analyze(Sequential(*[Conv((3, 5), padding=1)] * 2)), columns=("name", "kernel", "rf")))
    | name | k | rf |
    |:--|--:|--:|
    | 0 | 3×5 | 3×5 |
    | 1 | 3×5 | 5×9 |
    | total |  | 5×9 |
    """
    if format not in ("markdown", "latex"):
        raise ValueError(f"format must be 'markdown' or 'latex', got {format!r}")
    require_exact(result, "a table")
    return layer_table(result, columns, total=total, max_chars=max_chars).render(format, env=env)


# --------------------------------------------------------------------------- report
_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{booktabs,longtable}
\allowdisplaybreaks
"""


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

    parts = [_PREAMBLE, rf"\title{{{tex_escape(title)}}}", r"\date{}", r"\begin{document}", r"\maketitle"]
    n = len(result.layers)
    size = "unknown" if result.input_size is None else "$" + r" \times ".join(
        latex(v) for v in result.input_size) + "$"
    intro = (description + " ") if description else ""
    parts.append(
        tex_escape(intro) + f"{n} layers, {result.ndim} spatial axes, input size {size}. "
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
