"""rfsym: derive the arithmetic of convolutional networks in closed form.

>>> import rfsym
>>> k = rfsym.symbols("k")
>>> rfsym.analyze(rfsym.Sequential(rfsym.Conv(k), rfsym.Conv(k))).rf
2*k - 1

The public names load their modules on first use (PEP 562): ``import rfsym`` and ``rfsym --help``
import neither sympy nor numpy, and ``rfsym.from_torch`` imports torch only when called.
"""

import importlib
import sys
import types

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

# public name -> the module (relative to this package) that defines it
_HOMES = {
    ".comparison": "compare crossover smallest",
    ".effective_field": "ERF discrete_erf erf",
    ".engine": "LayerResult Result analyze",
    ".errors": "GraphError LayerError RfsymError SizeError SpecError",
    ".input_sizes": "Sizes TilingPlan sizes tiling",
    ".layers": "ELU GELU AdaptiveAvgPool AdaptiveMaxPool Attention AvgPool BatchNorm Concat Conv ConvTranspose "
               "Crop Dropout Elementwise Flatten GlobalAvgPool GlobalMaxPool Graph Hardsigmoid Hardswish "
               "Identity Layer LeakyReLU Linear MaxPool Norm Pad Params PixelShuffle PixelUnshuffle Pointwise "
               "ReLU ReLU6 Repeat Residual Sequential Sigmoid SiLU Softmax Tanh Upsample repetition_index",
    ".summaries": "Summary summary",
    ".symbolization": "Rule repeats symbolize",
    ".symbols": "symbols",
    ".verification": "dependency_mask verify",
    ".torch_import": "from_torch",  # torch itself is imported when from_torch is called
    ".onnx_import": "from_onnx read_onnx",
    ".keras_import": "from_keras",
}
_FRAMEWORKS = ("from_torch", "from_onnx", "read_onnx", "from_keras")
_LAZY = {name: module for module, names in _HOMES.items() for name in names.split()}
# the submodules an eager import of the names above used to load (attributes of the package,
# listed by dir(rfsym) as before), and the zoo (rfsym.zoo.get("resnet50"))
_SUBMODULES = ("chain", "checked", "comparison", "compiled", "dag", "depth", "effective_field", "engine",
               "enumeration", "errors", "format", "input_sizes", "layers", "lazy_numpy", "maps", "ops", "result",
               "rules", "sharing", "summaries", "symbolization", "verification")


def __getattr__(name):
    """Load a public name (or submodule) on first use."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        if name not in _FRAMEWORKS:  # loaded once (the importers' names stay out of dir(), as before)
            globals()[name] = value
        return value
    if name in _SUBMODULES or name == "zoo":
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'rfsym' has no attribute {name!r}")


def __dir__():
    public = (set(__all__) - set(_FRAMEWORKS)) | set(_SUBMODULES) | {n for n in globals() if not n.startswith("_")}
    dunder = {n for n in globals() if n.startswith("__") and n.endswith("__") and n != "__dir__"}
    return sorted((public | dunder) - {"importlib", "sys", "types"})


class _Package(types.ModuleType):
    """The package's module type: ``rfsym.symbols`` is the function :func:`rfsym.symbols.symbols`,
    never the submodule of the same name (the import system sets a submodule as an attribute of
    its package when it loads it; that one assignment is ignored)."""

    def __setattr__(self, name, value):
        if name == "symbols" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
