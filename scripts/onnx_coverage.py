"""The coverage table of ``docs/guides/onnx.md``: torchvision models through ``rfsym.from_onnx``.

Each model is built with random weights (``weights=None``, then every parameter drawn uniformly
with a fixed seed, so that no two weights are equal and the exporter shares none), put in eval
mode, exported with ``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter) at its
ImageNet input size with ``training=TrainingMode.PRESERVE`` (BatchNorm kept, not folded into the
convolutions), imported and analysed. The table gives rfsym's parameters and MACs for the whole
network and the receptive field and jump at the reference feature map (the last spatial map
before the head); the tests (``tests/test_onnx_import.py``) check them against PyTorch.

Usage, from the repository root::

    python scripts/onnx_coverage.py                           # print the table
    python scripts/onnx_coverage.py --write docs/guides/onnx.md
    python scripts/onnx_coverage.py --check docs/guides/onnx.md    # exit 1 when stale
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared coverage_pages module
from coverage_pages import number, run  # noqa: E402

MARK_BEGIN, MARK_END = "<!-- onnx-coverage: begin -->", "<!-- onnx-coverage: end -->"

# (torchvision name, input size): classification models at 224 (Inception v3 at 299, its size),
# segmentation models at 224 too
MODELS = [
    ("alexnet", 224), ("vgg11", 224), ("resnet18", 224), ("resnet50", 224), ("resnext50_32x4d", 224),
    ("squeezenet1_0", 224), ("squeezenet1_1", 224), ("googlenet", 224), ("inception_v3", 299),
    ("densenet121", 224), ("mobilenet_v2", 224), ("mobilenet_v3_small", 224),
    ("mobilenet_v3_large", 224), ("mnasnet0_5", 224), ("shufflenet_v2_x0_5", 224),
    ("efficientnet_b0", 224), ("regnet_x_400mf", 224), ("regnet_y_400mf", 224),
    ("convnext_tiny", 224), ("lraspp_mobilenet_v3_large", 224), ("fcn_resnet50", 224),
]
SEGMENTATION = {"lraspp_mobilenet_v3_large", "fcn_resnet50", "deeplabv3_mobilenet_v3_large"}
# parameters of training-only heads that the eval-mode graph (and so the export) does not contain
TRAINING_ONLY = ("AuxLogits.", "aux1.", "aux2.")


def build(name):
    """The torchvision model ``name`` in eval mode, with distinct random weights."""
    import torch
    from torchvision import models

    kwargs = {"weights": None}
    if name in SEGMENTATION:
        kwargs["weights_backbone"] = None
    if name in ("inception_v3", "googlenet"):
        kwargs["init_weights"] = False  # the weights are redrawn below; skip the slow initialiser
    model = models.get_model(name, **kwargs).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 0.2 - 0.1)
    return model


def export(model, path, size, dynamic=False):
    """Write ``model`` as ONNX to ``path`` (input ``x`` of shape ``(1, 3, size, size)``; with
    ``dynamic`` the height and width are the symbolic dims ``H`` and ``W``)."""
    import torch

    axes = {"x": {2: "H", 3: "W"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, *((size,) * 2 if isinstance(size, int) else size)),),
                          str(path), dynamo=False, training=torch.onnx.TrainingMode.PRESERVE,
                          input_names=["x"], dynamic_axes=axes)
    return path


@dataclass
class Row:
    """One model through the importer (what the table shows)."""

    model: str
    size: int
    error: str | None = None
    params: object = None
    macs: object = None
    features: str | None = None
    rf: object = None
    jump: object = None

    def markdown(self):
        if self.error:
            return f"| `{self.model}` | {self.size} | no: {self.error} | | | | | |"
        return (f"| `{self.model}` | {self.size} | yes | {int(self.params):,} | {int(self.macs) / 1e9:.3f} | "
                f"`{self.features or '(output)'}` | {number(self.rf)} | {number(self.jump)} |")


def analyse(path, size):
    """``(model, import, result)``: the ONNX file at ``path`` read, imported and analysed at ``size``."""
    import onnx

    import rfsym

    model = onnx.load(str(path))
    imported = rfsym.read_onnx(model)
    return model, imported, rfsym.analyze(imported.graph, input_size=size, in_channels=3)


def row(name, size, path):
    """The table row of the exported model at ``path``."""
    import rfsym

    try:
        _, imported, result = analyse(path, size)
    except rfsym.RfsymError as err:
        first = str(err).splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        return Row(name, size, error=detail.replace("|", "/"))
    return row_of(name, size, imported, result)


def row_of(name, size, imported, result):
    """The table row of an imported and analysed model."""
    at = result.layer(imported.features) if imported.features else result
    return Row(name, size, params=result.params, macs=result.macs, features=imported.features,
               rf=at.rf, jump=at.jump)


def rows(directory=None):
    """Every model of :data:`MODELS`, exported into ``directory`` (a temporary one by default)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(directory or tmp)
        out = []
        for name, size in MODELS:
            path = export(build(name), folder / f"{name}.onnx", size)
            out.append(row(name, size, path))
        return out


def table(rows_):
    import torch

    head = (f"torch {torch.__version__.split('+')[0]}, `torch.onnx.export(dynamo=False)`; generated by "
            "`python scripts/onnx_coverage.py --write docs/guides/onnx.md`.\n\n"
            "| model | input | imported | params | GMACs | reference feature map | rf | jump |\n"
            "|---|---|---|---|---|---|---|---|\n")
    return head + "".join(r.markdown() + "\n" for r in rows_)


def main(argv=None, rows_=None):
    """Print, write or check the table (``rows_``: precomputed rows, for the tests)."""
    return run(argv, description=__doc__.splitlines()[0], script="scripts/onnx_coverage.py",
               text=lambda: table(rows() if rows_ is None else rows_), begin=MARK_BEGIN, end=MARK_END)


if __name__ == "__main__":
    sys.exit(main())
