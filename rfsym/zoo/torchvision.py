"""torchvision's ImageNet classifiers, transcribed module by module.

Layer names are torchvision's module paths (``named_modules()``): ``features.0``, ``layer4.2.conv3``,
``Mixed_6b.branch7x7_1.conv``. Functional operations that have no module in torchvision (the
flatten before the classifier, the pools inside Inception blocks) get a descriptive name.

Counting conventions are torchvision's: parameters are ``sum(p.numel())``
(BatchNorm's affine weight and bias, not its running statistics); the weights' published "GFLOPS"
(``_ops`` in the weights' metadata) are MACs of convolutions and linear layers, which is what
``Result.macs`` counts.

Sources: pytorch/vision ``torchvision/models/{alexnet,vgg,resnet,mobilenetv2,efficientnet,
inception}.py``.
"""

from __future__ import annotations

import sympy as sp

from ..layers import (
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool,
    ReLU,
    ReLU6,
    Repeat,
    Residual,
    Sequential,
    SiLU,
)
from . import register
from .blocks import SqueezeExcitation

__all__ = ["alexnet", "vgg11", "vgg16", "vgg19", "VGG_CFGS", "vgg_features"]

_TV = "pytorch/vision torchvision/models/"


@register("alexnet", input_size=224, family="torchvision", features="features.12",
          source="Krizhevsky, 'One weird trick for parallelizing CNNs', arXiv 1404.5997 (2014); "
                 + _TV + "alexnet.py")
def alexnet(num_classes=1000):
    """torchvision AlexNet (the 'one weird trick' variant: 64-192-384-256-256 channels, no LRN).

    Receptive field 195 at ``features.12`` like TF-slim's alexnet_v2, but the effective padding
    is 66 there (torchvision pads conv1 by 2) against slim's 64 (conv1 VALID).
    """
    features = Sequential(
        Conv(11, stride=4, padding=2, in_channels=3, out_channels=64), ReLU(), MaxPool(3, stride=2),
        Conv(5, padding=2, out_channels=192), ReLU(), MaxPool(3, stride=2),
        Conv(3, padding=1, out_channels=384), ReLU(),
        Conv(3, padding=1, out_channels=256), ReLU(),
        Conv(3, padding=1, out_channels=256), ReLU(), MaxPool(3, stride=2),
        name="features")
    classifier = Sequential(
        Dropout(), Linear(256 * 6 * 6, 4096), ReLU(),
        Dropout(), Linear(4096, 4096), ReLU(),
        Linear(4096, num_classes), name="classifier")
    return Sequential(features, AdaptiveAvgPool((6, 6), name="avgpool"), Flatten(name="flatten"),
                      classifier, name="alexnet")


#: torchvision's VGG configurations: output channels of each 3x3 conv, "M" for a 2x2 max pool
VGG_CFGS = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512,
          512, "M"),
}


def vgg_features(cfg, batch_norm=False, in_channels=3):
    """torchvision's ``make_layers``: the ``features`` Sequential of a VGG configuration."""
    layers = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(MaxPool(2, stride=2))
        else:
            layers.append(Conv(3, padding=1, in_channels=c, out_channels=v))
            if batch_norm:
                layers.append(BatchNorm(v))
            layers.append(ReLU())
            c = v
    return Sequential(*layers, name="features")


def _vgg(cfg, name, num_classes, batch_norm=False):
    classifier = Sequential(
        Linear(512 * 7 * 7, 4096), ReLU(), Dropout(),
        Linear(4096, 4096), ReLU(), Dropout(),
        Linear(4096, num_classes), name="classifier")
    return Sequential(vgg_features(VGG_CFGS[cfg], batch_norm), AdaptiveAvgPool((7, 7), name="avgpool"),
                      Flatten(name="flatten"), classifier, name=name)


_VGG_SOURCE = ("Simonyan, Zisserman, 'Very Deep Convolutional Networks for Large-Scale Image "
               "Recognition', ICLR 2015; " + _TV + "vgg.py")


@register("vgg11", input_size=224, family="torchvision", source=_VGG_SOURCE, features="features.20")
def vgg11(num_classes=1000):
    """torchvision VGG-11 (configuration A)."""
    return _vgg("A", "vgg11", num_classes)


@register("vgg16", input_size=224, family="torchvision", source=_VGG_SOURCE, features="features.30")
def vgg16(num_classes=1000):
    """torchvision VGG-16 (configuration D)."""
    return _vgg("D", "vgg16", num_classes)


