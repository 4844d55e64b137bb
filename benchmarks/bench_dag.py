"""General DAGs: derivation cost against nodes + edges.

* ``dag``: a random numeric DAG of N nodes (convolutions, pools and merges reading recent nodes,
  shared nodes feeding several merges), a 1,000-node DAG with a symbol per kernel, and the
  DenseNets of the zoo (when present) at 224; targets: 10,000 numeric nodes < 2 s, 1,000
  symbolic nodes < 2 s, densenet201 < 50 ms.
"""

from __future__ import annotations

import random

from harness import Table, median_time, section

import rfsym
from rfsym import Conv, Graph, MaxPool, analyze, zoo


def random_dag(nodes: int, symbolic: bool = False, seed: int = 0) -> Graph:
    """A random DAG: 1 in 5 nodes an ``add`` or ``concat`` over 2-4 recent nodes (so nodes feed
    several merges), the others size-keeping convolutions or pools on a recent node."""
    rng = random.Random(seed)
    ks = rfsym.symbols(" ".join(f"k{i}" for i in range(nodes))) if symbolic else None
    out, names = [], ["input"]
    for i in range(nodes):
        if rng.random() < 0.2 and len(names) > 3:
            ins = tuple(rng.sample(names[-6:], rng.randint(2, min(4, len(names) - 1))))
            out.append((f"m{i}", "add", ins))
        elif symbolic:
            out.append((f"c{i}", Conv(ks[i]), names[-1]))
        else:
            layer = rng.choice([Conv(3, padding=1), Conv(1), Conv(5, padding=2), MaxPool(3, 1, 1)])
            out.append((f"c{i}", layer, rng.choice(names[-3:])))
        names.append(out[-1][0])
    return Graph(*out, outputs=(names[-1],))


def _edges(g: Graph) -> int:
    return sum(len(ins) for _, _, ins in g.nodes)


@section("dag", "DAGs: derivation cost vs nodes + edges", order=12)
def dag_section(ctx):
    table = Table(["network", "nodes", "edges", "analyze + output rf (s)", "target (s)"])
    sizes = (1000,) if ctx.quick else (1000, 10000)
    for n in sizes:
        g = random_dag(n)
        t, _ = median_time(lambda g=g: analyze(g, input_size=64).rf, ctx.repeat)
        table.add("random numeric DAG", n, _edges(g), t, 2 if n == 10000 else None)
        if n == 10000:
            ctx.target("random numeric DAG, 10,000 nodes: analyze + output rf", f"{t:.3g} s", "< 2 s", t < 2)
    g = random_dag(200 if ctx.quick else 1000, symbolic=True)
    t, _ = median_time(lambda g=g: analyze(g).rf, 1 if not ctx.quick else ctx.repeat)
    table.add("random DAG, a symbol per kernel", len(g.nodes), _edges(g), t, 2)
    ctx.target(f"random DAG, {len(g.nodes):,} nodes, a symbol per kernel", f"{t:.3g} s", "< 2 s", t < 2)
    for name in ("densenet121", "densenet201"):
        if name in zoo.names():
            t, r = median_time(lambda name=name: zoo.entry(name).analyze(), ctx.repeat)
            table.add(f"{name} at 224", len(r.layers), None, t, 0.05 if name == "densenet201" else None)
            if name == "densenet201":
                ctx.target("zoo densenet201 at 224: analyze", f"{t * 1000:.3g} ms", "< 50 ms", t < 0.05)
    table.note = ("Medians; *analyze + output rf*: `rfsym.analyze(graph, input_size)` and reading the "
                  "output's rf. Random DAGs: one node in five a merge over 2-4 of the last six nodes.")
    return table
