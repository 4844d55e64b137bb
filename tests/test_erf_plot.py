"""ERF figures: drawn from the derived values (heatmap with the field outlined, ratio vs depth)."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from rfsym import Conv, Sequential  # noqa: E402
from rfsym.effective_field import discrete_erf_map, erf  # noqa: E402
from rfsym.plot import erf_map, erf_ratio  # noqa: E402


def test_erf_map_draws_the_exact_response_and_the_theoretical_field(tmp_path):
    net = Sequential(*[Conv(3, padding=1)] * 5)
    fig = erf_map(net, input_size=16, path=tmp_path / "erf.png")
    assert (tmp_path / "erf.png").read_bytes()[:4] == b"\x89PNG"
    ax = fig.axes[0]
    origin, w = discrete_erf_map(net, input_size=16)
    np.testing.assert_allclose(ax.images[0].get_array(), w)
    rect, ellipse = ax.patches[0], ax.patches[1]
    assert (rect.get_width(), rect.get_height()) == (11, 11)  # R = 11
    assert ellipse.get_width() == pytest.approx(4 * float(erf(net).std))


def test_erf_ratio_follows_one_over_sqrt_depth(tmp_path):
    fig = erf_ratio({"3x3": Conv(3, padding=1)}, depths=[4, 16, 64], path=tmp_path / "r.svg")
    ys = fig.axes[0].lines[0].get_ydata()
    assert ys[1] / ys[0] == pytest.approx(0.5, rel=0.1) and ys[2] / ys[1] == pytest.approx(0.5, rel=0.05)
