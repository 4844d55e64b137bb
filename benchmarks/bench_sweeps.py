"""Vectorised numeric sweeps: 10^6 configurations of a symbolic network.

* ``sweeps``: ``Result.evaluate`` on 10^6 random configurations of three symbolic networks — a
  repeated block with symbolic kernel, stride, dilation and depth ``(k, s, d, n)``, torchvision's
  ResNet with symbolic blocks per stage ``(b1, b2, b3, b4)`` and VGG with symbolic convolutions
  per stage ``(n1, ..., n5)`` — against a per-configuration ``Result.subs`` loop. Every row is
  checked: a random sample of configurations must agree exactly with ``subs`` on every quantity
  read, or the benchmark stops with an AssertionError.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc

import numpy as np
import sympy as sp
from harness import Table, median_time, section

import rfsym
from rfsym import BatchNorm, Conv, ReLU, Repeat, Sequential, analyze, zoo
from rfsym.compiled import BUFFERS

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
        "call (it compiles the closed forms it reads, once per result; see the `evalpeers` section). "
        "*derive*: building the network and the symbolic analysis (closed forms of rf, jump, start). "
        f"*checked vs subs*: that many random configurations re-derived exactly with `result.subs` and "
        "compared on every quantity (the benchmark fails on any difference); the subs loop is timed on "
        "them and extrapolated linearly to all configurations (not run in full). Values: k 1..7, s 1..2, "
        "d 1..3, n 0..8; ResNet b_i 1..40 (bottleneck blocks, input 224); VGG n_i 1..8 (input 224). "
        "*distinct*: distinct configurations among the random ones (a Repeat is evaluated on the "
        "distinct values of what it depends on, then spread back).")
    return table


def _interleaved(fns, repeat):
    """Medians of each function, run in turn (one of each per round), and the last results."""
    times, results = [[] for _ in fns], [None] * len(fns)
    for _ in range(max(1, repeat)):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times], results


def _deep(layers):
    """``layers`` 'same'-padded convolutions with symbolic kernel k and dilation d, 8 channels,
    on a symbolic input size x."""
    k, d, x = rfsym.symbols("k d x")
    net = Sequential(*[Conv(k, dilation=d, padding="same", in_channels=8, out_channels=8)] * layers)
    return analyze(net, input_size=x)


@section("evalpeers", "Result.evaluate against hand-written numpy and lambdify", order=26)
def evalpeers(ctx):
    size = 10**5 if ctx.quick else 10**6
    repeat = max(9, ctx.repeat)
    rng = np.random.default_rng(19)
    table = Table(["case", "configurations", "rfsym evaluate (s)", "peer", "peer (s)", "ratio"])

    k, s = rfsym.symbols("k s")
    chain = analyze(Sequential(*[Conv(k, stride=s)] * 4))
    ks, ss = rng.integers(1, 8, size), rng.integers(1, 4, size)
    _ = chain.evaluate({k: ks, s: ss}).rf  # compiles once per result
    (t_ev, t_np), (got, want) = _interleaved(
        [lambda: chain.evaluate({k: ks, s: ss}).rf, lambda: 1 + (ks - 1) * (1 + ss + ss * ss + ss * ss * ss)],
        repeat)
    assert np.array_equal(got, want)
    table.add("4 x Conv(k, stride=s): rf", size, t_ev, "numpy 1+(k-1)(1+s+s²+s³)", t_np, t_ev / t_np)
    ctx.target(f"evaluate, {size:,} configurations, 4-layer chain: rf vs hand-written numpy",
               f"{t_ev / t_np:.2f}x", "<= 1.5x", t_ev / t_np <= 1.5)

    resnet = zoo.analyze("resnet", blocks=zoo.symbols("b1:5"))
    bs = {f"b{i}": rng.integers(1, 41, size) for i in range(1, 5)}
    syms = sorted(resnet.rf.free_symbols, key=lambda v: v.name)
    out_rf = sp.lambdify(syms, resnet.rf, "numpy")
    args = [bs[v.name] for v in syms]
    _ = [lr.rf for lr in resnet.evaluate(bs).layers]
    (t_ev, t_l), (rfs, last) = _interleaved(
        [lambda: [lr.rf for lr in resnet.evaluate(bs).layers], lambda: out_rf(*args)], repeat)
    assert np.array_equal(rfs[-1], last)
    for a, lr in zip(rfs, resnet.layers):  # every layer at every configuration: its closed form, exactly
        form = sp.sympify(lr.rf)
        want = sp.lambdify(syms, form, "numpy")(*args) if form.free_symbols else int(form)
        assert a.dtype == np.int64 if isinstance(a, np.ndarray) else isinstance(a, int), lr.name
        assert np.array_equal(np.broadcast_to(a, (size,)), np.broadcast_to(want, (size,))), lr.name
    names = [lr.name for lr in resnet.layers]
    for i in rng.choice(size, 5, replace=False):
        exact = resnet.subs({name: int(v[i]) for name, v in bs.items()})
        assert all(int(_at(a, i, size)) == exact.layer(lr.name).rf for a, lr in zip(rfs, resnet.layers)
                   if names.count(lr.name) == 1)  # torchvision reuses one ReLU: its name is not unique
    table.add(f"ResNet (b1..b4): rf of all {len(resnet.layers)} layers", size, t_ev,
              "lambdify of the output rf", t_l, t_ev / t_l)
    ctx.target(f"evaluate, {size:,} configurations, ResNet (b1..b4): every layer's rf vs lambdify of the output rf",
               f"{t_ev / t_l:.2f}x", "<= 3x", t_ev / t_l <= 3)

    layers = 200 if ctx.quick else 2000
    deep = _deep(layers)
    vals = {"k": rng.integers(1, 4, size) * 2 + 1, "d": rng.integers(1, 4, size), "x": rng.integers(64, 512, size)}
    BUFFERS.clear()  # no array pooled by the rows above: every array of this one is allocated, and traced
    tracemalloc.start()
    t0 = time.perf_counter()
    e = deep.evaluate(vals)
    read = {q: getattr(e, q) for q in QUANTITIES}
    t_deep = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    inputs = sum(v.nbytes for v in vals.values())
    i = int(rng.integers(size))
    exact = deep.subs({name: int(v[i]) for name, v in vals.items()})
    assert all(float(_at(read[q], i, size)) == float(getattr(exact, q)) for q in QUANTITIES)
    table.add(f"{layers:,} layers (k, d, x): {', '.join(QUANTITIES)}", size, t_deep,
              "peak memory (tracemalloc, MB)", peak / 2**20, None)
    if layers == 2000:
        ctx.target(f"evaluate, {size:,} configurations of a 2,000-layer network: peak memory",
                   f"{peak / 2**20:.0f} MB", "< 2 GB", peak < 2 * 2**30)
    table.note = (
        f"Medians over {repeat} interleaved rounds (rfsym, then its peer, each round); the first call, "
        "which compiles the closed forms once per result, is not timed (after it, evaluate's pool of int64 arrays, "
        "`rfsym.compiled.BUFFERS`, holds the arrays the next call reuses: the regime of a loop of sweeps). Peers compute the same numbers: "
        "the 4-layer chain's rf by the hand-written formula on the same int64 arrays; for ResNet (bottleneck, "
        "input 224, b_i 1..40) `sympy.lambdify` of the network's output rf, while rfsym returns every "
        "layer's rf (checked: every layer at every configuration equals its closed form by `lambdify`, the "
        "output equals the peer's, and layer by layer by name, `Result.subs` on 5 random configurations). "
        f"Last row: one `evaluate` of a {layers:,}-layer network reading {', '.join(QUANTITIES)} of the "
        f"output (checked against `subs`), its peak traced memory including the {inputs / 2**20:.0f} MB of "
        "inputs (values: k in 3, 5, 7; d 1..3; x 64..511).")
    return table
