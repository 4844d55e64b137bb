"""The ``rfsym`` command line.

Every subcommand takes networks as a zoo name (``resnet50``; family arguments in parentheses,
``vgg(depths=(1, 1, n, 2, 2))``), an architecture file (``net.yaml``) or a one-line spec
(``"conv(k, s=2) x n, maxpool2"``; see :mod:`rfsym.spec`). Errors print ``rfsym: error: ...``
on stderr and exit with status 2, without a traceback.

>>> main(["analyze", "conv3 x3", "--input", "8", "--format", "json"])  # doctest: +ELLIPSIS
{
  "name": "conv3 x3",
  "input_size": 8,
...
0
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

from .errors import RfsymError, SpecError

__all__ = ["main", "build_parser", "resolve", "Target", "Progress"]


# --------------------------------------------------------------------------- helpers
class Progress:
    """``verifying [3/40] resnet50`` on stderr (a tqdm bar), only when stderr is a terminal and
    the work takes longer than ``delay`` seconds."""

    def __init__(self, total, label="", stream=None, delay=1.0):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None
        self.delay = delay
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"{label}[0/{total}]", file=self.stream, delay=delay, leave=False,
                            dynamic_ncols=True, bar_format="{desc}")
        self.label, self.total = label, total

    def step(self, what=""):
        if self.bar is not None:
            self.bar.update()
            self.bar.set_description_str(f"{self.label}[{self.bar.n}/{self.total}] {what}", refresh=False)
            if self.bar.format_dict["elapsed"] >= self.delay:  # each step shows once past the delay
                self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclass
class Target:
    """A network named on the command line, with the defaults its source gives."""

    name: str
    network: Any
    input_size: Any = None
    in_channels: Any = None
    ndim: int | None = None
    features: str | None = None  # a zoo entry's reference feature layer

    def analyze(self, input_size="default", in_channels=None):
        from .engine import analyze

        size = self.input_size if isinstance(input_size, str) else input_size
        ch = self.in_channels if in_channels is None else in_channels
        result = analyze(self.network, input_size=size, ndim=self.ndim, in_channels=ch)
        if self.features is not None and any(lr.name == self.features for lr in result.layers):
            result.set_features(self.features)
        return result


_ZOO_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.S)


def _zoo():
    try:
        from . import zoo
    except ImportError:  # pragma: no cover - the zoo is part of the package
        return None
    return zoo


def _zoo_args(name, text):
    """``key=value, ...`` family arguments of a zoo call (values as in the one-line form)."""
    if text is None or not text.strip():
        return {}
    from .expr import Lexer, SymbolTable, ValueParser

    lex = Lexer(text, f"{name}(...): ")
    values = ValueParser(lex, SymbolTable())
    out = {}
    while True:
        kind, key, col = lex.next()
        if kind != "id" or not lex.accept("="):
            lex.fail("zoo arguments are key=value pairs", col)
        out[key] = _plain(values.value())
        if lex.peek()[0] == "end":
            return out
        lex.expect(",", "between arguments")


def _plain(value):
    """Bare words of a zoo call as symbols (``true``/``false`` as booleans), tuples kept."""
    import sympy as sp

    from .expr import Ident
    from .symbols import symbols

    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, Ident):
        if value.name in ("true", "True", "false", "False"):
            return value.name in ("true", "True")
        return symbols(value.name)
    if isinstance(value, sp.Integer):
        return int(value)
    return value


def resolve(text: str) -> Target:
    """A zoo name (with optional family arguments), an architecture file or a one-line spec.

    >>> resolve("conv3/2, conv3").network
    Sequential(Conv(kernel_size=3, stride=2), Conv(kernel_size=3))
    """
    if not isinstance(text, str) or not text.strip():
        raise SpecError("the network is empty: give a zoo name, a .yaml file or a spec such as 'conv3 x3'")
    if text.lower().endswith(".onnx"):  # an ONNX model: rfsym.from_onnx (extra onnx)
        from .onnx_import import read_onnx

        m = read_onnx(text)
        return Target(os.path.basename(text), m.graph, m.input_size, m.in_channels, len(m.input_shape) - 2)
    if text.endswith(".keras"):  # a saved Keras model (rfsym.keras_import)
        from .keras_import import load

        return Target(os.path.basename(text), *load(text))
    if text.endswith((".yaml", ".yml")) or os.path.isfile(text):
        from . import spec as specs

        s = specs.load(text)
        return Target(s.name or text, s.network, s.input_size, s.in_channels, s.ndim)
    zoo = _zoo()
    m = _ZOO_CALL.match(text)
    if zoo is not None and m and m.group(1) in zoo.names():
        entry = zoo.entry(m.group(1))
        net = zoo.get(m.group(1), **_zoo_args(m.group(1), m.group(2)))
        return Target(text.strip(), net, entry.input_size, entry.in_channels, entry.ndim, entry.features)
    from . import spec as specs  # (a zoo name needs no spec grammar)

    try:
        return Target(text.strip(), specs.parse_line(text))
    except SpecError:
        if m and "unknown layer" in str(sys.exc_info()[1]).splitlines()[0]:
            import difflib

            word = m.group(1)
            known = (zoo.names() if zoo else []) + sorted(specs.WORDS)
            close = difflib.get_close_matches(word.lower(), known, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise SpecError(f"unknown model or layer {word!r}{hint} ('rfsym zoo' lists the models; "
                            "'rfsym --help' shows the spec syntax)") from None
        raise


def _parse_size(text, what="--input"):
    """``224``, ``224x224``, ``n``, ``(h, w)``, ``none``."""
    from .expr import SymbolTable, parse_value

    if text is None:
        return "default"
    if text.strip().lower() in ("none", "-"):
        return None
    syms = SymbolTable()
    parts = re.split(r"\s*x\s*(?=[\w(])", text.strip()) if re.fullmatch(r"[\w()*+\-/ ]+(x[\w()*+\-/ ]+)+",
                                                                     text.strip()) else [text]
    if len(parts) == 1 and "," in text and not text.strip().startswith("("):
        parts = [f"({text})"]  # 224,160
    values = [parse_value(p, syms, f"{what} {text!r}: ") for p in parts]
    if len(values) == 1:
        return values[0]
    return tuple(values)


def _value(text, what):
    from .expr import SymbolTable, parse_value

    return None if text is None else parse_value(text, SymbolTable(), f"{what} {text!r}: ")


def _analyzed(args, target):
    return target.analyze(_parse_size(args.input), _value(getattr(args, "in_channels", None), "--in-channels"))


# --------------------------------------------------------------------------- subcommands
def _cmd_analyze(args) -> int:
    from . import report
    from .format import value
    from .summaries import features_line

    target = _substituted(resolve(args.network), args)
    result = _analyzed(args, target)
    if args.at:
        return _print_at(result.layer(args.at), target.name, args.format)
    if args.format == "json":
        print(report.to_json(result, name=target.name))
        return 0
    size = value(result.input_size, area=True)
    head = f"{target.name}: input size {size}, {len(result.layers):,} layers"
    line = features_line(result)
    if args.format == "text":
        print(head)
        print(report.table(result, target.name))
        if line:
            print(line)
        return 0
    if args.format == "markdown":
        print(f"**{head}**\n")
    else:
        print(f"% {head}")
    from . import latex

    print(latex.table(result, format=args.format))
    if line:
        print(f"\n{line}" if args.format == "markdown" else f"% {line}")
    return 0


def _print_at(lr, name, fmt):
    """``--at LAYER``: that layer's quantities (with respect to the network input)."""
    from .format import value
    from .report import jsonable

    attrs = ("rf", "jump", "start", "center", "effective_padding", "out_size", "out_channels")
    if fmt == "json":
        print(json.dumps({"name": name, "layer": lr.name, "type": lr.type,
                          **{a: jsonable(getattr(lr, a)) for a in attrs}}, indent=2))
        return 0
    if fmt in ("markdown", "latex"):
        raise SpecError("--at prints text or JSON (--format text or json)")
    print(f"{name} at {lr.name} ({lr.type}, layer {lr.index}):")
    width = max(len(a) for a in attrs)
    for a in attrs:
        print(f"  {a.replace('_', ' ').ljust(width)}  {value(getattr(lr, a), area=a in ('rf', 'out_size'))}")
    return 0


