r"""``rfsym.summary(model, input_size)``: one call from a model to a readable table.

The model may be an rfsym network (a layer, ``Sequential`` or ``Graph``), a zoo name
(``"resnet50"``) or a one-line spec (``"conv3 x3"``), a :class:`~rfsym.engine.Result`, a
``torch.nn.Module`` (imported with :func:`rfsym.from_torch`), and, where rfsym provides the
importers, a Keras model (:func:`rfsym.from_keras`) or an ONNX model or ``.onnx`` file
(:func:`rfsym.from_onnx`). The returned :class:`Summary` prints as a table of at most 100 columns:
the module tree (indented by the dotted layer names; containers show the totals of the layers in
them), each output's shape ``C×H×W``, receptive field, jump, parameters and MACs (SI prefixes),
the whole-network total and the **features** row: the reference feature layer (the last spatial
feature map before global pooling and the classifier; see :func:`features`) whose receptive field
describes the backbone.

>>> from rfsym import Conv, MaxPool, Sequential
>>> net = Sequential(Sequential(Conv(3, padding=1, out_channels=16, name="conv"), MaxPool(2, name="pool"),
...                             name="stem"), Conv(3, out_channels=32, name="head"))
>>> s = summary(net, (3, 32, 32))
>>> s.rf, s.jump, s.params
(8, 2, 5088)
>>> print(s)
Sequential: input 3×32×32, 3 layers, 5.09 k parameters, 1.35 M MACs
layer   type       output  rf  jump  params    MACs
------  -------  --------  --  ----  ------  ------
stem             16×16×16   4     2     448   442 k
  conv  Conv     16×32×32   3     1     448   442 k
  pool  MaxPool  16×16×16   4     2       0       0
head    Conv     32×14×14   8     2  4.64 k   903 k
------  -------  --------  --  ----  ------  ------
total            32×14×14   8     2  5.09 k  1.35 M
"""

from __future__ import annotations

import functools

from .errors import RfsymError, SizeError
from .format import WIDTH, Column, Table, si, value
from .symbols import as_expr

__all__ = ["summary", "Summary", "features", "features_line", "load", "COLUMNS"]

#: the columns a summary can show, in order (``columns=`` picks some)
COLUMNS = ("layer", "type", "output", "rf", "jump", "start", "padding", "params", "macs")
_DEFAULT = ("layer", "type", "output", "rf", "jump", "params", "macs")

