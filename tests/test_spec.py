"""The one-line spec and YAML architecture files (rfsym.spec).

Each parse is compared with the network built by hand from rfsym's layers, so the grammar's
meaning is pinned down; errors are checked on their text (location, suggestion).
"""

import re

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import rfsym
from rfsym import AvgPool, BatchNorm, Conv, Linear, MaxPool, ReLU, Sequential, SpecError, analyze
from rfsym.spec import INDEX, load, loads, parse_line

k, s, n, C = rfsym.symbols("k s n C")


@pytest.mark.parametrize("text, expected", [
    ("conv3", Conv(3)),
    ("conv3 x3", Sequential(Conv(3), Conv(3), Conv(3))),
    ("conv3 * 2", Sequential(Conv(3), Conv(3))),
    ("conv3x5", Conv((3, 5))),
    ("conv3/2", Conv(3, stride=2)),
    ("Conv3/2(p=1, c=64)", Conv(3, stride=2, padding=1, out_channels=64)),
    ("conv(k, s=2), maxpool2", Sequential(Conv(k, stride=2), MaxPool(2))),
    ("conv(k, s, 1, 2)", Conv(k, stride=s, padding=1, dilation=2)),
    ("conv(kernel_size=k, stride=s)", Conv(k, stride=s)),
    ("conv(2*k+1, d=(k-1)//2)", Conv(2 * k + 1, dilation=sp.floor((k - 1) / 2))),
    ("conv(k=(3, 5), p=((1, 2), (2, 3)))", Conv((3, 5), padding=((1, 2), (2, 3)))),
    ("conv3(p=same), conv3(p=valid)", Sequential(Conv(3, padding="same"), Conv(3, padding="valid"))),
    ("conv3/2(p=SAME)", Conv(3, stride=2, padding="tf_same")),
    ("conv3(in=C, c=C, bias=false)", Conv(3, in_channels=C, out_channels=C, bias=False)),
    ("maxpool(3, 2, 1), avgpool2", Sequential(MaxPool(3, stride=2, padding=1), AvgPool(2))),
    ("pool3/1(p=1, ceil=true)", MaxPool(3, stride=1, padding=1, ceil_mode=True)),
    ("bn64, relu", Sequential(BatchNorm(64), ReLU())),
    ("BN(64); ReLU -> fc(512, 10)", Sequential(BatchNorm(64), ReLU(), Linear(512, 10))),
    ("[conv3, relu] x 2", Sequential(Conv(3), ReLU(), Conv(3), ReLU())),
    ("(conv3(name=a), relu, name=stage1)", Sequential(Conv(3, name="a"), ReLU(), name="stage1")),
    ("conv(2, d=2^i) x 3", Sequential(Conv(2), Conv(2, dilation=2), Conv(2, dilation=4))),
    ("conv(2, d=2**i) x 2 x 2", Sequential(*[Conv(2), Conv(2, dilation=2)] * 2)),
])
def test_one_line_builds_the_network_by_hand(text, expected):
    assert parse_line(text) == expected


def test_symbols_are_rfsym_symbols_so_results_substitute():
    r = analyze(parse_line("conv(k, s=s) x 3"))
    assert sp.simplify(r.rf - (1 + (k - 1) * (1 + s + s**2))) == 0
    assert r.subs({"k": 3, "s": 2}).rf == 15
    assert INDEX.is_nonnegative and INDEX.is_integer


def test_large_repeats_stay_symbolic_blocks():
    import rfsym.layers  # noqa: F401
    from rfsym.layers import Repeat

    net = parse_line("conv3 x 5000")
    assert isinstance(net, Repeat) and net.n == 5000
    net = parse_line("conv(2, d=2^i) x n")
    assert isinstance(net, Repeat) and net.n == n and net.index == INDEX


