"""Results as plain data, JSON and text tables (what ``rfsym analyze`` prints).

:func:`to_dict` is the JSON schema of ``rfsym analyze --format json``::

    {"name", "input_size",
     "layers": [{"name", "type", "rf", "jump", "start", "center", "out_size", "params", "macs"}],
     "total": {"rf", "jump", "start", "center", "out_size", "params", "macs"}}

``layers`` lists every layer in topological order, merges included (``type`` is the layer
class name, or the merge type such as ``Add`` or ``Concat``). Integers are JSON numbers,
symbolic and rational values are strings that :func:`sympy.sympify` parses back, per-axis
values are lists, unknown values (no input size, no channels) are ``null``. ``total`` holds
the network output's quantities with ``params`` and ``macs`` summed over all layers.

>>> from rfsym import Conv, MaxPool, Sequential, analyze, symbols
>>> k = symbols("k")
>>> d = to_dict(analyze(Sequential(Conv(k, padding=1, in_channels=3, out_channels=8), MaxPool(2)),
...                     input_size=32), name="tiny")
>>> d["total"]
{'rf': 'k + 1', 'jump': 2, 'start': -1, 'center': 'k/2 - 1', 'out_size': 'floor(33/2 - k/2) + 1', 'params': '24*k**2 + 8', 'macs': '24*k**2*(k**2 - 70*k + 1225)'}
>>> d["layers"][1]["type"], d["layers"][1]["params"]
('MaxPool', 0)
"""

from __future__ import annotations

import json
import numbers

import numpy as np
import sympy as sp

__all__ = ["FIELDS", "to_dict", "to_json", "jsonable", "table", "format_value"]

#: the per-layer and total keys of the JSON output, in order
FIELDS = ("rf", "jump", "start", "center", "out_size", "params", "macs")


def jsonable(value):
    """One value as JSON data: ints stay numbers, expressions become sympify-able strings,
    per-axis tuples (and numpy arrays from :meth:`Result.evaluate`) become lists.

    >>> jsonable((3, sp.Rational(1, 2), sp.Symbol("k") + 1))
    [3, '1/2', 'k + 1']
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, sp.Basic):
        if value.is_Integer:
            return int(value)
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _input_size(result):
    sizes = result.input_size
    if sizes is None:
        return None
    sizes = tuple(sizes)
    return jsonable(sizes[0] if all(s == sizes[0] for s in sizes) else sizes)


def _quantities(obj):
    return {key: jsonable(getattr(obj, key)) for key in FIELDS}


def to_dict(result, name=None) -> dict:
    """The result as plain data (the schema of ``rfsym analyze --format json``)."""
    layers = []
    for layer in result.layers:
        entry = {"name": layer.name, "type": layer.type}
        entry.update(_quantities(layer))
        layers.append(entry)
    return {"name": name, "input_size": _input_size(result), "layers": layers,
            "total": _quantities(result)}


def to_json(result, name=None, indent=2) -> str:
    """:func:`to_dict` as a JSON string."""
    return json.dumps(to_dict(result, name), indent=indent)


def format_value(value) -> str:
    """A value for a table cell: per-axis tuples as ``(a, b)``, unknown as ``-``.

    >>> format_value((3, 5)), format_value(None), format_value(sp.Symbol("k") + 2)
    ('(3, 5)', '-', 'k + 2')
    """
    if value is None:
        return "-"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, np.ndarray):
        return np.array2string(value, separator=", ", threshold=8)
    if isinstance(value, numbers.Integral) and abs(int(value)) >= 10_000:
        return f"{int(value):,}"
    if isinstance(value, sp.Integer) and abs(int(value)) >= 10_000:
        return f"{int(value):,}"
    return str(value)


_HEADER = ("#", "name", "type", "out_size", "rf", "jump", "start", "center", "params", "macs")


def _rows(result, name):
    rows = []
    for layer in result.layers:
        rows.append((str(layer.index), layer.name, layer.type, format_value(layer.out_size),
                     format_value(layer.rf), format_value(layer.jump), format_value(layer.start),
                     format_value(layer.center), format_value(layer.params), format_value(layer.macs)))
    rows.append(("", "total", name or "", format_value(result.out_size), format_value(result.rf),
                 format_value(result.jump), format_value(result.start), format_value(result.center),
                 format_value(result.params), format_value(result.macs)))
    return rows


def table(result, name=None) -> str:
    """Per-layer plain-text table with a total row (Markdown and LaTeX tables:
    :func:`rfsym.latex.table`).

    >>> from rfsym import Conv, Sequential, analyze
    >>> print(table(analyze(Sequential(Conv(3, padding=1), Conv(3, stride=2)), input_size=8)))
    #  name   type  out_size  rf  jump  start  center  params  macs
    0  0      Conv  8         3   1     -1     0       -       -
    1  1      Conv  3         5   2     -1     1       -       -
       total        3         5   2     -1     1       -       -
    """
    rows = _rows(result, name)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_HEADER)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(_HEADER, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
