"""torchvision's ImageNet classifiers, transcribed module by module.

Layer names are torchvision's module paths (``named_modules()``): ``features.0``, ``layer4.2.conv3``,
``Mixed_6b.branch7x7_1.conv``. Functional operations that have no module in torchvision (the
flatten before the classifier, the pools inside Inception blocks) get a descriptive name.

Counting conventions are torchvision's (see ``REFERENCE.md``): parameters are ``sum(p.numel())``
(BatchNorm's affine weight and bias, not its running statistics); the weights' published "GFLOPS"
(``_ops`` in the weights' metadata) are MACs of convolutions and linear layers, which is what
``Result.macs`` counts.

Sources: pytorch/vision ``torchvision/models/{alexnet,vgg,resnet,mobilenetv2,efficientnet,
inception}.py``.
"""

from __future__ import annotations

from ..layers import (
    AdaptiveAvgPool, BatchNorm, Conv, Dropout, Flatten, Linear, MaxPool, ReLU, Sequential,
)
from . import register

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
