"""A dilated WaveNet stack: kernel 2, dilations 1, 2, ..., 512 — receptive field 1024 per stack."""

import sympy as sp
from _page import Page, main

from rfsym import Conv, Repeat, Sequential, analyze, repetition_index, symbols
from rfsym.plot import growth
from rfsym.steps import derivation


def build(outdir):
    page = Page(outdir, "06_wavenet", "Dilated convolutions: a WaveNet stack")
    page.text("WaveNet (van den Oord et al., 2016, §2.1) stacks causal convolutions of kernel 2 with "
              "dilations 1, 2, 4, ..., 512 and reports a receptive field of 1024 per stack. Here the stack "
              "is written with plain 1-D convolutions (the zoo's `wavenet` entry adds the gated residual "
              "blocks; same receptive field).")
    stack = Sequential(*[Conv(2, dilation=2**i) for i in range(10)])
    r = analyze(stack, ndim=1)
    page.code(derivation(r).text())
    page.math(r.to_latex(quantities=("rf",), max_terms=6))
    page.claim("rf_stack", r.rf, 1024)
    b = symbols("b")
    rb = analyze(Repeat(stack, b), ndim=1)
    page.text("With the number of stacks a symbol b:")
    page.math(f"R(b) = {sp.latex(rb.rf)}")
    page.claim("rf_stacks", sp.expand(rb.rf), 1023 * b + 1)
    i, L = repetition_index("i"), symbols("L")
    rl = analyze(Repeat(Conv(2, dilation=2**i), L), ndim=1)
    page.text("Dilation doubling with the layer index i (a repetition index) gives, for L layers:")
    page.math(f"R(L) = {sp.latex(rl.rf)}")
    page.claim("rf_L", sp.simplify(rl.rf - 2**L), 0)
    try:
        from rfsym import zoo
        rz = zoo.analyze("wavenet", stacks=1, input_size=None)
        page.claim("zoo_rf", rz.rf, 1024)
        page.text(f"The zoo's gated residual WaveNet with one stack agrees: R = {rz.rf}.")
    except ImportError:  # pragma: no cover
        pass
    fig = growth({"kernel 2, dilation $2^{i}$": Repeat(Conv(2, dilation=2**i), L),
                  "kernel 2, dilation 1": Repeat(Conv(2), L),
                  "kernel 3, dilation 1": Repeat(Conv(3), L)}, depths=range(1, 11), symbol="L", log=True)
    page.figure(fig, "growth", "Receptive field against the number of layers: doubling dilations give 2^L "
                               "with the parameters of a linear stack.")
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
