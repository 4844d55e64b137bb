"""numpy, imported on first use.

rfsym's modules use numpy for arrays (``Result.evaluate``, enumeration, index maps of
position-dependent layers), but a numeric analysis and its table (``rfsym analyze resnet50``)
need none, and importing numpy costs about 50 ms of a command's start. The modules therefore
write ``from .lazy_numpy import np``: ``np`` is a module object that imports numpy at the first
attribute read and from then on holds numpy's names itself (reads cost what reads of numpy's
own module cost). :func:`is_array` and :func:`is_numpy_scalar` answer without importing numpy:
while it is not imported, no value is a numpy object.

>>> from rfsym.lazy_numpy import np, is_array
>>> is_array([1, 2]), is_array(np.arange(3))
(False, True)
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["np", "is_array", "is_numpy_scalar"]


class _Numpy(types.ModuleType):
    """A module standing for numpy: the first read of a name imports numpy and copies its names
    here; a name numpy itself loads on first use (a submodule) is kept here once read."""

    def __getattr__(self, name: str) -> Any:
        numpy = importlib.import_module("numpy")
        if "ndarray" not in self.__dict__:  # the first read: numpy's names, all at once
            self.__dict__.update((k, v) for k, v in vars(numpy).items() if not k.startswith("__"))
        value = getattr(numpy, name)  # (AttributeError for a name numpy lacks, as numpy's own)
        self.__dict__[name] = value
        return value


np = _Numpy("numpy", "numpy, imported on first use (rfsym.lazy_numpy)")


def is_array(value: Any) -> bool:
    """Whether ``value`` is a numpy array (without importing numpy).

    Args:
        value: any object.

    Returns:
        True for a ``numpy.ndarray`` (or subclass).
    """
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def is_numpy_scalar(value: Any) -> bool:
    """Whether ``value`` is a numpy scalar (``numpy.generic``: ``np.int64(3)``, ``np.bool_``),
    without importing numpy.

    Args:
        value: any object.

    Returns:
        True for a numpy scalar.
    """
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.generic)