def _all_substituted(texts, args):
    """Several targets with ``--set``: each takes the names it has; every name must be used."""
    targets = [resolve(t) for t in texts]
    names = {s.name for t in targets for s in t.network.free_symbols}
    for pair in getattr(args, "set", None) or []:
        name = pair.partition("=")[0].strip()
        if name and name not in names:
            raise SpecError(f"--set {pair}: no network has a symbol {name!r} "
                            f"(their symbols: {', '.join(sorted(names)) or 'none'})")
    return [_substituted(t, args, strict=False) for t in targets]


def _substituted(target, args, strict=True):
    """The target with ``--set name=value`` substitutions applied to its network."""
    pairs = getattr(args, "set", None) or []
    if not pairs:
        return target
    import sympy as sp

    from .expr import SymbolTable, parse_value

    by_name = {s.name: s for s in target.network.free_symbols}
    mapping = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        name = name.strip()
        if not eq or not name:
            raise SpecError(f"--set takes name=value, got {pair!r}")
        if name not in by_name and eq and not strict:
            continue
        if name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise SpecError(f"--set {pair}: the network has no symbol {name!r} (its symbols: {known})")
        mapping[by_name[name]] = parse_value(value, SymbolTable(), f"--set {pair!r}: ")
    try:
        network = target.network.subs(mapping)
    except RfsymError as err:
        raise SpecError(f"--set {' '.join(pairs)}: {err}") from None
    sizes = target.input_size
    if sizes is not None:
        sizes = tuple(sp.sympify(x).subs(mapping) for x in sizes) if isinstance(sizes, tuple) \
            else sp.sympify(sizes).subs(mapping)
    return Target(target.name, network, sizes, target.in_channels, target.ndim, target.features)


