"""Enumeration verifier on ResNet-50 at 224x224 and on deep chains.

* ``verify``: :func:`rfsym.verify` (engine against brute-force enumeration on every layer: rf,
  jump, start, centre, out_size), its two halves, and 2-D dependency masks
  (:func:`rfsym.enumeration.dependency_mask`) of outputs of every layer; then deep chains:
  ``verify`` of 10^3 … 10^5 padded 3-wide convolutions,
  interval method (the default) against the dense one, each run in a fresh process so its peak
  resident memory is its own: median CPU seconds and peak RSS (targets: 10^4 layers < 5 s,
  10^5 layers < 60 s and < 1 GB).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from harness import Table, median_time, section

from rfsym import analyze, verify, zoo
from rfsym.enumeration import dependency_mask, enumerate_network

MODES = (("real paths", {}), ("through padding", {"through_padding": True}), ("path counts", {"counts": True}),
         ("counts through padding", {"counts": True, "through_padding": True}))


def _all_layers(net, size):
    r = analyze(net, size)
    for layer in r.layers:
        for q in ("rf", "jump", "start", "center", "out_size"):
            layer.axes(q)
    return r


@section("verify", "Verification: ResNet-50 at 224x224, every layer, against enumeration", order=40)
def verify_section(ctx):
    net = zoo.get("resnet50")
    size = 224
    table = Table(["what", "time (s)", "layers", "comparisons", "ok"])
    t, rep = median_time(lambda: verify(net, size), ctx.repeat)
    assert rep.ok, str(rep)
    table.add("verify (first 64 outputs of every layer per axis)", t, rep.layers, rep.checked, rep.ok)
    t, rep = median_time(lambda: verify(net, size, method="dense"), ctx.repeat)
    assert rep.ok, str(rep)
    table.add("  the same, method='dense' (the reference enumeration)", t, rep.layers, rep.checked, rep.ok)
    t, rep = median_time(lambda: verify(net, size, positions="all"), ctx.repeat)
    assert rep.ok, str(rep)
    table.add("verify, positions='all' (every output of every layer)", t, rep.layers, rep.checked, rep.ok)
    t, r = median_time(lambda: _all_layers(net, size), ctx.repeat)
    table.add("  engine alone (analyze + every layer's quantities)", t, len(r.layers), None, None)
    t, e = median_time(lambda: enumerate_network(net, size, positions="all"), ctx.repeat)
    table.add("  enumeration alone, positions='all'", t, len(e.layers), None, None)
    table.note = (f"Medians over {ctx.repeat} runs. `rfsym.verify(zoo.get('resnet50'), 224)` compares rf, jump, "
                  "start, centre and out_size of every layer (merges included) and of the output, on both "
                  "axes, between the engine and the brute-force enumerator (which shares no code with it); "
                  "the benchmark fails unless every comparison agrees.")

    masks = Table(["output", "mode", "time (s)", "mask shape", "pixels set"])
    r = analyze(net, size)
    picks = [(len(r.layers) - 1, "network output (fc)"), (r.layers.index(r.layer("layer4.2.relu")),
                                                          "layer4.2.relu (last feature map)"),
             (r.layers.index(r.layer("layer3.1.relu")), "layer3.1.relu"), (0, "conv1")]
    for i, label in picks:
        n = r.layers[i].axes("out_size")
        idx = (int(n[0]) // 2, int(n[1]) // 2)
        for mode, kw in MODES:
            t, m = median_time(lambda i=i, idx=idx, kw=kw: dependency_mask(net, size, idx, layer=i, **kw), ctx.repeat)
            masks.add(f"{label} at {idx}", mode, t, "×".join(map(str, m.shape)), int((m > 0).sum()))
    if not ctx.quick:
        times = []
        for i, layer in enumerate(r.layers):
            n = layer.axes("out_size")
            for idx in ((0, 0), (int(n[0]) // 2, int(n[1]) // 2)):
                for _, kw in MODES:
                    t0 = time.perf_counter()
                    dependency_mask(net, size, idx, layer=i, **kw)
                    times.append(time.perf_counter() - t0)
        masks.add(f"every layer ({len(r.layers)}) at (0, 0) and its centre, 1 run each: median",
                  "all four", statistics.median(times), "224×224", None)
        masks.add("  the same: slowest", "all four", max(times), "224×224", None)
    masks.title = "Dependency masks of ResNet-50 at 224×224"
    masks.note = ("`dependency_mask(net, 224, index, layer=i, ...)`: which input pixels feed one output. *real "
                  "paths*: through real positions only (what a gradient shows); *through padding*: the "
                  "receptive-field convention (padding positions pass on what they read); *path counts*: "
                  "exact number of paths per pixel (integers).")
    return [table, masks] + scale_section(ctx)


_CHAIN = r"""
import json, sys, time
import rfsym
from harness import peak_kib
from rfsym import Conv, Sequential, analyze, verify
layers, size, method = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
net = Sequential(*[Conv(3, padding=1)] * layers)
t = time.process_time()
try:
    report = verify(net, size, ndim=1, method=method)
    ok, error = report.ok, None
