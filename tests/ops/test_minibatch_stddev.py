"""genfast.ops.minibatch_stddev: native vs the float64 reference, the reference vs the formula step by
step, gradients to second order, opcheck, torch.compile, bad input; the two minibatch modules."""

import pytest
import torch

import genfast
from genfast import nn, ops
from genfast.reference import minibatch_stddev as ref
from helpers import assert_compiles_like_eager, needs_cuda, needs_native_op

NATIVE = genfast.native_available("minibatch_stddev", "cpu")
needs_native = needs_native_op("minibatch_stddev")

# (shape, group_size, num_channels): G < N, G = N (group_size > N too), G = 1, several F, odd sizes
CONFIGS = [
    ((8, 6, 3, 5), 4, 1),
    ((8, 6, 3, 5), 4, 2),
    ((4, 9, 1, 1), 4, 3),
    ((3, 4, 5, 5), 8, 1),    # G = min(8, 3) = 3 = N
    ((6, 3, 2, 7), 1, 3),    # G = 1: the deviation is sqrt(eps)
    ((12, 16, 4, 4), 3, 4),
    ((4, 22, 3, 3), 2, 2),   # 11 channels per group: channels_last runs are one vector + a tail
]


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def by_hand(x, group_size, num_channels, eps=1e-8):
    """The layer written out with loops over groups and channel groups."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    groups = n // g
    cg = c // num_channels
    out = torch.zeros(n, c + num_channels, h, w, dtype=x.dtype)
    out[:, :c] = x
    for m in range(groups):
        members = [i for i in range(n) if i % groups == m]
        assert len(members) == g
        for f in range(num_channels):
            slab = x[members, f * cg:(f + 1) * cg]                  # (G, c, H, W)
            mean = slab.sum(0) / g
            var = ((slab - mean) ** 2).sum(0) / g                     # biased
            std = torch.sqrt(var + eps)
            value = std.sum() / std.numel()
            for i in members:
                out[i, c + f] = value
    return out


@pytest.mark.parametrize("shape,group_size,num_channels", CONFIGS)
def test_reference_is_the_formula(shape, group_size, num_channels):
    x = randn(*shape, seed=1, dtype=torch.float64)
    torch.testing.assert_close(ref.minibatch_stddev(x, group_size, num_channels), by_hand(x, group_size, num_channels))


@needs_native
@pytest.mark.parametrize("shape,group_size,num_channels", CONFIGS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_native_matches_reference_forward_and_backward(shape, group_size, num_channels, layout):
    x = randn(*shape, seed=2) * 3 + 1
    if layout == "channels_last":
        xv = x.to(memory_format=torch.channels_last)
    elif layout == "strided":
        xv = torch.stack([x, x], dim=-1).flatten(-2)[..., ::2]   # a non-contiguous view of the same values
        torch.testing.assert_close(xv, x)
    else:
        xv = x
    want = ref.minibatch_stddev(x.double(), group_size, num_channels)
    got = ops.minibatch_stddev(xv, group_size=group_size, num_channels=num_channels, impl="native")
    assert got.dtype == torch.float32 and got.shape == want.shape
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    if layout == "channels_last" and shape[1] > 1 and shape[2] * shape[3] > 1:
        assert got.is_contiguous(memory_format=torch.channels_last)
    dy = randn(*want.shape, seed=3)
    xg = xv.detach().clone().requires_grad_()
    ops.minibatch_stddev(xg, group_size=group_size, num_channels=num_channels, impl="native").backward(dy)
    xr = x.double().requires_grad_()
    ref.minibatch_stddev(xr, group_size, num_channels).backward(dy.double())
    torch.testing.assert_close(xg.grad.double(), xr.grad, rtol=1e-4, atol=1e-5)


@needs_native
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_half_inputs_accumulate_in_float32(dtype, tol):
    x = (randn(8, 16, 4, 4, seed=4) * 4 + 100).to(dtype)   # a large mean: float32 accumulation matters
    want = ref.minibatch_stddev(x.double(), 4, 2)
    got = ops.minibatch_stddev(x, num_channels=2, impl="native")
    assert got.dtype == dtype
    torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)
    xg = x.clone().requires_grad_()
    dy = randn(8, 18, 4, 4, seed=5).to(dtype)
    ops.minibatch_stddev(xg, num_channels=2, impl="native").backward(dy)
    xr = x.double().requires_grad_()
    ref.minibatch_stddev(xr, 4, 2).backward(dy.double())
    torch.testing.assert_close(xg.grad.double(), xr.grad, rtol=tol, atol=tol)


@needs_native
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradcheck_and_gradgradcheck(seed):
    for shape, group_size, num_channels in [((8, 4, 3, 3), 4, 2), ((4, 3, 2, 2), 4, 1), ((3, 2, 2, 3), 1, 2)]:
        x = randn(*shape, seed=seed, dtype=torch.float64).requires_grad_()

        def fn(t):
            return ops.minibatch_stddev(t, group_size=group_size, num_channels=num_channels, impl="native")

        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


@needs_native
def test_r1_penalty_through_the_layer_matches_reference():
    # R1: || d D(x) / dx ||^2, differentiated again w.r.t. the discriminator's input path
    x = randn(8, 4, 3, 3, seed=6, dtype=torch.float64)
    w = randn(8, 5, 3, 3, seed=7, dtype=torch.float64)

    def r1_grad(impl):
        xx = x.clone().requires_grad_()
        score = (ops.minibatch_stddev(xx, impl=impl) * w).sum()
        (g,) = torch.autograd.grad(score, xx, create_graph=True)
        penalty = g.square().sum()
        penalty.backward()
        return penalty.detach(), xx.grad

    p_native, g_native = r1_grad("native")
    p_ref, g_ref = r1_grad("reference")
    torch.testing.assert_close(p_native, p_ref)
    torch.testing.assert_close(g_native, g_ref)


@needs_native
def test_opcheck():
    for x in (randn(8, 6, 3, 5, seed=8), randn(4, 4, 2, 2, seed=9, dtype=torch.float64),
              randn(8, 6, 3, 5, seed=10).to(memory_format=torch.channels_last)):
        for group_size, num_channels in ((4, 1), (2, 2)):
            torch.library.opcheck(torch.ops.genfast.minibatch_stddev,
                                  (x.clone().requires_grad_(), group_size, num_channels, 1e-8))
            dy = randn(x.shape[0], x.shape[1] + num_channels, *x.shape[2:], seed=11, dtype=x.dtype)
            torch.library.opcheck(torch.ops.genfast.minibatch_stddev_backward,
                                  (dy.requires_grad_(), x.clone().requires_grad_(), group_size, num_channels, 1e-8))


@needs_native
def test_torch_compile_fullgraph():
    x = randn(8, 6, 4, 4, seed=12)

    def fn(t):
        return ops.minibatch_stddev(t, num_channels=2).square().sum()

    assert_compiles_like_eager(fn, x)


@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_bad_inputs_name_the_argument(impl):
    with pytest.raises(ValueError, match="x of shape"):
        ops.minibatch_stddev(torch.randn(4, 3, 2), impl=impl)
    with pytest.raises(TypeError, match="x to be a floating"):
        ops.minibatch_stddev(torch.ones(4, 3, 2, 2, dtype=torch.int64), impl=impl)
    with pytest.raises(ValueError, match="batch size"):
        ops.minibatch_stddev(torch.randn(6, 3, 2, 2), group_size=4, impl=impl)
    with pytest.raises(ValueError, match="num_channels"):
        ops.minibatch_stddev(torch.randn(4, 3, 2, 2), num_channels=2, impl=impl)
    with pytest.raises(ValueError, match="group_size"):
        ops.minibatch_stddev(torch.randn(4, 3, 2, 2), group_size=0, impl=impl)
    with pytest.raises(ValueError, match="eps"):
        ops.minibatch_stddev(torch.randn(4, 3, 2, 2), eps=-1.0, impl=impl)


@needs_native
def test_native_op_checks_name_the_argument():
    with pytest.raises(RuntimeError, match="batch size"):
        torch.ops.genfast.minibatch_stddev(torch.randn(6, 3, 2, 2), 4, 1, 1e-8)
    with pytest.raises(RuntimeError, match="grad_out"):
        torch.ops.genfast.minibatch_stddev_backward(torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2), 4, 1, 1e-8)


@needs_native
def test_empty_batch():
    out = ops.minibatch_stddev(torch.randn(0, 4, 3, 3), impl="native")
    assert out.shape == (0, 5, 3, 3)


def test_module_and_minibatch_discrimination():
    x = randn(8, 6, 3, 3, seed=13)
    layer = nn.MinibatchStdDev(group_size=4, num_channels=2)
    torch.testing.assert_close(layer(x), ops.minibatch_stddev(x, num_channels=2))
    with pytest.raises(ValueError, match="group_size"):
        nn.MinibatchStdDev(group_size=0)

    torch.manual_seed(0)
    md = nn.MinibatchDiscrimination(5, 3, 4)
    v = randn(6, 5, seed=14)
    out = md(v)
    assert out.shape == (6, 8)
    torch.testing.assert_close(out[:, :5], v)
    # o_i,b = sum_{j != i} exp(-||M_i,b - M_j,b||_1), written out with loops
    m = (v @ md.T.reshape(5, -1)).reshape(6, 3, 4)
    want = torch.zeros(6, 3)
    for i in range(6):
        for j in range(6):
            if i != j:
                want[i] += torch.exp(-(m[i] - m[j]).abs().sum(dim=1))
    torch.testing.assert_close(out[:, 5:], want.detach())
    # gradients (to x and to T) equal those of the loop formula, and pass gradcheck in float64
    g = randn(6, 3, seed=16)
    v.requires_grad_(True)
    out = md(v)
    m = (v @ md.T.reshape(5, -1)).reshape(6, 3, 4)
    loop = sum(torch.exp(-(m[i] - m[j]).abs().sum(dim=1)) * g[i] for i in range(6) for j in range(6) if i != j)
    want_grads = torch.autograd.grad(loop.sum(), (v, md.T))
    got = torch.autograd.grad(out[:, 5:], (v, md.T), g)
    for a, b in zip(got, want_grads):
        torch.testing.assert_close(a, b)
    md64 = nn.MinibatchDiscrimination(5, 3, 4).double()
    assert torch.autograd.gradcheck(md64, (randn(6, 5, seed=17).double().requires_grad_(),))
    assert torch.autograd.gradgradcheck(md64, (randn(6, 5, seed=17).double().requires_grad_(),))  # penalties
    v = v.detach()
    # identical samples look maximally alike: every other sample contributes exp(0) = 1
    same = md(v[:1].repeat(6, 1))[:, 5:]
    torch.testing.assert_close(same, torch.full((6, 3), 5.0))
    with pytest.raises(ValueError, match="x of shape"):
        md(torch.randn(6, 4))


@needs_cuda
def test_cuda_matches_reference():
    assert genfast.native_available("minibatch_stddev", "cuda"), genfast.build_info()
    for shape, group_size, num_channels in CONFIGS:
        x = randn(*shape, seed=15)
        want = ref.minibatch_stddev(x.double(), group_size, num_channels)
        xg = x.cuda().requires_grad_()
        got = ops.minibatch_stddev(xg, group_size=group_size, num_channels=num_channels, impl="native")
        torch.testing.assert_close(got.double().cpu(), want, rtol=1e-5, atol=1e-6)
        dy = randn(*want.shape, seed=16)
        got.backward(dy.cuda())
        xr = x.double().requires_grad_()
        ref.minibatch_stddev(xr, group_size, num_channels).backward(dy.double())
        torch.testing.assert_close(xg.grad.double().cpu(), xr.grad, rtol=1e-4, atol=1e-5)
