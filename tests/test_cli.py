"""The command line: output formats, the JSON contract, errors without tracebacks, help, progress."""

import io
import json
import os
import subprocess
import sys

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import rfsym
from rfsym import Conv, MaxPool, Sequential, analyze
from rfsym.cli import Progress, build_parser, main, resolve
from rfsym.report import FIELDS, to_dict

k, s, n = rfsym.symbols("k s n")


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# --------------------------------------------------------------------------- JSON contract
def _check_schema(d):
    assert list(d) == ["name", "input_size", "layers", "total", "features"]
    for layer in d["layers"]:
        assert list(layer) == ["name", "type", *FIELDS]
    assert list(d["total"]) == list(FIELDS)


def test_analyze_json_numbers(capsys):
    rc, out, err = run(capsys, "analyze", "conv3(p=1, c=8, in=3), maxpool2, conv3/2(c=16)", "--input", "32",
                       "--format", "json")
    assert rc == 0 and err == ""
    d = json.loads(out)
    _check_schema(d)
    assert d["name"] == "conv3(p=1, c=8, in=3), maxpool2, conv3/2(c=16)" and d["input_size"] == 32
    assert [x["type"] for x in d["layers"]] == ["Conv", "MaxPool", "Conv"]
    # by hand: rf 3, 4, 4 + 2*2 = 8; jump 1, 2, 4; out 32, 16, 7
    assert [x["rf"] for x in d["layers"]] == [3, 4, 8]
    assert [x["jump"] for x in d["layers"]] == [1, 2, 4]
    assert [x["out_size"] for x in d["layers"]] == [32, 16, 7]
    assert d["layers"][0]["params"] == 3 * 8 * 9 + 8 and d["layers"][0]["macs"] == 32 * 32 * 8 * 3 * 9
    assert d["total"]["params"] == 224 + 8 * 16 * 9 + 16
    assert d["total"]["macs"] == 32 * 32 * 8 * 27 + 7 * 7 * 16 * 8 * 9
    assert d["total"]["center"] == d["layers"][-1]["center"] and isinstance(d["total"]["rf"], int)


def test_analyze_json_symbolic_values_sympify_back(capsys):
    rc, out, _ = run(capsys, "analyze", "conv(k, s=s), conv(k, p=1)", "--input", "n", "--format", "json")
    d = json.loads(out)
    assert d["input_size"] == "n"
    syms = {"k": k, "s": s, "n": n}
    result = analyze(Sequential(Conv(k, stride=s), Conv(k, padding=1)), input_size=n)
    for key in FIELDS:
        want = getattr(result, key)
        got = d["total"][key]
        if want is None:
            assert got is None
        else:
            assert isinstance(got, str if sp.sympify(want).free_symbols else int)
            assert sp.simplify(sp.sympify(got, locals=syms) - want) == 0, key


def test_analyze_json_per_axis_lists_and_rationals(capsys):
    rc, out, _ = run(capsys, "analyze", "conv3x5/2, conv3", "--input", "17x9", "--format", "json")
    d = json.loads(out)
    assert d["input_size"] == [17, 9]
    assert d["total"]["rf"] == [7, 9] and d["total"]["out_size"] == [6, 1]
    assert d["layers"][0]["center"] == [1, 2]
    for size in ("17,9", "(17, 9)", "17 x 9"):
        rc, out, _ = run(capsys, "analyze", "conv3x5/2, conv3", "--input", size, "--format", "json")
        assert json.loads(out)["input_size"] == [17, 9]
    import rfsym.layers as graph
    d = to_dict(analyze(graph.ConvTranspose(3, stride=2), input_size=4))
    assert d["total"]["jump"] == "1/2" and sp.sympify(d["total"]["jump"]) == sp.Rational(1, 2)


