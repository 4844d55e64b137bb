r"""Networks from text: the one-line spec and YAML architecture files.

**One line** (for the shell). Layers are separated by commas; a word names a layer, digits
after it give the kernel size (``conv3``, ``conv3x5`` for an anisotropic 3×5 kernel,
``maxpool2``), ``/s`` the stride (``conv3/2``); arguments go in parentheses, positionally in
the layer's own order or by keyword (``conv(k, s=2, p=1, d=2, c=64)``); any number may be a
symbol or an expression (``conv(2*k+1)``). ``x n`` or ``* n`` repeats the item before it,
``n`` a number or a symbol (inside the repeated item the symbol ``i`` is the repetition index
0, 1, ..., n - 1: ``conv(2, d=2^i) x 10`` is WaveNet's dilation stack); ``(...)`` or ``[...]`` group layers; ``res(body | shortcut)`` is a
residual block and ``cat(a | b | c)`` concatenates branches:

>>> from rfsym.spec import parse_line
>>> parse_line("conv3 x3")
Sequential(Conv(kernel_size=3), Conv(kernel_size=3), Conv(kernel_size=3))
>>> parse_line("conv(k, s=2), maxpool2")
Sequential(Conv(kernel_size=k, stride=2), MaxPool(kernel_size=2, stride=2))
>>> parse_line("conv7/2(p=3, c=64), bn, relu, maxpool(3, 2, 1)")
Sequential(Conv(kernel_size=7, stride=2, padding=3, out_channels=64), BatchNorm(), ReLU(), MaxPool(kernel_size=3, stride=2, padding=1))

Defaults are PyTorch's (a convolution's padding is 0); ``p=same``, ``p=valid`` and ``p=SAME``
(TensorFlow) select padding modes. Keyword aliases: ``k`` kernel_size, ``s`` stride, ``p``
padding, ``d`` dilation, ``g`` groups, ``c``/``out`` out_channels, ``in`` in_channels, ``op``
output_padding, ``scale`` scale_factor. Layer words (case-insensitive) are listed in
:data:`WORDS`.

**Architecture files** (YAML, needs PyYAML). The same layers, one per list item, either as a
one-line string or as ``word: {parameters}`` (``word: value`` sets the first parameter)::

    name: small
    input_size: 64          # optional defaults for analyze
    in_channels: 3
    layers:
      - conv: {kernel_size: k, stride: 2, padding: 1, out_channels: C, name: stem}
      - relu
      - repeat:
          n: N
          layers: ["conv3(p=1)", relu]
      - residual:
          body: [conv3(p=1), relu, conv3(p=1)]
          shortcut: [conv1]            # optional, identity by default
      - concat: [[conv1], [conv3(p=1)], [maxpool(3, 1, 1)]]

Errors name the file, the line and the item, and suggest the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Any

import sympy as sp

from . import layers as L
from .errors import RfsymError, SpecError
from .expr import INDEX, MAX_BITS, Ident, Lexer, SymbolTable, ValueParser, parse_value
from .symbols import as_expr

__all__ = ["parse_line", "load", "loads", "Spec", "WORDS", "ALIASES", "INDEX", "YAML_TAGS", "MAX_YAML_NODES"]

#: layer words of the one-line form and of YAML files (lower case) -> rfsym class name
WORDS = {
    "conv": "Conv", "convt": "ConvTranspose", "convtranspose": "ConvTranspose", "deconv": "ConvTranspose",
    "maxpool": "MaxPool", "pool": "MaxPool", "avgpool": "AvgPool",
    "gap": "GlobalAvgPool", "globalavgpool": "GlobalAvgPool", "gmp": "GlobalMaxPool",
    "globalmaxpool": "GlobalMaxPool", "adaptiveavgpool": "AdaptiveAvgPool", "adaptivemaxpool": "AdaptiveMaxPool",
    "bn": "BatchNorm", "batchnorm": "BatchNorm", "linear": "Linear", "fc": "Linear",
    "flatten": "Flatten", "up": "Upsample", "upsample": "Upsample",
    "identity": "Identity", "id": "Identity", "relu": "ReLU", "relu6": "ReLU6", "leakyrelu": "LeakyReLU",
    "gelu": "GELU", "silu": "SiLU", "swish": "SiLU", "sigmoid": "Sigmoid", "tanh": "Tanh",
    "hardswish": "Hardswish", "hardsigmoid": "Hardsigmoid", "elu": "ELU", "softmax": "Softmax",
    "dropout": "Dropout",
}
#: block words: residual, concatenation, repetition, named group
BLOCKS = {"res": "Residual", "residual": "Residual", "cat": "Concat", "concat": "Concat",
          "repeat": "Repeat", "seq": "Sequential", "sequential": "Sequential"}

#: short keyword aliases -> parameter names
ALIASES = {"k": "kernel_size", "kernel": "kernel_size", "s": "stride", "p": "padding", "pad": "padding",
           "d": "dilation", "dil": "dilation", "g": "groups", "c": "out_channels", "out": "out_channels",
           "cout": "out_channels", "in": "in_channels", "cin": "in_channels", "op": "output_padding",
           "scale": "scale_factor", "ceil": "ceil_mode"}

_BOOL_PARAMS = {"bias", "ceil_mode", "align_corners"}
_STRING_PARAMS = {"mode", "name"}
_PAD_MODES = {"same", "valid", "tf_same", "SAME", "VALID"}
_TRUE, _FALSE = {"true", "True", "yes", "on"}, {"false", "False", "no", "off"}
_MAX_UNROLL = 1000   # larger integer repeats become Repeat blocks
_MAX_DEPTH = 50      # nesting of YAML blocks
#: deepest nesting of groups and blocks in the one-line form
MAX_NESTING_DEPTH = 1000


def _suggest(word, options):
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _cls(class_name, where):
    """The rfsym class for a name."""
    import rfsym

    cls = getattr(rfsym, class_name, None) or getattr(L, class_name, None)
    if cls is None:
        raise SpecError(f"{where}: {class_name} is not available in this version of rfsym")
    return cls


def _fields(cls):
    """Parameter names of a layer class, in positional order (``name`` is keyword-only)."""
    if not dataclasses.is_dataclass(cls):
        return []
    return [f.name for f in dataclasses.fields(cls) if f.name not in ("name", "layers") and f.init]


# --------------------------------------------------------------------------- values
# --------------------------------------------------------------------------- layer construction
def _convert(param, raw, syms, where):
    """A parameter value from the one-line form or YAML into what the layer class takes."""
    if param in _BOOL_PARAMS:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, Ident) and raw.name in _TRUE | _FALSE:
            return raw.name in _TRUE
        if isinstance(raw, str) and raw in _TRUE | _FALSE:
            return raw in _TRUE
        if isinstance(raw, (int, sp.Integer)) and int(raw) in (0, 1):
            return bool(int(raw))
        raise SpecError(f"{where}: {param} must be true or false, got {_show(raw)}")
    if param in _STRING_PARAMS:
        if isinstance(raw, Ident):
            return raw.name
        if isinstance(raw, str):
            return raw
        if param == "name" and isinstance(raw, (int, sp.Integer)) and not isinstance(raw, bool):
            return str(raw)
        raise SpecError(f"{where}: {param} must be a word, got {_show(raw)}")
    if param == "padding":
        if isinstance(raw, Ident) and raw.name in _PAD_MODES:
            return raw.name
        if isinstance(raw, str) and raw.strip() in _PAD_MODES:
            return raw.strip()
    return _number(raw, syms, where, param)


def _number(raw, syms, where, param):
    if isinstance(raw, bool):
        raise SpecError(f"{where}: {param} must be a number or an expression, got {_show(raw)}")
    if isinstance(raw, Ident):
        return syms(raw.name)
    if isinstance(raw, (list, tuple)):
        if not raw:
            raise SpecError(f"{where}: {param} must not be an empty list")
        return tuple(_number(x, syms, where, param) for x in raw)
    if isinstance(raw, int):
        if raw.bit_length() > MAX_BITS:
            raise SpecError(f"{where}: {param}: a number of more than {MAX_BITS} bits is not a layer parameter")
        return sp.Integer(raw)
    if isinstance(raw, float):
        if raw.is_integer() and abs(raw) < 2**53:
            return sp.Integer(int(raw))
        raise SpecError(f"{where}: {param} must be an integer, got {raw!r}")
    if isinstance(raw, sp.Basic):
        return raw
    if isinstance(raw, str):
        return parse_value(raw, syms, f"{where}: {param}: ")
    raise SpecError(f"{where}: {param} must be a number or an expression, got {_show(raw)}")


def _show(raw):
    if isinstance(raw, Ident):
        return raw.name
    return repr(raw)


def _canonical(key, fields, where, kind):
    if not isinstance(key, str):
        raise SpecError(f"{where}: parameter names must be words, got {key!r}")
    name = ALIASES.get(key, key)
    if name == "name" or name in fields:
        return name
    valid = set(fields) | {"name"}
    raise SpecError(f"{where}: {kind} has no parameter {key!r}{_suggest(key, valid | set(ALIASES))} "
                    f"(valid: {', '.join(fields + ['name'])})")


def _build_layer(word, positional, keywords, syms, where):
    """Construct the layer a word names from positional and keyword raw values."""
    class_name = WORDS[word]
    cls = _cls(class_name, where)
    fields = _fields(cls)
    kind = f"{word} ({class_name})" if word != class_name.lower() else class_name
    if len(positional) > len(fields):
        raise SpecError(f"{where}: {kind} takes at most {len(fields)} positional value(s) "
                        f"({', '.join(fields) or 'none'}), got {len(positional)}")
    args = {}
    for param, raw in zip(fields, positional):
        args[param] = _convert(param, raw, syms, where)
    for key, raw in keywords:
        param = _canonical(key, fields, where, kind)
        if param in args:
            raise SpecError(f"{where}: {kind} got {param} twice")
        args[param] = _convert(param, raw, syms, where)
    try:
        return cls(**args)
    except RfsymError as err:
        raise SpecError(f"{where}: {err}") from None
    except TypeError as err:
        missing = re.findall(r"'(\w+)'", str(err))
        raise SpecError(f"{where}: {kind} needs {' and '.join(missing) or 'other arguments'}") from None


def _flat(items):
    """Splice unnamed Sequentials into their parent (groups only group)."""
    out = []
    for item in items:
        if isinstance(item, L.Sequential) and item.name is None:
            out.extend(item.layers)
        else:
            out.append(item)
    return out


def _sequence(items, name=None):
    items = _flat(items)
    if len(items) == 1 and name is None:
        return items[0]
    return L.Sequential(*items, name=name)


def _count(layer) -> int:
    """Leaf layers of ``layer`` once unrolled (a Repeat of a symbolic count counts one copy),
    walked without recursion."""
    total, stack = 0, [(layer, 1)]
    while stack:
        node, times = stack.pop()
        children = L.sublayers(node)
        if not children:
            total += times
            continue
        n = node.n if isinstance(node, L.Repeat) else None
        factor = int(n) if isinstance(n, sp.Integer) else 1
        stack.extend((c, times * factor) for c in children)
    return total


def _repeat(item, n, where):
    if isinstance(n, tuple) or (isinstance(n, sp.Basic) and n.is_number and not n.is_Integer):
        raise SpecError(f"{where}: a repeat count must be a positive integer or a symbol, got {n}")
    try:
        n = as_expr(n, "n", minimum=None)
    except RfsymError as err:
        raise SpecError(f"{where}: a repeat count must be a positive integer or a symbol: {err}") from None
    if n.is_number and n < 1:
        raise SpecError(f"{where}: a repeat count must be a positive integer, got {n}")
    indexed = INDEX in item.free_symbols
    if n.is_Integer and int(n) * _count(item) <= _MAX_UNROLL:
        try:
            return _sequence([item.subs({INDEX: k}) if indexed else item for k in range(int(n))])
        except RfsymError as err:
            raise SpecError(f"{where}: {err}") from None
    repeat = _cls("Repeat", where)
    try:
        return repeat(item, n, INDEX)
    except RfsymError as err:
        raise SpecError(f"{where}: {err}") from None


def _block(kind, branches, name, where):
    """Residual / Concat / Repeat / Sequential from parsed branches (each a list of layers)."""
    seqs = [_sequence(b) if b else L.Identity() for b in branches]
    try:
        if kind == "Sequential":
            if len(branches) != 1:
                raise SpecError(f"{where}: takes one list of layers, not branches separated by '|'")
            return L.Sequential(*branches[0], name=name)
        if kind == "Residual":
            if len(seqs) > 2:
                raise SpecError(f"{where}: takes a body and optionally a shortcut "
                                f"(body | shortcut), got {len(seqs)} branches")
            cls = _cls("Residual", where)
            return cls(*seqs, name=name)
        if kind == "Concat":
            cls = _cls("Concat", where)
            return cls(*seqs, name=name)
    except SpecError:
        raise
    except RfsymError as err:
        raise SpecError(f"{where}: {err}") from None
    raise SpecError(f"{where}: unknown block {kind}")  # pragma: no cover


# --------------------------------------------------------------------------- one-line form
class _Frame:
    """An open sequence of the one-line parser: the top level, a group or a block."""

    __slots__ = ("kind", "data", "depth", "items", "kwargs", "branches", "earlier")

    def __init__(self, kind, data, depth):
        self.kind, self.data, self.depth = kind, data, depth
        self.items, self.kwargs, self.branches, self.earlier = [], [], [], []  # earlier: kwargs of past branches


def _sequence_checked(items, name):
    try:
        return _sequence(items, name) if name else _sequence(items)
    except RfsymError as err:
        raise SpecError(str(err)) from None


class _LineParser:
    def __init__(self, text, syms, origin=""):
        self.lex = Lexer(text, origin)
        self.syms = syms
        self.values = ValueParser(self.lex, syms)

    def parse(self):
        if self.lex.peek()[0] == "end":
            self.lex.fail("the spec is empty; try for example 'conv3 x3'")
        items, kwargs = self.seq()
        if kwargs:
            self.lex.fail("name=... belongs inside a block, as in res(conv3, conv3, name=block1)",
                          kwargs[0][2])
        kind, val, col = self.lex.peek()
        if kind != "end":
            self.lex.fail(f"unexpected {val!r}; separate layers with ','", col)
        return _sequence(items)

    def where(self, col=None):
        col = self.lex.peek()[2] if col is None else col
        return f"{self.lex.origin}column {col}"

    def seq(self):
        """Items separated by ',' (or ';' or '->'), plus trailing ``key=value`` pairs; groups
        ``(...)``/``[...]`` and blocks ``res(... | ...)`` nest up to :data:`MAX_NESTING_DEPTH`
        levels, parsed with an explicit stack (no recursion)."""
        lex = self.lex
        top = _Frame("top", None, 0)
        stack = [top]
        while True:
            frame = stack[-1]
            kind, val, col = lex.peek()
            node = None
            if kind == "id" and lex.peek(1)[:2] == ("op", "="):
                lex.next()
                lex.next()
                frame.kwargs.append((val, self.values.value(), col))
            else:
                if frame.kwargs:
                    lex.fail("layers must come before key=value pairs", col)
                if frame.depth > MAX_NESTING_DEPTH:
                    lex.fail(f"too deeply nested (more than {MAX_NESTING_DEPTH} levels of groups and blocks)")
                if kind == "op" and val in "([":
                    lex.next()
                    stack.append(_Frame("group", (")" if val == "(" else "]", val), frame.depth + 1))
                    continue
                if kind != "id":
                    got = "the end of the spec" if kind == "end" else repr(val)
                    lex.fail(f"expected a layer (for example conv3, maxpool2, relu), got {got}", col)
                lex.next()
                if val.lower() in BLOCKS:
                    word = val.lower()
                    if BLOCKS[word] == "Repeat":
                        lex.fail("write repeats as 'item x n' or 'item * n', for example (conv3, relu) x n", col)
                    lex.expect("(", f"after {word}")
                    stack.append(_Frame("block", (word, col), frame.depth + 1))
                    continue
                node = self.leaf(val, col)
            while True:  # the end of an item: repeats; the end of a sequence: close its frame
                if node is not None:
                    frame.items.append(self.repeats(node))
                    node = None
                if lex.accept(",") or lex.accept(";") or lex.accept("->"):
                    break
                if frame.kind == "top":
                    return frame.items, frame.kwargs
                if frame.kind == "block" and lex.accept("|"):
                    frame.branches.append(frame.items)
                    frame.earlier += frame.kwargs
                    frame.items, frame.kwargs = [], []
                    break
                node = self.close(frame)
                stack.pop()
                frame = stack[-1]

    def close(self, frame):
        """The layer a finished group or block frame stands for."""
        if frame.kind == "group":
            close, opened = frame.data
            self.lex.expect(close, f"to close {opened!r}")
            name = self._name(frame.kwargs, "a group")
            col = self.lex.peek()[2]
            return self.located(col, _sequence_checked, frame.items, name)
        word, col = frame.data
        self.lex.expect(")", f"to close {word}(")
        name = self._name(frame.earlier + frame.kwargs, word)
        return self.located(col, _block, BLOCKS[word], frame.branches + [frame.items], name, word)

    def repeats(self, node):
        """``item x n`` / ``item * n`` / ``item x3`` after an item."""
        while True:
            kind, val, col = self.lex.peek()
            m = re.fullmatch(r"x(\d+)", val) if kind == "id" else None
            if kind == "op" and val == "*" or kind == "id" and val == "x":
                self.lex.next()
                count = self.values.power()
            elif m:
                self.lex.next()
                count = sp.Integer(int(m.group(1)))
            else:
                return node
            if isinstance(count, Ident):  # pragma: no cover - power() never returns one
                count = self.syms(count.name)
            node = self.located(col, _repeat, node, count, f"x {count}")

    def leaf(self, val, col):
        """A layer word (``conv3x5/2``) with its arguments."""
        token = val
        word, shape, stride = self._split(val, col)
        positional, keywords = [], []
        if shape is not None:
            positional.append(shape)
        if stride is not None:
            keywords.append(("stride", stride))
        if self.lex.accept("("):
            p, k = self.args()
            if shape is not None and p:
                self.lex.fail(f"{val} already gives the kernel size; pass the rest by keyword, "
                              f"as in {val}(s=2)", col)
            positional += p
            keywords += k
        return self.located(col, _build_layer, word, positional, keywords, self.syms, token)

    def located(self, col, fn, *args):
        """Run ``fn``; its SpecError is shown under the spec with a caret at ``col``."""
        try:
            return fn(*args)
        except SpecError as err:
            self.lex.fail(str(err), col)

    def _split(self, token, col):
        """``conv3x5/2`` -> (word, shape, stride); the stride comes as '/' after the word."""
        lower = token.lower()
        if lower in WORDS:
            word, shape = lower, None
        else:
            m = re.fullmatch(r"([a-z_]+?)(\d+(?:x\d+)*)", lower)
            if not m or m.group(1) not in WORDS:
                base = m.group(1) if m else lower
                self.lex.fail(f"unknown layer {token!r}{_suggest(base, set(WORDS) | set(BLOCKS))}", col)
            word = m.group(1)
            dims = tuple(sp.Integer(int(x)) for x in m.group(2).split("x"))
            shape = dims[0] if len(dims) == 1 else dims
        stride = None
        if shape is not None and self.lex.peek()[:2] == ("op", "/"):
            self.lex.next()
            kind, v, c = self.lex.next()
            if kind != "num":
                self.lex.fail("expected the stride (a number) after '/'", c)
            stride = sp.Integer(int(v))
        return word, shape, stride

    def args(self):
        positional, keywords = [], []
        if self.lex.accept(")"):
            return positional, keywords
        while True:
            kind, val, col = self.lex.peek()
            if kind == "id" and self.lex.peek(1)[:2] == ("op", "="):
                self.lex.next()
                self.lex.next()
                if any(k == val for k, _ in keywords):
                    self.lex.fail(f"{val} given twice", col)
                keywords.append((val, self.values.value()))
            else:
                if keywords:
                    self.lex.fail("positional values must come before keyword ones", col)
                positional.append(self.values.value())
            if self.lex.accept(")"):
                return positional, keywords
            self.lex.expect(",", "between arguments")

    def _name(self, kwargs, what):
        name = None
        for key, value, col in kwargs:
            if key != "name":
                self.lex.fail(f"{what} takes only name=..., got {key}={_show(value)}", col)
            name = _convert("name", value, self.syms, self.where(col))
        return name


def parse_line(text: str, *, symbols: dict | None = None, origin: str = "") -> L.Layer:
    """Parse the one-line form into a layer (a :class:`~rfsym.layers.Sequential` for several).

    ``symbols`` maps names to the sympy symbols to use (new positive-integer symbols otherwise).

    >>> parse_line("[conv3, relu] x 2, maxpool(3, s=2, p=1)")
    Sequential(Conv(kernel_size=3), ReLU(), Conv(kernel_size=3), ReLU(), MaxPool(kernel_size=3, stride=2, padding=1))
    """
    if not isinstance(text, str):
        raise SpecError(f"a spec must be text, got {type(text).__name__}")
    syms = SymbolTable()
    if symbols:
        syms.table.update({str(k): v for k, v in symbols.items()})
    return _LineParser(text, syms, origin).parse()


# --------------------------------------------------------------------------- YAML files
@dataclass
class Spec:
    """A network read from a file, with the defaults the file gives."""

    network: L.Layer
    name: str | None = None
    input_size: Any = None
    in_channels: Any = None
    ndim: int | None = None
    description: str | None = None
    symbols: dict = dataclasses.field(default_factory=dict)


_TOP_KEYS = ("name", "description", "input_size", "in_channels", "ndim", "layers")
_BLOCK_KEYS = {"Repeat": ("n", "layers", "name"), "Residual": ("body", "shortcut", "name"),
               "Concat": ("branches", "name"), "Sequential": ("layers", "name")}


class _YamlReader:
    """Walks a PyYAML node tree so every error knows its line."""

    def __init__(self, origin, syms):
        self.origin = origin
        self.syms = syms

    def at(self, node, path):
        line = node.start_mark.line + 1
        return f"{self.origin}:{line}: {path}" if path else f"{self.origin}:{line}"

    def scalar(self, node):
        """A plain value (number, word, bool, list of values) as YAML's safe loader reads it."""
        import yaml

        if isinstance(node, yaml.ScalarNode):
            try:
                return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, OverflowError) as err:
                raise SpecError(f"{self.at(node, '')}: cannot read {node.value!r}: {err}") from None
        if isinstance(node, yaml.SequenceNode):
            return [self.scalar(x) for x in node.value]
        raise SpecError(f"{self.at(node, '')}: expected a value, got a mapping")

    def mapping(self, node, path, valid, what):
        """Keys (checked against ``valid``, aliases allowed) -> (canonical key, value node)."""
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise SpecError(f"{self.at(node, path)}: {what} must be a mapping of key: value")
        out = {}
        for knode, vnode in node.value:
            key = knode.value if isinstance(knode, yaml.ScalarNode) else None
            if not isinstance(key, str) or not key:
                raise SpecError(f"{self.at(knode, path)}: keys must be words")
            canon = ALIASES.get(key, key) if key not in valid else key
            if canon not in valid:
                raise SpecError(f"{self.at(knode, path)}: unknown key {key!r} in {what}"
                                f"{_suggest(key, set(valid))} (valid: {', '.join(valid)})")
            if canon in out:
                raise SpecError(f"{self.at(knode, path)}: {key!r} given twice in {what}")
            out[canon] = vnode
        return out

    def layers(self, node, path, depth=0):
        import yaml

        if depth > _MAX_DEPTH:
            raise SpecError(f"{self.at(node, path)}: too deeply nested")
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":str"):
            return [self.layer(node, path, depth)]
        if not isinstance(node, yaml.SequenceNode):
            raise SpecError(f"{self.at(node, path)}: expected a list of layers")
        return [self.layer(item, f"{path}[{i}]", depth) for i, item in enumerate(node.value)]

    def layer(self, node, path, depth):
        import yaml

        if isinstance(node, yaml.ScalarNode):
            if not node.tag.endswith(":str") or not node.value.strip():
                raise SpecError(f"{self.at(node, path)}: expected a layer, got {node.value!r}")
            return parse_line(node.value, symbols=self.syms.table, origin=f"{self.at(node, path)}: ")
        if isinstance(node, yaml.SequenceNode):
            return _sequence(self.layers(node, path, depth + 1)) if node.value else L.Identity()
        if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
            n = len(node.value) if isinstance(node, yaml.MappingNode) else 0
            raise SpecError(f"{self.at(node, path)}: a layer is 'word: parameters' with one word "
                            f"(for example 'conv: {{kernel_size: 3}}'), got {n} keys; "
                            "put name and other parameters inside the braces")
        knode, vnode = node.value[0]
        word = str(knode.value).lower() if isinstance(knode, yaml.ScalarNode) else ""
        where = self.at(knode, f"{path}.{knode.value}" if path else str(knode.value))
        if word in BLOCKS:
            return self.block(BLOCKS[word], vnode, where, f"{path}.{knode.value}", depth)
        if word not in WORDS:
            raise SpecError(f"{self.at(knode, path)}: unknown layer {knode.value!r}"
                            f"{_suggest(word, set(WORDS) | set(BLOCKS))}")
        if isinstance(vnode, yaml.MappingNode):
            cls = _cls(WORDS[word], where)
            fields = _fields(cls)
            entries = self.mapping(vnode, f"{path}.{knode.value}", tuple(fields) + ("name",),
                                   f"{word} ({WORDS[word]})")
            keywords = [(k, self.scalar(v)) for k, v in entries.items()]
            return _build_layer(word, [], keywords, self.syms, where)
        if isinstance(vnode, yaml.ScalarNode) and vnode.tag.endswith(":null"):
            return _build_layer(word, [], [], self.syms, where)
        value = self.scalar(vnode)
        positional = value if isinstance(vnode, yaml.SequenceNode) else [value]
        return _build_layer(word, positional, [], self.syms, where)

    def block(self, kind, vnode, where, path, depth):
        import yaml

        if isinstance(vnode, yaml.SequenceNode):
            if kind == "Repeat":
                raise SpecError(f"{where}: repeat needs a mapping with n and layers")
            if kind == "Concat":
                branches = [self.layers(b, f"{path}[{i}]", depth + 1) for i, b in enumerate(vnode.value)]
                return _block(kind, branches, None, where)
            return _block(kind, [self.layers(vnode, path, depth + 1)], None, where)
        keys = _BLOCK_KEYS[kind]
        entries = self.mapping(vnode, path, keys, kind.lower())
        name = None
        if "name" in entries:
            name = _convert("name", self.scalar(entries["name"]), self.syms, where)
        first = keys[0]
        if first not in entries:
            raise SpecError(f"{where}: {kind.lower()} needs {first}")
        if kind == "Repeat":
            if "layers" not in entries:
                raise SpecError(f"{where}: repeat needs layers")
            body = _sequence(self.layers(entries["layers"], f"{path}.layers", depth + 1))
            n = _number(self.scalar(entries["n"]), self.syms, self.at(entries["n"], f"{path}.n"), "n")
            item = _repeat(body, n, where)
            if name is None:
                return item
            return L.Sequential(*(item.layers if isinstance(item, L.Sequential) else (item,)), name=name)
        if kind == "Concat":
            node = entries["branches"]
            if not isinstance(node, yaml.SequenceNode):
                raise SpecError(f"{self.at(node, path)}: branches must be a list of layer lists")
            branches = [self.layers(b, f"{path}.branches[{i}]", depth + 1) for i, b in enumerate(node.value)]
            return _block(kind, branches, name, where)
        if kind == "Residual":
            branches = [self.layers(entries["body"], f"{path}.body", depth + 1)]
            if "shortcut" in entries:
                branches.append(self.layers(entries["shortcut"], f"{path}.shortcut", depth + 1))
            return _block(kind, branches, name, where)
        return _block(kind, [self.layers(entries["layers"], f"{path}.layers", depth + 1)], name, where)

    def top(self, node):
        import yaml

        if isinstance(node, yaml.SequenceNode):
            if not node.value:
                raise SpecError(f"{self.at(node, '')}: the list of layers is empty")
            return Spec(_sequence(self.layers(node, "layers")))
        entries = self.mapping(node, "", _TOP_KEYS, "an architecture file")
        if "layers" not in entries:
            raise SpecError(f"{self.at(node, '')}: an architecture file needs 'layers' (a list of layers)")
        items = self.layers(entries["layers"], "layers")
        if not items:
            raise SpecError(f"{self.at(entries['layers'], 'layers')}: the list of layers is empty")
        spec = Spec(_sequence(items))
        for key in ("name", "description"):
            if key in entries:
                setattr(spec, key, _convert("name", self.scalar(entries[key]), self.syms,
                                              self.at(entries[key], key)))
        if "input_size" in entries:
            spec.input_size = _number(self.scalar(entries["input_size"]), self.syms,
                                      self.at(entries["input_size"], "input_size"), "input_size")
        if "in_channels" in entries:
            spec.in_channels = _number(self.scalar(entries["in_channels"]), self.syms,
                                       self.at(entries["in_channels"], "in_channels"), "in_channels")
        if "ndim" in entries:
            nd = self.scalar(entries["ndim"])
            if isinstance(nd, bool) or nd not in (1, 2, 3):
                raise SpecError(f"{self.at(entries['ndim'], 'ndim')}: ndim must be 1, 2 or 3, got {nd!r}")
            spec.ndim = nd
        return spec