@register("vgg19", input_size=224, family="torchvision", source=_VGG_SOURCE, features="features.36")
def vgg19(num_classes=1000):
    """torchvision VGG-19 (configuration E)."""
    return _vgg("E", "vgg19", num_classes)


# --------------------------------------------------------------------------- ResNet
def _bn_relu_conv(name, k, c_out, stride=1, padding=0, groups=1):
    return Conv(k, stride=stride, padding=padding, out_channels=c_out, groups=groups, bias=False, name=name)


def _shortcut(downsample, c_out, stride):
    if downsample:
        return Sequential(Conv(1, stride=stride, out_channels=c_out, bias=False), BatchNorm(c_out),
                          name="downsample")
    return Sequential(Identity(name="identity"), name="")


def basic_block(planes, stride=1, downsample=False, name=None):
    """torchvision ``BasicBlock``: two 3x3 convs (the first strided), ``relu(out + identity)``."""
    body = Sequential(
        _bn_relu_conv("conv1", 3, planes, stride, 1), BatchNorm(planes, name="bn1"), ReLU(name="relu"),
        _bn_relu_conv("conv2", 3, planes, 1, 1), BatchNorm(planes, name="bn2"), name="")
    return Sequential(Residual(body, _shortcut(downsample, planes, stride), name=""), ReLU(name="relu"),
                      name=name)


def bottleneck(planes, stride=1, downsample=False, name=None):
    """torchvision ``Bottleneck`` (ResNet v1.5: the stride sits on the 3x3 conv ``conv2``)."""
    out = planes * 4
    body = Sequential(
        _bn_relu_conv("conv1", 1, planes), BatchNorm(planes, name="bn1"), ReLU(name="relu"),
        _bn_relu_conv("conv2", 3, planes, stride, 1), BatchNorm(planes, name="bn2"), ReLU(name="relu"),
        _bn_relu_conv("conv3", 1, out), BatchNorm(out, name="bn3"), name="")
    return Sequential(Residual(body, _shortcut(downsample, out, stride), name=""), ReLU(name="relu"),
                      name=name)


def resnet_layer(block, planes, blocks, stride, inplanes, name):
    """torchvision ``_make_layer``: the first block takes the stride (and a downsample shortcut when
    the shape changes); ``blocks`` may be a symbol (the remaining ``blocks - 1`` are a Repeat)."""
    expansion = 4 if block is bottleneck else 1
    first = block(planes, stride, stride != 1 or inplanes != planes * expansion, name="0")
    rest = blocks - 1
    if isinstance(rest, int):
        items = [first] + [block(planes, name=str(i)) for i in range(1, blocks)]
    else:
        items = [first, Repeat(block(planes, name=""), rest, name="rest")]
    return Sequential(*items, name=name)


def resnet_network(block, layers, num_classes=1000, name="resnet"):
    """torchvision ``ResNet(block, layers)``: stem, four stages, global pool, fc."""
    expansion = 4 if block is bottleneck else 1
    stages, inplanes = [], 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
        stages.append(resnet_layer(block, planes, n, 1 if i == 0 else 2, inplanes, f"layer{i + 1}"))
        inplanes = planes * expansion
    return Sequential(
        Conv(7, stride=2, padding=3, in_channels=3, out_channels=64, bias=False, name="conv1"),
        BatchNorm(64, name="bn1"), ReLU(name="relu"), MaxPool(3, stride=2, padding=1, name="maxpool"),
        *stages, AdaptiveAvgPool(1, name="avgpool"), Flatten(name="flatten"),
        Linear(512 * expansion, num_classes, name="fc"), name=name)


_RESNET_SOURCE = ("He, Zhang, Ren, Sun, 'Deep Residual Learning for Image Recognition', CVPR 2016; "
                  + _TV + "resnet.py")
_RESNET_NOTE = """

    torchvision's v1.5 puts the stride of a downsampling bottleneck on ``conv2`` (3x3) and the
    stride of each stage on its *first* block; TF-slim's resnet_v1 puts it on the *last* unit of
    the previous block, which is why slim's resnet_v1_50/block4 has rf 483 and torchvision's
    ``layer4`` 427 (compare ``slim_resnet_v1_50``)."""


