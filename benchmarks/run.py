"""Run rfsym's benchmarks and print Markdown tables.

    python benchmarks/run.py                     # every section, medians over 3 runs
    python benchmarks/run.py --only depth        # one section (comma-separated list)
    python benchmarks/run.py sweeps zoo          # the same, sections as arguments
    python benchmarks/run.py --repeat 5 --quick  # more runs, smaller sizes
    python benchmarks/run.py --list              # the sections available

Sections live in ``benchmarks/bench_*.py`` modules, which register them with
``harness.section`` (see ``benchmarks/harness.py``); adding a module adds its sections.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # harness and bench_* modules
sys.path.insert(1, os.path.dirname(HERE))  # rfsym from a source checkout, installed or not

from harness import REGISTRY, Context, targets_table  # noqa: E402


def discover():
    for name in sorted(os.listdir(HERE)):
        if name.startswith("bench_") and name.endswith(".py"):
            importlib.import_module(name[:-3])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", help="section names (default: all; see --list)")
    parser.add_argument("--only", help="comma-separated section names")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (medians); default 3")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    args = parser.parse_args(argv)
    discover()
    sections = sorted(REGISTRY.values(), key=lambda s: (s.order, s.name))
    if args.list:
        for s in sections:
            print(f"{s.name:12s} {s.title}")
        return 0
    if args.only or args.sections:
        wanted = [w.strip() for w in (args.only or "").split(",") + args.sections if w.strip()]
        unknown = sorted(set(wanted) - set(REGISTRY))
        if unknown:
            parser.error(f"unknown section(s): {', '.join(unknown)} (available: {', '.join(sorted(REGISTRY))})")
        sections = [s for s in sections if s.name in wanted]
    import numpy
    import sympy

    import rfsym

    ctx = Context(repeat=args.repeat, quick=args.quick)
    print("# rfsym benchmarks\n")
    print(f"rfsym {rfsym.__version__}, sympy {sympy.__version__}, numpy {numpy.__version__}, "
          f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs"
          f"{', quick' if args.quick else ''}\n")
    for s in sections:
        t0 = time.perf_counter()
        ctx.section = s.name
        out = s.fn(ctx)
        tables = out if isinstance(out, (list, tuple)) else [out]
        print(f"## {s.title}\n")
        for table in tables:
            print(table.to_markdown())
            print()
        print(f"_section `{s.name}` took {time.perf_counter() - t0:.1f} s_\n", flush=True)
    summary = targets_table(ctx)
    if summary is not None:
        print("## Targets of the sections run\n")
        print(summary.to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
