"""Write the from_torch coverage table into docs/guides/pytorch.md.

Reads ``tests/.torch_coverage.json`` (written by ``tests/test_torch_coverage.py`` when
``RFSYM_WRITE_COVERAGE=1``; ``--run`` runs it so) and replaces the block between
``<!-- coverage -->`` and ``<!-- /coverage -->``. ``--check`` exits 1 when the page is stale
instead of writing it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "guides" / "pytorch.md"
CACHE = ROOT / "tests" / ".torch_coverage.json"
START, END = "<!-- coverage -->", "<!-- /coverage -->"


def table(rows):
    ok = sum(r["imported"] for r in rows.values())
    lines = [f"{ok} of {len(rows)} models import with this rfsym.", "",
             "| model | imported | params | MACs | rf | jump |", "|---|---|---|---|---|---|"]
    for key in sorted(rows):
        r = rows[key]
        if r["imported"]:
            lines.append(f"| {key} | yes | {r['params']:,} | {r['macs']:,} | {r['rf']} | {r['jump']} |")
        else:
            lines.append(f"| {key} | no: {r['why']} | | | | |")
    return "\n".join(lines)


def render(page, rows):
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table(rows)}\n{END}{tail}"


def main(argv):
    if "--run" in argv:
        CACHE.unlink(missing_ok=True)
        env = dict(os.environ, RFSYM_WRITE_COVERAGE="1")
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
                        str(ROOT / "tests" / "test_torch_coverage.py"), "-k", "not docs_coverage"],
                       cwd=ROOT, env=env, check=False)
    rows = json.loads(CACHE.read_text())
    page = PAGE.read_text()
    new = render(page, rows)
    if "--check" in argv:
        return 0 if new == page else 1
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
