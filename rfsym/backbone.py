"""The backbone's feature map of an imported network: the number papers quote.

Every importer (PyTorch, ONNX, Keras) names one node of the graph it builds as the network's
``features``: the last feature map before the classifier head. The rule is the same for all
three and lives here:

    the input of the first global node (a pooling over the whole map, a flatten into a head,
    a class-token read) that every way from the input to the outputs passes through.

A squeeze-and-excitation gate pools the whole map too, but on a side branch: the gated path
bypasses it, so it is not a cut and the backbone goes on. A network with several outputs that
share no such node (a detector's feature pyramid) has no single backbone map: None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["feature_node"]


def feature_node(nodes: Iterable[tuple], outputs: Iterable[str], is_global: Callable[[str, object], bool],
                 source: str = "input") -> str | None:
    """The node whose output is the backbone's feature map, or None when there is none.

    Args:
        nodes: ``(label, layer, inputs)`` triples in execution (topological) order; ``inputs``
            is one label or a tuple of labels, ``source`` names the network input.
        outputs: the labels of the network's outputs.
        is_global: ``is_global(label, layer)`` is True for a node that reads the whole map
            (global pooling, flattening into a head, a class-token read).
        source: the label of the network input.

    Returns:
        The single input of the first global node that cuts every path from ``source`` to the
        outputs; None if no global node does, or if that node reads the network input or
        several nodes.

    Example:
        >>> import rfsym
        >>> nodes = [("conv", rfsym.Conv(3), "input"), ("gate", rfsym.GlobalAvgPool(), "conv"),
        ...          ("mul", "mul", ("conv", "gate")), ("pool", rfsym.GlobalAvgPool(), "mul"),
        ...          ("fc", rfsym.Linear(8, 2), "pool")]
        >>> feature_node(nodes, ["fc"], lambda label, layer: isinstance(layer, rfsym.GlobalAvgPool))
        'mul'
    """
    nodes = [(label, layer, (ins,) if isinstance(ins, str) else tuple(ins)) for label, layer, ins in nodes]
    outputs = tuple(outputs)
    nodes = _live(nodes, outputs, source)
    position = {source: -1}
    for j, (label, _, _) in enumerate(nodes):
        position[label] = j
    if not nodes or any(position.get(o, -1) < 0 for o in outputs):
        return None  # the input (or a name not computed from it) is an output: nothing cuts it off
    # In execution order, with every node reachable from the input and reaching an output, a way
    # out avoids node v exactly when some edge jumps over v (from before it to after it) or an
    # output comes before it: one pass over the edges marks every node jumped over.
    last = min(position[o] for o in outputs)
    jumps = [0] * (len(nodes) + 1)  # +1 where an edge starts jumping over nodes, -1 where it stops
    for j, (_, _, ins) in enumerate(nodes):
        for u in ins:
            begin = position[u] + 1
            if begin < j:
                jumps[begin] += 1
                jumps[j] -= 1
    over = 0
    for j, (label, layer, ins) in enumerate(nodes[:last + 1]):
        over += jumps[j]
        if over == 0 and is_global(label, layer):
            return ins[0] if len(ins) == 1 and ins[0] != source else None
    return None


def _live(nodes, outputs, source):
    """The nodes reachable from ``source`` that some output depends on, in their order."""
    reach = {source}
    for label, _, ins in nodes:
        for i in ins:
            if i in reach:
                reach.add(label)
                break
    needed = set(outputs)
    for label, _, ins in reversed(nodes):
        if label in needed:
            needed.update(ins)
    return [n for n in nodes if n[0] in reach and n[0] in needed]
