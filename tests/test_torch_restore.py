"""from_torch leaves the module as it was: writes of a forward into torch's own modules (which
the direct tracer records instead of snapshotting) and into user modules are undone."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import rfsym  # noqa: E402


class WritesIntoChildren(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.seen = None

    def forward(self, x):
        y = self.conv(x)
        self.conv.cached = y  # a new attribute of a torch module
        self.bn.momentum = 0.5  # an overwritten one
        self.seen = y  # the module's own
        return self.bn(y)


@pytest.mark.parametrize("trace", ["direct", "fx", "hooks"])
def test_writes_into_torch_modules_undone(trace):
    m = WritesIntoChildren().eval()
    net = rfsym.from_torch(m, (3, 8, 8), trace=trace)
    assert [n[0] for n in net.nodes] == ["conv", "bn"]
    assert "cached" not in m.conv.__dict__ and m.bn.momentum == 0.1 and m.seen is None
    for cls in (nn.Conv2d, nn.BatchNorm2d, WritesIntoChildren):
        assert not {"__setattr__", "__delattr__", "__call__", "__getattr__"} & set(cls.__dict__)
    assert m(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 6, 6)


class DeletesFromChild(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.conv.note = "kept"

    def forward(self, x):
        del self.conv.note
        return self.conv(x)


def test_deletion_from_a_torch_module_undone():
    m = DeletesFromChild()
    rfsym.from_torch(m, (3, 8, 8), trace="direct")
    assert m.conv.note == "kept"


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_hooks_of_a_block_run_in_the_direct_tracer():
    m = nn.Sequential(Block(), Block())
    m[1].register_forward_hook(lambda mod, args, out: torch.relu(out))
    m[0].register_forward_pre_hook(lambda mod, args: (torch.sigmoid(args[0]),))
    net = rfsym.from_torch(m, (3, 8, 8), trace="direct")
    types = [type(n[1]).__name__ for n in net.nodes]
    assert types.count("Sigmoid") == 1 and types.count("ReLU") == 1, types
    assert types.index("Sigmoid") < types.index("Conv") and types[-1] in ("ReLU", "Identity"), types
