"""A residual network's receptive field: the longest path sets it; ResNet-18 at 224."""

from _page import Page, main

from rfsym import Conv, Residual, Sequential, analyze
from rfsym.steps import derivation


def build(outdir):
    page = Page(outdir, "07_residual", "Residual networks")
    page.text("A residual block adds its body to a shortcut. Both read the same input, so the merged "
              "receptive field is the bounding box of the two: here the body's (the longest path).")
    block = Residual(Sequential(Conv(3, padding=1), Conv(3, padding=1)))
    net = Sequential(Conv(3, padding=1), block, block)
    r = analyze(net, input_size=16)
    page.code(derivation(r, headers=True).text())
    chain = analyze(Sequential(*[Conv(3, padding=1)] * 5), input_size=16)
    page.claim("rf", r.rf, 11)
    page.claim("longest_path", chain.rf, 11)
    page.text(f"The stem and the two blocks' bodies put five 3×3 convolutions in series on the longest path, "
              f"so R = 1 + 5·(3 − 1) = {r.rf}, the same as a plain chain of five ({chain.rf}); the shortcuts "
              "only add shorter paths inside that box.")
    down = Residual(Sequential(Conv(3, stride=2, padding=1), Conv(3, padding=1)), Conv(1, stride=2))
    rd = analyze(Sequential(Conv(7, stride=2, padding=3), down), input_size=32)
    page.text("A downsampling block (body 3×3 stride 2 then 3×3; shortcut 1×1 stride 2) after a 7×7 stride-2 "
              "stem: both paths have jump 4, the body's box contains the shortcut's, and")
    page.math(rd.to_latex(quantities=("rf", "jump", "start")))
    page.claim("down_rf", rd.rf, 7 + 2 * 2 + 2 * 4)
    page.claim("down_jump", rd.jump, 4)
    try:
        from rfsym import zoo
    except ImportError:  # pragma: no cover
        return page.write()
    rn = zoo.analyze("resnet18")
    conv = rn.layer("layer4.1.conv2")
    page.text("## ResNet-18 (torchvision) at 224×224")
    page.text(f"At its last convolution `layer4.1.conv2` the receptive field is {conv.rf} pixels with jump "
              f"{conv.jump} (effective stride) and start {conv.start} (effective padding {-conv.start}): "
              "larger than the 224-pixel input, so the outputs near the border see mostly padding. "
              "(`rfsym verify resnet18 --input 224` checks these against enumeration.)")
    page.claim("resnet18_rf", conv.rf, 435)
    page.claim("resnet18_jump", conv.jump, 32)
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