_DERIVED = (("rf", "receptive field"), ("rf_min", "smallest receptive field"), ("jump", "jump (effective stride)"),
            ("start", "start"), ("center", "center"), ("effective_padding", "effective padding"),
            ("out_size", "output size"), ("params", "parameters"), ("macs", "MACs"))


def _symbolized(target, args):
    """The target with ``--symbol PATTERN.ATTR=VALUE`` rules and ``--depth PATH=N`` applied
    (:func:`rfsym.symbolize`); values are numbers or expressions, padding also ``keep``/``same``."""
    symbol, depth = getattr(args, "symbol", None) or [], getattr(args, "depth", None) or []
    if not symbol and not depth:
        return target
    from .symbolization import Rule, symbolize

    rules, depths = [], {}
    for flag, items in (("--symbol", symbol), ("--depth", depth)):
        for item in items:
            lhs, eq, value = item.partition("=")
            lhs, value = lhs.strip(), value.strip()
            pattern, dot, attr = lhs.rpartition(".")
            if not eq or not value or not lhs or (flag == "--symbol" and not (dot and pattern and attr)):
                shape = "PATTERN.ATTRIBUTE=VALUE" if flag == "--symbol" else "PATH=N"
                raise SpecError(f"{flag} takes {shape}, got {item!r}")
            if flag == "--depth":
                depths[lhs] = _value(value, flag)
            elif attr == "padding" and value in ("keep", "same", "valid", "tf_same", "SAME"):
                rules.append(Rule(pattern, padding=value))
            else:
                rules.append(Rule(pattern, **{attr: _value(value, flag)}))
    network = symbolize(target.network, rules, depth=depths, input_size=target.input_size,
                        in_channels=target.in_channels)
    return Target(target.name, network, target.input_size, target.in_channels, target.ndim)


def _cmd_derive(args) -> int:
    target = _substituted(_symbolized(resolve(args.network), args), args)
    result = target.analyze(_parse_size(args.input), _value(args.in_channels, "--in-channels"))
    if args.steps:
        from .steps import derivation as derive

        derivation = derive(result)
        if args.format == "json":
            raise SpecError("--steps writes text or LaTeX (--format text or latex), not JSON")
        print(derivation.latex() if args.format == "latex" else derivation.text())
        return 0
    values = {}
    for attr, _ in _DERIVED:
        v = getattr(result, attr)
        if attr == "rf_min" and v == result.rf:
            continue
        values[attr] = v
    if args.format == "json":
        from .report import jsonable

        print(json.dumps({"name": target.name, **{k: jsonable(v) for k, v in values.items()}}, indent=2))
        return 0
    syms = sorted(result.free_symbols, key=lambda s: s.name)
    if args.format == "latex":  # the structured (sum/product) form, then the closed form
        from .latex import to_latex

        print(to_latex(result, tuple(values), env=None).join([r"\begin{align*}" "\n", "\n" r"\end{align*}"]))
        return 0
    print(f"{target.name}" + (f"   (symbols: {', '.join(s.name for s in syms)})" if syms else ""))
    width = max(len(label) for _, label in _DERIVED)
    for attr, label in _DERIVED:
        if attr in values:
            print(f"  {label.ljust(width)}  {_text(values[attr], attr)}")
    return 0