_GLOBAL_TYPES = {"GlobalAvgPool", "GlobalMaxPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "Flatten"}


# --------------------------------------------------------------------------- the backbone number
def features(result):
    """The reference feature layer of a result (a :class:`~rfsym.engine.LayerResult`) or None.

    In order: the result's own ``features`` (when the engine provides it), the network's
    ``features`` name (``Graph(features=...)``, importers set it), the zoo entry of the same name,
    and otherwise the layer just before the network's last global pooling or flattening when only
    a head (no spatial layer) follows it.

    >>> from rfsym import zoo
    >>> f = features(zoo.analyze("resnet18"))
    >>> f.name, f.rf, f.jump, f.effective_padding
    ('layer4.1.relu', 435, 32, 217)
    """
    if result is None:
        return None
    try:
        known = result.features
    except AttributeError:
        pass
    else:
        if known is not None and not isinstance(known, str):
            return known
        if isinstance(known, str):
            return _layer(result, known)
    net = getattr(result, "network", None)
    name = getattr(net, "features", None)
    if isinstance(name, str):
        return _layer(result, name)
    known = _zoo_features().get(getattr(net, "name", None))
    if known is not None:
        f = _layer(result, known)
        if f is not None:
            return f
    return _before_head(result)


@functools.cache
def _zoo_features():
    """Network name -> feature layer name of every zoo entry (built once)."""
    from . import zoo

    out = {}
    for name in zoo.names():
        e = zoo.entry(name)
        if e.features:
            out[e.build().name or name] = e.features
    return out


def _layer(result, name):
    try:
        return result.layer(name)
    except RfsymError:
        return None


def _before_head(result):
    layers = result.layers
    last = None
    for i, lr in enumerate(layers):
        if lr.type in _GLOBAL_TYPES:
            last = i
    if not last:
        return None
    for lr in layers[last + 1:]:
        sizes = lr.axes("out_size")
        if sizes is not None and any(s != 1 for s in sizes):
            return None  # spatial layers follow: not a head
    first = last
    while first > 0 and layers[first - 1].type in _GLOBAL_TYPES:  # pooling, then flatten
        first -= 1
    return layers[first - 1] if first > 0 else None


def features_line(result, style="unicode") -> str | None:
    """``features: layer4.2.relu — rf 427, jump 32, effective padding 213`` (None without one)."""
    f = features(result)
    if f is None:
        return None
    dash = " - " if style == "text" else " — "
    return (f"features: {f.name}{dash}rf {value(f.rf, style, area=True, max_chars=40)}, "
            f"jump {value(f.jump, style, max_chars=40)}, "
            f"effective padding {value(f.effective_padding, style, max_chars=40)}")


# --------------------------------------------------------------------------- loading models
def _kind(model) -> str:
    """Which importer a model needs, decided from its class names (no framework is imported)."""
    for cls in type(model).__mro__:
        mod = cls.__module__ or ""
        if mod.startswith("torch.nn") and cls.__name__ == "Module":
            return "torch"
        if mod.split(".")[0] in ("keras", "tf_keras") or ".keras" in mod:
            return "keras"
        if mod.startswith("onnx") and cls.__name__ == "ModelProto":
            return "onnx"
    return ""


def _torch_shape(input_size):
    if input_size is None:
        raise SizeError("summary of a PyTorch module needs input_size as (C, H, W) or (N, C, H, W), "
                        "for example (3, 224, 224)")
    shape = tuple(input_size) if isinstance(input_size, (tuple, list)) else (input_size,)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape) or len(shape) < 2:
        raise SizeError(f"summary of a PyTorch module needs input_size as (C, H, W) or (N, C, H, W) with "
                        f"positive integers, got {input_size!r}")
    if len(shape) == 2:
        raise SizeError(f"input_size {shape!r} is ambiguous for a PyTorch module: give (C, H, W) or "
                        "(N, C, H, W), for example (3, 224, 224)")
    if len(shape) == 3:  # (C, H, W): a batch of one
        shape = (1,) + shape
    return shape


def load(model, input_size=None, *, in_channels=None, ndim=None):
    """``(result, name)`` for every kind of model :func:`summary` takes (arguments as there): the
    one place that turns a model of any kind into a :class:`~rfsym.engine.Result`; ``compare``
    and the plots use it too.

    >>> r, name = load("vgg16")
    >>> name, r.layer("features.30").rf
    ('vgg16', 212)
    """
    from . import engine

    if isinstance(model, engine.Result):
        return model, getattr(model.network, "name", None)
    if isinstance(model, str):
        return _load_text(model, input_size, in_channels, ndim)
    kind = _kind(model)
    if kind == "torch":
        import rfsym

        shape = _torch_shape(input_size)
        net = rfsym.from_torch(model, shape)
        return (engine.analyze(net, input_size=shape[2:], in_channels=shape[1]),
                type(model).__name__)
    if kind == "keras":  # channels last: (H, W, C) or (N, H, W, C); default: the model's own
        shape = _keras_shape(model, input_size)
        net = _importer("keras")(model)
        return (engine.analyze(net, input_size=shape[:-1], in_channels=shape[-1]),
                getattr(model, "name", None) or type(model).__name__)
    if kind == "onnx":
        return _onnx(model, input_size)
    size, ch = _split_size(input_size, in_channels, ndim)
    return engine.analyze(model, input_size=size, ndim=ndim, in_channels=ch), getattr(model, "name", None)


def _importer(kind):
    import rfsym

    try:
        return getattr(rfsym, f"from_{kind}")
    except AttributeError:
        raise RfsymError(f"this version of rfsym cannot import {kind} models") from None