def test_blocks_build_graph_layers():
    import rfsym.layers as graph
    assert parse_line("res(conv3, relu, conv3)") == graph.Residual(Sequential(Conv(3), ReLU(), Conv(3)))
    assert parse_line("res(conv3 | conv1/2, name=b1)") == graph.Residual(Conv(3), Conv(1, stride=2), name="b1")
    assert parse_line("cat(conv1 | conv3(p=1), relu | maxpool(3, 1, 1))") == graph.Concat(
        Conv(1), Sequential(Conv(3, padding=1), ReLU()), MaxPool(3, stride=1, padding=1))
    assert parse_line("up2, convt(4, 2, 1)") == Sequential(graph.Upsample(2), graph.ConvTranspose(4, stride=2, padding=1))


@pytest.mark.parametrize("text, message", [
    ("", "the spec is empty"),
    ("conv3,", "expected a layer"),
    ("cnov3", "unknown layer 'cnov3'; did you mean 'conv'?"),
    ("maxpool(3, strid=2)", "has no parameter 'strid'; did you mean 'stride'?"),
    ("conv(3, s=2", "expected ',' between arguments, got the end of the spec"),
    ("conv3 conv3", "separate layers with ','"),
    ("conv3 x 0", "a repeat count must be a positive integer, got 0"),
    ("conv3 x (1/2)", "a repeat count must be a positive integer or a symbol"),
    ("conv(3, s=0)", "stride must be a positive integer, got 0"),
    ("conv(3, k=3)", "got kernel_size twice"),
    ("conv(1/0)", "division by zero"),
    ("conv(2^1000)", "exponent 1000 is out of range"),
    ("conv(3, bias=2)", "bias must be true or false"),
    ("conv3(3)", "already gives the kernel size"),
    ("conv(1, 2, 3, 4, 5, 6, 7, 8, 9)", "takes at most 8 positional value(s)"),
    ("conv3 $", "unexpected character '$'"),
    ("relu(1)", "takes at most 0 positional value(s)"),
    ("conv3, name=x", "name=... belongs inside a block"),
])
def test_errors_say_where_and_what(text, message):
    with pytest.raises(SpecError) as info:
        parse_line(text)
    assert message in str(info.value)


def test_errors_point_at_the_column():
    with pytest.raises(SpecError) as info:
        parse_line("conv3, maxpool(3, strid=2)")
    lines = str(info.value).splitlines()
    assert lines[0].startswith("column 8: ")
    assert lines[1] == "  conv3, maxpool(3, strid=2)"
    assert lines[2] == "  " + " " * 7 + "^"


# --------------------------------------------------------------------------- YAML
pytest.importorskip("yaml")

EXAMPLE = """\
name: small
input_size: 64
in_channels: 3
layers:
  - conv: {kernel_size: k, stride: 2, padding: 1, out_channels: C, name: stem}
  - relu
  - "conv3(p=1) x 2"
  - maxpool: 2
  - conv:
      kernel_size: [3, 5]
      padding: same
      out_channels: 2*C
  - sequential:
      name: head
      layers: [gap, flatten]
"""


def test_yaml_file_builds_the_network_by_hand():
    spec = loads(EXAMPLE)
    assert spec.name == "small" and spec.input_size == 64 and spec.in_channels == 3
    assert spec.network == Sequential(
        Conv(k, stride=2, padding=1, out_channels=C, name="stem"), ReLU(), Conv(3, padding=1),
        Conv(3, padding=1), MaxPool(2), Conv((3, 5), padding="same", out_channels=2 * C),
        Sequential(rfsym.GlobalAvgPool(), rfsym.Flatten(), name="head"))
    assert set(spec.symbols) == {"k", "C"}
    r = analyze(spec.network, input_size=spec.input_size, in_channels=spec.in_channels)
    assert r.layers[0].params == C * (3 * k**2 + 1)


def test_yaml_list_and_one_line_forms():
    assert loads("[conv3, conv3/2]").network == Sequential(Conv(3), Conv(3, stride=2))
    assert loads("conv3 x 2").network == Sequential(Conv(3), Conv(3))
    assert loads("layers: [conv: 3, maxpool: [3, 2, 1], relu: null]").network == Sequential(
        Conv(3), MaxPool(3, stride=2, padding=1), ReLU())
    assert loads("layers:\n  - repeat: {n: 3, layers: [conv: {kernel_size: 2, dilation: 2^i}]}").network == \
        Sequential(Conv(2), Conv(2, dilation=2), Conv(2, dilation=4))