def test_analyze_json_lists_merges_in_topological_order(capsys):
    import rfsym.layers  # noqa: F401
    rc, out, _ = run(capsys, "analyze", "conv3(p=1), res(conv3(p=1), relu, conv3(p=1)), cat(conv1 | conv3(p=1))",
                     "--input", "16", "--format", "json")
    d = json.loads(out)
    _check_schema(d)
    types = [x["type"] for x in d["layers"]]
    # the residual's identity shortcut is a layer of its own, listed after the body
    assert types == ["Conv", "Conv", "ReLU", "Conv", "Identity", "Add", "Conv", "Conv", "Concat"]
    add = d["layers"][types.index("Add")]
    assert add["rf"] == 7 and add["out_size"] == 16 and d["layers"][-1]["rf"] == 9


def test_report_to_dict_is_reusable_and_json_safe():
    r = analyze(Sequential(Conv(3), MaxPool(2)), input_size=None)
    d = to_dict(r, name="x")
    _check_schema(d)
    assert d["input_size"] is None and d["total"]["out_size"] is None and d["total"]["params"] is None
    json.dumps(d)
    numeric = analyze(Sequential(Conv(k)), input_size=8).evaluate({"k": [1, 3]})
    assert to_dict(numeric)["total"]["rf"] == [1, 3]


# --------------------------------------------------------------------------- text formats
def test_analyze_text_and_markdown(capsys):
    rc, out, _ = run(capsys, "analyze", "conv3(p=1) x 2", "--input", "8")
    assert rc == 0
    assert out.splitlines()[0] == "conv3(p=1) x 2: input size 8, 2 layers"
    # name, k, s, p, size, rf, jump, start (no channels: no params or MACs columns)
    assert out.splitlines()[1].split() == ["name", "type", "k", "s", "p", "size", "rf", "jump", "start"]
    last = out.splitlines()[-1].split()
    assert last[0] == "total" and last[-4:] == ["8", "5", "1", "−2"]
    assert all(len(line) <= 100 for line in out.splitlines())
    rc, out, _ = run(capsys, "analyze", "conv3(p=1) x 2", "--input", "8", "--format", "markdown")
    assert rc == 0 and out.startswith("**conv3(p=1) x 2: input size 8, 2 layers**")
    # the same columns and values as the text table
    assert out.splitlines()[2] == "| name | type | k | s | p | size | rf | jump | start |"
    assert out.splitlines()[-1] == "| total |  |  |  |  | 8 | 5 | 1 | -2 |"
    rc, out, _ = run(capsys, "analyze", "conv3(p=1) x 2", "--input", "8", "--format", "latex")
    assert rc == 0 and r"\begin{tabular}" in out and r"\bottomrule" in out


def test_set_substitutes_symbols(capsys):
    rc, out, _ = run(capsys, "analyze", "conv(k, s=s) x 3", "--set", "k=3", "s=2", "--format", "json")
    assert rc == 0 and json.loads(out)["total"]["rf"] == 15
    rc, _, err = run(capsys, "analyze", "conv(k)", "--set", "q=3")
    assert rc == 2 and "no symbol 'q' (its symbols: k)" in err
    rc, _, err = run(capsys, "analyze", "conv(k)", "--set", "k=0")
    assert rc == 2 and "kernel_size must be a positive integer" in err


def test_verify_cross_checks_by_enumeration(capsys):
    pytest.importorskip("rfsym.verification")
    rc, out, _ = run(capsys, "verify", "conv(k, s=2, p=1), conv3(d=2), maxpool2", "--set", "k=3", "--input", "32")
    assert rc == 0 and out.startswith("conv(k, s=2, p=1), conv3(d=2), maxpool2: OK  (")
    rc, _, err = run(capsys, "verify", "conv(k)", "--input", "8")
    assert rc == 2 and "enumeration needs numbers" in err


def test_derive_steps(capsys):
    pytest.importorskip("rfsym.steps")
    rc, out, _ = run(capsys, "derive", "conv3/2 x 3", "--steps")
    assert rc == 0 and out.splitlines()[1] == "R₂ = 3 + (3 − 1)·2 = 7,  J₂ = 2·2 = 4"


