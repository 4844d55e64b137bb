"""Notes §5: stride and pooling expand the receptive field multiplicatively."""

import sympy as sp
from _page import Page, main

from rfsym import Conv, MaxPool, Repeat, Sequential, analyze, crossover, smallest, symbols
from rfsym.plot import boxes, growth
from rfsym.steps import derivation


def build(outdir):
    page = Page(outdir, "05_stride_pooling", "Stride and pooling")
    page.text("A stride of 2 doubles the spacing (jump) between adjacent outputs; every later layer's "
              "kernel is then spread over twice as many input pixels.")
    net = Sequential(Conv(3, padding=1), Conv(3, stride=2, padding=1), Conv(3, padding=1), MaxPool(2),
                     Conv(3, padding=1))
    r = analyze(net, input_size=32)
    d = derivation(r, ("rf", "jump"), headers=True)
    page.code(d.text())
    page.math(r.to_latex(quantities=("rf", "jump", "start")))
    page.claim("rf", [lr.rf for lr in r.layers], [3, 5, 9, 11, 19])
    page.claim("jump", [lr.jump for lr in r.layers], [1, 2, 2, 4, 4])
    page.figure(boxes(r, [(0, 0), (1, 1), (4, 4)]), "boxes",
                "Receptive fields of outputs (0, 0), (1, 1), (4, 4): 19 pixels wide, 4 pixels apart.")
    n = symbols("n")
    fams = {"3×3, stride 1": Repeat(Conv(3, padding=1), n),
            "3×3 + 2×2 max-pool": Repeat(Sequential(Conv(3, padding=1), MaxPool(2)), n),
            "3×3, stride 2": Repeat(Conv(3, stride=2, padding=1), n)}
    page.text("## Linear vs exponential growth")
    for name, fam in fams.items():
        page.math(rf"\text{{{name}}}:\quad R(n) = {sp.latex(analyze(fam).rf)}")
    page.claim("rf_stride1", analyze(fams["3×3, stride 1"]).rf, 2 * n + 1)
    page.claim("rf_pool", sp.simplify(analyze(fams["3×3 + 2×2 max-pool"]).rf - (3 * 2**n - 2)), 0)
    page.claim("rf_stride2", sp.simplify(analyze(fams["3×3, stride 2"]).rf - (2 ** (n + 1) - 1)), 0)
    page.figure(growth(fams, depths=range(1, 11), log=True), "growth",
                "Receptive field against depth (log scale): stride and pooling grow exponentially.")
    page.text("## How deep must a network be?")
    s1 = smallest(fams["3×3, stride 1"], 100)
    s2 = smallest(fams["3×3, stride 2"], 100)
    sp_ = smallest(fams["3×3 + 2×2 max-pool"], 100)
    page.text(f"To reach a receptive field of 100 pixels: {s1.value} layers of 3×3 at stride 1 (2n + 1 ≥ 100, "
              f"method: {s1.method}); {s2.value} at stride 2; {sp_.value} conv+pool blocks.")
    page.claim("n100_stride1", s1.value, 50)
    page.claim("n100_stride2", s2.value, 6)
    page.claim("n100_pool", sp_.value, 6)
    T = symbols("T")
    page.math(rf"n_{{\min}}(T) = {sp.latex(smallest(fams['3×3, stride 1'], T).value)}")
    x = crossover(Repeat(Conv(3, stride=2, padding=1), n), Repeat(Conv(9, padding=4), n))
    page.text(f"A stride-2 3×3 stack (2^(n+1) − 1) overtakes a stride-1 9×9 stack (8n + 1) at n = {x.value}.")
    page.claim("crossover", x.value, 5)
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
