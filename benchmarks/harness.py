"""A tiny benchmark harness: sections, medians, Markdown tables.

A benchmark module (``benchmarks/bench_*.py``) registers sections with :func:`section`; each
section is a function ``fn(ctx) -> Table | list[Table]``. ``benchmarks/run.py`` imports every
module, runs the selected sections in ``order`` and prints their tables as Markdown.

    from harness import Table, section, median_time

    @section("zoo", "Zoo: derivation time per model", order=30)
    def zoo(ctx):
        table = Table(["model", "derive (s)"])
        for name in ...:
            t, _ = median_time(lambda: ..., ctx.repeat)
            table.add(name, t)
        return table
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Section", "Context", "Table", "section", "median_time", "REGISTRY", "fmt", "targets_table", "peak_kib"]


@dataclass
class Section:
    name: str
    title: str
    fn: Callable
    order: int = 100


@dataclass
class Context:
    """What every section receives: repetitions (medians are over ``repeat`` runs) and whether a
    quick run was asked for (smaller sizes, for smoke tests)."""

    repeat: int = 3
    quick: bool = False
    targets: list = field(default_factory=list)
    section: str = ""

    def target(self, what: str, measured, goal: str, met: bool) -> None:
        """Record one target's row for the summary table ``run.py`` prints after every section.

        Args:
            what: the measurement, as a person reads it ("verify, 10^4-layer chain, CPU").
            measured: the figure (a number or a string with its unit).
            goal: the target as text ("< 5 s").
            met: whether the figure meets it.

        Example:
            >>> ctx = Context()
            >>> ctx.target("10^4 layers, CPU", "1.2 s", "< 5 s", True)
            >>> ctx.targets[0][-1]
            'yes'
        """
        self.targets.append([self.section, what, measured, goal, "yes" if met else "**no**"])


REGISTRY: dict[str, Section] = {}


def section(name: str, title: str, order: int = 100):
    """Decorator registering a benchmark section under ``name``."""

    def deco(fn):
        REGISTRY[name] = Section(name, title, fn, order)
        return fn

    return deco


def peak_kib() -> int:
    """This process's peak resident memory in KiB: /proc's ``VmHWM`` where there is one (a
    child's ``ru_maxrss`` also counts the forked copy of its parent before exec, the benchmark
    runner's own memory), else ``ru_maxrss``."""
    import resource

    try:
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("VmHWM")).split()[1])
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def median_time(fn: Callable, repeat: int, setup: Callable | None = None):
    """Median wall time of ``fn()`` over ``repeat`` runs (``setup()`` before each, untimed).

    Returns ``(median seconds, result of the last run)``.
    """
    times, result = [], None
    for _ in range(max(1, repeat)):
        arg = setup() if setup is not None else None
        t0 = time.perf_counter()
        result = fn() if setup is None else fn(arg)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def fmt(value) -> str:
    """Numbers for humans: seconds with 3 significant digits, big integers with separators."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


@dataclass
class Table:
    """A Markdown table: ``columns``, rows added with :meth:`add`, an optional note below."""

    columns: list
    rows: list = field(default_factory=list)
    title: str | None = None
    note: str | None = None

    def add(self, *cells):
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, table has {len(self.columns)} columns")
        self.rows.append(list(cells))

    def to_markdown(self) -> str:
        lines = []
        if self.title:
            lines += [f"**{self.title}**", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---:" if i else ":---" for i in range(len(self.columns))) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(fmt(c) for c in row) + " |")
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)


def targets_table(ctx: Context) -> Table | None:
    """Every target the sections recorded with :meth:`Context.target`, in one table (None if none)."""
    if not ctx.targets:
        return None
    table = Table(["section", "measurement", "measured", "target", "met"])
    for row in ctx.targets:
        table.add(*row)
    met = sum(row[-1] == "yes" for row in ctx.targets)
    table.note = f"{met} of {len(ctx.targets)} targets met in this run."
    return table