def _keras_shape(model, input_size):
    if input_size is None:
        shape = tuple(getattr(model, "input_shape", None) or ())[1:]
        if not shape or not all(isinstance(n, int) for n in shape):
            raise SizeError("summary of a Keras model with an unknown input size needs input_size as (H, W, C) "
                            "or (N, H, W, C), for example (224, 224, 3)")
        return shape
    shape = tuple(input_size) if isinstance(input_size, (tuple, list)) else (input_size,)
    if len(shape) < 3 or not all(isinstance(n, int) and n > 0 for n in shape):
        raise SizeError(f"summary of a Keras model needs input_size as (H, W, C) or (N, H, W, C) "
                        f"(channels last) with positive integers, got {input_size!r}")
    return shape[1:] if len(shape) == 4 else shape


def _onnx(model, input_size):
    shape = None
    if input_size is not None:
        shape = tuple(input_size) if isinstance(input_size, (tuple, list)) else (input_size,)
        if len(shape) < 3:
            raise SizeError(f"summary of an ONNX model needs input_size as (C, H, W) or (N, C, H, W), "
                            f"got {input_size!r}")
        shape = (1,) + shape if len(shape) == 3 else shape
    from . import engine

    net = _importer("onnx")(model, shape)
    name = getattr(net, "name", None) or (model if isinstance(model, str) else "onnx model")
    if shape is None:
        return engine.analyze(net), name
    return engine.analyze(net, input_size=shape[2:], in_channels=shape[1]), name


def _split_size(input_size, in_channels, ndim):
    """``(C, H, W)`` for 2-D networks gives channels and size; other sizes pass through."""
    if isinstance(input_size, (tuple, list)):
        n = len(input_size)
        nd = ndim or 2
        if n == nd + 2:
            input_size = tuple(input_size)[1:]
            n -= 1
        if n == nd + 1:
            ch = input_size[0]
            if in_channels is not None and as_expr(in_channels, "in_channels") != as_expr(ch, "input_size"):
                raise SizeError(f"input_size {tuple(input_size)!r} says {ch} channels but in_channels is "
                                f"{in_channels}")
            return tuple(input_size)[1:], ch
    return input_size, in_channels


def _load_text(text, input_size, in_channels, ndim):
    from . import engine, zoo
    from .spec import parse_line

    name = text.strip()
    if name.endswith(".onnx"):
        return _onnx(name, input_size)
    if name in zoo.names():
        e = zoo.entry(name)
        size, ch = _split_size(input_size, in_channels, e.ndim)
        size = e.input_size if size is None else size
        ch = e.in_channels if ch is None else ch
        return engine.analyze(e.network(), input_size=size, ndim=e.ndim, in_channels=ch, features=e.features), name
    size, ch = _split_size(input_size, in_channels, ndim)
    return engine.analyze(parse_line(text), input_size=size, ndim=ndim, in_channels=ch), name


# --------------------------------------------------------------------------- the table
class _Row:
    def __init__(self, label, level, type_, out, params, macs):
        self.label, self.level, self.type = label, level, type_
        self.out, self.params, self.macs = out, params, macs


def _add(a, b):
    return None if a is None or b is None else a + b


def _tree(result, depth):
    """Rows of the module tree: containers (dotted name prefixes) before their first layer, with
    the totals of their layers and the output of their last one.

    Each dotted prefix is known by an id given to ``(parent id, segment)``, so the work is linear
    in the length of the names (deeply nested blocks have long names)."""
    layers = result.layers
    ids, info, chains = {}, [], []  # (parent, segment) -> id; id -> [first, last, params, macs]
    for i, lr in enumerate(layers):
        parts = str(lr.name).split(".")
        params, macs = lr.params, lr.macs
        pid, chain = -1, []
        for part in parts if depth is None else parts[:depth + 1]:
            pid = ids.setdefault((pid, part), len(info))
            if pid == len(info):
                info.append([i, i, 0, 0])
            entry = info[pid]
            entry[1] = i
            entry[2] = _add(entry[2], params)
            entry[3] = _add(entry[3], macs)
            chain.append(pid)
        chains.append((parts, chain))
    rows, opened = [], set()
    for lr, (parts, chain) in zip(layers, chains):
        for k in range(1, len(parts)):
            if depth is not None and k > depth:
                break
            p = chain[k - 1]
            if p in opened:
                continue
            opened.add(p)
            first, last, params, macs = info[p]
            rows.append(_Row(parts[k - 1], k - 1, "", layers[last], params, macs))
        level = len(parts) - 1
        if depth is not None and level >= depth:
            continue
        if chain[-1] in opened:  # a container's own node (a merge named after its block)
            if (depth is not None and level + 1 >= depth) or lr.type == "Identity":
                continue  # too deep, or only marks where the block ends
            rows.append(_Row("(" + lr.type.lower() + ")", level + 1, lr.type, lr, lr.params, lr.macs))
            continue
        rows.append(_Row(parts[-1], level, lr.type, lr, lr.params, lr.macs))
    return rows