def test_yaml_blocks():
    import rfsym.layers as graph
    text = """\
layers:
  - residual:
      body: [conv3(p=1), relu, conv3(p=1)]
      shortcut: [conv1]
      name: block1
  - concat: [[conv1], [conv3(p=1), relu]]
  - concat:
      branches: [[conv1], [conv3(p=1)]]
      name: mixed
  - repeat:
      n: N
      layers: [conv: {kernel_size: 3, padding: 1}]
"""
    N = rfsym.symbols("N")
    assert loads(text).network == Sequential(
        graph.Residual(Sequential(Conv(3, padding=1), ReLU(), Conv(3, padding=1)), Conv(1), name="block1"),
        graph.Concat(Conv(1), Sequential(Conv(3, padding=1), ReLU())),
        graph.Concat(Conv(1), Conv(3, padding=1), name="mixed"),
        graph.Repeat(Conv(3, padding=1), N, INDEX))


@pytest.mark.parametrize("text, message", [
    ("layer:\n  - conv3\n", "<spec>:1: unknown key 'layer' in an architecture file; did you mean 'layers'?"),
    ("layers:\n  - conv3\n  - conv:\n      kernel_size: 3\n      strides: 2\n",
     "<spec>:5: layers[1].conv: unknown key 'strides' in conv (Conv); did you mean 'stride'?"),
    ("layers:\n  - conv: 3\n  - maxpol: 2\n", "<spec>:3: layers[1]: unknown layer 'maxpol'; did you mean 'maxpool'?"),
    ("layers:\n  - conv: {kernel_size: 3\n  - relu\n", "malformed YAML"),
    ("layers:\n  - conv: 3\n    name: x\n", "<spec>:2: layers[0]: a layer is 'word: parameters' with one word"),
    ("layers:\n  - conv: {kernel_size: 3, kernel_size: 5}\n", "'kernel_size' given twice"),
    ("layers:\n  - conv: {kernel_size: 0}\n", "<spec>:2: layers[0].conv: Conv: kernel_size must be a positive integer, got 0"),
    ("layers:\n  - conv: {kernel_size: 2.5}\n", "kernel_size must be an integer, got 2.5"),
    ("layers:\n  - conv: {kernel_size: 3, bias: maybe}\n", "bias must be true or false"),
    ("layers:\n  - \"conv3, maxpool(3, strid=2)\"\n", "<spec>:2: layers[0]: column 8:"),
    ("layers:\n  - repeat: {n: 2, layer: [conv3]}\n", "unknown key 'layer' in repeat; did you mean 'layers'?"),
    ("layers:\n  - residual: {bdy: [conv3]}\n", "unknown key 'bdy' in residual; did you mean 'body'?"),
    ("layers: []\n", "the list of layers is empty"),
    ("", "the file is empty"),
    ("42", "expected a mapping with 'layers'"),
    ("name: x\n", "needs 'layers'"),
    ("ndim: 4\nlayers: [conv3]\n", "ndim must be 1, 2 or 3"),
])
def test_yaml_errors_name_the_line_and_suggest(text, message):
    with pytest.raises(SpecError) as info:
        loads(text)
    assert message in str(info.value)


def test_load_reads_files_and_names_them(tmp_path):
    path = tmp_path / "tiny_net.yaml"
    path.write_text("layers: [conv3, conv3]\n")
    spec = load(path)
    assert spec.name == "tiny_net" and spec.network == Sequential(Conv(3), Conv(3))
    with pytest.raises(SpecError, match="no such file"):
        load(tmp_path / "missing.yaml")
    path.write_bytes(b"\xff\xfe\x00layers")
    with pytest.raises(SpecError, match="cannot read"):
        load(path)


# --------------------------------------------------------------------------- fuzzing
_PIECES = ["conv", "conv3", "conv3x5", "maxpool2", "pool", "res", "cat", "relu", "bn", "fc", "up2", "convt",
           "k", "s", "n", "i", "x", "x3", "p", "same", "true", "name", "=", "(", ")", "[", "]", ",", ";", "|",
           "*", "/", "//", "**", "^", "+", "-", "0", "1", "2", "3", "64", "99999999999", " ", "->", ".", "$"]


