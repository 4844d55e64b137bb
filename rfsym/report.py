"""Results as plain data, JSON and text tables (what ``rfsym analyze`` prints).

:func:`to_dict` is the JSON schema of ``rfsym analyze --format json``::

    {"name", "input_size",
     "layers": [{"name", "type", "rf", "jump", "start", "center", "out_size", "params", "macs"}],
     "total": {"rf", "jump", "start", "center", "out_size", "params", "macs"},
     "features": {"name", "rf", "jump", "start", "center", "out_size", "effective_padding"} or null}

``layers`` lists every layer in topological order, merges included (``type`` is the layer
class name, or the merge type such as ``Add`` or ``Concat``). Integers are JSON numbers,
symbolic and rational values are strings that :func:`sympy.sympify` parses back, per-axis
values are lists, unknown values (no input size, no channels) are ``null``. ``total`` holds
the network output's quantities with ``params`` and ``macs`` summed over all layers;
``features`` the reference feature layer's (the backbone number, :func:`rfsym.summaries.features`;
null when the network has none).

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

import sympy as sp

from .errors import RfsymError
from .format import MAX_CHARS, STYLES, WIDTH, Column, Table, progress
from .layers import Windowed
from .lazy_numpy import np

__all__ = ["FIELDS", "COLUMNS", "to_dict", "to_json", "jsonable", "table", "layer_table", "default_columns",
           "layer_argument"]

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


def features_dict(result) -> dict | None:
    """The reference feature layer as plain data (None when the network has none)."""
    from .summaries import features

    f = features(result)
    if f is None:
        return None
    q = {key: jsonable(getattr(f, key)) for key in ("rf", "jump", "start", "center", "out_size")}
    return {"name": f.name, **q, "effective_padding": jsonable(f.effective_padding)}


def to_dict(result, name=None) -> dict:
    """The result as plain data (the schema of ``rfsym analyze --format json``)."""
    layers = []
    for layer in result.layers:
        entry = {"name": layer.name, "type": layer.type}
        entry.update(_quantities(layer))
        layers.append(entry)
    return {"name": name, "input_size": _input_size(result), "layers": layers,
            "total": _quantities(result), "features": features_dict(result)}


def to_json(result, name=None, indent=2) -> str:
    """:func:`to_dict` as a JSON string."""
    return json.dumps(to_dict(result, name), indent=indent)


# --------------------------------------------------------------------------- per-layer tables
#: every column of the per-layer table (``rfsym analyze``), in order; ``columns=`` picks some
COLUMNS = ("index", "name", "type", "kernel", "stride", "padding", "dilation", "out_size", "rf", "jump",
           "start", "center", "params", "macs")
_KIND = {"index": "value", "name": "label", "type": "label", "kernel": "area", "out_size": "area",
         "rf": "area", "params": "count", "macs": "count"}
_HEAD = {"index": {"latex": r"\#", "text": "#", "unicode": "#", "markdown": "#", "html": "#"},
         "kernel": {"latex": "$k$", "text": "k", "unicode": "k", "markdown": "k", "html": "k"},
         "stride": {"latex": "$s$", "text": "s", "unicode": "s", "markdown": "s", "html": "s"},
         "padding": {"latex": "$p$", "text": "p", "unicode": "p", "markdown": "p", "html": "p"},
         "dilation": {"latex": "$d$", "text": "d", "unicode": "d", "markdown": "d", "html": "d"}, "out_size": "size",
         "rf": {"latex": "$R$"}, "jump": {"latex": "$J$"}, "start": {"latex": "$u$"},
         "center": {"latex": "$c$"}, "macs": "MACs"}


def _header(col):
    h = _HEAD.get(col, col)
    return h if isinstance(h, str) else {**{s: col for s in STYLES}, **h}


def layer_argument(lr, attr):
    """A sliding-window layer's own ``kernel``, ``stride``, ``padding`` or ``dilation`` per axis
    (``(l, r)`` paddings as ``"l/r"``), or None for other layers and merges."""
    layer = lr.layer
    if not isinstance(layer, Windowed) or lr.type != type(layer).__name__:
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


def _layer_cell(lr, col):
    if col == "index":
        return lr.index
    if col in ("name", "type"):
        return str(getattr(lr, col))
    if col in ("kernel", "stride", "padding", "dilation"):
        arg = layer_argument(lr, col)
        return "" if arg is None else arg  # not a sliding window: nothing to show
    if col in ("params", "macs"):
        return getattr(lr, col)
    return lr.axes(col)


def _total_cell(result, col):
    if col in ("params", "macs"):
        return getattr(result, col)
    if col in ("rf", "jump", "start", "center", "out_size"):
        return result.axes(col)
    return ""


def default_columns(result) -> list:
    """:data:`COLUMNS` minus those with nothing to show (no dilation, no sizes, no channels)."""
    cols = list(COLUMNS)
    cols.remove("index")  # names identify the layers; the index is in JSON and on the result
    cols.remove("center")  # start + (rf - 1)/2: likewise
    lrs = result.layers
    if all(all(x == 1 for x in (layer_argument(lr, "dilation") or ())) for lr in lrs):
        cols.remove("dilation")
    for col in ("out_size", "params", "macs"):
        if all((lr.axes(col) if col == "out_size" else getattr(lr, col)) is None for lr in lrs):
            cols.remove(col)
    return cols


def layer_table(result, columns=None, *, name=None, total=True, features=True, max_chars=MAX_CHARS) -> Table:
    """The per-layer table as a :class:`~rfsym.format.Table` (render it in any style): one row
    per layer (merges included; quantities with respect to the network input, ``params`` and
    ``macs`` of each layer alone), then the ``total`` row (the network output, parameters and
    MACs summed; ``name`` is accepted for the heading callers print) and the ``features`` row (the reference feature layer, when the network has
    one: :func:`rfsym.summaries.features`)."""
    from .summaries import features as feature_layer

    cols = list(columns) if columns is not None else default_columns(result)
    unknown = [c for c in cols if c not in COLUMNS]
    if unknown:
        raise RfsymError(f"table columns are {', '.join(COLUMNS)}; got {', '.join(unknown)}")
    rows = [[_layer_cell(lr, c) for c in cols] for lr in progress(result.layers, desc="table")]
    rules = []
    labels = [c for c in cols if c in ("index", "name", "type")]
    second = labels[1] if len(labels) > 1 else None  # where the network's or layer's name goes

    def special(label, what, cell):
        return [label if c == cols[0] else what if c == second else cell(c) for c in cols]

    if total:
        rules.append(len(rows))
        rows.append(special("total", "", lambda c: _total_cell(result, c)))
    f = feature_layer(result) if features else None
    if f is not None:
        if not total:
            rules.append(len(rows))
        rows.append(special("features", f.name, lambda c: "" if c in ("index", "name", "type", "params", "macs",
                                                                    "kernel", "stride", "padding", "dilation")
                            else _layer_cell(f, c)))
    columns_ = [Column(c, _KIND.get(c, "value"), header=_header(c)) for c in cols]
    return Table(columns_, rows, rules=rules, max_chars=max_chars)


def table(result, name=None, columns=None, *, style="unicode", max_chars=MAX_CHARS, indent="") -> str:
    """Per-layer table with a total row (and a features row when the network has one), in
    ``style`` (see :mod:`rfsym.format`): what ``rfsym analyze`` prints.

    >>> from rfsym import Conv, Sequential, analyze
    >>> print(table(analyze(Sequential(Conv(3, padding=1), Conv(3, stride=2)), input_size=8)))
    name   type  k  s  p  size  rf  jump  start
    -----  ----  -  -  -  ----  --  ----  -----
    0      Conv  3  1  1     8   3     1     −1
    1      Conv  3  2  0     3   5     2     −1
    -----  ----  -  -  -  ----  --  ----  -----
    total                    3   5     2     −1
    """
    return layer_table(result, columns, name=name, max_chars=max_chars).render(style, width=WIDTH, indent=indent)
