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

from collections.abc import Hashable, Iterable, Sequence

__all__ = ["SharedCalls"]


class SharedCalls:
    """The nodes each call of a weight-holding object emitted; the pairs follow from them."""

    def __init__(self):
        self._calls: dict = {}  # key -> the node lists of its calls, in order

    def record(self, key: Hashable, nodes: Sequence[tuple]) -> None:
        """Record one call of the object ``key`` (a module's parameter ids, weight names).

        Args:
            key: what identifies the weights (equal keys: the same weights).
            nodes: the ``(label, op, inputs)`` nodes the call emitted (kept as given; merges,
                ``op`` a string, hold no parameters and are never paired).
        """
        calls = self._calls.get(key)
        if calls is None:
            self._calls[key] = [nodes]
        else:
            calls.append(nodes)

    def pairs(self, live: Iterable[str]) -> dict:
        """``{node: owner}``: each later call's layer nodes paired, by layer type in order, with
        the first call's, among the nodes ``live`` (the graph's nodes after dead ones are
        dropped; a node whose owner is gone keeps counting its parameters).

        Args:
            live: the names of the nodes the graph keeps.

        Returns:
            The ``shared=`` argument of :class:`~rfsym.layers.Graph`.
        """
        out = {}
        for first, *later in (calls for calls in self._calls.values() if len(calls) > 1):
            firsts = [(label, op) for label, op, _ in first if not isinstance(op, str)]
            for nodes in later:
                owners = list(firsts)
                for label, op, _ in nodes:
                    if isinstance(op, str):
                        continue
                    for j, (owner, theirs) in enumerate(owners):
                        if type(theirs) is type(op):
                            out[label] = owner
                            del owners[j]
                            break
        if not out:
            return out
        live = set(live)
        return {n: o for n, o in out.items() if n in live and o in live}
