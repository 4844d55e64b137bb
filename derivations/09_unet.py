"""U-Net sizes: the original unpadded network maps 572×572 to 388×388."""

import sympy as sp
from _page import Page, main

from rfsym import analyze, symbols
from rfsym.steps import derivation


def build(outdir):
    from rfsym import zoo

    page = Page(outdir, "09_unet", "U-Net output sizes")
    page.text("Ronneberger, Fischer, Brox (U-Net, MICCAI 2015, Fig. 1): unpadded 3×3 convolutions, 2×2 max "
              "pooling, 2×2 up-convolutions and cropped skip connections take a 572×572 tile to a 388×388 "
              "segmentation map. rfsym derives every size exactly (the zoo's `unet` entry).")
    r = zoo.analyze("unet")
    page.claim("out_size", r.out_size, 388)
    enc = [lr for lr in r.layers if lr.type == "MaxPool"]
    page.text("Sizes before each pooling (the paper's 568, 280, 136, 64) and at the output:")
    sizes = [lr.in_size for lr in enc]
    page.text(", ".join(str(s) for s in sizes) + f" → output {r.out_size}×{r.out_size}.")
    page.claim("pool_inputs", sizes, [568, 280, 136, 64])
    n = symbols("n")
    rn = analyze(zoo.get("unet"), input_size=n, in_channels=1)
    page.text("With a symbolic tile size n the engine gives the output size in closed form:")
    s = rn.out_size
    page.math(f"n_{{\\mathrm{{out}}}}(n) = {sp.latex(s)}")
    page.claim("n_out_572", s.subs(n, 572), 388)
    page.text("It holds for the tiles that pool evenly at every level, n = 16t + 124 (572 = 16·28 + 124 → 388); "
              "for other concrete tiles the crops of the skip connections cannot line up and rfsym reports "
              "the mismatching Concat branches instead of a size.")
    page.claim("even_tiles", all(s.subs(n, 16 * t + 124) == 16 * t - 60 for t in range(8, 20)), True)
    page.text("## Receptive field")
    page.text(f"Each output pixel sees R = {r.rf} input pixels per axis (jump {r.jump}); the first layers:")
    page.code("\n".join(derivation(r, ("rf", "jump"), headers=True).text().splitlines()[:12]))
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
