"""Symbolic families: VGG from a depth configuration, ResNet with blocks per stage as symbols, and
EfficientNet's compound scaling with φ symbolic.

>>> from rfsym import zoo
>>> n1, n2, n3, n4, n5 = zoo.symbols("n1:6")
>>> r = zoo.analyze("vgg", depths=(n1, n2, n3, n4, n5))
>>> r.layer("features.pool5").rf
2*(n1 + 2*n2 + 4*n3 + 8*n4 + 16*n5 + 16)
>>> b = zoo.symbols("b1:5")
>>> zoo.analyze("resnet", blocks=b).layer("layer4.rest").rf
8*b1 + 16*b2 + 32*b3 + 64*b4 - 45
"""

from __future__ import annotations

import math

import sympy as sp

from ..errors import LayerError
from ..layers import AdaptiveAvgPool, Conv, Dropout, Flatten, Linear, MaxPool, ReLU, Repeat, Sequential
from ..symbols import as_expr, symbols
from . import register
from .torchvision import (
    EFFICIENTNET_B0_STAGES,
    basic_block,
    bottleneck,
    conv_norm_act,
    mbconv,
    resnet_network,
)

__all__ = ["vgg", "resnet", "efficientnet", "compound_scaling", "ALPHA", "BETA", "GAMMA", "doc_sections"]


# --------------------------------------------------------------------------- VGG
@register("vgg", input_size=224, family="families", features="features.pool5",
          source="Simonyan, Zisserman, ICLR 2015 (Table 1: configurations A-E); pytorch/vision "
                 "torchvision/models/vgg.py (make_layers)")
def vgg(depths=(2, 2, 3, 3, 3), widths=(64, 128, 256, 512, 512), num_classes=1000):
    """VGG from a depth configuration: ``depths[s]`` 3x3 convs (padding 1) in stage ``s``, then a
    2x2 max pool; ints or symbols (a symbolic depth is a Repeat of conv + ReLU).

    ``depths=(1, 1, 2, 2, 2)`` is configuration A (vgg11), ``(2, 2, 3, 3, 3)`` D (vgg16) and
    ``(2, 2, 4, 4, 4)`` E (vgg19); with those the family has torchvision's parameters and MACs.
    Names: ``features.convS_J`` / ``features.convS_rest`` and ``features.poolS``.
    """
    widths = _counts(widths, "widths", "vgg")
    depths = _counts(depths, "depths", "vgg", length=len(widths))  # one per stage of widths
    layers, c = [], 3
    for s, (n, width) in enumerate(zip(depths, widths), start=1):
        layers += [Conv(3, padding=1, in_channels=c, out_channels=width, name=f"conv{s}_1"),
                   ReLU(name=f"relu{s}_1")]
        rest = n - 1
        if isinstance(rest, int):
            for j in range(2, n + 1):
                layers += [Conv(3, padding=1, out_channels=width, name=f"conv{s}_{j}"), ReLU(name=f"relu{s}_{j}")]
        else:
            layers.append(Repeat(Sequential(Conv(3, padding=1, out_channels=width), ReLU()), rest,
                                 name=f"conv{s}_rest"))
        layers.append(MaxPool(2, stride=2, name=f"pool{s}"))
        c = width
    classifier = Sequential(Linear(c * 7 * 7, 4096), ReLU(), Dropout(), Linear(4096, 4096), ReLU(), Dropout(),
                            Linear(4096, num_classes), name="classifier")
    return Sequential(Sequential(*layers, name="features"), AdaptiveAvgPool((7, 7), name="avgpool"),
                      Flatten(name="flatten"), classifier, name="vgg")


# --------------------------------------------------------------------------- ResNet
@register("resnet", input_size=224, family="families", features="layer4.2.relu",
          source="He et al., CVPR 2016 (Table 1); pytorch/vision torchvision/models/resnet.py")
def resnet(blocks=(3, 4, 6, 3), bottleneck_blocks=True, num_classes=1000):
    """torchvision's ResNet with the number of blocks per stage as ints or symbols.

    A symbolic count ``b`` gives the stage's first (downsampling) block followed by a Repeat of
    ``b - 1`` identity blocks named ``layerS.rest``. ``blocks=(3, 4, 6, 3)`` is resnet50,
    ``(3, 4, 23, 3)`` resnet101, ``(3, 8, 36, 3)`` resnet152; ``bottleneck_blocks=False`` gives
    the BasicBlock networks (resnet18: ``(2, 2, 2, 2)``, resnet34: ``(3, 4, 6, 3)``).
    """
    block = bottleneck if bottleneck_blocks else basic_block
    if not isinstance(bottleneck_blocks, bool):
        raise LayerError(f"bottleneck_blocks must be True or False, got {bottleneck_blocks!r}", where="resnet",
                         param="bottleneck_blocks")
    return resnet_network(block, _counts(blocks, "blocks", "resnet", length=4), num_classes, name="resnet")


