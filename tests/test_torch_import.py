"""rfsym.from_torch against PyTorch itself.

Every imported network is checked three ways against the module it came from:

* parameters: rfsym's total equals ``sum(p.numel() for p in module.parameters())``;
* sizes: every layer named by a module path has the output shape that module produced in a
  forward pass (recorded here with forward hooks, independently of from_torch's tracer);
* receptive fields: the input-gradient of one output position (summed over channels, so every
  branch of a concatenation shows) is nonzero exactly on the enumerated dependency set, and its
  bounding box is the engine's span clipped to the input. No cancellation can hide a dependency:
  float64, positive weights and inputs (so every ReLU passes), BatchNorm a positive scale, and
  max pools replaced by sum pools over the same windows (a max sends its gradient to one pixel).
"""

import copy
import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
nn = torch.nn
F = torch.nn.functional

import rfsym  # noqa: E402

# Tiny tensors: one thread is several times faster than a pool on these 2-core machines.
torch.set_num_threads(1)
from rfsym import dependency_mask  # noqa: E402
from rfsym.errors import GraphError, LayerError, RfsymError  # noqa: E402


# --------------------------------------------------------------------------- helpers
def torch_params(module):
    return sum(p.numel() for p in module.parameters())


def hook_shapes(module, x):
    """Output shape of every leaf module call, by module path (``path#2`` for a second call)."""
    shapes, handles = {}, []
    for path, m in module.named_modules():
        if path and not list(m.children()):
            def hook(mod, args, out, path=path):
                key = path
                k = 1
                while key in shapes:
                    k += 1
                    key = f"{path}#{k}"
                shapes[key] = tuple(out.shape)
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = module.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return shapes, tuple(out.shape)


class SumPool(nn.Module):
    """The windows of a MaxPoolNd (padding, dilation, ceil_mode), averaged: every pixel of a window
    gets a positive gradient where a max would pass it to one."""

    def __init__(self, pool, nd):
        super().__init__()
        def tup(v):
            return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd

        self.pool, self.nd = pool, nd
        self.k, self.s, self.p, self.d = tup(pool.kernel_size), tup(pool.stride), tup(pool.padding), \
            tup(pool.dilation)

    def forward(self, x):
        out = self.pool(x).shape[2:]
        pad = []
        for n, o, k, s, p, d in zip(x.shape[2:], out, self.k, self.s, self.p, self.d):
            extra = max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
            pad.append((p, p + extra))
        flat = [v for pair in reversed(pad) for v in pair]
        w = torch.full((x.shape[1], 1) + self.k, 1 / math.prod(self.k), dtype=x.dtype)
        conv = (F.conv1d, F.conv2d, F.conv3d)[self.nd - 1]
        y = conv(F.pad(x, flat), w, stride=self.s, dilation=self.d, groups=x.shape[1])
        assert y.shape[2:] == out
        return y


def positive(module, nd):
    """A float64 copy whose every weight is positive, with max pools replaced by sum pools."""
    m = copy.deepcopy(module).double().eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            # positive, and scaled by the fan-in so that activations stay near 1 (below ReLU6's 6)
            fan_in = math.prod(p.shape[1:]) if p.dim() > 1 else 4
            p.copy_((0.5 + torch.rand(p.shape, generator=gen, dtype=p.dtype)) / fan_in)
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.running_var is not None:
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
    for parent in list(m.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.pooling._MaxPoolNd):
                setattr(parent, name, SumPool(child, nd))
            elif isinstance(child, nn.modules.pooling._AdaptiveMaxPoolNd):
                avg = getattr(nn, type(child).__name__.replace("Max", "Avg"))
                setattr(parent, name, avg(child.output_size))
    return m


def gradient_mask(module, shape, position):
    """Input pixels with a nonzero gradient of output ``position`` (summed over channels)."""
    gen = torch.Generator().manual_seed(1)
    x = (0.5 + torch.rand(shape, generator=gen, dtype=torch.float64)).requires_grad_(True)
    y = module(x)
    if y.dim() == 2:  # flattened output (classifier): one position
        y[0].sum().backward()
    else:
        y[(0, slice(None)) + tuple(position)].sum().backward()
    return (x.grad[0] != 0).any(dim=0).numpy()


