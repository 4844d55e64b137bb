"""The model zoo: real architectures built from rfsym's own layers.

Every entry cites its source (paper and reference implementation) and follows the source's layer
names, so a layer you know is found by its name in ``result.layers``: torchvision module paths such
as ``features.0`` or ``layer4.2.conv3``, TF-slim end-points such as ``vgg_16/pool5`` or ``Mixed_6b``.

>>> from rfsym import zoo
>>> "vgg16" in zoo.names()
True
>>> r = zoo.analyze("slim_vgg_16")
>>> end = r.layer("vgg_16/pool5")
>>> end.rf, end.jump, end.effective_padding
(212, 32, 90)

Entries and their metadata (default input size, input channels, source) come from :func:`entry`;
the command line uses them for ``rfsym analyze NAME``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import RfsymError
from ..symbols import symbols

__all__ = ["ZooEntry", "get", "entry", "names", "describe", "analyze", "register", "symbols"]


@dataclass(frozen=True)
class ZooEntry:
    """One named architecture.

    ``build(**symbols)`` returns the network (an rfsym layer); ``input_size`` and ``in_channels`` are
    the defaults the source uses (``input_size`` may be a tuple for 1-D models); ``source`` cites the
    paper and the reference implementation; ``family`` names the module the entry comes from
    (``torchvision``, ``slim``, ``papers``, ``families``); ``ndim`` is the number of spatial axes;
    ``features`` names the last layer before global pooling or the classifier (the layer whose
    receptive field describes the backbone; None when that is the output).
    """

    name: str
    build: Callable[..., Any]
    input_size: Any
    in_channels: int
    description: str
    source: str
    family: str
    ndim: int = 2
    parameters: tuple = field(default=())
    features: str | None = None

    def network(self, **symbols):
        """The network, built with the given family symbols."""
        return self.build(**symbols)

    def analyze(self, input_size="default", **symbols):
        """``rfsym.analyze`` of the network at ``input_size`` (the entry's default unless given;
        None for no input size)."""
        from ..engine import analyze

        size = self.input_size if isinstance(input_size, str) and input_size == "default" else input_size
        result = analyze(self.build(**symbols), input_size=size, ndim=self.ndim,
                          in_channels=self.in_channels)
        if self.features is not None:
            try:
                result.set_features(self.features)
            except RfsymError:
                pass  # a symbolic depth folds that layer into a Repeat: the head's input stands in
        return result


_REGISTRY: dict[str, ZooEntry] = {}


def register(name, *, input_size, source, family, in_channels=3, ndim=2, features=None):
    """Decorator: register ``fn(**symbols) -> network`` under ``name``. The first line of the
    docstring becomes the description; the rest is the entry's documentation."""

    def deco(fn):
        doc = inspect.getdoc(fn) or ""
        params = tuple(p for p in inspect.signature(fn).parameters)
        summary = doc.split("\n\n")[0].replace("\n", " ").replace("``", "`")
        _REGISTRY[name] = ZooEntry(name, fn, input_size, in_channels, summary,
                                   source, family, ndim, params, features)
        return fn

    return deco


def _load():
    # importing the modules registers their entries
    from . import dense, families, fpn, papers, slim, torchvision  # noqa: F401


def names() -> list[str]:
    """Names of every entry, sorted."""
    _load()
    return sorted(_REGISTRY)


def entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` called ``name``."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = [n for n in _REGISTRY if name.lower() in n or n in name.lower()]
        hint = f"; did you mean {', '.join(sorted(close))}?" if close else f"; known: {', '.join(sorted(_REGISTRY))}"
        raise RfsymError(f"no zoo entry named {name!r}{hint}") from None


def get(name: str, **symbols):
    """The network called ``name``, built with the family's keyword arguments.

    >>> get("vgg16").name
    'vgg16'
    """
    e = entry(name)
    unknown = sorted(set(symbols) - set(e.parameters))
    if unknown:
        raise RfsymError(f"zoo entry {name!r} takes {', '.join(e.parameters) or 'no arguments'}, "
                         f"got {', '.join(unknown)}")
    return e.build(**symbols)


def analyze(name: str, input_size="default", **symbols):
    """``rfsym.analyze(get(name, **symbols), input_size)`` at the entry's default input size and
    input channels (pass ``input_size=None`` for none)."""
    get(name, **symbols)  # argument check
    return entry(name).analyze(input_size, **symbols)


def describe(name: str) -> str:
    """A short text: description, default input, source and the parameters the entry takes."""
    e = entry(name)
    lines = [f"{e.name}: {e.description}",
             f"  input: {e.in_channels} channels, size {e.input_size} ({e.ndim}-D)",
             f"  source: {e.source}"]
    if e.parameters:
        lines.append(f"  parameters: {', '.join(e.parameters)}")
    return "\n".join(lines)
