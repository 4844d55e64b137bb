"""Shared helper of the worked examples: a Markdown page with LaTeX, figures and checked claims.

Each derivation module defines ``build(outdir) -> dict`` that writes ``<name>.md`` and its
figures (``figures/<name>-*.png``) into ``outdir`` and returns its claims (numbers and
expressions); ``tests/test_derivations.py`` runs every module and checks the claims. Run one
with ``python derivations/01_stacked_3x3.py`` to regenerate its page next to it.
"""

from __future__ import annotations

from pathlib import Path


class Page:
    """Accumulates Markdown; figures are saved under ``figures/`` next to the page."""

    def __init__(self, outdir, name, title):
        self.outdir = Path(outdir)
        self.name = name
        self.parts = [f"# {title}\n"]
        self.claims = {}
        (self.outdir / "figures").mkdir(parents=True, exist_ok=True)

    def text(self, s):
        self.parts.append(s.strip("\n") + "\n")

    def math(self, latex):
        self.parts.append("$$\n" + latex.strip() + "\n$$\n")

    def code(self, s, lang=""):
        self.parts.append(f"```{lang}\n{s.rstrip()}\n```\n")

    def figure(self, fig, stem, caption):
        from rfsym.plot import save

        rel = Path("figures") / f"{self.name}-{stem}.png"
        save(fig, self.outdir / rel)
        self.parts.append(f"![{caption}]({rel.as_posix()})\n\n*{caption}*\n")
        return self.outdir / rel

    def claim(self, key, value, expected=None):
        """Record a claim; with ``expected``, fail loudly when it does not hold."""
        if expected is not None and value != expected:
            raise AssertionError(f"{self.name}: {key} = {value}, expected {expected}")
        self.claims[key] = value
        return value

    def write(self):
        path = self.outdir / f"{self.name}.md"
        path.write_text("\n".join(self.parts), encoding="utf-8")
        self.claims["_page"] = path
        return self.claims


def main(build, file):
    """``python derivations/NN_x.py``: write the page next to the script."""
    out = build(Path(file).resolve().parent)
    print(out["_page"])
