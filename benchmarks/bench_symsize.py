"""Symbolic input size benchmarks.

* ``symsize``: ``analyze(net, input_size=x)`` for chains of L layers cycling through
  ``Conv(3, padding=1)``, ``Conv(3, stride=2)``, ``MaxPool(2)`` (numbers everywhere but the input
  size ``x``), and the same with a distinct symbolic kernel ``k_i`` per layer; derivation time
  (``analyze`` plus ``rf``, ``jump``, ``start``, ``out_size`` of the output), the size and
  floor nesting of ``out_size``, its LaTeX, and a check that ``out_size`` substituted, re-derived
  by ``Result.subs`` and computed by ``Result.evaluate`` agree exactly.
* ``symsize-repeat``: the same symbolic-size network analysed three times in one process (no run
  may be slower than the first: caches must not grow into a cost).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import sympy as sp
from harness import Table, median_time, section

import rfsym
from rfsym import Conv, MaxPool, Sequential, analyze
from rfsym.latex import latex as rfsym_latex

#: a row is skipped when the previous (10 times smaller) row of its kind took longer than this
BUDGET = 30.0


def chain(depth, kernels="numbers"):
    """``depth`` layers cycling Conv(k, padding=1), Conv(k, stride=2), MaxPool(2); ``k`` is 3, or
    a distinct symbol ``k_i`` per layer (``kernels="symbols"``)."""
    ks = rfsym.symbols(f"k1:{depth + 1}") if kernels == "symbols" else (3,) * depth
    layers = []
    for i in range(depth):
        layers.append((Conv(ks[i], padding=1), Conv(ks[i], stride=2), MaxPool(2))[i % 3])
    return Sequential(*layers)


def _tree_nodes(expr, limit=10**7) -> int:
    count, stack = 0, [expr]
    while stack and count < limit:
        e = stack.pop()
        count += 1
        stack.extend(e.args)
    return count


def _floor_depth(expr) -> int:
    """The deepest nesting of floor/ceiling inside ``expr`` (iterative)."""
    best, stack = 0, [(expr, 0)]
    seen = set()
    while stack:
        e, d = stack.pop()
        if isinstance(e, (sp.floor, sp.ceiling)):
            d += 1
            best = max(best, d)
        key = (id(e), d)
        if key in seen:
            continue
        seen.add(key)
        stack.extend((a, d) for a in e.args)
    return best


def timed(fn, runs):
    """Median wall and CPU (this process) seconds of ``fn()`` over ``runs`` runs, and its last
    result: on a shared machine the CPU time is the figure that does not depend on the load."""
    walls, cpus, out = [], [], None
    for _ in range(max(1, runs)):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def derive(net, x):
    r = analyze(net, input_size=x)
    return r, (r.rf, r.jump, r.start, r.out_size)


def _check(net, result, out, x, depth, kernels):
    """``out_size`` three ways, exactly: the expression at x0, Result.subs, Result.evaluate."""
    halvings = 2 * ((depth + 1) // 3)  # an input large enough for every stride and pool
    x0 = 2 ** (halvings + 3) + 12345
    mapping = {x: x0}
    if kernels == "symbols":
        mapping.update({s: 1 + (i % 5) for i, s in enumerate(sorted(result.free_symbols - {x},
                                                                      key=lambda s: int(s.name[1:])))})
    by_expr = out.xreplace({s: sp.Integer(v) for s, v in mapping.items()})
    by_subs = result.subs(mapping).out_size
    xs = np.array([x0, x0 + 1, x0 + 7], dtype=object)
    values = {s: (xs if s == x else v) for s, v in mapping.items()}
    by_eval = np.broadcast_to(np.asarray(result.evaluate(values).out_size, dtype=object), (3,))
    assert int(by_expr) == int(by_subs) == int(by_eval[0]), (by_expr, by_subs, by_eval[0])
    for j, v in enumerate(xs):
        alone = out.xreplace({s: sp.Integer(v if s == x else mapping[s]) for s in mapping})
        assert int(alone) == int(by_eval[j])
    return True


@section("symsize", "Symbolic input size x: derivation, out_size closed form and exactness vs depth L", order=16)
def symsize(ctx):
    table = Table(["kernels", "L", "derive (s)", "derive CPU (s)", "out_size tree nodes", "floor nesting",
                   "LaTeX (s)", "LaTeX chars", "subs = evaluate (s)", "runs"])
    x = rfsym.symbols("x")
    plans = (("numbers", (100, 1000) if ctx.quick else (100, 1000, 10_000)),
             ("symbols", (100,) if ctx.quick else (100, 1000)))
    for kernels, depths in plans:
        last = 0.0
        for depth_ in depths:
            if last > BUDGET:
                table.add(kernels, depth_, f"skipped (L = {depth_ // 10} took {last:.0f} s)",
                          None, None, None, None, None, None, 0)
                continue
            net = chain(depth_, kernels)
            runs = 1 if depth_ >= 1000 else ctx.repeat
            t_derive, t_cpu, (result, values) = timed(lambda net=net: derive(net, x), runs)
            last = t_derive
            out = values[3]
            t_latex, text = median_time(lambda out=out: rfsym_latex(out), 1)
            t0 = time.perf_counter()
            _check(net, result, out, x, depth_, kernels)
            t_check = time.perf_counter() - t0
            table.add(kernels, depth_, t_derive, t_cpu, _tree_nodes(out), _floor_depth(out), t_latex,
                      len(text), t_check, runs)
            if kernels == "numbers" and depth_ in (1000, 10_000):
                goal = 1 if depth_ == 1000 else 10
                ctx.target(f"symbolic input size, {depth_:,} numeric layers: derive CPU", f"{t_cpu:.3g} s",
                           f"< {goal} s", t_cpu < goal)
    table.note = ("Layer i is `Conv(k, padding=1)`, `Conv(k, stride=2)`, `MaxPool(2)` for i mod 3 = 0, 1, 2, "
                  "with k = 3 (*numbers*) or a distinct symbol k_i per layer (*symbols*), on a symbolic input "
                  "size x. *derive*: `analyze(net, input_size=x)` plus `rf`, `jump`, `start`, `out_size` of the "
                  "output (median of *runs*; *CPU*: this process's CPU time, which does not depend on the load of a shared machine); *floor nesting*: floors inside floors in `out_size`; *LaTeX*: "
                  "`rfsym.latex.latex(out_size)`; *subs = evaluate*: `out_size` with x (and k_i) substituted, "
                  "`Result.subs` and `Result.evaluate` on three input sizes, checked equal (exact Python ints). "
                  f"A row is skipped when the row 10 times shorter took more than {BUDGET:.0f} s.")
    return table


@section("symsize-repeat", "The same symbolic-size network analysed three times in one process", order=17)
def symsize_repeat(ctx):
    table = Table(["kernels", "L", "run 1 (s)", "run 2 (s)", "run 3 (s)", "CPU run 1 (s)", "CPU run 2 (s)",
                   "CPU run 3 (s)", "slowest / first (CPU)"])
    x = rfsym.symbols("x")
    for kernels, depth_ in (("numbers", 100 if ctx.quick else 1000), ("symbols", 100 if ctx.quick else 1000)):
        net = chain(depth_, kernels)
        walls, cpus = [], []
        for _ in range(3):
            wall, cpu, _ = timed(lambda net=net: derive(net, x), 1)
            walls.append(wall)
            cpus.append(cpu)
        table.add(kernels, depth_, *walls, *cpus, max(cpus) / cpus[0])
        ratio = max(cpus) / cpus[0]
        ctx.target(f"symbolic size, {depth_:,} layers ({kernels}) analysed 3 times: slowest / first CPU",
                   f"{ratio:.2f}", "about 1 (< 1.5)", ratio < 1.5)
    table.note = ("Networks as in the `symsize` section; each run is `analyze(net, input_size=x)` plus `rf`, "
                  "`jump`, `start`, `out_size`, on the same network object in the same process.")
    return table
