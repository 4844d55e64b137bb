"""What a user sees: the formatter, rfsym.summary, the backbone number, plots that fail loudly,
notebook HTML. Real models are checked against torch itself (parameter counts, recorded shapes)."""

import json
import subprocess
import sys
import time

import pytest
import sympy as sp

import rfsym
from rfsym import Conv, RfsymError, Sequential, SizeError, symbols, zoo
from rfsym.cli import main
from rfsym.format import Column, Table, abbreviate, group, si, value
from rfsym.summaries import features, summary


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# --------------------------------------------------------------------------- the formatter
def test_one_style_for_every_value():
    C, k = symbols("C k")
    assert [group(n) for n in (999, 1000, 10_000, -1234)] == ["999", "1,000", "10,000", "-1,234"]
    assert value(49 * C**2) == "49·C²" and value(49 * C**2, "text") == "49*C**2"
    assert value(49 * C**2, "markdown") == "$49 C^{2}$" and value(49 * C**2, "html") == r"\(49 C^{2}\)"
    assert value((7, 7), area=True) == "7" and value((3, 5), area=True) == "3×5" and value((1, 2)) == "(1, 2)"
    assert value(None) == "–" and value(None, "text") == "-"
    assert value(2 * k - 1) == "2·k − 1"
    assert si(4_089_184_256) == "4.09 G" and si(15_000_000) == "15.0 M" and si(216_000) == "216 k"
    assert si(k) == "k"  # symbolic counts print as values


def test_abbreviation_rule():
    s = " + ".join(f"x{i}" for i in range(40))
    # cut at the last term boundary within 30 characters, the sign kept, the full length stated
    assert abbreviate(s, 30) == f"x0 + x1 + x2 + x3 + x4 + x5 + … ({len(s):,} chars)"
    assert abbreviate("(a + b + c)*d + " + "e" * 20, 24) == "(a + b + c)*d + … (36 chars)"
    assert abbreviate("(a + b + c)*d", 8) == "(a + b +…"  # narrow: no boundary outside parentheses
    # a value too big to render is not rendered
    n = symbols("n")
    huge = sp.Add(*[(n + i) ** 3 for i in range(6000)], evaluate=False)
    t0 = time.perf_counter()
    assert value(huge, max_chars=40) == "… (large expression)"
    assert time.perf_counter() - t0 < 2


def test_tables_right_align_numbers_and_share_values_across_styles():
    t = Table([Column("name", "label"), Column("params", "count")], [["a", 1234567], ["bb", 5]])
    lines = t.render().splitlines()
    assert lines[2] == "a     1,234,567" and lines[3] == "bb            5"
    assert t.render("markdown").splitlines()[2] == "| a | 1,234,567 |"
    assert "<td style=\"text-align:right\">1,234,567</td>" in t.render("html")


def test_deep_symbolic_tables_fit_100_columns(capsys):
    rc, out, _ = run(capsys, "analyze", "conv(k, s=2, p=1) x 30", "--input", "n")
    assert rc == 0
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "…" in out  # long closed forms abbreviated


# --------------------------------------------------------------------------- the backbone number
def test_features_of_zoo_entries_match_the_named_layer():
    for name in ("resnet50", "vgg16", "slim_vgg_16"):
        e = zoo.entry(name)
        r = e.analyze()
        f = features(r)
        assert f is not None and f.name == e.features
        assert (f.rf, f.jump) == (r.layer(e.features).rf, r.layer(e.features).jump)
    assert features(rfsym.analyze(Sequential(Conv(3), Conv(3)))) is None


def test_cli_shows_the_features_row(capsys):
    # the feature layer of torchvision's resnet50 (layer4's output): rf 427, jump 32, padding 213,
    # the values docs/zoo.md lists; the whole network's 619/224 is the field after global pooling
    rc, out, _ = run(capsys, "analyze", "resnet50")
    assert rc == 0 and out.splitlines()[-1] == "features: layer4.2.relu — rf 427, jump 32, effective padding 213"
    assert max(len(line) for line in out.splitlines()) <= 100
    rc, out, _ = run(capsys, "analyze", "resnet50", "--format", "json")
    d = json.loads(out)
    assert d["features"]["name"] == "layer4.2.relu"
    assert (d["features"]["rf"], d["features"]["jump"], d["features"]["effective_padding"]) == (427, 32, 213)
    assert (d["total"]["rf"], d["total"]["jump"]) == (619, 224)
    rc, out, _ = run(capsys, "analyze", "resnet50", "--at", "layer3.5.relu", "--format", "json")
    assert json.loads(out)["rf"] == rfsym.zoo.analyze("resnet50").layer("layer3.5.relu").rf
    rc, _, err = run(capsys, "analyze", "resnet50", "--at", "layer9")
    assert rc == 2 and "no layer named 'layer9'" in err
    rc, out, _ = run(capsys, "compare", "resnet18", "resnet50", "--format", "json")
    assert json.loads(out)["quantities"]["features.rf"]["values"] == [435, 427]