def _shape(lr):
    """``(C, H, W)`` of a layer's output (the known parts)."""
    sizes = lr.axes("out_size")
    ch = lr.out_channels
    return tuple(([] if ch is None else [ch]) + ([] if sizes is None else list(sizes)))


def _shape_text(parts, style):
    if not parts:
        return value(None, style)
    return ("x" if style == "text" else "×").join(value(p, style, max_chars=12) for p in parts)


def _cell(col, row_out, params, macs):
    if col == "output":
        return _shape(row_out)
    if col == "rf":
        return row_out.axes("rf")
    if col == "jump":
        return row_out.axes("jump")
    if col == "start":
        return row_out.axes("start")
    if col == "padding":
        return tuple(-s for s in row_out.axes("start"))
    if col == "params":
        return params
    if col == "macs":
        return macs
    raise KeyError(col)


_HEAD = {"layer": "layer", "type": "type", "output": "output", "rf": "rf", "jump": "jump", "start": "start",
         "padding": "eff. pad", "params": "params", "macs": "MACs"}


class Summary:
    """What :func:`summary` returns: the table (``str(summary)``, :meth:`table`) and the
    :class:`~rfsym.engine.Result` (``.result``; ``.rf``, ``.jump``, ``.layers``, ``.layer(name)``
    and every other attribute of the result are available on the summary itself).

    ``features`` is the reference feature layer (a :class:`~rfsym.engine.LayerResult`, or None).
    """

    def __init__(self, result, name=None, *, depth=2, columns=None, width=WIDTH):
        self.result = result
        self.name = name or getattr(result.network, "name", None) or type(result.network).__name__
        self.depth = depth
        cols = tuple(_DEFAULT if columns is None else columns)
        unknown = [c for c in cols if c not in COLUMNS]
        if unknown:
            raise RfsymError(f"summary columns are {', '.join(COLUMNS)}; got {', '.join(unknown)}")
        self.columns = cols
        self.width = width

    def __getattr__(self, attr):
        if attr.startswith("__") or attr == "result":
            raise AttributeError(attr)
        return getattr(self.result, attr)

    @property
    def features(self):
        """The reference feature layer (see :func:`features`)."""
        return features(self.result)

    def heading(self, style="unicode") -> str:
        """``resnet50: input 3×224×224, 187 layers, 25.6 M parameters, 4.09 G MACs``."""
        r = self.result
        times = "x" if style == "text" else "×"
        size = "unknown size" if r.input_size is None else times.join(
            value(v, style, max_chars=12) for v in ([] if r.in_channels is None else [r.in_channels])
            + list(r.input_size))
        parts = [f"input {size}", f"{len(r.layers)} layers"]
        if r.params is not None:
            parts.append(f"{si(r.params, style=style)} parameters")
        if r.macs is not None:
            parts.append(f"{si(r.macs, style=style)} MACs")
        return f"{self.name}: " + ", ".join(parts)

    def _table(self, style, max_chars):
        kinds = {"layer": "label", "type": "label", "output": "value", "rf": "area", "params": "si",
                 "macs": "si"}
        cols = [Column(c, kinds.get(c, "value"), header=_HEAD[c], fn=_shape_text if c == "output" else None)
                for c in self.columns]
        rows = []
        for row in _tree(self.result, self.depth):
            cells = []
            for c in self.columns:
                if c == "layer":
                    cells.append("  " * row.level + row.label)
                elif c == "type":
                    cells.append(row.type)
                else:
                    cells.append(_cell(c, row.out, row.params, row.macs))
            rows.append(cells)
        n = len(rows)
        r = self.result
        total = []
        for c in self.columns:
            total.append("total" if c == "layer" else "" if c == "type" else _cell(c, r, r.params, r.macs))
        rows.append(total)
        rules = [n]
        f = self.features
        if f is not None:
            extra = []
            for c in self.columns:
                if c == "layer":
                    extra.append("features")
                elif c == "type":
                    extra.append(f.name)
                elif c in ("params", "macs"):
                    extra.append("")
                else:
                    extra.append(_cell(c, f, None, None))
            rows.append(extra)
        return Table(cols, rows, rules=rules, max_chars=max_chars)

    def table(self, style="unicode") -> str:
        """The table alone in ``style`` (``unicode``, ``text``, ``markdown``, ``latex``, ``html``);
        text tables are kept within ``width`` columns by abbreviating long values."""
        return self._table(style, 24).render(style, width=self.width)

    def text(self, style="unicode") -> str:
        """Heading, table and the features line."""
        parts = [self.heading(style), self.table(style)]
        line = features_line(self.result, style)
        if line:
            parts.append(line)
        return "\n".join(parts)

    def __str__(self):
        return self.text()

    def __repr__(self):
        return self.text()

    def html(self) -> str:
        """The summary as HTML (what notebooks show)."""
        from .html import summary_html

        return summary_html(self)

    def markdown(self) -> str:
        """The summary as Markdown: heading, table and the features line."""
        line = features_line(self.result, "markdown")
        return f"**{self.heading('markdown')}**\n\n{self.table('markdown')}" + (f"\n\n{line}" if line else "")

    def _repr_html_(self):
        return self.html()

    def _repr_markdown_(self):
        return self.markdown()


