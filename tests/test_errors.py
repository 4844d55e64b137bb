"""Every error message, exact text.

A message names *where* (``Conv`` at construction, ``layer 3 (Conv)`` once the layer's position
is known: inside ``analyze``, ``Result.subs`` and ``Result.evaluate``), the parameter, what was
expected and what was given, and the fix where one exists. Every error is an
:class:`~rfsym.errors.RfsymError` (a ``ValueError``), raised from rfsym's own code: no exception
from inside sympy or numpy escapes, and none is chained onto ours.
"""

import os
import warnings
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import rfsym
from rfsym import (
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    Conv,
    Flatten,
    GraphError,
    LayerError,
    Linear,
    MaxPool,
    ReLU,
    RfsymError,
    Sequential,
    SizeError,
    analyze,
    symbols,
)

k, s, n, p = symbols("k s n p")
RFSYM_DIR = os.path.dirname(os.path.abspath(rfsym.__file__))


def _net(stride=1):
    """Four layers; layer 3 is the Conv whose stride the tests make bad."""
    return Sequential(Conv(3, padding=1), ReLU(), Conv(3, padding=1), Conv(3, stride=stride, padding=1))


# (id, thunk, exception class, exact message)
CASES = [
    # ---- kernel, stride, dilation <= 0, at construction
    ("kernel 0", lambda: Conv(0), LayerError, "Conv: kernel_size must be a positive integer, got 0"),
    ("kernel -1", lambda: Conv(-1), LayerError, "Conv: kernel_size must be a positive integer, got -1"),
    ("stride 0", lambda: Conv(3, stride=0), LayerError, "Conv: stride must be a positive integer, got 0"),
    ("stride -2", lambda: Conv(3, stride=-2), LayerError, "Conv: stride must be a positive integer, got -2"),
    ("dilation 0", lambda: Conv(3, dilation=0), LayerError, "Conv: dilation must be a positive integer, got 0"),
    ("pool kernel 0", lambda: MaxPool(0), LayerError, "MaxPool: kernel_size must be a positive integer, got 0"),
    ("pool stride 0", lambda: AvgPool(2, stride=0), LayerError, "AvgPool: stride must be a positive integer, got 0"),
    ("per-axis stride 0", lambda: Conv(3, stride=(1, 0)), LayerError,
     "Conv: stride must be a positive integer, got 0"),
    ("negative symbolic kernel", lambda: Conv(-k), LayerError, "Conv: kernel_size must be a positive integer, got -k"),
    ("negative-integer symbol", lambda: Conv(sp.Symbol("m", integer=True, negative=True)), LayerError,
     "Conv: kernel_size must be a positive integer, got m"),
    # ---- the same, found only once values are substituted or evaluated: the layer's index
    ("stride 0 after subs", lambda: analyze(_net(s)).subs({s: 0}), LayerError,
     "layer 3 (Conv): stride must be a positive integer, got 0"),
    ("kernel 0 after subs", lambda: analyze(Sequential(Conv(3), Conv(k - 2))).subs({k: 2}), LayerError,
     "layer 1 (Conv): kernel_size must be a positive integer, got 0"),
    ("stride 0 after subs, by name", lambda: analyze(_net(s)).subs({"s": 0}), LayerError,
     "layer 3 (Conv): stride must be a positive integer, got 0"),
    ("named layer", lambda: analyze(Sequential(Conv(3), Conv(3, dilation=k, name="atrous"))).subs({k: -1}),
     LayerError, "layer 1 (Conv 'atrous'): dilation must be a positive integer, got -1"),
    ("stride 0 in evaluate", lambda: analyze(_net(s)).evaluate({s: np.array([1, 2, 0])}), LayerError,
     "layer 3 (Conv): stride must be a positive integer, got 0 for some of the given values"),
    ("kernel 0 in evaluate", lambda: analyze(Sequential(Conv(k - 2))).evaluate({k: [3, 2]}), LayerError,
     "layer 0 (Conv): kernel_size must be a positive integer, got 0 for some of the given values"),
    ("non-integer expression in evaluate", lambda: analyze(Sequential(Conv(3), Conv(k / 2))).evaluate({k: [4, 5]}),
     LayerError, "layer 1 (Conv): kernel_size = k/2: k/2 must be an integer, got 2.5 for some of the given values"),
    # ---- negative padding
    ("padding -1", lambda: Conv(3, padding=-1), LayerError, "Conv: padding must be a nonnegative integer, got -1"),
    ("padding pair", lambda: Conv(3, padding=((0, -2), (1, 1))), LayerError,
     "Conv: padding must be a nonnegative integer, got -2"),
    ("padding -1 after subs", lambda: analyze(Sequential(Conv(3), Conv(3, padding=p))).subs({p: -1}),
     LayerError, "layer 1 (Conv): padding must be a nonnegative integer, got -1"),
    # ---- non-integers
    ("kernel 2.5", lambda: Conv(2.5), LayerError, "Conv: kernel_size must be a positive integer, got 2.5"),
    ("kernel '3'", lambda: Conv("3"), LayerError, "Conv: kernel_size must be a positive integer, got '3'"),
    ("kernel Fraction", lambda: Conv(Fraction(5, 2)), LayerError,
     "Conv: kernel_size must be a positive integer, got Fraction(5, 2)"),
    ("kernel sqrt(2)", lambda: Conv(sp.sqrt(2)), LayerError, "Conv: kernel_size must be a positive integer, got sqrt(2)"),
    ("kernel nan", lambda: Conv(sp.nan), LayerError, "Conv: kernel_size must be a positive integer, got nan"),
    ("kernel float nan", lambda: Conv(float("nan")), LayerError, "Conv: kernel_size must be a positive integer, got nan"),
    ("kernel oo", lambda: Conv(sp.oo), LayerError, "Conv: kernel_size must be a positive integer, got oo"),
    ("kernel True", lambda: Conv(True), LayerError, "Conv: kernel_size must be a positive integer, got True"),
    ("kernel None", lambda: Conv(None), LayerError, "Conv: kernel_size must be a positive integer, got None"),
    ("stride 1.5", lambda: Conv(3, stride=1.5), LayerError, "Conv: stride must be a positive integer, got 1.5"),
    ("padding 0.5", lambda: Conv(3, padding=0.5), LayerError, "Conv: padding must be a nonnegative integer, got 0.5"),
    ("channels 2.5", lambda: Conv(3, out_channels=2.5), LayerError,
     "Conv: out_channels must be a positive integer, got 2.5"),
    ("kernel 5/2 after subs", lambda: analyze(Sequential(Conv(k))).subs({k: sp.Rational(5, 2)}), LayerError,
     "layer 0 (Conv): the value for k must be an integer, got 5/2"),
    ("subs with a string", lambda: analyze(Sequential(Conv(k))).subs({k: "3"}), RfsymError,
     "subs: the value for k must be an integer or a sympy expression, got '3'"),
    ("subs with None", lambda: analyze(Sequential(Conv(k))).subs({"k": None}), RfsymError,
     "subs: the value for k must be an integer or a sympy expression, got None"),
    ("evaluate with 2.5", lambda: analyze(Sequential(Conv(k))).evaluate({k: [3, 2.5]}), RfsymError,
     "evaluate: the values for k must be integers, got 2.5"),
    ("evaluate with a string", lambda: analyze(Sequential(Conv(k))).evaluate({k: "3"}), RfsymError,
     "evaluate: the values for k must be integers (a number or an integer numpy array), got '3'"),
    ("bias 1", lambda: Conv(3, bias=1), LayerError, "Conv: bias must be True or False, got 1"),
    ("ceil_mode 1", lambda: MaxPool(2, ceil_mode=1), LayerError, "MaxPool: ceil_mode must be True or False, got 1"),
    # ---- tuples of the wrong length, mismatched lengths
    ("kernel 4-tuple", lambda: Conv((3, 3, 3, 3)), LayerError,
     "Conv: kernel_size must be a scalar or a tuple of 1 to 3 values, got (3, 3, 3, 3)"),
    ("kernel empty tuple", lambda: Conv(()), LayerError,
     "Conv: kernel_size must be a scalar or a tuple of 1 to 3 values, got ()"),
    ("padding 4-tuple", lambda: Conv(3, padding=(1, 1, 1, 1)), LayerError,
     "Conv: padding must be a scalar or a tuple of 1 to 3 values, got (1, 1, 1, 1)"),
    ("padding triple", lambda: Conv(3, padding=((1, 2, 3),)), LayerError,
     "Conv: padding pairs must be (left, right), got (1, 2, 3)"),
    ("kernel vs stride", lambda: Conv((3, 3), stride=(1, 1, 1)), LayerError,
     "Conv: stride has 3 axes but kernel_size has 2; give every per-axis tuple the same length "
     "(or a scalar for all axes)"),
    ("kernel vs padding", lambda: MaxPool((3, 3, 3), padding=(1, 1)), LayerError,
     "MaxPool: padding has 2 axes but kernel_size has 3; give every per-axis tuple the same length "
     "(or a scalar for all axes)"),
    ("layers disagree", lambda: analyze(Sequential(Conv((3, 3)), ReLU(), Conv((3, 3, 3)))), LayerError,
     "Sequential: layers disagree on the number of spatial axes: item 2 (Conv) has 3, item 0 (Conv) has 2"),
    ("input size vs layers", lambda: analyze(Conv((3, 3)), input_size=(9, 9, 9)), LayerError,
     "analyze: the number of spatial axes is ambiguous: [2, 3] (from ndim, input_size and per-axis layer "
     "arguments); make them agree"),
    ("ndim vs layers", lambda: analyze(Conv(3), input_size=(5, 5), ndim=3), LayerError,
     "analyze: the number of spatial axes is ambiguous: [2, 3] (from ndim, input_size and per-axis layer "
     "arguments); make them agree"),
    ("adaptive output_size axes", lambda: analyze(AdaptiveAvgPool((2, 2, 2)), input_size=(8, 8)), LayerError,
     "analyze: the number of spatial axes is ambiguous: [2, 3] (from ndim, input_size and per-axis layer "
     "arguments); make them agree"),
    # ---- output size < 1 at the given input size
    ("too small", lambda: analyze(Sequential(Conv(3), Conv(3), Conv(5)), input_size=5), SizeError,
     "layer 2 (Conv): output size must be at least 1, got -3 on axis 0 (this layer's input size is 1); "
     "give a larger input_size or more padding"),
    ("too small on axis 1", lambda: analyze(Conv((1, 7)), input_size=(8, 6)), SizeError,
     "layer 0 (Conv): output size must be at least 1, got 0 on axis 1 (this layer's input size is 6); "
     "give a larger input_size or more padding"),
    ("pool too small", lambda: analyze(Sequential(Conv(3, padding=1), MaxPool(2), MaxPool(2), MaxPool(2)),
                                       input_size=4), SizeError,
     "layer 3 (MaxPool): output size must be at least 1, got 0 on axis 0 (this layer's input size is 1); "
     "give a larger input_size or more padding"),
    ("too small after subs", lambda: analyze(Sequential(Conv(3), Conv(k, name="body")), input_size=4).subs({k: 5}),
     SizeError, "layer 1 (Conv 'body'): output size must be at least 1, got -2 on axis 0 (this layer's input "
     "size is 2); give a larger input_size or more padding"),
    ("too small in evaluate of one configuration", lambda: analyze(Sequential(Conv(3), Conv(k)),
                                                                  input_size=4).evaluate({k: 5}), SizeError,
     "layer 1 (Conv): output size must be at least 1, got -2 on axis 0 (this layer's input size is 2); "
     "give a larger input_size or more padding"),
    ("too small in evaluate", lambda: analyze(Sequential(Conv(3), Conv(k)), input_size=n).evaluate(
        {k: 3, n: [10, 4, 3]}), SizeError,
     "layer 1 (Conv): output size must be at least 1, got 0 on axis 0 for some of the given values (this "
     "layer's input size 2 there); give a larger input_size or more padding"),
    ("input size 0", lambda: analyze(Conv(3), input_size=0), LayerError,
     "analyze: input_size must be a positive integer, got 0"),
    ("input size '224'", lambda: analyze(Conv(3), input_size="224"), LayerError,
     "analyze: input_size must be a positive integer, got '224'"),
    ("in_channels 0", lambda: analyze(Conv(3), in_channels=0), LayerError,
     "analyze: in_channels must be a positive integer, got 0"),
    # ---- channels
    ("in_channels mismatch", lambda: analyze(Sequential(Conv(3, in_channels=3, out_channels=8),
                                                        Conv(3, in_channels=4, out_channels=8))), LayerError,
     "layer 1 (Conv): in_channels=4 but the previous layer gives 8 channels; use in_channels=8, or leave it "
     "out to take it from the previous layer"),
    ("in_channels vs analyze", lambda: analyze(Conv(3, in_channels=3, out_channels=8), in_channels=4), LayerError,
     "layer 0 (Conv): in_channels=3 but the previous layer gives 4 channels; use in_channels=4, or leave it "
     "out to take it from the previous layer"),
    ("num_features mismatch", lambda: analyze(Sequential(Conv(3, in_channels=3, out_channels=8), BatchNorm(4))),
     LayerError, "layer 1 (BatchNorm): num_features=4 but the previous layer gives 8 channels; use "
     "num_features=8, or leave it out to take it from the previous layer"),
    ("in_features mismatch", lambda: analyze(Sequential(Conv(3, in_channels=3, out_channels=4), Flatten(),
                                                        Linear(10, 2)), input_size=5), LayerError,
     "layer 2 (Linear): in_features=10 but the input flattens to 36 features (4 channels x sizes (3, 3))"),
    ("groups divide channels", lambda: Conv(3, in_channels=6, out_channels=8, groups=4), LayerError,
     "Conv: in_channels must be divisible by groups=4, got 6"),
    ("groups 0", lambda: Conv(3, groups=0), LayerError, "Conv: groups must be a positive integer, got 0"),
    # ---- padding modes
    ("'same' with stride 2", lambda: Conv(3, stride=2, padding="same"), LayerError,
     "Conv: padding='same' requires stride 1 (PyTorch's rule), got stride=2; use padding='tf_same' for "
     "TensorFlow's SAME"),
    ("'same' with a symbolic stride", lambda: analyze(Sequential(Conv(3), Conv(3, stride=s, padding="same"))),
     LayerError, "layer 1 (Conv): padding='same' requires stride 1 (PyTorch's rule), got stride=s; use "
     "padding='tf_same' for TensorFlow's SAME"),
    ("tf_same without input size", lambda: analyze(Sequential(Conv(3), Conv(3, stride=2, padding="tf_same"))),
     LayerError, "layer 1 (Conv): padding='tf_same' depends on the input size; pass input_size (a number or a "
     "symbol) to analyze"),
    ("unknown padding mode", lambda: Conv(3, padding="full"), LayerError,
     "Conv: padding must be an int, per-axis (left, right) pairs, 'valid', 'same' or 'tf_same', got 'full'"),
    ("pool padding > k/2", lambda: MaxPool(3, padding=2), LayerError,
     "MaxPool: padding must be at most half the kernel size (PyTorch's rule for pools), got padding=2 with "
     "kernel_size=3"),
    ("pool padding > k/2 per axis", lambda: AvgPool((2, 4), padding=(2, 2)), LayerError,
     "AvgPool: padding must be at most half the kernel size (PyTorch's rule for pools), got padding=2 with "
     "kernel_size=2"),
    ("pool padding > k/2 after subs", lambda: analyze(Sequential(Conv(3), MaxPool(3, padding=p))).subs({p: 2}),
     LayerError, "layer 1 (MaxPool): padding must be at most half the kernel size (PyTorch's rule for pools), "
     "got padding=2 with kernel_size=3"),
    # ---- adaptive pooling
    ("adaptive without size", lambda: analyze(Sequential(Conv(3), AdaptiveAvgPool(2))), LayerError,
     "layer 1 (AdaptiveAvgPool): adaptive pooling to more than one output needs the input size; pass "
     "input_size to analyze"),
    ("adaptive output_size 0", lambda: AdaptiveAvgPool(0), LayerError,
     "AdaptiveAvgPool: output_size must be a positive integer, got 0"),
    # ---- structure and API misuse
    ("not a layer", lambda: Sequential(Conv(3), 5), LayerError, "Sequential: item 1 must be an rfsym layer, got 5"),
    ("analyze an int", lambda: analyze(5), RfsymError, "analyze expects an rfsym layer or Sequential, got int"),
    ("unknown symbol", lambda: analyze(Sequential(Conv(k, stride=s))).subs({"q": 2}), RfsymError,
     "symbol q does not occur in this network (its symbols: k, s)"),
    ("evaluate missing a symbol", lambda: analyze(Sequential(Conv(k, stride=s))).evaluate({s: [1, 2]}), RfsymError,
     "evaluate needs a value for every symbol; missing: k"),
    ("evaluate shapes", lambda: analyze(Sequential(Conv(k, stride=s))).evaluate({k: [3, 3], s: [1, 2, 3]}),
     RfsymError, "evaluate: the value arrays must broadcast together, got shapes k (2,), s (3,)"),
]


