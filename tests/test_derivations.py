"""Every worked example in derivations/ runs and its claims hold (the notes' numbers and more)."""

import importlib.util
import sys
from pathlib import Path

import pytest
import sympy as sp

pytest.importorskip("matplotlib")

DIR = Path(__file__).resolve().parent.parent / "derivations"
MODULES = sorted(p.stem for p in DIR.glob("[0-9][0-9]_*.py"))


def _load(stem):
    if str(DIR) not in sys.path:
        sys.path.insert(0, str(DIR))
    spec = importlib.util.spec_from_file_location(f"derivation_{stem}", DIR / f"{stem}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


n, b, C = sp.symbols("n b C", integer=True, positive=True)

# Claims checked here, independently of the expectations inside each script.
EXPECTED = {
    "01_stacked_3x3": {"rf": [3, 5, 7, 9], "steps": ["R₁ = 1 + (3 − 1) = 3", "R₂ = 3 + (3 − 1) = 5",
                                                     "R₃ = 5 + (3 − 1) = 7", "R₄ = 7 + (3 − 1) = 9"]},
    "02_general_formula": {"formula_minus_engine_L3": 0, "formula_minus_engine_L4": 0, "stride1": 0,
                           "pooled_rf": 18},
    "03_kernel_tradeoff": {"rf_difference": 0, "rf_equal": True, "params_ratio": sp.Rational(27, 49),
                           "params": (49 * C**2, 27 * C**2)},
    "04_worked_5x5": {"conv1_span": ((1, 3), (1, 3)), "union": ((0, 4), (0, 4)), "rf": 5, "mask_all": True,
                      "rf3": 7},
    "05_stride_pooling": {"n100_stride1": 50, "crossover": 5, "jump": [1, 2, 2, 4, 4]},
    "06_wavenet": {"rf_stack": 1024, "rf_stacks": 1023 * b + 1, "zoo_rf": 1024},
    "07_residual": {"rf": 11, "resnet18_rf": 435},
    "08_efficientnet": {"macs_degrees": (1, 2, 2), "macs_ratio_phi1_near_2": True},
    "09_unet": {"out_size": 388, "pool_inputs": [568, 280, 136, 64]},
    # Luo et al. 2016: variance n(k^2-1)/12 per axis, ratio ~ 1/sqrt(n), skip connections shrink the ERF
    # Ronneberger et al. 2015, Fig. 1: 572 -> 388; valid tiles 16m + 188 (four 2x2 pools on n - 4, ...)
    "11_unet_tiling": {"min_input": 188, "modulus": 16, "valid_572": True, "out_572": 388,
                       "brute_force_agrees": True, "quantum": 16, "step": 384, "halo": (94, 94)},
    # torchvision resnet50: 427 (layer4), sum(p.numel()) = 25,557,032; zoo.resnet(blocks)'s 8b1 + 16b2 + 32b3 + 64b4 - 45
    "12_resnet50_symbolic": {"rf_resnet50": 427, "params_resnet50": 25557032, "rf_minus_family": 0,
                             "params_minus_family": 0, "k7_gain": 320},
    "10_effective_rf": {"var_4k": (sp.Symbol("k", integer=True, positive=True) ** 2 - 1) / 3, "var_n3x3": 2 * n / 3,
                        "subsampling_enlarges": True, "dilation_enlarges": True, "skip_shrinks": True,
                        "same_rf": (33, 33), "plain_var": sp.Rational(20, 3)},
}


def test_every_derivation_has_expectations():
    assert set(MODULES) == set(EXPECTED)


#: optional extras a page imports (skipped where they are absent)
NEEDS = {"12_resnet50_symbolic": ("torch", "torchvision")}


@pytest.mark.parametrize("stem", MODULES)
def test_derivation_runs_and_claims_hold(stem, tmp_path):
    for extra in NEEDS.get(stem, ()):
        pytest.importorskip(extra)
    claims = _load(stem).build(tmp_path)
    page = claims["_page"]
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# ") and "$$" in text
    for fig in (tmp_path / "figures").glob("*.png"):
        assert fig.read_bytes()[:4] == b"\x89PNG"
        assert f"figures/{fig.name}" in text
    committed = DIR / f"{stem}.md"
    assert committed.exists() and committed.read_text(encoding="utf-8") == text, \
        f"derivations/{stem}.md is stale: run python derivations/{stem}.py and commit the page"
    for key, value in EXPECTED[stem].items():
        got = claims[key]
        if isinstance(value, sp.Basic) and value.free_symbols:
            assert sp.simplify(sp.sympify(got).subs({s: sp.Symbol(s.name, integer=True, positive=True)
                                                     for s in sp.sympify(got).free_symbols}) - value) == 0, key
        else:
            assert got == value, key


def test_committed_pages_exist():
    for stem in MODULES:
        assert (DIR / f"{stem}.md").exists(), f"run python derivations/{stem}.py and commit the page"