_UNKNOWN = {"out_size": "needs --input", "params": "needs channel counts",
            "macs": "needs --input and channel counts"}


def _text(v, attr=""):
    from .format import value

    if v is None:
        return f"- (unknown: {_UNKNOWN.get(attr, 'not defined here')})"
    return value(v, area=attr in ("rf", "rf_min", "out_size"), max_chars=400)  # --format json: in full


def _torch_model(text):
    """``module.path:Name`` or ``file.py:Name``: the object, called when it is a class or function."""
    import importlib
    import importlib.util

    where, colon, attr = text.rpartition(":")
    if not colon or not where or not attr:
        raise SpecError(f"--torch takes MODULE:NAME or FILE.py:NAME, got {text!r}")
    try:
        if where.endswith(".py"):
            if not os.path.isfile(where):
                raise SpecError(f"--torch {text}: no such file {where!r}")
            spec = importlib.util.spec_from_file_location("rfsym_user_model", where)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as err:
        raise SpecError(f"--torch {text}: cannot import {where!r} ({err})") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise SpecError(f"--torch {text}: {where!r} has no attribute {attr!r}")
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "forward")):  # a class or a builder
        try:
            return obj()
        except TypeError as err:
            raise SpecError(f"--torch {text}: {attr} must build the model without arguments ({err})") from None
    return obj


def _cmd_summary(args) -> int:
    from .summaries import summary

    depth = None if args.depth == 0 else args.depth
    columns = None if not args.columns else tuple(c.strip() for c in args.columns.split(","))
    if args.torch:
        if args.network:
            raise SpecError("give either a network or --torch MODULE:NAME, not both")
        size = _parse_size(args.input)
        if size == "default" or size is None:
            raise SpecError("--torch needs the input size as CxHxW, e.g. --input 3x224x224")
        model = _torch_model(args.torch)
        s = summary(model, tuple(int(v) for v in size) if isinstance(size, tuple) else size,
                    depth=depth, columns=columns, name=args.torch)
    else:
        if not args.network:
            raise SpecError("summary needs a network (a zoo name, .yaml file or spec) or --torch MODULE:NAME")
        target = _substituted(resolve(args.network), args)
        size = _parse_size(args.input)
        channels = _value(args.in_channels, "--in-channels")
        if isinstance(size, tuple) and len(size) == (target.ndim or 2) + 1:  # CxHxW
            channels, size = size[0], size[1:]
        s = summary(target.analyze(size, channels), depth=depth, columns=columns, name=target.name)
    print({"text": s.text, "markdown": s.markdown, "html": s.html}[args.format]())
    return 0


def _cmd_compare(args) -> int:
    from .comparison import compare

    targets = _all_substituted(args.networks, args)
    size = _parse_size(args.input)
    results = [t.analyze(size) for t in targets]
    table = compare(*results, names=[t.name for t in targets])
    if args.format == "json":
        print(json.dumps(table.to_dict(), indent=2))
    else:
        print({"markdown": table.to_markdown, "latex": table.to_latex, "text": table.to_text}[args.format]())
    return 0


def _cmd_verify(args) -> int:
    from .verification import verify

    if args.zoo:
        zoo = _zoo()
        names = zoo.names() if not args.networks else args.networks
        targets = names
    else:
        if not args.networks:
            raise SpecError("verify needs a network (or --zoo for every zoo entry)")
        targets = args.networks
    progress = Progress(len(targets), "verifying ")
    failures = 0
    try:
        for text in targets:
            progress.step(text)
            target = _substituted(resolve(text), args)
            size = _parse_size(args.input)
            size = target.input_size if size == "default" else size
            if size is None:
                raise SpecError(f"{text}: verification enumerates real positions and needs --input N")
            report = verify(target.network, size, ndim=target.ndim, in_channels=target.in_channels)
            failures += not report.ok
            progress.close()
            print(f"{text}: OK  ({report.summary()})" if report.ok else f"{text}: FAILED\n{report}")
    finally:
        progress.close()
    return 0 if failures == 0 else 1


