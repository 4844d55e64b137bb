"""rfsym.symbolize: numbers of a network replaced by symbols, checked both ways.

* Round trip: a symbolized network substituted back at the original values gives exactly the
  original numbers (rf, jump, start, out_size, params, macs) at every layer.
* Other values: equal to the network built with those values (the zoo's torchvision builders,
  and torchvision itself for parameters, MACs and output sizes, counted by forward hooks on
  ``meta`` tensors), e.g. ``ResNet(Bottleneck, [3, 4, n, 3])`` for n = 2..8.
* The closed form of ResNet-50's ``layer4`` in its stage depths equals the zoo family's
  (``rfsym.zoo.resnet(blocks)``) and is 427 at (3, 4, 6, 3).
* Bad rules are rfsym errors naming the rule; random networks and rules round-trip exactly.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import architectures, graph_architectures

import rfsym
from rfsym import (
    GELU,
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    Conv,
    Flatten,
    Graph,
    Identity,
    Linear,
    MaxPool,
    Norm,
    Params,
    ReLU,
    Rule,
    analyze,
    repeats,
    symbolize,
    zoo,
)
from rfsym.dag import lower
from rfsym.zoo.torchvision import basic_block, bottleneck, resnet_network

QUANTITIES = ("rf", "jump", "start", "out_size", "out_channels", "params", "macs")
B = rfsym.symbols("b1:5")
K, W = rfsym.symbols("k w")


def _same_layers(got, want, names=None):
    """Every quantity of every named layer (default: every layer of ``want``) agrees."""
    names = [layer.name for layer in want.layers] if names is None else names
    for name in names:
        a, b = got.layer(name), want.layer(name)
        for q in QUANTITIES:
            assert getattr(a, q) == getattr(b, q), (name, q, getattr(a, q), getattr(b, q))


def _totals(got, want):
    for q in ("rf", "jump", "start", "out_size", "params", "macs"):
        assert getattr(got, q) == getattr(want, q), q


def _outside(result, runs):
    """Names of ``result``'s layers outside the collapsed runs' blocks."""
    return [layer.name for layer in result.layers
            if not any(layer.name == p or layer.name.startswith(p + ".") for r in runs for p in r.blocks)]


# --------------------------------------------------------------------------- torch (framework) counts
def _torch_counts(model, shape, watch=()):
    """Parameters (``numel``), MACs of convolutions and linear layers, and output sizes of the
    modules in ``watch``, from torchvision itself (forward hooks on meta tensors)."""
    torch = pytest.importorskip("torch")
    macs, sizes = [0], {}

    def hook(module, inputs, out):
        if isinstance(module, torch.nn.Conv2d):
            macs[0] += out[0].numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
        elif isinstance(module, torch.nn.Linear):  # on a flattened input, or per position (channels last)
            macs[0] += out[0].numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    mods = dict(model.named_modules())
    for name in watch:
        handles.append(mods[name].register_forward_hook(
            lambda m, i, o, name=name: sizes.__setitem__(name, tuple(o.shape[2:]))))
    with torch.no_grad():
        model.eval()(torch.zeros(shape, device="meta"))
    for h in handles:
        h.remove()
    return sum(p.numel() for p in model.parameters()), macs[0], sizes


def _models():
    pytest.importorskip("torch")
    return pytest.importorskip("torchvision.models")


# --------------------------------------------------------------------------- ResNet-50
@pytest.fixture(scope="module")
def resnet50():
    net = zoo.get("resnet50")
    sym = symbolize(net, {"layer4.*.conv2": {"kernel_size": K, "padding": "keep"}},
                    depth={f"layer{s}": b for s, b in enumerate(B, start=1)}, input_size=224, in_channels=3)
    return net, sym, analyze(sym, input_size=224, in_channels=3)


def test_resnet50_runs():
    runs = repeats(zoo.get("resnet50"))
    assert [(r.path, r.first, r.count) for r in runs] == [("layer1", 1, 2), ("layer2", 1, 3), ("layer3", 1, 5),
                                                          ("layer4", 1, 2)]
    assert runs[2].blocks == tuple(f"layer3.{j}" for j in range(1, 6))


def test_resnet50_closed_form_equals_the_family(resnet50):
    _, _, r = resnet50
    family = zoo.analyze("resnet", blocks=B)
    at3 = r.subs({K: 3})
    assert sp.expand(at3.layer("layer4").rf - family.layer("layer4.rest").rf) == 0
    assert sp.expand(at3.layer("layer4").rf - (8 * B[0] + 16 * B[1] + 32 * B[2] + 64 * B[3] - 45)) == 0
    assert sp.expand(at3.params - family.params) == 0
    assert sp.expand(at3.macs - family.macs) == 0
    assert r.subs({K: 3, **dict(zip(B, (3, 4, 6, 3)))}).layer("layer4").rf == 427
    assert r.layer("layer4").rf.free_symbols == {*B, K}


def test_resnet50_round_trip(resnet50):
    net, sym, _ = resnet50
    want = analyze(net, input_size=224, in_channels=3)
    back = analyze(sym.subs({K: 3, **dict(zip(B, (3, 4, 6, 3)))}), input_size=224, in_channels=3)
    runs = repeats(net)
    _same_layers(back, want, _outside(want, runs))
    _totals(back, want)
    plain = analyze(symbolize(net), input_size=224, in_channels=3)  # no rule: every layer, unchanged
    _same_layers(plain, want)


def test_resnet50_stage3_depths_equal_torchvision(resnet50):
    """``ResNet(Bottleneck, [3, 4, n, 3])`` for n = 2..8: the closed forms at n equal the zoo's build
    at every layer outside the repeated blocks and torchvision's own parameter and MAC counts."""
    models = _models()
    _, _, r = resnet50
    for n in range(2, 9):
        values = {K: 3, B[0]: 3, B[1]: 4, B[2]: n, B[3]: 3}
        built = resnet_network(bottleneck, (3, 4, n, 3))
        want = analyze(built, input_size=224, in_channels=3)
        got = r.subs(values)
        _totals(got, want)
        _same_layers(got, want, [x for x in _outside(want, repeats(built))
                                 if not x.startswith("layer3.") and not x.startswith("layer4")] + ["layer4"])
        import torch

        with torch.device("meta"):
            model = models.resnet.ResNet(models.resnet.Bottleneck, [3, 4, n, 3])
        params, macs, _ = _torch_counts(model, (1, 3, 224, 224))
        assert (got.params, got.macs) == (params, macs)


