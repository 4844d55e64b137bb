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

from ..layers import AvgPool, BatchNorm, Conv, Dropout, MaxPool, ReLU, ReLU6, Sequential
from . import register

__all__ = ["slim_alexnet_v2", "slim_vgg_16", "slim_mobilenet_v1"]

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