def loads(text: str, *, origin: str = "<spec>") -> Spec:
    """Read an architecture from YAML text (see the module docstring for the format).

    >>> spec = loads('''
    ... name: two convs
    ... layers:
    ...   - conv: {kernel_size: k, stride: s}
    ...   - conv3
    ... ''')
    >>> spec.name, spec.network
    ('two convs', Sequential(Conv(kernel_size=k, stride=s), Conv(kernel_size=3)))
    """
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the environment
        raise SpecError("reading architecture files needs PyYAML: pip install 'rfsym[yaml]'") from None
    if not isinstance(text, str):
        raise SpecError(f"a spec must be text, got {type(text).__name__}")
    try:
        node = yaml.compose(text, Loader=_loader())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{origin}{line}: malformed YAML: {problem}") from None
    except RecursionError:
        raise SpecError(f"{origin}: too deeply nested") from None
    if node is None:
        raise SpecError(f"{origin}: the file is empty; it needs 'layers' (a list of layers)")
    size = _expanded_size(node)
    if size > MAX_YAML_NODES:
        raise SpecError(f"{origin}: the file expands to {size if size < 10**15 else 'more than 10^15'} "
                        f"YAML nodes (aliases included); at most {MAX_YAML_NODES} are read")
    syms = SymbolTable()
    reader = _YamlReader(origin, syms)
    if isinstance(node, yaml.ScalarNode):
        if node.tag.endswith(":str"):
            spec = Spec(parse_line(node.value, symbols=syms.table, origin=f"{origin}:1: "))
        else:
            raise SpecError(f"{origin}:1: expected a mapping with 'layers' or a list of layers")
    else:
        spec = reader.top(node)
    spec.symbols = dict(syms.table)
    return spec


