"""Closed forms for a block repeated a symbolic number of times (:class:`~rfsym.layers.Repeat`).

A block whose composite is the affine map ``(U, J, R)`` (start, jump, rf) repeated ``n`` times
gives jump ``J^n``, start ``U·(J^n - 1)/(J - 1)`` and rf ``1 + (R - 1)(J^n - 1)/(J - 1)``, the
``J = 1`` case kept as a ``Piecewise`` branch. Layer parameters may contain the repetition index
(``0 .. n - 1``): the closed forms are then sums and products over it. Output sizes follow the
size law ``floor((x + c)/S)`` of floor-mode chains; channels an affine law ``a·c + b``;
parameters and MACs are sums over the repetitions. The block may be any network, a DAG
included. Evaluated numerically (``Result.evaluate``), the repetition runs on the distinct
configurations only, in closed form once the block reaches a fixed point.

>>> from rfsym import analyze, Conv, Repeat, symbols
>>> n = symbols("n")
>>> analyze(Repeat(Conv(3), n)).rf
2*n + 1
"""

from __future__ import annotations

import threading

import sympy as sp

from . import layers as L
from .dag import UNROLL_LIMIT
from .errors import LayerError, RfsymError
from .lazy_numpy import np
from .maps import AxisMap
from .ops import ExactOps, NumOps, Rows, SymOps
from .rules import Context, LeafOut, State, check_size, register_layer
from .symbols import bounded_subs

__all__ = ["FallBack", "MAX_SOLVED_NESTING"]

#: deepest nesting of repeats solved in closed form (a symbolic count, or more repetitions than
#: the unrolling limit) inside one another: each one derives its block in a nested analysis
MAX_SOLVED_NESTING = 64
_nesting = threading.local()


def _derive_block(ctx, block, **kwargs):
    """``ctx.derive(block, **kwargs)`` for a repeat's block, at most :data:`MAX_SOLVED_NESTING`
    levels of such repeats deep (a LayerError beyond)."""
    level = getattr(_nesting, "level", 0)
    if level >= MAX_SOLVED_NESTING:
        err = LayerError(f"repeats solved in closed form (a symbolic count or more than "
                         f"{UNROLL_LIMIT} repetitions) nest more than {MAX_SOLVED_NESTING} levels deep; "
                         "give the inner counts as numbers", where=ctx.where, param="n")
        err.too_deep = True  # passed up through the enclosing repeats as it is
        raise err
    _nesting.level = level + 1
    try:
        return ctx.derive(block, **kwargs)
    finally:
        _nesting.level = level


class FallBack(Exception):
    """Raised on the exact fast path where only the sympy path knows the answer."""


def _size_symbols(ndim):
    return tuple(sp.Symbol(f"_rfsym_x{a}", integer=True, positive=True) for a in range(ndim))


_CHANNELS = sp.Symbol("_rfsym_c", integer=True, positive=True)
_T = sp.Dummy("t", integer=True, nonnegative=True)  # the repetition number in sums and products
_Q = sp.Dummy("q", integer=True, nonnegative=True)


def _floor_form(e, x):
    """``(c, S)`` with ``e == floor((x + c)/S)`` for every integer ``x``, or None.

    Chains of floor-mode convolutions and pools have this form, since
    ``floor((floor(y) + c)/s) == floor((y + c)/s)`` for integers ``c`` and ``s > 0``.
    """
    e = sp.sympify(e)
    if e == x:
        return sp.Integer(0), sp.Integer(1)
    if not e.has(x):
        return None
    if e.is_Add:
        var = [a for a in e.args if a.has(x)]
        if len(var) != 1:
            return None
        k = e - var[0]
        inner = _floor_form(var[0], x)
        if inner is None or k.is_integer is not True:
            return None
        c, S = inner
        return sp.expand(c + k * S), S
    if isinstance(e, (sp.floor, sp.ceiling)):
        terms = sp.Add.make_args(sp.expand(e.args[0]))
        var = [t for t in terms if t.has(x)]
        if len(var) != 1:
            return None
        alpha, dep = var[0].as_independent(x, as_Add=False)
        q = sp.simplify(1 / alpha)
        if q.is_integer is not True or q.is_positive is not True:
            return None
        inner = _floor_form(dep, x)
        if inner is None:
            return None
        b = sp.expand(sp.Add(*[t for t in terms if not t.has(x)]) * q)
        if b.is_integer is not True:
            return None
        if isinstance(e, sp.ceiling):
            b = b + q - 1
        c, S = inner
        return sp.expand(c + b * S), S * q
    return None


