"""Optional: every torchvision zoo entry against torchvision's own model (skipped without torchvision).

Parameters (``sum(p.numel())``), the module path of every convolution, BatchNorm and linear layer,
and the spatial output size of every convolution (forward hooks on a zero input).
"""

import pytest

from rfsym import analyze, zoo
from rfsym.zoo.torchvision import inception_v3_aux_logits

torch = pytest.importorskip("torch")
try:
    from torchvision import models
except Exception as err:  # ImportError, or a torchvision built for another torch (RuntimeError)
    pytest.skip(f"torchvision is not usable here: {err}", allow_module_level=True)

ENTRIES = [name for name in zoo.names() if zoo.entry(name).family == "torchvision"]
_MODULE_TYPES = ("Conv", "BatchNorm", "Linear")


def _torchvision_model(name):
    kwargs = {"weights": None}
    if name == "inception_v3":
        kwargs.update(aux_logits=True, init_weights=False)
    with torch.device("meta"):  # shapes only: no memory, no initialisation, no arithmetic
        return getattr(models, name)(**kwargs).eval()


@pytest.mark.parametrize("name", ENTRIES)
def test_against_torchvision(name):
    model = _torchvision_model(name)
    entry = zoo.entry(name)
    ours = entry.analyze()
    params = ours.params
    if name == "inception_v3":  # the training-only AuxLogits head is a separate network here
        params += analyze(inception_v3_aux_logits(), input_size=17, in_channels=768).params
    assert params == sum(p.numel() for p in model.parameters())

    modules = dict(model.named_modules())
    layers = [layer for layer in ours.layers if layer.type.startswith(_MODULE_TYPES)]
    missing = [layer.name for layer in layers if layer.name not in modules]
    assert not missing, f"{name}: no torchvision module at {missing[:5]}"

    sizes = {}

    def hook(path):
        def record(module, inputs, output):
            sizes[path] = tuple(output.shape[2:])
        return record

    for layer in layers:
        if layer.type == "Conv":
            modules[layer.name].register_forward_hook(hook(layer.name))
    with torch.no_grad():
        model(torch.zeros(1, entry.in_channels, entry.input_size, entry.input_size, device="meta"))
    for layer in layers:
        if layer.type == "Conv":
            assert sizes[layer.name] == (layer.out_size,) * 2, layer.name
