r"""Figures: receptive-field growth, the parameter/receptive-field trade-off, dependency masks,
receptive-field boxes. matplotlib (the ``plot`` extra) is imported only when a function runs,
and figures are drawn on the Agg canvas (no display, no global pyplot state). Every function
returns the :class:`matplotlib.figure.Figure` and, given ``path``, saves it as PNG, SVG or PDF
(by the file name's suffix). Every value drawn comes from the engine's results (evaluated over
numpy arrays) or from :func:`rfsym.enumeration.dependency_mask`.

>>> from rfsym import Conv, Repeat, symbols
>>> n = symbols("n")
>>> fig = growth({"3×3, stride 1": Repeat(Conv(3, padding=1), n)}, depths=range(1, 5))
>>> [round(v) for v in fig.axes[0].lines[0].get_ydata()]
[3, 5, 7, 9]
"""

from __future__ import annotations

from pathlib import Path

import sympy as sp

from .engine import Result, analyze
from .errors import RfsymError
from .format import finite
from .format import latex as tex_of
from .layers import Layer, Sequential
from .lazy_numpy import np
from .summaries import features

__all__ = ["growth", "tradeoff", "mask", "boxes", "erf_map", "erf_ratio", "plot", "save"]

_LABELS = {
    "rf": r"receptive field $R$ (input pixels)",
    "jump": r"jump $J$ (input pixels per output step)",
    "start": r"start $u$ (input pixel)",
    "params": r"parameters (count)",
    "macs": r"multiply–accumulates (MACs)",
    "flops": r"FLOPs ($2\times$MACs)",
    "out_size": r"output size (pixels)",
    "features.rf": r"receptive field $R$ at the feature layer (input pixels)",
    "features.jump": r"jump $J$ at the feature layer",
}
_FORMATS = (".png", ".svg", ".pdf")
_STYLES = ("o-", "s-", "^-", "D-", "v-", "P-", "X-", "*-")