# --------------------------------------------------------------------------- summary
def test_summary_of_a_zoo_entry():
    s = summary("resnet50", depth=1)
    text = str(s)
    lines = text.splitlines()
    assert lines[0] == "resnet50: input 3×224×224, 187 layers, 25.6 M parameters, 4.09 G MACs"
    assert max(len(line) for line in lines) <= 100
    row = next(line for line in lines if line.startswith("layer4 "))
    assert row.split() == ["layer4", "2,048×7×7", "427", "32", "15.0", "M", "809", "M"]
    assert lines[-1] == "features: layer4.2.relu — rf 427, jump 32, effective padding 213"
    assert s.rf == 619 and s.layer("layer4.2.relu").rf == 427 and s.result.params == 25_557_032
    cols = summary("resnet18", depth=0 or None, columns=("layer", "rf")).table().splitlines()
    assert cols[0].split() == ["layer", "rf"] and len(cols) > 60
    with pytest.raises(RfsymError, match="summary columns are"):
        summary("resnet18", columns=("layer", "colour"))


def test_summary_tree_totals_are_the_sum_of_their_layers():
    s = summary("resnet18", depth=2)
    r = s.result
    layer2 = [lr for lr in r.layers if lr.name.startswith("layer2.")]
    row = next(line for line in s.table().splitlines() if line.startswith("layer2 "))
    assert row.split()[-4:-2] == si(sum(lr.params for lr in layer2)).split()


def _torch_shapes(module, x, names):
    import torch

    shapes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
             for n, m in module.named_modules() if n in names]
    with torch.no_grad():
        module(x)
    for h in hooks:
        h.remove()
    return shapes


def test_summary_of_a_torch_module_agrees_with_torch():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18().eval()
    s = summary(model, (3, 160, 160), depth=1)
    # parameters: torch's own count, per top-level module and in total
    assert s.params == sum(p.numel() for p in model.parameters())
    shapes = _torch_shapes(model, torch.zeros(1, 3, 160, 160), {"layer1", "layer2", "layer3", "layer4"})
    table = s.table("text")
    for name, child in model.named_children():
        if name in shapes:
            row = next(line for line in table.splitlines() if line.startswith(name + " "))
            c, h, w = shapes[name][1:]
            assert row.split()[1] == f"{value(c, 'text')}x{h}x{w}", row
            n = sum(p.numel() for p in child.parameters())
            assert si(n, style="text") in row
    # (N, C, H, W) works as well; a missing channel axis is a clear rfsym error
    assert summary(model, (1, 3, 64, 64)).params == s.params
    with pytest.raises(SizeError, match=r"\(C, H, W\) or \(N, C, H, W\)"):
        summary(model, (64, 64))
    with pytest.raises(SizeError, match="needs input_size"):
        summary(model)


def test_cli_summary_of_a_torch_model(capsys):
    pytest.importorskip("torchvision")
    rc, out, _ = run(capsys, "summary", "--torch", "torchvision.models:resnet18", "--input", "3x64x64",
                     "--depth", "1")
    assert rc == 0 and out.startswith("torchvision.models:resnet18: input 3×64×64")
    rc, _, err = run(capsys, "summary", "--torch", "torchvision.models:resnet18")
    assert rc == 2 and "--input 3x224x224" in err