def _register_resnet(name, block, layers):
    def build(num_classes=1000):
        return resnet_network(block, layers, num_classes, name)

    kind = "BasicBlock" if block is basic_block else "Bottleneck"
    build.__doc__ = f"torchvision {name.replace('resnet', 'ResNet-')}: {kind} stages {list(layers)}." + \
        (_RESNET_NOTE if name == "resnet50" else "")
    build.__name__ = name
    register(name, input_size=224, family="torchvision", source=_RESNET_SOURCE,
             features=f"layer4.{layers[3] - 1}.relu")(build)
    return build


resnet18 = _register_resnet("resnet18", basic_block, (2, 2, 2, 2))
resnet34 = _register_resnet("resnet34", basic_block, (3, 4, 6, 3))
resnet50 = _register_resnet("resnet50", bottleneck, (3, 4, 6, 3))
resnet101 = _register_resnet("resnet101", bottleneck, (3, 4, 23, 3))
resnet152 = _register_resnet("resnet152", bottleneck, (3, 8, 36, 3))


# --------------------------------------------------------------------------- MobileNetV2
def conv_norm_act(k, c_out, stride=1, groups=1, act=ReLU6, name=None):
    """torchvision ``Conv2dNormActivation``: conv (padding (k-1)//2, no bias), BatchNorm, act."""
    layers = [Conv(k, stride=stride, padding=(k - 1) // 2, out_channels=c_out, groups=groups, bias=False),
              BatchNorm(c_out)]
    if act is not None:
        layers.append(act())
    return Sequential(*layers, name=name)


#: torchvision's inverted_residual_setting: expansion t, channels c, repeats n, first stride s
MOBILENET_V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                        (6, 160, 3, 2), (6, 320, 1, 1))


def inverted_residual(c_in, c_out, stride, t, name):
    """torchvision MobileNetV2 ``InvertedResidual``: 1x1 expand (t > 1), 3x3 depthwise, 1x1 linear
    projection; a residual connection when the stride is 1 and the channels agree."""
    hidden = c_in * t
    layers = [conv_norm_act(1, hidden)] if t != 1 else []
    layers += [conv_norm_act(3, hidden, stride, groups=hidden),
               Conv(1, out_channels=c_out, bias=False), BatchNorm(c_out)]
    conv = Sequential(*layers, name="conv")
    if stride == 1 and c_in == c_out:
        return Residual(conv, Sequential(Identity(name="identity"), name=""), name=name)
    return Sequential(conv, name=name)


@register("mobilenet_v2", input_size=224, family="torchvision", features="features.18.2",
          source="Sandler et al., 'MobileNetV2: Inverted Residuals and Linear Bottlenecks', CVPR 2018; "
                 + _TV + "mobilenetv2.py")
def mobilenet_v2(num_classes=1000):
    """torchvision MobileNetV2 (width 1.0): 17 inverted residual blocks between a 3x3 stem and a
    1x1 conv to 1280 channels."""
    blocks, c = [conv_norm_act(3, 32, 2, name="0")], 32
    for t, c_out, n, s in MOBILENET_V2_SETTING:
        for i in range(n):
            blocks.append(inverted_residual(c, c_out, s if i == 0 else 1, t, str(len(blocks))))
            c = c_out
    blocks.append(conv_norm_act(1, 1280, name=str(len(blocks))))
    return Sequential(
        Sequential(*blocks, name="features"), AdaptiveAvgPool(1, name="adaptive_avg_pool2d"),
        Flatten(name="flatten"), Sequential(Dropout(), Linear(1280, num_classes), name="classifier"),
        name="mobilenet_v2")


# --------------------------------------------------------------------------- EfficientNet
#: torchvision's EfficientNet-B0 stages: expand ratio, kernel, stride, in, out, layers
EFFICIENTNET_B0_STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                          (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                          (6, 3, 1, 192, 320, 1))