def _affine_form(e, x):
    """``(a, b)`` with ``e == a·x + b`` (upsampling blocks), or None."""
    e = sp.expand(sp.sympify(e))
    if e.has(sp.floor, sp.ceiling, sp.Max, sp.Min, sp.Piecewise):
        return None
    poly = sp.Poly(e, x) if e.has(x) else None
    if poly is None or poly.degree() != 1:
        return None
    a, b = poly.all_coeffs()
    return a, b


def _prod_upto(f, i, t):
    """``Π_{q < t} f(q)`` (``f`` an expression in ``i``)."""
    if not f.has(i):
        return f ** t
    q = sp.Dummy("q", integer=True, nonnegative=True)
    return sp.product(f.subs(i, q), (q, 0, t - 1))


def _sum_upto(term, t, lo, hi):
    """``Σ_{t=lo}^{hi} term``: sums of ``c·t^p·B^t`` terms in closed form (geometric series,
    ``B = 1`` kept as a Piecewise branch when undecidable); anything else by sympy summation."""
    term = sp.sympify(term)
    if not term.has(t):
        return term * (hi - lo + 1)
    groups = {}  # (p, B) -> coefficient
    rest = []
    for piece in sp.Add.make_args(sp.expand(term, power_exp=True, mul=True, multinomial=True)):
        key = _geometric_term(piece, t)
        if key is None:
            rest.append(piece)
        else:
            (p, B), c = key
            groups[(p, B)] = groups.get((p, B), 0) + c
    out = sp.Integer(0)
    count = hi - lo + 1
    for (p, B), c in groups.items():
        if p == 0:
            if B == 1:
                out += c * count
            else:
                out += c * B**lo * SymOps.geom(B, count)
        else:
            out += c * sp.summation(t**p * B**t, (t, lo, hi))
    if rest:
        rest = sp.Add(*rest)
        if rest.has(sp.floor, sp.ceiling, sp.Piecewise, sp.Max, sp.Min):
            out += sp.Sum(rest, (t, lo, hi))  # sympy's summation can stall on these: keep it unevaluated
        else:
            out += sp.summation(rest, (t, lo, hi))
    return out


def _geometric_term(piece, t):
    """``((p, B), c)`` with ``piece == c·t^p·B^t``, or None."""
    coeff, p, B = sp.Integer(1), 0, sp.Integer(1)
    for f in sp.Mul.make_args(piece):
        if not f.has(t):
            coeff *= f
        elif f == t:
            p += 1
        elif f.is_Pow and f.base == t and f.exp.is_Integer and f.exp > 0:
            p += int(f.exp)
        elif f.is_Pow and not f.base.has(t):
            e = sp.expand(f.exp)
            a_, c_ = e.as_independent(t, as_Add=True)[1], e.as_independent(t, as_Add=True)[0]
            slope = sp.simplify(a_ / t)
            if slope.has(t):
                return None
            coeff *= f.base ** c_
            B *= f.base ** slope
        elif isinstance(f, sp.exp):
            return None
        else:
            return None
    return (p, B), coeff


def _closed_affine(u, j, r, i, n, ops):
    """Start, jump and rf of ``n`` repetitions of the affine map ``(u(i), j(i), r(i))``."""
    if not (u.has(i) or j.has(i) or r.has(i)):
        g = ops.geom(j, n)
        return u * g, ops.pow(j, n), 1 + (r - 1) * g
    P = _prod_upto(j, i, _T)
    start = _sum_upto(u.subs(i, _T) * P, _T, 0, n - 1)
    rf = 1 + _sum_upto((r.subs(i, _T) - 1) * P, _T, 0, n - 1)
    return start, P.subs(_T, n), rf


