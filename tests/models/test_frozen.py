"""genfast.models.frozen.conv2d_act: the plain ops' values and input gradient bit for bit, with less kept."""

import pytest
import torch
import torch.nn.functional as F

from genfast import models
from genfast.models import frozen

CASES = [  # (in channels, out channels, kernel, stride, padding, groups, pad)
    (3, 8, 3, 2, 0, 1, (0, 1, 0, 1)),     # TensorFlow SAME, stride 2: the extra pixel at the end
    (8, 8, 5, 1, 2, 8, None),             # depthwise, padding inside the convolution
    (8, 16, 1, 1, 0, 1, None),            # 1 x 1 expansion
    (6, 6, 3, 2, 0, 6, (1, 1, 1, 1)),
]


def plain(x, w, b, stride, padding, groups, pad, activation):
    y = F.conv2d(F.pad(x, pad) if pad is not None else x, w, b, stride, padding, 1, groups)
    return {"relu6": F.relu6, "relu": F.relu, None: lambda t: t}[activation](y)


@pytest.mark.parametrize("activation", [None, "relu", "relu6"])
@pytest.mark.parametrize("cin,cout,k,stride,padding,groups,pad", CASES)
def test_bit_equal_to_the_plain_ops(cin, cout, k, stride, padding, groups, pad, activation):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(2, cin, 17, 20, generator=g) * 3).requires_grad_(True)
    w = torch.randn(cout, cin // groups, k, k, generator=g)
    b = torch.randn(cout, generator=g)
    y = frozen.conv2d_act(x, w, b, stride, padding, groups, pad=pad, activation=activation)
    assert y.grad_fn is not None and "FrozenConvAct" in type(y.grad_fn).__name__
    y_ref = plain(x, w, b, stride, padding, groups, pad, activation)
    assert torch.equal(y, y_ref)
    if activation:   # both gates occur, so the test sees the mask at work
        assert (y_ref == 0).any() and (y_ref > 0).any()
    up = torch.randn(y.shape, generator=g)
    (gx,) = torch.autograd.grad(y, x, up)
    (gx_ref,) = torch.autograd.grad(y_ref, x, up)
    assert torch.equal(gx, gx_ref)


def test_channels_last_input():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 8, 12, 12, generator=g).mul(3).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    w = torch.randn(16, 8, 3, 3, generator=g)
    y = frozen.conv2d_act(x, w, None, 2, 0, pad=(0, 1, 0, 1), activation="relu6")
    y_ref = plain(x, w, None, 2, 0, 1, (0, 1, 0, 1), "relu6")
    up = torch.randn(y.shape, generator=g)
    assert torch.equal(y, y_ref)
    assert torch.equal(torch.autograd.grad(y, x, up)[0], torch.autograd.grad(y_ref, x, up)[0])


def test_relu6_gate_at_6_matches():
    x = torch.tensor([[[[-1.0, 0.0, 3.0, 6.0, 7.0]]]], requires_grad=True)
    w = torch.ones(1, 1, 1, 1)
    y = frozen.conv2d_act(x, w, None, activation="relu6")
    (g,) = torch.autograd.grad(y.sum(), x)
    (g_ref,) = torch.autograd.grad(F.relu6(F.conv2d(x, w)).sum(), x)
    assert torch.equal(g, g_ref)
    assert g.flatten().tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]


def test_gradcheck_and_double_backward_float64():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 7, 6, generator=g, dtype=torch.float64).mul(3).requires_grad_(True)
    w = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    for activation in (None, "relu6"):
        f = lambda t: frozen.conv2d_act(t, w, b, 2, 0, 1, pad=(0, 1, 1, 1), activation=activation)
        assert torch.autograd.gradcheck(f, (x,))
        assert torch.autograd.gradgradcheck(f, (x,))


def test_keeps_the_weight_and_output_only():
    """What the memory saving rests on: nothing of the (padded) input is kept for backward."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 4, 32, 32, generator=g).requires_grad_(True)
    w = torch.randn(8, 4, 3, 3, generator=g)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(tuple(t.shape)) or t, lambda t: t):
        y = frozen.conv2d_act(x.mul(1.0), w, None, 2, 0, pad=(0, 1, 0, 1), activation="relu6")
    assert sorted(kept) == sorted([tuple(w.shape), tuple(y.shape)])


def test_falls_back_when_a_gradient_for_the_weight_is_wanted():
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, requires_grad=True)
    y = frozen.conv2d_act(x, w, None, 1, 1, activation="relu6")
    assert "FrozenConvAct" not in type(y.grad_fn).__name__
    y.sum().backward()
    assert w.grad is not None
    with torch.no_grad():
        assert frozen.conv2d_act(x, w, None, 1, 1).grad_fn is None


def test_unknown_activation_is_refused_by_name():
    with pytest.raises(ValueError, match="activation: expected one of .* got 'gelu'"):
        frozen.conv2d_act(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 1, 1), activation="gelu")


def test_efficientnet_input_gradient_unchanged_by_the_lean_path():
    """The frozen network's input gradient with conv2d_act's lean path equals the plain ops' (taken
    by asking a gradient for the folded weights, which makes conv2d_act fall back)."""
    net = models.efficientnet_lite0(None)
    x = torch.rand(1, 3, 67, 64, generator=torch.Generator().manual_seed(3))
    layers = ["stem", "block1_dw", "block5", "block8_expand"]

    def grad():
        xi = x.clone().requires_grad_(True)
        feats = net(xi, layers)
        (g,) = torch.autograd.grad(sum(f.pow(2).mean() for f in feats.values()), xi)
        return g

    lean = grad()
    for w, b in net._folded.values():
        w.requires_grad_(True)
    try:
        plain_grad = grad()
    finally:
        for w, b in net._folded.values():
            w.requires_grad_(False)
    assert torch.equal(lean, plain_grad)


def test_folded_lite0_runs_channels_last_on_the_cpu_and_matches_nchw():
    """The folded weights are channels-last on the CPU (the faster layout there); the features equal
    those of the same network run NCHW to rounding."""
    net = models.efficientnet_lite0(None)
    w, _ = net._folded["stem"]
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    x = torch.rand(2, 3, 64, 72, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        cl = net(x, ["block5"])["block5"]
        net._folded = {k: (w.contiguous(), b) for k, (w, b) in net._folded.items()}
        nchw = net(x, ["block5"])["block5"]
    assert cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(cl, nchw, rtol=1e-4, atol=1e-5)
    net.float()     # _apply keeps the CPU layout
    assert not net._folded["stem"][0].is_contiguous()
