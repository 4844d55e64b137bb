"""rfsym.tiling: running the plan tile by tile and stitching equals whole-image inference.

Random convolutional networks are built twice, in PyTorch (float64, random weights) and as rfsym
layers, from one description; the stitched output must equal the whole image's to 1e-9, and the
halo is tight: perturbing the first (last) tile position the kept outputs read changes them,
perturbing the position just outside does not."""

import random

import pytest

import rfsym as R

torch = pytest.importorskip("torch")
nn = torch.nn


class Net(nn.Module):
    """A torch module mirroring an rfsym description: ("seq", [...]) or ("cat", skip, deeper)."""

    def __init__(self, desc):
        super().__init__()
        self.desc = desc
        self.parts = nn.ModuleList()
        for item in desc:
            if item[0] == "cat":
                self.parts.append(nn.ModuleList([Net(item[1]), Net(item[2])]))
            else:
                self.parts.append(item[1])

    def forward(self, x):
        for item, part in zip(self.desc, self.parts):
            x = torch.cat([part[0](x), part[1](x)], dim=1) if item[0] == "cat" else part(x)
        return x


def _rfsym(desc):
    out = []
    for item in desc:
        out.append(R.Concat(R.Sequential(*_rfsym(item[1])), R.Sequential(*_rfsym(item[2])))
                   if item[0] == "cat" else item[2])
    return out


def conv(cin, cout, k, s=1, p=0, d=1):
    m = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, dtype=torch.float64)
    return ("layer", m, R.Conv(k, stride=s, padding=p, dilation=d, in_channels=cin, out_channels=cout))


def pool(k, s, p=0, kind="max", ceil=False):
    if kind == "max":
        return ("layer", nn.MaxPool2d(k, s, p, ceil_mode=ceil), R.MaxPool(k, stride=s, padding=p, ceil_mode=ceil))
    return ("layer", nn.AvgPool2d(k, s, p, ceil_mode=ceil), R.AvgPool(k, stride=s, padding=p, ceil_mode=ceil))


def up(cin, cout, kind):
    if kind == "transposed":
        return ("layer", nn.ConvTranspose2d(cin, cout, 2, stride=2, dtype=torch.float64),
                R.ConvTranspose(2, stride=2, in_channels=cin, out_channels=cout))
    if kind == "transposed3":
        return ("layer", nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1,
                                            dtype=torch.float64),
                R.ConvTranspose(3, stride=2, padding=1, output_padding=1, in_channels=cin, out_channels=cout))
    mode = "nearest" if kind == "nearest" else "bilinear"
    return ("layer", nn.Upsample(scale_factor=2, mode=mode), R.Upsample(2, mode=mode))


def tanh():
    return ("layer", nn.Tanh(), R.Tanh())


