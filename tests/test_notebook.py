"""A notebook that uses rfsym runs in a real Jupyter kernel and shows HTML (tables, the features
row, MathJax formulas), not six bare LaTeX numbers. ``python tests/screenshots.py`` writes the
same outputs to an HTML page and screenshots it in headless Chromium for a person to look at."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CELLS = [
    f"import sys; sys.path.insert(0, {str(ROOT)!r})\nimport rfsym\nfrom rfsym import html",
    'r = rfsym.zoo.analyze("resnet18")\nfrom IPython.display import HTML\nHTML(html.result_html(r))',
    'rfsym.summary("resnet50", depth=1)',
    'rfsym.compare("resnet18", "resnet50")',
    "rfsym.verify(rfsym.Sequential(rfsym.Conv(3, padding=1), rfsym.Conv(3, stride=2)), 16)",
    'HTML(html.layer_html(r.layer("layer4.1.relu")))',
]


def executed():
    """The notebook of :data:`CELLS`, executed; one list of outputs per cell."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + env_path if env_path else "")
    try:
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        os.environ["PYTHONPATH"] = env_path
    return [cell.outputs for cell in nb.cells]


def _html(outputs):
    return "".join(o.get("data", {}).get("text/html", "") for o in outputs if o.output_type == "execute_result"
                   or o.output_type == "display_data")


def test_notebook_shows_html_results():
    outs = executed()
    result, summary, comparison, verify, layer = (_html(o) for o in outs[1:])
    # the analysed network: name, backbone row beside the totals, closed forms, collapsible table
    assert "<b>resnet18</b>" in result and "features (layer4.1.relu)" in result
    assert "$$" in result and "<details><summary>per-layer table" in result
    assert '<td style="text-align:right">435</td>' in result  # rf at layer4 (the whole network: 627)
    assert '<td style="text-align:right">627</td>' in result
    # Summary, Comparison and VerifyReport render themselves
    assert "resnet50: input 3×224×224" in summary and "<table>" in summary and "features: layer4.2.relu" in summary
    assert "features.rf" in comparison and "<table>" in comparison
    assert "engine and enumeration agree" in verify
    assert "layer4.1.relu" in layer and "$$" in layer
    assert not any(o.output_type == "error" for cell in outs for o in cell)
