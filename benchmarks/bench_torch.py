"""Side by side with torchscan and ptflops on torchvision's own models (issue 9).

* ``torch``: parameters, MACs and (where reported) receptive fields of torchvision models as
  counted by rfsym (its zoo entry, no torch involved), torchvision's published figures, torchscan
  and ptflops (both of its backends), with the time each tool takes. Skipped, with a message,
  where torch, torchvision, torchscan or ptflops cannot be imported; it is meant for a separate
  environment (CPU torch is 5.5 GB), never for CI:

      python3 -m venv /work/scratch/tvenv
      /work/scratch/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 torchscan ptflops
      /work/scratch/tvenv/bin/pip install -e .
      /work/scratch/tvenv/bin/python benchmarks/run.py torch
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings

from harness import Table, section

from rfsym import analyze, zoo

MODELS = ("alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "inception_v3")
_WINDOWED = ("Conv2d", "MaxPool2d", "AvgPool2d")


def _imports():
    """(torch, torchvision.models, torchscan, ptflops), or a reason why not."""
    try:
        import ptflops
        import torch
        import torchscan
        from torchvision import models
    except Exception as err:  # noqa: BLE001 - ImportError, or a torchvision built for another torch
        return None, f"{type(err).__name__}: {err}"
    return (torch, models, torchscan, ptflops), None


def _timed(fn, repeat):
    times, out = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], out


def _rfsym(name):
    e = zoo.entry(name)
    r = analyze(e.build(), e.input_size, ndim=e.ndim, in_channels=e.in_channels)
    for layer in r.layers:  # every layer's quantities, as the tools report per-layer figures
        _ = (layer.rf, layer.jump, layer.start, layer.out_size, layer.params, layer.macs)
    return r, r.params, r.macs


def _model(models, name):
    kwargs = {"weights": None}
    if name == "inception_v3":  # rfsym's entry is the inference network (no training-only AuxLogits)
        kwargs.update(aux_logits=False, init_weights=False)
    return getattr(models, name)(**kwargs).eval()


def _published(models, name):
    """torchvision's published GFLOPS (multiply-accumulates, ×1e9) and parameters, from the weights'
    metadata (no download)."""
    try:
        meta = models.get_model_weights(name).DEFAULT.meta
        return meta.get("_ops"), meta.get("num_params")
    except Exception:  # noqa: BLE001 - metadata layout differs across versions
        return None, None


def _torchscan(torchscan, model, shape):
    info = torchscan.crawl_module(model, shape)
    totals = info["totals"]
    return info, totals["parameters"]["value"], totals["macs"]["value"]


def _ptflops(ptflops, model, shape, backend):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs, params = ptflops.get_model_complexity_info(model, shape, as_strings=False,
                                                         print_per_layer_stat=False, backend=backend)
    return macs, params


def _rf_agreement(info, result):
    """torchscan's per-module receptive field, stride and padding against rfsym's own map of the
    same layer (torchscan 0.2 reports them per module, not accumulated over the network)."""
    ours = {layer.name: layer for layer in result.layers}
    agree, total, first = 0, 0, None
    for layer in info["layers"]:
        if layer["type"] not in _WINDOWED or layer["path"] not in ours:
            continue
        m = layer["metrics"]
        theirs = tuple(m.get(k, {}).get("value") for k in ("receptive_field", "effective_stride", "effective_padding"))
        if None in theirs:
            continue
        own = ours[layer["path"]].own_maps[0]
        mine = (int(own.rfs[0]), int(own.jump), -int(own.starts[0]))
        total += 1
        if tuple(float(v) for v in mine) == tuple(float(v) for v in theirs):
            agree += 1
        elif first is None:
            first = f"{layer['path']}: rfsym {mine}, torchscan {tuple(theirs)}"
    return agree, total, first


def _bias_adds(result):
    """One addition per output element of every convolution and linear layer with a bias (what
    ptflops' aten backend adds to the multiply-accumulates), counted from rfsym's result."""
    total = 0
    for layer in result.layers:
        if layer.type in ("Conv", "ConvTranspose", "Linear") and getattr(layer.layer, "bias", False):
            n = 1
            for size in layer.axes("out_size") if layer.type != "Linear" else ():
                n *= int(size)
            total += n * int(layer.out_channels)
    return total


def _torchscan_by_type(info):
    """torchscan's MACs summed per module type, leaves only (containers repeat their children)."""
    paths = [layer["path"] for layer in info["layers"]]
    out = {}
    for layer in info["layers"]:
        p = layer["path"]
        if any(q.startswith(p + ".") for q in paths if p):
            continue
        v = layer["metrics"].get("macs", {}).get("value")
        if v:
            out[layer["type"]] = out.get(layer["type"], 0) + int(v)
    return out


def _pct(value, ref):
    return None if value is None or not ref else f"{100 * (value - ref) / ref:+.2f} %"


@section("torch", "Side by side: rfsym, torchvision, torchscan and ptflops on torchvision models", order=50)
def torch_section(ctx):
    mods, why = _imports()
    if mods is None:
        table = Table(["status"])
        table.add("skipped")
        table.note = (f"torch, torchvision, torchscan or ptflops is not importable here ({why}). Run this section "
                      "from a separate environment: see `benchmarks/bench_torch.py`.")
        return table
    torch, models, torchscan, ptflops = mods
    torch.set_num_threads(2)
    names = MODELS[:3] if ctx.quick else MODELS
    counts = Table(["model", "params: rfsym", "torch numel", "torchscan", "ptflops", "MACs: rfsym",
                    "torchvision published", "torchscan", "vs rfsym", "torchscan conv+linear = rfsym",
                    "ptflops (pytorch)", "vs rfsym", "ptflops (aten)", "vs rfsym", "rfsym + bias adds = aten"])
    times = Table(["model", "rfsym (s)", "torchscan (s)", "ratio", "ptflops pytorch (s)", "ratio",
                   "ptflops aten (s)", "ratio", "torchscan per-module rf/stride/padding = rfsym"])
    issues = []
    for name in names:
        e = zoo.entry(name)
        shape = (e.in_channels, e.input_size, e.input_size)
        t_ours, (result, params, macs) = _timed(lambda n=name: _rfsym(n), ctx.repeat)
        params, macs = int(params), int(macs)
        with torch.no_grad():
            model = _model(models, name)
            numel = sum(p.numel() for p in model.parameters())
            t_ts, (info, ts_params, ts_macs) = _timed(lambda m=model, sh=shape: _torchscan(torchscan, m, sh), ctx.repeat)
            t_pt, (pt_macs, pt_params) = _timed(lambda m=model, sh=shape: _ptflops(ptflops, m, sh, "pytorch"),
                                                ctx.repeat)
            t_at, (at_macs, _) = _timed(lambda m=model, sh=shape: _ptflops(ptflops, m, sh, "aten"), ctx.repeat)
        gflops, pub_params = _published(models, name)
        if pub_params is not None and pub_params != numel:
            issues.append(f"{name}: torchvision metadata num_params {pub_params:,} != numel {numel:,}")
        agree, total, first = _rf_agreement(info, result)
        if first:
            issues.append(f"{name}: first receptive-field disagreement {first}")
        by_type = _torchscan_by_type(info)
        ts_conv_linear = sum(v for k, v in by_type.items() if k.startswith(("Conv", "Linear")))
        others = ", ".join(f"{k} {v:,}" for k, v in sorted(by_type.items()) if not k.startswith(("Conv", "Linear")))
        issues.append(f"{name}: torchscan's other MACs: {others or 'none'}")
        counts.add(name, params, numel, ts_params, pt_params, macs,
                   None if gflops is None else f"{gflops:.3f} G", ts_macs, _pct(ts_macs, macs),
                   ts_conv_linear == macs, pt_macs, _pct(pt_macs, macs), at_macs, _pct(at_macs, macs),
                   macs + _bias_adds(result) == at_macs)
        times.add(name, t_ours, t_ts, t_ts / t_ours, t_pt, t_pt / t_ours, t_at, t_at / t_ours, f"{agree}/{total}")
        assert params == numel, (name, params, numel)  # rfsym's parameters are torch's, exactly
    counts.title = "Parameters and multiply-accumulates"
    counts.note = ("Input: the entry's standard size (inception_v3 299, others 224), batch 1. rfsym's MACs count "
                   "convolutions and linear layers only, torchvision's convention for its published GFLOPS "
                   "(REFERENCE.md: 'Counts'); torchscan 0.2 and ptflops' pytorch backend also count BatchNorm, "
                   "pooling, activations (ptflops) and the classifier's pooling, hence their larger totals; "
                   "ptflops' aten backend counts the aten convolution and matrix-multiply operators it "
                   "traces, plus one addition per output element of every layer with a bias. *vs rfsym*: "
                   "relative difference. *torchscan conv+linear = rfsym*: torchscan's MACs of its Conv and "
                   "Linear modules alone equal rfsym's count; *rfsym + bias adds = aten*: rfsym's MACs plus the "
                   "bias additions counted from rfsym's own result equal ptflops' aten total. "
                   + ("Details: " + "; ".join(issues) + "." if issues else ""))
    times.title = "Time per model (CPU, 2 threads)"
    times.note = (f"Medians over {ctx.repeat} runs. rfsym: building the zoo network, `analyze` at the input size "
                  "and reading every layer's rf, jump, start, out_size, params and MACs (no torch involved). "
                  "torchscan (`crawl_module`) and ptflops (`get_model_complexity_info`) run a forward pass of "
                  "the torch model with hooks (model construction not timed). *ratio*: tool time / rfsym time. "
                  "Last column: conv and pool modules whose receptive field, stride and padding in torchscan's "
                  "report equal rfsym's own index map of the same layer (torchscan reports these per module; "
                  "it does not accumulate them over the network, so there is no whole-network rf to compare).")
    return [counts, times]


# --------------------------------------------------------------------------- from_torch import speed
IMPORT_MODELS = ("resnet152", "resnet50", "mobilenet_v2", "efficientnet_b0", "convnext_tiny", "densenet121",
                 "vit_b_16")


def _cpu(fn, repeat):
    """Median CPU time (process_time) of ``fn()`` and its last result."""
    times, out = [], None
    for _ in range(max(1, repeat)):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return sorted(times)[len(times) // 2], out


def _peers():
    """Installed counters among torchinfo, thop, fvcore (never installed by this benchmark)."""
    out = {}
    for name in ("torchinfo", "thop", "fvcore"):
        try:
            out[name] = __import__(name if name != "fvcore" else "fvcore.nn", fromlist=["x"])
        except Exception:  # noqa: BLE001 - absent or built for another torch
            pass
    return out


@section("torch_import", "from_torch + analyze of torchvision modules vs one forward pass and installed peers",
         order=51)
def torch_import_section(ctx):
    try:
        import torch
        import torchvision
    except Exception as err:  # noqa: BLE001
        table = Table(["status"])
        table.add("skipped")
        table.note = f"torch/torchvision not importable: {type(err).__name__}: {err}"
        return table
    import rfsym

    torch.set_num_threads(1)
    peers = _peers()
    cols = ["model", "modules", "from_torch (s)", "analyze (s)", "forward pass (s)", "forward / rfsym"]
    cols += [f"{p} (s)" for p in peers] + [f"{p} / rfsym" for p in peers]
    table = Table(cols)
    for name in IMPORT_MODELS[:3] if ctx.quick else IMPORT_MODELS:
        model = torchvision.models.get_model(name).eval()
        shape = (3, 224, 224)
        rfsym.from_torch(model, shape)  # warm-up (fx, meta kernels)
        t_imp, net = _cpu(lambda m=model, s=shape: rfsym.from_torch(m, s), ctx.repeat)
        try:
            t_an, _ = _cpu(lambda n=net: rfsym.analyze(n, input_size=224), ctx.repeat)
        except rfsym.RfsymError:
            t_an = None
        x = torch.randn(1, *shape)
        with torch.no_grad():
            t_fw, _ = _cpu(lambda m=model, x=x: m(x), ctx.repeat)
        total = t_imp + (t_an or 0)
        row = [name, len(list(model.modules())), t_imp, t_an, t_fw, t_fw / total]
        peer_t = []
        for p, mod in peers.items():
            with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if p == "torchinfo":
                    t, _ = _cpu(lambda m=model, mod=mod, s=shape: mod.summary(m, (1, *s), verbose=0), ctx.repeat)
                elif p == "thop":
                    t, _ = _cpu(lambda m=model, mod=mod, x=x: mod.profile(m, inputs=(x,), verbose=False), ctx.repeat)
                else:
                    t, _ = _cpu(lambda m=model, mod=mod, x=x: mod.FlopCountAnalysis(m, x).total(), ctx.repeat)
            peer_t.append(t)
        table.add(*row, *peer_t, *[t / total for t in peer_t])
    table.title = "from_torch import speed (CPU seconds, 1 thread)"
    table.note = ("from_torch traces with torch.fx and propagates meta tensors: no convolution is computed. "
                  "*analyze*: empty where the engine cannot analyse the imported graph yet. Peers are timed only "
                  f"where installed (here: {', '.join(peers) or 'none'}).")
    return table