class _SizeLaw:
    """The size of one axis before repetition ``t``: exact (``size``) and with the stated
    divisibility assumption (``assumed``, floor-free, used for MACs)."""

    condition = None  # set when whether the padding rounds up is undecidable
    assumed_if = None  # the size under the other assumption, used when ``condition`` holds

    def __init__(self, f, x, i, x0):
        self.x0 = x0
        self.divisible = True
        if f is None:
            self.size = self.assumed = None
            return
        ff = _floor_form(f, x)
        if ff is not None:
            c, S = ff
            if S == 1:
                total = _sum_upto(c.subs(i, _T), _T, 0, _T - 1) if c.has(i) else c * _T
                self.size = self.assumed = x0 + total
                return
            P = _prod_upto(S, i, _T)
            C = _sum_upto(c.subs(i, _Q) * _prod_upto(S, i, _Q).subs(_T, _Q), _Q, 0, _T - 1) \
                if (c.has(i) or S.has(i)) else c * SymOps.geom(S, _T)
            self.size = sp.floor((x0 + C) / P)
            rounds_up = (sp.Ge(c, 0) & sp.Lt(c, S)).subs(i, _T) if (c.has(i) or S.has(i)) \
                else sp.And(sp.Ge(c, 0), sp.Lt(c, S))
            self.divisible = rounds_up is sp.true
            self.assumed = x0 / P if self.divisible else (x0 + C) / P
            if rounds_up is not sp.true and rounds_up is not sp.false:
                # undecidable (symbolic kernel or padding): keep both assumptions, chosen by a Piecewise
                self.condition, self.assumed_if = rounds_up, x0 / P
            return
        af = _affine_form(f, x)
        if af is not None:
            a, b = af
            if a.has(i) or b.has(i):
                self.size = self.assumed = None
                return
            self.size = self.assumed = a ** _T * x0 + b * SymOps.geom(a, _T)
            return
        self.size = self.assumed = None


def _drop_floors(expr, xs, divisible):
    """Replace each ``floor((x + c)/S)`` of an input size ``x`` by its value under the assumption
    of the module docstring: ``x/S + floor(c/S)`` when ``x`` is divisible by the strides
    (``divisible[axis]``), else ``(x + c)/S`` (exact division)."""
    def value(e):
        for x, div in zip(xs, divisible):
            ff = _floor_form(e, x)
            if ff is not None:
                c, S = ff
                return x / S + sp.floor(c / S) if div else (x + c) / S
        return e
    return sp.sympify(expr).replace(lambda e: isinstance(e, (sp.floor, sp.ceiling)) and e.has(*xs), value)


def _channel_law(g, c, i, c0):
    """Channels entering repetition ``t`` (an expression in ``_T``), or None."""
    if g is None or c0 is None:
        return None
    g = sp.sympify(g)
    if g == c:
        return c0
    if not g.has(c):
        # repetition 0 reads c0, repetition t >= 1 reads what t - 1 wrote
        return sp.Piecewise((c0, sp.Eq(_T, 0)), (g.subs(i, _T - 1), True))
    af = _affine_form(g, c)
    if af is not None and not any(v.has(i) for v in af):
        a, b = af
        return a ** _T * c0 + b * SymOps.geom(a, _T)
    return None


def _sum_reps(term, n, c_law):
    """``Σ_{t=0}^{n-1} term(t)``; a Piecewise channel law is split off at ``t = 0``."""
    term = sp.sympify(term)
    if isinstance(c_law, sp.Piecewise) and term.has(_CHANNELS):
        first = term.subs(_CHANNELS, c_law.args[0][0]).subs(_T, 0)
        rest = term.subs(_CHANNELS, c_law.args[1][0])
        return first + _sum_upto(rest, _T, 1, n - 1)
    if c_law is not None:
        term = term.subs(_CHANNELS, c_law)
    return _sum_upto(term, _T, 0, n - 1)


#: a repeated block passing more open conditions up leaves them to the engine (bounded work)
MAX_PASSED_CONDITIONS = 256


def _open_conditions(ctx, probe, layer, state, xs, cin):
    """Pass the block's open conditions (:attr:`~rfsym.result.Result.open_conditions`) up to
    the enclosing analysis, for the repetitions' input sizes and channels: those of the first
    and, when the block maps them to a constant or to themselves, of every other; a condition
    that depends on the repetition index or on sizes the block changes otherwise becomes
    ``(None, ...)``, which sends the compiled evaluate to the engine."""
    n = sp.sympify(layer.n)
    if n.free_symbols:
        ctx.checks.append((n, "n", 0, ctx.where))
    after = []  # (symbol, input of the first repetition, input of the later ones or None)
    for a, x in enumerate(xs or ()):
        out = sp.sympify(probe.axes("out_size")[a])
        after.append((x, state.sizes[a], state.sizes[a] if out == x else out if not out.free_symbols else None))
    if cin is not None:
        out = sp.sympify(probe.out_channels)
        after.append((cin, state.channels, state.channels if out == cin else out if not out.free_symbols else None))
    found = {}
    for expr, param, minimum, _where in probe.open_conditions:
        if len(found) > MAX_PASSED_CONDITIONS or expr is None or expr.has(layer.index) or \
                any(expr.has(x) and later is None for x, _, later in after):
            ctx.checks.append((None, param, "engine", ctx.where))  # left to the engine
            return
        for pick in (0, 1):  # the first repetition's inputs, then the later ones'
            values = {x: v[pick] if v[pick] is not None else v[0] for x, *v in after if expr.has(x)}
            found.setdefault((sp.sympify(expr).subs(values), minimum), param)
    ctx.checks.extend((e, param, m, ctx.where) for (e, m), param in found.items())


