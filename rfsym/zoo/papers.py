"""Models from papers: U-Net, WaveNet and TCN, with their symbolic parameters.

>>> from rfsym import zoo
>>> zoo.analyze("unet").out_size
388
>>> stacks = zoo.symbols("S")
>>> zoo.analyze("wavenet", stacks=stacks, input_size=None).rf
1023*S + 1
>>> L, k = zoo.symbols("L k")
>>> zoo.analyze("tcn", levels=L, kernel_size=k, input_size=None).rf
2*2**L*k - 2*2**L - 2*k + 3
"""

from __future__ import annotations

from ..layers import (
    Concat,
    Conv,
    ConvTranspose,
    Crop,
    Dropout,
    Identity,
    MaxPool,
    ReLU,
    Repeat,
    Residual,
    Sequential,
)
from ..symbols import symbols
from . import register
from .blocks import GatedActivation

__all__ = ["unet", "wavenet", "tcn", "causal_conv"]


# --------------------------------------------------------------------------- U-Net
def _double_conv(d, c):
    return [Conv(3, out_channels=c, name=f"conv{d}_1"), ReLU(name=f"relu{d}_1"),
            Conv(3, out_channels=c, name=f"conv{d}_2"), ReLU(name=f"relu{d}_2")]


def _unet_level(d, widths):
    """Level ``d`` (1-based) of the contracting/expansive path, containing the deeper levels."""
    c = widths[d - 1]
    if d == len(widths):
        return _double_conv(d, c)
    deeper = Sequential(MaxPool(2, stride=2, name=f"pool{d}"), *_unet_level(d + 1, widths),
                        ConvTranspose(2, stride=2, out_channels=c, name=f"upconv{d}"), name="")
    # the cropping that makes the skip connection as large as the upsampled path
    crop = Crop(_unet_crop(d, len(widths)), name=f"crop{d}")
    return [*_double_conv(d, c), Concat(Sequential(crop, name=""), deeper, name=f"concat{d}"),
            Conv(3, out_channels=c, name=f"upconv{d}_1"), ReLU(name=f"uprelu{d}_1"),
            Conv(3, out_channels=c, name=f"upconv{d}_2"), ReLU(name=f"uprelu{d}_2")]


def _unet_crop(d, depth):
    """Crop per side of level ``d``'s skip connection (independent of the input size).

    Level ``e`` shrinks its input by ``g_e``: ``g_depth = 4`` (two unpadded 3x3 convs) and
    ``g_e = 8 + 2·g_(e+1)`` (4 before pooling, twice what the level below loses, 4 after the
    concatenation). The skip of level ``d`` is ``2·g_(d+1)`` larger than the upsampled path, so
    ``g_(d+1)`` is cropped on each side: 88, 40, 16, 4 for the original four levels.
    """
    loss = 4  # g_depth
    for _ in range(depth - 1 - d):
        loss = 2 * loss + 8
    return loss


@register("unet", input_size=572, in_channels=1, family="papers",
          source="Ronneberger, Fischer, Brox, 'U-Net: Convolutional Networks for Biomedical Image "
                 "Segmentation', MICCAI 2015 (Fig. 1)")
def unet(num_classes=2, widths=(64, 128, 256, 512, 1024)):
    """The original U-Net: unpadded 3x3 convs, 2x2 max pools, 2x2 up-convolutions, cropped skips.

    A 572x572 input gives a 388x388 output (Fig. 1). Crops per side: 88, 40, 16, 4 from the top
    level down; they do not depend on the input size (valid inputs: ``n - 4`` divisible by 16
    down to the bottom). Names: ``convD_1``, ``poolD``, ``upconvD`` (the transposed conv),
    ``cropD``, ``concatD``, ``upconvD_1``; nested levels are prefixed by their enclosing
    ``concatD``.
    """
    return Sequential(*_unet_level(1, tuple(widths)), Conv(1, out_channels=num_classes, name="output"),
                      name="unet")


# --------------------------------------------------------------------------- WaveNet
def causal_conv(k, dilation=1, out_channels=None, name=None):
    """A causal 1-D convolution: ``(k - 1)·dilation`` zeros on the left only."""
    return Conv((k,), dilation=dilation, padding=(((k - 1) * dilation, 0),), out_channels=out_channels,
                name=name)


