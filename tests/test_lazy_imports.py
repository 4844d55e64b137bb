"""``import rfsym`` and the command line load only what they use (PEP 562 names), and the public
API is the same as with eager imports."""

import os
import subprocess
import sys

import pytest

import rfsym

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_import_rfsym_loads_no_sympy_numpy_or_frameworks():
    loaded = _run("import sys, rfsym; print(*sorted(sys.modules))")
    for heavy in ("sympy", "numpy", "torch", "onnx", "keras", "rfsym.engine", "rfsym.layers"):
        assert heavy not in loaded


def test_cli_help_loads_no_sympy():
    loaded = _run("import sys, contextlib, io\nfrom rfsym.cli import main\n"
                  "with contextlib.redirect_stdout(io.StringIO()):\n"
                  "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
                  "print(*sorted(sys.modules))")
    assert "sympy" not in loaded and "numpy" not in loaded


def test_cli_analyze_zoo_name_skips_unneeded_modules():
    loaded = _run("import sys, contextlib, io\nfrom rfsym.cli import main\n"
                  "with contextlib.redirect_stdout(io.StringIO()):\n    main(['analyze', 'resnet50'])\n"
                  "print(*sorted(sys.modules))")
    for unneeded in ("rfsym.comparison", "rfsym.verification", "rfsym.effective_field", "rfsym.latex",
                     "rfsym.symbolization", "rfsym.spec", "rfsym.torch_import"):
        assert unneeded not in loaded
    assert "numpy" not in loaded  # a numeric analysis and its table make no array


def test_numpy_loads_with_the_first_array():
    """After a numeric analysis (no numpy yet), an evaluation over values loads it and works,
    whether rfsym loads numpy or the caller did first."""
    code = ("import sys, rfsym\nk = rfsym.symbols('k')\nr = rfsym.analyze(rfsym.Conv(3), input_size=8)\n"
            "print(r.rf, 'numpy' in sys.modules)\n{}"
            "ev = rfsym.analyze(rfsym.Conv(k)).evaluate({{'k': [3, 5]}})\n"
            "print(type(ev.rf).__name__, ev.rf.tolist(), 'numpy' in sys.modules)")
    for first in ("", "import numpy\n"):
        assert _run(code.format(first)) == ["3", "False", "Checked", "[3,", "5]", "True"]


def test_every_public_name_resolves_and_dir_lists_it():
    names = _run("import rfsym\nfor n in rfsym.__all__:\n    getattr(rfsym, n)\nprint(*dir(rfsym))")
    frameworks = {"from_torch", "from_onnx", "read_onnx", "from_keras"}  # loaded on use, not listed
    assert set(rfsym.__all__) - frameworks <= set(names)
    assert not [n for n in names if n.startswith("_") and not n.endswith("__")]  # no private helpers
    assert "__dir__" not in names and "importlib" not in names
    for sub in ("engine", "layers", "chain", "ops", "format"):  # submodules, as an eager import left them
        assert sub in names


def test_dir_is_the_same_before_and_after_loading():
    before, after = _run("import rfsym\nprint(len(dir(rfsym)))\nrfsym.analyze(rfsym.Conv(3))\n"
                         "print(len(dir(rfsym)))")
    assert before == after


def test_symbols_stays_the_function_when_its_module_loads():
    out = _run("import rfsym\nfrom rfsym.symbols import as_expr\nimport rfsym.symbols\n"
               "print(callable(rfsym.symbols) and not isinstance(rfsym.symbols, type(rfsym)), rfsym.symbols('k'))")
    assert out == ["True", "k"]
    assert rfsym.symbols("k s") == rfsym.symbols.__call__("k s")


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rfsym.nope  # noqa: B018
    assert getattr(rfsym, "nope", None) is None