def _repeat_symbolic(layer, state, ctx):
    """Closed forms for a symbolic number of repetitions (SymOps)."""
    ops, i, n = ctx.ops, layer.index, layer.n
    xs = _size_symbols(ctx.ndim) if state.sizes is not None else None
    cin = _CHANNELS if state.channels is not None else None
    try:
        probe = _derive_block(ctx, layer.block, input_size=xs, ndim=ctx.ndim, in_channels=cin, strict=ctx.strict)
        starts, jumps, rfs, periods = (probe.axes(q) for q in ("start", "jump", "rf", "period"))
        _open_conditions(ctx, probe, layer, state, xs, cin)
    except LayerError as err:
        if getattr(err, "too_deep", False):
            raise
        raise LayerError(f"in the repeated block: {err}", where=ctx.where) from None
    if any(p != 1 for p in periods):
        raise LayerError(f"a block whose receptive field depends on the output position (period "
                         f"{periods}) can only be repeated an integer number of times, got n={n}",
                         where=ctx.where, param="n")
    if xs is not None and all(sp.sympify(j) == 0 for j in jumps):
        # a global block (jump 0, e.g. squeeze-and-excitation): repetitions after the first add
        # nothing, so its field at the actual input size is the whole story (geom(0, n) = 1, n >= 1)
        first = dict(zip(xs, state.sizes))
        if i is not None:
            first[i] = 0
        starts, rfs = ([sp.sympify(v).subs(first, simultaneous=True) for v in vs] for vs in (starts, rfs))
    if xs is not None and any(sp.sympify(v).has(*xs) for v in (*starts, *jumps, *rfs)):
        raise LayerError(f"the repeated block's receptive field depends on its input size (TensorFlow "
                         f"SAME padding, global or adaptive pooling), which changes from repetition "
                         f"to repetition; give n as a number, got n={n}",
                         where=ctx.where, param="n")
    maps = []
    for u, j, r in zip(starts, jumps, rfs):
        start, jump, rf = _closed_affine(sp.sympify(u), sp.sympify(j), sp.sympify(r), i, n, ops)
        maps.append(AxisMap.affine(start, jump, rf))
    # sizes
    sizes = None
    laws = None
    if xs is not None:
        outs = probe.axes("out_size")
        laws = [_SizeLaw(f, x, i, x0) for f, x, x0 in zip(outs, xs, state.sizes)]
        bad = [a for a, law in enumerate(laws) if law.size is None]
        if bad:
            raise LayerError(f"the repeated block maps the size x of axis {bad[0]} to {outs[bad[0]]}; "
                             "rfsym solves the size recurrence for floor((x + c)/S) and a·x + b "
                             "only; give n as a number", where=ctx.where, param="n")
        sizes = tuple(law.size.subs(_T, n) for law in laws)
    c_law = _channel_law(probe.out_channels, cin, i, state.channels) if cin is not None else None
    channels = probe.out_channels if cin is None else (None if c_law is None else c_law.subs(_T, n))
    if isinstance(channels, sp.Piecewise):
        channels = sp.piecewise_fold(channels)
    if channels is not None and cin is None and channels.has(i):
        channels = channels.subs(i, n - 1)

    def per_rep(expr, rounding=False):
        """One repetition's value under the divisibility assumption; with ``rounding`` the laws
        whose rounding is undecidable take the other assumption."""
        if expr is None:
            return None
        expr = sp.sympify(expr)
        if expr.has(_CHANNELS) and c_law is None:
            return None
        expr = expr.subs(i, _T)
        if xs is not None:
            flip = [rounding and law.condition is not None for law in laws]
            expr = _drop_floors(expr, xs, [law.divisible or f for law, f in zip(laws, flip)])
            expr = expr.subs({x: (law.assumed_if if f else law.assumed)
                              for x, law, f in zip(xs, laws, flip)}, simultaneous=True)
        return expr

    def total(expr):
        term = per_rep(expr)
        if term is None:
            return None
        out = _sum_reps(term, n, c_law)
        conds = [law.condition for law in laws or () if law.condition is not None]
        if conds:  # never guess an undecidable assumption: keep both, as a Piecewise
            alt = _sum_reps(per_rep(expr, rounding=True), n, c_law)
            out = sp.Piecewise((alt, sp.And(*conds).subs(_T, 0)), (out, True))
        return out

    params = total(probe.params)
    macs = total(probe.macs)
    extra = {"aligned": lambda: probe.aligned}
    return State(sizes, channels), (lambda ops_: tuple(maps)), "Repeat", params, macs, extra


