"""Notes §3: the general formula R_L = 1 + Σ (k_i − 1) Π_{j<i} s_j, instantiated and proven."""

import sympy as sp
from _page import Page, main

from rfsym import Conv, MaxPool, Sequential, analyze, symbols
from rfsym.latex import structured


def build(outdir):
    page = Page(outdir, "02_general_formula", "The general formula")
    page.text("For kernels k_i and strides s_i the general formula is R_L = 1 + Σ_i (k_i − 1) Π_{j<i} s_j. rfsym "
              "derives the receptive field by composing index maps, not from this formula; here the two "
              "are compared symbolically.")
    for L in (3, 4):
        ks, ss = symbols(f"k1:{L + 1}"), symbols(f"s1:{L + 1}")
        r = analyze(Sequential(*[Conv(k, stride=s) for k, s in zip(ks, ss)]))
        page.text(f"## L = {L}, every kernel and stride a symbol")
        page.math(r.to_latex(quantities=("rf", "jump")))
        formula = 1 + sum((ks[i] - 1) * sp.Mul(*ss[:i]) for i in range(L))
        page.claim(f"formula_minus_engine_L{L}", sp.expand(formula - r.rf), 0)
        page.claim(f"structured_minus_engine_L{L}", sp.expand(structured(r).sum() - r.rf), 0)
        page.claim(f"jump_L{L}", r.jump, sp.Mul(*ss))
    page.text("In both cases `sympy.expand(formula − engine) == 0`: the closed form equals the general formula.")
    ks = symbols("k1:5")
    r1 = analyze(Sequential(*[Conv(k) for k in ks]))
    page.text("## Stride 1 everywhere")
    page.text("The products are 1 and the formula simplifies to R_L = 1 + Σ (k_i − 1):")
    page.math(r1.to_latex(quantities=("rf",)))
    page.claim("stride1", sp.expand(r1.rf - (1 + sum(k - 1 for k in ks))), 0)
    k, d = symbols("k d")
    rd = analyze(Sequential(Conv(k, dilation=d), Conv(k, dilation=d)))
    page.text("## Dilation and pooling")
    page.text("Dilation d replaces k by the effective kernel κ = d(k − 1) + 1; pooling windows count as "
              "kernels with their own stride:")
    page.math(rd.to_latex(quantities=("rf",)))
    page.claim("dilated", sp.expand(rd.rf - (1 + 2 * d * (k - 1))), 0)
    rp = analyze(Sequential(Conv(3, padding=1), MaxPool(2), Conv(3, padding=1), MaxPool(2), Conv(3, padding=1)))
    page.math(rp.to_latex(quantities=("rf", "jump", "start")))
    page.claim("pooled_rf", rp.rf, 18)
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