def box(mask):
    """Per-axis (first, last) of the True entries, or None when there are none."""
    if not mask.any():
        return None
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other) if other else mask)
        out.append((int(idx[0]), int(idx[-1])))
    return tuple(out)


def positions(sizes, limit=None):
    """Output positions to probe: first, second, middle and last on every axis."""
    per_axis = [sorted({0, min(1, n - 1), n // 2, n - 1}) for n in sizes]
    out = list(itertools.product(*per_axis))
    return out if limit is None else out[:: max(1, len(out) // limit)]


def check(module, shape, *, trace="auto", limit=None, grad=True, params=None, exact_box=True):
    """from_torch(module, shape) agrees with the module: params, sizes, gradient masks."""
    net = rfsym.from_torch(module, shape, trace=trace)
    size = shape[2:]
    nd = len(size)
    result = rfsym.analyze(net, input_size=size, in_channels=shape[1])
    # parameters
    assert result.params == (torch_params(module) if params is None else params)
    # sizes: every layer that is a module, and the output
    shapes, out_shape = hook_shapes(module, torch.zeros(shape))
    by_name = {layer.name: layer for layer in result.layers}
    checked = 0
    for name, tshape in shapes.items():
        if name not in by_name:
            continue  # a module the data flow does not use, or a pass-through
        layer = by_name[name]
        if len(tshape) == 2:  # flattened: (N, features)
            c = layer.out_channels
            feats = c if layer.type == "Linear" else c * math.prod(layer.axes("out_size"))
            assert feats == tshape[1], name
        else:
            assert layer.axes("out_size") == tshape[2:], (name, layer.axes("out_size"), tshape)
            assert layer.out_channels == tshape[1], name
        checked += 1
    assert checked >= 1
    if len(out_shape) > 2:
        assert result.axes("out_size") == out_shape[2:]
    # receptive fields
    if grad:
        pos_module = positive(module, nd)
        exact = 0
        out_sizes = result.axes("out_size") if len(out_shape) > 2 else (1,) * nd
        for pos in positions(out_sizes, limit):
            g = gradient_mask(pos_module, shape, pos)
            dep = dependency_mask(net, size, pos)
            assert np.array_equal(g, dep), pos
            span = result.span(pos)
            clipped = tuple((max(lo, 0), min(hi, n - 1)) for (lo, hi), n in zip(span, size))
            gbox = box(g)
            if gbox is None:  # only padding feeds this output (e.g. a transposed conv's output_padding)
                continue
            # The engine's span counts padding positions, the gradient cannot: clipped to the
            # input, the span holds the gradient's bounding box. It is that box unless a padding
            # position of an inner layer reads real input (a window dropped at the right border,
            # then padded: [3 stride 2 valid, 2 same] on 6 pixels) or the clip lands in a hole
            # (dilation, stride beyond kernel); the small networks here have neither.
            for (glo, ghi), (lo, hi) in zip(gbox, clipped):
                assert lo <= glo <= ghi <= hi, (pos, gbox, span)
            if exact_box:
                assert gbox == clipped, (pos, gbox, span)
                exact += 1
        assert exact or not exact_box  # the comparison was made somewhere
    return net, result


def both(module, shape, **kw):
    """check() with torch.fx and with hooks; both tracers give the same network."""
    a, ra = check(module, shape, trace="fx", **kw)
    b, _ = check(module, shape, trace="hooks", **kw)
    assert repr(a) == repr(b)
    return a, ra


# --------------------------------------------------------------------------- networks
def test_chain_2d():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                      nn.MaxPool2d(3, 2, padding=1), nn.Conv2d(8, 8, 3, stride=2, bias=False),
                      nn.ReLU6(), nn.AvgPool2d(2, ceil_mode=True), nn.Conv2d(8, 4, (1, 3), padding=(0, 1)),
                      nn.Dropout(0.3), nn.Identity(), nn.SiLU())
    net, r = both(m, (1, 3, 29, 31))
    assert [layer.name for layer in r.layers] == [str(i) for i in range(11)]
    assert r.layers[0].type == "Conv" and r.layers[3].type == "MaxPool"


def test_string_padding_groups_dilation():
    m = nn.Sequential(nn.Conv2d(4, 8, 3, padding="same", dilation=2), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, padding="same", groups=8), nn.ReLU(),  # depthwise
                      nn.Conv2d(8, 12, 5, padding="valid", groups=4, dilation=(1, 2)),
                      nn.MaxPool2d(3, stride=2, dilation=2, ceil_mode=True),
                      nn.Conv2d(12, 6, 4, padding="same"))  # even kernel: PyTorch pads 1 left, 2 right
    both(m, (2, 4, 23, 26))


def test_1d_and_3d():
    m1 = nn.Sequential(nn.Conv1d(2, 4, 5, padding=2, dilation=1), nn.ReLU(),
                       nn.Conv1d(4, 4, 2, dilation=2), nn.Conv1d(4, 4, 2, dilation=4),
                       nn.Conv1d(4, 4, 2, dilation=8), nn.MaxPool1d(2), nn.AvgPool1d(3, 2, padding=1),
                       nn.BatchNorm1d(4), nn.AdaptiveAvgPool1d(3))
    net, r = both(m1, (1, 2, 64))
    assert r.ndim == 1
    m3 = nn.Sequential(nn.Conv3d(1, 2, 3, padding=1), nn.MaxPool3d(2), nn.Conv3d(2, 3, (1, 3, 3), stride=(1, 2, 2)),
                       nn.BatchNorm3d(3), nn.ReLU(), nn.AvgPool3d(2, ceil_mode=True))
    both(m3, (1, 1, 6, 13, 12), limit=8)


def test_affine_free_batchnorm_and_bias_free_conv():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4, affine=False), nn.ReLU())
    net, r = both(m, (1, 3, 8, 8))
    assert r.params == 3 * 4 * 9


class Basic(nn.Module):
    """torchvision's BasicBlock shape: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x))."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Basic(8, 8, 1), Basic(8, 8, 1))
        self.layer2 = nn.Sequential(Basic(8, 16, 2), Basic(16, 16, 1))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_residual_network():
    m = TinyResNet()
    net, r = both(m, (1, 3, 45, 45))
    names = [layer.name for layer in r.layers]
    # module paths, the merge named by its block, the block's second relu call marked #2
    assert "layer2.0.downsample.0" in names and "layer1.1.conv2" in names
    assert r.layer("layer2.0").type == "Add" and r.layer("layer2.0.relu#2").type == "ReLU"
    assert r.layer("flatten").type == "Flatten" and r.layer("fc").type == "Linear"
    # the feature map before pooling: the longest path (no global layers yet)
    feat = r.layer("layer2.1.relu#2")
    assert feat.jump == 8 and r.aligned is True
    # stem: 7 + 2*2 + 4*2*(2 + 2) ... checked by the gradient; here the published recurrence
    assert r.layer("maxpool").rf == 11
    trunk = rfsym.analyze(rfsym.from_torch(nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2),
                                           (1, 3, 45, 45)), input_size=45)
    # 7x7/2, 3x3/2 pool, four 3x3 at jump 4, then 3x3/2 + three 3x3 at jump 8: Araujo's recurrence
    assert trunk.rf == 7 + 2 * 2 + 4 * 2 * 4 + 2 * 4 + 3 * 2 * 8


class Inception(nn.Module):
    """GoogLeNet's module: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max pool -> 1x1, concatenated."""

    def __init__(self, cin):
        super().__init__()
        self.b1 = nn.Conv2d(cin, 4, 1)
        self.b2 = nn.Sequential(nn.Conv2d(cin, 3, 1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(cin, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(cin, 4, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class InceptionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2), nn.ReLU())
        self.mixed_a = Inception(6)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.mixed_b = Inception(16)

    def forward(self, x):
        return self.mixed_b(self.pool(self.mixed_a(self.stem(x))))


def test_inception_like():
    net, r = both(InceptionNet(), (1, 3, 35, 33))
    merges = [layer for layer in r.layers if layer.type == "Concat"]
    assert [m.name for m in merges] == ["mixed_a", "mixed_b"]
    assert merges[0].out_channels == 16
    # the 5x5 branch dominates: 3 (stem) + 4*2 (5x5 at jump 2)
    assert merges[0].rf == 3 + 4 * 2


def test_dilated_wavenet_like():
    class Causal(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Conv1d(2, 2, 2, dilation=2 ** i) for i in range(5)])

        def forward(self, x):
            for conv in self.layers:
                y = torch.relu(conv(x))
                x = y
            return x

    net, r = both(Causal(), (1, 2, 70))
    assert r.rf == 32  # 1 + (1 + 2 + 4 + 8 + 16)
    assert [layer.name for layer in r.layers][:2] == ["layers.0", "relu"]


def test_transposed_and_upsampling():
    m = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ReLU(),
                      nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1),
                      nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, groups=2),
                      nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2, 2, 3),
                      nn.Upsample(scale_factor=(2, 3), mode="bilinear"), nn.Conv2d(2, 1, 1))
    net, r = both(m, (1, 2, 7, 6), limit=24)
    assert r.layer("2").period == 2 and r.layer("2").jump == 1