def _repeat_large(layer, state, ctx):
    """An integer n too large to unroll: the closed form for a symbolic n, then n substituted,
    refused when a value would be astronomically large (:func:`~rfsym.symbols.bounded_subs`:
    ``2**(10**12)`` is not built)."""
    big = sp.Dummy("n", integer=True, positive=True)
    out_state, maps_fn, kind, params, macs, extra = _repeat_symbolic(
        L.Repeat(layer.block, big, layer.index, name=layer.name), state, ctx)
    at = {big: layer.n}

    def sub(e, what):
        return bounded_subs(e, at, f"{what} after n={layer.n} repetitions")

    try:
        maps = tuple(AxisMap.affine(*(sub(v, w) for v, w in zip((m.starts[0], m.jump, m.rfs[0]),
                                                                 ("start", "jump", "rf"))))
                     for m in maps_fn(ctx.ops))
        sizes = None if out_state.sizes is None else tuple(sub(v, "out_size") for v in out_state.sizes)
        out_state = State(sizes, sub(out_state.channels, "out_channels"), out_state.flattened)
        params, macs = sub(params, "params"), sub(macs, "macs")
    except RfsymError as err:
        raise LayerError(str(err), where=ctx.where, param="n") from None
    for axis, size in enumerate(sizes or ()):
        check_size(size, ctx, axis, state.sizes[axis])
    return out_state, (lambda ops_: maps), kind, params, macs, extra


_SAFE_SIZE = 1 << 20
#: repetitions :meth:`Result.evaluate` runs one by one before giving up (each is an analysis)
MAX_EVALUATED_REPETITIONS = 4096


def _repeat_numeric(layer, state, ctx):
    """A symbolic n evaluated on numpy arrays: on the distinct configurations of what the
    repetition depends on (its symbols, input sizes and channels; :class:`~rfsym.ops.Rows`),
    spread back to every configuration."""
    names = sorted({s.name for s in layer.free_symbols} & set(ctx.values))
    sizes = tuple(state.sizes or ())
    rows = Rows.of([ctx.values[k] for k in names] + [*sizes, state.channels])
    if rows is None:
        return _repeat_unrolled(layer, state, ctx)
    cols = rows.columns
    sub = Context(ctx.ops, ctx.ndim, dict(zip(names, cols)), ctx.strict, ctx.derive)
    sub.where = ctx.where
    k = len(names)
    sub_state = State(tuple(cols[k:k + len(sizes)]) if state.sizes is not None else None, cols[-1],
                      state.flattened)
    out_state, maps_fn, kind, params, macs, extra = _repeat_unrolled(layer, sub_state, sub)
    e = rows.expand
    maps, previous = [], None
    for m in maps_fn(ctx.ops):
        fields = (m.starts[0], m.jump, m.rfs[0])
        if previous is not None and all(np.array_equal(a, b) for a, b in zip(fields, previous)):
            maps.append(maps[-1])  # the axes agree: one map object, composed once downstream
        else:
            maps.append(AxisMap.affine(*(e(v) for v in fields)))
        previous = fields
    maps = tuple(maps)
    sizes = None if out_state.sizes is None else tuple(e(v) for v in out_state.sizes)
    return (State(sizes, e(out_state.channels), out_state.flattened), (lambda ops_: maps), kind,
            e(params), e(macs), extra)