except rfsym.RfsymError as err:
    ok, error = None, str(err)
cpu = time.process_time() - t
rss = peak_kib() / 1024  # this process's own peak
t = time.process_time()
result = analyze(net, size, ndim=1)
for layer in result.layers:
    for q in ("rf", "jump", "start", "center", "out_size", "period"):
        layer.axes(q)
engine = time.process_time() - t
print(json.dumps({"cpu": cpu, "rss": rss, "ok": ok, "error": error, "engine": engine}))
"""


_GOALS = {10_000: (5, 1000), 100_000: (60, 1000)}  # layers: (CPU seconds, peak RSS in MB)


def _chain_run(layers, size, method):
    """One ``verify`` of a chain in a fresh process: CPU seconds, peak RSS (MB), outcome."""
    here = os.path.dirname(os.path.abspath(__file__))  # the harness
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(here), here, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", _CHAIN, str(layers), str(size), method], capture_output=True,
                         text=True, env=env, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale_section(ctx):
    """The deep chains (part of the ``verify`` section)."""
    size = 32
    configs = [(1000, "intervals"), (1000, "dense"), (10_000, "intervals"), (10_000, "dense")]
    if not ctx.quick:
        configs.append((100_000, "intervals"))
    runs = {c: [] for c in configs}
    for _ in range(max(1, ctx.repeat)):  # interleaved: every configuration once per round
        for c in configs:
            runs[c].append(_chain_run(c[0], size, c[1]))
    table = Table(["layers", "method", "verify CPU (s)", "of which engine (s)", "peak RSS (MB)", "outcome"])
    for (layers, method), rs in runs.items():
        first = rs[0]
        outcome = ("ok" if first["ok"] else "MISMATCH") if first["error"] is None else \
            "refused: " + first["error"].split(" would take ")[1].split(";")[0]
        assert first["ok"] is not False, f"{layers} layers, {method}: mismatches"
        cpu, rss = statistics.median(r["cpu"] for r in rs), statistics.median(r["rss"] for r in rs)
        table.add(f"{layers:,}", method, cpu, statistics.median(r["engine"] for r in rs), rss, outcome)
        if method == "intervals" and layers in _GOALS:
            seconds, megabytes = _GOALS[layers]
            ctx.target(f"verify, {layers:,}-layer chain: CPU, peak RSS", f"{cpu:.3g} s, {rss:.0f} MB",
                       f"< {seconds} s, < {megabytes} MB", cpu < seconds and rss < megabytes)
    table.title = f"`verify` of a chain of padded 3-wide convolutions, 1-D, input {size}, default positions (64)"
    table.note = (f"Medians over {ctx.repeat} runs, interleaved, each in a fresh process. *verify CPU*: "
                  "`rfsym.verify(Sequential(*[Conv(3, padding=1)] * L), 32, ndim=1, method=...)` (analysis, "
                  "enumeration and comparison); *of which engine*: `analyze` and reading every layer's rf, jump, "
                  "start, centre, out_size and period, timed again on their own after it; *peak RSS*: the "
                  "process's peak resident memory (Python, numpy and sympy included). The dense method refuses "
                  "the 10,000-layer chain before any work (its budget: 2e9 array cells).")
    return [table]
