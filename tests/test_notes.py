"""The seed notes (``shared/seed/receptive-field-notes.md``), reproduced exactly.

Every number the notes state is recomputed by the engine: the stacked 3×3 table (rf 3, 5, 7, 9),
the general formula R_L = 1 + Σ_i (k_i − 1) Π_{j<i} s_j proven symbolically, the 49C² vs 27C²
parameter comparison, the 5×5 worked example's ranges, and the growth of the receptive field with
stride and pooling (hand-worked from Araujo et al.'s recurrence in the comments, and checked
against a published table).
"""

import pytest
import sympy as sp

from rfsym import Conv, MaxPool, ReLU, Sequential, analyze, symbols


def stacked_3x3(n_layers, **kw):
    return Sequential(*[Conv(3, stride=1, padding=1, **kw) for _ in range(n_layers)])


# --------------------------------------------------------------------------- sections 2, 6, 7
# "Visual summary" table of the notes: layers 1..4, kernel 3×3, stride 1, padding 1.
NOTES_TABLE = [(1, 3), (2, 5), (3, 7), (4, 9)]


@pytest.mark.parametrize(("n_layers", "rf"), NOTES_TABLE)
def test_stacked_3x3_table(n_layers, rf):
    r = analyze(stacked_3x3(n_layers))
    assert r.rf == rf
    assert r.axes("rf") == (rf, rf)  # "3×3", "5×5", ...: the same on both axes
    assert r.jump == 1


def test_stacked_3x3_per_layer_table():
    """The per-layer view of the same table: ``result.layers[i]`` is layer i + 1 of the notes."""
    r = analyze(stacked_3x3(4), input_size=5)
    assert [layer.rf for layer in r.layers] == [3, 5, 7, 9]
    # "expanding by 2 pixels per layer ... one pixel of reach in every direction"
    assert [layer.start for layer in r.layers] == [-1, -2, -3, -4]
    assert [layer.center for layer in r.layers] == [0, 0, 0, 0]
    # padding 1 keeps the 5×5 map 5×5 (notes: "output is also 5×5")
    assert [layer.out_size for layer in r.layers] == [5, 5, 5, 5]


def test_notes_step_by_step_recurrence():
    """R = 3 + (3 − 1) = 5, R = 5 + (3 − 1) = 7: each layer adds k − 1 when every stride is 1."""
    r = analyze(stacked_3x3(4))
    prev = 1
    for layer in r.layers:
        assert layer.rf == prev + (3 - 1)
        prev = layer.rf


def test_activations_do_not_change_the_receptive_field():
    """"More nonlinearity (ReLU after each conv)" costs nothing spatially."""
    plain = analyze(stacked_3x3(3))
    with_relu = analyze(Sequential(*[m for _ in range(3) for m in (Conv(3, padding=1), ReLU())]))
    assert (with_relu.rf, with_relu.jump, with_relu.start) == (plain.rf, plain.jump, plain.start) == (7, 1, -3)


# --------------------------------------------------------------------------- section 3
def _general_formula(ks, ss):
    """R_L = 1 + Σ_{i=1}^{L} (k_i − 1) Π_{j=1}^{i−1} s_j, typed in from the notes."""
    return 1 + sum((ks[i] - 1) * sp.Mul(*ss[:i]) for i in range(len(ks)))


@pytest.mark.parametrize("n_layers", range(1, 7))
def test_general_formula_symbolic(n_layers):
    ks = symbols(f"k1:{n_layers + 1}")
    ss = symbols(f"s1:{n_layers + 1}")
    r = analyze(Sequential(*[Conv(k, stride=s) for k, s in zip(ks, ss)]))
    assert sp.simplify(r.rf - _general_formula(ks, ss)) == 0
    assert sp.simplify(r.jump - sp.Mul(*ss)) == 0
    # the same closed form holds for every prefix (layer i of the stack)
    for i, layer in enumerate(r.layers, 1):
        assert sp.simplify(layer.rf - _general_formula(ks[:i], ss[:i])) == 0