@register("wavenet", input_size=(4096,), in_channels=256, ndim=1, family="papers",
          source="van den Oord et al., 'WaveNet: A Generative Model for Raw Audio', arXiv 1609.03499 "
                 "(2016), sec. 2.1 and Fig. 4; r9y9/wavenet_vocoder (1x1 input conv)")
def wavenet(stacks=3, layers_per_stack=10, residual_channels=64, skip_channels=256, classes=256):
    """WaveNet: stacks of gated residual layers with kernel 2 and dilations 1, 2, ..., 512.

    One stack has receptive field 1024 (the paper: "each 1, 2, 4, ..., 512 block has receptive
    field of size 1024"); ``stacks`` may be a symbol: rf = 1 + 1023·stacks. Each layer: a causal
    dilated conv to 2R channels, the gated activation, a 1x1 conv back to R, added to its input.
    The input conv is 1x1 (as in r9y9's wavenet_vocoder), so it adds nothing to the receptive
    field. Not modelled: the per-layer 1x1 *skip* convolutions and their sum (a chain holds one
    output per layer); their outputs have the receptive field of the last layer, which the head
    sees here too, but their ``S·R + S`` parameters per layer are not counted. The output head
    is ReLU, 1x1 conv to S, ReLU, 1x1 conv to the classes. The default input, 4096 samples
    (a quarter second at 16 kHz), is arbitrary: the network takes any length.
    """
    i = symbols("i", nonnegative=True)
    R = residual_channels

    def layer(i):
        body = Sequential(causal_conv(2, 2**i, 2 * R, name="dilated"), GatedActivation(name="gate"),
                          Conv((1,), out_channels=R, name="residual"), name="")
        return Residual(body, Sequential(Identity(name="identity"), name=""))

    stack = Repeat(layer, layers_per_stack, index=i)
    return Sequential(
        Conv((1,), out_channels=R, name="input_conv"), Repeat(stack, stacks, name="stacks"),
        ReLU(name="relu1"), Conv((1,), out_channels=skip_channels, name="output_conv1"), ReLU(name="relu2"),
        Conv((1,), out_channels=classes, name="output_conv2"), name="wavenet")


# --------------------------------------------------------------------------- TCN
def temporal_block(c_out, k, dilation, downsample, name=None):
    """locuslab/TCN ``TemporalBlock``: two causal dilated convs (``Chomp1d`` of the symmetric
    padding = left padding only), ReLU, dropout; ``relu(out + res)`` with a 1x1 conv shortcut
    when the channels change."""
    body = Sequential(causal_conv(k, dilation, c_out, name="conv1"), ReLU(name="relu1"), Dropout(name="dropout1"),
                      causal_conv(k, dilation, c_out, name="conv2"), ReLU(name="relu2"), Dropout(name="dropout2"),
                      name="")
    shortcut = (Sequential(Conv((1,), out_channels=c_out), name="downsample") if downsample
                else Sequential(Identity(name="identity"), name=""))
    return Sequential(Residual(body, shortcut, name=""), ReLU(name="relu"), name=name)


@register("tcn", input_size=(1000,), in_channels=1, ndim=1, family="papers",
          source="Bai, Kolter, Koltun, 'An Empirical Evaluation of Generic Convolutional and Recurrent "
                 "Networks for Sequence Modeling', arXiv 1803.01271 (2018); locuslab/TCN TCN/tcn.py")
def tcn(levels=8, kernel_size=7, channels=25, in_channels=1):
    """TCN: ``levels`` residual temporal blocks with dilation 2^i, two causal convs each.

    Receptive field ``1 + 2(k - 1)(2^L - 1)`` for kernel ``k`` and ``L`` levels; both may be
    symbols (the levels after the first are a Repeat over the level index). Defaults: the
    sequential-MNIST setting of the paper (8 levels, kernel 7, 25 channels). The weight
    normalisation's per-channel gains are not counted as parameters (rfsym counts the weights and
    biases of the convolutions).
    """
    i = symbols("i", nonnegative=True)
    first = temporal_block(channels, kernel_size, 1, downsample=in_channels != channels, name="0")
    rest = Repeat(lambda i: temporal_block(channels, kernel_size, 2 ** (i + 1), False),
                  levels - 1, index=i, name="levels")
    return Sequential(Sequential(first, rest, name="network"), name="tcn")
