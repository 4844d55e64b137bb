"""Paper models and symbolic families of the zoo; the whole zoo against brute-force enumeration."""

import pytest
import sympy as sp
from zoo_published import TORCHVISION

from rfsym import analyze, zoo
from rfsym.enumeration import enumerate_network
from rfsym.zoo.families import ALPHA, BETA, GAMMA, compound_scaling


# --------------------------------------------------------------------------- papers
def test_unet_572_gives_388():
    # Ronneberger et al., MICCAI 2015, Fig. 1: input tile 572x572, output segmentation map 388x388
    r = zoo.analyze("unet")
    assert r.out_size == 388 and r.out_channels == 2
    # the crops of the copy-and-crop connections (Fig. 1: 568->392, 280->200, 136->104, 64->56)
    sizes = {layer.name: (layer.in_size, layer.out_size) for layer in r.layers if "crop" in layer.name}
    assert sorted(sizes.values()) == [(64, 56), (136, 104), (280, 200), (568, 392)]
    # the paper's "23 convolutional layers" (18 3x3, 4 up-convolutions, one 1x1)
    assert sum(layer.type in ("Conv", "ConvTranspose") for layer in r.layers) == 23
    # not published: counted by hand from Fig. 1 (bias everywhere, 1 input channel, 2 classes) in
    # the project's research notes, independently of rfsym; up-convolution MACs = H_in·W_in·4·C_in·C_out
    assert (r.params, r.macs) == (31_030_658, 150_428_424_448)


def test_unet_receptive_field_is_position_dependent():
    """The up-convolutions make the field depend on the output position modulo 16 (four 2x2
    stride-2 up-convolutions); brute-force enumeration agrees."""
    r = zoo.analyze("unet")
    e = enumerate_network(zoo.get("unet"), 572, ndim=1)
    assert (r.rf, r.rf_min, r.period, r.jump, r.start) == (e.rf, e.rf_min, e.period, e.jump, e.start)
    assert (r.rf, r.rf_min, r.period) == (204, 188, 16)


def test_wavenet_rf_1024_per_stack():
    # van den Oord et al. 2016, sec. 2.1: "each 1, 2, 4, ..., 512 block has receptive field of size 1024"
    S = zoo.symbols("S")
    rf = zoo.analyze("wavenet", stacks=S, input_size=None).rf
    assert sp.expand(rf - (1 + 1023 * S)) == 0
    assert zoo.analyze("wavenet", stacks=1, input_size=None).rf == 1024
    causal = zoo.analyze("wavenet", stacks=2, input_size=4096)
    assert causal.start == -(causal.rf - 1) and causal.out_size == 4096  # causal: only the past


def test_tcn_receptive_field_closed_form():
    # Bai et al. 2018, sec. 3.2: dilation d = 2^i per level, two causal convs per residual block,
    # so 1 + 2(k - 1)(2^L - 1) (locuslab/TCN TemporalBlock)
    L, k = zoo.symbols("L k")
    rf = zoo.analyze("tcn", levels=L, kernel_size=k, input_size=None).rf
    assert sp.simplify(rf - (1 + 2 * (k - 1) * (2**L - 1))) == 0
    for levels, kernel in ((1, 2), (4, 3), (8, 7)):
        r = zoo.analyze("tcn", levels=levels, kernel_size=kernel)
        assert r.rf == 1 + 2 * (kernel - 1) * (2**levels - 1)


# --------------------------------------------------------------------------- families
def test_vgg_family_closed_form_and_configurations():
    n = zoo.symbols("n1:6")
    r = zoo.analyze("vgg", depths=n)
    pool5 = r.layer("features.pool5")
    assert sp.expand(pool5.rf - (32 + 2 * sum(2**s * ns for s, ns in enumerate(n)))) == 0
    for name, depths in (("vgg11", (1, 1, 2, 2, 2)), ("vgg16", (2, 2, 3, 3, 3)), ("vgg19", (2, 2, 4, 4, 4))):
        values = dict(zip(n, depths))
        assert r.params.subs(values) == TORCHVISION[name][0]
        assert round(int(r.macs.subs(values)) / 1e9, 3) == TORCHVISION[name][1]
        assert pool5.rf.subs(values) == zoo.analyze(name).layer(zoo.entry(name).features).rf


def test_resnet_family_blocks_as_symbols():
    b = zoo.symbols("b1:5")
    r = zoo.analyze("resnet", blocks=b)
    rf = r.layer("layer4.rest").rf
    for name, blocks in (("resnet50", (3, 4, 6, 3)), ("resnet101", (3, 4, 23, 3)), ("resnet152", (3, 8, 36, 3))):
        values = dict(zip(b, blocks))
        assert r.params.subs(values) == TORCHVISION[name][0], name
        assert round(int(r.macs.subs(values)) / 1e9, 3) == TORCHVISION[name][1], name
        assert rf.subs(values) == zoo.analyze(name).layer(zoo.entry(name).features).rf
    basic = zoo.analyze("resnet", blocks=b, bottleneck_blocks=False)
    for name, blocks in (("resnet18", (2, 2, 2, 2)), ("resnet34", (3, 4, 6, 3))):
        assert basic.params.subs(dict(zip(b, blocks))) == TORCHVISION[name][0]


