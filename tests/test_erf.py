"""The effective receptive field: closed forms against the exact discrete impulse response."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from rfsym import AvgPool, Conv, MaxPool, ReLU, Sequential, symbols
from rfsym.effective_field import discrete_erf, erf
from rfsym.errors import RfsymError


def _moments(pos, w):
    mean = float((pos * w).sum())
    return mean, float(((pos - mean) ** 2 * w).sum())


@st.composite
def stacks(draw):
    layers = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "conv", "avg", "max", "relu"]))
        k = draw(st.integers(1, 5))
        if kind == "conv":
            layers.append(Conv(k, stride=draw(st.integers(1, 3)), dilation=draw(st.integers(1, 3)),
                               padding=draw(st.integers(0, 2))))
        elif kind in ("avg", "max"):
            cls = AvgPool if kind == "avg" else MaxPool
            layers.append(cls(k, stride=draw(st.integers(1, 3)), padding=draw(st.integers(0, k // 2))))
        else:
            layers.append(ReLU())
    return Sequential(*layers)


@settings(max_examples=300)
@given(stacks())
def test_closed_form_moments_equal_the_discrete_impulse_response(net):
    """Mean and variance in closed form equal those of the numerically convolved profiles."""
    e = erf(net, ndim=1)
    (pos, w), = discrete_erf(net, ndim=1)
    assert w.sum() == pytest.approx(1.0)
    mean, var = _moments(pos, w)
    assert float(e.mean) == pytest.approx(mean, abs=1e-9)
    assert float(e.variance) == pytest.approx(var, rel=1e-9, abs=1e-9)
    # the impulse response lives inside the theoretical receptive field
    r = e.result
    assert pos[0] >= r.start and pos[-1] <= r.start + r.rf - 1


@settings(max_examples=100)
@given(stacks(), st.lists(st.integers(0, 9), min_size=7, max_size=7))
def test_user_profiles_match_discrete(net, raw):
    """A user-given tap profile (here for every 7-tap window, uniform otherwise) is honoured exactly."""
    if sum(raw) == 0:
        raw[0] = 1
    net = Sequential(*net.layers, Conv(7, padding=3))
    e = erf(net, ndim=1, profiles={len(net.layers) - 1: raw})
    (pos, w), = discrete_erf(net, ndim=1, profiles={len(net.layers) - 1: raw})
    mean, var = _moments(pos, w)
    assert float(e.mean) == pytest.approx(mean, abs=1e-9)
    assert float(e.variance) == pytest.approx(var, rel=1e-9, abs=1e-9)


def test_uniform_stride_one_variance_is_n_k2_minus_1_over_12():
    # Luo et al. 2016, section 2: n uniform k-tap layers, variance n(k^2 - 1)/12
    k = symbols("k")
    for n in range(1, 6):
        assert sp.simplify(erf(Sequential(*[Conv(k)] * n)).variance - n * (k**2 - 1) / 12) == 0


def test_std_grows_like_sqrt_n_and_ratio_shrinks_like_one_over_sqrt_n():
    ratios = []
    for n in (4, 16, 64):
        e = erf(Sequential(*[Conv(3, padding=1)] * n))
        assert e.variance == sp.Rational(2 * n, 3)  # REFERENCE.md: 2n/3 per axis for 3x3 layers
        ratios.append(e.ratio())
    # quadrupling the depth roughly halves the ratio (exactly: 2*2*sqrt(2n/3)/(2n+1))
    assert float(ratios[1] / ratios[0]) == pytest.approx(0.5, rel=0.15)
    assert float(ratios[2] / ratios[1]) == pytest.approx(0.5, rel=0.05)


def test_stride_and_dilation_scale_variance_by_squared_jump_and_dilation():
    s, d = symbols("s d")
    e = erf(Sequential(Conv(3, stride=s), Conv(3, dilation=d)))
    assert sp.simplify(e.variance - (sp.Rational(2, 3) + s**2 * d**2 * sp.Rational(2, 3))) == 0


def test_asymmetric_profile_shifts_the_mean():
    e = erf(Sequential(Conv(3)), profiles={0: [0, 0, 1]}, ndim=1)
    assert e.shift == 1 and e.variance == 0


def test_radius_for_a_mass_and_gaussian_density():
    e = erf(Sequential(*[Conv(3)] * 6), ndim=1)
    assert e.radius(sigmas=2) == 4  # variance 4
    r95 = float(e.radius(mass=0.95))
    assert r95 == pytest.approx(1.959964 * 2, rel=1e-5)
    x = sp.Symbol("x", real=True)
    assert sp.integrate(e.gaussian(x), (x, -sp.oo, sp.oo)) == 1


def test_bad_profiles_are_rejected():
    with pytest.raises(RfsymError, match="profile has 2 taps but the layer's kernel has 3"):
        erf(Sequential(Conv(3)), profiles={0: [1, 1]})
    with pytest.raises(RfsymError, match="unknown profile"):
        erf(Sequential(Conv(3)), profiles={"default": "triangle"})


def test_two_dimensional_discrete_is_separable_product():
    net = Sequential(Conv((3, 5), stride=(1, 2)), Conv(3))
    (p0, w0), (p1, w1) = discrete_erf(net)
    e = erf(net)
    assert isinstance(e.variance, tuple)
    assert float(e.variance[0]) == pytest.approx(_moments(p0, w0)[1])
    assert float(e.variance[1]) == pytest.approx(_moments(p1, w1)[1])
    assert np.outer(w0, w1).sum() == pytest.approx(1.0)


# ------------------------------------------------------------------ graphs
from rfsym import Concat, Repeat, Residual  # noqa: E402


@st.composite
def small_graphs(draw):
    def conv():
        k = draw(st.sampled_from([1, 3, 5]))
        return Conv(k, padding=draw(st.integers(0, k // 2)) if draw(st.booleans()) else k // 2,
                    dilation=draw(st.integers(1, 2)) if k > 1 else 1)

    items = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "res", "cat"]))
        if kind == "conv":
            items.append(conv())
        elif kind == "res":
            items.append(Residual(Sequential(*[conv() for _ in range(draw(st.integers(1, 3)))])))
        else:
            items.append(Concat(*[Sequential(*[conv() for _ in range(draw(st.integers(1, 2)))])
                                  for _ in range(draw(st.integers(2, 3)))]))
    return Sequential(*items)


@settings(max_examples=200)
@given(small_graphs())
def test_graph_mixtures_equal_the_discrete_impulse_response(net):
    """Residual and concat branches mix; closed-form moments equal the discrete mixture's."""
    e = erf(net, ndim=1)
    (pos, w), = discrete_erf(net, ndim=1)
    mean, var = _moments(pos, w)
    assert w.sum() == pytest.approx(1.0)
    assert float(e.mean) == pytest.approx(mean, abs=1e-9)
    assert float(e.variance) == pytest.approx(var, rel=1e-9, abs=1e-9)


