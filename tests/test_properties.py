"""Property tests: the engine's numbers against independent computations on random networks.

The backbone is :func:`test_engine_equals_enumeration`: thousands of random architectures (CI
profile), every layer, every axis, rf / jump / start / centre / out_size compared with the
brute-force enumerator, which shares no code with the engine.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from strategies import architectures, dag_architectures, graph_architectures, symbolic_stacks

import rfsym as R
from rfsym.enumeration import enumerate_network

#: the expensive properties run on a fraction of the profile's examples (CI: 2000 -> 1000, 400, 200)
HALF = max(20, settings.default.max_examples // 2)
FEWER = max(20, settings.default.max_examples // 5)
FEWEST = max(20, settings.default.max_examples // 10)


@given(architectures())
def test_engine_equals_enumeration(arch):
    """On every random network, rf, jump, start, centre and out_size of every layer on every axis
    are the same whether derived by the engine or counted by enumeration, and the counted output
    sizes equal PyTorch's documented formulas (floor, ceil_mode's last-window rule, TF SAME)."""
    report = R.verify(arch.net, arch.input_size, in_channels=arch.in_channels)
    assert report.ok, str(report)
    assert report.checked >= 5 * arch.ndim * (len(arch.net) + 1)
    assert [layer.axes("out_size") for layer in report.enumeration.layers] == list(arch.sizes)


@settings(max_examples=FEWER)
@given(graph_architectures())
def test_graphs_engine_equals_enumeration(arch):
    """On random chains of residual blocks, concatenations, upsampling and transposed
    convolutions, the engine's rf, rf_min, period, jump, start, centre and out_size of every
    layer (merges included) equal what enumeration counts over every output phase."""
    report = R.verify(arch.net, arch.input_size)
    assert report.ok, str(report)


@settings(max_examples=max(200, settings.default.max_examples))  # 2,000 per CI run
@given(dag_architectures())
def test_random_dags_engine_equals_enumeration(arch):
    """On random DAGs (nodes read by several layers and merges, add/concat/mul merges of two or
    three inputs, sigmoid gates, several outputs; strided, dilated and padded convolutions, pools,
    transposed convolutions, upsampling, pixel shuffles, explicit padding, crops), every node's
    and every output's rf, rf_min, period, jump, start, centre and out_size equal what
    enumeration counts (each node's dependency sets computed once from its inputs')."""
    report = R.verify(arch.net, arch.input_size)
    assert report.ok, str(report)
    inputs = {name: ins for name, _, ins in arch.net.nodes}
    live, todo = set(), list(arch.net.outputs)
    while todo:  # the nodes some output depends on (the others are not part of the network)
        v = todo.pop()
        if v != "input" and v not in live:
            live.add(v)
            todo.extend(inputs[v])
    assert report.layers == len(live)
    assert list(report.enumeration.outputs) == list(arch.net.outputs)


def _count(layers, sizes, channels):
    """Parameters and MACs of a chain by PyTorch's formulas, written out by hand."""
    params, macs = 0, 0
    for layer, out in zip(layers, sizes):
        if isinstance(layer, R.Conv):
            ks = layer.kernel_size if isinstance(layer.kernel_size, tuple) else (layer.kernel_size,) * len(out)
            cin, cout, g = channels, int(layer.out_channels), int(layer.groups)
            weights = (cin // g) * cout * int(np.prod([int(k) for k in ks]))
            params += weights + (cout if layer.bias else 0)
            macs += weights * int(np.prod(out))
            channels = cout
        elif isinstance(layer, R.BatchNorm):
            params += 2 * channels
        elif isinstance(layer, R.Linear):
            fin, fout = int(layer.in_features), int(layer.out_features)
            params += fin * fout + (fout if layer.bias else 0)
            macs += fin * fout
            channels = fout
    return params, macs


@settings(max_examples=HALF)
@given(architectures())
def test_params_and_macs_match_independent_count(arch):
    """Trainable parameters and MACs, in total and layer by layer, equal a hand-written count
    from PyTorch's formulas (conv (c_in/g)·c_out·Πk + bias, BatchNorm 2C, Linear in·out + out)."""
    r = R.analyze(arch.net, arch.input_size, in_channels=arch.in_channels)
    assert (r.params, r.macs) == _count(arch.net.layers, arch.sizes, arch.in_channels)
    channels = arch.in_channels
    for i, layer in enumerate(arch.net.layers):
        one = _count([layer], [arch.sizes[i]], channels)
        assert (r.layers[i].params, r.layers[i].macs) == one
        channels = r.layers[i].out_channels if r.layers[i].out_channels is not None else channels


def _exact(v):
    """A Fraction from an int, sympy number, numpy value or float (halves are exact floats)."""
    if isinstance(v, float) or (isinstance(v, np.generic) and v.dtype.kind == "f"):
        return Fraction(float(v))
    if isinstance(v, Fraction):
        return v
    if getattr(v, "is_Rational", False):
        return Fraction(int(v.p), int(v.q))
    return Fraction(int(v))


QUANTITIES = ("rf", "jump", "start", "center", "out_size")


@settings(max_examples=FEWEST)
@given(symbolic_stacks())
def test_evaluate_equals_subs(stack):
    """``Result.evaluate`` on numpy arrays of configurations gives, configuration by
    configuration, exactly what ``Result.subs`` gives, for every quantity of every layer."""
    assume(stack.configs)
    r = R.analyze(stack.net, stack.n)
    symbols = sorted(stack.configs[0], key=lambda s: s.name)
    values = {s: np.array([int(c[s]) for c in stack.configs]) for s in symbols}
    ev = r.evaluate(values)
    for c, config in enumerate(stack.configs):
        exact = r.subs(config)
        for i, layer in enumerate(exact.layers):
            for q in QUANTITIES:
                got = np.broadcast_to(np.asarray(ev.layers[i].axes(q)[0]), (len(stack.configs),))[c]
                assert _exact(got) == _exact(layer.axes(q)[0]), (i, q, config)
        assert _exact(np.broadcast_to(np.asarray(ev.rf), (len(stack.configs),))[c]) == _exact(exact.rf)


@settings(max_examples=FEWER)
@given(symbolic_stacks())
def test_closed_form_equals_enumeration(stack):
    """The engine's symbolic closed forms, with the symbols replaced by numbers, equal the
    values counted by enumeration on the concrete network, at every layer."""
    assume(stack.configs)
    r = R.analyze(stack.net, stack.n)
    forms = [{q: layer.axes(q)[0] for q in QUANTITIES} for layer in r.layers]
    for config in stack.configs:
        e = enumerate_network(stack.net.subs(config), int(config[stack.n]), ndim=1)
        for i, (form, layer) in enumerate(zip(forms, e.layers)):
            for q in QUANTITIES:
                assert _exact(form[q].xreplace(config)) == _exact(getattr(layer, q)), (i, q, form[q], config)


def test_depth_formula_against_enumeration():
    """For stacks of up to twelve random convolutions the notes' general formula
    1 + Σ (κ_i - 1) Π_{j<i} s_j equals the enumerated receptive field."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        depth = int(rng.integers(1, 13))
        ks, ss, ds = (rng.integers(1, 8, depth), rng.integers(1, 3, depth), rng.integers(1, 4, depth))
        net = R.Sequential(*[R.Conv(int(k), stride=int(s), dilation=int(d)) for k, s, d in zip(ks, ss, ds)])
        formula = 1 + sum((d * (k - 1)) * int(np.prod(ss[:i])) for i, (k, d) in enumerate(zip(ks, ds)))
        assert enumerate_network(net, ndim=1).rf == formula


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "--hypothesis-show-statistics"])
