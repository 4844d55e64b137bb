"""DAG entries of the zoo: torchvision's DenseNets and the ResNet-50 FPN backbone.

Published numbers are in tests/zoo_published.py (torchvision's weights metadata); the checks
against torchvision's own modules are in tests/test_zoo_torchvision.py (DenseNets) and below (FPN).
"""

import pytest
import sympy as sp
from zoo_published import TORCHVISION

from rfsym import Concat, Identity, Repeat, analyze, symbols, verify, zoo
from rfsym.zoo.dense import DENSENET_CONFIGS, dense_layer, densenet, densenet_network


# --------------------------------------------------------------------------- DenseNet
def test_densenet_connectivity_is_dense():
    """Every dense layer reads a concatenation of the block input and every earlier layer's
    output (the tensors themselves, not a chain of concatenations); the block's output
    concatenates all of them. Channels: 64 + 6·32 = 256 after denseblock1 of densenet121."""
    r = zoo.analyze("densenet121")
    index = {layer.name: layer.index for layer in r.layers}
    block = "features.denseblock1"
    outs = [index["features.pool0"]] + [index[f"{block}.denselayer{i}.conv2"] for i in range(1, 7)]
    for i in range(2, 7):
        cat = r.layer(f"{block}.denselayer{i}.cat")
        assert cat.type == "Concat" and cat.inputs == tuple(outs[:i])
        assert cat.out_channels == 64 + (i - 1) * 32
        assert r.layer(f"{block}.denselayer{i}.norm1").inputs == (cat.index,)
    assert r.layer(f"{block}.denselayer1.norm1").inputs == (index["features.pool0"],)
    assert r.layer(block).inputs == tuple(outs) and r.layer(block).out_channels == 256
    assert r.layer(f"{block}.denselayer3").name == f"{block}.denselayer3.conv2"  # the layer's alias
    assert r.layer("features.transition1.pool").out_channels == 128
    assert r.features.name == "features.norm5" and r.features.out_channels == 1024


@pytest.mark.parametrize("name", sorted(DENSENET_CONFIGS))
def test_densenet_published_counts(name):
    """Parameters exact and MACs to torchvision's 3 decimals (torchvision.models.
    DenseNet{121,161,169,201}_Weights.IMAGENET1K_V1.meta "num_params" and "_ops")."""
    r = zoo.analyze(name)
    assert (r.params, round(int(r.macs) / 1e9, 3)) == TORCHVISION[name]


@pytest.mark.parametrize("name, size", [("densenet121", 224), ("densenet201", 64)])
def test_densenet_verified_by_enumeration(name, size):
    report = verify(zoo.get(name), size)
    assert report.ok, str(report)
    assert report.layers == len(zoo.analyze(name).layers)


def test_densenet_receptive_field_by_hand():
    """densenet121 at features.norm5: the stem (conv 7/2, pool 3/2) gives rf 11 at jump 4; each
    dense layer's 3x3 conv adds 2·jump, each transition's 2x2/2 pool adds 1·jump then doubles it:
    11 + 6·8 + 4 = 63 (jump 8), + 12·16 + 8 = 263 (16), + 24·32 + 16 = 1047 (32), + 16·64 = 2071."""
    f = zoo.analyze("densenet121").features
    assert (f.rf, f.jump, f.out_size) == (11 + 6 * 8 + 4 + 12 * 16 + 8 + 24 * 32 + 16 + 16 * 64, 32, 7)
    assert f.rf == 2071