#: YAML tags an architecture file may use (plain values, lists and mappings); any other, such as
#: ``!!python/object``, is refused
YAML_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map",
                                                                 "timestamp", "merge"))
#: largest number of YAML nodes a file may expand to, each alias counting its whole value again
MAX_YAML_NODES = 100_000
_LOADER = []


def _loader():
    """PyYAML's SafeLoader, refusing every tag outside :data:`YAML_TAGS` as it composes."""
    if not _LOADER:
        import yaml

        class Loader(yaml.SafeLoader):
            def compose_node(self, parent, index):
                node = super().compose_node(parent, index)
                if node.tag not in YAML_TAGS:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the tag {node.tag!r} is not allowed (architecture files hold "
                        "plain values, lists and mappings)", node.start_mark)
                return node

        _LOADER.append(Loader)
    return _LOADER[0]


def _expanded_size(root) -> int:
    """Nodes of a composed YAML document once aliases are expanded (iterative; shared nodes are
    counted once per reference, computed once)."""
    sizes: dict = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = [x for pair in node.value for x in (pair if isinstance(pair, tuple) else (pair,))] \
            if isinstance(node.value, list) else []
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
    return sizes[id(root)]


def load(path) -> Spec:
    """Read an architecture file (YAML); errors name the file and line."""
    import os

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read: {err}") from None
    spec = loads(text, origin=os.fspath(path))
    if spec.name is None:
        spec.name = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return spec