def _cmd_plot(args) -> int:
    from . import plot

    if args.kind not in ("growth", "tradeoff", "mask", "boxes"):
        raise SpecError(f"unknown plot kind {args.kind!r}; choose growth, tradeoff, mask or boxes")
    targets = _all_substituted(args.networks, args)
    size = _parse_size(args.input)
    items = {}
    for t in targets:
        # a one-line spec without --input is a block (growth repeats it); a zoo entry, a file or
        # any network with an input size is analysed at that size (its own by default)
        block = args.kind == "growth" and t.input_size is None and size == "default"
        items[t.name] = t.network if block else t.analyze(size)
    if args.kind == "growth":
        plot.growth(items, log=args.log, path=args.output)
    elif args.kind == "tradeoff":  # backbones compare at their feature layers (the classifier sees all)
        from .summaries import features

        x = "features.rf" if all(features(r) is not None for r in items.values()) else "rf"
        plot.tradeoff(items, x=x, log=args.log, path=args.output)
    else:
        plot.plot(args.kind, items, args.output)
    print(args.output)
    return 0


def _cmd_sizes(args) -> int:
    from .input_sizes import sizes

    target = _substituted(resolve(args.network), args)
    s = sizes(target.network, ndim=target.ndim, in_channels=target.in_channels,
              symmetric_same=args.symmetric_same)
    if args.format == "json":
        from .report import jsonable

        axes = [{"axis": a.axis, "min_input": jsonable(a.min_input), "output_stride": jsonable(a.output_stride),
                 "modulus": a.modulus, "first_valid": None if a.symbolic else a.first(args.count),
                 "valid": a.describe()} for a in s.axes]
        print(json.dumps({"name": target.name, "axes": axes}, indent=2))
        return 0
    print(target.name)
    axes = s.axes if len({(a.min_input, a.modulus, a.residues) for a in s.axes}) > 1 else s.axes[:1]
    for a in axes:
        pre = f"  axis {a.axis}: " if len(axes) > 1 else "  "
        print(f"{pre}min input      {a.min_input}")
        print(f"{pre}valid inputs   {a.describe()}")
        if not a.symbolic:
            print(f"{pre}smallest valid {', '.join(map(str, a.first(args.count))) or '-'}")
        print(f"{pre}output stride  {a.output_stride}")
    return 0


def _cmd_tile(args) -> int:
    from .input_sizes import tiling

    target = _substituted(resolve(args.network), args)
    tile = _parse_size(args.tile, "--tile")
    plan = tiling(target.network, tile, layer=args.layer, ndim=target.ndim, in_channels=target.in_channels,
                  round=args.round)
    keys = ("tile", "halo", "step", "crop", "margin", "quantum")
    if args.format == "json":
        axes = [{k: getattr(a, k) for k in (*keys, "out_tile")} | {"axis": a.axis} for a in plan.axes]
        print(json.dumps({"name": target.name, "layer": args.layer, "axes": axes}, indent=2))
        return 0
    print(target.name + (f" (tiling the output of {args.layer})" if args.layer else ""))
    labels = {"tile": "tile (input)", "halo": "halo (before, after)", "step": "step",
              "crop": "crop (outputs)", "margin": "tile margin", "quantum": "alignment"}
    for k in keys:
        print(f"  {labels[k].ljust(21)} {getattr(plan, k)}")
    outs = [(a.out_tile, a.out_tile - a.crop[0] - a.crop[1]) for a in plan.axes]
    out, kept = outs[0] if len(set(outs)) == 1 else tuple(zip(*outs))
    print(f"  {'outputs per tile'.ljust(21)} {out}, {kept} kept (the first and last tiles keep their border)")
    return 0


def _cmd_zoo(args) -> int:
    zoo = _zoo()
    if args.name:
        print(zoo.describe(args.name))
        return 0
    names = zoo.names()
    width = max(len(n) for n in names)
    for name in names:
        e = zoo.entry(name)
        params = f" [{', '.join(e.parameters)}]" if e.parameters else ""
        print(f"{name.ljust(width)}  {e.description}{params}")
    return 0


