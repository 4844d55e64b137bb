"""The TF-slim networks of Araujo, Norris and Sim's receptive-field table.

"Computing Receptive Fields of Convolutional Neural Networks", Distill 2019, and the table the
authors computed with their library: google-research/receptive_field
``receptive_field/RECEPTIVE_FIELD_TABLE.md`` (models from tensorflow/models ``research/slim/nets``).

TensorFlow's ``padding='SAME'`` is ``Conv(..., padding="tf_same")`` here: its left padding depends
on the input size, so the effective padding of these networks depends on the resolution (the
table lists 224 and 321, and "None" where the padding is undefined without an input size).
``'VALID'`` is padding 0.

Layer names are slim's end-point names (``vgg_16/conv5/conv5_3``, ``Mixed_6b``,
``resnet_v1_50/block3``, ``Conv2d_13_pointwise``); the activation and normalisation inside an
end-point get TensorFlow's op names (``.../Relu``, ``.../BatchNorm``).

Parameter counts follow rfsym's convention (BatchNorm = 2C, gamma and beta); slim's batch norm
has no gamma in some arg scopes (``scale=False``), so parameter counts of BatchNorm models are an
upper bound of the checkpoint's trainable variables. The table reproduced here is geometric.
"""

from __future__ import annotations

from ..layers import (
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    Dropout,
    GlobalAvgPool,
    Identity,
    MaxPool,
    ReLU,
    ReLU6,
    Residual,
    Sequential,
)
from . import register

__all__ = ["slim_alexnet_v2", "slim_vgg_16", "slim_mobilenet_v1", "slim_resnet_v1_50", "slim_resnet_v1_101",
           "slim_inception_v3"]

_TABLE = "google-research/receptive_field receptive_field/RECEPTIVE_FIELD_TABLE.md"
_SLIM = "tensorflow/models research/slim/nets/"
SAME = "tf_same"


def _conv(name, k, c_out, stride=1, padding=SAME, act=ReLU, bn=False, groups=1):
    """slim.conv2d: convolution, optional batch norm (then no bias), activation."""
    layers = [Conv(k, stride=stride, padding=padding, out_channels=c_out, groups=groups, bias=not bn,
                   name=name)]
    if bn:
        layers.append(BatchNorm(name=f"{name}/BatchNorm"))
    if act is not None:
        layers.append(act(name=f"{name}/{act.__name__}"))
    return layers


@register("slim_alexnet_v2", input_size=224, family="slim", features="alexnet_v2/pool5",
          source="Krizhevsky 2014 (arXiv 1404.5997); " + _SLIM + "alexnet.py; " + _TABLE)
def slim_alexnet_v2(num_classes=1000):
    """TF-slim alexnet_v2: conv1 VALID, stride-1 convs SAME, pools VALID, fc layers as convs.

    Araujo's table: pool5 receptive field 195, effective stride 32, effective padding 64 at any
    resolution (the SAME convs have stride 1, so their padding does not depend on the input).
    """
    s = "alexnet_v2/"
    layers = [
        *_conv(s + "conv1", 11, 64, stride=4, padding="valid"), MaxPool(3, stride=2, name=s + "pool1"),
        *_conv(s + "conv2", 5, 192), MaxPool(3, stride=2, name=s + "pool2"),
        *_conv(s + "conv3", 3, 384), *_conv(s + "conv4", 3, 384), *_conv(s + "conv5", 3, 256),
        MaxPool(3, stride=2, name=s + "pool5"),
        *_conv(s + "fc6", 5, 4096, padding="valid"), Dropout(name=s + "dropout6"),
        *_conv(s + "fc7", 1, 4096), Dropout(name=s + "dropout7"),
        *_conv(s + "fc8", 1, num_classes, act=None),
    ]
    return Sequential(*layers, name="alexnet_v2")


@register("slim_vgg_16", input_size=224, family="slim", features="vgg_16/pool5",
          source="Simonyan, Zisserman, ICLR 2015; " + _SLIM + "vgg.py; " + _TABLE)
