"""The documentation site: it builds strictly, and every example in docs/ runs.

* ```python blocks (run as scripts) and ```pycon blocks (run as doctests) of one page run in
  order, in one namespace, so a page reads as one session;
* ```yaml blocks are architecture files: each must load with ``rfsym.spec.loads``;
* ```console blocks are command-line sessions: each ``$ rfsym ...`` line runs through
  ``rfsym.cli.main`` and must print exactly what the page shows (stdout and stderr).

``sh``/``text``/``json`` blocks are shown, not run.
"""

import contextlib
import doctest
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)


def _blocks(page, language):
    return [m.group(2) for m in _FENCE.finditer(page.read_text(encoding="utf-8")) if m.group(1) == language]


def _ids(page):
    return str(page.relative_to(DOCS))


def test_there_are_pages_and_examples():
    assert {"index.md", "getting-started.md", "comparison.md", "conventions.md", "outputs.md", "zoo.md"} <= {
        p.name for p in PAGES}
    assert sum(len(_runnable(p)) for p in PAGES) >= 15


def _runnable(page):
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(page.read_text(encoding="utf-8"))
            if m.group(1) in ("python", "pycon")]


@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p)], ids=_ids)
def test_examples_run(page, tmp_path, monkeypatch):
    """```python and ```pycon blocks of a page, in order, in one namespace (a page is one session)."""
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace = {"__name__": f"docs_{page.stem}"}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for i, (language, code) in enumerate(_runnable(page)):
        where = f"{page.relative_to(ROOT)} ({language} block {i + 1})"
        try:
            if language == "python":
                exec(compile(code, where, "exec"), namespace)
                continue
            test = doctest.DocTestParser().get_doctest(code, namespace, where, str(page), 0)
            out = io.StringIO()
            runner.run(test, out=out.write, clear_globs=False)
            assert runner.failures == 0, out.getvalue()
            namespace.update(test.globs)
        except ImportError as err:  # an optional extra that this environment lacks
            if err.name and err.name.split(".")[0] in ("matplotlib", "torch", "yaml"):
                pytest.skip(f"needs {err.name}")
            raise


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "yaml")], ids=_ids)
def test_yaml_examples_are_valid_architecture_files(page):
    pytest.importorskip("yaml")
    import rfsym
    from rfsym.spec import loads

    for i, text in enumerate(_blocks(page, "yaml")):
        spec = loads(text, origin=f"{page.name} yaml block {i + 1}")
        rfsym.analyze(spec.network, input_size=spec.input_size, ndim=spec.ndim, in_channels=spec.in_channels)


def _sessions(block):
    """(argv, expected output) for each ``$ rfsym ...`` line of a console block."""
    out, cmd, expected = [], None, []
    for line in block.splitlines():
        if line.startswith("$ "):
            if cmd is not None:
                out.append((cmd, expected))
            cmd, expected = shlex.split(line[2:]), []
        else:
            expected.append(line)
    if cmd is not None:
        out.append((cmd, expected))
    return out


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "console")], ids=_ids)
def test_console_sessions_print_what_the_page_shows(page):
    from rfsym.cli import main

    for block in _blocks(page, "console"):
        for argv, expected in _sessions(block):
            assert argv[0] == "rfsym", argv
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                main(argv[1:])
            got = [line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines()]
            assert got == [line.rstrip() for line in expected], f"{page.name}: $ {shlex.join(argv)}"


def test_mkdocs_build_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[docs]')")
    if shutil.which("mkdocs") is None and importlib.util.find_spec("mkdocs.__main__") is None:
        pytest.skip("mkdocs is not runnable")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "reference" / "analysis" / "index.html").exists()