# --------------------------------------------------------------------------- plots
def test_plots_fail_loudly_and_use_the_model_defaults(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "t.png"
    rc, _, err = run(capsys, "plot", "tradeoff", "gap, fc(3, 4)", "gap, fc(3, 8)", "-o", str(out))
    # no input size: the global field is symbolic (in the input size) or infinite, never drawn
    assert rc == 2 and ("(symbolic)" in err or "not a finite number" in err) and not out.exists()
    rc, _, err = run(capsys, "plot", "tradeoff", "resnet18", "resnet50", "--input", "224", "-o", str(out))
    assert rc == 0 and out.stat().st_size > 10_000
    rc, _, err = run(capsys, "plot", "growth", "resnet18", "-o", str(tmp_path / "g.png"))
    assert rc == 0, err
    rc, _, err = run(capsys, "plot", "boxes", "resnet18", "-o", str(tmp_path / "b.png"))  # 224, its own size
    assert rc == 0, err
    from rfsym.plot import growth, tradeoff

    with pytest.raises(RfsymError, match="the figure would be empty"):
        growth({}, path=tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()
    with pytest.raises(RfsymError, match=r"\(symbolic\)|not a finite number"):
        tradeoff([rfsym.analyze(zoo.get("resnet18"))], x="rf")  # no input size: the pooled field is unknown


def test_python_dash_m_rfsym():
    proc = subprocess.run([sys.executable, "-m", "rfsym", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("rfsym ")


# --------------------------------------------------------------------------- notebook HTML
def test_html_renderers():
    from rfsym.html import layer_html, result_html

    r = zoo.analyze("resnet18")
    page = result_html(r)
    assert "features (layer4.1.relu)" in page and "<details>" in page and "$$" in page
    assert page.count("<tr") > len(r.layers)  # every layer in the collapsible table
    assert "layer4.1.relu" in layer_html(r.layer("layer4.1.relu"))
    c = rfsym.compare("resnet18", "resnet50")
    assert "<table>" in c._repr_html_() and "features.rf" in c._repr_html_()
    v = rfsym.verify(Conv(3, stride=2), 16)
    assert "agree" in v._repr_html_() and "agree" in v._repr_markdown_()
    assert "<table>" in summary("resnet18")._repr_html_()


def test_readme_shows_the_current_summary():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert str(summary("resnet50", depth=1)) in readme


def test_summary_dispatches_onnx_models_to_the_importer(monkeypatch):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    seen = {}

    def fake_from_onnx(model, input_shape=None):  # stands in for rfsym.from_onnx: what summary passes
        seen["model"], seen["shape"] = model, input_shape
        return Sequential(Conv(3, in_channels=3, out_channels=4, name="conv"))

    monkeypatch.setattr(rfsym, "from_onnx", fake_from_onnx, raising=False)
    model = helper.make_model(g)
    assert isinstance(model, onnx.ModelProto)
    s = summary(model, (3, 8, 8))
    assert seen == {"model": model, "shape": (1, 3, 8, 8)} and s.out_size == 6 and s.params == 112
    with pytest.raises(SizeError, match=r"\(C, H, W\) or \(N, C, H, W\)"):
        summary(model, (8, 8))


def test_cli_summary_of_specs_and_zoo_entries(capsys):
    rc, out, _ = run(capsys, "summary", "conv3(c=8, p=1) x 2, maxpool2", "--input", "3x32x32")
    assert rc == 0 and out.splitlines()[0].startswith("conv3(c=8, p=1) x 2, maxpool2: input 3×32×32, 3 layers")
    assert out.splitlines()[-1].split()[:4] == ["total", "8×16×16", "6", "2"]
    rc, out, _ = run(capsys, "summary", "resnet18", "--depth", "1", "--columns", "layer,rf", "--format", "markdown")
    assert rc == 0 and "| layer4 | 435 |" in out and "| features | 435 |" in out
    rc, out, _ = run(capsys, "summary", "resnet18", "--format", "html")
    assert rc == 0 and out.count("<table>") == 1
    rc, _, err = run(capsys, "summary", "resnet18", "--columns", "layer,colour")
    assert rc == 2 and "summary columns are" in err


def test_summary_of_torchvision_convnext():
    pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.convnext_tiny()
    s = summary(model, (3, 224, 224), depth=2)
    assert s.params == sum(p.numel() for p in model.parameters())  # torch's own count: 28,589,128
    # torchvision's model table lists convnext_tiny at 4.46 "GFLOPS" (its MACs convention)
    assert round(float(s.macs) / 1e9, 2) == 4.46
    lines = str(s).splitlines()
    assert max(len(line) for line in lines) <= 100
    assert lines[-1].startswith("features: ") and s.features is not None and s.features.rf < s.rf
