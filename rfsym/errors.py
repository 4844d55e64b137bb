"""rfsym's errors: one hierarchy, every leaf also a builtin ``ValueError``.

Messages name *where* (the layer's index and type, or the file and line), *what* (the
parameter), what was expected and what was given, and, where one exists, the fix:

>>> from rfsym import Conv
>>> Conv(3, stride=0)
Traceback (most recent call last):
...
rfsym.errors.LayerError: Conv: stride must be a positive integer, got 0
"""

from __future__ import annotations

__all__ = ["RfsymError", "LayerError", "GraphError", "SizeError", "SpecError", "layer_label"]


class RfsymError(ValueError):
    """Base class of every error rfsym raises on purpose."""


class LayerError(RfsymError):
    """A layer parameter is invalid (wrong type, sign, length, or incompatible)."""

    def __init__(self, message: str, *, where: str | None = None, param: str | None = None):
        self.where = where
        self.param = param
        self.detail = message
        super().__init__(f"{where}: {message}" if where else message)

    def located(self, where: str) -> LayerError:
        """The same error, located at ``where`` (for example ``layer 3 (Conv)``)."""
        return type(self)(self.detail, where=where, param=self.param)


class GraphError(RfsymError):
    """Branches of a graph disagree (jump, channels, sizes) or the graph is malformed."""


class SizeError(RfsymError):
    """The input is too small: some layer would produce an output size below 1."""


class SpecError(RfsymError):
    """An architecture file or one-line spec is malformed."""


def layer_label(layer, index) -> str:
    """How errors locate a layer: ``layer 3 (Conv)`` or ``layer 3 (Conv 'stem')``."""
    label = type(layer).__name__
    if layer.name:
        label += f" {layer.name!r}"
    return f"layer {index} ({label})"
