"""ResNet-50 (torchvision) as a function of its stage depths and its last-stage kernel: rfsym.symbolize."""

import sympy as sp
from _page import Page, main

from rfsym import analyze, repeats, symbolize, symbols, zoo

DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}


def _latex_row(name, value):
    return rf"\text{{{name}}} &= {sp.latex(sp.collect(sp.expand(value), symbols('k')))}"


def build(outdir):
    page = Page(outdir, "12_resnet50_symbolic",
                "ResNet-50 from torchvision, as a function of its stage depths and its last-stage kernel")
    page.text("A network arrives as numbers. `rfsym.symbolize` turns chosen numbers back into symbols: here "
              "torchvision's ResNet-50, imported with `rfsym.from_torch`, gets a symbolic kernel size k in the "
              "3×3 convolutions of its last stage, with 'same' padding kept, and a symbolic number of blocks "
              "b1..b4 in its four stages.")
    net = _imported()
    runs = repeats(net)
    page.text("`rfsym.repeats` finds the runs of identical blocks that can become a symbolic depth: "
              + ", ".join(f"`{r.path}` ({r.first} different block, then {r.count} identical ones)" for r in runs)
              + ". Each run becomes `Repeat(block, b - 1)` after the stage's first (downsampling) block.")
    page.claim("runs", [(r.path, r.first, r.count) for r in runs],
               [("layer1", 1, 2), ("layer2", 1, 3), ("layer3", 1, 5), ("layer4", 1, 2)])
    page.code('''import rfsym, torch, torchvision
with torch.device("meta"):  # shapes only
    imported = rfsym.from_torch(torchvision.models.resnet50(), (3, 224, 224))
b1, b2, b3, b4, k = rfsym.symbols("b1 b2 b3 b4 k")
net = rfsym.symbolize(imported,
                      {"layer4.*.conv2": {"kernel_size": k, "padding": "keep"}},
                      depth={"layer1": b1, "layer2": b2, "layer3": b3, "layer4": b4})
r = rfsym.analyze(net, input_size=224, in_channels=3)
r.layer("layer4").rf''', "python")
    b = symbols("b1:5")
    k = symbols("k")
    sym = symbolize(net, {"layer4.*.conv2": {"kernel_size": k, "padding": "keep"}},
                    depth={f"layer{s}": bs for s, bs in enumerate(b, start=1)}, input_size=224, in_channels=3)
    r = analyze(sym, input_size=224, in_channels=3)
    l4 = r.layer("layer4")
    page.text("## Closed forms (input 224×224)")
    page.text("Receptive field, jump and start of `layer4` (the last feature map), and the parameters and "
              "MACs of the whole network:")
    page.math("\\begin{aligned}\n" + " \\\\\n".join([
        _latex_row("rf", l4.rf), rf"\text{{jump}} &= {sp.latex(l4.jump)}", _latex_row("start", l4.start),
        _latex_row("params", r.params), _latex_row("MACs", r.macs)]) + "\n\\end{aligned}")
    page.claim("rf_layer4", sp.expand(l4.rf))
    page.claim("params", sp.expand(r.params))
    page.claim("macs", sp.expand(r.macs))
    resnet50 = dict(zip(b, DEPTHS["resnet50"]))
    at = r.subs({k: 3, **resnet50})
    page.claim("rf_resnet50", at.layer("layer4").rf, 427)
    page.claim("params_resnet50", at.params, 25557032)  # sum(p.numel()) of torchvision's resnet50
    page.claim("macs_resnet50", at.macs, 4089184256)  # torchvision's docs: 4.09 GFLOPS (multiply-adds)
    family = zoo.analyze("resnet", blocks=b)
    diff = sp.expand(r.subs({k: 3}).layer("layer4").rf - family.layer("layer4.rest").rf)
    page.claim("rf_minus_family", diff, 0)
    page.claim("params_minus_family", sp.expand(r.subs({k: 3}).params - family.params), 0)
    page.text(f"At k = 3 the receptive field is ${sp.latex(sp.expand(r.subs({k: 3}).layer('layer4').rf))}$ — "
              "the zoo family `zoo.resnet(blocks)`, built by hand with symbolic blocks, gives the same "
              "polynomial (difference 0, and the same for params and MACs) — and at (3, 4, 6, 3) it is "
              f"{at.layer('layer4').rf}, with {int(at.params):,} parameters and {int(at.macs):,} MACs, torchvision's "
              "numbers. Only the 3×3 convolution `conv2` of a bottleneck widens the field, by (k − 1)·J with J "
              "the jump at its input: 2·4 = 8, 2·8 = 16 and 2·16 = 32 per identical block of stages 1-3, and "
              "(k − 1)·32 per block of stage 4, whose first, strided `conv2` reads at jump 16 — hence the "
              "product of k and b4 and the term −16k.")
    rows = ["| network | blocks | rf (k = 3) | rf (k = 5) | rf (k = 7) | params (k = 3) |",
            "|:--|:--|--:|--:|--:|--:|"]
    table = {}
    for name, depths in DEPTHS.items():
        vals = dict(zip(b, depths))
        rfs = [r.subs({k: kk, **vals}).layer("layer4").rf for kk in (3, 5, 7)]
        table[name] = rfs
        rows.append(f"| {name} | {depths} | {rfs[0]} | {rfs[1]} | {rfs[2]} | {int(r.subs({k: 3, **vals}).params):,} |")
    page.text("## The family, evaluated")
    page.text("\n".join(rows))
    page.claim("rf_table", table)
    page.text("Going from 3×3 to 7×7 in the last stage's three convolutions adds (7 − 3)·(16 + 32 + 32) = 320 "
              "pixels to ResNet-50's receptive field: as much as ten more blocks in stage 3 (32 each).")
    page.claim("k7_gain", table["resnet50"][2] - table["resnet50"][0], 320)
    fig = _growth(r, b, k)
    page.figure(fig, "growth", "Receptive field of layer4 against the number of blocks in stage 3 (b1, b2, b4 "
                               "= 3, 4, 3), for last-stage kernels 3, 5 and 7; markers: ResNet-50, -101 "
                               "(b3 = 6, 23).")
    return page.write()


def _imported():
    import torch
    import torchvision

    from rfsym import from_torch

    with torch.device("meta"):  # shapes only: no weights are computed
        return from_torch(torchvision.models.resnet50(), (3, 224, 224))


def _growth(r, b, k):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    b3 = list(range(1, 41))
    rest = {b[0]: 3, b[1]: 4, b[3]: 3}
    for kk, style in zip((3, 5, 7), ("o-", "s-", "^-")):
        form = sp.expand(r.layer("layer4").rf.subs({k: kk, **rest}))
        ax.plot(b3, [int(form.subs(b[2], n)) for n in b3], style, markersize=3, linewidth=1.2,
                label=f"k = {kk}: {form}")
    for name, n in (("ResNet-50", 6), ("ResNet-101", 23)):
        y = int(r.layer("layer4").rf.subs({k: 3, b[2]: n, **rest}))
        ax.plot([n], [y], "k*", markersize=10)
        ax.annotate(f"{name}: {y}", (n, y), textcoords="offset points", xytext=(6, -12), fontsize=8)
    ax.set_xlabel("blocks in stage 3 ($b_3$)")
    ax.set_ylabel("receptive field of layer4 (pixels)")
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("torchvision ResNet, symbolized")
    return fig


if __name__ == "__main__":
    main(build, __file__)