def test_symbolic_dense_block_closed_forms():
    """Repeat(Concat(Identity(), dense_layer), n): rf 2n + 1, channels c0 + n·g and parameters
    Σ_{i<n} (2 + 4g)(c0 + i·g) + 8g + 36g² (BatchNorm 2c, 1x1 conv c·4g, BatchNorm 8g, 3x3 conv
    4g·g·9 for the i-th layer's c = c0 + i·g input channels)."""
    n, g, c0, i = symbols("n g c0 i")
    r = analyze(densenet(n, g), in_channels=c0)
    assert r.rf == 2 * n + 1 and sp.expand(r.out_channels - (c0 + n * g)) == 0
    by_hand = sp.summation((2 + 4 * g) * (c0 + i * g) + 8 * g + 36 * g**2, (i, 0, n - 1))
    assert sp.expand(r.params - by_hand) == 0
    # the closed form at densenet121's block sizes equals its DAG blocks (parameters, rf growth)
    tv = zoo.analyze("densenet121")
    for b, (m, c_in) in enumerate([(6, 64), (12, 128), (24, 256), (16, 512)], start=1):
        block = [layer for layer in tv.layers if layer.name.startswith(f"features.denseblock{b}.")]
        assert r.params.subs({n: m, g: 32, c0: c_in}) == sum(layer.params for layer in block)
        assert tv.layer(f"features.denseblock{b}").out_channels == c_in + m * 32
    numeric = analyze(densenet(6, 32), input_size=56, in_channels=64)
    assert (numeric.rf, numeric.out_channels) == (13, 256)
    assert verify(densenet(6, 32), 56, in_channels=64).ok


def test_dense_block_dag_equals_repeat_form():
    """A dense block written as a DAG (each layer reading all earlier tensors) and as a Repeat
    of [x, layer(x)] concatenations give the same rf, jump, start, channels and parameters."""
    dag = densenet_network(12, (5,), 16, num_classes=10)
    r = analyze(dag, input_size=32)
    block = r.layer("features.denseblock1")
    rep = analyze(Repeat(Concat(Identity(), dense_layer(12)), 5), input_size=8, in_channels=16)
    assert (block.rf - r.layer("features.pool0").rf) // 4 == rep.rf - 1
    assert block.out_channels == rep.out_channels == 16 + 5 * 12
    params = sum(layer.params for layer in r.layers if layer.name.startswith("features.denseblock1."))
    assert params == rep.params


# --------------------------------------------------------------------------- FPN
def test_fpn_outputs_by_hand_and_enumeration():
    """P2-P5 and pool: jumps 4, 8, 16, 32, 64; every level's field is bounded by layer4's (rf 427,
    jump 32) seen through the top-down sum, plus the 3x3 level conv: P5 427 + 2·32 = 491; P2-P4
    reach two upsampled layer4 positions for some phases, 427 + 32 = 459, and one for others (rf_min
    427 on P2, P3; the doubled P4 always two). Enumeration agrees on every node and output."""
    r = zoo.analyze("resnet50_fpn")
    assert list(r.outputs) == ["0", "1", "2", "3", "pool"]
    layer4 = r.layer("body.layer4")
    assert (layer4.rf, layer4.jump) == (427, 32)
    got = {k: (o.rf, o.rf_min, o.jump, o.out_size, o.out_channels) for k, o in r.outputs.items()}
    assert got == {"0": (459, 427, 4, 56, 256), "1": (459, 427, 8, 28, 256), "2": (459, 459, 16, 14, 256),
                   "3": (491, 491, 32, 7, 256), "pool": (491, 491, 64, 4, 256)}
    report = verify(zoo.get("resnet50_fpn"), 64)
    assert report.ok, str(report)
    counted = report.enumeration.outputs
    assert {k: (o.rf, o.jump) for k, o in counted.items()} == {k: v[::2][:2] for k, v in got.items()}


def test_fpn_against_torchvision():
    """Parameters equal sum(p.numel()) of torchvision's resnet_fpn_backbone("resnet50",
    weights=None) (FrozenBatchNorm: no trainable parameters), every convolution is one of its
    modules, and every output's shape is the one its forward returns."""
    torch = pytest.importorskip("torch")
    try:
        from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    except Exception as err:  # ImportError, or a torchvision built for another torch
        pytest.skip(f"torchvision is not usable here: {err}")
    with torch.device("meta"):
        model = resnet_fpn_backbone(backbone_name="resnet50", weights=None).eval()
        out = model(torch.zeros(1, 3, 224, 224))
    r = zoo.analyze("resnet50_fpn")
    assert r.params == sum(p.numel() for p in model.parameters()) == 26_799_296
    modules = dict(model.named_modules())
    convs = [layer.name for layer in r.layers if layer.type == "Conv"]
    assert convs and all(name in modules for name in convs)
    assert all(type(modules[layer.name]).__name__ == "FrozenBatchNorm2d"
               for layer in r.layers if layer.type == "BatchNorm")
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        k: (o.out_channels, o.out_size, o.out_size) for k, o in r.outputs.items()}