def test_conv_transpose_1d_3d_and_output_size():
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Conv1d(1, 2, 3, stride=3)
            self.up = nn.ConvTranspose1d(2, 1, 3, stride=3, dilation=1)

        def forward(self, x):
            return self.up(self.down(x), output_size=x.shape[2:])

    net, r = both(Up(), (1, 1, 20))
    assert r.out_size == 20
    m3 = nn.Sequential(nn.ConvTranspose3d(1, 2, 2, stride=2), nn.Conv3d(2, 1, 3, padding=1))
    both(m3, (1, 1, 3, 4, 2), limit=6)


class UNet(nn.Module):
    """A two-level U-Net: unpadded and padded convolutions, max-pool down, transposed convolution
    and bilinear upsampling up, skip connections concatenated (cropping is not supported, so the
    sizes are chosen to match)."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())
        self.pool2 = nn.MaxPool2d(2)
        self.bottom = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.up2 = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.dec2 = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU())
        self.dec1 = nn.Sequential(nn.Conv2d(12, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        b = self.bottom(self.pool2(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        up = F.interpolate(d2, scale_factor=2, mode="bilinear", align_corners=False)
        d1 = self.dec1(torch.cat([up, e1], dim=1))
        return self.head(d1)


def test_unet_like():
    net, r = both(UNet(), (1, 1, 16, 12), limit=16)
    assert r.out_size == (16, 12)
    cats = [layer for layer in r.layers if layer.type == "Concat"]
    assert len(cats) == 2 and all(c.name == "" for c in cats)  # merged in the top-level forward
    assert r.layer("head").out_channels == 2


class CroppingUNet(nn.Module):
    """Ronneberger et al.'s original U-Net shape: unpadded convolutions, the skip connection
    centre-cropped (by slicing) to the upsampled size."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.mid = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
        self.up = nn.ConvTranspose2d(4, 2, 2, stride=2)
        self.dec = nn.Sequential(nn.Conv2d(4, 2, 3), nn.ReLU(), nn.Conv2d(2, 1, 1))

    def forward(self, x):
        e = self.enc(x)
        u = self.up(self.mid(self.pool(e)))
        top, left = (e.shape[2] - u.shape[2]) // 2, (e.shape[3] - u.shape[3]) // 2
        return self.dec(torch.cat([e[:, :, top:top + u.shape[2], left:left + u.shape[3]], u], dim=1))