def summary(model, input_size=None, *, in_channels=None, ndim=None, depth=2, columns=None,
            name=None) -> Summary:
    """Analyse ``model`` and return its :class:`Summary` (print it for the table).

    Args:
        model (object): an rfsym network, a :class:`~rfsym.engine.Result`, a zoo name or one-line spec,
            a ``torch.nn.Module``, a Keras model or an ONNX model (see the module docstring).
        input_size (int | tuple | None): the input: ``(C, H, W)`` or ``(N, C, H, W)`` (required for PyTorch modules),
            or the spatial size alone (``224`` or ``(224, 224)``) with ``in_channels``. Zoo
            entries default to their own size.
        in_channels (int | None): input channels, when ``input_size`` is spatial only.
        ndim (int | None): spatial axes (inferred from the network or the size otherwise).
        depth (int | None): how deep the module tree is shown (2: ``layer1``, ``layer1.0``); None for every
            layer. Containers show the totals of the layers they hold.
        columns (tuple[str, ...] | None): which of :data:`COLUMNS` to show (default: layer, type, output, rf, jump,
            params, macs).
        name (str | None): the name in the heading (default: the network's or class name).

    Returns:
        A :class:`Summary`; ``summary.result`` is the :class:`~rfsym.engine.Result`.

    Raises:
        SizeError: a PyTorch module without a ``(C, H, W)`` or ``(N, C, H, W)`` input size.
        RfsymError: an unknown column or a model rfsym cannot read.

    >>> s = summary("resnet18", depth=1)
    >>> s.features.name, s.features.rf, s.rf
    ('layer4.1.relu', 435, 627)
    >>> summary("conv(3, c=8) x2", (3, 8, 8), columns=("layer", "output", "rf")).table().splitlines()[-1]
    'total   8×4×4   5'
    """
    result, default_name = load(model, input_size, in_channels=in_channels, ndim=ndim)
    return Summary(result, name or default_name, depth=depth, columns=columns)
