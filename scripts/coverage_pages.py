"""What the importers' coverage scripts (``onnx_coverage.py``, ``keras_coverage.py``) share: table
cells, the generated section of a guide page, and the command line that prints, writes or checks
that section."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def number(v):
    """A table cell: ``1,183``, a fraction as sympy prints it, per-axis values joined by ``×``."""
    if isinstance(v, tuple):
        return "×".join(number(x) for x in v)
    return f"{int(v):,}" if float(v).is_integer() else str(v)


def with_section(page, text, begin, end):
    """``page`` with the text between the ``begin`` and ``end`` marker lines replaced by ``text``."""
    first, last = page.find(begin), page.find(end)
    if first < 0 or last < first:
        raise SystemExit(f"the page has no {begin} ... {end} section")
    return page[:first + len(begin)] + "\n" + text + page[last:]


def run(argv, *, description, text, script, begin, end):
    """Print the section ``text()``, or ``--write PAGE`` it into a page, or ``--check PAGE``
    (exit status 1 when the page's section differs)."""
    parser = argparse.ArgumentParser(description=description)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PAGE", help="rewrite the table in PAGE")
    group.add_argument("--check", metavar="PAGE", help="exit 1 when the table in PAGE is stale")
    args = parser.parse_args(argv)
    section = text()
    target = args.write or args.check
    if target is None:
        print(section, end="")
        return 0
    page = Path(target).read_text(encoding="utf-8")
    new = with_section(page, section, begin, end)
    if args.check:
        if new != page:
            print(f"{target} is out of date: run python {script} --write {target}", file=sys.stderr)
            return 1
        return 0
    Path(target).write_text(new, encoding="utf-8")
    return 0