def test_derive_prints_closed_forms(capsys):
    from rfsym.format import value

    rc, out, _ = run(capsys, "derive", "conv(k, s=s) x 3")
    assert rc == 0
    line = next(x for x in out.splitlines() if "receptive field" in x)
    assert line.split("receptive field")[1].strip() == value(sp.expand(1 + (k - 1) * (1 + s + s**2)))
    rc, out, _ = run(capsys, "derive", "conv(k, s=s) x 3", "--format", "json")
    d = json.loads(out)
    assert sp.sympify(d["jump"], locals={"s": s}) == s**3
    assert sp.simplify(sp.sympify(d["rf"], locals={"k": k, "s": s}) - (1 + (k - 1) * (1 + s + s**2))) == 0
    rc, out, _ = run(capsys, "derive", "conv(k) x 2", "--format", "latex")
    assert out.startswith(r"\begin{align*}") and r"2 k - 1" in out


def test_zoo_listing_and_models(capsys):
    zoo = pytest.importorskip("rfsym.zoo")
    rc, out, _ = run(capsys, "zoo")
    assert rc == 0 and len(out.splitlines()) == len(zoo.names())
    name = zoo.names()[0]
    rc, out, _ = run(capsys, "zoo", name)
    assert out.startswith(f"{name}: ")
    rc, out, _ = run(capsys, "analyze", "slim_vgg_16", "--format", "json")
    d = json.loads(out)
    pool5 = next(x for x in d["layers"] if x["name"] == "vgg_16/pool5")
    # Araujo, Norris, Sim (Distill 2019), receptive-field table: vgg_16 pool5 rf 212, stride 32, padding 90
    assert (pool5["rf"], pool5["jump"], -pool5["start"]) == (212, 32, 90)
    if "vgg" in zoo.names():
        assert resolve("vgg(depths=(1, 1, n, 2, 2))").network == zoo.get("vgg", depths=(1, 1, n, 2, 2))


def test_zoo_family_arguments():
    zoo = pytest.importorskip("rfsym.zoo")
    family = next((e for e in map(zoo.entry, zoo.names()) if e.parameters), None)
    if family is None:
        pytest.skip("no zoo family with arguments yet")
    with pytest.raises(rfsym.RfsymError, match="takes"):
        resolve(f"{family.name}(nonexistent_argument=3)")


def test_demo_still_works(capsys):
    rc, out, _ = run(capsys, "demo")
    # the notes' numbers: 3, 5, 7, 9; 49C^2 vs 27C^2; and the enumeration check
    assert rc == 0 and "R₄ = 7 + (3 − 1) = 9" in out and "R₂ = 3 + (3 − 1) = 5" in out
    assert "49·C² vs 27·C²  (ratio 27/49)" in out
    assert "enumeration of the index maps agrees: True" in out


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("argv, message", [
    (["analyze", "resnt5O"], "unknown model or layer 'resnt5O'"),
    (["analyze", "resnt5O(depth=3)"], "unknown model or layer 'resnt5O'"),
    (["analyze", "conv3, maxpool(3, strid=2)"], "did you mean 'stride'?"),
    (["analyze", "conv3 x 5", "--input", "8"], "output size"),
    (["analyze", "conv3", "--input", "0"], "input_size must be a positive integer, got 0"),
    (["analyze", "conv3", "--input", "8x"], "--input '8x'"),
    (["analyze", "missing_file.yaml"], "missing_file.yaml: no such file"),
    (["analyze", "conv3", "--in-channels", "-1"], "in_channels must be a positive integer"),
    (["derive", ""], "the network is empty"),
    (["verify", "conv3"], "needs --input"),
])
def test_bad_input_is_one_line_on_stderr_with_status_2(capsys, argv, message):
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.startswith("rfsym: error: ") and message in err
    assert "Traceback" not in err and "internal error" not in err


