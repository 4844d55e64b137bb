"""Notes, worked example: a 5×5 input, two 3×3 convolutions (stride 1, padding 1), output (2, 2)."""

import numpy as np
from _page import Page, main

from rfsym import Conv, Sequential, analyze, dependency_mask
from rfsym.plot import mask


def _rng(lo, hi):
    return f"[{lo}–{hi}]"


def build(outdir):
    page = Page(outdir, "04_worked_5x5", "The 5×5 worked example")
    net = Sequential(Conv(3, padding=1, name="conv1"), Conv(3, padding=1, name="conv2"))
    r = analyze(net, input_size=5)
    conv1 = r.layers[0]
    page.text("Input 5×5, two 3×3 convolutions with stride 1 and padding 1 (outputs stay 5×5); we track "
              "output (2, 2). Every range below is read from the engine (`span`), and the final mask "
              "comes from brute-force enumeration (`rfsym.dependency_mask`), independently.")
    page.text("## Conv 1: output (2, 2)")
    (r0, r1), (c0, c1) = conv1.span((2, 2))
    page.text(f"Rows {_rng(r0, r1)}, cols {_rng(c0, c1)}: a 3×3 patch, receptive field {conv1.rf}.")
    page.claim("conv1_span", ((r0, r1), (c0, c1)), ((1, 3), (1, 3)))
    page.text("## Conv 2: expand the dependency")
    page.text("Output (2, 2) of conv 2 reads positions (1..3, 1..3) of conv 1; each of those reads its own "
              "3×3 patch of the input:")
    lines, rows, cols = [], set(), set()
    expected = {(1, 1): ((0, 2), (0, 2)), (1, 2): ((0, 2), (1, 3)), (1, 3): ((0, 2), (2, 4)),
                (2, 1): ((1, 3), (0, 2)), (2, 2): ((1, 3), (1, 3)), (2, 3): ((1, 3), (2, 4)),
                (3, 1): ((2, 4), (0, 2)), (3, 2): ((2, 4), (1, 3)), (3, 3): ((2, 4), (2, 4))}
    spans = {}
    for i in (1, 2, 3):
        for j in (1, 2, 3):
            (a, b), (c, d) = conv1.span((i, j))
            spans[(i, j)] = ((a, b), (c, d))
            rows.update(range(a, b + 1))
            cols.update(range(c, d + 1))
            lines.append(f"* ({i},{j}) in Conv 1 → input rows {_rng(a, b)}, cols {_rng(c, d)}")
    page.text("\n".join(lines))
    page.claim("dependency_lists", spans, expected)
    page.text(f"Union: rows {_rng(min(rows), max(rows))}, cols {_rng(min(cols), max(cols))} — all 25 pixels.")
    page.claim("union", ((min(rows), max(rows)), (min(cols), max(cols))), ((0, 4), (0, 4)))
    page.text("Formula verification: the general formula instantiated beside the engine's value:")
    page.math(r.to_latex(quantities=("rf",)))
    page.claim("rf", r.rf, 5)
    (a, b), (c, d) = r.span((2, 2))
    page.claim("span_2_2", ((a, b), (c, d)), ((0, 4), (0, 4)))
    m = dependency_mask(net, 5, (2, 2))
    page.claim("mask_all", bool(m.all()), True)
    counts = dependency_mask(net, 5, (2, 2), counts=True)
    page.claim("path_counts", counts.tolist(), np.outer([1, 2, 3, 2, 1], [1, 2, 3, 2, 1]).tolist())
    page.text("## The mask, by enumeration")
    page.text("The binary mask is all ones (5×5 receptive field, formula R = 1 + (3 − 1) + (3 − 1) = 5). "
              "Weighted by the number of paths through each pixel it is the outer product of "
              "(1, 2, 3, 2, 1) with itself: the centre pixel is reached 9 ways, a corner once — the reason "
              "the *effective* receptive field is concentrated in the centre.")
    page.figure(mask(net, 5, (2, 2)), "mask", "Input pixels feeding output (2, 2) after two 3×3 convolutions.")
    page.figure(mask(net, 5, (2, 2), counts=True), "paths",
                "Number of paths from each input pixel to output (2, 2).")
    page.text("## Three layers")
    net3 = Sequential(*[Conv(3, padding=1)] * 3)
    r3 = analyze(net3, input_size=5)
    m3 = dependency_mask(net3, 5, (2, 2), through_padding=True)
    page.text(f"A third 3×3 layer gives R = 1 + 3·(3 − 1) = {r3.rf}: a 7×7 region, of which only the 5×5 "
              f"input exists here; the engine's span of output (2, 2) is {r3.span((2, 2))[0]} on each axis, "
              "one pixel into the padding on every side.")
    page.claim("rf3", r3.rf, 7)
    page.claim("span3", r3.span((2, 2)), ((-1, 5), (-1, 5)))
    page.claim("mask3_all", bool(m3.all()), True)
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
