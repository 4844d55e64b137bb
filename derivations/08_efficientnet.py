"""EfficientNet compound scaling: params and FLOPs as closed forms in φ, against the paper's ≈2^φ."""

import sympy as sp
from _page import Page, main


def build(outdir):
    from rfsym.zoo.families import ALPHA, BETA, GAMMA, compound_scaling

    page = Page(outdir, "08_efficientnet", "EfficientNet compound scaling")
    page.text("Tan & Le (EfficientNet, ICML 2019, §3.3) scale depth by α^φ, width by β^φ and resolution by "
              "γ^φ with α = 1.2, β = 1.1, γ = 1.15, chosen so that α·β²·γ² ≈ 2: FLOPs should grow by about "
              "2^φ. rfsym builds EfficientNet-B0 with formal multipliers D (depth), W (width) and input "
              "size 32·R and derives MACs and params as polynomials (`rfsym.zoo.families.compound_scaling`; "
              "rounding of channels and repeats is dropped, so φ = 0 is B0 exactly).")
    cs = compound_scaling()
    D, W, R, phi = cs["D"], cs["W"], cs["R"], cs["phi"]
    poly = sp.Poly(cs["macs"], D, W, R)
    page.text("MACs as a polynomial in D, W, R (the degree in W is 2, in R 2, in D 1):")
    page.claim("macs_degrees", (poly.degree(D), poly.degree(W), poly.degree(R)), (1, 2, 2))
    top = poly.coeff_monomial(D * W**2 * R**2)
    page.math(r"\mathrm{MACs}(D, W, R) = " + sp.latex(sp.collect(cs["macs"], D)))
    share = float(top * 49 / cs["macs"].subs({D: 1, W: 1, R: 7}))
    page.text(f"The leading term D·W²·R² carries {100 * share:.1f} % of B0's MACs, so MACs grow almost "
              "exactly like (α·β²·γ²)^φ; the rest (stem, head, squeeze-excitation, the classifier) grows slower.")
    page.claim("leading_share_above_0.9", share > 0.9, True)
    rows = ["| φ | MACs(φ)/MACs(0) | params(φ)/params(0) | (αβ²γ²)^φ | 2^φ |", "|--:|--:|--:|--:|--:|"]
    ratios = {}
    for k in range(0, 8):
        m = float(cs["macs_phi"].subs(phi, k) / cs["macs_phi"].subs(phi, 0))
        p = float(cs["params_phi"].subs(phi, k) / cs["params_phi"].subs(phi, 0))
        ratios[k] = m
        rows.append(f"| {k} | {m:.3f} | {p:.3f} | {float((ALPHA * BETA**2 * GAMMA**2) ** k):.3f} | {2 ** k} |")
    page.text("\n".join(rows))
    page.claim("macs_ratio_phi1_near_2", abs(ratios[1] - 2) < 0.15, True)
    page.claim("macs_ratio_monotone", all(ratios[k] < ratios[k + 1] for k in range(7)), True)
    page.text("The derived MACs ratio tracks (αβ²γ²)^φ = 1.92^φ closely, slightly below the paper's "
              "rounded 2^φ; params grow without the resolution factor (≈ (αβ²)^φ).")
    return page.write()


if __name__ == "__main__":
    main(build, __file__)
