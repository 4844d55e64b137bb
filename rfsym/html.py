r"""HTML and Markdown for notebooks: results, layers, comparisons, verification reports, summaries.

Jupyter shows an object's ``_repr_html_``; these functions write it. Formulas are LaTeX in
``$$...$$`` / ``$...$`` (MathJax, which Jupyter and the docs site load), tables are plain HTML
with right-aligned numbers (values rendered by :mod:`rfsym.format`), and long per-layer tables sit
in a collapsible ``<details>`` element.

>>> from rfsym import Conv, Sequential, analyze
>>> page = result_html(analyze(Sequential(Conv(3, padding=1), Conv(3, stride=2)), input_size=8))
>>> "<details>" in page and "$$" in page and "receptive field" in page
True
"""

from __future__ import annotations

from .errors import RfsymError
from .format import Column, Table, html_text, si, value

__all__ = ["result_html", "result_markdown", "layer_html", "layer_markdown", "comparison_html",
           "verify_html", "verify_markdown", "summary_html"]

_STYLE = ("<style>.rfsym-out table{border-collapse:collapse;margin:.4em 0}"
          ".rfsym-out td,.rfsym-out th{padding:.15em .7em;border-bottom:1px solid #ddd}"
          ".rfsym-out th{border-bottom:2px solid #888}.rfsym-out summary{cursor:pointer}"
          ".rfsym-out .ok{color:#1a7f37}.rfsym-out .bad{color:#b42318}</style>")

_QUANTITIES = (("rf", "receptive field", "R"), ("jump", "jump (effective stride)", "J"),
               ("start", "start", "u"), ("effective_padding", "effective padding", "P"),
               ("out_size", "output size", r"n_{\mathrm{out}}"))


def _wrap(body):
    return f'<div class="rfsym-out">{_STYLE}{body}</div>'


def _size(result, style):
    if result.input_size is None:
        return "unknown size"
    ch = [] if result.in_channels is None else [result.in_channels]
    times = "×"
    return times.join(value(v, style, max_chars=20) for v in ch + list(result.input_size))


def _heading(result, name, style):
    from .summaries import features

    parts = [f"input {_size(result, 'unicode')}", f"{len(result.layers):,} layers"]
    if result.params is not None:
        parts.append(f"{si(result.params)} parameters")
    if result.macs is not None:
        parts.append(f"{si(result.macs)} MACs")
    f = features(result)
    if f is not None:
        parts.append(f"features at {f.name}")
    title = name or getattr(result.network, "name", None) or type(result.network).__name__
    return title, ", ".join(parts)


def _quantity_table(result):
    """Quantity | network output | features layer (the backbone number beside the totals)."""
    from .summaries import features

    f = features(result)
    cols = [Column("quantity", "label"), Column("output", "area")]
    if f is not None:
        cols.append(Column(f"features ({f.name})", "area"))
    rows = []
    for attr, label, _ in _QUANTITIES:
        row = [label, getattr(result, attr)]
        if f is not None:
            row.append(getattr(f, attr))
        rows.append(row)
    for attr, label in (("params", "parameters"), ("macs", "MACs")):
        v = getattr(result, attr)
        if v is not None:
            rows.append([label, v] + ([""] if f is not None else []))
    return Table(cols, rows, max_chars=80)


def _layers_table(result, max_rows):
    from .report import layer_table

    t = layer_table(result, max_chars=80)
    if len(t.rows) > max_rows:
        t.rows = t.rows[:max_rows]
    return t


def _formulas(result, max_chars=2000):
    from .latex import to_latex

    try:
        return "$$" + to_latex(result, max_chars=max_chars) + "$$"
    except RfsymError:  # results of evaluate() hold arrays, not closed forms
        return ""


