"""Notes §4: one 7×7 convolution vs three 3×3 — same receptive field, 49C² vs 27C² weights."""

import sympy as sp
from _page import Page, main

from rfsym import Conv, Repeat, Sequential, compare, symbols
from rfsym.plot import tradeoff


def build(outdir):
    page = Page(outdir, "03_kernel_tradeoff", "Why 3×3: one 7×7 vs three 3×3 convolutions")
    C = symbols("C")
    one = Conv(7, in_channels=C, out_channels=C, bias=False)
    three = Sequential(*[Conv(3, in_channels=C, out_channels=C, bias=False)] * 3)
    c = compare(one, three, names=["one 7×7", "three 3×3"])
    page.text("One 7×7 against three 3×3, derived for a symbolic channel count C (no biases):")
    page.text(c.to_markdown())
    page.claim("params", (c.value("params", 0), c.value("params", 1)), (49 * C**2, 27 * C**2))
    page.claim("rf_difference", c.difference("rf"), 0)
    page.claim("rf_equal", c.equal("rf"), True)
    page.claim("params_ratio", c.ratio("params"), sp.Rational(27, 49))
    page.math(r"\frac{\#\mathrm{params}(\text{three } 3\times 3)}{\#\mathrm{params}(\text{one } 7\times 7)} = "
              r"\frac{3 \cdot 3^2 C^2}{7^2 C^2} = " + sp.latex(c.ratio("params")))
    page.text("The receptive fields are *proven* equal (difference 0) and three 3×3 layers need 27/49 ≈ 55 % "
              "of the weights, for every C.")
    n = symbols("n")
    big = Conv(2 * n + 1, in_channels=C, out_channels=C, bias=False)
    stack = Repeat(Conv(3, in_channels=C, out_channels=C, bias=False), n)
    g = compare(big, stack, names=["one (2n+1)×(2n+1)", "n × 3×3"])
    page.text("## In general")
    page.text("One (2n + 1)×(2n + 1) convolution against n stacked 3×3 convolutions:")
    page.text(g.to_markdown())
    page.claim("general_rf_equal", g.equal("rf"), True)
    page.claim("general_ratio", sp.simplify(g.ratio("params") - 9 * n / (2 * n + 1) ** 2), 0)
    page.text("The weight ratio 9n/(2n + 1)² falls like 9/(4n): the deeper the stack, the larger the saving.")
    fig = tradeoff({"one (2n+1)×(2n+1)": big, "n × 3×3": stack}, depths=range(1, 8), symbol="n", values={"C": 64})
    page.figure(fig, "tradeoff", "Weights against receptive field for C = 64: single large kernels (quadratic) "
                                 "vs stacks of 3×3 (linear).")
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