def _repeat_unrolled(layer, state, ctx):
    """A symbolic n evaluated on numpy arrays: masked unrolling up to max(n), exact."""
    from .checked import checked

    n = np.asarray(ctx.val(layer.n, "n", 0))
    nd = ctx.ndim
    U, J, R = [0] * nd, [1] * nd, [1] * nd
    sizes, chans = state.sizes, state.channels
    params = 0
    macs = 0 if sizes is not None else None
    aligned = True
    xs = _size_symbols(nd) if sizes is not None else None
    same_block = layer.index is None or layer.index not in layer.block.free_symbols
    for k in range(int(n.max()) if n.size else 0):
        if k >= MAX_EVALUATED_REPETITIONS:  # bounded work: no fixed point reached so far
            raise LayerError(f"evaluate repeats this block up to n={int(n.max())} times one by one (its "
                             f"sizes change every repetition); more than {MAX_EVALUATED_REPETITIONS} is "
                             "refused: use subs, which solves the repetition in closed form",
                             where=ctx.where, param="n")
        active = k < n
        before = sizes, chans
        values = dict(ctx.values)
        if xs is not None:
            for x, v in zip(xs, sizes):
                values[x.name] = np.where(active, v, _SAFE_SIZE)
        if chans is not None:
            values[_CHANNELS.name] = np.asarray(chans)
        r = _derive_block(ctx, layer.at(k), input_size=xs, ndim=nd,
                          in_channels=None if chans is None else _CHANNELS, strict=ctx.strict, ops=NumOps,
                          numeric_values=values)
        if any(np.any(np.asarray(p) != 1) for p in r.axes("period")):
            raise LayerError("a block whose receptive field depends on the output position can only "
                             "be repeated an integer number of times", where=ctx.where, param="n")
        for a, (u, j, rf) in enumerate(zip(r.axes("start"), r.axes("jump"), r.axes("rf"))):
            U[a] = np.where(active, U[a] + J[a] * u, U[a])
            R[a] = np.where(active, R[a] + J[a] * (rf - 1), R[a])
            J[a] = np.where(active, J[a] * j, J[a])
        if sizes is not None:
            sizes = tuple(np.where(active, o, v) for o, v in zip(r.axes("out_size"), sizes))
        params = None if params is None or r.params is None else params + np.where(active, r.params, 0)
        macs = None if macs is None or r.macs is None else macs + np.where(active, r.macs, 0)
        if r.out_channels is not None:
            chans = r.out_channels if chans is None else np.where(active, r.out_channels, chans)
        if not r.aligned:
            aligned = False
        if same_block and _fixed_point(before, (sizes, chans), active):
            # repetition k + 1 reads what repetition k read: so do all the others, in closed form
            m = np.maximum(n - (k + 1), 0)
            for a, (u, j, rf) in enumerate(zip(r.axes("start"), r.axes("jump"), r.axes("rf"))):
                g = NumOps.geom(j, m)
                U[a] = U[a] + J[a] * u * g
                R[a] = R[a] + J[a] * (rf - 1) * g
                J[a] = J[a] * NumOps.pow(checked(j), m)
            params = None if params is None else params + m * r.params
            macs = None if macs is None else macs + m * r.macs
            break
    maps = tuple(AxisMap.affine(_int(u), _int(j), _int(rf)) for u, j, rf in zip(U, J, R))
    extra = {"aligned": lambda: aligned}
    sizes = None if sizes is None else tuple(_int(s) for s in sizes)
    return (State(sizes, None if chans is None else _int(chans)), (lambda ops_: maps), "Repeat",
            _int(params), _int(macs), extra)


def _fixed_point(before, after, active):
    """Whether sizes and channels after a repetition equal those before it (where active)."""
    for old, new in zip((*(before[0] or ()), before[1]), (*(after[0] or ()), after[1])):
        if (old is None) != (new is None):
            return False
        if old is not None and not np.all((np.asarray(old) == np.asarray(new)) | ~active):
            return False
    return (before[0] is None) == (after[0] is None)


def _int(v):
    from .checked import checked  # (numpy: loaded with the first array)

    if v is None:
        return None
    return checked(v)


@register_layer(L.Repeat)
def _repeat(layer, state, ctx):
    if ctx.ops is ExactOps:
        raise FallBack("a repeat solved in closed form")
    if ctx.ops.symbolic:
        large = sp.sympify(layer.n).is_Integer
        out = _repeat_large(layer, state, ctx) if large else _repeat_symbolic(layer, state, ctx)
    else:
        out = _repeat_numeric(layer, state, ctx)
    st, maps_fn, _, params, macs, extra = out
    return LeafOut(maps_fn(ctx.ops), st, params, macs, extra)