def result_html(result, name=None, *, max_rows=1000) -> str:
    """A :class:`~rfsym.engine.Result` as HTML: name and size, the quantities of the output and of
    the reference feature layer, the closed forms (MathJax) and the per-layer table (collapsed;
    the first ``max_rows`` layers).

    >>> from rfsym import zoo
    >>> page = result_html(zoo.analyze("resnet18"))
    >>> "features (layer4.1.relu)" in page and "<td style=\\"text-align:right\\">435</td>" in page
    True
    """
    title, line = _heading(result, name, "html")
    body = [f"<p><b>{html_text(title)}</b>: {html_text(line)}</p>", _quantity_table(result).render("html")]
    formulas = _formulas(result)
    if formulas:
        body.append(f"<details><summary>closed forms</summary>\n{formulas}\n</details>")
    n = len(result.layers)
    more = f" (first {max_rows:,})" if n > max_rows else ""
    body.append(f"<details><summary>per-layer table: {n:,} layers{more}</summary>\n"
                f"{_layers_table(result, max_rows).render('html')}\n</details>")
    return _wrap("\n".join(body))


def result_markdown(result, name=None, *, max_rows=1000) -> str:
    """Like :func:`result_html`, in Markdown (the per-layer table inside ``<details>``)."""
    title, line = _heading(result, name, "markdown")
    parts = [f"**{title}**: {line}", "", _quantity_table(result).render("markdown")]
    formulas = _formulas(result)
    if formulas:
        parts += ["", formulas]
    parts += ["", f"<details><summary>per-layer table: {len(result.layers):,} layers</summary>", "",
              _layers_table(result, max_rows).render("markdown"), "", "</details>"]
    return "\n".join(parts)


def layer_html(lr) -> str:
    """One :class:`~rfsym.engine.LayerResult` as HTML: its quantities and closed forms.

    >>> from rfsym import Conv, Sequential, analyze
    >>> "Conv" in layer_html(analyze(Sequential(Conv(3), Conv(3, name="b"))).layer("b"))
    True
    """
    cols = [Column("quantity", "label"), Column("value", "area")]
    rows = [[label, getattr(lr, attr)] for attr, label, _ in _QUANTITIES]
    rows += [["parameters (this layer)", lr.params], ["MACs (this layer)", lr.macs]]
    head = f"<p><b>{html_text(lr.name)}</b> ({html_text(lr.type)}, layer {lr.index})</p>"
    return _wrap(head + Table(cols, rows, max_chars=80).render("html") + _formulas(lr))


def layer_markdown(lr) -> str:
    """Like :func:`layer_html`, in Markdown."""
    cols = [Column("quantity", "label"), Column("value", "area")]
    rows = [[label, getattr(lr, attr)] for attr, label, _ in _QUANTITIES]
    rows += [["parameters (this layer)", lr.params], ["MACs (this layer)", lr.macs]]
    return f"**{lr.name}** ({lr.type}, layer {lr.index})\n\n" + Table(cols, rows, max_chars=80).render("markdown")


def comparison_html(comparison) -> str:
    """A :class:`~rfsym.comparison.Comparison` as an HTML table."""
    return _wrap(comparison.table().render("html"))


def verify_html(report) -> str:
    """A :class:`~rfsym.verification.VerifyReport` as HTML: the verdict and any mismatches.

    >>> from rfsym import Conv, verify
    >>> "agree" in verify_html(verify(Conv(3, stride=2), 16))
    True
    """
    if report.ok:
        head = (f'<p><span class="ok">&#10004; engine and enumeration agree</span>: '
                f"{html_text(report.summary())}</p>")
        return _wrap(head)
    head = f'<p><span class="bad">&#10008; mismatches</span>: {html_text(report.summary())}</p>'
    return _wrap(head + _mismatches(report).render("html"))


def verify_markdown(report) -> str:
    """Like :func:`verify_html`, in Markdown."""
    if report.ok:
        return f"**✔ engine and enumeration agree**: {report.summary()}"
    return f"**✘ mismatches**: {report.summary()}\n\n" + _mismatches(report).render("markdown")


def _mismatches(report):
    cols = [Column("layer", "label"), Column("quantity", "label"), Column("engine"), Column("enumerated")]
    return Table(cols, [[m.layer, m.quantity, m.engine, m.enumerated] for m in report.mismatches])


def summary_html(summary) -> str:
    """A :class:`~rfsym.summaries.Summary` as HTML (heading, tree table, features line)."""
    from .summaries import features_line

    line = features_line(summary.result)
    tail = f"<p>{html_text(line)}</p>" if line else ""
    return _wrap(f"<p><b>{html_text(summary.heading())}</b></p>" + summary.table("html") + tail)