def test_branch_weights_are_honoured():
    net = Residual(Sequential(Conv(5, padding=2)), name="res")
    assert erf(net, ndim=1, branch_weights={"res": [1, 0]}).variance == 2  # the body alone
    assert erf(net, ndim=1, branch_weights={"res": [0, 1]}).variance == 0  # the identity alone
    assert erf(net, ndim=1).variance == 1  # equal mix: (2 + 0)/2, both centred


def test_skip_connections_shrink_the_effective_receptive_field():
    # Luo et al. 2016, section 2.3: residual connections make the ERF smaller
    depth = 8
    plain = erf(Sequential(*[Conv(3, padding=1)] * (2 * depth)))
    res = erf(Sequential(*[Residual(Sequential(Conv(3, padding=1), Conv(3, padding=1)))] * depth))
    assert plain.rf == res.rf == 4 * depth + 1
    assert res.variance < plain.variance


def test_symbolic_repeat_equals_unrolled():
    n = symbols("n")
    wavenet = erf(Repeat(lambda i: Conv(2, dilation=2**i), n), ndim=1)
    assert sp.simplify(wavenet.variance - (4**n - 1) / 12) == 0
    for m in range(1, 7):
        unrolled = erf(Repeat(lambda i: Conv(2, dilation=2**i), m), ndim=1)
        assert wavenet.variance.subs(n, m) == unrolled.variance
        assert sp.simplify(erf(Repeat(Conv(3, stride=2), n), ndim=1).variance.subs(n, m)
                           - erf(Sequential(*[Conv(3, stride=2)] * m), ndim=1).variance) == 0


