"""Vectorised numeric sweeps (issue 9): 10^6 configurations of a symbolic network.

* ``sweeps``: ``Result.evaluate`` on 10^6 random configurations of three symbolic networks — a
  repeated block with symbolic kernel, stride, dilation and depth ``(k, s, d, n)``, torchvision's
  ResNet with symbolic blocks per stage ``(b1, b2, b3, b4)`` and VGG with symbolic convolutions
  per stage ``(n1, ..., n5)`` — against a per-configuration ``Result.subs`` loop. Every row is
  checked: a random sample of configurations must agree exactly with ``subs`` on every quantity
  read, or the benchmark stops with an AssertionError.
"""

from __future__ import annotations

import time

import numpy as np
from harness import Table, median_time, section

import rfsym
from rfsym import BatchNorm, Conv, ReLU, Repeat, Sequential, analyze, zoo

#: what each sweep reads from the evaluated result (the whole network's output)
QUANTITIES = ("rf", "jump", "start", "center", "out_size", "params", "macs")


def repeated_block():
    """A stem with symbolic kernel k, stride s and dilation d, then n repetitions of a
    'same'-padded conv (kernel k, dilation d) + BatchNorm + ReLU, at input 224."""
    k, s, d, n = rfsym.symbols("k s d n")
    net = Sequential(
        Conv(k, stride=s, dilation=d, padding=d * (k - 1) // 2, in_channels=3, out_channels=32),
        Repeat(Sequential(Conv(k, dilation=d, padding="same", out_channels=32), BatchNorm(), ReLU()), n))
    return analyze(net, input_size=224)


def _draw(rng, size, ranges):
    return {name: rng.integers(lo, hi + 1, size) for name, (lo, hi) in ranges.items()}


CASES = (
    ("repeated block (k, s, d, n)", repeated_block,
     {"k": (1, 7), "s": (1, 2), "d": (1, 3), "n": (0, 8)}),
    ("ResNet, blocks per stage (b1..b4)", lambda: zoo.analyze("resnet", blocks=zoo.symbols("b1:5")),
     {f"b{i}": (1, 40) for i in range(1, 5)}),
    ("VGG, convs per stage (n1..n5)", lambda: zoo.analyze("vgg", depths=zoo.symbols("n1:6")),
     {f"n{i}": (1, 8) for i in range(1, 6)}),
)


def _at(value, i, size):
    return np.broadcast_to(value, (size,))[i]


def _check(result, arrays, values, idx, size):
    """Exact re-derivation of the sampled configurations equals the evaluated arrays."""
    for i in idx:
        exact = result.subs({name: int(v[i]) for name, v in values.items()})
        for q in QUANTITIES:
            got, want = _at(arrays[q], i, size), getattr(exact, q)
            assert float(got) == float(want), (q, i, got, want)  # centres are half-integers


@section("sweeps", "Vectorised sweeps: Result.evaluate on 10^6 configurations vs a Result.subs loop", order=25)
def sweeps(ctx):
    size = 10**5 if ctx.quick else 10**6
    sample = 10 if ctx.quick else 40
    table = Table(["network", "configurations", "distinct", "derive (s)", "evaluate, first (s)",
                   "evaluate, median (s)", "checked vs subs", "subs per config (ms)",
                   "subs loop, extrapolated (s)", "speed-up"])
    rng = np.random.default_rng(2026)
    for label, build, ranges in CASES:
        t0 = time.perf_counter()
        result = build()
        _ = [getattr(result, q) for q in ("rf", "jump", "start")]
        t_derive = time.perf_counter() - t0
        values = _draw(rng, size, ranges)
        distinct = len(np.unique(np.stack(list(values.values())), axis=1).T)

        def run(result=result, values=values):
            e = result.evaluate(values)
            return {q: getattr(e, q) for q in QUANTITIES}

        t_first, _ = median_time(run, 1)  # includes compiling the few non-trivial parameter expressions
        t_eval, arrays = median_time(run, ctx.repeat)
        idx = rng.choice(size, sample, replace=False)
        t_loop, _ = median_time(lambda r=result, a=arrays, v=values, i=idx: _check(r, a, v, i, size), 1)
        per = t_loop / sample
        table.add(label, size, distinct, t_derive, t_first, t_eval, sample, per * 1e3, per * size,
                  per * size / t_eval)
    table.note = (
        f"Medians over {ctx.repeat} runs of `result.evaluate(values)` plus reading "
        f"{', '.join(QUANTITIES)} of the network output (int64 arrays of {size:,}); *first* is the first "
        "call (it compiles the non-trivial parameter expressions, e.g. `d*(k-1)//2`, once per process). "
        "*derive*: building the network and the symbolic analysis (closed forms of rf, jump, start). "
        f"*checked vs subs*: that many random configurations re-derived exactly with `result.subs` and "
        "compared on every quantity (the benchmark fails on any difference); the subs loop is timed on "
        "them and extrapolated linearly to all configurations (not run in full). Values: k 1..7, s 1..2, "
        "d 1..3, n 0..8; ResNet b_i 1..40 (bottleneck blocks, input 224); VGG n_i 1..8 (input 224). "
        "*distinct*: distinct configurations among the random ones (a Repeat is evaluated on the "
        "distinct values of what it depends on, then spread back).")
    return table
