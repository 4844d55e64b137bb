"""The effective receptive field against PyTorch's input gradient (Luo et al.'s measurement).

With every convolution weight uniform (1/taps) and no nonlinearity, the gradient of one output
with respect to the input *is* the impulse response, so it must equal rfsym's discrete ERF, and its
moments rfsym's closed forms. Skipped only where torch is absent.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rfsym  # noqa: E402
from rfsym.effective_field import discrete_erf, discrete_erf_map, erf  # noqa: E402


def _uniform(module):
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            with torch.no_grad():
                m.weight.fill_(1.0 / (m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]))
                if m.bias is not None:
                    m.bias.zero_()
    return module.double()


class _Res(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding=1), torch.nn.Conv2d(1, 1, 3, padding=1))

    def forward(self, x):
        return (self.body(x) + x) / 2  # equal-weight mixture, as rfsym's default branch weights


NETS = {
    "plain": lambda: torch.nn.Sequential(*[torch.nn.Conv2d(1, 1, 3, padding=1) for _ in range(5)]),
    "strided-dilated": lambda: torch.nn.Sequential(
        torch.nn.Conv2d(1, 1, 3, stride=2, padding=1), torch.nn.Conv2d(1, 1, 3, dilation=2, padding=2),
        torch.nn.AvgPool2d(2), torch.nn.Conv2d(1, 1, (5, 3), padding=(2, 1))),
    "residual": lambda: torch.nn.Sequential(_Res(), _Res(), torch.nn.Conv2d(1, 1, 3, padding=1)),
}


@pytest.mark.filterwarnings("ignore:from_torch treated these as elementwise")
@pytest.mark.parametrize("name", sorted(NETS))
def test_gradient_equals_discrete_erf_and_closed_form(name):
    module = _uniform(NETS[name]())
    n = 48
    x = torch.zeros(1, 1, n, n, dtype=torch.float64, requires_grad=True)
    out = module(x)
    oi, oj = out.shape[2] // 2, out.shape[3] // 2
    out[0, 0, oi, oj].backward()
    grad = x.grad[0, 0].numpy()

    net = rfsym.from_torch(module, (1, 1, n, n))
    r = rfsym.analyze(net, input_size=n)
    branch_weights = {layer.name: [1, 1] for layer in r.layers if layer.type == "Add"}
    (p0, w0), (p1, w1) = discrete_erf(net, input_size=n, branch_weights=branch_weights)
    jump0, jump1 = r.axes("jump")
    # rfsym's impulse response is for output 0: shift it to output (oi, oj). Per axis it is the
    # marginal of the 2-D response; for chains the 2-D response is their outer product.
    m0, m1 = np.zeros(n), np.zeros(n)
    m0[p0 + oi * int(jump0)] = w0
    m1[p1 + oj * int(jump1)] = w1
    assert grad.sum() == pytest.approx(1.0)  # the chosen output sees no padding
    np.testing.assert_allclose(grad.sum(axis=1), m0, atol=1e-12)
    np.testing.assert_allclose(grad.sum(axis=0), m1, atol=1e-12)
    # the joint 2-D response, graphs included
    (o0, o1), joint = discrete_erf_map(net, input_size=n, branch_weights=branch_weights)
    full = np.zeros_like(grad)
    full[o0 + oi * int(jump0): o0 + oi * int(jump0) + joint.shape[0],
         o1 + oj * int(jump1): o1 + oj * int(jump1) + joint.shape[1]] = joint
    np.testing.assert_allclose(grad, full, atol=1e-12)

    e = erf(net, input_size=n, branch_weights=branch_weights)
    rows, cols = np.indices(grad.shape)
    for axis, coords in ((0, rows), (1, cols)):
        mean = (coords * grad).sum()
        var = ((coords - mean) ** 2 * grad).sum()
        assert mean == pytest.approx(float(e.axes("mean")[axis]) + (oi, oj)[axis] * (jump0, jump1)[axis])
        assert var == pytest.approx(float(e.axes("variance")[axis]))