def test_subsampling_and_dilation_enlarge_the_erf():
    # Luo et al. 2016, section 2.4: subsampling and dilated convolutions increase the ERF
    base = erf(Sequential(*[Conv(3)] * 4), ndim=1).variance
    assert erf(Sequential(Conv(3, stride=2), *[Conv(3)] * 3), ndim=1).variance > base
    assert erf(Sequential(*[Conv(3, dilation=2)] * 4), ndim=1).variance > base


# ------------------------------------------------------------------ any DAG
from rfsym import Graph  # noqa: E402
from rfsym.zoo.dense import dense_layer, densenet_network  # noqa: E402


@st.composite
def small_dags(draw):
    """Random 1-D DAGs of size-keeping convolutions (dilated, any split of the padding) whose nodes feed several
    merges: add/concat/mul over two or three earlier nodes, with random branch weights."""
    names, nodes, weights = ["input"], [], {}
    for j in range(draw(st.integers(1, 7))):
        name = f"n{j}"
        if len(names) > 1 and draw(st.booleans()):
            ins = tuple(draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True)))
            nodes.append((name, draw(st.sampled_from(["add", "concat", "mul"])), ins))
            if draw(st.booleans()):
                weights[name] = draw(st.lists(st.integers(1, 4), min_size=len(ins), max_size=len(ins)))
        else:
            k, d = draw(st.sampled_from([1, 2, 3, 5])), draw(st.integers(1, 2))
            left = draw(st.integers(0, d * (k - 1)))  # the size is kept, the centre moves
            nodes.append((name, Conv(k, dilation=d, padding=((left, d * (k - 1) - left),)),
                          draw(st.sampled_from(names))))
        names.append(name)
    return Graph(*nodes), weights


@settings(max_examples=200)
@given(small_dags())
def test_dag_mixtures_equal_the_discrete_impulse_response(case):
    """On DAGs with fan-out and fan-in each merge mixes its inputs' responses with the weights
    of its edges; the closed-form moments equal those of the discrete response, which pushes the
    weights back through every node once."""
    net, weights = case
    e = erf(net, 16, ndim=1, branch_weights=weights)
    (pos, w), = discrete_erf(net, 16, ndim=1, branch_weights=weights)
    mean, var = _moments(pos, w)
    assert w.sum() == pytest.approx(1.0)
    assert float(e.mean) == pytest.approx(mean, abs=1e-9)
    assert float(e.variance) == pytest.approx(var, rel=1e-9, abs=1e-9)
    r = e.result
    assert pos[0] >= r.start and pos[-1] <= r.start + r.rf - 1


def test_dense_block_erf_equals_the_discrete_response():
    """A dense block (each layer reads the concatenation of all earlier tensors): the ERF in
    closed form equals the discrete response, by hand too. With equal weights per edge the block
    output mixes x (variance 0) and layers 1..3, where layer L mixes its L inputs and adds its
    3x3 conv's 2/3."""
    block = Graph(("l1", dense_layer(4), "input"),
                  ("c2", "concat", ("input", "l1")), ("l2", dense_layer(4), "c2"),
                  ("c3", "concat", ("input", "l1", "l2")), ("l3", dense_layer(4), "c3"),
                  ("out", "concat", ("input", "l1", "l2", "l3")))
    e = erf(block, 16, ndim=1, in_channels=8)
    (pos, w), = discrete_erf(block, 16, ndim=1)
    mean, var = _moments(pos, w)
    v1 = sp.Rational(2, 3)
    v2 = (0 + v1) / 2 + v1
    v3 = (0 + v1 + v2) / 3 + v1
    assert e.mean == 0 and e.variance == (0 + v1 + v2 + v3) / 4
    assert float(e.variance) == pytest.approx(var) and mean == pytest.approx(0, abs=1e-12)
    # densenet's layout end to end (stem, blocks, transition, global pool and classifier)
    net = densenet_network(4, (2, 2), 8, num_classes=3)
    e = erf(net, 32)
    for (pos, w), m, v in zip(discrete_erf(net, 32), e.axes("mean"), e.axes("variance")):
        dm, dv = _moments(pos, w)
        assert float(m) == pytest.approx(dm) and float(v) == pytest.approx(dv)