def test_unet_with_cropping():
    net, r = both(CroppingUNet(), (1, 1, 28, 30), limit=16)
    crop = r.layer("getitem")
    assert crop.type == "Crop" and crop.axes("out_size") == (16, 18)
    assert r.out_size == (14, 16)


def test_functional_forms():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=1)
            self.b = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
            self.fc = nn.Linear(4 * 4 * 4, 5)

        def forward(self, x):
            y = F.relu(self.a(x))
            y = F.max_pool2d(y, 2, 2, 0, 1, True)
            z = torch.sigmoid(self.b(y)) + y
            z = F.avg_pool2d(z, kernel_size=3, stride=2, padding=1)
            z = F.dropout(z, 0.1, self.training)
            z = F.interpolate(z, scale_factor=2, mode="nearest")
            z = F.adaptive_max_pool2d(z, (4, 4)).contiguous()
            return self.fc(z.view(z.size(0), -1))

    net, r = both(Functional(), (1, 3, 16, 16))
    types = [layer.type for layer in r.layers]
    assert types.count("Add") == 1 and "AdaptiveMaxPool" in types and "Flatten" in types


def test_mean_over_space_is_global_pooling():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3)
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))

    net, r = both(Head(), (1, 2, 9, 7))
    assert r.rf == (9, 7)
    assert [layer.type for layer in r.layers] == ["Conv", "GlobalAvgPool", "Flatten", "Linear"]


