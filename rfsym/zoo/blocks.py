"""Two layers the zoo's architectures need beyond rfsym's core: a squeeze-and-excitation gate
(EfficientNet) and WaveNet's gated activation. Both are registered with the engine like any layer.

>>> from rfsym import Conv, Sequential, analyze
>>> r = analyze(SqueezeExcitation(96, 4), input_size=8)
>>> r.params, r.macs, r.rf, r.jump
(868, 768, 8, 0)
>>> r = analyze(Sequential(Conv(3, padding=1, in_channels=8), SqueezeExcitation(squeeze_channels=2)), 8)
>>> r.rf, r.start, r.jump                 # the whole padded input [-1, 8], for every output
(10, -1, 0)
>>> analyze(GatedActivation(), input_size=8, in_channels=64).out_channels
32
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..errors import LayerError
from ..layers import Layer
from ..maps import AxisMap
from ..rules import LeafOut, State, channels_of, global_map, register_layer

__all__ = ["SqueezeExcitation", "GatedActivation"]


@dataclass(frozen=True, repr=False)
class SqueezeExcitation(Layer):
    """Squeeze-and-excitation gate (Hu et al. 2018; torchvision ``ops.SqueezeExcitation``):
    ``x · sigmoid(fc2(act(fc1(avgpool(x)))))`` with 1x1 convolutions ``fc1`` (C -> S) and ``fc2``
    (S -> C), both with bias.

    Parameters ``2·C·S + C + S``; MACs ``2·C·S`` (the 1x1 convolutions at 1x1 spatial size; the
    pooling and the product count 0, torchvision's convention).

    Receptive field: **global**. The gate averages the whole feature map, so every output reads
    every position of the layer's input: per axis the index map is ``AxisMap(1, 0, (0,), (n,))``
    (jump 0, start 0, rf ``n``, the input size; in terms of a symbolic input size when none is given). After an SE
    layer the jump (effective stride) is 0 and every output of every later layer sees the same
    field: the SE input's real positions ``0 .. n - 1`` seen through the layers before it (the
    whole padded input when those are padded convolutions). A residual around an SE body merges
    the global body with the local shortcut into a global map (:func:`rfsym.maps.merge`).
    The enumerator models it independently as "output ``o`` reads every input position".
    """

    channels: Any = None
    squeeze_channels: Any = None

    def _normalise(self):
        from ..symbols import as_expr
        self._set("channels", as_expr(self.channels, "channels", allow_none=True))
        self._set("squeeze_channels", as_expr(self.squeeze_channels, "squeeze_channels"))


@register_layer(SqueezeExcitation)
def _squeeze_excitation(layer, state, ctx):
    c = channels_of(ctx, layer.channels, state.channels, "channels")
    s = ctx.val(layer.squeeze_channels, "squeeze_channels", 1)
    # global: every output reads the whole input (jump 0; the output keeps n positions)
    maps = tuple(global_map(n, jump=0) for n in (state.sizes or (None,) * ctx.ndim))
    if c is None:
        return LeafOut(maps, state, None, None)
    macs = 2 * c * s if state.sizes is not None else None
    return LeafOut(maps, State(state.sizes, c, state.flattened), 2 * c * s + c + s, macs)


@dataclass(frozen=True, repr=False)
class GatedActivation(Layer):
    """WaveNet's gated activation ``tanh(a) · sigmoid(b)`` of the two channel halves ``a, b`` of
    its input (van den Oord et al. 2016, eq. 2): channels halve, no parameters, position by
    position (identity index map)."""


@register_layer(GatedActivation)
def _gated(layer, state, ctx):
    maps = tuple(AxisMap.affine(0, 1, 1) for _ in range(ctx.ndim))
    c = state.channels
    if c is not None:
        if ctx.ops.symbolic and (sp.sympify(c) / 2).is_integer is False:
            raise LayerError(f"needs an even number of channels, got {c}", where=ctx.where, param="channels")
        c = c / 2 if ctx.ops.symbolic else c // 2
    return LeafOut(maps, State(state.sizes, c, state.flattened), 0, 0)


def _identity_index_map(layer, sizes, ndim):
    # the gated activation acts position by position
    from ..enumeration import IDENTITY_MAP, Leaf
    return Leaf((IDENTITY_MAP,) * ndim, sizes)


def _every_position(n):
    """Output ``o`` reads input positions ``0 .. n - 1``, whatever ``o`` (padding included)."""
    def taps(o):
        return np.tile(np.arange(n, dtype=np.int64), (len(o), 1)), None
    return taps


def _se_index_map(layer, sizes, ndim):
    # the gate averages the whole map: every output position reads every input position
    from ..enumeration import Leaf, Taps
    if sizes is None:
        raise LayerError("a squeeze-and-excitation gate reads the whole input: enumeration needs "
                         "the input size", param="input_size")
    return Leaf(tuple(Taps(_every_position(n)) for n in sizes), sizes)


def _register_index_maps():
    from ..enumeration import register_index_map
    register_index_map(SqueezeExcitation)(_se_index_map)
    register_index_map(GatedActivation)(_identity_index_map)


_register_index_maps()