def test_efficientnet_phi_zero_is_b0():
    r = zoo.analyze("efficientnet", phi=0)
    assert (r.params, round(int(r.macs) / 1e9, 3)) == TORCHVISION["efficientnet_b0"]


def test_efficientnet_compound_scaling_growth():
    """Tan & Le 2019, sec. 3.3: FLOPs grow like (α·β²·γ²)^φ ≈ 2^φ with α = 1.2, β = 1.1, γ = 1.15.
    rfsym's derived MACs are exact for B0 and grow a little slower than (αβ²γ²)^φ, because
    depthwise convolutions scale with W (not W²) and the SE gates and classifier not with R."""
    cs = compound_scaling()
    D, W, R, phi = cs["D"], cs["W"], cs["R"], cs["phi"]
    assert cs["params"].subs({D: 1, W: 1}) == TORCHVISION["efficientnet_b0"][0]
    assert round(int(cs["macs"].subs({D: 1, W: 1, R: 7})) / 1e9, 3) == TORCHVISION["efficientnet_b0"][1]
    # params do not depend on the resolution; MACs are a polynomial with top term D·W²·R²
    assert R not in cs["params"].free_symbols
    assert sp.Poly(cs["macs"], D, W, R).total_degree() == 5
    ideal = ALPHA * BETA**2 * GAMMA**2
    for k in range(1, 8):
        growth = cs["macs_phi"].subs(phi, k) / cs["macs_phi"].subs(phi, 0)
        assert 0.9 * ideal**k < growth < ideal**k < 2**k
    # params grow like D·W² = (1.2·1.21)^φ at most
    growth = cs["params_phi"].subs(phi, 3) / cs["params_phi"].subs(phi, 0)
    assert growth < (ALPHA * BETA**2) ** 3


# --------------------------------------------------------------------------- every entry
_SMALL = {"wavenet": dict(stacks=1, input_size=(1100,)), "tcn": dict(levels=4, kernel_size=3, input_size=(64,))}


@pytest.mark.parametrize("name", zoo.names())
def test_entry_agrees_with_enumeration(name):
    """Closed form (engine) vs brute-force dependency sets, at every layer of every entry."""
    e = zoo.entry(name)
    kw = dict(_SMALL.get(name, {}))
    size = kw.pop("input_size", e.input_size)
    net = e.build(**kw)
    r = analyze(net, input_size=size, ndim=e.ndim, in_channels=e.in_channels)
    en = enumerate_network(net, size, ndim=e.ndim)
    assert len(en.layers) == len(r.layers)
    for mine, brute in zip(r.layers, en.layers):
        assert mine.type == brute.type, mine.name
        assert (mine.rf, mine.jump, mine.start, mine.out_size) == (brute.rf, brute.jump, brute.start,
                                                                   brute.out_size), mine.name


def test_torchvision_module_paths():
    names = {layer.name for layer in zoo.analyze("resnet50").layers}
    assert {"conv1", "bn1", "maxpool", "layer1.0.downsample.0", "layer4.2.conv3", "layer4.2.bn3", "fc"} <= names
    assert "layer1.1.downsample.0" not in names
    names = {layer.name for layer in zoo.analyze("resnet18").layers}
    assert "layer1.0.downsample.0" not in names and "layer2.0.downsample.0" in names
    names = {layer.name for layer in zoo.analyze("mobilenet_v2").layers}
    assert {"features.0.0", "features.1.conv.0.0", "features.1.conv.1", "features.2.conv.3", "features.18.0",
            "classifier.1"} <= names
    names = {layer.name for layer in zoo.analyze("efficientnet_b0").layers}
    assert {"features.1.0.block.0.0", "features.1.0.block.1", "features.2.0.block.2", "features.8.0"} <= names
    names = {layer.name for layer in zoo.analyze("inception_v3").layers}
    assert {"Conv2d_1a_3x3.conv", "Mixed_5b.branch5x5_2.conv", "Mixed_6b.branch7x7_1.conv",
            "Mixed_7b.branch3x3_2a.conv", "Mixed_7c.branch_pool.conv", "fc"} <= names


def test_slim_end_point_names():
    names = {layer.name for layer in zoo.analyze("slim_resnet_v1_50").layers}
    assert {"resnet_v1_50/conv1", "resnet_v1_50/pool1", "resnet_v1_50/block1",
            "resnet_v1_50/block1/unit_3/bottleneck_v1", "resnet_v1_50/block1/unit_3/bottleneck_v1.conv2",
            "resnet_v1_50/block4", "resnet_v1_50/pool5"} <= names
    names = {layer.name for layer in zoo.analyze("slim_inception_v3").layers}
    assert {"Mixed_6b", "Mixed_6b.Branch_1.Conv2d_0b_1x7", "MaxPool_5a_3x3"} <= names


def test_slim_resnet_v1_50_params_equal_torchvision_backbone():
    """Same layers, other stride placement: slim resnet_v1_50 without logits has torchvision
    resnet50's parameters minus its fc layer (2048·1000 + 1000)."""
    assert zoo.analyze("slim_resnet_v1_50").params == TORCHVISION["resnet50"][0] - 2_049_000
