"""U-Net's valid input sizes and tiled inference: which tiles never truncate, and how much to overlap."""

import numpy as np
import sympy as sp
from _page import Page, main

from rfsym import analyze, sizes, symbols, tiling


def _figure(plan, image):
    import matplotlib.patches as patches
    from matplotlib.figure import Figure

    ax_plan = plan.axes[0]
    rng = np.random.default_rng(0)
    pic = rng.normal(size=(image // 20 + 1, image // 20 + 1))
    pic = np.kron(pic, np.ones((20, 20)))[:image, :image]
    fig = Figure(figsize=(7.2, 7.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(pic, cmap="gray", alpha=0.35, extent=(0, image, image, 0))
    tiles = plan.tiles((image, image))
    cell = ax_plan.margin[0] - ax_plan.crop[0] * ax_plan.jump  # input position of output 0's cell
    colors = ["tab:blue", "tab:orange", "tab:green"]
    for k, (ty, tx) in enumerate(tiles):
        color = colors[(k // 3 + k % 3) % 3]
        (y0, y1), (x0, x1) = ty.input, tx.input
        ax.add_patch(patches.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.0, ls="--", ec=color))
        (oy0, oy1), (ox0, ox1) = ty.output, tx.output
        ax.add_patch(patches.Rectangle((ox0 + cell, oy0 + cell), ox1 - ox0, oy1 - oy0, fc=color, alpha=0.25,
                                       ec=color, lw=1.2))
    (ty, tx) = tiles[4]
    (y0, y1), (x0, x1) = ty.input, tx.input
    ax.add_patch(patches.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=2.4, ec="black"))
    ax.annotate("tile 572×572 (input)", (x0 + 6, y0 + 22), fontsize=8)
    hb = ax_plan.halo[0]
    ax.annotate(f"halo {hb}", (x0 + 4, (y0 + y1) / 2), fontsize=8, rotation=90, va="center")
    ax.set_xlim(0, image)
    ax.set_ylim(image, 0)
    ax.set_title(f"{len(tiles)} tiles of {ax_plan.tile} on a {image}×{image} image: dashed = tile inputs, "
                 "filled = kept outputs\n(drawn where they sit on the input), step "
                 f"{ax_plan.step}", fontsize=9)
    return fig


def build(outdir):
    from rfsym import zoo

    page = Page(outdir, "11_unet_tiling", "U-Net: valid input sizes and tiled inference")
    unet = zoo.get("unet")
    page.text("The original U-Net (Ronneberger, Fischer, Brox, MICCAI 2015) has unpadded 3×3 convolutions, "
              "four 2×2 max pools and four 2×2 up-convolutions. A pool truncates when its input is odd "
              "(floor division), and the cropped skip connections only line up when no pool truncates. "
              "`rfsym.sizes` derives which tile sizes are safe; `rfsym.tiling` how to overlap tiles so "
              "that stitching them gives exactly the whole-image segmentation.")
    page.text("## Valid sizes")
    n = symbols("n")
    r = analyze(unet, input_size=n, in_channels=1)
    pools = [lr for lr in r.layers if lr.type == "MaxPool"]
    page.text("With a symbolic tile size n the engine gives every pool's input size; each must be even:")
    rows = "\n".join(f"{lr.name:<40} {sp.sstr(lr.in_size)}" for lr in pools)
    page.code(rows)
    s = sizes(unet, in_channels=1)
    ax = s.axis(0)
    page.claim("min_input", s.min_input)
    page.claim("modulus", s.modulus)
    page.claim("first", s.first(5))
    page.text(f"Every size law is a floor of an affine function, so the conditions repeat with period "
              f"{ax.modulus} (the jump at the bottom of the U); one exact analysis per residue decides "
              "them all. The smallest input for which every layer keeps at least one position is "
              f"{s.min_input}, and it is already valid:")
    m = sp.Symbol("m", integer=True, nonnegative=True)
    page.math(rf"\text{{valid tile sizes}} = {sp.latex(s.valid_inputs)} = \{{{', '.join(map(str, s.first(5)))}, "
              rf"\dots\}}")
    page.claim("valid_572", s.is_valid(572))
    out = analyze(unet, input_size=572, in_channels=1).out_size
    page.claim("out_572", out)
    page.text(f"572 = 16·24 + 188 is valid and gives {out}×{out} (the paper's Fig. 1); on every valid "
              "size the output is n − 184:")
    page.math(rf"n_{{\text{{out}}}}({ax.modulus} m + {s.min_input}) = "
              rf"{sp.latex(sp.expand(r.out_size.subs(n, ax.modulus * m + s.min_input)))}")
    runs = []
    for size in range(1, 801):
        try:
            rr = analyze(unet, input_size=size, in_channels=1)
        except Exception:  # noqa: BLE001 - SizeError/GraphError: the network does not run here
            continue
        ok = all(int(lr.in_size if not isinstance(lr.in_size, tuple) else lr.in_size[0]) % 2 == 0
                 for lr in rr.layers if lr.type == "MaxPool")
        runs.append((size, ok))
    brute_valid = [size for size, ok in runs if ok]
    page.claim("brute_force_agrees", brute_valid == [x for x in range(1, 801) if s.is_valid(x)])
    page.claim("brute_min", runs[0][0])
    page.text(f"By enumeration of every size 1…800 (analysing the network at each one): it first runs at "
              f"{runs[0][0]}, and the sizes where no pool truncates are exactly {brute_valid[:4]} … — the "
              "same set.")

    page.text("## Tiling")
    plan = tiling(unet, 572, in_channels=1)
    a = plan.axes[0]
    page.claim("halo", plan.halo)
    page.claim("step", plan.step)
    page.claim("crop", plan.crop)
    page.claim("quantum", plan.quantum)
    page.text(f"The output grid has 16 phases (four 2× up-convolutions), so outputs come in groups of 16 "
              f"that own 16 input positions; the fields of one group span {a.field[1] - a.field[0] + 1} "
              f"positions (the receptive field is {r.rf} at its widest phase, "
              f"{analyze(unet, 572, in_channels=1).rf_min} at its narrowest). Centred on the group's cell, the "
              f"halo is {plan.halo[0]} before and {plan.halo[1]} after.")
    page.text(f"A 572 tile gives {a.out_tile} outputs whose fields all fit inside it, but tiles can only move "
              f"by multiples of {plan.quantum} (the bottom of the U pools 16×16 blocks: shifted by anything "
              f"else, the pools pair different pixels). So consecutive tiles step by {plan.step} input "
              f"positions and each keeps {plan.step} of its {a.out_tile} outputs (crop {plan.crop}): "
              f"stepping by {a.out_tile} instead would not reproduce the whole-"
              "image result.")
    image = 572 + 2 * plan.step
    page.claim("image_valid", s.is_valid(image))
    tiles = plan.tiles((image, image))
    page.claim("tiles", len(tiles))
    rows = "\n".join(f"input {t.input[0]:>4}:{t.input[1]:<5} keep {t.keep[0]:>3}:{t.keep[1]:<4} "
                     f"-> output {t.output[0]:>4}:{t.output[1]}" for t in a.tiles(image))
    page.code(rows)
    fig = _figure(plan, image)
    page.figure(fig, "tiles", f"Tiling a {image}×{image} image with 572×572 tiles: tile inputs (dashed), "
                              "kept outputs placed on the input (filled), one tile outlined")
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
