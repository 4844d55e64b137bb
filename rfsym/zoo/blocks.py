"""Two layers the zoo's architectures need beyond rfsym's core: a squeeze-and-excitation gate
(EfficientNet) and WaveNet's gated activation. Both are registered with the engine like any layer.

>>> from rfsym import analyze
>>> r = analyze(SqueezeExcitation(96, 4), input_size=8)
>>> r.params, r.macs, r.rf
(868, 768, 1)
>>> analyze(GatedActivation(), input_size=8, in_channels=64).out_channels
32
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..engine import LeafOut, State, _channels, register_layer
from ..errors import LayerError
from ..layers import Layer
from ..maps import AxisMap

__all__ = ["SqueezeExcitation", "GatedActivation"]


@dataclass(frozen=True, repr=False)
class SqueezeExcitation(Layer):
    """Squeeze-and-excitation gate (Hu et al. 2018; torchvision ``ops.SqueezeExcitation``):
    ``x · sigmoid(fc2(act(fc1(avgpool(x)))))`` with 1x1 convolutions ``fc1`` (C -> S) and ``fc2``
    (S -> C), both with bias.

    Parameters ``2·C·S + C + S``; MACs ``2·C·S`` (the 1x1 convolutions at 1x1 spatial size; the
    pooling and the product count 0, torchvision's convention).

    Receptive field: the gate reads the whole feature map, so strictly every output after an SE
    block sees the whole input (see REFERENCE.md). rfsym's index maps are bounding boxes with one
    jump per merge; a global branch merged with the local path has jump 0 and no affine map, so
    this layer reports the receptive field of the *convolutional path* (identity map: the gate
    multiplies position by position). Results of networks with SE blocks say so.
    """

    channels: Any = None
    squeeze_channels: Any = None

    def _normalise(self):
        from ..symbols import as_expr
        self._set("channels", as_expr(self.channels, "channels", allow_none=True))
        self._set("squeeze_channels", as_expr(self.squeeze_channels, "squeeze_channels"))


@register_layer(SqueezeExcitation)
def _squeeze_excitation(layer, state, ctx):
    c = _channels(ctx, layer.channels, state.channels, "channels")
    s = ctx.val(layer.squeeze_channels, "squeeze_channels", 1)
    maps = tuple(AxisMap.affine(0, 1, 1) for _ in range(ctx.ndim))
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
    # both gates act position by position (the SE gate's global context is documented above)
    from ..enumeration import IDENTITY_MAP, Leaf
    return Leaf((IDENTITY_MAP,) * ndim, sizes)


def _register_index_maps():
    from ..enumeration import register_index_map
    register_index_map(SqueezeExcitation)(_identity_index_map)
    register_index_map(GatedActivation)(_identity_index_map)


_register_index_maps()
