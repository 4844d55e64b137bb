"""Screenshots for a person to look at (not a test): the notebook outputs of tests/test_notebook.py
and pages of the built docs site, rendered by headless Chromium with the bundled MathJax.

    python tests/screenshots.py OUT_DIR [SITE_DIR]

writes OUT_DIR/notebook.html and OUT_DIR/notebook.png, and, given a built site
(``mkdocs build -d SITE_DIR``), OUT_DIR/<page>.png for a few pages.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGES = ["index.html", "getting-started/index.html", "zoo/index.html", "reference/analysis/index.html",
         "derivations/index.html", "outputs/index.html"]


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no chromium: apt-get install -y chromium")


def shoot(url, png, size="1200,1600"):
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run",
                        f"--user-data-dir={profile}", "--virtual-time-budget=8000", f"--screenshot={png}",
                        f"--window-size={size}", url], check=True, capture_output=True, timeout=120)


def notebook(out: Path, mathjax: Path | None):
    sys.path.insert(0, str(HERE))
    from test_notebook import CELLS, _html, executed

    parts = []
    for code, outputs in zip(CELLS[1:], executed()[1:]):
        parts.append(f"<pre>In: {code}</pre>{_html(outputs)}")
    script = f'<script src="{mathjax}"></script>' if mathjax else ""
    page = out / "notebook.html"
    page.write_text(f"<!doctype html><meta charset=utf-8><body style='font-family:sans-serif'>"
                    f"{''.join(parts)}{script}</body>", encoding="utf-8")
    shoot(page.as_uri(), out / "notebook.png", "1200,3000")


def main(argv):
    out = Path(argv[0]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    site = Path(argv[1]).resolve() if len(argv) > 1 else None
    mathjax = site / "javascripts" / "mathjax" / "tex-chtml.js" if site else None
    notebook(out, mathjax if mathjax and mathjax.exists() else None)
    if site:
        for page in PAGES:
            if (site / page).exists():
                name = page.replace("/index.html", "").replace("/", "_").replace(".html", "")
                shoot((site / page).as_uri(), out / f"{name}.png")
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
