"""from_torch on every convolutional model of torchvision 0.29.1 and a pinned list of timm 1.0.29
models, each checked against PyTorch itself:

* params == ``sum(p.numel() for p in model.parameters())`` (GoogLeNet / Inception-v3: minus their
  auxiliary classifiers, which run only in training mode, so the traced eval forward never uses them);
* MACs == torchvision's published ``_ops`` (GFLOPS in torchvision's multiply-accumulate convention,
  ``torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]``, 3 decimals);
* every convolution's output size and channel count == the shape torch records (forward hooks
  on a meta-device forward);
* for the attention models in ``FLOP_COUNTER``: MACs == half the FLOPs ``torch.utils.flop_counter``
  counts on a meta-device forward;
* trunk rf / start / jump == the bounding box of the input gradient of a linearised float64 copy
  (positive weights, activations removed, max pools as average pools) at the first and last
  output position and the middle one, for a representative subset of torchvision trunks
  (``GRADIENT``) and timm trunks (``TIMM_GRADIENT``).

Models are built on the ``meta`` device (no weights allocated) where their constructor allows.
A model whose import needs a layer class or graph feature the installed rfsym does not have yet
(``rfsym.Norm``, ``Pointwise``, ``Params``, ``Attention``, ``Pad``, ``PixelUnshuffle``, the ``"mul"``
merge, non-series-parallel DAGs) is an expected failure *only while that feature is absent*
(``missing_feature``); known importer gaps are listed in ``GAPS`` with their reason (strict
xfail: they fail the run once fixed, so the list cannot go stale). Results are compared with
``tests/.torch_coverage.json``, from which ``scripts/torch_coverage.py`` writes the table in
``docs/guides/pytorch.md`` (``--run`` regenerates both: it runs this file with
``RFSYM_WRITE_COVERAGE=1``).
"""

import json
import os
import re
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
import rfsym  # noqa: E402
from rfsym.errors import RfsymError  # noqa: E402

torch.set_num_threads(1)
CACHE = Path(__file__).parent / ".torch_coverage.json"

#: over ~2 GB of float32 weights (num_params from torchvision's weights metadata; checked below)
LARGE = {"vit_h_14": 633_470_440, "regnet_y_128gf": 644_812_894}

CLASSIFICATION = [n for n in torchvision.models.list_models(module=torchvision.models) if n not in LARGE]
SEGMENTATION = torchvision.models.list_models(module=torchvision.models.segmentation)
VIDEO = ["r3d_18", "mc3_18", "r2plus1d_18", "s3d"]
TIMM = """convnext_tiny convnextv2_atto regnety_002 regnetx_002 efficientnet_b0 tf_efficientnet_b0
mobilenetv3_small_100 mobilenetv4_conv_small ghostnet_100 rexnet_100 densenet121 dla34 dpn68 hrnet_w18_small
cspresnet50 cspdarknet53 vovnet39a ese_vovnet19b_dw res2net50_26w_4s resnest14d repvgg_a0 mobileone_s0
fastvit_t8 efficientformer_l1 levit_128s vit_tiny_patch16_224 deit_tiny_patch16_224
swin_tiny_patch4_window7_224 xception41 inception_v4 mixnet_s lcnet_050 resnet18 resnet50d seresnet18
ecaresnet26t mnasnet_050 tinynet_a efficientnet_lite0 selecsls42b""".split()
GAPS: dict = {}
#: MACs that differ from torchvision's _ops for a stated reason, and the tolerance tested
MACS_REASON = {
    **{n: ("the class token: torch computes 1 + positions tokens (197 or 50), rfsym's layers count the "
           "positions (196 or 49)", 0.01 if n.endswith("16") else 0.025)
       for n in ("vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32")},
    **{n: ("Swin V2's continuous position-bias MLP runs on constants (its MACs are not the network's), and its "
           "cosine attention's norms", 0.01) for n in ("swin_v2_t", "swin_v2_s", "swin_v2_b")},
}
#: the gradient check: the trunk (children of the model, in order; "features[:6]" slices a Sequential)
#: and the input size (large enough that the probed windows stay clear of ceil-mode borders). The
#: prefixes keep the field smaller than the input, so the gradient's bounding box is not the whole image.
GRADIENT = {"resnet18": ("conv1 bn1 relu maxpool layer1 layer2 layer3 layer4", 160),
            "vgg11": ("features", 160), "squeezenet1_1": ("features", 320), "mobilenet_v2": ("features", 160),
            "mnasnet0_5": ("layers", 160), "alexnet": ("features", 160),
            "densenet121": ("features[:6]", 192),  # DenseNet connectivity: dense block 1, transition 1
            "convnext_tiny": ("features[:4]", 256),  # channels-last LayerNorm, layer scale, stochastic depth
            "regnet_x_400mf": ("stem trunk_output[:2]", 192),  # grouped convolutions
            "shufflenet_v2_x0_5": ("conv1 maxpool stage2", 160),  # chunk, concat, channel shuffle
            "resnext50_32x4d": ("conv1 bn1 relu maxpool layer1 layer2", 192)}