def _innermost_file(excinfo):
    tb = excinfo.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename)


@pytest.mark.parametrize(("thunk", "cls", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_message(thunk, cls, message):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these cases may warn on the way
        with pytest.raises(cls) as excinfo:
            thunk()
    err = excinfo.value
    assert str(err) == message
    # the hierarchy: every error is an RfsymError and a ValueError
    assert isinstance(err, RfsymError) and isinstance(err, ValueError)
    # raised by rfsym itself, with nothing from sympy/numpy chained onto it
    assert _innermost_file(excinfo).startswith(RFSYM_DIR + os.sep)
    assert err.__cause__ is None
    assert err.__context__ is None or err.__suppress_context__


def test_error_classes():
    assert issubclass(LayerError, RfsymError) and issubclass(SizeError, RfsymError)
    assert issubclass(GraphError, RfsymError) and issubclass(RfsymError, ValueError)
    # a LayerError keeps where it happened and which parameter
    with pytest.raises(LayerError) as excinfo:
        analyze(_net(s)).subs({s: 0})
    assert (excinfo.value.where, excinfo.value.param) == ("layer 3 (Conv)", "stride")


def test_layer_index_counts_every_layer():
    """The index in ``layer i (Type)`` is the index of ``result.layers``: activations count."""
    net = Sequential(Conv(3), ReLU(), BatchNorm(), Conv(3, stride=s), ReLU(), Conv(3, stride=s))
    r = analyze(net)
    assert [lr.type for lr in r.layers] == ["Conv", "ReLU", "BatchNorm", "Conv", "ReLU", "Conv"]
    with pytest.raises(LayerError, match=r"^layer 3 \(Conv\): stride must be a positive integer, got 0$"):
        r.subs({s: 0})


# --------------------------------------------------------------------------- symbols without assumptions
def test_plain_symbol_is_coerced_with_a_warning():
    x = sp.Symbol("x")  # no assumptions: sign and integrality unknown
    with pytest.warns(UserWarning) as record:
        conv = Conv(x, stride=2)
    assert len(record) == 1
    assert str(record[0].message) == (
        "kernel_size: symbol x has no integer/positive assumptions; rfsym treats it as a positive integer "
        "(create symbols with rfsym.symbols('x'))")
    assert os.path.abspath(record[0].filename) == os.path.abspath(__file__)  # points at this line
    (kx,) = conv.free_symbols
    assert kx.name == "x" and kx.is_integer and kx.is_positive
    r = analyze(conv, input_size=16)
    assert r.rf == kx
    assert sp.simplify(r.out_size - sp.floor((16 - kx) / 2) - 1) == 0
    # substitution by name, by the user's original symbol and by the coerced one all work
    for key in ("x", x, kx):
        sub = r.subs({key: 5})
        assert (sub.rf, sub.out_size) == (5, 6)
    assert int(r.evaluate({"x": 5}).rf) == 5
    assert list(r.evaluate({x: np.array([3, 5])}).out_size) == [7, 6]


def test_plain_symbol_for_padding_becomes_nonnegative():
    q = sp.Symbol("q")
    with pytest.warns(UserWarning, match=r"^padding: symbol q has no integer/nonnegative assumptions; rfsym "
                                         r"treats it as a nonnegative integer \(create symbols with "
                                         r"rfsym.symbols\('q', nonnegative=True\)\)$"):
        conv = Conv(3, padding=q)
    r = analyze(conv, input_size=8)
    assert r.subs({"q": 0}).out_size == 6
    assert r.subs({"q": 1}).start == -1


def test_one_name_in_two_roles_substitutes_both():
    """A plain symbol used as a kernel (coerced positive) and as a padding (coerced nonnegative)
    becomes two sympy symbols with one name; substituting the name replaces both."""
    y = sp.Symbol("y")
    with pytest.warns(UserWarning):
        net = Sequential(Conv(y), Conv(3, padding=y))
    r = analyze(net, input_size=10)
    assert len(r.free_symbols) == 2
    sub = r.subs({"y": 2})
    assert (sub.rf, sub.start, sub.out_size) == (4, -2, 11)


def test_several_plain_symbols_in_one_warning():
    a, b = sp.symbols("a b")
    with pytest.warns(UserWarning, match=r"^kernel_size: symbols a, b have no integer/positive assumptions; "
                                         r"rfsym treats them as positive integers \(create symbols with "
                                         r"rfsym.symbols\('a b'\)\)$"):
        Conv(a + b)


def test_integer_symbol_without_sign_is_coerced():
    z = sp.Symbol("z", integer=True)
    with pytest.warns(UserWarning, match="symbol z has no integer/positive assumptions"):
        conv = Conv(3, stride=z)
    (sz,) = conv.free_symbols
    assert sz.is_positive


def test_rfsym_symbols_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analyze(Sequential(Conv(k, stride=s, padding=symbols("p", nonnegative=True))), input_size=n)


# --------------------------------------------------------------------------- accepted spellings
@pytest.mark.parametrize("value", [3, np.int64(3), 3.0, np.float64(3.0), Fraction(6, 2), sp.Integer(3),
                                   sp.Float(3.0), sp.Rational(6, 2)])
def test_integral_values_are_accepted_as_integers(value):
    conv = Conv(value)
    assert conv.kernel_size == 3 and isinstance(conv.kernel_size, sp.Integer)
