"""DenseNets as DAGs: torchvision's densenet121/161/169/201 and a symbolic dense block.

In a dense block every layer reads the concatenation of the block input and of every earlier
layer's output (Huang et al. 2017), so one tensor feeds many concatenations: the network is a
DAG that is not series-parallel, written here as a :class:`~rfsym.layers.Graph` with the real
connectivity. Node names are torchvision's module paths (``features.denseblock1.denselayer2.conv1``,
``features.transition1.pool``, ``features.norm5``, ``classifier``); the functional
concatenations are ``features.denseblockB.denselayerL.cat`` (the input of layer ``L``, from its
``torch.cat(inputs, 1)``) and ``features.denseblockB`` (the block's output).

>>> from rfsym import analyze
>>> r = analyze(densenet121(), input_size=224)
>>> r.params, r.layer("features.norm5").rf, r.layer("features.norm5").jump
(7978856, 2071, 32)
"""

from __future__ import annotations

from ..layers import (
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    Flatten,
    Graph,
    Identity,
    Linear,
    MaxPool,
    ReLU,
    Repeat,
    Sequential,
)
from . import register

__all__ = ["densenet121", "densenet161", "densenet169", "densenet201", "densenet_network", "dense_layer",
           "densenet", "DENSENET_CONFIGS"]

#: torchvision's configurations: (growth rate, layers per block, initial features)
DENSENET_CONFIGS = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
}

_SOURCE = ("Huang, Liu, van der Maaten, Weinberger, 'Densely Connected Convolutional Networks', "
           "CVPR 2017; pytorch/vision torchvision/models/densenet.py")


def dense_layer(growth, bn_size=4, c_in=None, name=None):
    """torchvision ``_DenseLayer``: BatchNorm, ReLU, 1x1 conv to ``bn_size·growth``, BatchNorm, ReLU,
    3x3 conv (padding 1) to ``growth``; no biases. ``c_in`` may be None (taken from the input)."""
    return Sequential(
        BatchNorm(c_in, name="norm1"), ReLU(name="relu1"),
        Conv(1, in_channels=c_in, out_channels=bn_size * growth, bias=False, name="conv1"),
        BatchNorm(bn_size * growth, name="norm2"), ReLU(name="relu2"),
        Conv(3, padding=1, out_channels=growth, bias=False, name="conv2"), name=name)


def densenet_network(growth, blocks, init_features, bn_size=4, num_classes=1000):
    """torchvision ``DenseNet(growth_rate, block_config, num_init_features)`` as a Graph.

    Args:
        growth: the growth rate (channels each dense layer adds).
        blocks: layers per dense block.
        init_features: channels of the stem convolution.
        bn_size: the bottleneck width factor (``bn_size·growth`` channels after each 1x1 conv).
        num_classes: outputs of the classifier.

    Returns:
        The :class:`~rfsym.layers.Graph`; its ``features`` is ``features.norm5``.
    """
    nodes = [("features.conv0", Conv(7, stride=2, padding=3, in_channels=3, out_channels=init_features,
                                     bias=False), "input"),
             ("features.norm0", BatchNorm(init_features), "features.conv0"),
             ("features.relu0", ReLU(), "features.norm0"),
             ("features.pool0", MaxPool(3, stride=2, padding=1), "features.relu0")]
    x, c = "features.pool0", init_features
    for b, n in enumerate(blocks, start=1):
        block = f"features.denseblock{b}"
        feats = [x]  # every tensor of the block so far: its input and each layer's output
        for i in range(1, n + 1):
            path = f"{block}.denselayer{i}"
            src = feats[0]
            if len(feats) > 1:
                src = f"{path}.cat"
                nodes.append((src, "concat", tuple(feats)))
            nodes.append((path, dense_layer(growth, bn_size, c + (i - 1) * growth), src))
            feats.append(path)
        nodes.append((block, "concat", tuple(feats)))
        x, c = block, c + n * growth
        if b < len(blocks):
            t = f"features.transition{b}"
            nodes.append((t, Sequential(BatchNorm(c, name="norm"), ReLU(name="relu"),
                                        Conv(1, out_channels=c // 2, bias=False, name="conv"),
                                        AvgPool(2, stride=2, name="pool")), x))
            x, c = t, c // 2
    nodes += [("features.norm5", BatchNorm(c), x),
              ("relu", ReLU(), "features.norm5"),  # F.relu(features, inplace=True)
              ("adaptive_avg_pool2d", AdaptiveAvgPool(1), "relu"),
              ("flatten", Flatten(), "adaptive_avg_pool2d"),
              ("classifier", Linear(c, num_classes), "flatten")]
    return Graph(*nodes, features="features.norm5")


def _register_densenet(name):
    growth, blocks, init = DENSENET_CONFIGS[name]

    def build(num_classes=1000):
        return densenet_network(growth, blocks, init, num_classes=num_classes)

    build.__doc__ = (f"torchvision DenseNet-{name[8:]} (growth {growth}, blocks {list(blocks)}, "
                     f"{init} initial features) as a DAG: every dense layer reads the concatenation "
                     "of all earlier features of its block.")
    build.__name__ = name
    register(name, input_size=224, family="torchvision", source=_SOURCE, features="features.norm5")(build)
    return build


densenet121 = _register_densenet("densenet121")
densenet161 = _register_densenet("densenet161")
densenet169 = _register_densenet("densenet169")
densenet201 = _register_densenet("densenet201")


@register("densenet", input_size=56, in_channels=64, family="families", source=_SOURCE)
def densenet(n=6, growth=32, bn_size=4):
    """A dense block of symbolic depth: ``Repeat(Concat(Identity(), dense_layer), n)``.

    Each repetition concatenates a dense layer's ``growth`` new channels to its input (the
    same tensors as the DAG form, grouped as ``[x, layer(x)]``), so with symbols ``n``, ``growth``
    and input channels ``c0`` the closed forms are rf ``2n + 1``, channels ``c0 + n·growth`` and parameters
    ``Σ_i (2 + 4g)(c0 + i·g) + 8g + 36g²`` (BatchNorm, 1x1 and 3x3 convolutions of layer ``i``,
    ``bn_size = 4``). With numbers it unrolls to the DAG of a torchvision dense block (defaults:
    densenet121's first block on its 56x56, 64-channel input).

    >>> from rfsym import analyze, symbols
    >>> n, g, c = symbols("n g c0")
    >>> r = analyze(densenet(n, g), in_channels=c)
    >>> r.rf, r.out_channels
    (2*n + 1, c0 + g*n)
    """
    return Sequential(Repeat(Concat(Identity(), dense_layer(growth, bn_size), name="layer"), n,
                             name="denseblock"), name="densenet")