def slim_vgg_16(num_classes=1000):
    """TF-slim vgg_16: 3x3 SAME convs, 2x2 VALID max pools, fc6 a 7x7 VALID conv.

    Araujo's table: pool5 receptive field 212, effective stride 32, effective padding 90.
    """
    layers = []
    for block, (reps, width) in enumerate(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), start=1):
        for i in range(1, reps + 1):
            layers += _conv(f"vgg_16/conv{block}/conv{block}_{i}", 3, width)
        layers.append(MaxPool(2, stride=2, name=f"vgg_16/pool{block}"))
    layers += [*_conv("vgg_16/fc6", 7, 4096, padding="valid"), Dropout(name="vgg_16/dropout6"),
               *_conv("vgg_16/fc7", 1, 4096), Dropout(name="vgg_16/dropout7"),
               *_conv("vgg_16/fc8", 1, num_classes, act=None)]
    return Sequential(*layers, name="vgg_16")


#: slim's MOBILENETV1_CONV_DEFS after the first 3x3 stride-2 conv: (stride, depth) of each
#: depthwise-separable layer
MOBILENET_V1_DEFS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512),
                     (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))


@register("slim_mobilenet_v1", input_size=224, family="slim", features="Conv2d_13_pointwise",
          source="Howard et al., 'MobileNets', arXiv 1704.04861 (2017); " + _SLIM + "mobilenet_v1.py; "
                 + _TABLE)
def slim_mobilenet_v1(num_classes=1000):
    """TF-slim mobilenet_v1 (depth multiplier 1): SAME padding everywhere, BatchNorm and ReLU6.

    The stride-2 layers' SAME padding depends on the input size: Araujo's table gives effective
    padding 126 at Conv2d_13_pointwise for 224 and 157 for 321 (receptive field 315, stride 32).
    The head's 7x7 VALID average pool is slim's kernel for inputs of 224 and more.
    """
    layers = _conv("Conv2d_0", 3, 32, stride=2, act=ReLU6, bn=True)
    c = 32
    for i, (stride, depth) in enumerate(MOBILENET_V1_DEFS, start=1):
        layers += _conv(f"Conv2d_{i}_depthwise", 3, c, stride=stride, act=ReLU6, bn=True, groups=c)
        layers += _conv(f"Conv2d_{i}_pointwise", 1, depth, act=ReLU6, bn=True)
        c = depth
    layers += [AvgPool(7, stride=2, name="AvgPool_1a"), Dropout(name="Dropout_1b"),
               *_conv("Conv2d_1c_1x1", 1, num_classes, act=None)]
    return Sequential(*layers, name="MobilenetV1")


