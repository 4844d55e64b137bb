"""Notes §2, §6, §7: stacked 3×3 convolutions (stride 1, padding 1) — R = 3, 5, 7, 9."""

from _page import Page, main

from rfsym import Conv, Repeat, Sequential, analyze, symbols
from rfsym.latex import table
from rfsym.plot import growth
from rfsym.steps import derivation


def build(outdir):
    page = Page(outdir, "01_stacked_3x3", "Stacked 3×3 convolutions")
    page.text("Stacked 3×3 convolutions with stride 1 and padding 1: the receptive "
              "field grows by 2 per layer: 3, 5, 7, 9. rfsym derives each step from the recurrence "
              "R_i = R_{i-1} + (k_i − 1)·J_{i-1} (Araujo, Norris, Sim, Distill 2019).")
    net = Sequential(*[Conv(3, padding=1, name=f"conv{i + 1}") for i in range(4)])
    r = analyze(net, input_size=5)
    d = derivation(r)
    page.text("## Step by step")
    page.code(d.text())
    page.math(d.latex(env="aligned"))
    page.claim("steps", d.text().splitlines(), ["R₁ = 1 + (3 − 1) = 3", "R₂ = 3 + (3 − 1) = 5",
                                                 "R₃ = 5 + (3 − 1) = 7", "R₄ = 7 + (3 − 1) = 9"])
    page.claim("rf", [lr.rf for lr in r.layers], [3, 5, 7, 9])
    page.text("## The per-layer table, generated")
    page.text(table(r, columns=("index", "name", "kernel", "stride", "padding", "rf", "out_size"), total=False))
    page.text("With padding 1 the spatial size stays 5 (the *size* column).")
    page.claim("out_size", [lr.out_size for lr in r.layers], [5, 5, 5, 5])
    n = symbols("n")
    rn = analyze(Repeat(Conv(3, padding=1), n))
    page.text("## Any depth")
    page.text("With the depth a symbol, `Repeat(Conv(3, padding=1), n)` gives the closed form directly "
              "(solved from the recurrence, not unrolled):")
    page.math(f"R(n) = {rn.to_latex(quantities=('rf',), env=None).split('&= ')[-1]}")
    page.claim("rf_n", rn.rf, 2 * n + 1)
    fig = growth({r"3×3, stride 1": Repeat(Conv(3, padding=1), n)}, depths=range(1, 11))
    page.figure(fig, "growth", "Receptive field of n stacked 3×3 convolutions: 2n + 1, linear in depth.")
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
