"""Two layers the zoo's architectures need beyond rfsym's core: a crop and a squeeze-and-excitation
gate. Both are registered with the engine like any layer.

>>> from rfsym import analyze, Conv, Sequential
>>> r = analyze(Sequential(Conv(3), Crop(2)), input_size=10)
>>> r.out_size, r.rf, r.start
(4, 3, 2)
>>> r = analyze(SqueezeExcitation(96, 4), input_size=8)
>>> r.params, r.macs, r.rf
(868, 768, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine import LeafOut, State, _channels, register_layer
from ..errors import LayerError
from ..layers import Layer, _axis_tuple, _per_axis
from ..maps import AxisMap

__all__ = ["Crop", "SqueezeExcitation"]


@dataclass(frozen=True, repr=False)
class Crop(Layer):
    """Remove ``cropping`` positions from both ends of every spatial axis (a per-axis tuple of
    ints or ``(left, right)`` pairs is allowed): Keras' ``Cropping2D``, the "copy and crop" of
    U-Net's skip connections. Output ``o`` reads input ``o + left``; size ``n - left - right``.
    """

    cropping: Any = 0

    def _normalise(self):
        value = self.cropping
        if isinstance(value, (tuple, list)):
            items = tuple(tuple(_axis_tuple(tuple(v), "cropping")) if isinstance(v, (tuple, list))
                          else _axis_tuple(v, "cropping") for v in value)
            self._set("cropping", items)
        else:
            from ..symbols import as_expr
            self._set("cropping", as_expr(value, "cropping", minimum=0))


@register_layer(Crop)
def _crop(layer, state, ctx):
    maps, sizes = [], []
    for axis, c in enumerate(_per_axis(layer.cropping, ctx.ndim, "cropping", layer)):
        left, right = c if isinstance(c, tuple) else (c, c)
        left, right = ctx.val(left, "cropping", 0), ctx.val(right, "cropping", 0)
        maps.append(AxisMap.affine(left, 1, 1))
        if state.sizes is not None:
            out = state.sizes[axis] - left - right
            if ctx.ops.concrete(out) is not None and ctx.ops.concrete(out) < 1:
                raise LayerError(f"cropping {left}+{right} leaves nothing of size {state.sizes[axis]}",
                                 where=ctx.where, param="cropping")
            sizes.append(out)
    return LeafOut(tuple(maps), State(tuple(sizes) if state.sizes is not None else None, state.channels))


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