def _demo(args) -> int:
    import sympy as sp

    from . import Conv, Sequential, analyze, report, symbols, verify
    from .format import value
    from .latex import to_latex
    from .steps import derivation

    print("rfsym demo: receptive fields of stacked convolutions, derived\n")
    stack = Sequential(*[Conv(3, padding=1, name=f"conv{i + 1}") for i in range(4)])
    result = analyze(stack, input_size=5)
    print("Stacked 3x3 convolutions (stride 1, padding 1), recurrence of Araujo et al. (Distill 2019):")
    print(_indent(derivation(result, headers=True).text()))
    print()
    print(report.table(result, columns=("name", "rf", "jump", "start", "center", "out_size"), indent="  "))
    check = verify(stack, 5)
    print(f"  enumeration of the index maps agrees: {check.ok} ({check.checked} comparisons)")

    ks, ss = symbols("k1:5"), symbols("s1:5")
    general = analyze(Sequential(*[Conv(ki, stride=si) for ki, si in zip(ks, ss)]))
    print("\nGeneral formula, four layers with symbolic kernels k_i and strides s_i:")
    print(f"  R₄ = {value(sp.factor_terms(general.rf))}")
    print("  as LaTeX (rfsym.latex.to_latex):")
    print(_indent(to_latex(general, quantities=("rf",)), "    "))

    C = symbols("C")
    one = analyze(Conv(7, in_channels=C, out_channels=C, bias=False))
    three = analyze(Sequential(*[Conv(3, in_channels=C, out_channels=C, bias=False)] * 3))
    print("\nOne 7x7 conv vs three 3x3 convs (C channels, no bias):")
    print(f"  receptive field: {value(one.rf)} vs {value(three.rf)} (difference {value(sp.simplify(one.rf - three.rf))})")
    print(f"  weights:         {value(one.params)} vs {value(three.params)}  "
          f"(ratio {value(sp.simplify(three.params / one.params))})")
    print("\nMore: rfsym --help, rfsym summary resnet50, rfsym derive \"conv(k, s=s) x n\"")
    return 0


def _indent(text, pad="  "):
    return "\n".join(pad + line for line in text.splitlines())


# --------------------------------------------------------------------------- parser
SPEC_HELP = """\
networks are given as
  a zoo name          resnet50, slim_vgg_16, vgg(depths=(1, 1, n, 2, 2))   (see: rfsym zoo)
  a YAML file         net.yaml                                             (see the docs)
  a one-line spec     "conv3 x3"   "conv(k, s=2) * n, maxpool2"   "conv7/2(p=3), res(conv3, conv3)"

one-line spec: layers separated by ',';  conv3 = 3x3 conv, conv3x5 = 3x5, conv3/2 = stride 2;
  arguments by position or keyword: conv(k, s=2, p=1, d=2, g=1, c=64), maxpool(3, 2, 1), up(2);
  'x n' or '* n' repeats (n a number or a symbol); (a, b) or [a, b] groups;
  res(body | shortcut), cat(a | b | c); p=same, p=valid, p=SAME (TensorFlow).
  Any number may be a symbol or an expression: conv(2*k+1, d=d).
"""

