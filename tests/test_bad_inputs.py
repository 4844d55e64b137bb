"""A catalogue of bad inputs: every one gives a clear rfsym error (or, for the bounded-work
cases, a quick answer), never runs code, never hangs, never exhausts memory.

The cases run in one child process under ``resource`` limits (address space and CPU time) and a
per-case alarm, so a regression that loops or allocates without bound fails the case instead of
the machine. Each case asserts the error class and a part of the message; CLI cases assert exit
status 2, ``rfsym: error:`` and no traceback. Injection payloads write a marker file if they
ever run; the marker must not exist afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import rfsym.spec  # noqa: F401 - R.spec in the in-process tests below
import rfsym.zoo  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEMORY = 2 * 2**30  # address-space cap of the child (bytes)
CPU = 150  # CPU-seconds cap of the child
ALARM = 20  # wall seconds per case
SLOW = 15.0  # a case taking longer than this fails (bounded work must also be quick)

# --------------------------------------------------------------------------- the cases
# (id, code, expected error class or None for "must succeed", message fragment or fragments).
# Code runs with: rfsym as R, everything from rfsym, sp (sympy), np, PAY / PAY2 (payloads that
# create the marker file MARK if evaluated), k, s, n (rfsym symbols), r (analyze of Conv(k,
# stride=s) at input n), cli(argv) -> (exit status, stderr).
BAD_VALUES = [
    ("str", "'3'", "got '3'"),
    ("payload", "PAY", "__import__"),
    ("payload2", "PAY2", "__import__"),
    ("list-payload", "[PAY]", "__import__"),
    ("nested-payload", "[[PAY2]]", "__import__"),
    ("tuple-payload", "(3, [PAY])", "__import__"),
    ("float", "2.5", "got 2.5"),
    ("nan", "float('nan')", "got nan"),
    ("inf", "float('inf')", "got inf"),
    ("big-float", "1e300", "got 1e+300"),
    ("bool", "True", "got True"),
    ("complex", "3+0j", "got (3+0j)"),
    ("rational", "sp.Rational(5, 2)", "got 5/2"),
    ("sympy-float", "sp.Float(2.5)", "got 2.5"),
    ("imaginary", "sp.I", "got I"),
    ("sympy-nan", "sp.nan", "got nan"),
    ("non-integer-symbol", "sp.Symbol('q', integer=False)", "symbol q is declared non-integer"),
    ("non-real-symbol", "sp.Symbol('q', real=False)", "symbol q is declared non-integer"),
    ("dict", "{'a': 1}", "got {'a': 1}"),
    ("object", "object()", "got <object object"),
    ("bytes", "b'3'", "got b'3'"),
]
LAYER_ARGS = [  # (layer call with {v}, where, param)
    ("Conv({v})", "Conv", "kernel_size"),
    ("Conv(3, stride={v})", "Conv", "stride"),
    ("Conv(3, dilation={v})", "Conv", "dilation"),
    ("Conv(3, padding={v})", "Conv", "padding"),
    ("Conv(3, groups={v})", "Conv", "groups"),
    ("Conv(3, out_channels={v})", "Conv", "out_channels"),
    ("MaxPool({v})", "MaxPool", "kernel_size"),
    ("AvgPool(2, stride={v})", "AvgPool", "stride"),
    ("BatchNorm({v})", "BatchNorm", "num_features"),
    ("Linear({v}, 10)", "Linear", "in_features"),
    ("Repeat(Conv(3), {v})", "Repeat", "n"),
    ("ConvTranspose(3, stride=2, output_padding={v})", "ConvTranspose", "output_padding"),
]
CASES = []
for _template, _where, _param in LAYER_ARGS:
    for _vid, _v, _frag in BAD_VALUES:
        if _param == "padding" and _vid == "str":
            _frag = "padding must be an int, per-axis (left, right) pairs"
        if _param == "output_padding" and _vid == "tuple-payload":
            continue  # a tuple output_padding is per axis: its length error comes first
        CASES.append((f"{_where}.{_param}={_vid}", _template.format(v=_v), "LayerError",
                      (f"{_where}: {_param}", _frag)))

CASES += [
    # ---- analyze: input size, channels, ndim
    ("analyze input payload", "analyze(Conv(3), input_size=PAY)", "LayerError", "analyze: input_size must be"),
    ("analyze input nested payload", "analyze(Conv(3), input_size=[[PAY]])", "LayerError", "__import__"),
    ("analyze input tuple payload", "analyze(Conv(3), input_size=(8, PAY2))", "LayerError", "__import__"),
    ("analyze input float", "analyze(Conv(3), input_size=8.5)", "LayerError", "input_size must be a positive integer, got 8.5"),
    ("analyze input empty", "analyze(Conv(3), input_size=())", "LayerError",
     "input_size must be a number or a tuple of 1 to 3 sizes, got ()"),
    ("analyze input 4 axes", "analyze(Conv(3), input_size=(8, 8, 8, 8))", "LayerError", "tuple of 1 to 3 sizes"),
    ("analyze input 0", "analyze(Conv(3), input_size=0)", "LayerError", "got 0"),
    ("analyze input nan", "analyze(Conv(3), input_size=float('nan'))", "LayerError", "got nan"),
    ("analyze channels payload", "analyze(Conv(3), in_channels=[PAY])", "LayerError", "in_channels must be"),
    ("analyze channels complex", "analyze(Conv(3), in_channels=3j)", "LayerError", "in_channels must be"),
    ("analyze ndim 0", "analyze(Conv(3), ndim=0)", "LayerError", "ndim must be 1, 2 or 3, got 0"),
    ("analyze ndim 2.5", "analyze(Conv(3), ndim=2.5)", "LayerError", "ndim must be 1, 2 or 3, got 2.5"),
    ("analyze ndim True", "analyze(Conv(3), ndim=True)", "LayerError", "ndim must be 1, 2 or 3, got True"),
    ("analyze ndim 4", "analyze(Conv(3), ndim=4)", "LayerError", "ndim must be 1, 2 or 3, got 4"),
    ("analyze ndim str", "analyze(Conv(3), ndim='2')", "LayerError", "ndim must be 1, 2 or 3, got '2'"),
    ("analyze not a layer", "analyze(PAY)", "RfsymError", "analyze expects an rfsym layer"),
    ("Sequential of text", "Sequential(PAY)", "LayerError", "item 0 must be an rfsym layer"),
    # ---- substitution and evaluation
    ("Layer.subs payload", "Conv(k).subs({k: PAY})", "LayerError", "the value for k must be an integer"),
    ("Layer.subs payload by name", "Conv(k).subs({'k': PAY2})", "LayerError", "the value for k must be"),
    ("Layer.subs list", "Conv(k).subs({k: [PAY]})", "LayerError", "the value for k must be"),
    ("Layer.subs float", "Conv(k).subs({k: 2.5})", "LayerError", "the value for k must be an integer, got 2.5"),
    ("Layer.subs not a dict", "Conv(k).subs(PAY)", "LayerError", "subs takes a dict"),
    ("Repeat.subs payload", "Repeat(Conv(3), n).subs({n: PAY})", "LayerError", "the value for n must be"),
    ("Result.subs payload", "r.subs({k: PAY})", "RfsymError", "subs: the value for k must be an integer"),
    ("Result.subs list", "r.subs({'s': [PAY]})", "RfsymError", "subs: the value for s must be"),
    ("Result.subs unknown", "r.subs({'zz': 3})", "RfsymError", "symbol zz does not occur"),
    ("Result.evaluate payload", "r.evaluate({k: PAY, s: 1, n: 9})", "RfsymError", "the values for k must be integers"),
    ("Result.evaluate list payload", "r.evaluate({k: [3, PAY], s: 1, n: 9})", "RfsymError", "must be integers"),
    ("Result.evaluate nan", "r.evaluate({k: float('nan'), s: 1, n: 9})", "RfsymError", "must be integers, got nan"),
    ("Result.evaluate shapes", "r.evaluate({k: [3, 5], s: [1, 2, 3], n: 9})", "RfsymError", "must broadcast together"),
    ("Result.evaluate missing", "r.evaluate({k: 3})", "RfsymError", "missing: n, s"),
    ("Result.evaluate stride 0", "r.evaluate({k: 3, s: [1, 0], n: 9})", "LayerError", "stride must be a positive integer"),
    ("Result.axes unknown", "r.axes(PAY)", "RfsymError", "unknown per-axis quantity"),
    ("Result.span payload", "r.span(PAY)", "LayerError", "position must be an integer"),
    ("Result.span axes", "analyze(Conv(3), 8).span((1, 2, 3))", "RfsymError", "position has 3 axes"),
    ("Result.layer list", "r.layer([PAY])", "RfsymError", "a layer is named by its path"),
    ("Result.layer payload", "r.layer(PAY)", "RfsymError", "no layer named"),
    ("analyze features payload", "analyze(Conv(3), features=PAY)", "RfsymError", "no layer named"),
    ("analyze strict payload", "analyze(Conv(3), strict=PAY)", "RfsymError", "strict must be True or False"),
    # ---- compare, smallest, crossover
    ("smallest payload", "smallest(PAY, 10)", "LayerError", "the expression:"),
    ("smallest target payload", "smallest(2 * n + 1, PAY2)", "LayerError", "target"),
    ("smallest target list", "smallest(2 * n + 1, [PAY])", "LayerError", "target must be"),
    ("smallest symbol payload", "smallest(2 * n + 1, 10, symbol=PAY)", "RfsymError", "does not occur"),
    ("smallest symbol object", "smallest(2 * n + 1, 10, symbol=3)", "RfsymError", "symbol must be a sympy Symbol"),
    ("smallest lower float", "smallest(2 * n + 1, 10, lower=1.5)", "LayerError", "lower must be an integer"),
    ("smallest lower payload", "smallest(2 * n + 1, 10, lower=PAY)", "LayerError", "lower must be an integer"),
    ("crossover payload", "crossover(PAY, 2 * n)", "LayerError", "the expression:"),
    ("crossover upper payload", "crossover(2 ** n, 4 * n, upper=PAY)", "LayerError", "upper must be"),
    ("compare payload", "compare(PAY, Conv(3))", "SpecError", "unexpected character"),
    ("compare object", "compare(object(), Conv(3))", "RfsymError", "analyze expects an rfsym layer"),
    ("smallest unreachable", "smallest(2 * n + 1, 10**30, upper=100)", "RfsymError", "does not reach"),
    # ---- ERF and LaTeX
    ("erf radius payload", "erf(Conv(3)).radius(PAY)", "RfsymError", "sigmas must be a real number"),
    ("erf mass payload", "erf(Conv(3)).radius(mass=PAY2)", "RfsymError", "mass must be a real number"),
    ("erf subs payload", "erf(Conv(k)).subs({k: PAY})", "LayerError", "the value for k must be"),
    ("latex payload", "R.format.latex(PAY)", "RfsymError", "expected a number or a sympy expression"),
    ("latex list payload", "R.format.latex([PAY])", "RfsymError", "expected a number or a sympy expression"),
    ("summary load channels payload", "importlib.import_module('rfsym.summaries').load(Conv(3), (3, 8, 8), "
     "in_channels=PAY)", "LayerError", "in_channels must be a positive integer"),
    ("summary load size payload", "importlib.import_module('rfsym.summaries').load(Conv(3), (PAY2, 8, 8), "
     "in_channels=3)", "LayerError", "input_size must be a positive integer"),
    ("format value cache", "assert (R.format.value(True), R.format.value(1), R.format.value(1.0)) == "
     "('True', '1', '1')", None, ""),
    ("format value dict payload", "R.format.value({'a': PAY})", "RfsymError",
     "expected a number or a sympy expression"),
    # ---- exact arithmetic (finding 2): the exact values or an error, never a wrapped number
    ("evaluate 16 stride-16 layers", "assert analyze(Sequential(*[Conv(3, stride=s)] * 16), ndim=1)"
     ".evaluate({s: 16}).rf == 2459565876494606883", None, ""),
    ("evaluate array vs scalar", "rr = analyze(Conv(k, dilation=k), ndim=1); "
     "assert int(rr.evaluate({k: np.array([3037000501])}).rf[0]) == rr.evaluate({k: 3037000501}).rf == "
     "rr.subs({k: 3037000501}).rf == 3037000501 * 3037000500 + 1", None, ""),
    ("evaluate huge macs", "rr = analyze(Conv(3, in_channels=64, out_channels=64), input_size=n); "
     "assert rr.evaluate({n: [2**40, 10]}).macs.tolist() == [rr.subs({n: 2**40}).macs, rr.subs({n: 10}).macs]",
     None, ""),
    # ---- bounded work (finding 3)
    ("repeat 10^12 closed form", "assert analyze(R.spec.parse_line('conv3 x 10^12')).rf == 2 * 10**12 + 1",
     None, ""),
    ("repeat 10^12 with sizes", "assert analyze(R.spec.parse_line('conv(3, p=1) x 10^12'), 64).out_size == 64",
     None, ""),
    ("repeat 10^12 strided", "analyze(R.spec.parse_line('conv3/2 x 10^12'))", "LayerError",
     "jump after n=1000000000000 repetitions would have about"),
    ("repeat 10^12 dilated index", "analyze(R.spec.parse_line('conv(2, d=2^i) x 10^12'))", "LayerError",
     "rfsym does not build numbers that large"),
    ("repeat 10^12 too small", "analyze(R.spec.parse_line('conv3 x 10^12'), 100)", "SizeError",
     "output size must be at least 1"),
    ("evaluate a 10^6 repeat", "analyze(Sequential(Conv(k), Repeat(Conv(3), 10**6)), input_size=n)"
     ".evaluate({k: 3, n: 10**9})", "LayerError", "more than 4096 is refused: use subs"),
    ("subs a 10^6 repeat", "assert analyze(Sequential(Conv(k), Repeat(Conv(3), 10**6)), input_size=n)"
     ".subs({k: 3, n: 10**9}).out_size == 10**9 - 2 * 10**6 - 2", None, ""),
    ("power tower", "R.spec.parse_line('conv(((((2^64)^64)^64)^64)^64)')", "SpecError", "has more than 256 bits"),
    ("product of powers", "R.spec.parse_line('conv(2^64*2^64*2^64*2^64*2^64)')", "SpecError",
     "a number of more than 256 bits"),
    ("symbolic power tower", "R.spec.parse_line('conv((k^64)^64)')", "SpecError", "exponent 4096 is out of range"),
    ("long literal", "R.spec.parse_line('conv' + '9' * 5000)", "SpecError", "a number of more than 80 digits"),
    ("long literal in parentheses", "R.spec.parse_line('conv(' + '9' * 5000 + ')')", "SpecError",
     "a number of more than 80 digits"),
    ("20000 minus signs", "R.spec.parse_line('conv(' + '-' * 20000 + '3)')", "SpecError",
     "too deeply nested (more than 1000 signs in a row)"),
    ("1000 minus signs", "assert R.spec.parse_line('conv(' + '-' * 1000 + '3)') == Conv(3)", None, ""),
    ("1000 nested parentheses", "assert R.spec.parse_line('conv(' + '(' * 1000 + '3' + ')' * 1000 + ')') "
     "== Conv(3)", None, ""),
    ("1001 nested parentheses", "R.spec.parse_line('conv(' + '(' * 1001 + '3' + ')' * 1001 + ')')", "SpecError",
     "too deeply nested (more than 1000 levels of parentheses)"),
    ("100000 nested parentheses", "R.spec.parse_line('conv(' + '(' * 100000 + '3' + ')' * 100000 + ')')",
     "SpecError", "too deeply nested"),
    ("1000 nested groups", "assert R.spec.parse_line('[' * 1000 + 'conv3' + ']' * 1000) == Conv(3)", None, ""),
    ("1001 nested groups", "R.spec.parse_line('[' * 1001 + 'conv3' + ']' * 1001)", "SpecError",
     "too deeply nested (more than 1000 levels of groups and blocks)"),
    ("100000 nested groups", "R.spec.parse_line('(' * 100000 + 'conv3' + ')' * 100000)", "SpecError",
     "too deeply nested"),
    ("deep residuals in the spec", "R.spec.parse_line('res(' * 1001 + 'conv3' + ')' * 1001)", "SpecError",
     "too deeply nested (more than 1000 levels of groups and blocks)"),
    ("1000 residuals in the spec work", "assert analyze(R.spec.parse_line('res(' * 1000 + 'conv(3, p=1)' + ')' * 1000), "
     "8).rf == 3", None, ""),
    ("YAML alias bomb", "bomb = 'a: &a [conv3, conv3, conv3, conv3, conv3, conv3, conv3, conv3, conv3, conv3]\\n'\n"
     "for i in range(1, 9):\n"
     "    bomb += chr(97 + i) + ': &' + chr(97 + i) + ' [' + ', '.join(['*' + chr(96 + i)] * 10) + ']\\n'\n"
     "R.spec.loads(bomb + 'layers: [*i]\\n')", "SpecError", "expands to 2345679022 YAML nodes"),
    ("YAML small aliases", "assert len(R.spec.loads('layers:\\n  - &c conv3\\n  - *c\\n').network.layers) == 2",
     None, ""),
    ("YAML deep nesting", "R.spec.loads('layers: ' + '[' * 5000 + 'conv3' + ']' * 5000)", "SpecError",
     "too deeply nested"),
    ("YAML huge int", "R.spec.loads('layers:\\n  - conv: {kernel_size: ' + '9' * 100 + '}\\n')", "SpecError",
     "a number of more than 256 bits"),
    ("YAML huge float", "R.spec.loads('layers:\\n  - conv: {kernel_size: 1.0e+300}\\n')", "SpecError",
     "kernel_size must be an integer"),
    ("YAML python tag", "R.spec.loads('layers:\\n  - !!python/object/apply:os.system [\"touch ' + MARK + '\"]\\n')",
     "SpecError", "the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"),
    ("YAML python name tag", "R.spec.loads('layers:\\n  - conv: {kernel_size: !!python/name:os.system k}\\n')",
     "SpecError", "is not allowed"),
    ("YAML custom tag", "R.spec.loads('layers:\\n  - conv: !custom 3\\n')", "SpecError",
     "the tag '!custom' is not allowed"),
    ("YAML payload value", "R.spec.loads('layers:\\n  - conv: {kernel_size: \"' + PAY.replace(chr(39), chr(96)) + "
     "'\"}\\n')", "SpecError", "unexpected character"),
    ("spec payload", "R.spec.parse_line('conv(' + PAY + ')')", "SpecError", "unexpected character"),
    ("spec payload word", "analyze(R.spec.parse_line('conv(__import__)'))", None, ""),
    ("parse_value payload", "R.expr.parse_value(PAY2)", "SpecError", "unexpected character"),
    ("parse_value not text", "R.expr.parse_value(3)", "SpecError", "a value must be text"),
    ("verify 10^4-layer chain", "R.verify(Sequential(*[Conv(3)] * 10000), 20010)", "RfsymError",
     "positions (the limit is 2e+07)"),
    ("verify 10^4-layer chain dense", "R.verify(Sequential(*[Conv(3)] * 10000), 20010, method='dense')",
     "RfsymError", "array cells"),
    ("verify 10^4-layer chain works", "assert R.verify(Sequential(*[Conv(3, padding=1)] * 10000), 32, ndim=1, "
     "positions=8).ok", None, ""),
    ("verify dilated holes", "R.verify(Sequential(*[Conv(3, dilation=2, padding=2)] * 3000), 64, ndim=1)",
     "RfsymError", "interval operations"),
    ("verify input 10^9", "R.verify(Conv(3), 10**9)", "RfsymError", "would take about"),
    ("verify all positions", "R.verify(Conv(3), 10**8, positions='all')", "RfsymError", "would take about"),
    ("verify all positions dense", "R.verify(Conv(3), 10**5, positions='all', method='dense')", "RfsymError",
     "would take about"),
    ("dependency_mask 10^6", "R.dependency_mask(Conv(3), 10**6, 0)", "RfsymError",
     "dependency_mask: enumerating this network"),
    ("dependency_mask 1-D 10^9", "R.dependency_mask(Conv(3), 10**9, 0, ndim=1)", "RfsymError", "would take about"),
    # ---- stray exceptions (finding 4)
    ("10005 nested Sequentials", "x = c = Conv(3)\nfor _ in range(10005):\n    x = Sequential(x, c)", "LayerError",
     "blocks are nested more than 10000 levels deep"),
    ("10005 nested Residuals", "x = Conv(3)\nfor _ in range(10005):\n    x = Residual(x)", "LayerError",
     "Residual: blocks are nested more than 10000 levels deep"),
    ("1000 nested Residuals work", "x = Conv(3, padding=1)\nfor _ in range(1000):\n    x = Residual(x)\n"
     "assert analyze(x, 16).rf == 3 and repr(x) and x == x and hash(x) and x.subs({}) == x", None, ""),
    ("65 nested symbolic Repeats", "x = Conv(3)\nfor _ in range(65):\n    x = Repeat(x, n)\nanalyze(x)", "LayerError",
     "nest more than 64 levels deep"),
    ("NaN comparison at s = 1", "rr = analyze(Sequential(Repeat(Conv(3, stride=s), n), MaxPool(3, stride=2, "
     "ceil_mode=True)), input_size=k)\nassert rr.out_size.subs({s: 1, n: 3, k: 10}) == rr.subs({s: 1, n: 3, k: 10})"
     ".out_size == 2", None, ""),
    # ---- wrong answers (finding 5)
    ("anisotropic output_padding", "assert ConvTranspose((3, 3), stride=(2, 1), output_padding=(1, 0))"
     ".output_padding == (1, 0)", None, ""),
    ("output_padding per axis", "ConvTranspose((3, 3), stride=(2, 1), output_padding=(0, 1))", "LayerError",
     "output_padding=1, stride=1, dilation=1 on axis 1"),
    ("vgg two stages", "R.zoo.get('vgg', depths=(1, 2))", "LayerError", "vgg: depths must have 5 entries"),
    ("resnet zero blocks", "R.zoo.get('resnet', blocks=(0, 0, 0, 0))", "LayerError",
     "resnet: blocks[0] must be a positive integer, got 0"),
    ("resnet negative blocks", "R.zoo.get('resnet', blocks=(3, -4, 6, 3))", "LayerError", "got -4"),
    ("resnet three stages", "R.zoo.get('resnet', blocks=(3, 4, 6))", "LayerError", "must have 4 entries"),
    ("vgg payload", "R.zoo.get('vgg', depths=(1, 1, 2, 2, PAY))", "LayerError", "depths[4] must be"),
    ("non-integer symbol", "Conv(sp.Symbol('kk', integer=False))", "LayerError",
     "symbol kk is declared non-integer"),
    ("plot growth of a kernel", "R.plot.growth({'a': Conv(k)}, depths=[1, 2])", "RfsymError", "k is not a depth"),
]

CLI_CASES = [  # (id, argv, message fragment); every one must exit 2 with 'rfsym: error:' and no traceback
    ("cli payload spec", ["analyze", "conv(__import__('os').system('touch MARK'))"], "unexpected character"),
    ("cli set payload", ["analyze", "conv(k)", "--set", "k=__import__('os').system('touch MARK')"],
     "unexpected character"),
    ("cli set python", ["analyze", "conv(k)", "--set", "k=exec('1')"], "unexpected character"),
    ("cli set unknown", ["analyze", "conv(k)", "--set", "q=3"], "the network has no symbol 'q'"),
    ("cli set float", ["analyze", "conv(k)", "--set", "k=2.5"], "unexpected character '.'"),
    ("cli set zero", ["analyze", "conv(k)", "--set", "k=0"], "kernel_size must be a positive integer, got 0"),
    ("cli input payload", ["analyze", "conv3", "--input", "__import__('os').system('touch MARK')"],
     "unexpected character"),
    ("cli input float", ["analyze", "conv3", "--input", "2.5"], "unexpected character '.'"),
    ("cli input zero", ["analyze", "conv3", "--input", "0"], "input_size must be a positive integer, got 0"),
    ("cli input huge", ["analyze", "conv3", "--input", "(2^64)^64"], "has more than 256 bits"),
    ("cli in-channels payload", ["analyze", "conv3", "--in-channels", "open('x')"], "unexpected character"),
    ("cli power tower", ["analyze", "conv(((((2^64)^64)^64)^64)^64)"], "has more than 256 bits"),
    ("cli minus signs", ["analyze", "conv(" + "-" * 20000 + "3)"], "more than 1000 signs in a row"),
    ("cli deep groups", ["analyze", "[" * 1001 + "conv3" + "]" * 1001], "too deeply nested"),
    ("cli repeat strided", ["analyze", "conv3/2 x 10^12"], "rfsym does not build numbers that large"),
    ("cli verify 10^9", ["verify", "conv3", "--input", "10^9"], "would take about"),
    ("cli unknown layer", ["analyze", "cnov3"], "unknown model or layer 'cnov3'"),
    ("cli empty", ["analyze", ""], "the network is empty"),
    ("cli unwritable output", ["plot", "growth", "conv3 x n", "-o", "/nonexistent-dir/x.png"],
     "cannot write '/nonexistent-dir/x.png'"),
    ("cli plot kernel as depth", ["plot", "growth", "conv(k)", "-o", "OUT.png"], "k is not a depth"),
    ("cli zoo payload", ["analyze", "resnet(blocks=__import__)"], "blocks must be a non-empty tuple"),
    ("cli zoo bad blocks", ["analyze", "resnet(blocks=(0, 0, 0, 0))"], "blocks[0] must be a positive integer"),
    ("cli vgg two stages", ["analyze", "vgg(depths=(1, 2))"], "depths must have 5 entries"),
    ("cli yaml python tag", ["analyze", "TAGFILE"], "is not allowed"),
    ("cli missing file", ["analyze", "/nonexistent-dir/net.yaml"], "no such file"),
    ("cli output padding", ["analyze", "convt(3, s=2, op=2)"], "output_padding must be smaller"),
    ("cli ndim yaml", ["analyze", "NDIMFILE"], "ndim must be 1, 2 or 3"),
]
CLI_OK = [  # bounded work that must answer (exit 0) quickly
    ("cli repeat 10^12", ["analyze", "conv3 x 10^12"]),
    ("cli 1000 nested residuals", ["analyze", "res(" * 1000 + "conv(3, p=1)" + ")" * 1000, "--input", "8"]),
    ("cli repeat 10^6 with size", ["analyze", "conv(3, p=1) x 10^6", "--input", "64"]),
    ("cli anisotropic output padding", ["analyze", "convt((3, 3), s=(2, 1), op=(1, 0))", "--input", "8"]),
]

RUNNER = r'''
import contextlib, importlib, io, json, os, resource, signal, sys, time, traceback
resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
resource.setrlimit(resource.RLIMIT_CPU, (CPU, CPU))
import warnings
warnings.simplefilter("ignore")
import numpy as np, sympy as sp
import rfsym as R
from rfsym import *
from rfsym.layers import Residual
import rfsym.expr, rfsym.spec, rfsym.format, rfsym.plot, rfsym.zoo
MARK = sys.argv[1]
WORK = sys.argv[2]
PAY = "__import__('os').system('touch " + MARK + "')"
PAY2 = "__import__('pathlib').Path('" + MARK + "').touch()"
k, s, n = R.symbols("k s n")
r = analyze(Conv(k, stride=s), input_size=n)
from rfsym.cli import main

def cli(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()

class Timeout(BaseException):
    pass

def alarm(*_):
    raise Timeout()

signal.signal(signal.SIGALRM, alarm)
cases = json.load(sys.stdin)
out = {}
for cid, kind, code in cases:
    t = time.time()
    signal.alarm(ALARM)
    try:
        if kind == "cli":
            argv = [a.replace("MARK", MARK).replace("OUT", os.path.join(WORK, "out"))
                    .replace("TAGFILE", os.path.join(WORK, "tag.yaml"))
                    .replace("NDIMFILE", os.path.join(WORK, "ndim.yaml")) for a in code]
            status, err = cli(argv)
            res = {"status": status, "stderr": err}
        else:
            exec(code, dict(globals()))
            res = {"error": None}
    except Timeout:
        res = {"error": "Timeout", "message": "no answer within the alarm"}
    except MemoryError:
        res = {"error": "MemoryError", "message": ""}
    except BaseException as err:
        res = {"error": type(err).__name__, "message": str(err),
               "rfsym": isinstance(err, R.RfsymError), "trace": traceback.format_exc()[-2000:]}
    finally:
        signal.alarm(0)
    res["time"] = time.time() - t
    out[cid] = res
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    work = tmp_path_factory.mktemp("bad_inputs")
    mark = str(work / "PWNED")
    (work / "tag.yaml").write_text(f"layers:\n  - !!python/object/apply:os.system ['touch {mark}']\n")
    (work / "ndim.yaml").write_text("ndim: 2.5\nlayers: [conv3]\n")
    batch = [(c[0], "api", c[1]) for c in CASES] + [(c[0], "cli", c[1]) for c in CLI_CASES + CLI_OK]
    script = RUNNER.replace("MEMORY, MEMORY", f"{MEMORY}, {MEMORY}").replace("CPU, CPU", f"{CPU}, {CPU}") \
        .replace("signal.alarm(ALARM)", f"signal.alarm({ALARM})")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), mark, str(work)], input=json.dumps(batch),
                          capture_output=True, text=True, cwd=str(work), env=env, timeout=CPU + 60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    results["__marker__"] = os.path.exists(mark)
    return results


def test_catalogue_is_large_enough():
    assert len(CASES) + len(CLI_CASES) + len(CLI_OK) >= 150
    assert len({c[0] for c in CASES + CLI_CASES + CLI_OK}) == len(CASES) + len(CLI_CASES) + len(CLI_OK)


def test_no_payload_ran(outcomes):
    assert outcomes["__marker__"] is False, "an injection payload was evaluated"


@pytest.mark.parametrize("cid, code, error, fragment", CASES, ids=[c[0] for c in CASES])
def test_api_case(outcomes, cid, code, error, fragment):
    res = outcomes[cid]
    assert res["time"] < SLOW, f"took {res['time']:.1f} s"
    if error is None:
        assert res["error"] is None, res
        return
    assert res["error"] == error, res
    assert res["rfsym"], res
    for part in (fragment if isinstance(fragment, tuple) else (fragment,)):
        assert part in res["message"], res["message"]


@pytest.mark.parametrize("cid, argv, fragment", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_case(outcomes, cid, argv, fragment):
    res = outcomes[cid]
    assert res["time"] < SLOW, f"took {res['time']:.1f} s"
    assert res.get("error") is None, res
    assert res["status"] == 2, res
    assert res["stderr"].startswith("rfsym: error: "), res["stderr"]
    assert "internal error" not in res["stderr"] and "Traceback" not in res["stderr"], res["stderr"]
    assert fragment in res["stderr"], res["stderr"]


@pytest.mark.parametrize("cid, argv", CLI_OK, ids=[c[0] for c in CLI_OK])
def test_cli_bounded_work_answers(outcomes, cid, argv):
    res = outcomes[cid]
    assert res["time"] < SLOW, f"took {res['time']:.1f} s"
    assert res.get("error") is None and res["status"] == 0, res


# --------------------------------------------------------------------------- issue findings
# One regression test per numbered finding (the catalogue above holds the same cases and more,
# under resource limits; these run in-process so a failure shows its traceback).
def test_finding_1_no_code_execution_through_the_api(tmp_path):
    import rfsym as R
    from rfsym import BatchNorm, Conv, Repeat, analyze, smallest

    mark = tmp_path / "PWNED"
    pay = f"__import__('os').system('touch {mark}')"
    k = R.symbols("k")
    calls = [lambda: analyze(Conv(3), input_size=[[pay]]), lambda: Conv(3, groups=[pay]),
             lambda: Repeat(Conv(3), [pay]), lambda: BatchNorm([pay]), lambda: analyze(Conv(3), in_channels=[pay]),
             lambda: Conv(k).subs({k: pay}), lambda: smallest(pay, 10), lambda: R.spec.parse_line(f"conv({pay})")]
    for call in calls:
        with pytest.raises(R.RfsymError):
            call()
    assert not mark.exists()


def test_finding_2_evaluate_is_exact():
    import numpy as np

    import rfsym as R
    from rfsym import Conv, Sequential, analyze

    s, k = R.symbols("s k")
    assert analyze(Sequential(*[Conv(3, stride=s)] * 16), ndim=1).evaluate({s: 16}).rf == 2_459_565_876_494_606_883
    r = analyze(Conv(k, dilation=k), ndim=1)
    big = 3_037_000_501
    assert r.evaluate({k: big}).rf == int(r.evaluate({k: np.array([big, 3])}).rf[0]) == r.subs({k: big}).rf


def test_finding_3_bounded_work():
    import time

    import rfsym as R
    from rfsym import Conv, Sequential, analyze

    t = time.time()
    assert analyze(R.spec.parse_line("conv3 x 10^12")).rf == 2 * 10**12 + 1
    with pytest.raises(R.SpecError, match="has more than 256 bits"):
        R.spec.parse_line("conv(((((2^64)^64)^64)^64)^64)")
    bomb = "a: &a [conv3, conv3, conv3, conv3, conv3, conv3, conv3, conv3, conv3, conv3]\n"
    for i in range(1, 9):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 10)}]\n"
    with pytest.raises(R.SpecError, match="YAML nodes"):
        R.spec.loads(bomb + "layers: [*i]\n")
    with pytest.raises(R.RfsymError, match="would take about"):
        R.verify(Sequential(*[Conv(3)] * 10000), 20010)
    with pytest.raises(R.RfsymError, match="would take about"):
        R.dependency_mask(Conv(3), 10**9, 0, ndim=1)
    assert time.time() - t < 30


def test_finding_4_stray_exceptions(tmp_path, capsys):
    import rfsym as R
    from rfsym import Conv, MaxPool, Repeat, Residual, Sequential, analyze
    from rfsym.cli import main

    x = c = Conv(3)
    with pytest.raises(R.LayerError, match="nested more than 10000 levels"):
        for _ in range(10_005):
            x = Sequential(x, c)
    x = Conv(3, padding=1)
    with pytest.raises(R.LayerError, match="nested more than 10000 levels"):
        for _ in range(10_005):
            x = Residual(x)
    with pytest.raises(R.SpecError, match="more than 1000 signs"):
        R.spec.parse_line("conv(" + "-" * 20000 + "3)")
    for bad in (0, 2.5, True):
        with pytest.raises(R.LayerError, match="ndim must be 1, 2 or 3"):
            analyze(Conv(3), ndim=bad)
    assert main(["plot", "growth", "conv3 x n", "-o", str(tmp_path / "missing" / "x.png")]) == 2
    assert capsys.readouterr().err.startswith("rfsym: error: cannot write")
    s, n, k = R.symbols("s n k")
    r = analyze(Sequential(Repeat(Conv(3, stride=s), n), MaxPool(3, stride=2, ceil_mode=True)), input_size=k)
    assert r.out_size.subs({s: 1, n: 3, k: 10}) == 2


def test_finding_5_wrong_answers(tmp_path, capsys):
    import sympy as sp

    import rfsym as R
    from rfsym import Conv, ConvTranspose
    from rfsym.cli import main

    assert ConvTranspose((3, 3), stride=(2, 1), output_padding=(1, 0)).output_padding == (1, 0)
    with pytest.raises(R.LayerError, match="depths must have 5 entries"):
        R.zoo.get("vgg", depths=(1, 2))
    for blocks in ((0, 0, 0, 0), (3, -1, 6, 3)):
        with pytest.raises(R.LayerError, match="must be a positive integer"):
            R.zoo.get("resnet", blocks=blocks)
    assert main(["plot", "growth", "conv(k)", "-o", str(tmp_path / "x.png")]) == 2
    assert "k is not a depth" in capsys.readouterr().err
    with pytest.raises(R.SpecError, match="is not allowed"):
        R.spec.loads("layers:\n  - !!python/object/apply:os.system ['true']\n")
    with pytest.raises(R.LayerError, match="declared non-integer"):
        Conv(sp.Symbol("k", integer=False))
    # rf after a dilated transposed convolution is a bound: verify finds the exact value, the
    # result says so
    net = R.Sequential(ConvTranspose(2, stride=2, dilation=3), ConvTranspose(2, dilation=2), R.MaxPool(2))
    report = R.verify(net, 40, ndim=1)
    assert not report.ok and report.result.exact is False
    assert R.analyze(R.Sequential(Conv(3, dilation=2), ConvTranspose(4, stride=2)), 16).exact is True