def make_divisible(v, divisor=8):
    """torchvision ``_make_divisible``: round to a multiple of 8, never down by more than 10 %.
    A symbolic value (formal width multipliers) is returned as it is."""
    if isinstance(v, sp.Basic) and v.free_symbols:
        return v
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mbconv(c_in, c_out, k, stride, t, name):
    """torchvision ``MBConv``: 1x1 expand (t > 1), kxk depthwise, squeeze-and-excitation (squeeze
    to ``max(1, c_in // 4)``, from the block's *input* channels), 1x1 projection; residual when
    the stride is 1 and the channels agree (stochastic depth is the identity at inference)."""
    hidden = make_divisible(c_in * t)
    layers = [conv_norm_act(1, hidden, act=SiLU)] if hidden != c_in else []
    layers += [conv_norm_act(k, hidden, stride, groups=hidden, act=SiLU),
               SqueezeExcitation(hidden, sp.Max(1, c_in // 4)),
               conv_norm_act(1, c_out, act=None)]
    block = Sequential(*layers, name="block")
    if stride == 1 and c_in == c_out:
        return Residual(block, Sequential(Identity(name="identity"), name=""), name=name)
    return Sequential(block, name=name)


def efficientnet_features(stages, width=1.0, depth=1.0, last=1280):
    """torchvision EfficientNet ``features``: stem, one Sequential per stage, 1x1 head conv."""
    from math import ceil

    stem = make_divisible(32 * width)
    feats = [conv_norm_act(3, stem, 2, act=SiLU, name="0")]
    c = stem
    for s, (t, k, stride, _, c_out, n) in enumerate(stages, start=1):
        c_out = make_divisible(c_out * width)
        blocks = []
        for i in range(int(ceil(n * depth))):
            blocks.append(mbconv(c, c_out, k, stride if i == 0 else 1, t, str(i)))
            c = c_out
        feats.append(Sequential(*blocks, name=str(s)))
    feats.append(conv_norm_act(1, last, act=SiLU, name=str(len(feats))))
    return Sequential(*feats, name="features")


@register("efficientnet_b0", input_size=224, family="torchvision", features="features.8.2",
          source="Tan, Le, 'EfficientNet: Rethinking Model Scaling for CNNs', ICML 2019; "
                 + _TV + "efficientnet.py")
def efficientnet_b0(num_classes=1000):
    """torchvision EfficientNet-B0 (global receptive field: its SE gates read the whole map).

    The squeeze-and-excitation gates read the whole feature map, so from the first MBConv
    block's gate on every output sees the whole input: jump 0 and, at 224, rf 229 (input
    positions -3 .. 225, the input with the stem's and first depthwise convolution's padding),
    the same for every later layer (see :class:`~rfsym.zoo.blocks.SqueezeExcitation`; the
    convolutional path alone would span 851 positions, most of them padding). Parameters and
    MACs are exact (the SE 1x1 convolutions count, as in torchvision's 0.386 GFLOPS).
    """
    return Sequential(
        efficientnet_features(EFFICIENTNET_B0_STAGES), AdaptiveAvgPool(1, name="avgpool"),
        Flatten(name="flatten"), Sequential(Dropout(), Linear(1280, num_classes), name="classifier"),
        name="efficientnet_b0")


# --------------------------------------------------------------------------- Inception v3
def basic_conv(name, c_out, k, stride=1, padding=0):
    """torchvision Inception ``BasicConv2d``: conv (no bias), BatchNorm (eps 0.001), ReLU."""
    return Sequential(Conv(k, stride=stride, padding=padding, out_channels=c_out, bias=False, name="conv"),
                      BatchNorm(c_out, name="bn"), ReLU(name="relu"), name=name)


def _branch(*layers):
    return Sequential(*layers, name="")


def _pool_branch(c_out):
    # F.avg_pool2d(x, kernel_size=3, stride=1, padding=1) then the branch_pool BasicConv2d
    return _branch(AvgPool(3, stride=1, padding=1, name="avg_pool2d"), basic_conv("branch_pool", c_out, 1))


def inception_a(name, pool_features):
    return Concat(
        _branch(basic_conv("branch1x1", 64, 1)),
        _branch(basic_conv("branch5x5_1", 48, 1), basic_conv("branch5x5_2", 64, 5, padding=2)),
        _branch(basic_conv("branch3x3dbl_1", 64, 1), basic_conv("branch3x3dbl_2", 96, 3, padding=1),
                basic_conv("branch3x3dbl_3", 96, 3, padding=1)),
        _pool_branch(pool_features), name=name)


def inception_b(name):
    return Concat(
        _branch(basic_conv("branch3x3", 384, 3, stride=2)),
        _branch(basic_conv("branch3x3dbl_1", 64, 1), basic_conv("branch3x3dbl_2", 96, 3, padding=1),
                basic_conv("branch3x3dbl_3", 96, 3, stride=2)),
        _branch(MaxPool(3, stride=2, name="max_pool2d")), name=name)


def inception_c(name, c7):
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
    return Concat(
        _branch(basic_conv("branch1x1", 192, 1)),
        _branch(basic_conv("branch7x7_1", c7, 1), basic_conv("branch7x7_2", c7, row[0], padding=row[1]),
                basic_conv("branch7x7_3", 192, col[0], padding=col[1])),
        _branch(basic_conv("branch7x7dbl_1", c7, 1), basic_conv("branch7x7dbl_2", c7, col[0], padding=col[1]),
                basic_conv("branch7x7dbl_3", c7, row[0], padding=row[1]),
                basic_conv("branch7x7dbl_4", c7, col[0], padding=col[1]),
                basic_conv("branch7x7dbl_5", 192, row[0], padding=row[1])),
        _pool_branch(192), name=name)


def inception_d(name):
    return Concat(
        _branch(basic_conv("branch3x3_1", 192, 1), basic_conv("branch3x3_2", 320, 3, stride=2)),
        _branch(basic_conv("branch7x7x3_1", 192, 1), basic_conv("branch7x7x3_2", 192, (1, 7), padding=(0, 3)),
                basic_conv("branch7x7x3_3", 192, (7, 1), padding=(3, 0)),
                basic_conv("branch7x7x3_4", 192, 3, stride=2)),
        _branch(MaxPool(3, stride=2, name="max_pool2d")), name=name)


def inception_e(name):
    def split(a, b):
        # torch.cat([branch_a(x), branch_b(x)], 1): no module of its own, so no name segment
        return Concat(_branch(basic_conv(a, 384, (1, 3), padding=(0, 1))),
                      _branch(basic_conv(b, 384, (3, 1), padding=(1, 0))), name="")

    return Concat(
        _branch(basic_conv("branch1x1", 320, 1)),
        _branch(basic_conv("branch3x3_1", 384, 1), split("branch3x3_2a", "branch3x3_2b")),
        _branch(basic_conv("branch3x3dbl_1", 448, 1), basic_conv("branch3x3dbl_2", 384, 3, padding=1),
                split("branch3x3dbl_3a", "branch3x3dbl_3b")),
        _pool_branch(192), name=name)


def inception_v3_aux_logits(num_classes=1000):
    """torchvision ``InceptionAux`` on ``Mixed_6e``'s 17x17x768 output (training only):
    5x5/3 average pool, 1x1 conv to 128, 5x5 conv to 768, global pool, fc."""
    return Sequential(
        AvgPool(5, stride=3, name="avg_pool2d"), basic_conv("conv0", 128, 1), basic_conv("conv1", 768, 5),
        AdaptiveAvgPool(1, name="adaptive_avg_pool2d"), Flatten(name="flatten"),
        Linear(768, num_classes, name="fc"), name="AuxLogits")


@register("inception_v3", input_size=299, family="torchvision", features="Mixed_7c",
          source="Szegedy et al., 'Rethinking the Inception Architecture for Computer Vision', CVPR 2016; "
                 + _TV + "inception.py")
def inception_v3(num_classes=1000):
    """torchvision Inception v3, inference graph (input 299; AuxLogits head not included).

    torchvision's ``inception_v3()`` keeps the training-only ``AuxLogits`` head, so its published
    ``num_params`` (27,161,264) includes the head's 3,326,696 parameters
    (:func:`inception_v3_aux_logits` on ``Mixed_6e``'s output) while the published 5.713 GFLOPS
    is the inference graph without it, which is what this network is (23,834,568 parameters).
    The pools inside the Inception blocks are functional in torchvision (``F.avg_pool2d``,
    ``F.max_pool2d``); they are named after the function here.
    """
    return Sequential(
        basic_conv("Conv2d_1a_3x3", 32, 3, stride=2), basic_conv("Conv2d_2a_3x3", 32, 3),
        basic_conv("Conv2d_2b_3x3", 64, 3, padding=1), MaxPool(3, stride=2, name="maxpool1"),
        basic_conv("Conv2d_3b_1x1", 80, 1), basic_conv("Conv2d_4a_3x3", 192, 3),
        MaxPool(3, stride=2, name="maxpool2"),
        inception_a("Mixed_5b", 32), inception_a("Mixed_5c", 64), inception_a("Mixed_5d", 64),
        inception_b("Mixed_6a"),
        inception_c("Mixed_6b", 128), inception_c("Mixed_6c", 160), inception_c("Mixed_6d", 160),
        inception_c("Mixed_6e", 192),
        inception_d("Mixed_7a"), inception_e("Mixed_7b"), inception_e("Mixed_7c"),
        AdaptiveAvgPool(1, name="avgpool"), Dropout(name="dropout"), Flatten(name="flatten"),
        Linear(2048, num_classes, name="fc"), name="inception_v3")
