"""rfsym: derive the arithmetic of convolutional networks in closed form.

>>> import rfsym
>>> k = rfsym.symbols("k")
>>> rfsym.analyze(rfsym.Sequential(rfsym.Conv(k), rfsym.Conv(k))).rf
2*k - 1
"""

from .comparison import compare, crossover, smallest
from .effective_field import ERF, discrete_erf, erf
from .engine import LayerResult, Result, analyze
from .errors import GraphError, LayerError, RfsymError, SizeError, SpecError
from .input_sizes import Sizes, TilingPlan, sizes, tiling
from .layers import (
    ELU,
    GELU,
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    Attention,
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    ConvTranspose,
    Crop,
    Dropout,
    Elementwise,
    Flatten,
    GlobalAvgPool,
    GlobalMaxPool,
    Graph,
    Hardsigmoid,
    Hardswish,
    Identity,
    Layer,
    LeakyReLU,
    Linear,
    MaxPool,
    Norm,
    Pad,
    Params,
    PixelShuffle,
    PixelUnshuffle,
    Pointwise,
    ReLU,
    ReLU6,
    Repeat,
    Residual,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
    Upsample,
    repetition_index,
)
from .summaries import Summary, summary
from .symbolization import Rule, repeats, symbolize
from .symbols import symbols
from .verification import dependency_mask, verify

__version__ = "0.1.0"

__all__ = [
    "analyze", "Result", "LayerResult", "symbols", "erf", "ERF", "discrete_erf",
    "Layer", "Conv", "MaxPool", "AvgPool", "BatchNorm", "Linear", "Flatten", "GlobalAvgPool",
    "GlobalMaxPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "Elementwise", "Identity", "ReLU",
    "ReLU6", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "ELU",
    "Softmax", "Dropout", "Sequential",
    "Residual", "Concat", "Graph", "Repeat", "ConvTranspose", "Upsample", "Crop", "repetition_index",
    "Pad", "Norm", "Pointwise", "Params", "Attention", "PixelShuffle", "PixelUnshuffle",
    "verify", "dependency_mask", "sizes", "tiling", "Sizes", "TilingPlan", "from_torch", "from_onnx",
    "read_onnx", "from_keras", "compare", "smallest", "crossover", "summary", "Summary",
    "RfsymError", "LayerError", "GraphError", "SizeError", "SpecError",
    "symbolize", "repeats", "Rule",
]


def __getattr__(name):
    # from_torch lives in a module that imports torch only when called; load it on first use
    if name == "from_torch":
        from .torch_import import from_torch

        return from_torch
    if name in ("from_onnx", "read_onnx"):  # the same for ONNX (the onnx package)
        from . import onnx_import

        return getattr(onnx_import, name)
    if name == "from_keras":  # likewise keras (rfsym.keras_import)
        from .keras_import import from_keras

        return from_keras
    if name == "zoo":  # the model zoo, loaded on first use (rfsym.zoo.get("resnet50"))
        import importlib

        return importlib.import_module(".zoo", __name__)
    raise AttributeError(f"module 'rfsym' has no attribute {name!r}")