@pytest.mark.parametrize("n_layers", range(1, 7))
def test_general_formula_with_dilation(n_layers):
    """Dilation replaces k by d(k − 1) + 1 (the effective kernel)."""
    ks = symbols(f"k1:{n_layers + 1}")
    ss = symbols(f"s1:{n_layers + 1}")
    ds = symbols(f"d1:{n_layers + 1}")
    r = analyze(Sequential(*[Conv(k, stride=s, dilation=d) for k, s, d in zip(ks, ss, ds)]))
    extents = [d * (k - 1) + 1 for k, d in zip(ks, ds)]
    assert sp.simplify(r.rf - _general_formula(extents, ss)) == 0


def test_general_formula_stride_one_simplifies():
    """With s_j = 1 everywhere, R_L = 1 + Σ (k_i − 1)."""
    ks = symbols("k1:5")
    r = analyze(Sequential(*[Conv(k) for k in ks]))
    assert sp.simplify(r.rf - (1 + sum(k - 1 for k in ks))) == 0


def test_formula_verification_section():
    """Notes §5: R = 1 + (3 − 1) + (3 − 1) = 5; §6: R = 1 + 3×(3 − 1) = 7."""
    assert analyze(stacked_3x3(2)).rf == 1 + (3 - 1) + (3 - 1) == 5
    assert analyze(stacked_3x3(3)).rf == 1 + 3 * (3 - 1) == 7


# --------------------------------------------------------------------------- section 4
def test_one_7x7_versus_three_3x3():
    """Same receptive field, 49C² vs 27C² weights (bias=False, C channels in and out)."""
    C = symbols("C")
    one = analyze(Conv(7, in_channels=C, out_channels=C, bias=False))
    three = analyze(Sequential(*[Conv(3, in_channels=C, out_channels=C, bias=False) for _ in range(3)]))
    assert one.rf == three.rf == 7
    assert sp.simplify(one.params - 49 * C**2) == 0
    assert sp.simplify(three.params - 27 * C**2) == 0
    assert [layer.params for layer in three.layers] == [9 * C**2] * 3  # 3×(3²C²)
    assert sp.simplify(three.params / one.params) == sp.Rational(27, 49)
    # with biases each conv adds C
    assert sp.simplify(analyze(Conv(7, in_channels=C, out_channels=C)).params - (49 * C**2 + C)) == 0


# --------------------------------------------------------------------------- section 4/5 worked example
def test_worked_5x5_example_ranges():
    """Notes, "Expand the Dependency": conv1 position (i, j) covers rows [i−1, i+1] and cols
    [j−1, j+1]; the union over the nine positions around (2, 2) is rows and cols [0, 4]."""
    r = analyze(stacked_3x3(2), input_size=5)
    conv1, conv2 = r.layers

    def covered(layer, pos):
        lo = layer.start + layer.jump * pos
        return (lo, lo + layer.rf - 1)

    listed = {  # position in conv1 -> (rows, cols), as the notes list them
        (1, 1): ((0, 2), (0, 2)), (1, 2): ((0, 2), (1, 3)), (1, 3): ((0, 2), (2, 4)),
        (2, 1): ((1, 3), (0, 2)), (2, 2): ((1, 3), (1, 3)), (2, 3): ((1, 3), (2, 4)),
        (3, 1): ((2, 4), (0, 2)), (3, 2): ((2, 4), (1, 3)), (3, 3): ((2, 4), (2, 4)),
    }
    for (i, j), (rows, cols) in listed.items():
        assert (covered(conv1, i), covered(conv1, j)) == (rows, cols)
    # conv1's (2, 2) reads the 3×3 block (1..3, 1..3); conv2's (2, 2) reads all 25 pixels
    assert covered(conv1, 2) == (1, 3)
    assert covered(conv2, 2) == (0, 4)
    assert conv2.rf**2 == 25


