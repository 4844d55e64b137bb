"""Enumeration verifier on ResNet-50 at 224x224 (issue 9).

* ``verify``: :func:`rfsym.verify` (engine against brute-force enumeration on every layer: rf,
  jump, start, centre, out_size), its two halves, and 2-D dependency masks
  (:func:`rfsym.enumeration.dependency_mask`) of outputs of every layer.
"""

from __future__ import annotations

import statistics
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
    return [table, masks]
