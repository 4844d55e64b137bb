"""The effective receptive field (Luo, Li, Urtasun, Zemel, NeurIPS 2016), derived in closed form.

Reproduces the paper's qualitative claims with rfsym's closed forms, each checked against the
exact discrete impulse response: the influence is Gaussian-shaped, its width grows like √n while
the theoretical receptive field grows like n, subsampling and dilation enlarge it, skip
connections shrink it.
"""

import numpy as np
import sympy as sp
from _page import Page, main

from rfsym import Conv, Residual, Sequential, erf, symbols
from rfsym.effective_field import discrete_erf
from rfsym.plot import erf_map, erf_ratio


def _moments(net):
    (pos, w), = discrete_erf(net, ndim=1)
    mean = float((pos * w).sum())
    return mean, float(((pos - mean) ** 2 * w).sum())


def build(outdir):
    page = Page(outdir, "10_effective_rf", "The effective receptive field")
    page.text("Luo et al. (NeurIPS 2016) linearise the network and give every tap of a layer the same "
              "weight. The influence of the input on one output is then the convolution of the layers' "
              "tap profiles, each spread by its jump and dilation: a sum of independent uniform variables. "
              "Its variance is the sum of the layers' variances, each scaled by the squared jump and "
              "dilation before the layer:")
    k, n, s, d = symbols("k n s d")
    page.math(r"\sigma^2 = \sum_l (j_{l-1} d_l)^2 \, \frac{k_l^2 - 1}{12}")
    stack = erf(Sequential(*[Conv(k)] * 4))
    page.claim("var_4k", sp.factor(stack.variance))
    page.text("For four stride-1 k-tap layers rfsym derives")
    page.math(rf"\sigma^2 = {sp.latex(sp.factor(stack.variance))}, \qquad R = {sp.latex(stack.rf)}")
    from rfsym import Repeat
    deep = erf(Repeat(Conv(3, padding=1), n))
    page.claim("var_n3x3", deep.variance)
    page.claim("ratio_n3x3", sp.simplify(deep.ratio()))
    page.text("and for n 3×3 layers (in closed form, through `Repeat` with a symbolic depth):")
    page.math(rf"\sigma^2 = {sp.latex(deep.variance)}, \quad R = {sp.latex(deep.rf)}, \quad "
              rf"\frac{{4\sigma}}{{R}} = {sp.latex(sp.simplify(deep.ratio()))} \sim \frac{{1}}{{\sqrt n}}")
    page.text("The standard deviation grows like √n while the receptive field grows like n, so the "
              "effective fraction shrinks like 1/√n (the dotted reference line below).")
    fig = erf_ratio({"3×3 convolutions": Conv(3, padding=1),
                     "3×3, dilation 2": Conv(3, dilation=2, padding=2),
                     "pairs of 3×3 in residual blocks": lambda m: Sequential(
                         *[Residual(Sequential(Conv(3, padding=1), Conv(3, padding=1)))] * m)},
                    depths=[1, 2, 4, 8, 16, 32, 64])
    page.figure(fig, "ratio", "ERF diameter (4σ) over the theoretical receptive field against depth")

    plain = Sequential(*[Conv(3, padding=1)] * 10)
    fig = erf_map(plain, input_size=32)
    page.figure(fig, "map", "Exact effective receptive field of ten 3×3 layers (green: Gaussian 2σ, "
                             "dashed: the theoretical 21×21 field)")
    mean, var = _moments(plain)
    page.claim("plain_var_exact", var)
    page.claim("plain_var", erf(plain, ndim=1).variance)
    # Gaussian shape: the discrete response is close to N(0, sigma^2) (central limit theorem)
    (pos, w), = discrete_erf(plain, ndim=1)
    gauss = np.exp(-((pos - mean) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)
    page.claim("gaussian_l1", round(float(np.abs(w - gauss).sum()), 4))
    page.text(f"The exact response of ten 3×3 layers has variance {var:.4f} = 20/3 and differs from the "
              f"Gaussian with that variance by {float(np.abs(w - gauss).sum()):.4f} in L1 (total mass 1): "
              "Gaussian-shaped.")

    page.text("## Subsampling, dilation and skip connections")
    base = erf(Sequential(*[Conv(3)] * 4), ndim=1).variance
    strided = erf(Sequential(Conv(3, stride=2), *[Conv(3)] * 3), ndim=1).variance
    dilated = erf(Sequential(*[Conv(3, dilation=2)] * 4), ndim=1).variance
    plain8 = erf(Sequential(*[Conv(3, padding=1)] * 16), ndim=1)
    res8 = erf(Sequential(*[Residual(Sequential(Conv(3, padding=1), Conv(3, padding=1)))] * 8), ndim=1)
    page.claim("subsampling_enlarges", bool(strided > base))
    page.claim("dilation_enlarges", bool(dilated > base))
    page.claim("skip_shrinks", bool(res8.variance < plain8.variance))
    page.claim("same_rf", (plain8.rf, res8.rf))
    page.text(f"Four 3×3 layers have variance {base}; putting stride 2 in the first raises it to {strided}, "
              f"dilation 2 everywhere to {dilated}. Sixteen 3×3 layers have variance {plain8.variance}; the "
              f"same layers as eight residual pairs (equal branch weights) only {res8.variance}, with the same "
              f"theoretical receptive field {res8.rf}: skip connections shrink the effective field.")
    page.math(rf"\sigma^2_{{\mathrm{{strided}}}} = {sp.latex(erf(Sequential(Conv(3, stride=s), Conv(3, dilation=d)), ndim=1).variance)}")
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
