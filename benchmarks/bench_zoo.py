"""Whole-model analysis of every zoo entry at its standard input.

* ``zoo``: for every entry of :mod:`rfsym.zoo` at its default input size and symbols: building
  the network, ``rfsym.analyze`` plus the output's rf, params and MACs, and the same plus rf,
  jump, start, out_size, params and MACs of every layer; and, for reference, that last
  measurement on sympy numbers (the path every analysis took before the exact fast path).
"""

from __future__ import annotations

from harness import Table, median_time, section

from rfsym import analyze, zoo

try:  # the sympy path, forced (absent before the exact fast path existed: column left empty)
    from rfsym.engine import derive as _derive
    from rfsym.ops import SymOps
except ImportError:
    _derive = SymOps = None

LAYER_QUANTITIES = ("rf", "jump", "start", "out_size", "params", "macs")


def read_all(result):
    """Every layer's and the output's rf, jump, start, out_size, params and MACs."""
    out = [getattr(result, q) for q in LAYER_QUANTITIES]
    for layer in result.layers:
        out.extend(getattr(layer, q) for q in LAYER_QUANTITIES)
    return out


def analyze_entry(entry, net, path=None):
    """``analyze`` at the entry's input (``path=SymOps``: force sympy numbers)."""
    r = analyze(net, entry.input_size, ndim=entry.ndim, in_channels=entry.in_channels)
    return r if path is None else _derive(r.network, r.input_size, ndim=r.ndim, in_channels=r.in_channels, ops=path)


def output_only(entry, net):
    r = analyze_entry(entry, net)
    return r, (r.rf, r.params, r.macs)


def all_layers(entry, net, path=None):
    r = analyze_entry(entry, net, path)
    return r, read_all(r)


@section("zoo", "Zoo: whole-model analysis of every entry at its standard input", order=30)
def zoo_section(ctx):
    names = ["resnet18", "resnet50", "resnet152", "vgg16", "inception_v3"] if ctx.quick else zoo.names()
    table = Table(["model", "input", "layers", "build (ms)", "analyze + output (ms)", "all layers (ms)",
                   "all layers, sympy numbers (ms)", "speed-up", "rf", "params", "MACs"])
    for name in names:
        e = zoo.entry(name)
        t_build, net = median_time(e.build, ctx.repeat)
        t_out, _ = median_time(lambda e=e, net=net: output_only(e, net), ctx.repeat)
        t_all, (r, fast) = median_time(lambda e=e, net=net: all_layers(e, net), ctx.repeat)
        t_sym = None
        if _derive is not None:
            runs = 1 if ctx.quick else max(1, ctx.repeat // 2 + 1)
            t_sym, (_, slow) = median_time(lambda e=e, net=net: all_layers(e, net, SymOps), runs)
            assert fast == slow, name  # the fast path gives the same numbers
        f = r.layer(e.features) if e.features else r
        size = e.input_size if not isinstance(e.input_size, tuple) else "×".join(map(str, e.input_size))
        table.add(name, size, len(r.layers), t_build * 1e3, t_out * 1e3, t_all * 1e3,
                  None if t_sym is None else t_sym * 1e3, None if t_sym is None else t_sym / t_all,
                  f.rf, r.params, r.macs)
    table.note = (
        f"Medians over {ctx.repeat} runs, after `import rfsym` (importing sympy takes about 0.4–0.9 s "
        "once per process and is not included). *build*: constructing the network (`entry.build()`); "
        "*analyze + output*: `rfsym.analyze(net, input_size)` and reading rf, params and MACs of the "
        "output; *all layers*: `analyze` and reading rf, jump, start, out_size, params and MACs of the "
        "output and of every layer (merges included). *sympy numbers*: the same on the sympy path "
        "(`engine.derive(..., ops=SymOps)`, what every numeric analysis ran before the exact fast path); its "
        "numbers are asserted equal to the fast path's. rf is at the entry's feature layer (before global "
        "pooling); params and MACs for the whole network (MACs: convolutions and linear layers).")
    return table
