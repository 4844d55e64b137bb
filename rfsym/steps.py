r"""Step-by-step derivations, written out with the recurrence of Araujo et al.

For every layer that changes the receptive field the derivation shows the recurrence of Araujo,
Norris, Sim (Distill 2019) with the numbers (or symbols) filled in:

* ``R_i = R_{i-1} + (κ_i − 1)·J_{i-1}`` (``κ = d(k − 1) + 1``; the factor ``J_{i-1}`` is left out
  when it is 1: ``R = 3 + (3 − 1) = 5``);
* ``J_i = J_{i-1}·s_i`` when the layer has a stride;
* optionally ``u_i = u_{i-1} − p_i·J_{i-1}`` (start) and the output size
  ``n_i = ⌊(n_{i-1} + p_l + p_r − κ)/s⌋ + 1``.

Every value on the right of the last ``=`` is read from the engine's :class:`~rfsym.engine.Result`
(``layer.rf``, ``layer.input.rf``, ...); the module only writes the arithmetic out. Layers with
no spatial effect (activations, BatchNorm) are skipped; merges of branches and layers whose
receptive field is not a sliding window (global pooling, Linear, transposed convolution) show the
engine's value. Steps are numbered ``i = 1 .. L`` over the layers shown, the ``i`` of the general formula's
sum.

>>> from rfsym import Conv, Sequential, analyze
>>> r = analyze(Sequential(*[Conv(3, padding=1)] * 4))
>>> print(derivation(r).text())
R₁ = 1 + (3 − 1) = 3
R₂ = 3 + (3 − 1) = 5
R₃ = 5 + (3 − 1) = 7
R₄ = 7 + (3 − 1) = 9
>>> print(derivation(analyze(Sequential(Conv(3, stride=2), Conv(3)))).text())
R₁ = 1 + (3 − 1) = 3,  J₁ = 1·2 = 2
R₂ = 3 + (3 − 1)·2 = 7
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from . import layers as L
from .errors import RfsymError
from .format import latex as tex_of
from .format import tex_escape, value
from .report import layer_argument
from .symbols import exceeds

__all__ = ["derivation", "Derivation", "Step", "layer_steps", "require_exact"]

#: sliding-window layers whose receptive field follows the recurrence (transposed convolutions,
#: although windowed, do not: their output grid is finer than their input)
WINDOW_TYPES = (L.Conv, L.MaxPool, L.AvgPool)

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


@dataclass
class Piece:
    """One written-out equation: ``lhs = expr (= value)`` in three renderings."""

    symbol: str  # "R", "J", "u", "n"
    index: int
    text: str  # the arithmetic, plain text; "" when only the value is shown
    latex: str  # the arithmetic, LaTeX
    value: Any
    note: str = ""


@dataclass
class Step:
    """The equations of one layer (per axis when the axes differ)."""

    index: int  # 1-based step number
    layer: Any  # the LayerResult
    axes: list = field(default_factory=list)  # per-axis lists of Piece (one item when axes agree)
    kind: str = "window"  # window | merge | other

    @property
    def title(self) -> str:
        return describe(self.layer)


def describe(lr) -> str:
    """A short description of a layer result: ``Conv 'conv1' 3×3, stride 2, padding 1``."""
    layer = lr.layer
    head = lr.type
    if lr.name and lr.name != str(lr.index):
        head += f" '{lr.name}'"
    if layer_argument(lr, "kernel") is not None:
        ks = layer.kernel_size if isinstance(layer.kernel_size, tuple) else None
        k = "×".join(_text(v) for v in ks) if ks else "×".join([_text(layer.kernel_size)] * 2)
        parts = [k]
        for attr, label in (("stride", "stride"), ("dilation", "dilation"), ("padding", "padding")):
            v = getattr(layer, attr, 1)
            default = 0 if attr == "padding" else 1
            if isinstance(v, str) or v != default:
                parts.append(f"{label} {_text(v) if not isinstance(v, str) else v}")
        head += " " + ", ".join(parts)
    return head


# --------------------------------------------------------------------------- formatting
def _text(v) -> str:
    """Unicode rendering of a value (:func:`rfsym.format.value`): ``2·n + 1``, ``s²``, ``−1``."""
    if isinstance(v, tuple):
        return "(" + ", ".join(_text(x) for x in v) + ")"
    return value(v)


def require_exact(result, what):
    """Raise a clear error for results of :meth:`Result.evaluate` (numpy arrays, not expressions)."""
    if not getattr(getattr(result, "_ops", None), "exact", False):
        raise RfsymError(f"{what} needs an exact result; this one comes from evaluate() and holds numpy "
                         "arrays (use result.subs({...}) for one configuration)")


_BIG = 60


def _ot(v, sym) -> str:
    """Plain text of an operand, or its name (``R_in``) when it is a long expression."""
    return _text(v) if _small(v, _BIG) else f"{sym}_in"


def _ol(v, sym) -> str:
    """LaTeX of an operand, or its name (``R_{\\mathrm{in}}``) when it is a long expression."""
    return tex_of(v) if _small(v, _BIG) else f"{sym}_{{\\mathrm{{in}}}}"


def _wrap(s: str, expr) -> str:
    """Parenthesise a rendering when it is a sum (for use as a factor)."""
    e = sp.sympify(expr)
    if not _small(e, _BIG):
        return s
    return f"({s})" if isinstance(e, sp.Add) or (e.is_Number and e < 0) else s


def _is_one(x) -> bool:
    return sp.sympify(x) == 1


def _small(expr, limit=200) -> bool:
    return not exceeds(sp.sympify(expr), limit)


def agrees(a, b) -> bool:
    """Exact check that two values are equal; True (unchecked) when both are too large to expand."""
    a, b = sp.sympify(a), sp.sympify(b)
    if a == b:
        return True
    if a.is_number and b.is_number:
        return bool(sp.simplify(a - b) == 0)
    if _small(a) and _small(b):
        return sp.expand(a - b) == 0 or sp.simplify(a - b) == 0
    return True


# --------------------------------------------------------------------------- per-axis terms
@dataclass
class Term:
    """What a sliding-window layer adds on one axis, read from the result and the layer.

    ``rf = rf_in + extent_minus_1·jump_in`` with ``extent_minus_1 = d(k − 1)``.
    """

    kernel: Any
    stride: Any
    dilation: Any
    pad_left: Any
    rf_in: Any
    jump_in: Any
    start_in: Any
    size_in: Any
    rf: Any
    jump: Any
    start: Any
    size: Any
    window: Any

    @property
    def extent_minus_1(self):
        return self.dilation * (self.kernel - 1)


def _is_identity(lr, a) -> bool:
    inp = lr.input
    return all(lr.axes(q)[a] == inp.axes(q)[a] for q in ("rf", "jump", "start"))


def layer_kind(lr) -> str:
    """``identity`` (no change to rf, jump, start), ``window`` (a sliding window: conv, pool),
    ``merge`` (a merge of branches) or ``other``."""
    if lr.type != type(lr.layer).__name__:
        return "merge"
    if any(p != 1 for p in lr.axes("period")):
        return "other"
    if isinstance(lr.layer, WINDOW_TYPES):
        return "window"
    if all(_is_identity(lr, a) for a in range(len(lr.axes("rf")))):
        return "identity"
    return "other"


def term(lr, axis: int) -> Term | None:
    """The sliding-window term of layer result ``lr`` on ``axis`` (None when not a window layer).

    Kernel, stride and dilation come from the layer; everything else from the result. The left
    padding is the layer's, or, for TensorFlow SAME (which depends on the input size), the one
    the engine's start implies: ``(u_in − u)/J_in``.
    """
    if layer_kind(lr) != "window":
        return None
    ndim = len(lr.axes("rf"))
    w = lr.layer.windows(ndim)[axis]
    inp = lr.input
    rf_in, jump_in, start_in = inp.axes("rf")[axis], inp.axes("jump")[axis], inp.axes("start")[axis]
    start = lr.axes("start")[axis]
    if w.pad == "tf_same":
        pad_left = sp.simplify((start_in - start) / jump_in) if _small(start_in) and _small(start) else None
    else:
        pad_left = w.pad[0]
    size_in = None if inp.axes("out_size") is None else inp.axes("out_size")[axis]
    size = None if lr.axes("out_size") is None else lr.axes("out_size")[axis]
    t = Term(w.kernel, w.stride, w.dilation, pad_left, rf_in, jump_in, start_in, size_in,
             lr.axes("rf")[axis], lr.axes("jump")[axis], start, size, w)
    return t


# --------------------------------------------------------------------------- pieces
def _rf_piece(t: Term, i: int) -> Piece:
    k, d = t.kernel, t.dilation
    if _is_one(d):
        inc_t, inc_l = f"({_text(k)} − 1)", rf"({tex_of(k)} - 1)"
    else:
        inc_t, inc_l = f"{_wrap(_text(d), d)}·({_text(k)} − 1)", rf"{_wrap(tex_of(d), d)} \cdot ({tex_of(k)} - 1)"
    if not _is_one(t.jump_in):
        inc_t += "·" + _wrap(_ot(t.jump_in, 'J'), t.jump_in)
        inc_l += r" \cdot " + _wrap(_ol(t.jump_in, 'J'), t.jump_in)
    return Piece("R", i, f"{_ot(t.rf_in, 'R')} + {inc_t}", f"{_ol(t.rf_in, 'R')} + {inc_l}", t.rf)


def _jump_piece(t: Term, i: int) -> Piece | None:
    if _is_one(t.stride):
        return None
    return Piece("J", i, f"{_wrap(_ot(t.jump_in, 'J'), t.jump_in)}·{_wrap(_text(t.stride), t.stride)}",
                 rf"{_wrap(_ol(t.jump_in, 'J'), t.jump_in)} \cdot {_wrap(tex_of(t.stride), t.stride)}", t.jump)


def _start_piece(t: Term, i: int) -> Piece | None:
    p = t.pad_left
    if p is not None and sp.sympify(p) == 0:
        return None
    if p is None:
        return Piece("u", i, "", "", t.start, note="TensorFlow SAME")
    pj_t = _wrap(_text(p), p) + ("" if _is_one(t.jump_in) else "·" + _wrap(_ot(t.jump_in, 'J'), t.jump_in))
    pj_l = _wrap(tex_of(p), p) + ("" if _is_one(t.jump_in) else r" \cdot " + _wrap(_ol(t.jump_in, 'J'), t.jump_in))
    return Piece("u", i, f"{_ot(t.start_in, 'u')} − {pj_t}", f"{_ol(t.start_in, 'u')} - {pj_l}", t.start)


def _size_piece(t: Term, i: int) -> Piece | None:
    if t.size is None:
        return None
    w = t.window
    if w.pad == "tf_same":
        return Piece("n", i, f"⌈{_ot(t.size_in, 'n')}/{_text(t.stride)}⌉", rf"\left\lceil {_ol(t.size_in, 'n')} / "
                     rf"{tex_of(t.stride)} \right\rceil", t.size, note="TensorFlow SAME")
    if w.ceil:
        return Piece("n", i, "", "", t.size, note="ceil_mode")
    pl, pr = w.pad
    extent = w.extent
    num_t = f"{_ot(t.size_in, 'n')} + {_text(pl + pr)} − {_text(extent)}"
    num_l = rf"{_ol(t.size_in, 'n')} + {tex_of(pl + pr)} - {tex_of(extent)}"
    if _is_one(t.stride):
        return Piece("n", i, f"{num_t} + 1", f"{num_l} + 1", t.size)
    return Piece("n", i, f"⌊({num_t})/{_text(t.stride)}⌋ + 1",
                 rf"\left\lfloor \frac{{{num_l}}}{{{tex_of(t.stride)}}} \right\rfloor + 1", t.size)


_QUANTITY_OF = {"R": "rf", "J": "jump", "u": "start", "n": "out_size"}


def _value_pieces(lr, a, i, quantities, note):
    out = []
    for sym, q in _QUANTITY_OF.items():
        if q not in quantities:
            continue
        vals = lr.axes(q)
        if vals is None:
            continue
        if q != "rf" and lr.input.axes(q) is not None and vals[a] == lr.input.axes(q)[a]:
            continue
        out.append(Piece(sym, i, "", "", vals[a], note=note if sym == "R" else ""))
    return out


def layer_steps(result, quantities=("rf", "jump")) -> list[Step]:
    """The steps of a result: one :class:`Step` per layer that changes a quantity."""
    steps = []
    i = 0
    for lr in result.layers:
        kind = layer_kind(lr)
        if kind == "identity":
            continue
        i += 1
        ndim = len(lr.axes("rf"))
        per_axis = []
        for a in range(ndim):
            if kind == "window":
                t = term(lr, a)
                pieces = [_rf_piece(t, i)] if "rf" in quantities else []
                if "jump" in quantities and (p := _jump_piece(t, i)) is not None:
                    pieces.append(p)
                if "start" in quantities and (p := _start_piece(t, i)) is not None:
                    pieces.append(p)
                if "out_size" in quantities and (p := _size_piece(t, i)) is not None:
                    pieces.append(p)
            else:
                note = ("bounding box of the branches" if kind == "merge" else
                        "position-dependent: maximum over positions" if any(p != 1 for p in lr.axes("period"))
                        else "from the engine")
                pieces = _value_pieces(lr, a, i, quantities, note)
            per_axis.append(pieces)
        if all(_same_pieces(per_axis[0], other) for other in per_axis[1:]):
            per_axis = per_axis[:1]
        steps.append(Step(i, lr, per_axis, kind))
    return steps


def _same_pieces(a, b) -> bool:
    return len(a) == len(b) and all((p.text, p.value) == (q.text, q.value) for p, q in zip(a, b))


# --------------------------------------------------------------------------- rendering
class Derivation:
    """A written-out derivation: :meth:`text`, :meth:`markdown`, :meth:`latex`."""

    def __init__(self, result, steps, *, headers=False, max_chars=300):
        self.result = result
        self.steps = steps
        self.headers = headers
        self.max_chars = max_chars

    def _value(self, v, style):
        if not _small(v, self.max_chars // 2):
            return None
        s = tex_of(v) if style == "latex" else _text(v)
        if len(s) > self.max_chars:
            return None
        return s

    def _line(self, p: Piece, style, axis_label=""):
        value = self._value(p.value, style)
        if style == "latex":
            sup = axis_label.replace("axis ", "")
            lhs = f"{p.symbol}_{{{p.index}}}{sup and '^{(' + sup + ')}'}"
            parts = [lhs]
            if p.latex:
                parts.append(p.latex)
            parts.append(value if value is not None else r"\text{(long expression)}")
            line = " = ".join(parts)
            if p.note:
                line += rf"\quad\text{{({p.note})}}"
            return line
        lhs = f"{p.symbol}{str(p.index).translate(_SUB)}{axis_label and '[' + axis_label + ']'}"
        parts = [lhs]
        if p.text:
            parts.append(p.text)
        parts.append(value if value is not None else "(long expression)")
        line = " = ".join(parts)
        if p.note:
            line += f"  ({p.note})"
        return line

    def _lines(self, step, style):
        labels = [""] if len(step.axes) == 1 else [f"axis {a}" for a in range(len(step.axes))]
        out = []
        for label, pieces in zip(labels, step.axes):
            out.append([self._line(p, style, label) for p in pieces])
        return out

    def text(self) -> str:
        """Plain text, one line per layer (and axis when the axes differ)."""
        rows = []
        for step in self.steps:
            if self.headers:
                rows.append(f"{step.index}. {step.title}")
            for lines in self._lines(step, "text"):
                if lines:
                    rows.append(("   " if self.headers else "") + ",  ".join(lines))
        return "\n".join(rows)

    def markdown(self) -> str:
        """A Markdown list, each equation as inline LaTeX."""
        rows = []
        for step in self.steps:
            eqs = ["; ".join(f"${line}$" for line in lines) for lines in self._lines(step, "latex") if lines]
            rows.append(f"{step.index}. {step.title.replace('*', chr(92) + '*')}: " + "; ".join(eqs))
        return "\n".join(rows)

    def latex(self, env="align*") -> str:
        """A LaTeX ``align*`` environment (``env=None``: only the rows), one row per equation;
        with ``headers``, each layer is named in an ``\\intertext``."""
        rows = []
        for step in self.steps:
            if self.headers:
                rows.append(rf"\intertext{{{step.index}. {tex_escape(step.title)}}}")
            for lines in self._lines(step, "latex"):
                for line in lines:
                    lhs, rhs = line.split(" = ", 1)
                    rows.append(f"{lhs} &= {rhs}")
        body = "".join(r + ("\n" if r.startswith("\\intertext") else " \\\\\n") for r in rows).rstrip(" \\\n")
        return body if env is None else f"\\begin{{{env}}}\n{body}\n\\end{{{env}}}"

    def _repr_markdown_(self):
        return self.markdown()

    def __str__(self):
        return self.text()

    def __repr__(self):
        return f"<Derivation of {len(self.steps)} steps>"


def derivation(result, quantities=("rf", "jump"), *, headers=False, max_chars=300) -> Derivation:
    """The step-by-step derivation of a :class:`~rfsym.engine.Result`.

    ``quantities``: any of ``"rf"``, ``"jump"``, ``"start"``, ``"out_size"``. ``headers``: name
    each layer above its equations. Values longer than ``max_chars`` characters print as
    ``(long expression)`` (deep symbolic networks).

    >>> from rfsym import Conv, MaxPool, Sequential, analyze
    >>> r = analyze(Sequential(Conv(3, padding=1), MaxPool(2)), input_size=8)
    >>> print(derivation(r, ("rf", "jump", "start", "out_size"), headers=True).text())
    1. Conv 3×3, padding 1
       R₁ = 1 + (3 − 1) = 3,  u₁ = 0 − 1 = −1,  n₁ = 8 + 2 − 3 + 1 = 8
    2. MaxPool 2×2, stride 2
       R₂ = 3 + (2 − 1) = 4,  J₂ = 1·2 = 2,  n₂ = ⌊(8 + 0 − 2)/2⌋ + 1 = 4
    """
    require_exact(result, "a derivation")
    return Derivation(result, layer_steps(result, quantities), headers=headers, max_chars=max_chars)
