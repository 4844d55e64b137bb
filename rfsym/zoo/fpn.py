"""A feature pyramid: torchvision's ResNet-50 FPN backbone, a DAG with five outputs.

``torchvision.models.detection.backbone_utils.resnet_fpn_backbone("resnet50")`` is a ResNet-50
body (``body.conv1`` .. ``body.layer4``, FrozenBatchNorm: no trainable parameters) whose four
stages feed a :class:`FeaturePyramidNetwork` (Lin et al. 2017): a 1x1 lateral convolution per
stage (``fpn.inner_blocks.i.0``), a top-down path that upsamples the coarser map by 2 (nearest)
and adds it to the lateral, and a 3x3 convolution per level (``fpn.layer_blocks.i.0``), plus
``LastLevelMaxPool`` (``max_pool2d(P5, 1, stride 2)``). Its outputs are named as torchvision's
``OrderedDict``: ``"0"`` .. ``"3"`` (P2-P5) and ``"pool"``; here ``"0"`` .. ``"3"`` are identity
nodes after the level convolutions.

The top-down sum makes every level's receptive field that of the coarsest stage it reads:
P2 to P5 all see what ``layer4`` sees, with jumps 4, 8, 16 and 32.

>>> from rfsym import analyze
>>> r = analyze(resnet50_fpn(), input_size=224)
>>> [(name, out.jump, out.out_size) for name, out in r.outputs.items()]
[('0', 4, 56), ('1', 8, 28), ('2', 16, 14), ('3', 32, 7), ('pool', 64, 4)]
"""

from __future__ import annotations

import dataclasses

from ..layers import BatchNorm, Conv, Graph, Identity, MaxPool, ReLU, Residual, Sequential, Upsample
from . import register
from .torchvision import bottleneck, resnet_layer

__all__ = ["resnet50_fpn", "frozen_batchnorm"]

_SOURCE = ("Lin et al., 'Feature Pyramid Networks for Object Detection', CVPR 2017; pytorch/vision "
           "torchvision/models/detection/backbone_utils.py (resnet_fpn_backbone) and torchvision/ops/"
           "feature_pyramid_network.py")


def frozen_batchnorm(layer):
    """``layer`` with every BatchNorm frozen (torchvision's ``FrozenBatchNorm2d``: the affine
    weight and bias are buffers, so no trainable parameters)."""
    if isinstance(layer, BatchNorm):
        return dataclasses.replace(layer, affine=False)
    if isinstance(layer, Sequential):
        return Sequential(*(frozen_batchnorm(x) for x in layer.layers), name=layer.name)
    if isinstance(layer, Residual):
        return Residual(frozen_batchnorm(layer.body), frozen_batchnorm(layer.shortcut), name=layer.name)
    return layer


@register("resnet50_fpn", input_size=224, family="detection", source=_SOURCE, features="3")
def resnet50_fpn(out_channels=256):
    """torchvision's ResNet-50 FPN backbone (``resnet_fpn_backbone("resnet50")``): outputs P2-P5
    (``"0"`` .. ``"3"``) and ``"pool"``; input sizes divisible by 32 (the top-down path doubles).
    """
    nodes = [("body.conv1", Conv(7, stride=2, padding=3, in_channels=3, out_channels=64, bias=False), "input"),
             ("body.bn1", BatchNorm(64, affine=False), "body.conv1"),
             ("body.relu", ReLU(), "body.bn1"),
             ("body.maxpool", MaxPool(3, stride=2, padding=1), "body.relu")]
    x, inplanes, stages = "body.maxpool", 64, []
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        stage = resnet_layer(bottleneck, planes, n, 1 if i == 0 else 2, inplanes, f"layer{i + 1}")
        name = f"body.layer{i + 1}"
        nodes.append((name, frozen_batchnorm(stage), x))
        x, inplanes = name, planes * 4
        stages.append((name, inplanes))
    last = None  # the top-down path: P5's lateral, then lateral + upsampled coarser sum
    for i in range(3, -1, -1):
        stage, c = stages[i]
        lateral = f"fpn.inner_blocks.{i}.0"
        nodes.append((lateral, Conv(1, in_channels=c, out_channels=out_channels), stage))
        if last is None:
            last = lateral
        else:
            up = f"fpn.interpolate.{i}"  # F.interpolate(last_inner, size=lateral's, mode="nearest")
            nodes.append((up, Upsample(2), last))
            last = f"fpn.add.{i}"
            nodes.append((last, "add", (lateral, up)))
        nodes.append((f"fpn.layer_blocks.{i}.0", Conv(3, padding=1, in_channels=out_channels,
                                                      out_channels=out_channels), last))
        nodes.append((str(i), Identity(), f"fpn.layer_blocks.{i}.0"))
    nodes.append(("pool", MaxPool(1, stride=2), "3"))  # LastLevelMaxPool: F.max_pool2d(x, 1, 2, 0)
    return Graph(*nodes, outputs=("0", "1", "2", "3", "pool"), features="3")
