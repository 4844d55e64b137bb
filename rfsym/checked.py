"""Integer arrays whose arithmetic never wraps around silently (the array backend's numbers).

:class:`Checked` is an ``int64`` array carrying an upper bound on its magnitudes; an operation
whose bound could reach 2**62 is recomputed exactly on Python ints. :class:`~rfsym.ops.NumOps`
and :meth:`~rfsym.result.Result.evaluate` compute on these arrays. This module imports numpy;
the rest of rfsym loads it when arrays are first made.

>>> checked([1, 2]).dtype, type(checked(np.int64(5)))
(dtype('int64'), <class 'int'>)
"""

from __future__ import annotations

import numpy as np

__all__ = ["Checked", "checked", "as_checked", "narrow", "wrap", "bound_of"]


_LIMIT = (1 << 62) - 1  # magnitudes up to this are safe in int64 (one more addition cannot wrap)


class Checked(np.ndarray):
    """An ``int64`` array whose arithmetic never wraps around silently.

    Each array carries an upper bound on its magnitudes, propagated through every operation at no
    cost (``|a + b| <= |a| + |b|``, ``|a·b| = |a|·|b|``, ...). Only when a bound reaches 2**62
    is the operation recomputed exactly on Python ints (``dtype=object``); the result stays
    ``int64`` when it fits, else it is an object array of exact Python ints (slower, never
    wrong). So :meth:`~rfsym.engine.Result.evaluate` gives the numbers :meth:`subs` gives.

    >>> a = checked(np.array([3, 3037000501]))
    >>> (a * a).tolist(), (a * a).dtype
    ([9, 9223372043074251001], dtype('O'))
    >>> (a + 1).dtype
    dtype('int64')
    """

    bound = None  # an upper bound on |entries| (a Python int), None when unknown

    def __array_finalize__(self, obj):
        self.bound = None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = tuple(x.view(np.ndarray) if isinstance(x, Checked) else x for x in inputs)
        if method != "__call__" or kwargs.get("out") is not None:
            return getattr(ufunc, method)(*plain, **kwargs)
        rule = _BOUNDS.get(ufunc.__name__)
        if rule is None or not all(_intlike(x) for x in plain):
            out = ufunc(*plain, **kwargs)
            return wrap(out) if rule is not None else out
        bounds = [bound_of(x, y) for x, y in zip(plain, inputs)]
        if None in bounds:  # a Python int beyond int64: exact arithmetic
            return _exact(ufunc, plain, kwargs)
        limit = rule(*bounds)
        if limit <= _LIMIT:
            out = ufunc(*plain, **kwargs)
            if isinstance(out, np.ndarray) and out.dtype == np.int64:
                out = out.view(Checked)
                out.bound = limit
            return out
        return _exact(ufunc, plain, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        def strip(x):
            if isinstance(x, Checked):
                return x.view(np.ndarray)
            if isinstance(x, (list, tuple)):
                return type(x)(strip(y) for y in x)
            return x

        out = func(*strip(args), **{k: strip(v) for k, v in kwargs.items()})
        if isinstance(out, (list, tuple)):
            return type(out)(wrap(x) for x in out)
        return wrap(out)


def _intlike(x) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return True
    if isinstance(x, (int, np.integer)):
        return True
    return isinstance(x, np.ndarray) and x.dtype.kind in "iub"


def bound_of(x, original):
    """An upper bound on ``|x|``: carried by a Checked array, else one pass (None: beyond int64)."""
    if isinstance(original, Checked) and original.bound is not None:
        return original.bound
    if isinstance(x, (bool, np.bool_)):
        return 1
    if isinstance(x, (int, np.integer)):
        v = abs(int(x))
        return v if v <= _LIMIT else None
    if x.size == 0:
        return 0
    if x.dtype.kind == "b":
        return 1
    hi, lo = int(x.max()), int(x.min())
    b = max(abs(hi), abs(lo))
    if isinstance(original, Checked):
        original.bound = b
    return b


def _pow_bound(a, e):
    if a <= 1:
        return a
    if e > 64 or a.bit_length() * e > 64:
        return _LIMIT + 1
    return a**e


_BOUNDS = {
    "add": lambda a, b: a + b, "subtract": lambda a, b: a + b, "multiply": lambda a, b: a * b,
    "power": _pow_bound, "negative": lambda a: a, "positive": lambda a: a, "absolute": lambda a: a,
    "floor_divide": lambda a, b: a + 1, "remainder": lambda a, b: b, "maximum": max, "minimum": max,
    "left_shift": lambda a, b: _pow_bound(2, b) * a,
}


def _exact(ufunc, inputs, kwargs):
    """``ufunc`` on Python ints: int64 when the result fits, else an object array."""
    objs = [np.asarray(x).astype(object) if isinstance(x, np.ndarray) else int(x) for x in inputs]
    out = ufunc(*objs, **kwargs)
    return narrow(out)


def narrow(out):
    """An exact result as a Checked int64 array when it fits, else kept as Python ints."""
    if not isinstance(out, np.ndarray):
        return int(out) if isinstance(out, (int, np.integer)) else out
    if out.dtype != object:
        return wrap(out)
    if out.size == 0:
        return out.astype(np.int64).view(Checked)
    if not all(isinstance(v, (int, np.integer)) for v in out.flat):
        return out
    b = max(abs(int(v)) for v in out.flat)
    if b <= _LIMIT:
        res = out.astype(np.int64).view(Checked)
        res.bound = b
        return res
    return out


def wrap(out):
    if isinstance(out, np.ndarray) and not isinstance(out, Checked) and out.dtype == np.int64:
        return out.view(Checked)
    return out


def checked(values):
    """Integer values (ints, integer arrays, object arrays of Python ints) ready for
    :class:`NumOps`: a :class:`Checked` int64 array, a Python int for a 0-d value, or an object
    array when some value is beyond int64.

    >>> checked(np.array(5)), checked([2, 3]).tolist(), checked([2**70]).dtype
    (5, [2, 3], dtype('O'))
    """
    arr = np.asarray(values)
    if arr.ndim == 0:
        return int(arr)
    if arr.dtype == object:
        return narrow(arr)
    return wrap(arr.astype(np.int64))


def as_checked(x):
    """``x`` as an array whose arithmetic is checked (Checked int64 or exact object)."""
    if isinstance(x, Checked) or (isinstance(x, np.ndarray) and x.dtype == object):
        return x
    arr = np.asarray(x)
    if arr.dtype == object:
        return narrow(arr)
    return arr.astype(np.int64).view(Checked)