RESULTS = {}
COMMITTED = json.loads(CACHE.read_text()) if CACHE.exists() else {}


def missing_feature(err, net=None):
    """The rfsym feature an import error says is missing, if rfsym indeed lacks it."""
    msg = str(err)
    attention = net is not None and any(isinstance(n[1], getattr(rfsym, "Attention", ())) for n in net.nodes)
    if attention and "must have the same jump" in msg:
        return "engine: a merge of a local branch with a global attention branch (residual around attention)"
    m = re.search(r"needs rfsym\.(\w+)", msg)
    if m and not hasattr(rfsym, m.group(1)):
        return f"rfsym.{m.group(1)}"
    if "got 'mul'" in msg:
        return "Graph 'mul' merges"
    if "series-parallel" in msg:
        return "non-series-parallel Graphs (the DAG engine)"
    if "several outputs" in msg:
        return "Graph outputs="
    return None


def build_torchvision(name, **kw):
    try:
        with torch.device("meta"):
            return torchvision.models.get_model(name, **kw)
    except NotImplementedError:  # RegNet computes its widths with .tolist(): build it for real
        return torchvision.models.get_model(name, **kw)


def conv_shapes(model, shape):
    """Output shape of every convolution, by module path, from a meta-device forward."""
    model = model.to("meta").eval()
    shapes, handles = {}, []
    def hook(mod, args, out, path):
        shapes.setdefault(path, tuple(out.shape))

    for path, m in model.named_modules():
        if isinstance(m, torch.nn.modules.conv._ConvNd):
            handles.append(m.register_forward_hook(lambda mod, a, out, path=path: hook(mod, a, out, path)))
    try:
        with torch.no_grad():
            model(torch.empty(shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return shapes


def run(key, model, shape, params=None, ops=None, macs_tolerance=None):
    """Import, analyse, compare; returns the result (and caches its row)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = None
        try:
            net = rfsym.from_torch(model, shape)
            r = rfsym.analyze(net, input_size=shape[1:], in_channels=shape[0])
        except RfsymError as err:
            feature = missing_feature(err, net)
            record(key, {"imported": False, "why": feature or str(err)[:120]})
            if feature and key not in GAPS:
                pytest.xfail(f"needs {feature}")
            raise
    record(key, {"imported": True, "params": int(r.params), "macs": int(r.macs), "rf": str(r.rf),
                 "jump": str(r.jump)})
    expected = sum(p.numel() for p in model.parameters()) if params is None else params
    assert r.params == expected, (r.params, expected)
    if ops is not None and macs_tolerance is not None:
        assert abs(float(r.macs) / 1e9 / ops - 1) <= macs_tolerance, (float(r.macs) / 1e9, ops)
    elif ops is not None:
        assert abs(float(r.macs) / 1e9 - ops) <= 0.0005 + 1e-9, (float(r.macs) / 1e9, ops)
    shapes = conv_shapes(model, (1,) + tuple(shape))
    names = {layer.name: layer for layer in r.layers}
    for layer in r.layers:  # an engine that nests merges names a layer '<merge>.<node>'
        for part in range(1, layer.name.count(".") + 1):
            names.setdefault(layer.name.split(".", part)[-1], layer)
    shapes = {p: s for p, s in shapes.items() if len(s) == len(shape) + 1}  # not ECA's Conv1d over channels
    for path, s in shapes.items():
        if path in names:
            layer = names[path]
            assert layer.axes("out_size") == s[2:] and layer.out_channels == s[1], path
    assert sum(path in names for path in shapes) >= 0.9 * len(shapes)
    return net, r


def record(key, row):
    """Keep the row for the docs table; it must equal the committed one (so the table is current)."""
    RESULTS[key] = row
    if not os.environ.get("RFSYM_WRITE_COVERAGE"):
        assert COMMITTED.get(key) == row, (f"{key}: the coverage table is stale; regenerate it with "
                                           "scripts/torch_coverage.py", COMMITTED.get(key), row)


def gap(key):
    return [pytest.mark.xfail(strict=True, reason=GAPS[key])] if key in GAPS else []


@pytest.mark.parametrize("name", [pytest.param(n, marks=gap(f"torchvision/{n}")) for n in CLASSIFICATION])
def test_torchvision_classification(name):
    model = build_torchvision(name)
    # _ops are measured at the weights' evaluation crop (240 for efficientnet_b1, 299 for inception_v3)
    size = torchvision.models.get_model_weights(name).DEFAULT.transforms.keywords.get("crop_size", 224)
    params = None
    if name in ("googlenet", "inception_v3"):  # aux classifiers: training mode only
        params = sum(p.numel() for n, p in model.named_parameters() if not n.lower().startswith("aux"))
    ops = torchvision.models.get_model_weights(name).DEFAULT.meta.get("_ops")
    tol = MACS_REASON[name][1] if name in MACS_REASON else None
    run(f"torchvision/{name}", model, (3, size, size), params, ops, tol)


def test_large_models_skipped_are_over_2gb():
    for name, n in LARGE.items():
        assert torchvision.models.get_model_weights(name).DEFAULT.meta["num_params"] == n
        assert 4 * n > 2e9


@pytest.mark.parametrize("name", [pytest.param(n, marks=gap(f"torchvision/{n}")) for n in SEGMENTATION])
def test_torchvision_segmentation(name):
    heads = 2
    try:
        model = build_torchvision(name, weights_backbone=None, aux_loss=True)  # as the published weights
    except NotImplementedError:  # a model without an auxiliary head (LR-ASPP): "out" only
        model, heads = build_torchvision(name, weights_backbone=None), 1
    ops = torchvision.models.get_model_weights(name).DEFAULT.meta.get("_ops")
    net, r = run(f"torchvision/{name}", model, (3, 520, 520), None, ops)
    assert len(r.outputs) == heads


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v3_large"][:2])
def test_detection_fpn_backbones(name):
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    with torch.device("meta"):
        model = resnet_fpn_backbone(backbone_name=name, weights=None)
    run(f"fpn/{name}", model, (3, 256, 256))


@pytest.mark.parametrize("name", VIDEO)
def test_torchvision_video(name):
    with torch.device("meta"):
        model = torchvision.models.get_model(name)
    ops = torchvision.models.get_model_weights(name).DEFAULT.meta.get("_ops")
    size = 224 if name == "s3d" else 112  # S3D's final 7x7 average pool needs 224
    run(f"video/{name}", model, (3, 16, size, size), None, ops)


@pytest.mark.parametrize("name", [pytest.param(n, marks=gap(f"timm/{n}")) for n in TIMM])
def test_timm(name):
    timm = pytest.importorskip("timm")
    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
    except NotImplementedError:
        model = timm.create_model(name, pretrained=False)
    shape = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    run(f"timm/{name}", model, shape)


#: attention models whose MACs torch's own FlopCounterMode counts the same way (convolutions,
#: linear layers and the q·kᵀ and attention·v matmuls; FLOPs = 2·MACs)
FLOP_COUNTER = ["timm/levit_128s", "timm/efficientformer_l1", "timm/swin_tiny_patch4_window7_224",
                "torchvision/maxvit_t", "torchvision/swin_t"]


@pytest.mark.parametrize("key", FLOP_COUNTER)
def test_attention_macs_equal_torch_flop_counter(key):
    """Window (Swin), grid (MaxViT) and query-subsampling (LeViT) attention and unequal key and
    value widths (LeViT, EfficientFormer): rfsym's MACs == ``torch.utils.flop_counter`` / 2."""
    from torch.utils.flop_counter import FlopCounterMode

    source, name = key.split("/")
    if source == "timm":
        timm = pytest.importorskip("timm")
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
    else:
        model = build_torchvision(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = rfsym.analyze(rfsym.from_torch(model, (3, 224, 224)), input_size=224, in_channels=3)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.to("meta").eval()(torch.empty(1, 3, 224, 224, device="meta"))
    assert 2 * r.macs == counter.get_total_flops()


#: the same check on timm trunks (submodule paths of ``timm.create_model(name)``): TF "SAME" padding
#: at both parities of the input size, tree aggregation, Res2Net's split branches, HRNet's stem and
#: first stage, separable convolutions, RepVGG's parallel branches
TIMM_GRADIENT = {"tf_efficientnet_b0/161": ("conv_stem bn1 blocks.0.0.conv_dw", 161),
                 "tf_efficientnet_b0/160": ("conv_stem bn1 blocks.0.0.conv_dw", 160),
                 "dla34": ("base_layer level0 level1 level2", 192),
                 "res2net50_26w_4s": ("conv1 bn1 act1 maxpool layer1", 160),
                 "cspdarknet53": ("stem stages[:2]", 192),
                 "hrnet_w18_small": ("conv1 bn1 act1 conv2 bn2 act2 layer1", 160),
                 "xception41": ("stem blocks[:2]", 192),
                 "repvgg_a0": ("stem stages[:2]", 192)}


def trunk_of(model, children):
    """The submodules ``children`` names ("a.b" paths, "stages[:2]" slices a Sequential), in order."""
    parts = []
    for child in children.split():
        path, _, cut = child.partition("[:")
        module = model.get_submodule(path)
        parts.append(module[:int(cut[:-1])] if cut else module)
    return parts[0] if len(parts) == 1 else torch.nn.Sequential(*parts)


def assert_rf_is_gradient_support(name, trunk, n):
    import test_torch_import as helpers

    net = rfsym.from_torch(trunk, (3, n, n))
    r = rfsym.analyze(net, input_size=n)
    lin = helpers.linearised(trunk)
    middle = tuple(s // 2 for s in r.axes("out_size"))
    for pos in [(0, 0), middle]:
        gbox = helpers.gradient_box(lin, (1, 3, n, n), pos)
        for (glo, ghi), o, s, j, f in zip(gbox, pos, r.axes("start"), r.axes("jump"), r.axes("rf")):
            lo = s + o * j
            assert (glo, ghi) == (max(lo, 0), min(lo + f - 1, n - 1)), (name, pos, gbox, s, j, f)


@pytest.mark.parametrize("name", sorted(GRADIENT))
def test_trunk_rf_equals_gradient_support(name):
    torch.manual_seed(0)
    children, n = GRADIENT[name]
    assert_rf_is_gradient_support(name, trunk_of(torchvision.models.get_model(name).eval(), children), n)


@pytest.mark.parametrize("key", sorted(TIMM_GRADIENT))
def test_timm_trunk_rf_equals_gradient_support(key):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    children, n = TIMM_GRADIENT[key]
    model = timm.create_model(key.split("/")[0], pretrained=False).eval()
    assert_rf_is_gradient_support(key, trunk_of(model, children), n)


def teardown_module(module):
    if RESULTS and os.environ.get("RFSYM_WRITE_COVERAGE"):
        old = json.loads(CACHE.read_text()) if CACHE.exists() else {}
        old.update(RESULTS)
        CACHE.write_text(json.dumps(old, indent=1, sort_keys=True))


def test_docs_coverage_table_is_current():
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("torch_coverage", root / "scripts" / "torch_coverage.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.main(["--check"]) == 0, "run: python scripts/torch_coverage.py"
