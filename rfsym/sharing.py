"""Weights used more than once: which graph nodes count a layer's parameters.

A framework module (a PyTorch module, a Keras layer, an ONNX weight tensor) applied several
times becomes several rfsym nodes, one per call: each computes, so each has its MACs, but the
weights exist once. The importers record every call here; the nodes of the second and later
calls are paired, by layer type in order, with the first call's nodes, and the pairs become
``Graph(shared=...)``: the parameters are counted at the first call only.

>>> from rfsym import Conv, ReLU
>>> calls = SharedCalls()
>>> conv = Conv(3, in_channels=4, out_channels=4)
>>> calls.record("m", [("c", conv, "input")])
>>> calls.record("m", [("c#2", conv, "act")])
>>> calls.pairs(["c", "act", "c#2"])
{'c#2': 'c'}
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

__all__ = ["SharedCalls"]


class SharedCalls:
    """The layer nodes each call of a weight-holding object emitted, and the pairs found."""

    def __init__(self):
        self._first: dict = {}  # key -> [(label, layer)] of its first call
        self._pairs: dict = {}  # node -> owner

    def record(self, key: Hashable, nodes: Iterable[tuple]) -> None:
        """Record one call of the object ``key`` (a module's id, a tuple of weight names).

        Args:
            key: what identifies the weights (equal keys: the same weights).
            nodes: the ``(label, op, inputs)`` nodes the call emitted; merges (``op`` a string)
                hold no parameters and are skipped.
        """
        made = [(label, op) for label, op, _ in nodes if not isinstance(op, str)]
        owners = self._first.get(key)
        if owners is None:
            self._first[key] = made
            return
        owners = list(owners)
        for label, op in made:
            for j, (owner, theirs) in enumerate(owners):
                if type(theirs) is type(op):
                    self._pairs[label] = owner
                    del owners[j]
                    break

    def pairs(self, live: Iterable[str]) -> dict:
        """``{node: owner}`` among the nodes ``live`` (the graph's nodes after dead ones are
        dropped): a node whose owner is gone keeps counting its parameters.

        Args:
            live: the names of the nodes the graph keeps.

        Returns:
            The ``shared=`` argument of :class:`~rfsym.layers.Graph`.
        """
        live = set(live)
        return {n: o for n, o in self._pairs.items() if n in live and o in live}