def test_reshape_flatten_and_torch_flatten():
    class View(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 2, stride=2)
            self.flat = nn.Flatten()
            self.fc = nn.Linear(2 * 3 * 3, 1)

        def forward(self, x):
            return self.fc(self.flat(self.conv(x)).reshape(x.shape[0], -1))

    net, r = both(View(), (1, 1, 6, 6))
    assert [layer.type for layer in r.layers] == ["Conv", "Flatten", "Linear"]


# --------------------------------------------------------------------------- random stacks
@st.composite
def conv_stacks(draw):
    nd = draw(st.sampled_from([1, 2]))
    n = draw(st.integers(6, 24))
    c = draw(st.sampled_from([1, 2, 4]))
    mods, ch = [], c
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "conv", "max", "avg", "tconv"]))
        k = draw(st.integers(1, 4))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 3))
        if kind == "conv":
            pad = draw(st.one_of(st.integers(0, 2), st.just("same"), st.just("valid")))
            if pad == "same":
                s = 1
            out = draw(st.sampled_from([1, 2, 4]))
            groups = math.gcd(ch, out) if draw(st.booleans()) else 1
            conv = (nn.Conv1d, nn.Conv2d)[nd - 1]
            mods.append(conv(ch, out, k, stride=s, padding=pad, dilation=d, groups=groups,
                             bias=draw(st.booleans())))
            ch = out
        elif kind == "tconv":
            # rfsym models transposed convolutions whose every output phase reads some input
            # (dilation 1: see test_dilated_transposed_then_holes)
            k, d = max(k, s), 1
            tconv = (nn.ConvTranspose1d, nn.ConvTranspose2d)[nd - 1]
            p = draw(st.integers(0, (d * (k - 1)) // 2))
            op = draw(st.integers(0, max(s, d) - 1))
            mods.append(tconv(ch, ch, k, stride=s, padding=p, output_padding=op, dilation=d))
        else:
            p = draw(st.integers(0, k // 2))
            ceil = draw(st.booleans())
            if kind == "max":
                mods.append((nn.MaxPool1d, nn.MaxPool2d)[nd - 1](k, s, p, dilation=d, ceil_mode=ceil))
            else:
                mods.append((nn.AvgPool1d, nn.AvgPool2d)[nd - 1](k, s, p, ceil_mode=ceil))
        if draw(st.booleans()):
            mods.append(nn.ReLU())
    return nn.Sequential(*mods), (1, c) + (n,) * nd


@settings(max_examples=300)
@given(conv_stacks())
def test_random_stacks(case):
    """Any random stack torch accepts imports to a network with torch's params, sizes and
    gradient masks; any input torch rejects as too small, rfsym rejects too."""
    module, shape = case
    try:
        with torch.no_grad():
            module(torch.zeros(shape))
    except RuntimeError:
        with pytest.raises(RfsymError):
            rfsym.analyze(_import_without_running(module, shape), input_size=shape[2:])
        return
    check(module, shape, limit=4, exact_box=False)


def _import_without_running(module, shape):
    """The stack imported layer by layer at a comfortable size (from_torch needs a forward pass
    that works)."""
    nd, c = len(shape) - 2, shape[1]
    layers = []
    for m in module:
        layers.append(rfsym.from_torch(m, (1, c) + (64,) * nd)[0])
        c = getattr(m, "out_channels", c)
    return rfsym.Sequential(*layers)


class AddBlock(nn.Module):
    def __init__(self, body, shortcut):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class CatBlock(nn.Module):
    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], 1)


def _keeping_size(draw, c, out):
    """A layer that keeps the spatial size (stride 1, centred padding)."""
    k = draw(st.sampled_from([1, 3, 5]))
    d = draw(st.integers(1, 2))
    if out != c or draw(st.booleans()):
        return nn.Conv2d(c, out, k, padding=d * (k - 1) // 2, dilation=d, bias=draw(st.booleans()))
    return draw(st.sampled_from([nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(3, 1, 1), nn.ReLU(), nn.Identity()]))


@st.composite
def blocks(draw, c, depth):
    """A random block on ``c`` channels — a layer, a residual block or an Inception-like concat,
    nested up to ``depth`` deep — and its output channels."""
    kind = draw(st.sampled_from(["layer", "res", "cat"] if depth else ["layer"]))
    if kind == "layer":
        out = draw(st.sampled_from([c, 2]))
        return _keeping_size(draw, c, out), out
    if kind == "res":
        body, ch = [], c
        for _ in range(draw(st.integers(1, 2))):
            m, ch = draw(blocks(ch, depth - 1))
            body.append(m)
        if ch == c and draw(st.booleans()):
            shortcut = nn.Identity()
        else:
            shortcut = nn.Conv2d(c, ch, draw(st.sampled_from([1, 3])), padding="same")
        return AddBlock(nn.Sequential(*body), shortcut), ch
    branches, total = [], 0
    for _ in range(draw(st.integers(2, 3))):
        m, o = draw(blocks(c, depth - 1))
        branches.append(m)
        total += o
    return CatBlock(branches), total


@st.composite
def graphs(draw):
    c0 = c = draw(st.sampled_from([1, 2]))
    mods = []
    for _ in range(draw(st.integers(1, 3))):
        m, c = draw(blocks(c, 2))
        mods.append(m)
        if draw(st.booleans()):  # change the jump between blocks
            mods.append(nn.Conv2d(c, c, 3, stride=2, padding=draw(st.integers(0, 1))))
    return nn.Sequential(*mods), (1, c0) + (draw(st.integers(7, 14)),) * 2


@settings(max_examples=100)
@given(graphs())
def test_random_graphs(case):
    """Random nestings of residual and concat blocks import with torch's params, sizes and
    gradient masks, through both tracers alike."""
    module, shape = case
    try:
        with torch.no_grad():
            module(torch.zeros(shape))
    except RuntimeError:
        return  # too small for the strided convolutions
    net, _ = check(module, shape, trace="fx", limit=3, exact_box=False)
    assert repr(rfsym.from_torch(module, shape, trace="hooks")) == repr(net)


def test_dilated_transposed_then_holes():
    """A dilated transposed convolution interleaves its phases; a dilated pool right after reads
    every other one (the engine tracks the pool's holes)."""
    m = nn.Sequential(nn.ConvTranspose1d(1, 1, 2, stride=2, dilation=3), nn.MaxPool1d(2, stride=1, dilation=2))
    check(m, (1, 1, 6))


# --------------------------------------------------------------------------- errors and warnings
def test_unsupported_modules_all_listed():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")
            self.norm = nn.GroupNorm(1, 2)
            self.ok = nn.ReLU()

        def forward(self, x):
            return F.pad(self.ok(self.norm(self.conv(x))), (1, 1, 1, 1))

    with pytest.raises(LayerError) as info:
        rfsym.from_torch(Odd(), (1, 1, 8, 8))
    msg = str(info.value)
    assert msg.startswith("from_torch: 3 unsupported operation(s) in Odd: ")
    assert "conv (Conv2d: padding_mode='circular'" in msg
    assert "norm (GroupNorm)" in msg and "pad (pad)" in msg
    assert info.value.unsupported[1] == "norm (GroupNorm)"
    # declared position-wise by the user: accepted
    net = rfsym.from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.GroupNorm(1, 2)), (1, 1, 8, 8),
                           elementwise=(nn.GroupNorm,))
    assert type(net[1]) is rfsym.Elementwise and net[1].name == "1"


def test_elementwise_warning():
    class Soft(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.act = nn.Mish()
            self.prelu = nn.PReLU(2)

        def forward(self, x):
            return self.prelu(self.act(self.conv(x))) * 0.5

    with pytest.warns(UserWarning, match="treated these as elementwise") as rec:
        net = rfsym.from_torch(Soft(), (1, 1, 8, 8))
    text = str(rec[0].message)
    assert "'act' (Mish)" in text and "'prelu' (PReLU, its 2 parameters not counted)" in text
    assert "'mul' (mul with a constant)" in text
    assert [type(layer).__name__ for layer in net] == ["Conv", "Elementwise", "Elementwise", "Elementwise"]


def test_broadcast_merge_is_unsupported():
    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Conv2d(2, 2, 1)

        def forward(self, x):
            y = self.conv(x)
            return y * torch.sigmoid(self.fc(self.pool(y)))

    with pytest.raises(LayerError, match=r"mul \(mul: mul of tensors of shapes .* broadcasting"):
        rfsym.from_torch(SE(), (1, 2, 8, 8))


def test_product_of_two_branches_merges_like_add():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(2, 2, 3, padding=1)
            self.b = nn.Conv2d(2, 2, 5, padding=2)

        def forward(self, x):
            return self.a(x) * torch.sigmoid(self.b(x))

    with pytest.warns(UserWarning, match=r"'mul' \(mul of two tensors, merged like add\)"):
        net, r = check(Gate(), (1, 2, 9, 9), grad=False)
    assert r.rf == 5 and r.layers[-1].type == "Add"


def test_densenet_like_graph_is_reported():
    class Dense(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 1, 3, padding=1)
            self.c2 = nn.Conv2d(2, 1, 3, padding=1)
            self.c3 = nn.Conv2d(3, 1, 3, padding=1)

        def forward(self, x):
            x1 = self.c1(x)
            x2 = self.c2(torch.cat([x, x1], 1))
            return self.c3(torch.cat([x, x1, x2], 1))

    with pytest.raises(GraphError, match="DenseNet-like graph.*c1"):
        rfsym.from_torch(Dense(), (1, 1, 8, 8))


def test_outputs_and_inputs_checked():
    class Two(nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(GraphError, match="returns tuple of tensors"):
        rfsym.from_torch(Two(), (1, 1, 4, 4))
    with pytest.raises(RfsymError, match=r"input_shape must be \(batch, channels, \*spatial\)"):
        rfsym.from_torch(nn.Conv2d(1, 1, 3), (1, 8, 8)[:2])
    with pytest.raises(RfsymError, match="expects a torch.nn.Module"):
        rfsym.from_torch(lambda x: x, (1, 1, 4, 4))
    with pytest.raises(RfsymError, match="trace must be"):
        rfsym.from_torch(nn.Conv2d(1, 1, 3), (1, 1, 4, 4), trace="jit")


def test_fx_failure_falls_back_to_hooks():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3)
            self.b = nn.Conv2d(1, 1, 5)

        def forward(self, x):
            if x.sum() >= 0:  # data-dependent control flow: torch.fx cannot trace it
                return self.a(x)
            return self.b(x)

    with pytest.raises(RfsymError, match="torch.fx could not trace Branchy"):
        rfsym.from_torch(Branchy(), (1, 1, 8, 8), trace="fx")
    with pytest.warns(UserWarning, match=r"do not contribute to the output.*: b \(26\)"):
        net, r = check(Branchy(), (1, 1, 8, 8), params=10)
    assert [layer.name for layer in r.layers] == ["a"] and r.params == 10


def test_training_mode_restored_and_unused_modules_warned():
    m = TinyResNet().train()
    m.spare = nn.Linear(3, 3)
    with pytest.warns(UserWarning, match=r"do not contribute to the output.*spare \(12\)"):
        rfsym.from_torch(m, (1, 3, 32, 32))
    assert all(mod.training for mod in m.modules())
    assert float(m.bn1.running_mean.abs().sum()) == 0.0  # no statistics updated by the trace


def test_import_rfsym_does_not_import_torch():
    code = "import sys, rfsym; rfsym.analyze; assert 'torch' not in sys.modules; print(rfsym.from_torch.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "from_torch"