def _figure(figsize=(5.2, 3.6)):
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError:
        raise RfsymError("plotting needs matplotlib: pip install 'rfsym[plot]'") from None
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def save(fig, path):
    """Save ``fig`` to ``path`` (``.png`` at 200 dpi, ``.svg``, ``.pdf``)."""
    path = Path(path)
    if path.suffix.lower() not in _FORMATS:
        raise RfsymError(f"figure files are PNG, SVG or PDF; got {path.name!r}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    try:
        fig.savefig(path, dpi=200)
    except OSError as err:
        raise RfsymError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
    return path


def _drawn(fig) -> bool:
    """True when the figure shows data: a line with a finite point, an image or a patch."""
    for ax in fig.axes:
        for line in ax.lines:
            x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            if x.size and np.isfinite(x).any() and np.isfinite(y).any():
                return True
        if ax.images or ax.patches:
            return True
    return False


def _finish(fig, path):
    if not _drawn(fig):
        raise RfsymError("the figure would be empty: no plotted value is a finite number "
                         "(give the input size and numbers for every symbol)")
    if path is not None:
        save(fig, path)
    return fig


def _named(items):
    """``(name, item)`` pairs from a dict or a list (items named by their ``name``, else net1...)."""
    if isinstance(items, dict):
        return [(str(k), v) for k, v in items.items()]
    out = []
    for i, it in enumerate(items):
        net = it.network if isinstance(it, Result) else it
        name = getattr(net, "name", None) or f"net{i + 1}"
        out.append((str(name), it))
    return out


def _layer_curve(result, quantity):
    """``quantity`` of every layer of an analysed network, in topological order."""
    ys = [_scalar(getattr(lr, quantity), f"{quantity} of layer {lr.name!r}") for lr in result.layers]
    return np.arange(1, len(ys) + 1), np.asarray(ys, dtype=float)


def _depth_curve(item, depths, symbol, quantity, values):
    """Values of ``quantity`` at each depth: ``item`` is a network with a free depth symbol, a
    block without symbols (repeated ``L`` times), a function ``L -> network``, or a result."""
    depths = np.asarray(list(depths), dtype=np.int64)
    if callable(item) and not isinstance(item, (Layer, Result)):
        return np.array([_scalar(getattr(analyze(item(int(L_))), quantity)) for L_ in depths], dtype=float)
    if isinstance(item, Layer) and not (item.free_symbols - set(_keys(values))):
        from .layers import Repeat
        item = Repeat(item, sp.Symbol("L", integer=True, positive=True))
    result = item if isinstance(item, Result) else analyze(item)
    free = {s.name: s for s in result.free_symbols}
    fixed = {k if isinstance(k, str) else k.name: v for k, v in (values or {}).items()}
    rest = [s for name, s in free.items() if name not in fixed]
    if symbol is None:
        if len(rest) != 1:
            raise RfsymError(f"say which symbol is the depth (free symbols: {sorted(free) or 'none'})")
        symbol = rest[0]
        if symbol not in _repeat_counts(result.network):
            raise RfsymError(f"{symbol} is not a depth: it is no repeat count of the network (a depth is "
                             f"the n of 'block x n' or Repeat(block, n)); give such a network, or fix "
                             f"{symbol} with values=/--set")
    name = symbol if isinstance(symbol, str) else symbol.name
    vals = {**fixed, name: depths}
    for k in free:
        vals.setdefault(k, np.ones_like(depths))
    ev = result.evaluate(vals)
    v = ev.axes(quantity) if quantity not in ("params", "macs", "flops") else (getattr(ev, quantity),)
    arr = np.max(np.broadcast_arrays(*[np.asarray(x, dtype=float) for x in v]), axis=0)
    return np.broadcast_to(arr, depths.shape).astype(float)


def _repeat_counts(network) -> set:
    """Free symbols of the repeat counts anywhere in ``network`` (walked without recursion)."""
    from .layers import Repeat, sublayers

    out, stack = set(), [network]
    while stack:
        layer = stack.pop()
        if isinstance(layer, Repeat):
            out |= sp.sympify(layer.n).free_symbols
        stack.extend(sublayers(layer))
    return out
def _get(result, quantity):
    """A quantity of a result; ``features.rf`` and the like read its reference feature layer."""
    head, dot, attr = quantity.partition(".")
    if dot and head == "features":
        f = features(result)
        if f is None:
            raise RfsymError(f"{quantity}: the network has no feature layer (Graph(features=...))")
        return getattr(f, attr)
    return getattr(result, quantity)


def _keys(values):
    return [] if not values else [sp.Symbol(k) if isinstance(k, str) else k for k in values]


def _scalar(v, what="a plotted value"):
    if isinstance(v, tuple):
        return max(_scalar(x, what) for x in v)
    if v is None or (isinstance(v, sp.Basic) and v.free_symbols):
        shown = "unknown" if v is None else f"{v} (symbolic)"
        raise RfsymError(f"{what} is {shown}: give numbers for its symbols (values=..., or "
                         "--set on the command line) and the input size or channels it needs")
    if not finite(v):
        raise RfsymError(f"{what} is {v}: not a finite number (a global layer without an input size? "
                         "analyse the network at an input size first)")
    return float(v)


def growth(families, depths=range(1, 11), *, symbol=None, quantity="rf", log=False, values=None,
           path=None, title=None):
    r"""Receptive field (or ``quantity``) against depth for several architectures on one axis.

    ``families``: a dict ``name -> item`` or a list of items (named by their ``name``); an item
    is a network with a free depth symbol (``Repeat(block, n)``), a block without symbols (it is
    repeated ``L`` times) or a function ``L -> network``; or every item is an analysed
    :class:`~rfsym.engine.Result`, drawn layer by layer (the field through the network). ``values``
    fixes other symbols. ``log``: logarithmic y axis (base 2), where stride and dilation grow as
    lines. An empty figure (no finite value) raises :class:`~rfsym.errors.RfsymError`.
    """
    fig, ax = _figure()
    depths = list(depths)
    items = _named(families)
    per_layer = [isinstance(item, Result) for _, item in items]
    if any(per_layer) and not all(per_layer):
        raise RfsymError("growth draws depth families (networks) or the layer-by-layer growth of analysed "
                         "networks (results), not both in one figure")
    for j, (name, item) in enumerate(items):
        if per_layer[j]:
            xs, ys = _layer_curve(item, quantity)
            ax.plot(xs, ys, _STYLES[j % len(_STYLES)][1:], label=name, linewidth=1.4)
            continue
        ys = _depth_curve(item, depths, symbol, quantity, values)
        ax.plot(depths, ys, _STYLES[j % len(_STYLES)], label=name, markersize=4, linewidth=1.4)
    ax.set_xlabel("layer (topological order)" if any(per_layer) else r"depth $L$ (number of blocks)")
    _integer_ticks(ax, y=False)
    ax.set_ylabel(_LABELS.get(quantity, quantity))
    if log:
        ax.set_yscale("log", base=2)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title(title or ("Growth of the receptive field with depth" if quantity == "rf" else None))
    return _finish(fig, path)


def tradeoff(items, *, x="rf", y="params", values=None, depths=None, symbol=None, log=False, path=None,
             title=None):
    r"""``y`` (parameters or MACs) against ``x`` (receptive field): the trade-off behind the
    7×7 vs 3×3 table. ``items`` as in :func:`growth`; with ``depths`` each item is a family drawn
    as a curve over its depth symbol, otherwise one point each. ``values`` fixes symbols such
    as the channel count ``C`` (shown in the axis label). ``x="features.rf"`` reads each
    network's reference feature layer (the backbone's field rather than the classifier's).
    """
    fig, ax = _figure()
    for j, (name, item) in enumerate(_named(items)):
        if depths is not None:
            xs = _depth_curve(item, depths, symbol, x, values)
            ys = _depth_curve(item, depths, symbol, y, values)
            ax.plot(xs, ys, _STYLES[j % len(_STYLES)], label=name, markersize=4)
        else:
            r = item if isinstance(item, Result) else analyze(item)
            if values:
                r = r.subs({k: v for k, v in values.items()
                            if (k if isinstance(k, str) else k.name) in {s.name for s in r.free_symbols}})
            xv, yv = _scalar(_get(r, x), f"{x} of {name}"), _scalar(_get(r, y), f"{y} of {name}")
            ax.plot([xv], [yv], _STYLES[j % len(_STYLES)][0], markersize=8, label=name)
    suffix = ""
    if values:
        suffix = " for " + ", ".join(f"${tex_of(k if not isinstance(k, str) else sp.Symbol(k))} = {tex_of(v)}$"
                                     for k, v in values.items())
    ax.set_xlabel(_LABELS.get(x, x))
    ax.set_ylabel(_LABELS.get(y, y) + suffix)
    _integer_ticks(ax, y=False)
    if log:
        ax.set_yscale("log")
    else:
        from matplotlib.ticker import StrMethodFormatter
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title(title)
    return _finish(fig, path)


def _integer_ticks(ax, y=True):
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if y:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _grid_2d(a):
    return a.reshape(1, -1) if a.ndim == 1 else a


def mask(net, input_size, output, *, counts=False, layer=None, through_padding=False, annotate=None,
         path=None, title=None):
    r"""Heatmap of which input pixels feed output ``output`` (the 5×5 worked example), from
    :func:`rfsym.enumeration.dependency_mask`; with ``counts`` the number of paths through each
    pixel. Cells are annotated with their values when the grid is small (``annotate``).
    """
    from .verification import dependency_mask

    m = dependency_mask(net, input_size, output, layer=layer, counts=counts, through_padding=through_padding)
    grid = _grid_2d(np.asarray(m, dtype=float))
    h, w = grid.shape
    fig, ax = _figure((min(1.0 + 0.55 * w, 9), min(0.9 + 0.55 * h, 9)) if h > 1 else (min(1 + 0.3 * w, 10), 2.0))
    vmax = max(grid.max(), 1) if counts else 1.6  # binary: a mid blue, black text stays legible
    im = ax.imshow(grid, cmap="Blues", vmin=0, vmax=vmax, origin="upper", interpolation="nearest")
    if annotate is None:
        annotate = h * w <= 400
    if annotate:
        for (i, j), v in np.ndenumerate(grid):
            text = str(int(v)) if counts else ("1" if v else "0")
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if v > 0.6 * vmax else "black")
    ax.set_xticks(range(w))
    ax.set_yticks(range(h))
    ax.set_xticks(np.arange(-0.5, w), minor=True)
    ax.set_yticks(np.arange(-0.5, h), minor=True)
    ax.grid(which="minor", color="0.6", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel(r"input column $x$ (pixel)")
    ax.set_ylabel(r"input row $y$ (pixel)" if h > 1 else "")
    if counts:
        fig.colorbar(im, ax=ax, shrink=0.8, label="paths through the pixel")
    pos = tuple(output) if isinstance(output, (tuple, list)) else (output,)
    ax.set_title(title or f"Input pixels feeding output {pos if len(pos) > 1 else pos[0]}", fontsize=10)
    return _finish(fig, path)


def boxes(item, outputs, *, input_size=None, layer=None, path=None, title=None):
    r"""Receptive-field boxes of chosen ``outputs`` drawn over the input grid (dashed: the input;
    boxes may extend into the padding). Boxes come from :meth:`Result.span` (of ``layer``, a
    layer index, when given).
    """
    from matplotlib.patches import Rectangle

    result = item if isinstance(item, Result) else analyze(item, input_size)
    if result.input_size is None:
        raise RfsymError("boxes need the input size (pass input_size)")
    target = result if layer is None else result.layers[layer]
    sizes = [int(n) for n in result.input_size]
    one_d = len(sizes) == 1
    fig, ax = _figure((5.2, 5.6) if not one_d else (7, 2.8))
    h, w = (1, sizes[0]) if one_d else (sizes[0], sizes[1])
    if h * w <= 4096:  # pixel cells on small inputs; one shaded rectangle on large ones
        for i in range(h):
            for j in range(w):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.93", edgecolor="0.75", linewidth=0.4))
    else:
        ax.add_patch(Rectangle((-0.5, -0.5), w, h, facecolor="0.93", edgecolor="none"))
    ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, edgecolor="black", linestyle="--", linewidth=1,
                           label=f"input ({'×'.join(map(str, sizes))}); outside it: padding"))
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    lo_x, hi_x, lo_y, hi_y = -0.5, w - 0.5, -0.5, h - 0.5
    for c, out in enumerate(outputs):
        span = target.span(out)
        (r0, r1), (c0, c1) = ((0, 0), span[0]) if one_d else span[:2]
        r0, r1, c0, c1 = int(r0), int(r1), int(c0), int(c1)
        colour = colours[c % len(colours)]
        pos = tuple(out) if isinstance(out, (tuple, list)) else (out,) * len(sizes)
        label = (f"output {pos[0]}: pixels {c0}…{c1}" if one_d else
                 f"output {pos}: rows {r0}…{r1}, cols {c0}…{c1}")
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=True, alpha=0.18,
                               facecolor=colour, edgecolor=colour, linewidth=2, label=label))
        lo_x, hi_x = min(lo_x, c0 - 0.5), max(hi_x, c1 + 0.5)
        lo_y, hi_y = min(lo_y, r0 - 0.5), max(hi_y, r1 + 0.5)
    ax.set_xlim(lo_x - 0.5, hi_x + 0.5)
    ax.set_ylim(hi_y + 0.5, lo_y - 0.5)
    ax.set_aspect("equal")
    _integer_ticks(ax)
    ax.set_xlabel(r"input column $x$ (pixel)")
    if not one_d:
        ax.set_ylabel(r"input row $y$ (pixel)")
    else:
        ax.set_yticks([])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False, fontsize=8)
    where = "" if layer is None else f" at {target.name}"
    fig.suptitle(title or f"Receptive fields{where}: $R = {tex_of(target.rf)}$, $J = {tex_of(target.jump)}$",
                 fontsize=10)
    return _finish(fig, path)


