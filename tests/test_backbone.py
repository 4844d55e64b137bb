"""The backbone rule shared by the importers (rfsym.backbone.feature_node)."""

import rfsym
from rfsym.backbone import feature_node


def pool(label, layer):
    return isinstance(layer, (rfsym.GlobalAvgPool, rfsym.Flatten))


def se_net():
    return [("conv", rfsym.Conv(3), "input"), ("gate", rfsym.GlobalAvgPool(), "conv"),
            ("fc1", rfsym.Linear(8, 2), "gate"), ("mul", "mul", ("conv", "fc1")),
            ("conv2", rfsym.Conv(3), "mul"), ("pool", rfsym.GlobalAvgPool(), "conv2"),
            ("fc", rfsym.Linear(8, 2), "pool")]


def test_a_gate_pool_is_bypassed_and_the_head_pool_cuts():
    assert feature_node(se_net(), ["fc"], pool) == "conv2"


def test_no_global_node_no_features():
    nodes = [("a", rfsym.Conv(3), "input"), ("b", rfsym.Conv(3), "a")]
    assert feature_node(nodes, ["b"], pool) is None


def test_outputs_on_both_sides_of_the_pool_share_no_cut():
    nodes = se_net()
    assert feature_node(nodes, ["fc", "conv2"], pool) is None


def test_a_pool_of_the_input_has_no_feature_map_a_pool_of_a_merge_reads_the_merge():
    assert feature_node([("p", rfsym.GlobalAvgPool(), "input")], ["p"], pool) is None
    nodes = [("a", rfsym.Conv(3), "input"), ("b", rfsym.Conv(3), "input"),
             ("p", "concat", ("a", "b")), ("g", rfsym.GlobalAvgPool(), "p")]
    assert feature_node(nodes, ["g"], pool) == "p"