def random_chain(rng):
    c, desc = 2, []
    for _ in range(rng.randint(2, 5)):
        kind = rng.choice(["conv", "conv", "dilated", "strided", "pool"])
        if kind == "pool":
            desc.append(pool(rng.choice([2, 3]), 2, rng.choice([0, 1]), rng.choice(["max", "avg"])))
            continue
        k = rng.choice([1, 2, 3, 5])
        cout = rng.randint(1, 3)
        d = rng.choice([2, 3]) if kind == "dilated" else 1
        s = 2 if kind == "strided" else 1
        desc.append(conv(c, cout, k, s, rng.randint(0, k // 2 + 1), d))
        c = cout
        if rng.random() < 0.4:
            desc.append(tanh())
    return desc, 2


def small_unet(rng, padded=True, upkind="transposed", depth=2, c=2):
    """Padded (modern) or unpadded (original, with crops) U-Net of ``depth`` levels."""
    def level(d, cin):
        p = 1 if padded else 0
        width = c * 2 ** d
        convs = [conv(cin, width, 3, p=p), tanh(), conv(width, width, 3, p=p)]
        if d == depth:
            return convs, width
        inner, w_in = level(d + 1, width)
        deeper = [pool(2, 2)] + inner + [up(w_in, width, upkind)]
        if upkind in ("nearest", "bilinear"):
            deeper.append(conv(w_in, width, 1))
        lose = 0 if padded else 2 * _unet_loss(d + 1, depth)
        skip = [("layer", nn.Identity(), R.Identity())] if padded else \
            [("layer", CropT(lose), R.Crop(lose))]
        return convs + [("cat", skip, deeper), conv(2 * width, width, 3, p=p)], width
    desc, _ = level(0, 1)
    return desc, 1


def _unet_loss(d, depth):
    """Positions lost per side below level d of an unpadded U-Net (two 3x3 convs per side of a
    level; the concatenation is followed by one conv): the skip crop."""
    if d == depth:
        return 2
    return 2 + 2 * _unet_loss(d + 1, depth) + 1


class CropT(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a

    def forward(self, x):
        a = self.a
        return x[..., a:x.shape[-2] - a, a:x.shape[-1] - a]


def _check(desc, cin, tile, seed):
    torch.manual_seed(seed)
    model = Net(desc).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    net = R.Sequential(*_rfsym(desc))
    plan = R.tiling(net, tile, in_channels=cin)
    s = R.sizes(net, in_channels=cin)
    ax = plan.axes[0]
    image = next(n for n in s.first(400) if n >= ax.tile + 2 * ax.step and (n - ax.tile) % ax.quantum == 0)
    x = torch.randn(1, cin, image, image + ax.quantum if s.is_valid(image + ax.quantum) else image,
                    dtype=torch.float64)
    with torch.no_grad():
        whole = model(x)
        tiled = plan.apply(model, x)
    assert tiled.shape == whole.shape
    assert len(plan.tiles(x.shape[-2:])) >= 4
    assert (tiled - whole).abs().max().item() < 1e-9
    # the halo is tight: the kept outputs read tile positions reads[0] .. reads[1], and nothing outside
    t = x[..., ax.step:ax.step + ax.tile, :ax.tile]
    with torch.no_grad():
        base = model(t)[..., ax.crop[0]:ax.out_tile - ax.crop[1], :]
        first, last = ax.reads
        for pos, needed in ((first, True), (first - 1, False), (last, True), (last + 1, False)):
            if not 0 <= pos < ax.tile:
                continue
            bumped = t.clone()
            bumped[..., pos, :] += 1.0
            out = model(bumped)[..., ax.crop[0]:ax.out_tile - ax.crop[1], :]
            assert ((out - base).abs().max().item() > 1e-9) == needed, (pos, needed, plan)
    return plan


@pytest.mark.parametrize("seed", range(6))
def test_random_chains(seed):
    rng = random.Random(seed)
    desc, cin = random_chain(rng)
    net = R.Sequential(*_rfsym(desc))
    smallest = R.sizes(net, in_channels=cin).first(1)[0]
    rf = R.analyze(net, smallest, in_channels=cin).rf
    _check(desc, cin, smallest + rf + rng.randint(20, 40), seed)


@pytest.mark.parametrize("upkind", ["transposed", "nearest", "bilinear", "transposed3"])
def test_padded_unets(upkind):
    desc, cin = small_unet(random.Random(1), padded=True, upkind=upkind)
    _check(desc, cin, 64, 1)


def test_unpadded_unet_with_crops():
    desc, cin = small_unet(random.Random(2), padded=False, upkind="transposed")
    plan = _check(desc, cin, 76, 2)
    assert plan.quantum == 4


def test_residual_graph():
    torch_body = [conv(2, 2, 3, p=1), tanh(), conv(2, 2, 3, p=2, d=2)]
    desc = [conv(1, 2, 3, s=2, p=1)]
    net = R.Sequential(desc[0][2], R.Residual(R.Sequential(*[b[2] for b in torch_body])))

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = desc[0][1]
            self.body = nn.Sequential(*[b[1] for b in torch_body])

        def forward(self, x):
            x = self.stem(x)
            return x + self.body(x)

    torch.manual_seed(0)
    model = Res().eval()
    plan = R.tiling(net, 33, in_channels=1)
    x = torch.randn(1, 1, 33 + 4 * plan.step, 33 + 4 * plan.step, dtype=torch.float64)
    with torch.no_grad():
        assert (plan.apply(model, x) - model(x)).abs().max().item() < 1e-9


def test_global_layers_are_refused():
    net = R.zoo.get("resnet50")
    with pytest.raises(R.RfsymError, match="avgpool|fc|window that depends"):
        R.tiling(net, 512)
    plan = R.tiling(net, 512, layer="layer4")
    assert plan.step % 32 == 0 and plan.quantum == 32


def tf_same(cin, cout, k, s):
    """TensorFlow SAME: on valid sizes (the input divisible by s) its padding is the constant
    max(k - s, 0), the extra position at the end: a fixed asymmetric pad in PyTorch."""
    total = max(k - s, 0)
    pad = (total // 2, total - total // 2)
    module = nn.Sequential(nn.ZeroPad2d((pad[0], pad[1], pad[0], pad[1])),
                           nn.Conv2d(cin, cout, k, stride=s, dtype=torch.float64))
    return ("layer", module, R.Conv(k, stride=s, padding="tf_same", in_channels=cin, out_channels=cout))


def test_tf_same_asymmetric_halo():
    desc = [tf_same(1, 2, 3, 2), tanh(), tf_same(2, 2, 4, 2), tf_same(2, 1, 3, 1)]
    plan = _check(desc, 1, 64, 3)
    net = R.Sequential(*_rfsym(desc))
    r = R.analyze(net, plan.tile, in_channels=1)
    assert sum(plan.halo) == r.rf - r.jump  # the context beyond each output's own jump-wide cell
    assert plan.halo[0] != plan.halo[1]  # the extra SAME padding sits at the end


def test_graph_with_fan_out_and_fan_in():
    torch.manual_seed(4)
    a = nn.Conv2d(1, 2, 3, padding=1, dtype=torch.float64)
    b = nn.Conv2d(2, 2, 3, stride=2, padding=1, dtype=torch.float64)
    c = nn.Conv2d(2, 2, 1, stride=2, dtype=torch.float64)
    e = nn.Conv2d(2, 2, 3, padding=2, dilation=2, dtype=torch.float64)
    net = R.Graph(("a", R.Conv(3, padding=1, in_channels=1, out_channels=2), "input"),
                  ("b", R.Conv(3, stride=2, padding=1, out_channels=2), "a"),
                  ("c", R.Conv(1, stride=2, out_channels=2), "a"),
                  ("d", "add", ("b", "c")),
                  ("t", R.Tanh(), "d"),
                  ("e", R.Conv(3, padding=2, dilation=2, out_channels=2), "t"),
                  ("f", "concat", ("d", "e")))

    def model(x):
        y = a(x)
        d = b(y) + c(y)
        return torch.cat([d, e(torch.tanh(d))], dim=1)

    plan = R.tiling(net, 41, in_channels=1)
    x = torch.randn(1, 1, 41 + 3 * plan.step, 41 + 2 * plan.step, dtype=torch.float64)
    with torch.no_grad():
        assert (plan.apply(model, x) - model(x)).abs().max().item() < 1e-9
        ax = plan.axes[0]
        t = x[..., ax.step:ax.step + ax.tile, :ax.tile]
        base = model(t)[..., ax.crop[0]:ax.out_tile - ax.crop[1], :]
        for pos, needed in ((ax.reads[0], True), (ax.reads[0] - 1, False), (ax.reads[1], True),
                            (ax.reads[1] + 1, False)):
            if 0 <= pos < ax.tile:
                bumped = t.clone()
                bumped[..., pos, :] += 1.0
                out = model(bumped)[..., ax.crop[0]:ax.out_tile - ax.crop[1], :]
                assert ((out - base).abs().max().item() > 1e-9) == needed