@given(st.lists(st.sampled_from(_PIECES), max_size=25).map("".join))
def test_fuzz_one_line_raises_only_rfsym_errors(text):
    """Any token soup either parses to a layer or raises an rfsym error that points at a column."""
    try:
        net = parse_line(text)
    except rfsym.RfsymError as err:
        assert re.match(r"column \d+: ", str(err)), str(err)
        return
    assert isinstance(net, rfsym.Layer)


@given(st.text(max_size=40))
def test_fuzz_one_line_arbitrary_text(text):
    """Arbitrary unicode text: a layer or an rfsym error."""
    try:
        parse_line(text)
    except rfsym.RfsymError:
        pass


_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 70), st.floats(allow_nan=True), st.sampled_from(_PIECES),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(
                                ["layers", "conv", "kernel_size", "stride", "padding", "name", "repeat", "n",
                                 "residual", "body", "shortcut", "concat", "branches", "maxpool", "relu",
                                 "input_size", "in_channels", "ndim", "bias", "k", "sequential"]), inner, max_size=4)),
    max_leaves=20)


_HALF = settings(max_examples=max(1, settings.default.max_examples // 2))  # the slower parsers: half the profile


@_HALF
@given(_values)
def test_fuzz_yaml_structures_raise_only_rfsym_errors(value):
    """Random YAML documents built from the format's own keys: a Spec or an rfsym error."""
    import yaml

    text = yaml.safe_dump(value)
    try:
        spec = loads(text, origin="net.yaml")
    except rfsym.RfsymError as err:
        assert str(err).startswith("net.yaml:"), str(err)  # every error names the file (and line)
        return
    assert isinstance(spec.network, rfsym.Layer)


@given(st.text(alphabet="layers:-[]{},conv3 k\n\t\"'&*!|>%@`#", max_size=60))
def test_fuzz_yaml_text_raises_only_rfsym_errors(text):
    """Malformed YAML text (anchors, tags, bad indentation): an rfsym error, never YAML's own."""
    try:
        loads(text)
    except rfsym.RfsymError:
        pass


_arg = st.one_of(st.integers(-2, 6).map(str), st.sampled_from(["k", "s", "n", "i", "k-1", "2*k", "same", "valid",
                                                               "true", "(3, 5)", "((1, 2), (0, 1))", "x", "2^i"]))
_kw = st.sampled_from(["", "s=", "p=", "d=", "g=", "c=", "in=", "bias=", "k=", "op=", "scale=", "mode=", "name=",
                       "q="])


@st.composite
def _layer_text(draw):
    word = draw(st.sampled_from(["conv", "maxpool", "avgpool", "bn", "relu", "fc", "up", "convt", "gap",
                                 "adaptiveavgpool", "flatten", "dropout", "linear"]))
    shape = draw(st.sampled_from(["", "1", "2", "3", "3x5", "0"]))
    stride = draw(st.sampled_from(["", "", "/2", "/1"])) if shape else ""
    args = ""
    if draw(st.booleans()):
        args = "(" + ", ".join(draw(_kw) + draw(_arg) for _ in range(draw(st.integers(0, 3)))) + ")"
    return word + shape + stride + args


_spec_text = st.recursive(
    _layer_text(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(", ".join),
        st.tuples(inner, st.sampled_from([" x 2", " x n", " * 3", " x 0", " x (k-1)"])).map("".join),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: "res(" + " | ".join(xs) + ")"),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: "cat(" + " | ".join(xs) + ")"),
        inner.map(lambda x: "[" + x + "]")),
    max_leaves=6)


@_HALF
@given(_spec_text)
def test_fuzz_structured_specs_raise_only_rfsym_errors(text):
    """Well-formed specs with random (often invalid) values: a layer or a located rfsym error."""
    try:
        net = parse_line(text)
    except rfsym.RfsymError as err:
        assert re.match(r"column \d+: ", str(err)), str(err)
        return
    assert isinstance(net, rfsym.Layer)