# --------------------------------------------------------------------------- resnet_v1
def _conv2d_same(name, k, c_out, stride):
    """slim ``resnet_utils.conv2d_same``: SAME for stride 1; for stride > 1 explicit padding
    ``(k - 1)//2`` before and the rest after, then VALID (independent of the input size)."""
    if stride == 1:
        return _conv(name, k, c_out, bn=True)
    total = k - 1
    return _conv(name, k, c_out, stride=stride, padding=((total // 2, total - total // 2),) * 2, bn=True)


def _bottleneck_v1(scope, depth_in, depth, bottleneck, stride):
    """slim ``resnet_v1.bottleneck``: conv1 1x1, conv2 3x3 (``conv2d_same``, carries the stride),
    conv3 1x1 without activation; shortcut = subsample (1x1 max pool with the stride) when the
    depth is unchanged, else a strided 1x1 conv; ``relu(shortcut + residual)``."""
    body = Sequential(*_conv("conv1", 1, bottleneck, bn=True), *_conv2d_same("conv2", 3, bottleneck, stride),
                      *_conv("conv3", 1, depth, bn=True, act=None), name="")
    if depth == depth_in:
        shortcut = (Sequential(Identity(name="shortcut"), name="") if stride == 1 else
                    Sequential(MaxPool(1, stride=stride, padding=SAME, name="shortcut"), name=""))
    else:
        shortcut = Sequential(*_conv("shortcut", 1, depth, stride=stride, bn=True, act=None), name="")
    return [Residual(body, shortcut, name=scope), ReLU(name=f"{scope}/Relu")]


def _resnet_v1(scope, units, num_classes):
    layers = [*_conv2d_same(f"{scope}/conv1", 7, 64, 2), MaxPool(3, stride=2, padding=SAME, name=f"{scope}/pool1")]
    depth_in = 64
    for b, (base, n, stride) in enumerate(zip((64, 128, 256, 512), units, (2, 2, 2, 1)), start=1):
        for u in range(1, n + 1):
            layers += _bottleneck_v1(f"{scope}/block{b}/unit_{u}/bottleneck_v1", depth_in, base * 4, base,
                                     stride if u == n else 1)
            depth_in = base * 4
        layers.append(Identity(name=f"{scope}/block{b}"))  # slim's end-point: the block's output
    layers.append(GlobalAvgPool(name=f"{scope}/pool5"))
    if num_classes:
        layers += _conv(f"{scope}/logits", 1, num_classes, act=None)
    return Sequential(*layers, name=scope)


_RESNET = ("He et al., 'Deep Residual Learning for Image Recognition', CVPR 2016; " + _SLIM + "resnet_v1.py, "
           + _SLIM + "resnet_utils.py; " + _TABLE)
_RESNET_DOC = """

    slim puts each block's stride on its *last* unit (on the 3x3 ``conv2``), so ``block1`` already
    has effective stride 8 and ``block4`` keeps stride 32. The root max pool ``pool1`` is SAME,
    so the effective padding depends on the input size (15 at 224, 17 at 321 for ``block1``).
    ``resnet_v1_*/blockN`` is an Identity marking the block's output (slim's end-point); inside
    a unit rfsym joins names with a dot: ``.../unit_1/bottleneck_v1.conv2``. ``num_classes=None``
    (slim's default) stops at the global pool."""


@register("slim_resnet_v1_50", input_size=224, family="slim", features="resnet_v1_50/block4", source=_RESNET)
def slim_resnet_v1_50(num_classes=None):
    """TF-slim resnet_v1_50: bottleneck units [3, 4, 6, 3], stride on the last unit of a block."""
    return _resnet_v1("resnet_v1_50", (3, 4, 6, 3), num_classes)


@register("slim_resnet_v1_101", input_size=224, family="slim", features="resnet_v1_101/block4",
          source=_RESNET)
def slim_resnet_v1_101(num_classes=None):
    """TF-slim resnet_v1_101: bottleneck units [3, 4, 23, 3], stride on the last unit of a block."""
    return _resnet_v1("resnet_v1_101", (3, 4, 23, 3), num_classes)


slim_resnet_v1_50.__doc__ += _RESNET_DOC
slim_resnet_v1_101.__doc__ += _RESNET_DOC


# --------------------------------------------------------------------------- inception_v3
def _unit(name, c_out, k, stride=1, padding=SAME):
    """One slim conv of an Inception block (BatchNorm, ReLU)."""
    return _conv(name, k, c_out, stride=stride, padding=padding, bn=True)


def _branches(name, *branches):
    return Concat(*(Sequential(*layers, name=f"Branch_{b}") for b, layers in enumerate(branches)), name=name)


def _avg_branch(c):
    return [AvgPool(3, stride=1, padding=SAME, name="AvgPool_0a_3x3"), *_unit("Conv2d_0b_1x1", c, 1)]


def _mixed_5(name, pool, second_1x1=False):
    branch_1 = ([*_unit("Conv2d_0b_1x1", 48, 1), *_unit("Conv_1_0c_5x5", 64, 5)] if second_1x1 else
                [*_unit("Conv2d_0a_1x1", 48, 1), *_unit("Conv2d_0b_5x5", 64, 5)])
    return _branches(name, _unit("Conv2d_0a_1x1", 64, 1), branch_1,
                     [*_unit("Conv2d_0a_1x1", 64, 1), *_unit("Conv2d_0b_3x3", 96, 3), *_unit("Conv2d_0c_3x3", 96, 3)],
                     _avg_branch(pool))


def _mixed_6(name, c7):
    return _branches(
        name, _unit("Conv2d_0a_1x1", 192, 1),
        [*_unit("Conv2d_0a_1x1", c7, 1), *_unit("Conv2d_0b_1x7", c7, (1, 7)), *_unit("Conv2d_0c_7x1", 192, (7, 1))],
        [*_unit("Conv2d_0a_1x1", c7, 1), *_unit("Conv2d_0b_7x1", c7, (7, 1)), *_unit("Conv2d_0c_1x7", c7, (1, 7)),
         *_unit("Conv2d_0d_7x1", c7, (7, 1)), *_unit("Conv2d_0e_1x7", 192, (1, 7))],
        _avg_branch(192))


def _mixed_7(name, b1_second):
    def split(first, second):
        return [Concat(Sequential(*_unit(first, 384, (1, 3)), name=""),
                       Sequential(*_unit(second, 384, (3, 1)), name=""), name="")]

    return _branches(
        name, _unit("Conv2d_0a_1x1", 320, 1),
        [*_unit("Conv2d_0a_1x1", 384, 1), *split("Conv2d_0b_1x3", b1_second)],
        [*_unit("Conv2d_0a_1x1", 448, 1), *_unit("Conv2d_0b_3x3", 384, 3), *split("Conv2d_0c_1x3", "Conv2d_0d_3x1")],
        _avg_branch(192))


@register("slim_inception_v3", input_size=299, family="slim", features="Mixed_7c",
          source="Szegedy et al., 'Rethinking the Inception Architecture for Computer Vision', CVPR 2016; "
                 + _SLIM + "inception_v3.py; " + _TABLE)
def slim_inception_v3(num_classes=1000):
    """TF-slim inception_v3: VALID stem, SAME stride-1 convs inside the Mixed blocks.

    Every SAME convolution and pool here has stride 1, so no padding depends on the input size
    (Araujo's table gives the same effective padding at every resolution). The head's average
    pool is global (slim's 8x8 VALID pool on the 8x8 map at 299; slim shrinks it for smaller
    inputs); the AuxLogits head (training only) is not included. Inside a Mixed block rfsym joins
    names with a dot: slim's ``Mixed_6b/Branch_1/Conv2d_0b_1x7`` is ``Mixed_6b.Branch_1.Conv2d_0b_1x7``.
    """
    v = "valid"
    layers = [
        *_unit("Conv2d_1a_3x3", 32, 3, stride=2, padding=v), *_unit("Conv2d_2a_3x3", 32, 3, padding=v),
        *_unit("Conv2d_2b_3x3", 64, 3), MaxPool(3, stride=2, name="MaxPool_3a_3x3"),
        *_unit("Conv2d_3b_1x1", 80, 1, padding=v), *_unit("Conv2d_4a_3x3", 192, 3, padding=v),
        MaxPool(3, stride=2, name="MaxPool_5a_3x3"),
        _mixed_5("Mixed_5b", 32), _mixed_5("Mixed_5c", 64, second_1x1=True), _mixed_5("Mixed_5d", 64),
        _branches("Mixed_6a", _unit("Conv2d_1a_1x1", 384, 3, stride=2, padding=v),
                  [*_unit("Conv2d_0a_1x1", 64, 1), *_unit("Conv2d_0b_3x3", 96, 3),
                   *_unit("Conv2d_1a_1x1", 96, 3, stride=2, padding=v)],
                  [MaxPool(3, stride=2, name="MaxPool_1a_3x3")]),
        _mixed_6("Mixed_6b", 128), _mixed_6("Mixed_6c", 160), _mixed_6("Mixed_6d", 160), _mixed_6("Mixed_6e", 192),
        _branches("Mixed_7a", [*_unit("Conv2d_0a_1x1", 192, 1), *_unit("Conv2d_1a_3x3", 320, 3, stride=2, padding=v)],
                  [*_unit("Conv2d_0a_1x1", 192, 1), *_unit("Conv2d_0b_1x7", 192, (1, 7)),
                   *_unit("Conv2d_0c_7x1", 192, (7, 1)), *_unit("Conv2d_1a_3x3", 192, 3, stride=2, padding=v)],
                  [MaxPool(3, stride=2, name="MaxPool_1a_3x3")]),
        _mixed_7("Mixed_7b", "Conv2d_0b_3x1"), _mixed_7("Mixed_7c", "Conv2d_0c_3x1"),
        GlobalAvgPool(name="Logits/AvgPool_1a_8x8"), Dropout(name="Logits/Dropout_1b"),
        *_conv("Logits/Conv2d_1c_1x1", 1, num_classes, act=None),
    ]
    return Sequential(*layers, name="InceptionV3")
