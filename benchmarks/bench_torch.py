"""Side by side with torchscan and ptflops on torchvision's own models.

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
import gc
import io
import statistics
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
                   "(no other operation adds MACs); torchscan 0.2 and ptflops' pytorch backend also count BatchNorm, "
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
#: the counters rfsym's import is timed against (extra ``bench``: pip install -e '.[bench]')
PEERS = ("torchinfo", "thop", "ptflops", "fvcore", "torchscan")
#: target: rfsym at least this many times faster than the fastest peer
TARGET = 4.0


def _peer_modules():
    """``{name: module}`` of the installed peers and ``{name: reason}`` of the others."""
    import importlib

    found, missing = {}, {}
    for name in PEERS:
        try:
            found[name] = importlib.import_module("fvcore.nn" if name == "fvcore" else name)
        except Exception as err:  # noqa: BLE001 - absent, or built for another torch
            missing[name] = "not installed" if isinstance(err, ImportError) else f"{type(err).__name__}: {err}"
    return found, missing


def _peer_call(name, mod, model, x):
    """A function counting ``model``'s parameters and MACs at ``x``'s shape the way peer ``name``
    does it (each runs the module once, with hooks or a JIT trace)."""
    shape = tuple(x.shape)
    if name == "torchinfo":
        def run():
            s = mod.summary(model, input_size=shape, verbose=0)
            return s.total_params, s.total_mult_adds
    elif name == "thop":
        def run():
            macs, params = mod.profile(model, inputs=(x,), verbose=False)
            return params, macs
    elif name == "ptflops":
        def run():
            macs, params = mod.get_model_complexity_info(model, shape[1:], as_strings=False,
                                                         print_per_layer_stat=False)
            return params, macs
    elif name == "fvcore":
        def run():
            return mod.parameter_count(model)[""], mod.FlopCountAnalysis(model, x).unsupported_ops_warnings(
                False).uncalled_modules_warnings(False).total()
    else:  # torchscan
        def run():
            totals = mod.crawl_module(model, shape[1:])["totals"]
            return totals["parameters"]["value"], totals["macs"]["value"]
    return run


def _quiet(fn):
    def run():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    return run


def _rfsym_import(rfsym, model, shape):
    """from_torch + analyze, reading rf, jump, params and MACs."""
    r = rfsym.analyze(rfsym.from_torch(model, shape), input_size=shape[-1])
    return r.rf, r.jump, r.params, r.macs


def _memory(torch, rfsym, model, shape):
    """(tracemalloc peak of the Python heap in MB, largest tensor off the meta device that torch
    allocated, in elements, and the aten operations run on such tensors) during one import."""
    import tracemalloc

    from torch.utils._python_dispatch import TorchDispatchMode

    seen = {"largest": 0, "ops": set()}

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            real = [t for t in torch.utils._pytree.tree_leaves((args, kwargs, out))
                    if isinstance(t, torch.Tensor) and not t.is_meta]
            if real:
                seen["ops"].add(str(func.overloadpacket.__name__))
                seen["largest"] = max([seen["largest"]] + [t.numel() for t in real])
            return out

    with Watch():
        _rfsym_import(rfsym, model, shape)
    tracemalloc.start()
    _rfsym_import(rfsym, model, shape)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6, seen["largest"], sorted(seen["ops"])


@section("torch_import", "from_torch + analyze of torchvision modules vs one forward pass and the peers",
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
    peers, missing = _peer_modules()
    cols = ["model", "rfsym (s)", "rfsym first call (s)", "forward (s)"] + [f"{p} (s)" for p in PEERS]
    cols += ["fastest peer / rfsym", "forward / rfsym", f"target (>= {TARGET:g}x, < forward)",
             "import peak heap (MB)", "largest non-meta tensor (elements)", "largest activation (elements)"]
    table = Table(cols)
    ops_seen = set()
    for name in IMPORT_MODELS[:3] if ctx.quick else IMPORT_MODELS:
        model = torchvision.models.get_model(name).eval()
        shape = (3, 224, 224)
        x = torch.randn(1, *shape)
        acts = []
        hooks = [m.register_forward_hook(lambda m, i, o, acts=acts: acts.append(o.numel()) if isinstance(
            o, torch.Tensor) else None) for m in model.modules()]
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()

        def forward(m=model, x=x):
            with torch.no_grad():
                return m(x)

        fns = {"rfsym": lambda m=model, s=shape: _rfsym_import(rfsym, m, s), "forward": forward}
        fns.update({p: _quiet(_peer_call(p, mod, model, x)) for p, mod in peers.items()})
        first = None
        for k, fn in fns.items():  # warm-up: imports, fx, meta kernels, JIT
            t0 = time.process_time()
            fn()
            if k == "rfsym":
                first = time.process_time() - t0
        times = {k: [] for k in fns}
        for _ in range(max(1, ctx.repeat)):  # interleaved: every tool once per repetition
            gc.collect()
            for k, fn in fns.items():
                gc.disable()  # as timeit does: no tool pays for a collection of another's garbage
                try:
                    t0 = time.process_time()
                    fn()
                    times[k].append(time.process_time() - t0)
                finally:
                    gc.enable()
        med = {k: statistics.median(v) for k, v in times.items()}
        ours = med["rfsym"]
        fastest = min((med[p] for p in peers), default=None)
        peak, largest, ops = _memory(torch, rfsym, model, shape)
        ops_seen.update(ops)
        ratio = None if fastest is None else fastest / ours
        met = (ratio is not None and ratio >= TARGET) and med["forward"] > ours
        table.add(name, ours, first, med["forward"], *[med.get(p, missing.get(p)) for p in PEERS], ratio,
                  med["forward"] / ours, "yes" if met else "no", peak, largest, max(acts))
        ctx.target(f"from_torch + analyze, torchvision {name}: fastest peer / rfsym (CPU), rfsym vs forward",
                   "–" if ratio is None else f"{ratio:.2f}x, {ours * 1e3:.1f} vs {med['forward'] * 1e3:.1f} ms",
                   f">= {TARGET:g}x, faster than a forward pass", met)
    table.title = "from_torch + analyze: CPU seconds, 1 thread"
    table.note = (f"Medians of time.process_time over {ctx.repeat} interleaved repetitions (each repetition runs "
                  "rfsym, the forward pass and every peer in turn on the same module, after one warm-up "
                  "run of each; the garbage collector runs between repetitions and is off during each "
                  "timed call, as in timeit); torch.set_num_threads(1), input 1x3x224x224. *rfsym*: "
                  "`analyze(from_torch(model, (3, 224, 224)), input_size=224)` reading rf, jump, params, "
                  "MACs. *rfsym first call*: the warm-up call, the model's first import in the process "
                  "(the timed imports reuse the rfsym layers it made: from_torch shares one table of "
                  "immutable layers across imports; layers of models imported before are reused too). *forward*: one forward pass in eval mode under no_grad. Peers count parameters and "
                  "MACs at 224: torchinfo `summary`, thop `profile`, ptflops `get_model_complexity_info` "
                  "(default pytorch backend), fvcore `parameter_count` + `FlopCountAnalysis.total`, torchscan "
                  "`crawl_module`; each runs the module once (hooks or a JIT trace). *target*: fastest peer / "
                  f"rfsym >= {TARGET:g} and rfsym faster than the forward pass. *import peak heap*: "
                  "tracemalloc's peak during one import (Python objects; meta tensors hold no storage). "
                  "*largest non-meta tensor*: the largest tensor off the meta device that any aten operation "
                  "read or wrote during the import (a TorchDispatchMode watching it), next to the model's "
                  "largest activation; aten operations run on such tensors: "
                  f"{', '.join(sorted(ops_seen)) or 'none'}."
                  + (" Not run: " + ", ".join(f"{k} ({v})" for k, v in missing.items()) + "; install the "
                     "`bench` extra: pip install -c constraints.txt -e '.[bench]'." if missing else ""))
    return [table, _many_modules(ctx, torch, torchvision, rfsym)]


#: models of 500 to 2,000 modules:
#: torchvision's densenet201 and, where timm is installed, the largest of its families
MANY_MODULES = ("densenet201", "timm/densenet264d", "timm/hrnet_w64", "timm/maxvit_xlarge_tf_224",
                "timm/resnest269e", "timm/efficientnetv2_xl")


def _many_modules(ctx, torch, torchvision, rfsym):
    table = Table(["model", "input", "modules", "graph nodes", "first from_torch (s)", "from_torch (s)",
                   "analyze (s)"])
    skipped = []
    for name in MANY_MODULES[:2] if ctx.quick else MANY_MODULES:
        try:
            with torch.device("meta"):  # no weights allocated
                if name.startswith("timm/"):
                    import timm

                    model = timm.create_model(name[5:], pretrained=False)
                else:
                    model = torchvision.models.get_model(name)
        except Exception as err:  # noqa: BLE001 - timm absent or too old
            skipped.append(f"{name} ({type(err).__name__})")
            continue
        model.eval()
        shape = tuple((getattr(model, "pretrained_cfg", None) or {}).get("input_size", (3, 224, 224)))
        size = shape[1] if shape[1] == shape[2] else shape[1:]
        t0 = time.process_time()
        net = rfsym.from_torch(model, shape)
        first = time.process_time() - t0
        times, derive = [], []
        for _ in range(max(1, ctx.repeat)):
            gc.collect()
            gc.disable()
            try:
                t0 = time.process_time()
                net = rfsym.from_torch(model, shape)
                t1 = time.process_time()
                r = rfsym.analyze(net, input_size=size)
                _ = (r.rf, r.jump, r.params, r.macs)
                t2 = time.process_time()
            finally:
                gc.enable()
            times.append(t1 - t0)
            derive.append(t2 - t1)
        modules = sum(1 for _ in model.modules())
        table.add(name, "x".join(map(str, shape[1:])), modules, len(net.nodes), first,
                  statistics.median(times), statistics.median(derive))
        if modules >= 1000:
            total = first + statistics.median(derive)
            ctx.target(f"{name} ({modules:,} modules): first from_torch + analyze", f"{total:.3f} s", "< 1 s",
                       total < 1)
    table.title = "from_torch of models with many modules: CPU seconds, 1 thread"
    table.note = ("Models built on the meta device at their default input size (timm's pretrained_cfg). *first*: "
                  "the first import in the process (one warm-up of the torchvision models above ran before); "
                  f"then medians over {ctx.repeat} repetitions, garbage collection off during each. "
                  + ("Not run: " + ", ".join(skipped) + "." if skipped else ""))
    return table
