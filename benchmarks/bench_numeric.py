"""Numeric chains and the command line.

* ``numeric-chain``: ``analyze`` of a chain of N numeric layers, then the output's ``rf``,
  ``jump``, ``start``, ``out_size``, ``params`` and ``macs`` (the analysis a user reads), each
  run in a fresh process (so allocation and peak memory are those of one analysis): median CPU
  seconds, microseconds per layer, peak RSS of the process and what the analysis added to it.
  Also every layer's ``rf`` (``all rf``). Chains: ``conv`` = ``[Conv(3, padding=1)] * N``;
  ``mix`` = a pattern of 3x3 convolutions, a dilated one, ReLU, BatchNorm and a stride-1 pool,
  a stride-2 convolution every 1,000 layers (input ``2**120``, so every layer fits); ``distinct``
  = N separately built ``Conv(3, padding=1)`` objects (no two share a cache entry); ``pool`` =
  ``[MaxPool(2, stride=1)] * N`` on a large input (the size changes at every layer: every
  layer's rule runs). Target: <= 10 us a layer.
* ``read-layers``: after ``analyze`` of a numeric chain of 10^5 layers, reading every layer's
  ``rf``, ``jump``, ``start`` and ``out_size`` (``[(l.rf, l.jump, l.start, l.out_size) for l in
  r.layers]``), then ``center``, ``period`` and ``rf_min`` too as per-axis tuples (``axes``, what
  :func:`rfsym.verify` reads); fresh process per run, CPU seconds with the garbage collector
  on, as a user's loop runs. ``make values``: the same loop building the same sympy numbers
  without rfsym, in its own fresh process after the same analysis (the floor: two distinct sympy
  Integers a layer and the collections they cost on that heap).
  Target: < 0.5 s for the four quantities of 10^5 layers.
* ``cli``: wall time of ``python -m rfsym --help`` and ``python -m rfsym analyze resnet50``
  (medians over interleaved runs), beside ``python -c "import sympy"`` and ``python -c pass``
  for reference. Target: < 0.5 s each.

Run one chain by hand: ``python benchmarks/bench_numeric.py conv 100000 64``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from harness import Table, peak_kib, section

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _chain(kind, n):
    from rfsym import BatchNorm, Conv, MaxPool, ReLU, Sequential

    if kind == "conv":
        return Sequential(*[Conv(3, padding=1)] * n)
    if kind == "distinct":
        return Sequential(*[Conv(3, padding=1) for _ in range(n)])
    if kind == "pool":
        return Sequential(*[MaxPool(2, stride=1)] * n)
    pattern = [Conv(3, padding=1), ReLU(), Conv(3, padding=2, dilation=2), BatchNorm(8),
               MaxPool(3, stride=1, padding=1)]
    layers = (pattern * (n // len(pattern) + 1))[:n]
    down = Conv(3, stride=2, padding=1)
    for i in range(0, n, 1000):
        layers[i] = down
    return Sequential(*layers)


def worker(kind, n, size, every):
    """One measurement in this process: JSON with CPU seconds and peak RSS (KiB)."""
    from rfsym import analyze

    net = _chain(kind, n)
    before = peak_kib()
    t0 = time.process_time()
    r = analyze(net, input_size=size, in_channels=8)
    values = (r.rf, r.jump, r.start, r.out_size, r.params, r.macs)
    cpu = time.process_time() - t0
    out = {"cpu": cpu, "rss": peak_kib(), "rss_before": before,
           "rf": str(values[0])}
    if every:
        t0 = time.process_time()
        fields = [layer.rf for layer in r.layers]
        out["all"] = time.process_time() - t0
        assert len(fields) == n
    return out


def reader(kind, n, size, floor=False):
    """Every layer's quantities after one analysis, in this process: JSON with CPU seconds
    (``floor``: the same loop making the same sympy numbers without rfsym, after the analysis)."""
    import sympy as sp

    from rfsym import analyze

    r = analyze(_chain(kind, n), input_size=size, in_channels=8)
    if floor:
        one, out = sp.Integer(1), r.out_size  # the same object every layer, as rfsym gives it
        t0 = time.process_time()
        values = [(sp.Integer(2 * i + 3), one, sp.Integer(-i - 1), out) for i in range(n)]
        t1 = time.process_time()
        assert len(values) == n
        return {"floor": t1 - t0}
    t0 = time.process_time()
    four = [(layer.rf, layer.jump, layer.start, layer.out_size) for layer in r.layers]
    t1 = time.process_time()
    rest = [[layer.axes(q) for q in ("center", "period", "rf_min")] for layer in r.layers]
    t2 = time.process_time()
    assert len(four) == len(rest) == n and four[-1][0] == r.rf
    return {"four": t1 - t0, "rest": t2 - t1}


def _run(kind, n, size, every=False, root=ROOT, mode=None):
    cmd = [sys.executable, os.path.abspath(__file__), kind, str(n), "none" if size is None else str(size)]
    if every:
        cmd.append("every")
    if mode:
        cmd.append(mode)
    env = dict(os.environ, PYTHONPATH=root)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@section("numeric-chain", "Numeric chains: analyze of N numeric layers (fresh process per run)", order=16)
def numeric_chain(ctx):
    sizes = (10_000, 100_000) if ctx.quick else (10_000, 100_000, 1_000_000)
    cases = [("conv", 64), ("conv", None), ("mix", 2**120), ("mix", None), ("distinct", 64), ("pool", 2**120)]
    table = Table(["chain", "input", "layers", "CPU (s)", "us/layer", "vs 10 us", "peak RSS (MB)",
                   "added (MB)", "all rf (s)"])
    for kind, size in cases:
        for n in sizes:
            if kind in ("distinct", "pool") and n > 100_000:
                continue  # building 10^6 separate layers takes longer than analysing them
            runs = [_run(kind, n, size, every=n <= 100_000) for _ in range(max(1, ctx.repeat))]
            cpu = statistics.median(r["cpu"] for r in runs)
            rss = statistics.median(r["rss"] for r in runs) / 1024
            added = statistics.median(r["rss"] - r["rss_before"] for r in runs) / 1024
            every = statistics.median(r["all"] for r in runs) if "all" in runs[0] else None
            per = cpu / n * 1e6
            table.add(kind, "none" if size is None else "2**120" if size == 2**120 else size, n, cpu, per,
                      f"{per / 10:.2f}x", rss, added, every)
            label = f"[{kind}] chain, {n:,} layers, input {'none' if size is None else '2**120' if size == 2**120 else size}"
            if n == 100_000:
                ctx.target(f"analyze, {label}: CPU per layer", f"{per:.2f} us", "<= 10 us (< 1 s in all)", per <= 10)
            elif n == 1_000_000 and kind == "conv":
                ctx.target(f"analyze, {label}: CPU", f"{cpu:.2f} s", "< 10 s", cpu < 10)
    table.note = ("CPU: analyze + the output's rf, jump, start, out_size, params, macs; all rf: then every "
                  "layer's rf; vs 10 us: us/layer over the 10 us target (below 1 meets it).")
    return table


@section("read-layers", "Reading every layer's quantities of a 10^5-layer numeric chain (fresh process per run)",
         order=16)
def read_layers(ctx):
    n = 10_000 if ctx.quick else 100_000
    table = Table(["chain", "input", "layers", "rf, jump, start, out_size (s)", "us/layer", "vs 0.5 s",
                   "then center, period, rf_min (s)", "make values (s)"])
    for kind, size in (("conv", 64), ("mix", 2**120)):
        runs, floors = [], []
        for _ in range(max(1, ctx.repeat)):  # interleaved
            runs.append(_run(kind, n, size, mode="read"))
            floors.append(_run(kind, n, size, mode="floor")["floor"])
        four = statistics.median(r["four"] for r in runs)
        table.add(kind, "2**120" if size == 2**120 else size, n, four, four / n * 1e6,
                  f"{four / (0.5 * n / 100_000):.2f}x", statistics.median(r["rest"] for r in runs),
                  statistics.median(floors))
    table.note = ("Medians of CPU seconds, each run in a fresh process after `analyze` (not timed), garbage "
                  "collector on. vs 0.5 s: over the target (0.5 s for 10^5 layers, scaled; below 1 meets it). "
                  "make values: the same loop making the same sympy numbers without rfsym (its own process, after "
                  "the same analysis).")
    return table


def _wall(cmd, root):
    env = dict(os.environ, PYTHONPATH=root)
    # as an installed package: bytecode is written on the warm-up call and read afterwards
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True, env=env, check=True)
    return time.perf_counter() - t0


@section("cli", "Command line: wall time of rfsym --help and rfsym analyze resnet50", order=17)
def cli(ctx):
    commands = [("python -c pass", [sys.executable, "-c", "pass"]),
                ('python -c "import sympy"', [sys.executable, "-c", "import sympy"]),
                ("rfsym --help", [sys.executable, "-m", "rfsym", "--help"]),
                ("rfsym analyze resnet50", [sys.executable, "-m", "rfsym", "analyze", "resnet50"])]
    for _, cmd in commands:  # warm the file cache and the bytecode
        _wall(cmd, ROOT)
    times = {name: [] for name, _ in commands}
    for _ in range(max(5, ctx.repeat)):  # interleaved
        for name, cmd in commands:
            times[name].append(_wall(cmd, ROOT))
    table = Table(["command", "median wall (s)", "min (s)", "vs 0.5 s"])
    for name, _ in commands:
        med = statistics.median(times[name])
        table.add(name, med, min(times[name]), f"{med / 0.5:.2f}x")
        if name.startswith("rfsym"):
            ctx.target(f"`{name}`: wall", f"{med:.3f} s", "< 0.5 s", med < 0.5)
    table.note = "Medians over interleaved runs; vs 0.5 s: the median over the 0.5 s target (below 1 meets it)."
    return table


if __name__ == "__main__":
    sys.path.insert(0, os.environ.get("PYTHONPATH", ROOT).split(os.pathsep)[0])
    kind, n, size = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    size = None if size == "none" else int(size)
    if "read" in sys.argv[4:] or "floor" in sys.argv[4:]:
        print(json.dumps(reader(kind, n, size, floor="floor" in sys.argv[4:])))
    else:
        print(json.dumps(worker(kind, n, size, "every" in sys.argv[4:])))
