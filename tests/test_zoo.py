"""The model zoo reproduces published numbers (sources cited in tests/zoo_published.py)."""

import pytest
import sympy as sp
from zoo_published import ARAUJO, TORCHVISION

from rfsym import RfsymError, analyze, zoo
from rfsym.zoo.torchvision import inception_v3_aux_logits

REQUIRED = [
    # issue 4: torchvision definitions
    "alexnet", "vgg11", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "mobilenet_v2", "efficientnet_b0", "inception_v3",
    # the TF-slim variants of Araujo et al.'s table
    "slim_alexnet_v2", "slim_vgg_16", "slim_resnet_v1_50", "slim_resnet_v1_101", "slim_mobilenet_v1",
    "slim_inception_v3",
    # paper models and symbolic families
    "unet", "wavenet", "tcn", "vgg", "resnet", "efficientnet",
    # issue 12: DAGs (dense blocks, a feature pyramid with several outputs)
    "densenet121", "densenet161", "densenet169", "densenet201", "densenet", "resnet50_fpn",
]


def test_every_required_entry_exists():
    missing = sorted(set(REQUIRED) - set(zoo.names()))
    assert not missing, f"zoo entries missing: {missing}"


_RESULTS = {}


def _result(name, size="default"):
    key = (name, size)
    if key not in _RESULTS:
        _RESULTS[key] = zoo.analyze(name, input_size=size)
    return _RESULTS[key]


def _available(names):
    return [n for n in names if n in zoo.names()]


@pytest.mark.parametrize("name", _available(TORCHVISION))
def test_torchvision_params_exact_and_gflops_rounded(name):
    params, gflops = TORCHVISION[name]
    r = _result(name)
    extra = 0
    if name == "inception_v3":
        # torchvision's num_params counts the training-only AuxLogits head; _ops does not
        aux = analyze(inception_v3_aux_logits(), input_size=17, in_channels=768)
        extra = aux.params
        assert extra == 3_326_696
    assert r.params + extra == params
    # torchvision publishes MACs in units of 1e9 rounded to 3 decimals (15.47 is 15.470)
    assert round(int(r.macs) / 1e9, 3) == gflops


@pytest.mark.parametrize("name", _available(ARAUJO))
@pytest.mark.parametrize("column, size", [(3, 224), (4, 321)])
def test_araujo_table_at_resolution(name, column, size):
    r = _result(name, size)
    for end_point, row in ARAUJO[name].items():
        layer = r.layer(end_point)
        got = (layer.rf, layer.jump, layer.effective_padding)
        assert got == (row[0], row[1], row[column]), f"{name} {end_point} at {size}"


@pytest.mark.parametrize("name", _available(ARAUJO))
def test_araujo_table_without_resolution(name):
    """Resolution "None": rf and stride never depend on the input size; the effective padding is a
    constant exactly where the table gives one, and a function of the size n where it says None."""
    n = zoo.symbols("n")
    r = _result(name, n)
    for end_point, (rf, stride, pad, pad224, pad321) in ARAUJO[name].items():
        layer = r.layer(end_point)
        assert (layer.rf, layer.jump) == (rf, stride), end_point
        padding = sp.sympify(layer.effective_padding)
        if pad is None:
            assert padding.free_symbols == {n}, end_point
            assert [padding.subs(n, v) for v in (224, 321)] == [pad224, pad321], end_point
        else:
            assert padding == pad, end_point


def test_mobilenet_v1_paper_counts():
    # Howard et al., "MobileNets", arXiv 1704.04861, Table 8: 1.0 MobileNet-224 has
    # 569 million mult-adds and 4.2 million parameters (1000 classes here).
    r = _result("slim_mobilenet_v1")
    assert round(int(r.macs) / 1e6) == 569
    assert round(int(r.params) / 1e6, 1) == 4.2


def test_torchvision_alexnet_vs_slim_alexnet_v2():
    """Both have receptive field 195 at the last pool; torchvision pads conv1 by 2, so its effective
    padding is 66 where slim's VALID conv1 gives 64 (Araujo's table)."""
    tv = _result("alexnet").layer("features.12")
    assert (tv.rf, tv.jump, tv.effective_padding) == (195, 32, 66)