def _counts(values, param, family, length=None):
    """Per-stage counts (positive ints or symbols) checked at the value boundary: ints stay ints.

    >>> _counts((1, 2), "depths", "vgg", length=3)
    Traceback (most recent call last):
    ...
    rfsym.errors.LayerError: vgg: depths must have 3 entries (one per stage), got 2: (1, 2)
    """
    if not isinstance(values, (tuple, list)) or not values:
        raise LayerError(f"{param} must be a non-empty tuple (one entry per stage), got {values!r}",
                         where=family, param=param)
    if length is not None and len(values) != length:
        raise LayerError(f"{param} must have {length} entries (one per stage), got {len(values)}: "
                         f"{tuple(values)!r}", where=family, param=param)
    out = []
    for i, v in enumerate(values):
        try:
            e = as_expr(v, f"{param}[{i}]")
        except LayerError as err:
            raise LayerError(err.detail, where=family, param=param) from None
        out.append(int(e) if e.is_Integer else e)
    return tuple(out)


# --------------------------------------------------------------------------- EfficientNet
#: EfficientNet's compound coefficients (Tan & Le 2019, eq. 3): depth α^φ, width β^φ, resolution
#: γ^φ with α·β²·γ² ≈ 2, found by grid search for φ = 1
ALPHA, BETA, GAMMA = sp.Rational(6, 5), sp.Rational(11, 10), sp.Rational(23, 20)


def _is_symbolic(v):
    return isinstance(v, sp.Basic) and bool(v.free_symbols)


@register("efficientnet", input_size=224, family="families", features="features.8.2",
          source="Tan, Le, 'EfficientNet: Rethinking Model Scaling for CNNs', ICML 2019 (sec. 3.3, eq. 3); "
                 "pytorch/vision torchvision/models/efficientnet.py")
def efficientnet(phi=0, width=None, depth=None, num_classes=1000):
    """EfficientNet-B0 scaled by the compound rule: width 1.1^phi, depth 1.2^phi (input 224·1.15^phi).

    Resolution: see :func:`compound_scaling`.

    A numeric ``φ`` applies torchvision's rounding (channels to multiples of 8, repeats rounded
    up); ``φ = 0`` is efficientnet_b0 exactly. ``width`` and ``depth`` override the multipliers;
    given as *symbols* they are formal multipliers without rounding (channels ``c·width``,
    repeats ``n·depth``), which is how :func:`compound_scaling` derives params and MACs as
    polynomials. Note that torchvision's B1-B7 use the paper's hand-picked (width, depth,
    resolution) table, not ``α^φ, β^φ, γ^φ``. The receptive field is global (jump 0): the
    squeeze-and-excitation gates read the whole feature map, so every output sees the whole
    (padded) input.
    """
    phi = _coefficient(phi)
    w = BETA ** phi if width is None else _multiplier(width, "width")
    d = ALPHA ** phi if depth is None else _multiplier(depth, "depth")
    formal = _is_symbolic(w) or _is_symbolic(d)
    if formal:
        def ch(c):
            return c * w

        def reps(n):
            return n * d
    else:
        from .torchvision import make_divisible

        def ch(c):
            return make_divisible(float(c * w))

        def reps(n):
            return int(math.ceil(n * float(d)))

    stem = ch(32)
    feats = [conv_norm_act(3, stem, 2, act=_silu(), name="0")]
    c = stem
    for s, (t, k, stride, _, c_out, n) in enumerate(EFFICIENTNET_B0_STAGES, start=1):
        c_out = ch(c_out)
        blocks = [mbconv(c, c_out, k, stride, t, "0")]
        count = reps(n)
        if isinstance(count, int):
            blocks += [mbconv(c_out, c_out, k, 1, t, str(i)) for i in range(1, count)]
        else:
            blocks.append(Repeat(mbconv(c_out, c_out, k, 1, t, ""), count - 1, name="rest"))
        feats.append(Sequential(*blocks, name=str(s)))
        c = c_out
    last = ch(1280) if formal else make_divisible(1280 * float(w)) if w != 1 else 1280
    feats.append(conv_norm_act(1, last, act=_silu(), name=str(len(feats))))
    return Sequential(Sequential(*feats, name="features"), AdaptiveAvgPool(1, name="avgpool"),
                      Flatten(name="flatten"), Sequential(Dropout(), Linear(last, num_classes), name="classifier"),
                      name="efficientnet")


#: largest numeric compound coefficient φ (B7 is about φ = 6; 1.2^64 channels are absurd already)
MAX_PHI = 64