_EXAMPLES = {
    "main": """examples:
  rfsym demo
  rfsym derive "conv(k, s=s) x 3"
  rfsym summary resnet50
  rfsym analyze resnet50 --format json
  rfsym analyze resnet50 --at layer3.5.relu
  rfsym analyze "conv3(p=1) x n, maxpool2" --input 64
  rfsym compare "conv7" "conv3 x3"
  rfsym verify "conv3/2, conv3(d=2)" --input 32
  rfsym zoo
""",
    "derive": """examples:
  rfsym derive "conv(k, s=s) x 3"          rf = 1 + (k-1)(1 + s + s^2)
  rfsym derive "conv3(p=1) x n"            symbolic depth (needs Repeat)
  rfsym derive "conv(k, p=p), maxpool2" --input n
  rfsym derive "conv(k) x 4" --format latex
""",
    "analyze": """examples:
  rfsym analyze resnet50
  rfsym analyze slim_vgg_16 --input 321 --format markdown
  rfsym analyze "conv3/2(c=16), conv3(c=32)" --input 32 --in-channels 3 --format json
  rfsym analyze net.yaml --input 224x160
""",
    "summary": """examples:
  rfsym summary resnet50
  rfsym summary resnet50 --depth 1 --columns layer,output,rf,jump
  rfsym summary --torch torchvision.models:resnet50 --input 3x224x224
  rfsym summary --torch model.py:Net --input 3x64x64
""",
    "compare": """examples:
  rfsym compare "conv7(in=C, c=C, bias=false)" "conv3(in=C, c=C, bias=false) x 3"
  rfsym compare resnet18 resnet50 --input 224
""",
    "verify": """examples:
  rfsym verify "conv3/2(p=1), conv3(d=2)" --input 32
  rfsym verify resnet18
  rfsym verify --zoo                 every zoo entry at its default input (progress on a terminal)
""",
    "plot": """kinds:
  growth     receptive field against depth (each network is one block, repeated), --log for a log axis
  tradeoff   parameters against receptive field (numeric networks: use --set for symbols)
  mask       which input pixels feed the central output (first network, needs --input)
  boxes      receptive-field boxes of outputs over the input grid (first network, needs --input)

examples:
  rfsym plot growth "conv3" "conv3/2" "conv3(d=2)" -o growth.png
  rfsym plot tradeoff "conv7(in=C, c=C)" "conv3(in=C, c=C) x 3" --set C=64 -o tradeoff.svg
  rfsym plot mask "conv3(p=1), conv3(p=1)" --input 5 -o mask.png
""",
    "sizes": """examples:
  rfsym sizes unet                   smallest input, valid sizes (572 -> 388)
  rfsym sizes resnet50 --format json
  rfsym sizes "conv(k, s=2), conv3/2"  symbolic: a closed form
""",
    "tile": """examples:
  rfsym tile unet --tile 572
  rfsym tile resnet50 --tile 512 --layer layer4
""",
    "zoo": """examples:
  rfsym zoo
  rfsym zoo resnet50
""",
}