def test_malformed_file(tmp_path, capsys):
    path = tmp_path / "net.yaml"
    path.write_text("layers:\n  - conv: {kernel_size: 3, strid: 2}\n")
    rc, _, err = run(capsys, "analyze", str(path))
    assert rc == 2 and err.startswith(f"rfsym: error: {path}:2: layers[0].conv: unknown key 'strid'")


def test_argparse_errors_also_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["analyze", "conv3", "--format", "yaml"])
    assert info.value.code == 2
    assert "rfsym analyze: error: argument --format" in capsys.readouterr().err


def test_console_script_entry_point_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "rfsym.cli", "analyze", "conv(3, s=0)"],
                          capture_output=True, text=True, env={**os.environ, "RFSYM_DEBUG": ""})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("rfsym: error: ") and "Traceback" not in proc.stderr


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["conv3", "conv(k, s=2)", "maxpool2", "x", "2", "n", ",", "(", ")", "res(",
                                 "|", "cat(", "p=", "1", "0", "relu", "convt(4, 2, 1)", "up2", "gap"]),
                max_size=10).map(" ".join),
       st.sampled_from(["8", "32", "n", "none", "3x7", "1"]))
def test_fuzz_cli_analyze_never_crashes(text, size):
    """Whatever the spec and the input size, analyze exits 0 or prints an rfsym error (exit 2)."""
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        rc = main(["analyze", text, "--input", size, "--format", "json"])
    finally:
        sys.stdout, sys.stderr = old
    if rc == 0:
        _check_schema(json.loads(out.getvalue()))
    else:
        assert rc == 2 and err.getvalue().startswith("rfsym: error: ")
        assert "internal error" not in err.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- help, progress
def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", [None, *_subcommands()])
def test_help_everywhere_with_examples(command, capsys):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "one-line spec" in out
    if command != "demo":
        assert "examples:" in out


def test_subcommands_are_the_documented_ones():
    assert set(_subcommands()) == {"derive", "analyze", "summary", "compare", "verify", "plot", "zoo", "demo",
                                   "sizes", "tile"}


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal():
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress(2, "verifying ", stream, delay=0)
        p.step("a")
        p.step("b")
        p.close()
    assert "verifying [1/2] a" in tty.getvalue() and "[2/2] b" in tty.getvalue()
    assert pipe.getvalue() == ""


@pytest.mark.parametrize("argv, module", [
    (["compare", "conv7(in=C, c=C, bias=false)", "conv3(in=C, c=C, bias=false) x 3"], "rfsym.comparison"),
    (["plot", "growth", "conv3 x 3", "conv3/2 x 3", "-o", "PLOT.png"], "rfsym.plot"),
])
def test_compare_and_plot_work_or_say_they_are_missing(argv, module, capsys, tmp_path):
    """Before issue 5's modules land these say so cleanly; after, they run."""
    import importlib.util

    argv = [a.replace("PLOT.png", str(tmp_path / "plot.png")) for a in argv]
    rc, out, err = run(capsys, *argv)
    if importlib.util.find_spec(module) is None:
        assert rc == 2 and err.startswith("rfsym: error: ") and "is not available" in err
    elif argv[0] == "compare":  # one 7x7 against three 3x3: same rf, weights 49C^2 vs 27C^2
        assert rc == 0, err
        assert out.splitlines()[2].split() == ["rf", "7", "7", "0", "1"]
        assert out.splitlines()[4].split()[-1] == "27/49"
    else:
        pytest.importorskip("matplotlib")
        assert rc == 0, err
        png = (tmp_path / "plot.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_compare_with_set_and_formats(capsys):
    pytest.importorskip("rfsym.comparison")
    rc, out, _ = run(capsys, "compare", "conv7(in=C, c=C)", "conv3 x 3", "--set", "C=64", "--format", "json")
    assert rc == 0 and json.loads(out)["names"] == ["conv7(in=C, c=C)", "conv3 x 3"]
    rc, _, err = run(capsys, "compare", "conv7(in=C, c=C)", "conv3 x 3", "--set", "D=64")
    assert rc == 2 and "no network has a symbol 'D' (their symbols: C)" in err
