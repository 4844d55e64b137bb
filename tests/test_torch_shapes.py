"""from_torch computes the output shapes of common operations from their operands' shapes (no
meta kernel); every such shape must be the one PyTorch computes. Each module below runs eagerly
on zeros with forward hooks; every node rfsym names after a module path must have that module's
output size and channels, and the network's output its output's shape. The trace is torch.fx
only (no fallback) and every network ends in a Linear layer over all its features, whose input
size the importer checks against the shape it computed, so a wrong shape anywhere fails."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from test_torch_import import hook_shapes  # noqa: E402

import rfsym  # noqa: E402

torch.set_num_threads(1)


def eager_shapes(module, x):
    """(module path -> output shape, output shape) of an eager forward."""
    shapes, out = hook_shapes(module, x, kinds=None)
    return shapes, tuple(out.shape)


def check(module, shape):
    """from_torch + analyze against the eager shapes of every module and of the output."""
    x = torch.zeros((1,) + shape)
    shapes, out = eager_shapes(module, x)
    r = rfsym.analyze(rfsym.from_torch(module, shape, trace="fx"), input_size=shape[1:])
    checked = 0
    for lr in r.layers:
        if lr.name in shapes and len(shapes[lr.name]) == len(shape) + 1 and lr.out_size is not None:
            want = shapes[lr.name]
            assert tuple(int(n) for n in lr.axes("out_size")) == want[2:], (lr.name, want)
            assert int(lr.out_channels) == want[1], (lr.name, want)
            checked += 1
    if len(out) == len(shape) + 1:
        assert tuple(int(n) for n in r.axes("out_size")) == out[2:]
        assert int(r.out_channels) == out[1]
    else:
        assert int(r.out_channels) == out[-1]
    return checked


class Head(nn.Module):
    """A convolution as large as the feature map (one output position), then a Linear layer: the
    importer checks the channels and sizes it computed against both."""

    def __init__(self, shape):
        super().__init__()
        conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[len(shape) - 3]
        self.conv = conv(shape[1], 4, tuple(shape[2:]))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


def headed(*layers, shape):
    """``nn.Sequential(*layers)`` followed by a :class:`Head` for its output shape."""
    body = nn.Sequential(*layers)
    with torch.no_grad():
        out = body.eval()(torch.zeros((1,) + shape)).shape
    return nn.Sequential(*layers, Head(tuple(out)))


@pytest.mark.parametrize("size", [29, 30, 33])
@pytest.mark.parametrize("ceil", [False, True])
def test_pools_with_ceil_mode_padding_and_dilation(size, ceil):
    shape = (3, size, size + 2)
    net = headed(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.MaxPool2d(3, 2, 1, ceil_mode=ceil),
                 nn.Conv2d(4, 4, 3, dilation=2, padding="same"), nn.AvgPool2d(2, ceil_mode=ceil),
                 nn.MaxPool2d((2, 3), stride=(1, 2), dilation=(2, 1), ceil_mode=ceil), shape=shape)
    assert check(net, shape) == 6  # five layers and the head's convolution


@pytest.mark.parametrize("size", range(4, 12))
@pytest.mark.parametrize("k, s, p", [(2, 2, 1), (3, 2, 1), (3, 3, 1), (2, 1, 0), (5, 3, 2)])
def test_ceil_mode_drops_a_window_that_starts_in_the_padding(size, k, s, p):
    for pool in (nn.MaxPool1d(k, s, p, ceil_mode=True), nn.AvgPool1d(k, s, p, ceil_mode=True)):
        shape = (2, size)
        check(headed(nn.Conv1d(2, 2, 1), pool, shape=shape), shape)


def test_convolutions_1d_and_3d_valid_and_strided():
    shape = (2, 40)
    assert check(headed(nn.Conv1d(2, 5, 4, stride=3, padding="valid"), nn.AvgPool1d(3, 2, 1),
                        nn.Conv1d(5, 5, 3, groups=5, padding=2, dilation=3), shape=shape), shape) == 4
    shape = (1, 7, 9, 11)
    assert check(headed(nn.Conv3d(1, 2, (3, 1, 5), stride=(1, 2, 2), padding=(1, 0, 2)),
                        nn.MaxPool3d(2, ceil_mode=True), shape=shape), shape) == 3


class Ops(nn.Module):
    """Broadcasts (a gate, a scalar, a per-channel parameter), reductions, cat, adaptive pools, a
    permuted copy made contiguous and viewed (its strides matter), a tensor constant."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Conv2d(6, 6, 1)
        self.scale = nn.Parameter(torch.ones(6, 1, 1))
        self.pool = nn.AdaptiveAvgPool2d((3, None))
        self.offset = torch.zeros(1, 1, 1)  # a plain tensor attribute: fx makes it a constant

    def forward(self, x):
        y = torch.relu(self.conv(x))
        g = torch.sigmoid(self.fc(y.mean((2, 3), keepdim=True)))  # (1, 6, 1, 1)
        y = y * g + 1.0
        y = self.scale * (2 * y - y * 0.5) + self.offset
        n, c, h, w = y.shape  # windows of 2x2 positions and back (Swin's partition: strides matter)
        t = y.permute(0, 2, 3, 1).view(n, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5)
        t = torch.relu(t.contiguous().view(-1, 4, c))
        t = t.view(n, h // 2, w // 2, 2, 2, c).permute(0, 1, 3, 2, 4, 5).contiguous().view(n, h, w, c)
        y = t.permute(0, 3, 1, 2) + y
        y = torch.cat([y, F.adaptive_avg_pool2d(y, (y.shape[2], y.shape[3]))], dim=1)
        return self.pool(y)  # (1, 12, 3, W)


def test_broadcasts_reductions_cat_and_adaptive_pools():
    shape = (3, 10, 8)
    assert check(headed(Ops(), shape=shape), shape) >= 3


def test_multihead_attention_without_weights_keeps_the_query_shape():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Conv2d(3, 8, 4, stride=4)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            t = self.embed(x).flatten(2).transpose(1, 2)
            out, _ = self.attn(t, t, t, need_weights=False)
            return out + t

    net = Block()
    x = torch.zeros(1, 3, 16, 16)
    with torch.no_grad():
        want = net.eval()(x).shape
    r = rfsym.analyze(rfsym.from_torch(net, (3, 16, 16)), input_size=16)
    assert int(r.out_channels) == want[-1] and r.params == sum(p.numel() for p in net.parameters())