def _sub(sub, name, help, func, description=None):
    p = sub.add_parser(name, help=help, description=(description or help) + "\n\n" + SPEC_HELP,
                       epilog=_EXAMPLES.get(name), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def _input_arg(p, help="input size: 224, 224x160, a symbol n, or none (default: the model's own)"):
    p.add_argument("--input", "-i", metavar="N", help=help)


def _set_arg(p):
    p.add_argument("--set", "-s", metavar="NAME=VALUE", nargs="+", action="extend",
                   help="substitute values for the network's symbols, e.g. --set k=3 n=4")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="rfsym", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Derive receptive fields, strides, output sizes, parameters and MACs of "
                    "convolutional networks in closed form.\n\n" + SPEC_HELP,
        epilog=_EXAMPLES["main"])
    parser.add_argument("--version", action="version", version=f"rfsym {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(sub, "derive", "closed forms (rf, jump, start, center, out_size, params, macs) of a network",
             _cmd_derive)
    p.add_argument("network", metavar="SPEC", help="zoo name, .yaml file or one-line spec")
    _input_arg(p, "input size: a number, 224x160, a symbol n, or none (default: a zoo entry's or file's "
                  "own, else none, so sizes and MACs stay unknown)")
    p.add_argument("--in-channels", metavar="C", help="input channels (a number or a symbol)")
    p.add_argument("--format", "-f", choices=("text", "latex", "json"), default="text")
    p.add_argument("--steps", action="store_true", help="write the derivation out step by step")
    p.add_argument("--symbol", metavar="PATTERN.ATTR=VALUE", nargs="+", action="extend",
                   help="replace an attribute of the layers whose names match PATTERN, e.g. "
                        "'layer4.*.conv2.kernel_size=k' 'layer4.*.conv2.padding=keep'")
    p.add_argument("--depth", metavar="PATH=N", nargs="+", action="extend",
                   help="make the run of identical blocks under PATH hold N blocks, e.g. layer3=n")
    _set_arg(p)

    p = _sub(sub, "analyze", "per-layer table of a network (text, Markdown, LaTeX or JSON)", _cmd_analyze)
    p.add_argument("network", metavar="MODEL|SPEC", help="zoo name, .yaml file or one-line spec")
    _input_arg(p)
    p.add_argument("--in-channels", metavar="C", help="input channels (default: the model's own)")
    p.add_argument("--format", "-f", choices=("text", "markdown", "latex", "json"), default="text")
    p.add_argument("--at", metavar="LAYER", help="show one layer's quantities (its name, e.g. layer3.5.relu)")
    _set_arg(p)

    p = _sub(sub, "summary", "module tree with output shapes, rf, jump, parameters and MACs", _cmd_summary)
    p.add_argument("network", metavar="MODEL|SPEC", nargs="?", help="zoo name, .yaml file or one-line spec")
    p.add_argument("--torch", metavar="MODULE:NAME",
                   help="a PyTorch model: a module path or .py file and the class or function that builds it "
                        "(called without arguments), e.g. torchvision.models:resnet50 or model.py:Net")
    _input_arg(p, "input size: 224, 224x160, or CxHxW such as 3x224x224 (required for --torch)")
    p.add_argument("--in-channels", metavar="C", help="input channels (default: the model's own)")
    p.add_argument("--depth", "-d", type=int, default=2, metavar="N",
                   help="how deep the module tree is shown (default 2; 0 for every layer)")
    p.add_argument("--columns", "-c", metavar="COLS",
                   help="comma-separated columns: layer,type,output,rf,jump,start,padding,params,macs")
    p.add_argument("--format", "-f", choices=("text", "markdown", "html"), default="text")
    _set_arg(p)

    p = _sub(sub, "compare", "side-by-side comparison with symbolic differences and ratios", _cmd_compare)
    p.add_argument("networks", nargs="+", metavar="MODEL|SPEC")
    _input_arg(p)
    p.add_argument("--format", "-f", choices=("text", "markdown", "latex", "json"), default="text")
    _set_arg(p)

    p = _sub(sub, "verify", "cross-check the closed forms against brute-force enumeration", _cmd_verify)
    p.add_argument("networks", nargs="*", metavar="MODEL|SPEC")
    _input_arg(p)
    p.add_argument("--zoo", action="store_true", help="verify every zoo entry (or the named ones)")
    _set_arg(p)

    p = _sub(sub, "plot", "draw a figure (PNG, SVG or PDF, by the file name)", _cmd_plot)
    p.add_argument("kind", metavar="KIND", help="growth, tradeoff, mask or boxes")
    p.add_argument("networks", nargs="+", metavar="MODEL|SPEC")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    _input_arg(p)
    p.add_argument("--log", action="store_true", help="logarithmic y axis")
    _set_arg(p)

    p = _sub(sub, "sizes", "smallest input size and the input sizes that never truncate", _cmd_sizes)
    p.add_argument("network", metavar="MODEL|SPEC")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text")
    p.add_argument("--count", type=int, default=5, metavar="K", help="how many valid sizes to list (default 5)")
    p.add_argument("--symmetric-same", action="store_true", help="also require symmetric TensorFlow SAME padding")
    _set_arg(p)

    p = _sub(sub, "tile", "a tiling plan: tile, halo, step and crop for tiled inference", _cmd_tile)
    p.add_argument("network", metavar="MODEL|SPEC")
    p.add_argument("--tile", "-t", required=True, metavar="N", help="wanted tile size (rounded to a valid one)")
    p.add_argument("--layer", metavar="NAME", help="tile the output of this top-level layer or graph node")
    p.add_argument("--round", choices=("down", "up"), default="down")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text")
    _set_arg(p)

    p = _sub(sub, "zoo", "list the model zoo (or describe one entry)", _cmd_zoo)
    p.add_argument("name", nargs="?", metavar="NAME")

    p = _sub(sub, "demo", "a tour: stacked 3x3 convolutions derived, checked and compared", _demo)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RfsymError as err:
        print(f"rfsym: error: {err}", file=sys.stderr)
        return 2
    except RecursionError:
        print("rfsym: error: the network is too deeply nested for this operation", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head
        return 0
    except KeyboardInterrupt:
        print("rfsym: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: say so plainly, no traceback unless asked for
        if os.environ.get("RFSYM_DEBUG"):
            raise
        print(f"rfsym: error: internal error ({type(err).__name__}: {err}); this is a bug in rfsym, "
              "please report it (RFSYM_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