def plot(kind, items, output=None, *, input_size=None, log=False, **options):
    """One entry point: ``kind`` is ``growth``, ``tradeoff``, ``mask`` or ``boxes``; ``items``
    networks or :class:`~rfsym.engine.Result`\\ s (a dict ``name -> item`` names them).
    ``mask`` and ``boxes`` draw the first item at ``input_size`` (a result's own size by default)
    and, unless ``output_index``/``outputs`` say otherwise, its central output."""
    named = _named(items)
    if not named:
        raise RfsymError("plot needs at least one network")
    if kind == "growth":
        return growth(dict(named), log=log, path=output, **options)
    if kind == "tradeoff":
        return tradeoff(dict(named), log=log, path=output, **options)
    if kind in ("mask", "boxes"):
        first = named[0][1]
        if isinstance(first, Result):
            r = first if input_size is None else analyze(first.network, input_size, ndim=first.ndim,
                                                         in_channels=first.in_channels)
        else:
            if input_size is None:
                raise RfsymError(f"plot {kind} needs the input size")
            r = analyze(first if isinstance(first, Layer) else Sequential(*first), input_size)
        if r.input_size is None:
            raise RfsymError(f"plot {kind} needs the input size")
        f = features(r)  # networks with a feature layer: its central output, not the classifier's
        if f is not None and "layer" not in options:
            options["layer"] = f.index
        at = r if options.get("layer") is None else r.layers[options["layer"]]
        centre = tuple(int(n) // 2 for n in at.axes("out_size"))
        if kind == "mask":
            return mask(r.network, r.input_size, options.pop("output_index", centre), path=output, **options)
        return boxes(r, options.pop("outputs", [centre]), path=output, **options)
    raise RfsymError(f"unknown plot kind {kind!r}; choose growth, tradeoff, mask or boxes")


def erf_map(net, input_size=None, *, profiles=None, branch_weights=None, path=None, title=None, log=False):
    r"""Heatmap of the effective receptive field of output 0 (the exact impulse response,
    :func:`rfsym.effective_field.discrete_erf_map`) with the theoretical receptive field outlined and the
    Gaussian approximation's :math:`2\sigma` ellipse; axes in input pixels (padding included).
    """
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Ellipse, Rectangle

    from .effective_field import discrete_erf_map, erf

    e = erf(net, input_size, profiles=profiles, branch_weights=branch_weights)
    origin, w = discrete_erf_map(net, input_size, profiles=profiles, branch_weights=branch_weights)
    if w.ndim == 1:
        w, origin = w.reshape(1, -1), (0,) + tuple(origin)
    if w.ndim != 2:
        raise RfsymError("erf_map draws 1-D and 2-D networks")
    fig, ax = _figure((5.4, 4.6))
    extent = (origin[1] - 0.5, origin[1] + w.shape[1] - 0.5, origin[0] + w.shape[0] - 0.5, origin[0] - 0.5)
    norm = LogNorm(vmin=max(w[w > 0].min(), w.max() * 1e-6), vmax=w.max()) if log else None
    im = ax.imshow(np.where(w > 0, w, np.nan) if log else w, cmap="magma", extent=extent,
                   interpolation="nearest", norm=norm)
    fig.colorbar(im, ax=ax, shrink=0.85, label="weight of the input pixel (sums to 1)")
    r = e.result
    starts, rfs = r.axes("start"), r.axes("rf")
    if len(starts) == 1:
        starts, rfs = (0,) + starts, (1,) + rfs
    (s0, s1), (r0, r1) = [int(v) for v in starts], [int(v) for v in rfs]
    ax.add_patch(Rectangle((s1 - 0.5, s0 - 0.5), r1, r0, fill=False, edgecolor="tab:cyan", linewidth=1.5,
                           linestyle="--", label=f"theoretical receptive field {r0}×{r1}" if r0 > 1 else
                           f"theoretical receptive field {r1}"))
    means = [float(v) for v in e.axes("mean")]
    stds = [float(v) for v in e.axes("std")]
    if len(means) == 1:
        means, stds = [0.0] + means, [0.0] + stds
    ax.add_patch(Ellipse((means[1], means[0]), 4 * stds[1], max(4 * stds[0], 0.3), fill=False,
                         edgecolor="limegreen", linewidth=1.5, label=r"Gaussian $2\sigma$ region"))
    ax.set_facecolor("black")
    ax.set_xlim(extent[0] - 2, extent[1] + 2)
    ax.set_ylim(extent[2] + 2, extent[3] - 2)
    ax.set_xlabel(r"input column $x$ (pixel)")
    ax.set_ylabel(r"input row $y$ (pixel)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False, fontsize=8)
    var = e.axes("variance")
    ax.set_title(title or rf"Effective receptive field: $\sigma^2 = {tex_of(var[-1])}$, $R = {r1}$",
                 fontsize=10)
    return _finish(fig, path)


def erf_ratio(families, depths=range(1, 33), *, sigmas=2, path=None, title=None):
    r"""ERF diameter (:math:`2\cdot` ``sigmas`` :math:`\cdot\sigma`) over the theoretical receptive
    field against depth, for each family (``name -> function depth -> network``, or a block
    repeated ``depth`` times); Luo et al.'s :math:`1/\sqrt{n}` shrinkage."""
    from .effective_field import erf

    fig, ax = _figure()
    depths = list(depths)
    for style, (name, item) in zip(_STYLES * 4, _named(families)):
        ys = []
        for d in depths:
            net = item(d) if callable(item) and not isinstance(item, Layer) else Sequential(*[item] * d)
            ratio = erf(net, ndim=1 if net.ndim in (None, 1) else None).ratio(sigmas)
            ys.append(float(ratio[-1] if isinstance(ratio, tuple) else ratio))
        ax.plot(depths, ys, style, markersize=3, label=name)
    ref = [ys[0] * np.sqrt(depths[0] / d) for d in depths]
    ax.plot(depths, ref, ":", color="0.5", label=r"$\propto 1/\sqrt{n}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"depth $n$ (layers or blocks)")
    ax.set_ylabel(rf"ERF diameter $/$ receptive field (${2 * sigmas}\sigma / R$)")
    ax.legend(fontsize=8)
    ax.set_title(title or "Effective vs theoretical receptive field", fontsize=10)
    return _finish(fig, path)
