"""The figures the documentation shows, drawn from code when the site is built (docs/hooks.py
calls :func:`render`); nothing here is a stored image."""

from pathlib import Path

from rfsym import Conv, MaxPool, Repeat, Sequential, analyze, symbols, zoo
from rfsym.plot import boxes, growth, mask, tradeoff


def render(out: Path) -> list[Path]:
    """Draw every figure into ``out``; returns the files."""
    n, C = symbols("n C")
    files = {
        "growth.png": lambda p: growth(
            {"3×3, stride 1": Repeat(Conv(3, padding=1), n),
             "3×3, stride 2": Repeat(Conv(3, stride=2, padding=1), n),
             "3×3 + 2×2 max-pool": Repeat(Sequential(Conv(3, padding=1), MaxPool(2)), n)},
            depths=range(1, 11), log=True, path=p),
        "tradeoff.png": lambda p: tradeoff(
            {"one (2n+1)×(2n+1)": Conv(2 * n + 1, in_channels=C, out_channels=C, bias=False),
             "n × 3×3": Repeat(Conv(3, in_channels=C, out_channels=C, bias=False), n)},
            depths=range(1, 8), symbol="n", values={"C": 64}, path=p),
        "mask.png": lambda p: mask(Sequential(Conv(3, padding=1), Conv(3, padding=1)), 5, (2, 2), counts=True,
                                   path=p),
        "boxes.png": lambda p: boxes(analyze(Sequential(Conv(3, padding=1), Conv(3, stride=2, padding=1)),
                                             input_size=8), [(0, 0), (2, 3)], path=p),
        "resnets.png": lambda p: growth({name: zoo.analyze(name) for name in ("resnet18", "resnet50")}, path=p,
                                        title="Receptive field through the network, layer by layer"),
        "backbones.png": lambda p: tradeoff({name: zoo.analyze(name) for name in ("resnet18", "resnet50", "vgg16",
                                                                                    "mobilenet_v2")},
                                            x="features.rf", log=True, path=p),
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in files.items():
        draw(out / name)
        paths.append(out / name)
    return paths