def test_resnet50_kernel_equals_a_rebuilt_torchvision_model(resnet50):
    models = _models()
    import torch

    _, _, r = resnet50
    for k in (1, 5, 7):
        with torch.device("meta"):
            model = models.resnet50()
            for block in model.layer4:
                old = block.conv2
                block.conv2 = torch.nn.Conv2d(old.in_channels, old.out_channels, k, stride=old.stride,
                                              padding=(k - 1) // 2, bias=False)
        params, macs, sizes = _torch_counts(model, (1, 3, 224, 224), ["layer4.0.conv2", "layer4"])
        got = r.subs({K: k, **dict(zip(B, (3, 4, 6, 3)))})
        assert (got.params, got.macs) == (params, macs)
        assert got.layer("layer4").out_size == sizes["layer4"][0] == sizes["layer4.0.conv2"][0]
        rebuilt = zoo.get("resnet50")
        rebuilt = symbolize(rebuilt, {"layer4.*.conv2": {"kernel_size": k, "padding": (k - 1) // 2}})
        _same_layers(analyze(rebuilt, input_size=224, in_channels=3),
                     analyze(symbolize(zoo.get("resnet50"), {"layer4.*.conv2": {"kernel_size": K, "padding": "keep"}}),
                             input_size=224, in_channels=3).subs({K: k}))


# --------------------------------------------------------------------------- ResNet-18
def test_resnet18_depth_and_kernel():
    net = zoo.get("resnet18")
    runs = repeats(net)
    assert [(r.path, r.first, r.count) for r in runs] == [("layer1", 0, 2), ("layer2", 1, 1), ("layer3", 1, 1),
                                                          ("layer4", 1, 1)]
    sym = symbolize(net, {"layer*.*.conv1": {"kernel_size": K, "padding": "keep"}},
                    depth={f"layer{s}": b for s, b in enumerate(B, start=1)})
    r = analyze(sym, input_size=224, in_channels=3)
    assert r.layer("layer4").rf.free_symbols == {*B, K}
    want = analyze(net, input_size=224, in_channels=3)
    back = analyze(sym.subs({K: 3, **dict(zip(B, (2, 2, 2, 2)))}), input_size=224, in_channels=3)
    _same_layers(back, want, _outside(want, runs))
    _totals(back, want)
    models = _models()
    import torch

    for depths in ((1, 1, 1, 1), (2, 3, 4, 2), (3, 4, 6, 3)):  # (3, 4, 6, 3) is resnet34
        got = r.subs({K: 3, **dict(zip(B, depths))})
        want = analyze(resnet_network(basic_block, depths), input_size=224, in_channels=3)
        _totals(got, want)
        with torch.device("meta"):
            model = models.resnet.ResNet(models.resnet.BasicBlock, list(depths))
        assert (got.params, got.macs) == _torch_counts(model, (1, 3, 224, 224))[:2]


# --------------------------------------------------------------------------- MobileNetV2
def _depthwise(name, layer):
    return isinstance(layer, Conv) and layer.groups != 1


def test_mobilenet_v2_width_multiplier_equals_torchvision():
    net = zoo.get("mobilenet_v2")
    sym = symbolize(net, Rule("features.*", type=Conv, out_channels=lambda c: W * c), input_size=224, in_channels=3)
    r = analyze(sym, input_size=224, in_channels=3)
    assert r.params.free_symbols == {W}
    want = analyze(net, input_size=224, in_channels=3)
    _same_layers(analyze(sym.subs({W: 1}), input_size=224, in_channels=3), want)
    models = _models()
    import torch

    for w in (2, 3):  # integer multipliers: torchvision's rounding to multiples of 8 is exact
        with torch.device("meta"):
            model = models.mobilenet_v2(width_mult=float(w))
        assert (r.subs({W: w}).params, r.subs({W: w}).macs) == _torch_counts(model, (1, 3, 224, 224))[:2]


def test_mobilenet_v2_depthwise_kernel_equals_a_rebuilt_model():
    net = zoo.get("mobilenet_v2")
    dw = [n.name for n in lower(net).nodes if _depthwise(n.name, n.op)]
    assert len(dw) == 17
    sym = symbolize(net, [Rule(name, kernel_size=K, padding="keep") for name in dw], input_size=224)
    r = analyze(sym, input_size=224, in_channels=3)
    _same_layers(analyze(sym.subs({K: 3}), input_size=224, in_channels=3),
                 analyze(net, input_size=224, in_channels=3))
    models = _models()
    import torch

    for k in (5, 7):
        with torch.device("meta"):
            model = models.mobilenet_v2()
            mods = dict(model.named_modules())
            for name in dw:
                parent, _, child = name.rpartition(".")
                old = mods[name]
                setattr(mods[parent], child, torch.nn.Conv2d(old.in_channels, old.out_channels, k, old.stride,
                                                             (k - 1) // 2, groups=old.groups, bias=False))
        params, macs, sizes = _torch_counts(model, (1, 3, 224, 224), dw)
        got = r.subs({K: k})
        assert (got.params, got.macs) == (params, macs)
        for name in dw:
            assert got.layer(name).out_size == sizes[name][0]


# --------------------------------------------------------------------------- DenseNet-121
def _densenet(blocks=(6, 12, 24, 16), growth=32, init=64, bn_size=4):
    """torchvision's DenseNet as a Graph named like its module paths (block paths as Identity nodes)."""
    nodes = [("features.conv0", Conv(7, stride=2, padding=3, in_channels=3, out_channels=init, bias=False), "input"),
             ("features.norm0", BatchNorm(init), "features.conv0"), ("features.relu0", ReLU(), "features.norm0"),
             ("features.pool0", MaxPool(3, stride=2, padding=1), "features.relu0")]
    x, c, w = "features.pool0", init, bn_size * growth
    for b, n in enumerate(blocks, 1):
        p, outs = f"features.denseblock{b}", []
        for j in range(1, n + 1):
            q, cin, src = f"{p}.denselayer{j}", c + (j - 1) * growth, x
            if j > 1:
                nodes.append((f"{q}.cat", "concat", (x, *outs)))
                src = f"{q}.cat"
            nodes += [(f"{q}.norm1", BatchNorm(cin), src), (f"{q}.relu1", ReLU(), f"{q}.norm1"),
                      (f"{q}.conv1", Conv(1, in_channels=cin, out_channels=w, bias=False), f"{q}.relu1"),
                      (f"{q}.norm2", BatchNorm(w), f"{q}.conv1"), (f"{q}.relu2", ReLU(), f"{q}.norm2"),
                      (f"{q}.conv2", Conv(3, padding=1, in_channels=w, out_channels=growth, bias=False), f"{q}.relu2"),
                      (q, Identity(), f"{q}.conv2")]
            outs.append(q)
        nodes += [(f"{p}.cat", "concat", (x, *outs)), (p, Identity(), f"{p}.cat")]
        c, x = c + n * growth, p
        if b < len(blocks):
            t = f"features.transition{b}"
            nodes += [(f"{t}.norm", BatchNorm(c), x), (f"{t}.relu", ReLU(), f"{t}.norm"),
                      (f"{t}.conv", Conv(1, in_channels=c, out_channels=c // 2, bias=False), f"{t}.relu"),
                      (f"{t}.pool", AvgPool(2, stride=2), f"{t}.conv"), (t, Identity(), f"{t}.pool")]
            c, x = c // 2, t
    nodes += [("features.norm5", BatchNorm(c), x), ("features", Identity(), "features.norm5"),
              ("relu", ReLU(), "features"), ("adaptive_avg_pool2d", AdaptiveAvgPool(1), "relu"),
              ("flatten", Flatten(), "adaptive_avg_pool2d"), ("classifier", Linear(c, 1000), "flatten")]
    return Graph(*nodes, features="features")


def test_densenet121_dense_blocks_as_an_indexed_repeat():
    """A dense block (layer j reads the concatenation of the block input and layers 1..j-1, whose
    input channels grow by 32) is one Repeat whose block depends on the repetition index; with the
    transition's halving given as a rule, depth n matches torchvision's DenseNet(32, (6, 12, n, 16))."""
    net = _densenet()
    want = analyze(net, input_size=224, in_channels=3)
    models = _models()
    import torch

    with torch.device("meta"):
        model = models.densenet121()
    assert (want.params, want.macs) == _torch_counts(model, (1, 3, 224, 224))[:2]  # the transcription is exact
    runs = repeats(net)
    assert [(r.path, r.first, r.count) for r in runs] == [(f"features.denseblock{b}", 0, n)
                                                          for b, n in enumerate((6, 12, 24, 16), start=1)]
    n = rfsym.symbols("n")
    sym = symbolize(net, {"features.transition3.conv": {"out_channels": 128 + 16 * n}},
                    depth={"features.denseblock3": n}, input_size=224, in_channels=3)
    r = analyze(sym, input_size=224, in_channels=3)
    assert r.layer("features").rf == 32 * n + 1303
    assert r.params.free_symbols == {n}
    back = r.subs({n: 24})
    _same_layers(back, want, [x for x in _outside(want, runs[2:3]) if x != "features.denseblock3.cat"])
    _totals(back, want)
    for m in (2, 5, 8):
        got = r.subs({n: m})
        _totals(got, analyze(_densenet((6, 12, m, 16)), input_size=224, in_channels=3))
        with torch.device("meta"):
            model = models.DenseNet(32, (6, 12, m, 16), 64)
        assert (got.params, got.macs) == _torch_counts(model, (1, 3, 224, 224))[:2]


# --------------------------------------------------------------------------- timm ConvNeXt
def _convnext(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
    """timm's ConvNeXt (convnext_tiny by default) as a Graph named like its module paths."""
    nodes = [("stem.0", Conv(4, stride=4, in_channels=3, out_channels=dims[0]), "input"),
             ("stem.1", Norm(dims[0]), "stem.0"), ("stem", Identity(), "stem.1")]
    x, c = "stem", dims[0]
    for s, (n, d) in enumerate(zip(depths, dims)):
        p = f"stages.{s}"
        if s:
            nodes += [(f"{p}.downsample.0", Norm(c), x),
                      (f"{p}.downsample.1", Conv(2, stride=2, in_channels=c, out_channels=d), f"{p}.downsample.0"),
                      (f"{p}.downsample", Identity(), f"{p}.downsample.1")]
            x = f"{p}.downsample"
        for j in range(n):
            q = f"{p}.blocks.{j}"
            nodes += [(f"{q}.conv_dw", Conv(7, padding=3, groups=d, in_channels=d, out_channels=d), x),
                      (f"{q}.norm", Norm(d), f"{q}.conv_dw"),
                      (f"{q}.mlp.fc1", Conv(1, in_channels=d, out_channels=4 * d), f"{q}.norm"),
                      (f"{q}.mlp.act", GELU(), f"{q}.mlp.fc1"),
                      (f"{q}.mlp.fc2", Conv(1, in_channels=4 * d, out_channels=d), f"{q}.mlp.act"),
                      (f"{q}.gamma", Params(d), f"{q}.mlp.fc2"),
                      (f"{q}.add", "add", (f"{q}.gamma", x)), (q, Identity(), f"{q}.add")]
            x = q
        nodes.append((p, Identity(), x))
        x, c = p, d
    nodes += [("head.global_pool", AdaptiveAvgPool(1), x), ("head.norm", Norm(c), "head.global_pool"),
              ("head.flatten", Flatten(), "head.norm"), ("head.fc", Linear(c, 1000), "head.flatten")]
    return Graph(*nodes, features="stages.3")


def test_convnext_tiny_stage_depth_and_kernel_equal_timm():
    """timm's convnext_tiny: stage 3's depth (the path stages.2 names the run stages.2.blocks) and
    the depthwise kernel of every block as symbols; at other values equal to timm's ConvNeXt built
    with them (parameters and MACs counted by timm's own modules)."""
    timm = pytest.importorskip("timm")
    import torch

    net = _convnext()
    want = analyze(net, input_size=224, in_channels=3)
    with torch.device("meta"):
        model = timm.create_model("convnext_tiny", pretrained=False)
    assert (want.params, want.macs) == _torch_counts(model, (1, 3, 224, 224))[:2]  # the transcription is exact
    runs = repeats(net)
    assert [(r.path, r.first, r.count) for r in runs] == [(f"stages.{s}.blocks", 0, n)
                                                          for s, n in enumerate((3, 3, 9, 3))]
    n = rfsym.symbols("n")
    sym = symbolize(net, {"stages.*.blocks.*.conv_dw": {"kernel_size": K, "padding": "keep"}},
                    depth={"stages.2": n}, input_size=224, in_channels=3)
    r = analyze(sym, input_size=224, in_channels=3)
    assert r.layer("stages.3").rf.free_symbols == {n, K}
    back = r.subs({n: 9, K: 7})
    _same_layers(back, want, _outside(want, runs[2:3]))
    _totals(back, want)
    for depth, k in ((2, 7), (6, 5), (9, 3), (12, 9)):
        got = r.subs({n: depth, K: k})
        with torch.device("meta"):
            model = timm.models.convnext.ConvNeXt(depths=(3, 3, depth, 3), kernel_sizes=k)
        params, macs, sizes = _torch_counts(model, (1, 3, 224, 224), ["stages.3"])
        assert (got.params, got.macs) == (params, macs)
        assert got.layer("stages.3").out_size == sizes["stages.3"][0]


# --------------------------------------------------------------------------- channels follow
def test_width_follows_through_norms_heads_and_depthwise():
    net = rfsym.Sequential(
        Conv(3, padding=1, in_channels=3, out_channels=8, name="a"), rfsym.BatchNorm(8, name="bn"),
        Conv(3, padding=1, groups=8, in_channels=8, out_channels=8, name="dw"), rfsym.Norm(8, params=8, name="ln"),
        rfsym.Residual(Conv(1, in_channels=8, out_channels=8, name="c"), name="res"),
        rfsym.GlobalAvgPool(name="pool"), rfsym.Flatten(name="flat"), rfsym.Linear(8, 10, name="fc"))
    sym = symbolize(net, {"a": {"out_channels": lambda c: W * c}, "res.*": {"out_channels": lambda c: W * c}},
                    input_size=8, in_channels=3)
    layers = dict((name, op) for name, op, _ in sym.nodes)
    assert layers["bn"].num_features == 8 * W
    assert (layers["dw"].in_channels, layers["dw"].groups, layers["dw"].out_channels) == (8 * W, 8 * W, 8 * W)
    assert (layers["ln"].num_features, layers["ln"].params) == (8 * W, 8 * W)
    assert layers["fc"].in_features == 8 * W
    r = analyze(sym, input_size=8, in_channels=3)
    for w in (1, 2, 3):
        scaled = rfsym.Sequential(
            Conv(3, padding=1, in_channels=3, out_channels=8 * w), rfsym.BatchNorm(8 * w),
            Conv(3, padding=1, groups=8 * w, in_channels=8 * w, out_channels=8 * w), rfsym.Norm(8 * w, params=8 * w),
            rfsym.Residual(Conv(1, in_channels=8 * w, out_channels=8 * w)), rfsym.GlobalAvgPool(), rfsym.Flatten(),
            rfsym.Linear(8 * w, 10))
        want = analyze(scaled, input_size=8, in_channels=3)
        assert (r.subs({W: w}).params, r.subs({W: w}).macs) == (want.params, want.macs)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("rules, message", [
    ({"layer9.*": {"kernel_size": K}}, "matches no node"),
    ({"layer4.*.conv2": {"kernel": K}}, "Conv has no attribute 'kernel'"),
    ({"layer4.*.bn2": {"kernel_size": K}}, "BatchNorm has no attribute 'kernel_size'"),
    ({"layer4.*.conv2": {"kernel_size": 0}}, "kernel_size must be a positive integer"),
    ({"layer4.*.conv2": {"kernel_size": K, "padding": 1}}, "breaks a merge: Add 'layer4.0'"),
    ({"layer4.*.conv2": {"stride": 2}}, "breaks a merge: Add 'layer4.1'"),
    ({"layer4.*.conv3": {"out_channels": lambda c: W * c}}, "same channels to merge"),
    ([Rule("fc", type=Conv, stride=2)], "matches no node of type Conv"),
    ([Rule("fc", type=(Conv, "Norm"), stride=2)], "matches no node of type (Conv, Norm)"),
    ({"fc": {"out_features": lambda c: c / 0}}, "fc"),
])
def test_bad_rules_name_the_rule(rules, message):
    with pytest.raises(rfsym.RfsymError) as err:
        symbolize(zoo.get("resnet50"), rules, input_size=224, in_channels=3)
    assert message in str(err.value)
    assert "rule Rule(" in str(err.value)


def test_bad_depth_and_rule_syntax():
    net = zoo.get("resnet50")
    with pytest.raises(rfsym.LayerError, match="no run of identical blocks under 'layer5'"):
        symbolize(net, depth={"layer5": B[0]})
    with pytest.raises(rfsym.LayerError, match="depth is a dict"):
        symbolize(net, depth=[("layer3", B[2])])
    with pytest.raises(rfsym.LayerError, match="type must be a layer class"):
        Rule("fc", type=3, stride=2)
    with pytest.raises(rfsym.LayerError, match="sets no attribute"):
        Rule("layer3.*")
    with pytest.raises(rfsym.LayerError, match="give {attribute: value}"):
        symbolize(net, {"layer3.*": K})
    with pytest.raises(rfsym.LayerError, match=r"rule Rule\('\*', type=Conv, kernel_size=k, padding='keep'\) "
                                               r"at 'b' \(Conv\): padding='keep' keeps 'same'-style padding"):
        symbolize(rfsym.Sequential(Conv(3, padding=1, name="a"), Conv(3, name="b")),
                  Rule("*", type=Conv, kernel_size=K, padding="keep"))
    pointwise = rfsym.Sequential(Conv(1, in_channels=3, out_channels=4, name="a"),
                                 rfsym.Pointwise(params=16, macs=16, name="mix"))
    with pytest.raises(rfsym.LayerError, match="'mix'.*cannot follow"):
        symbolize(pointwise, {"a": {"out_channels": lambda c: W * c}})


def test_symbolize_does_not_mutate():
    net = zoo.get("resnet18")
    before = repr(net)
    symbolize(net, {"layer4.*.conv2": {"kernel_size": K, "padding": "keep"}}, depth={"layer3": B[2]})
    assert repr(net) == before


# --------------------------------------------------------------------------- command line
def test_cli_derive_symbol_and_depth(capsys):
    from rfsym.cli import main

    assert main(["derive", "resnet50", "--symbol", "layer4.*.conv2.kernel_size=k", "layer4.*.conv2.padding=keep",
                 "--depth", "layer3=n"]) == 0
    out = capsys.readouterr().out
    assert "(symbols: k, n)" in out and "80·k + 32·n + 187" in out
    assert main(["derive", "resnet50", "--symbol", "layer4.*.conv2.kernel_size=k", "layer4.*.conv2.padding=keep",
                 "--depth", "layer3=n", "--set", "k=3", "n=6"]) == 0
    assert "619" in capsys.readouterr().out  # resnet50's own output receptive field
    assert main(["derive", "resnet50", "--symbol", "layer4.*.conv2.kernel_size=k", "--depth", "layer3=n"]) == 0
    assert "80·k + 32·n + 187" in capsys.readouterr().out  # 'same'-style padding is kept by default
    assert main(["derive", "resnet50", "--symbol", "layer4.*.conv2.kernel_size=k", "layer4.*.conv2.padding=1"]) == 2
    assert "rfsym: error: rule Rule('layer4.*.conv2', padding=1) breaks a merge" in capsys.readouterr().err
    assert main(["derive", "resnet50", "--symbol", "kernel_size=k"]) == 2
    assert "--symbol takes PATTERN.ATTRIBUTE=VALUE" in capsys.readouterr().err


# --------------------------------------------------------------------------- properties
def _random_rules(draw, net):
    """Rules on a random subset of the windowed/conv layers, each attribute a fresh symbol (or a
    width multiplier on channels); returns (rules, original values of the symbols)."""
    nodes = [n for n in lower(net).nodes if isinstance(n.op, (rfsym.Conv, rfsym.MaxPool, rfsym.AvgPool))]
    rules, values = [], {}
    chosen = draw(st.lists(st.sampled_from(nodes), unique_by=lambda n: n.index, max_size=4)) if nodes else []
    names = [n.name for n in lower(net).nodes]
    for j, node in enumerate(chosen):
        if names.count(node.name) > 1:
            continue
        attrs = {}
        for attr in draw(st.lists(st.sampled_from(["kernel_size", "stride", "dilation", "padding", "out_channels"]),
                                  unique=True, min_size=1, max_size=3)):
            old = getattr(node.op, attr, None)
            if old is None or isinstance(old, str) or (attr == "stride" and node.op.padding == "same"):
                continue
            if attr == "out_channels":
                attrs[attr] = lambda c: W * c
                values[W] = 1
                continue
            flat = old if isinstance(old, tuple) else (old,)
            if any(isinstance(v, tuple) for v in flat):
                continue
            syms = rfsym.symbols(" ".join(f"{attr[0]}{j}_{a}" for a in range(len(flat))) + " _",
                                 **({"nonnegative": True} if attr == "padding" else {}))[:-1]
            values.update(zip(syms, flat))
            attrs[attr] = tuple(syms) if isinstance(old, tuple) else syms[0]
        if attrs:
            rules.append(Rule(node.name, **attrs))
    return rules, values


@settings(max_examples=15)
@given(st.data())
def test_random_networks_and_rules_round_trip(data):
    arch = data.draw(architectures(max_layers=6, max_size=32))
    rules, values = _random_rules(data.draw, arch.net)
    kwargs = dict(input_size=arch.input_size, ndim=arch.ndim, in_channels=arch.in_channels)
    sym = symbolize(arch.net, rules, input_size=arch.input_size, in_channels=arch.in_channels)
    back = analyze(sym.subs(values), **kwargs)
    _same_layers(back, analyze(arch.net, **kwargs))


def _same_style(node):
    op = node.op
    if not isinstance(op, rfsym.Conv) or any(isinstance(v, tuple) for v in (op.kernel_size, op.dilation, op.padding)):
        return False
    return op.padding == "same" or (not isinstance(op.padding, str) and op.padding * 2 == op.dilation * (op.kernel_size - 1))


@settings(max_examples=10)
@given(st.data())
def test_random_graphs_kernels_with_kept_padding_round_trip(data):
    arch = data.draw(graph_architectures(max_items=4, max_size=16))
    nodes = [n for n in lower(arch.net).nodes if _same_style(n)]
    names = [n.name for n in lower(arch.net).nodes]
    nodes = [n for n in nodes if names.count(n.name) == 1]
    chosen = data.draw(st.lists(st.sampled_from(nodes), unique_by=lambda n: n.index, max_size=3)) if nodes else []
    ks = [rfsym.symbols(f"k{j}") for j in range(len(chosen))]
    rules = [Rule(n.name, kernel_size=k, padding="keep") for n, k in zip(chosen, ks)]
    sym = symbolize(arch.net, rules, input_size=arch.input_size)
    kwargs = dict(input_size=arch.input_size, ndim=arch.ndim)
    back = analyze(sym.subs({k: n.op.kernel_size for n, k in zip(chosen, ks)}), **kwargs)
    _same_layers(back, analyze(arch.net, **kwargs))
    if chosen:  # at another odd kernel: the network rebuilt with it
        bigger = {k: n.op.kernel_size + 2 for n, k in zip(chosen, ks)}
        rebuilt = symbolize(arch.net, [Rule(n.name, kernel_size=bigger[k], padding="keep") for n, k in zip(chosen, ks)])
        _same_layers(analyze(sym.subs(bigger), **kwargs), analyze(rebuilt, **kwargs))


def test_kernel_rules_keep_same_padding_unless_told():
    net = rfsym.Sequential(Conv(3, padding=1, name="a"), Conv(3, name="b"), MaxPool(3, stride=2, padding=1, name="p"))
    sym = symbolize(net, Rule("*", kernel_size=K))
    layers = {name: op for name, op, _ in sym.nodes}
    assert (layers["a"].padding, layers["b"].padding, layers["p"].padding) == ((K - 1) / 2, 0, (K - 1) / 2)
    fixed = {name: op for name, op, _ in symbolize(net, Rule("a", kernel_size=K, padding=1)).nodes}
    assert fixed["a"].padding == 1


def test_doc_example_is_exact():
    net = rfsym.Sequential(Conv(3, padding=1, in_channels=3, out_channels=8, name="a"))
    sym = symbolize(net, {"a": {"kernel_size": K, "padding": "keep"}})
    assert dataclasses.replace(sym.nodes[0][1], name=None) == Conv(K, padding=(K - 1) / 2, in_channels=3, out_channels=8)


def test_a_flat_graph_with_path_names_symbolizes_like_the_tree(resnet50):
    """The importers' form: one Graph, nodes named by module paths, block paths as Identity nodes."""
    net, _, r = resnet50
    flat = symbolize(net)
    assert isinstance(flat, rfsym.Graph) and "layer4" in [name for name, _, _ in flat.nodes]
    again = symbolize(flat, {"layer4.*.conv2": {"kernel_size": K, "padding": "keep"}},
                      depth={f"layer{s}": b for s, b in enumerate(B, start=1)})
    got = analyze(again, input_size=224, in_channels=3)
    for q in ("params", "macs"):
        assert sp.expand(getattr(got, q) - getattr(r, q)) == 0
    assert sp.expand(got.layer("layer4").rf - r.layer("layer4").rf) == 0
    assert [(x.path, x.first, x.count) for x in repeats(flat)] == [(x.path, x.first, x.count) for x in repeats(net)]


def test_keep_follows_per_axis_kernels_and_dilation():
    net = rfsym.Sequential(Conv(3, padding=1, name="a"), Conv((3, 5), padding=(2, 4), dilation=2, name="b"))
    d = rfsym.symbols("d")
    sym = symbolize(net, [Rule("a", kernel_size=(K, 1), padding="keep"), Rule("b", dilation=d, padding="keep")])
    layers = {name: op for name, op, _ in sym.nodes}
    assert layers["a"].padding == ((K - 1) / 2, 0)
    assert layers["b"].padding == (d, 2 * d)
    r = analyze(sym, input_size=(20, 20))
    assert r.out_size == 20
    for kk, dd in ((5, 1), (7, 3)):
        rebuilt = rfsym.Sequential(Conv((kk, 1), padding=((kk - 1) // 2, 0)), Conv((3, 5), padding=(dd, 2 * dd), dilation=dd))
        assert r.subs({K: kk, d: dd}).rf == analyze(rebuilt, input_size=(20, 20)).rf


# --------------------------------------------------------------------------- through rfsym.from_torch
def _imported(model):
    return rfsym.from_torch(model, (1, 3, 224, 224))


def test_imported_models_symbolize_like_their_transcriptions():
    """The importer's Graphs (module-path node names, block paths as Identity nodes): the same runs
    and closed forms as the transcriptions, and at other values the import of the rebuilt model."""
    models = _models()
    import torch

    with torch.device("meta"):
        resnet = _imported(models.resnet50())
        dense = _imported(models.densenet121())
    assert [(r.path, r.first, r.count) for r in repeats(resnet)] == [(r.path, r.first, r.count)
                                                                      for r in repeats(zoo.get("resnet50"))]
    sym = symbolize(resnet, {"layer4.*.conv2": {"kernel_size": K, "padding": "keep"}},
                    depth={f"layer{s}": b for s, b in enumerate(B, start=1)}, input_size=224, in_channels=3)
    r = analyze(sym, input_size=224, in_channels=3)
    assert sp.expand(r.subs({K: 3}).layer("layer4").rf - (8 * B[0] + 16 * B[1] + 32 * B[2] + 64 * B[3] - 45)) == 0
    want = analyze(resnet, input_size=224, in_channels=3)
    _totals(analyze(sym.subs({K: 3, **dict(zip(B, (3, 4, 6, 3)))}), input_size=224, in_channels=3), want)
    for n in (2, 8):
        with torch.device("meta"):
            built = analyze(_imported(models.resnet.ResNet(models.resnet.Bottleneck, [3, 4, n, 3])),
                            input_size=224, in_channels=3)
        got = r.subs({K: 3, **dict(zip(B, (3, 4, n, 3)))})
        _totals(got, built)
        assert got.layer("layer4").rf == built.layer("layer4").rf
    n = rfsym.symbols("n")
    sd = symbolize(dense, {"features.transition3.conv": {"out_channels": 128 + 16 * n}},
                   depth={"features.denseblock3": n}, input_size=224, in_channels=3)
    rd = analyze(sd, input_size=224, in_channels=3)
    for m in (2, 24):
        with torch.device("meta"):
            built = analyze(_imported(models.DenseNet(32, (6, 12, m, 16), 64)), input_size=224, in_channels=3)
        _totals(rd.subs({n: m}), built)
        assert rd.subs({n: m}).layer("features").rf == built.layer("features").rf


def test_imported_convnext_symbolizes():
    timm = pytest.importorskip("timm")
    import torch

    n = rfsym.symbols("n")
    with torch.device("meta"):
        net = _imported(timm.create_model("convnext_tiny", pretrained=False))
    sym = symbolize(net, {"stages.*.blocks.*.conv_dw": {"kernel_size": K, "padding": "keep"}},
                    depth={"stages.2": n}, input_size=224, in_channels=3)
    r = analyze(sym, input_size=224, in_channels=3)
    for depth, k in ((2, 7), (9, 7), (6, 5)):
        with torch.device("meta"):
            built = analyze(_imported(timm.models.convnext.ConvNeXt(depths=(3, 3, depth, 3), kernel_sizes=k)),
                            input_size=224, in_channels=3)
        got = r.subs({n: depth, K: k})
        _totals(got, built)
        assert got.layer("stages.3").rf == built.layer("stages.3").rf