def test_torchvision_vgg11_matches_slim_vgg_a():
    """torchvision's configuration A is slim's vgg_a: same 3x3 padding-1 convs and 2x2 pools.
    Araujo's table, vgg_a/pool5: rf 150, effective stride 32, effective padding 59 (224 and 321)."""
    for size in (224, 321):
        end = _result("vgg11", size).layer("features.20")
        assert (end.rf, end.jump, end.effective_padding) == (150, 32, 59)


def test_vgg16_layer_names_follow_torchvision():
    r = _result("vgg16")
    names = [layer.name for layer in r.layers]
    assert names[:5] == ["features.0", "features.1", "features.2", "features.3", "features.4"]
    assert "features.30" in names and "avgpool" in names and "classifier.6" in names
    assert r.layer("features.30").out_size == 7


def test_unknown_entry_and_argument_errors():
    with pytest.raises(RfsymError, match="no zoo entry named 'vgg17'"):
        zoo.get("vgg17")
    with pytest.raises(RfsymError, match="takes num_classes, got depth"):
        zoo.get("vgg16", depth=3)


def test_entries_know_their_inputs():
    for name in zoo.names():
        e = zoo.entry(name)
        assert e.in_channels >= 1 and e.source and e.description, name
        assert name in zoo.describe(name)


def test_torchvision_resnet50_vs_slim_resnet_v1_50():
    """torchvision's layer4 has rf 427 where slim's resnet_v1_50/block4 has 483 (Araujo's table):
    torchvision strides the first block of a stage, slim the last unit of the previous block."""
    tv = _result("resnet50").layer("layer4.2.relu")
    assert (tv.rf, tv.jump, tv.effective_padding) == (427, 32, 213)


def test_torchvision_inception_v3_matches_slim_geometry():
    """Same architecture and padding as slim's inception_v3 (VALID stem, padded stride-1 convs):
    Araujo's table, Mixed_7c: rf 1311, stride 32, padding 618, at torchvision's 299 too."""
    for end_point, (rf, stride, pad, _, _) in ARAUJO["slim_inception_v3"].items():
        if end_point.startswith("Mixed"):
            layer = _result("inception_v3").layer(end_point)
            assert (layer.rf, layer.jump, layer.effective_padding) == (rf, stride, pad), end_point


def test_other_published_receptive_fields():
    # frgfm/torch-scan README "Benchmark" table (RF column, 224x224, torchvision features)
    for name, rf in (("alexnet", 195), ("vgg11", 150), ("vgg16", 212), ("vgg19", 268)):
        assert _result(name).layer(zoo.entry(name).features).rf == rf, name
    # nashory/DeLF-pytorch issue #15: torchvision resnet50 layer3.5.conv3 267 / 16 / 133 and
    # layer4.2.conv3 427 / 32 / 213
    r = _result("resnet50")
    for layer, expected in (("layer3.5.conv3", (267, 16, 133)), ("layer4.2.conv3", (427, 32, 213))):
        got = r.layer(layer)
        assert (got.rf, got.jump, got.effective_padding) == expected
    # songdejia/DFL-CNN issue #16: VGG16's conv4_3 sees "patches as small as 92 x 92 with stride 8"
    conv4_3 = _result("vgg16").layer("features.21")
    assert (conv4_3.rf, conv4_3.jump) == (92, 8)


def test_vgg16_features_torch_scan():
    # frgfm/torch-scan PR #33: summary(vgg16().features, (3, 224, 224)): 14,714,688 parameters,
    # 15.35 GMACs
    r = analyze(zoo.get("vgg16")[0], input_size=224, in_channels=3)
    assert r.params == 14_714_688
    assert round(int(r.macs) / 1e9, 2) == 15.35


def test_efficientnet_b0_paper_counts():
    # Tan & Le 2019, Table 2: EfficientNet-B0 has 5.3M parameters and 0.39B FLOPS (multiply-adds)
    r = _result("efficientnet_b0")
    assert round(int(r.params) / 1e6, 1) == 5.3
    assert round(int(r.macs) / 1e9, 2) == 0.39