def _coefficient(phi):
    """φ checked at the value boundary: a nonnegative integer up to :data:`MAX_PHI`, or a symbol."""
    try:
        e = as_expr(phi, "phi", minimum=0)
    except LayerError as err:
        raise LayerError(err.detail, where="efficientnet", param="phi") from None
    if e.is_Integer and int(e) > MAX_PHI:
        raise LayerError(f"phi must be at most {MAX_PHI}, got {e}", where="efficientnet", param="phi")
    return int(e) if e.is_Integer else e


def _multiplier(value, param):
    """A width or depth multiplier: a positive number (floats allowed: 1.1) or a symbol."""
    if isinstance(value, sp.Basic) and value.free_symbols:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, sp.Basic)) or not 0 < float(value) <= 64:
        raise LayerError(f"{param} must be a positive number up to 64 or a symbol, got {value!r}",
                         where="efficientnet", param=param)
    return value


def _silu():
    from ..layers import SiLU
    return SiLU


def compound_scaling():
    """Params and MACs of the EfficientNet family as closed forms in φ, derived by rfsym.

    The network is built with formal multipliers (symbols ``D``, ``W``: channels ``c·W``, stage
    repeats ``n·D``) and analysed at input size ``32·R`` (exact halvings); the results are
    polynomials in ``D, W, R``, into which ``D = α^φ, W = β^φ, R = 7·γ^φ`` are substituted
    (``R = 7`` is the 224 of B0). Rounding to multiples of 8 and whole repeats is dropped, so at
    φ = 0 the forms give B0 exactly and elsewhere the idealised family of the paper.

    Returns a dict with ``params``, ``macs`` (in ``D, W, R``), ``params_phi``, ``macs_phi``
    (in ``phi``) and the symbols ``D, W, R, phi``.
    """
    from ..engine import analyze

    D, W, R = symbols("D W R")
    phi = sp.Symbol("phi", nonnegative=True)
    r = analyze(efficientnet(width=W, depth=D), input_size=32 * R, in_channels=3)
    params, macs = sp.expand(r.params), sp.expand(r.macs)
    sub = {D: ALPHA ** phi, W: BETA ** phi, R: 7 * GAMMA ** phi}
    return {"params": params, "macs": macs, "params_phi": params.subs(sub), "macs_phi": macs.subs(sub),
            "D": D, "W": W, "R": R, "phi": phi}


def doc_sections():
    """Markdown for docs/zoo.md: the families' closed forms, derived (not typed)."""
    n = symbols("n1:6")
    pool5 = _analyze_family("vgg", depths=n).layer("features.pool5")
    b = symbols("b1:5")
    res = _analyze_family("resnet", blocks=b)
    cs = compound_scaling()
    phi = cs["phi"]
    rows = []
    for k in range(0, 8):
        p = float(cs["params_phi"].subs(phi, k) / cs["params_phi"].subs(phi, 0))
        m = float(cs["macs_phi"].subs(phi, k) / cs["macs_phi"].subs(phi, 0))
        rows.append(f"| {k} | {p:.3f} | {m:.3f} | {2 ** k} | {float((ALPHA * BETA**2 * GAMMA**2) ** k):.3f} |")
    lead = sp.Poly(cs["macs"], cs["D"], cs["W"], cs["R"])
    top = lead.coeff_monomial(cs["D"] * cs["W"] ** 2 * cs["R"] ** 2)
    share = float(top * 49 / cs["macs"].subs({cs["D"]: 1, cs["W"]: 1, cs["R"]: 7}))
    return [
        "## Symbolic families (derived by rfsym)",
        "",
        f"- `vgg`, depths `(n1, ..., n5)`: receptive field at `features.pool5` = `{pool5.rf}`, "
        f"effective stride `{pool5.jump}`, effective padding `{pool5.effective_padding}`.",
        f"- `resnet` (bottleneck), blocks `(b1, ..., b4)`: receptive field of `layer4` = "
        f"`{res.layer('layer4.rest').rf}`; parameters `{sp.expand(res.params)}`.",
        f"- `efficientnet`, formal multipliers (channels `c·W`, repeats `n·D`, input `32·R`): "
        f"parameters `{sp.factor_terms(cs['params'])}`.",
        f"  The `D·W²·R²` term carries {share:.1%} of B0's MACs; the rest grows more slowly "
        f"(depthwise convolutions scale with `W`, squeeze-and-excitation and the classifier do not "
        f"scale with `R`). With `D = 1.2^φ`, `W = 1.1^φ`, `R = 7·1.15^φ`:",
        "",
        "| φ | params / B0 | MACs / B0 | paper's 2^φ | (αβ²γ²)^φ |",
        "|---|---|---|---|---|",
        *rows,
    ]


def _analyze_family(name, **symbols_):
    from . import entry
    return entry(name).analyze(**symbols_)
