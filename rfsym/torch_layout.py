"""Axis semantics of traced tensors, for :func:`rfsym.from_torch`.

Every tensor computed from the network's input is described by its *dims*: for each axis of the
tensor, the tuple of *atoms* flattened into it (row-major). An atom is one of

* ``("N", n)``: (part of) the batch axis;
* ``("C", n)``: (part of) the channels: anything position-wise ops may mix;
* ``("s", axis, stride, count)``: positions ``stride·0 .. stride·(count - 1)`` of spatial axis
  ``axis`` of the graph node the tensor belongs to (a full axis is ``stride=1, count=n``; a
  window partition splits it into ``(axis, w, n/w)`` (which window) and ``(axis, 1, w)`` (where in
  the window));
* ``("B", n)``: a broadcast copy (``expand``), no data.

Reshapes, permutes, squeezes and flattens only move atoms around (:func:`reshape`), so a
channels-last tensor (``x.permute(0, 2, 3, 1)``), a token sequence (``x.flatten(2).transpose(1,
2)``), heads (``(B, N, 3, h, d)``) and windows (``(B·nW, w·w, C)``) all keep track of which axes are
positions. An operation is then classified by what it does to the atoms (``torch_ops``).

>>> dims = standard_dims(1, 8, (4, 6))
>>> dims
((('N', 1),), (('C', 8),), (('s', 0, 1, 4),), (('s', 1, 1, 6),))
>>> tokens = reshape(dims, (1, 8, 4, 6), (1, 8, 24))        # x.flatten(2)
>>> tokens[2]
(('s', 0, 1, 4), ('s', 1, 1, 6))
>>> windows = reshape(dims, (1, 8, 4, 6), (1, 8, 2, 2, 3, 2))  # 2x2 windows
>>> windows[2:4]
((('s', 0, 2, 2),), (('s', 0, 1, 2),))
"""

from __future__ import annotations

import math

__all__ = ["standard_dims", "reshape", "atom_size", "normalise", "spatial_atoms", "channel_count",
           "LayoutError"]


class LayoutError(Exception):
    """A reshape that does not split and merge whole atoms (internal to from_torch)."""


def atom_size(atom) -> int:
    """Number of elements an atom spans."""
    return atom[3] if atom[0] == "s" else atom[1]  # ("t", size, inner): class tokens + positions


def standard_dims(batch, channels, sizes):
    """The dims of an ``(N, C, *spatial)`` tensor of a graph node."""
    return ((("N", batch),), (("C", channels),)) + tuple(((("s", i, 1, n),)) for i, n in enumerate(sizes))


def normalise(atoms):
    """Drop size-1 atoms and merge neighbours that are one atom (``(C,a)(C,b)`` → ``(C,ab)``)."""
    out = []
    for a in atoms:
        if atom_size(a) == 1:
            continue
        if out:
            p = out[-1]
            if p[0] == a[0] and a[0] in ("N", "C", "B"):
                out[-1] = (a[0], p[1] * a[1])
                continue
            if p[0] == a[0] == "s" and p[1] == a[1] and p[2] == a[2] * a[3]:
                out[-1] = ("s", a[1], a[2], p[3] * a[3])
                continue
        out.append(a)
    return tuple(out)


def _split(atom, outer):
    """Split ``atom`` into an outer part of ``outer`` elements and the inner rest."""
    n = atom_size(atom)
    inner = n // outer
    if atom[0] == "s":
        return ("s", atom[1], atom[2] * inner, outer), ("s", atom[1], atom[2], inner)
    return (atom[0], outer), (atom[0], inner)


def reshape(dims, old_shape, new_shape):
    """The dims after ``view``/``reshape`` from ``old_shape`` to ``new_shape``.

    Raises:
        LayoutError: when an atom would be split unevenly.
    """
    if math.prod(old_shape) != math.prod(new_shape):
        raise LayoutError(f"reshape from {tuple(old_shape)} to {tuple(new_shape)}")
    queue = [a for d in dims for a in d if atom_size(a) != 1]
    queue.reverse()
    out = []
    for m in new_shape:
        taken, have = [], 1
        while have < m:
            if not queue:
                raise LayoutError(f"reshape from {tuple(old_shape)} to {tuple(new_shape)}")
            a = queue.pop()
            n = atom_size(a)
            if have * n <= m:
                if m % (have * n):
                    raise LayoutError(f"reshape from {tuple(old_shape)} to {tuple(new_shape)}")
                taken.append(a)
                have *= n
                continue
            need = m // have
            if m % have or n % need or a[0] == "t":
                raise LayoutError(f"reshape from {tuple(old_shape)} to {tuple(new_shape)} splits an axis "
                                  "unevenly")
            outer, inner = _split(a, need)
            taken.append(outer)
            queue.append(inner)
            have *= need
        out.append(normalise(taken))
    if queue:
        raise LayoutError(f"reshape from {tuple(old_shape)} to {tuple(new_shape)}")
    return tuple(out)


def spatial_atoms(dims):
    """Every spatial atom, with the index of the dim holding it."""
    return [(j, a) for j, d in enumerate(dims) for a in d if a[0] == "s"]


def channel_count(dims) -> int:
    """Product of the channel atoms: the channel count of the node the tensor stands for."""
    return math.prod(a[1] for d in dims for a in d if a[0] == "C")
