"""Depth and numeric-evaluation benchmarks.

* ``depth``: derivation time, expression size and LaTeX time against depth L, for a stack of
  ``Conv(k_i, stride=s_i, padding=1)`` with a distinct symbol per layer, and for the same layer
  repeated (shared symbols ``k``, ``s``); plus ``Result.evaluate`` on 100 configurations.
* ``evaluate``: ``Result.evaluate`` on 10^6 configurations of (k, s, n) against a loop of
  ``Result.subs`` (exact re-derivation per configuration), with the speed-up.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from harness import Table, median_time, section

import rfsym
from rfsym import BatchNorm, Conv, Flatten, GlobalAvgPool, Linear, MaxPool, ReLU, Sequential, analyze
from rfsym.latex import latex as rfsym_latex


def _nodes(expr) -> int:
    """Number of nodes of the expression tree (repeated subtrees counted each time)."""
    count, stack = 0, [expr]
    while stack:
        e = stack.pop()
        count += 1
        stack.extend(e.args)
    return count


def _stack(depth, mode):
    if mode == "distinct":
        ks = rfsym.symbols(f"k1:{depth + 1}")
        ss = rfsym.symbols(f"s1:{depth + 1}")
        return Sequential(*[Conv(k, stride=s, padding=1) for k, s in zip(ks, ss)])
    k, s = rfsym.symbols("k s")
    return Sequential(*[Conv(k, stride=s, padding=1) for _ in range(depth)])


def _values(result, configs, rng):
    """Kernels 1..7 and strides 1 (so the int64 evaluator cannot overflow at any depth)."""
    out = {}
    for sym in result.free_symbols:
        out[sym.name] = rng.integers(1, 8, configs) if sym.name.startswith("k") else np.ones(configs, np.int64)
    return out


@section("depth", "Depth: derivation, expression size, LaTeX and evaluation vs number of layers L", order=10)
def depth(ctx):
    depths = (10, 100, 1000) if ctx.quick else (10, 100, 1000, 10_000)
    table = Table(["symbols", "L", "build (s)", "derive (s)", "rf tree nodes", "LaTeX (s)", "LaTeX chars",
                   "evaluate 100 configs (s)"])
    rng = np.random.default_rng(0)
    for mode in ("distinct", "shared"):
        for depth_ in depths:
            t_build, net = median_time(lambda d=depth_, m=mode: _stack(d, m), ctx.repeat)

            def derive(net=net):
                r = analyze(net)
                return r, (r.rf, r.jump, r.start)

            t_derive, (result, (rf, jump, start)) = median_time(derive, ctx.repeat)
            t_latex, text = median_time(lambda exprs=(rf, jump, start): [rfsym_latex(e) for e in exprs], ctx.repeat)
            values = _values(result, 100, rng)
            t_eval, ev = median_time(lambda r=result, v=values: r.evaluate(v).rf, ctx.repeat)
            # the numbers are checked, not only timed: stride 1 everywhere -> rf = 1 + Σ(k_i - 1)
            ks = [values[f"k{i + 1}"] for i in range(depth_)] if mode == "distinct" else [values["k"]] * depth_
            assert np.array_equal(np.broadcast_to(ev, (100,)), 1 + sum(k - 1 for k in ks))
            table.add(mode, depth_, t_build, t_derive, _nodes(rf), t_latex, len(text[0]), t_eval)
    table.note = (f"Medians over {ctx.repeat} runs. *build*: constructing the layers; *derive*: `analyze` "
                  "plus the closed forms `rf`, `jump`, `start` of the output; *LaTeX*: `rfsym.latex.latex` (sympy.latex, terms unsorted above 2,000 nodes) of those "
                  "three; *evaluate*: `Result.evaluate` with 100 configurations per symbol (checked against "
                  "1 + Σ(k_i − 1)). Distinct symbols: layer i is `Conv(k_i, stride=s_i, padding=1)`; shared: "
                  "L copies of `Conv(k, stride=s, padding=1)` (closed form via the geometric sum).")
    return table


def _eval_net():
    k, s = rfsym.symbols("k s")
    return Sequential(
        Conv(k, stride=s, padding=1, in_channels=3, out_channels=16), ReLU(),
        MaxPool(3, stride=2, ceil_mode=True),
        Conv(k, stride=s, dilation=2, padding="tf_same", out_channels=32), BatchNorm(),
        Conv(3, padding="same", out_channels=8),
        GlobalAvgPool(), Flatten(), Linear(8, 10),
    )


@section("depth-size", "Depth with a symbolic input size n: output size closed form vs L", order=15)
def depth_size(ctx):
    depths = (10, 100) if ctx.quick else (10, 100, 1000)
    table = Table(["L", "derive incl. out_size (s)", "out_size tree nodes", "nested floors", "LaTeX (s)",
                   "LaTeX chars", "runs"])
    for depth_ in depths:
        ks, ss, n = rfsym.symbols(f"k1:{depth_ + 1}"), rfsym.symbols(f"s1:{depth_ + 1}"), rfsym.symbols("n")
        net = Sequential(*[Conv(k, stride=s, padding=1) for k, s in zip(ks, ss)])
        runs = 1 if depth_ >= 1000 else ctx.repeat
        t_derive, out = median_time(lambda net=net, n=n: analyze(net, input_size=n).out_size, runs)
        t_latex, text = median_time(lambda out=out: sp.latex(out), runs)
        floors = sum(1 for e in sp.preorder_traversal(out) if isinstance(e, sp.floor))
        table.add(depth_, t_derive, _nodes(out), floors, t_latex, len(text), runs)
    table.note = ("Layer i is `Conv(k_i, stride=s_i, padding=1)` on a symbolic input size n. The L nested floors "
                  "are merged (floor((floor(X/D) + c)/s) = floor((X + cD)/(Ds))) chunk by chunk: once a merged "
                  "numerator would pass `rfsym.ops.CHUNK` nodes the next layer wraps a new floor around it, so "
                  "the size grows linearly with L and floors nest once per chunk (see the `symsize` section).")
    return table


@section("evaluate", "Numeric evaluation: Result.evaluate on 10^6 configurations vs a Result.subs loop", order=20)
def evaluate(ctx):
    size = 10**5 if ctx.quick else 10**6
    k, s, n = rfsym.symbols("k s n")
    result = analyze(_eval_net(), input_size=n)
    rng = np.random.default_rng(1)
    ks, ss, ns = rng.integers(1, 8, size), rng.integers(1, 4, size), rng.integers(64, 513, size)
    quantities = ("rf", "jump", "start", "out_size", "params", "macs")

    def run():
        e = result.evaluate({k: ks, s: ss, n: ns})
        return {q: getattr(e, q) for q in quantities}

    t_eval, arrays = median_time(run, ctx.repeat)
    sample = 50 if ctx.quick else 200
    idx = rng.choice(size, sample, replace=False)

    def loop():
        for i in idx:
            exact = result.subs({k: int(ks[i]), s: int(ss[i]), n: int(ns[i])})
            for q in quantities:
                assert int(getattr(exact, q)) == int(np.broadcast_to(arrays[q], (size,))[i]), (q, i)

    t_loop, _ = median_time(loop, max(1, ctx.repeat // 2))
    per_config = t_loop / sample
    table = Table(["configurations", "evaluate (s)", "per configuration (µs)", "subs per configuration (ms)",
                   "subs loop, extrapolated (s)", "speed-up"])
    table.add(size, t_eval, t_eval / size * 1e6, per_config * 1e3, per_config * size, per_config * size / t_eval)
    table.note = ("Network: Conv(k, stride=s, padding=1) → ReLU → MaxPool(3, 2, ceil_mode) → Conv(k, stride=s, "
                  "dilation=2, tf_same) → BatchNorm → Conv(3, same) → GlobalAvgPool → Flatten → Linear, input n; "
                  f"k ∈ 1..7, s ∈ 1..3, n ∈ 64..512. `evaluate` returns rf, jump, start, out_size, params and macs "
                  f"for every configuration; the subs loop re-derives exactly, timed on {sample} random "
                  "configurations (which must agree with evaluate) and extrapolated. Medians over "
                  f"{ctx.repeat} runs (subs loop: {max(1, ctx.repeat // 2)}).")
    return table