# --------------------------------------------------------------------------- section 5
def test_stride_two_doubles_the_spacing():
    """"A stride of 2 doubles the spacing of receptive fields between adjacent neurons."

    Hand-worked (Araujo's recurrence r += (k − 1)·j, j *= s), 3×3 convs, padding 1:
        conv s=1: r = 1 + 2·1 = 3, j = 1
        conv s=2: r = 3 + 2·1 = 5, j = 2
        conv s=1: r = 5 + 2·2 = 9, j = 2      (vs 7 without the stride)
        conv s=1: r = 9 + 2·2 = 13, j = 2     (vs 9)
    """
    r = analyze(Sequential(Conv(3, padding=1), Conv(3, stride=2, padding=1), Conv(3, padding=1),
                           Conv(3, padding=1)))
    assert [layer.rf for layer in r.layers] == [3, 5, 9, 13]
    assert [layer.jump for layer in r.layers] == [1, 2, 2, 2]
    # every layer after the stride grows by twice as much as in the stride-1 stack
    plain = analyze(stacked_3x3(4))
    growth = [b.rf - a.rf for a, b in zip(r.layers, r.layers[1:])]
    plain_growth = [b.rf - a.rf for a, b in zip(plain.layers, plain.layers[1:])]
    assert growth[1:] == [2 * g for g in plain_growth[1:]] == [4, 4]


def test_repeated_strides_grow_geometrically():
    """Three 3×3 convs with stride 2: r = 1 + 2·1 + 2·2 + 2·4 = 15, j = 8 (vs 7 and 1)."""
    r = analyze(Sequential(*[Conv(3, stride=2) for _ in range(3)]))
    assert (r.rf, r.jump) == (15, 8)


def test_pooling_multiplies_later_growth():
    """"Pooling layers (like 2×2 max pooling) also expand the receptive field multiplicatively."

    Hand-worked, 3×3 convs with padding 1 and 2×2 max pools with stride 2 (the VGG-16 pattern):
        conv1_1: r = 3,  j = 1, u = −1
        conv1_2: r = 5,  j = 1, u = −2
        pool1:   r = 5 + 1·1 = 6,   j = 2, u = −2
        conv2_1: r = 6 + 2·2 = 10,  j = 2, u = −2 − 1·2 = −4
        conv2_2: r = 10 + 2·2 = 14, j = 2, u = −6
        pool2:   r = 14 + 1·2 = 16, j = 4, u = −6
        conv3_1: r = 16 + 2·4 = 24, j = 4, u = −6 − 1·4 = −10
    Each pool doubles the growth of every later 3×3 conv (2, then 4, then 8 per layer).
    The same values are published for vgg_16 (conv1_1, pool1, conv2_1, pool2, conv3_1 rows:
    RF 3, 6, 10, 16, 24; effective stride 1, 2, 2, 4, 4; effective padding 1, 2, 4, 6, 10) in
    google-research/receptive_field, receptive_field/RECEPTIVE_FIELD_TABLE.md.
    """
    net = Sequential(Conv(3, padding=1), Conv(3, padding=1), MaxPool(2),
                     Conv(3, padding=1), Conv(3, padding=1), MaxPool(2),
                     Conv(3, padding=1))
    r = analyze(net, input_size=224)
    assert [layer.rf for layer in r.layers] == [3, 5, 6, 10, 14, 16, 24]
    assert [layer.jump for layer in r.layers] == [1, 1, 2, 2, 2, 4, 4]
    assert [layer.effective_padding for layer in r.layers] == [1, 2, 2, 4, 6, 6, 10]
    assert [layer.out_size for layer in r.layers] == [224, 224, 112, 112, 112, 56, 56]
    growth = [b.rf - a.rf for a, b in zip(r.layers, r.layers[1:])]
    assert growth == [2, 1, 4, 4, 2, 8]


def test_pooling_symbolically():
    """A pool of size p and stride p between two k×k convs: r = k + (p − 1) + (k − 1)·p."""
    k, p = symbols("k p")
    r = analyze(Sequential(Conv(k), MaxPool(p), Conv(k)))
    assert sp.simplify(r.rf - (k + (p - 1) + (k - 1) * p)) == 0
    assert r.jump == p
