"""genfast.ops.stem_conv2d: the reference vs a loop-by-loop convolution and torch's conv2d + activation,
native vs the float64 reference (forward, both gradients, the linearised forward, the gradient
penalty's double backward), gradcheck to second order, opcheck, torch.compile, bad input;
nn.StemConv2d as a drop-in nn.Conv2d (+ activation)."""

import pytest
import torch
import torch.nn.functional as F

import genfast
from genfast import nn, ops
from genfast.reference import stem_conv2d as ref
from helpers import assert_compiles_like_eager, needs_cuda, needs_native_op

needs_native = needs_native_op("stem_conv2d")

# (x shape, (O, KH, KW), stride, padding): the discriminator stems (28 x 28 grey, 64 x 64 RGB at a
# small size), odd sizes, stride and padding per axis, K and O not multiples of the 5 x 16 tile,
# an output of one pixel, a 1 x 1 kernel, more channels than a stem has, a stride above the kernel
CONFIGS = [
    ((4, 1, 28, 28), (64, 4, 4), (2, 2), (1, 1)),
    ((3, 3, 16, 16), (32, 4, 4), (2, 2), (1, 1)),
    ((2, 2, 7, 9), (7, 3, 2), (1, 2), (0, 1)),
    ((5, 1, 5, 5), (3, 5, 5), (1, 1), (0, 0)),
    ((2, 3, 6, 5), (11, 1, 1), (2, 1), (0, 0)),
    ((1, 6, 9, 9), (17, 3, 3), (3, 3), (2, 1)),
    ((2, 1, 11, 10), (5, 2, 2), (3, 4), (1, 2)),
]
ACTS = [("none", 0.01), ("relu", 0.0), ("leaky_relu", 0.2)]


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def make(shape, kernel, seed=0, dtype=torch.float32):
    o, kh, kw = kernel
    return (randn(*shape, seed=seed, dtype=dtype), randn(o, shape[1], kh, kw, seed=seed + 1, dtype=dtype),
            randn(o, seed=seed + 2, dtype=dtype))


def by_hand(x, w, b, stride, padding):
    """The convolution written out tap by tap."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = F.pad(x, (pw, pw, ph, ph))
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = b.reshape(1, o, 1, 1).expand(n, o, ho, wo).clone()
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]      # (N, C, Ho, Wo)
            y += torch.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return y


def torch_act(z, activation, slope):
    return {"none": z, "relu": F.relu(z), "leaky_relu": F.leaky_relu(z, slope)}[activation]


def native(x, w, b, stride, padding, activation="none", slope=0.01, slopes_of=None):
    return torch.ops.genfast.stem_conv2d(x, w, b, slopes_of, list(stride), list(padding), activation, slope)


@pytest.mark.parametrize("shape,kernel,stride,padding", CONFIGS)
@pytest.mark.parametrize("activation,slope", ACTS)
def test_reference_is_the_convolution(shape, kernel, stride, padding, activation, slope):
    x, w, b = make(shape, kernel, seed=1, dtype=torch.float64)
    z = by_hand(x, w, b, stride, padding)
    torch.testing.assert_close(F.conv2d(x, w, b, stride, padding), z)
    y = ref.stem_conv2d(x, w, b, stride, padding, activation, slope)
    torch.testing.assert_close(y, torch_act(z, activation, slope))
    # the gradients are autograd's through conv2d and the activation
    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
    dy = randn(*y.shape, seed=4, dtype=torch.float64)
    want = torch.autograd.grad(torch_act(F.conv2d(xr, wr, br, stride, padding), activation, slope), (xr, wr, br), dy)
    out = y if activation != "none" else None
    torch.testing.assert_close(ref.stem_conv2d_backward_input(dy, out, w, shape[2:], stride, padding, activation,
                                                              slope), want[0])
    gw, gb = ref.stem_conv2d_backward_weight(dy, out, x, kernel[1:], stride, padding, activation, slope)
    torch.testing.assert_close(gw, want[1])
    torch.testing.assert_close(gb, want[2])


@needs_native
@pytest.mark.parametrize("shape,kernel,stride,padding", CONFIGS)
@pytest.mark.parametrize("activation,slope", ACTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_native_matches_reference(shape, kernel, stride, padding, activation, slope, dtype):
    x, w, b = make(shape, kernel, seed=5, dtype=dtype)
    x64, w64, b64 = x.double(), w.double(), b.double()
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    y = ops.stem_conv2d(x, w, b, stride, padding, activation=activation, negative_slope=slope, impl="native")
    assert y.dtype == dtype
    want = ref.stem_conv2d(x64, w64, b64, stride, padding, activation, slope)
    torch.testing.assert_close(y.double(), want, **tol)
    torch.testing.assert_close(native(x, w, None, stride, padding, activation, slope).double(),
                               ref.stem_conv2d(x64, w64, None, stride, padding, activation, slope), **tol)
    # the layer linearised at another output: the sum times the activation's slopes there
    at = randn(*y.shape, seed=7, dtype=dtype)
    torch.testing.assert_close(native(x, w, b, stride, padding, activation, slope, slopes_of=at).double(),
                               ref.stem_conv2d(x64, w64, b64, stride, padding, activation, slope, at.double()), **tol)
    dy = randn(*y.shape, seed=6, dtype=dtype)
    out = y if activation != "none" else None
    out64 = want if activation != "none" else None
    gx = torch.ops.genfast.stem_conv2d_backward_input(dy, out, w, list(shape[2:]), list(stride), list(padding),
                                                      activation, slope)
    torch.testing.assert_close(gx.double(), ref.stem_conv2d_backward_input(dy.double(), out64, w64, shape[2:], stride,
                                                                           padding, activation, slope), **tol)
    gw, gb = torch.ops.genfast.stem_conv2d_backward_weight(dy, out, x, list(kernel[1:]), list(stride), list(padding),
                                                           activation, slope)
    want_w, want_b = ref.stem_conv2d_backward_weight(dy.double(), out64, x64, kernel[1:], stride, padding, activation,
                                                     slope)
    torch.testing.assert_close(gw.double(), want_w, **tol)
    torch.testing.assert_close(gb.double(), want_b, **tol)


@needs_native
def test_non_contiguous_inputs_and_thread_counts_agree():
    x, w, b = make((6, 3, 20, 20), (16, 4, 4), seed=7)
    xs = x.to(memory_format=torch.channels_last)
    wt = w.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)      # same values, other strides
    want = ops.stem_conv2d(x, w, b, 2, 1, activation="leaky_relu", negative_slope=0.2, impl="native")
    torch.testing.assert_close(ops.stem_conv2d(xs, wt, b, 2, 1, activation="leaky_relu", negative_slope=0.2,
                                               impl="native"), want, rtol=0, atol=0)
    dy = randn(*want.shape, seed=8)
    threads = torch.get_num_threads()
    try:
        outs = []
        for t in (1, 2):
            torch.set_num_threads(t)
            args = ([2, 2], [1, 1], "leaky_relu", 0.2)
            outs.append((*torch.ops.genfast.stem_conv2d_backward_weight(dy, want, x, [4, 4], *args),
                         torch.ops.genfast.stem_conv2d_backward_input(dy, want, w, [20, 20], *args)))
    finally:
        torch.set_num_threads(threads)
    for a, c in zip(*outs):
        assert torch.equal(a, c)     # a fixed summation order, whatever the thread count


@needs_native
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_half_inputs_compute_in_float32(dtype, tol):
    x, w, b = (t.to(dtype) for t in make((4, 3, 12, 12), (8, 4, 4), seed=9))
    y = ops.stem_conv2d(x, w, b, 2, 1, activation="leaky_relu", negative_slope=0.2, impl="native")
    assert y.dtype == dtype
    want = ref.stem_conv2d(x.double(), w.double(), b.double(), (2, 2), (1, 1), "leaky_relu", 0.2)
    torch.testing.assert_close(y.double(), want, rtol=tol, atol=tol * want.abs().max().item())


@needs_native
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("activation", ["none", "leaky_relu"])
def test_gradcheck_and_gradgradcheck(seed, activation):
    for shape, kernel, stride, padding in [((2, 1, 6, 6), (3, 4, 4), (2, 2), (1, 1)),
                                           ((2, 2, 5, 4), (3, 3, 2), (1, 2), (1, 0))]:
        x, w, b = (t.requires_grad_() for t in make(shape, kernel, seed=10 + seed, dtype=torch.float64))

        def fn(x, w, b):
            return ops.stem_conv2d(x, w, b, stride, padding, activation=activation, negative_slope=0.2, impl="native")

        assert torch.autograd.gradcheck(fn, (x, w, b))
        assert torch.autograd.gradgradcheck(fn, (x, w, b))


@needs_native
@pytest.mark.parametrize("activation", ["none", "leaky_relu"])
def test_gradient_penalty_through_the_layer_matches_reference(activation):
    # WGAN-GP's path: the input gradient with create_graph, then the gradient of its norm to the weights
    x, w, b = make((8, 1, 10, 10), (6, 4, 4), seed=13, dtype=torch.float64)
    head = randn(6 * 25, seed=14, dtype=torch.float64)

    def penalty_grads(impl):
        xx, ww, bb = x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()
        h = ops.stem_conv2d(xx, ww, bb, 2, 1, activation=activation, negative_slope=0.2, impl=impl)
        score = (h.flatten(1) @ head).sum()
        (g,) = torch.autograd.grad(score, xx, create_graph=True)
        p = (g.flatten(1).norm(dim=1) - 1).square().mean() + score
        return (p.detach(), *torch.autograd.grad(p, (ww, bb, xx)))

    for got, want in zip(penalty_grads("native"), penalty_grads("reference")):
        torch.testing.assert_close(got, want)


@needs_native
def test_opcheck():
    for dtype in (torch.float32, torch.float64):
        x, w, b = make((3, 2, 9, 8), (5, 3, 3), seed=15, dtype=dtype)
        geo = ([2, 1], [1, 0])
        for act in (("none", 0.01), ("leaky_relu", 0.2)):
            torch.library.opcheck(torch.ops.genfast.stem_conv2d,
                                  (x.requires_grad_(), w.requires_grad_(), b, None, *geo, *act))
            y = torch.ops.genfast.stem_conv2d(x, w, None, None, *geo, *act).detach()
            torch.library.opcheck(torch.ops.genfast.stem_conv2d, (x, w, b.requires_grad_(), y, *geo, *act))
            out = y if act[0] != "none" else None
            dy = randn(*y.shape, seed=16, dtype=dtype).requires_grad_()
            torch.library.opcheck(torch.ops.genfast.stem_conv2d_backward_input, (dy, out, w, [9, 8], *geo, *act))
            torch.library.opcheck(torch.ops.genfast.stem_conv2d_backward_weight, (dy, out, x, [3, 3], *geo, *act))


@needs_native
def test_torch_compile_fullgraph():
    w = randn(4, 1, 4, 4, seed=17)

    def fn(t):
        return ops.stem_conv2d(t, w, None, 2, 1, activation="leaky_relu", negative_slope=0.2).square().sum()

    assert_compiles_like_eager(fn, randn(2, 1, 8, 8, seed=18))


@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_bad_inputs_name_the_argument(impl):
    x, w = torch.randn(2, 1, 8, 8), torch.randn(4, 1, 3, 3)
    with pytest.raises(ValueError, match="x of shape"):
        ops.stem_conv2d(torch.randn(1, 8, 8), w, impl=impl)
    with pytest.raises(TypeError, match="x to be a floating"):
        ops.stem_conv2d(x.long(), w, impl=impl)
    with pytest.raises(ValueError, match=r"weight of shape \(O, 1, KH, KW\)"):
        ops.stem_conv2d(x, torch.randn(4, 2, 3, 3), impl=impl)
    with pytest.raises(ValueError, match="weight.*float64"):
        ops.stem_conv2d(x, w.double(), impl=impl)
    with pytest.raises(ValueError, match="bias"):
        ops.stem_conv2d(x, w, torch.randn(3), impl=impl)
    with pytest.raises(ValueError, match="stride"):
        ops.stem_conv2d(x, w, stride=0, impl=impl)
    with pytest.raises(ValueError, match="padding"):
        ops.stem_conv2d(x, w, padding=(1, 2, 3), impl=impl)
    with pytest.raises(ValueError, match="padded H"):
        ops.stem_conv2d(torch.randn(2, 1, 2, 8), w, impl=impl)
    with pytest.raises(ValueError, match="activation.*leaky_relu"):
        ops.stem_conv2d(x, w, activation="gelu", impl=impl)
    with pytest.raises(ValueError, match="negative_slope"):
        ops.stem_conv2d(x, w, activation="leaky_relu", negative_slope=-0.1, impl=impl)


@needs_native
def test_native_op_checks_name_the_argument():
    w = torch.randn(4, 1, 3, 3)
    act = ("none", 0.01)
    with pytest.raises(RuntimeError, match="weight of shape"):
        torch.ops.genfast.stem_conv2d(torch.randn(2, 2, 8, 8), w, None, None, [1, 1], [0, 0], *act)
    with pytest.raises(RuntimeError, match="grad_out of shape"):
        torch.ops.genfast.stem_conv2d_backward_input(torch.randn(2, 4, 5, 5), None, w, [8, 8], [1, 1], [0, 0], *act)
    with pytest.raises(RuntimeError, match="stride"):
        torch.ops.genfast.stem_conv2d_backward_weight(torch.randn(2, 4, 6, 6), None, torch.randn(2, 1, 8, 8), [3, 3],
                                                      [0, 1], [0, 0], *act)
    with pytest.raises(RuntimeError, match="expected out"):
        torch.ops.genfast.stem_conv2d_backward_input(torch.randn(2, 4, 6, 6), None, w, [8, 8], [1, 1], [0, 0],
                                                     "leaky_relu", 0.2)
    with pytest.raises(RuntimeError, match="slopes_of of shape"):
        torch.ops.genfast.stem_conv2d(torch.randn(2, 1, 8, 8), w, None, torch.randn(2, 4, 5, 5), [1, 1], [0, 0],
                                      "leaky_relu", 0.2)
    with pytest.raises(RuntimeError, match="activation"):
        torch.ops.genfast.stem_conv2d(torch.randn(2, 1, 8, 8), w, None, None, [1, 1], [0, 0], "tanh", 0.2)


@needs_native
def test_empty_batch():
    y = ops.stem_conv2d(torch.randn(0, 1, 8, 8), torch.randn(4, 1, 3, 3), None, 1, 1, impl="native")
    assert y.shape == (0, 4, 8, 8)
    gw, gb = torch.ops.genfast.stem_conv2d_backward_weight(torch.randn(0, 4, 8, 8), None, torch.randn(0, 1, 8, 8),
                                                           [3, 3], [1, 1], [1, 1], "none", 0.01)
    assert torch.equal(gw, torch.zeros(4, 1, 3, 3)) and torch.equal(gb, torch.zeros(4))


def test_module_is_a_drop_in_conv2d():
    torch.manual_seed(0)
    plain = torch.nn.Conv2d(3, 8, 4, 2, 1)
    stem = nn.StemConv2d(3, 8, 4, 2, 1, activation="leaky_relu", negative_slope=0.2)
    stem.load_state_dict(plain.state_dict())
    assert isinstance(stem, torch.nn.Conv2d) and stem.state_dict().keys() == plain.state_dict().keys()
    x = randn(2, 3, 16, 16, seed=19)
    torch.testing.assert_close(stem(x), F.leaky_relu(plain(x), 0.2))
    assert "activation='leaky_relu'" in repr(stem)
    # what the op does not cover runs torch's own convolution
    dilated = nn.StemConv2d(3, 8, 3, dilation=2, activation="relu")
    assert not dilated._native
    torch.testing.assert_close(dilated(x), F.relu(F.conv2d(x, dilated.weight, dilated.bias, dilation=2)))
    with pytest.raises(ValueError, match="activation"):
        nn.StemConv2d(3, 8, 3, activation="elu")


@needs_cuda
def test_cuda_matches_reference():
    assert genfast.native_available("stem_conv2d", "cuda"), genfast.build_info()
    for shape, kernel, stride, padding in CONFIGS:
        x, w, b = make(shape, kernel, seed=20)
        xg, wg = x.cuda().requires_grad_(), w.cuda().requires_grad_()
        y = ops.stem_conv2d(xg, wg, b.cuda(), stride, padding, activation="leaky_relu", negative_slope=0.2,
                            impl="native")
        xr, wr = x.double().requires_grad_(), w.double().requires_grad_()
        yr = ref.stem_conv2d(xr, wr, b.double(), stride, padding, "leaky_relu", 0.2)
        torch.testing.assert_close(y.cpu().double(), yr, rtol=1e-4, atol=1e-4)
        for out, xin, win in ((y, xg, wg), (yr, xr, wr)):
            (g,) = torch.autograd.grad(out.square().sum(), xin, create_graph=True)
            g.square().sum().backward()
        torch.testing.assert_close(wg.grad.cpu().double(), wr.grad, rtol=1e-3, atol=1e-3 * wr.grad.abs().max().item())


@needs_native
def test_a_penalty_first_pass_skips_the_weight_gradient():
    # autograd.grad(score, x) wants only x's gradient: the C++ node asks the running pass and does
    # not call backward_weight (a Python node would, for the weights require grad)
    x = randn(4, 1, 8, 8, seed=21).requires_grad_()
    w, b = randn(6, 1, 4, 4, seed=22).requires_grad_(), randn(6, seed=23).requires_grad_()
    score = ops.stem_conv2d(x, w, b, 2, 1, activation="leaky_relu", negative_slope=0.2, impl="native").sum()
    with torch.profiler.profile() as prof:
        (g,) = torch.autograd.grad(score, x, create_graph=True)
    names = [e.name for e in prof.events()]
    assert "genfast::stem_conv2d_backward_input" in names
    assert "genfast::stem_conv2d_backward_weight" not in names
    g.square().sum().backward()          # the penalty's backward does reach the weights
    assert w.grad is not None and b.grad is None   # (b enters the input gradient only through the slopes)


@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_autocast_casts_like_conv2d(impl):
    # a bfloat16 image (a generator's output under autocast) into a float32 layer: as conv2d does,
    # everything runs in the autocast dtype, and gradients reach the float32 weights
    x = randn(4, 1, 8, 8, seed=24).bfloat16()
    w, b = randn(6, 1, 4, 4, seed=25).requires_grad_(), randn(6, seed=26).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = ops.stem_conv2d(x, w, b, 2, 1, activation="leaky_relu", negative_slope=0.2, impl=impl)
        want = F.leaky_relu(F.conv2d(x, w, b, 2, 1), 0.2)
    assert y.dtype == want.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), want.float(), rtol=1.6e-2, atol=1.6e-2 * want.abs().max().item())
    y.float().sum().backward()
    assert w.grad.dtype == torch.float32 and torch.isfinite(w.grad).all()


# ---- stem_conv_transpose2d: conv_transpose2d for few output channels (the stem's adjoint) --------

# (x shape, (C_out, KH, KW), stride, padding): a 28 x 28 generator's last layer as HeadConv2d runs
# it (64 -> 1, 3 x 3, stride 1), a 64 x 64 one's (ConvTranspose2d(64, 3, 4, 2, 1) at a small size),
# odd sizes, stride and padding per axis, a 1 x 1 kernel, a stride above the kernel
TRANSPOSE_CONFIGS = [
    ((3, 64, 28, 28), (1, 3, 3), (1, 1), (1, 1)),
    ((2, 16, 8, 8), (3, 4, 4), (2, 2), (1, 1)),
    ((2, 7, 5, 6), (2, 3, 2), (1, 2), (0, 1)),
    ((2, 5, 4, 3), (4, 1, 1), (2, 1), (0, 0)),
    ((1, 6, 3, 4), (2, 2, 2), (3, 3), (0, 0)),
]


def make_t(shape, kernel, seed=0, dtype=torch.float32):
    c_out, kh, kw = kernel
    return (randn(*shape, seed=seed, dtype=dtype), randn(shape[1], c_out, kh, kw, seed=seed + 1, dtype=dtype),
            randn(c_out, seed=seed + 2, dtype=dtype))


@pytest.mark.parametrize("shape,kernel,stride,padding", TRANSPOSE_CONFIGS)
@pytest.mark.parametrize("impl", ["reference", pytest.param("native", marks=needs_native)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_transpose_is_conv_transpose2d(shape, kernel, stride, padding, impl, dtype):
    """Forward and the three gradients against torch's conv_transpose2d."""
    x, w, b = (t.requires_grad_() for t in make_t(shape, kernel, seed=30, dtype=dtype))
    y = ops.stem_conv_transpose2d(x, w, b, stride, padding, impl=impl)
    xr, wr, br = (t.detach().double().requires_grad_() for t in (x, w, b))
    yr = F.conv_transpose2d(xr, wr, br, stride, padding)
    assert y.shape == yr.shape and y.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y.double(), yr, **tol)
    dy = randn(*yr.shape, seed=31, dtype=torch.float64)
    got = torch.autograd.grad(y, (x, w, b), dy.to(dtype))
    want = torch.autograd.grad(yr, (xr, wr, br), dy)
    for g, r in zip(got, want):
        torch.testing.assert_close(g.double(), r, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10 * r.abs().max().item())


@needs_native
@pytest.mark.parametrize("seed", [0, 1])
def test_transpose_gradcheck_and_gradgradcheck(seed):
    x, w, b = (t.requires_grad_() for t in make_t((2, 5, 4, 3), (2, 3, 3), seed=32 + seed, dtype=torch.float64))

    def fn(x, w, b):
        return ops.stem_conv_transpose2d(x, w, b, (2, 1), (1, 0), impl="native")

    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))


@needs_native
def test_transpose_torch_compile_fullgraph():
    w = randn(8, 1, 3, 3, seed=34)

    def fn(t):
        return torch.tanh(ops.stem_conv_transpose2d(t, w, None, 1, 1)).square().sum()

    assert_compiles_like_eager(fn, randn(2, 8, 6, 6, seed=35))


@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_transpose_bad_inputs_name_the_argument(impl):
    x, w = torch.randn(2, 8, 6, 6), torch.randn(8, 1, 3, 3)
    with pytest.raises(ValueError, match="x of shape"):
        ops.stem_conv_transpose2d(torch.randn(8, 6, 6), w, impl=impl)
    with pytest.raises(ValueError, match=r"weight of shape \(8, C_out, KH, KW\)"):
        ops.stem_conv_transpose2d(x, torch.randn(4, 1, 3, 3), impl=impl)
    with pytest.raises(ValueError, match="weight.*float64"):
        ops.stem_conv_transpose2d(x, w.double(), impl=impl)
    with pytest.raises(ValueError, match=r"bias to be shape \(1,\)"):
        ops.stem_conv_transpose2d(x, w, torch.randn(8), impl=impl)
    with pytest.raises(ValueError, match="stride"):
        ops.stem_conv_transpose2d(x, w, stride=0, impl=impl)
    with pytest.raises(ValueError, match="padding.*at least 1 x 1"):
        ops.stem_conv_transpose2d(torch.randn(2, 8, 1, 1), w, padding=2, impl=impl)


def test_transpose_modules_are_drop_ins():
    torch.manual_seed(1)
    x = randn(2, 16, 9, 9, seed=36)
    # HeadConv2d: Conv2d(16 -> 2, 3 x 3, padding 1) through the transposed op (stride 1)
    plain, head = torch.nn.Conv2d(16, 2, 3, 1, 1), nn.HeadConv2d(16, 2, 3, 1, 1)
    head.load_state_dict(plain.state_dict())
    assert isinstance(head, torch.nn.Conv2d) and head._native
    torch.testing.assert_close(head(x), plain(x))
    for k, p in ((5, 2), (3, 0), (2, 1)):   # padding up to KH - 1 runs the op
        plain, head = torch.nn.Conv2d(16, 1, k, 1, p), nn.HeadConv2d(16, 1, k, 1, p)
        head.load_state_dict(plain.state_dict())
        torch.testing.assert_close(head(x), plain(x))
    strided = nn.HeadConv2d(16, 2, 3, 2, 1)   # not covered: torch's own convolution
    assert not strided._native
    torch.testing.assert_close(strided(x), F.conv2d(x, strided.weight, strided.bias, 2, 1))
    # StemConvTranspose2d: ConvTranspose2d(16 -> 3, 4, 2, 1)
    plain_t, stem_t = torch.nn.ConvTranspose2d(16, 3, 4, 2, 1), nn.StemConvTranspose2d(16, 3, 4, 2, 1)
    stem_t.load_state_dict(plain_t.state_dict())
    assert isinstance(stem_t, torch.nn.ConvTranspose2d) and stem_t._native
    torch.testing.assert_close(stem_t(x), plain_t(x))
    padded = nn.StemConvTranspose2d(16, 3, 4, 2, 1, output_padding=1)
    assert not padded._native
    torch.testing.assert_close(padded(x), F.conv_transpose2d(x, padded.weight, padded.bias, 2, 1, 1))
    torch.testing.assert_close(stem_t(x, output_size=(18, 18)), plain_t(x, output_size=(18, 18)))


@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_transpose_autocast_casts_like_conv_transpose2d(impl):
    # as test_autocast_casts_like_conv2d: everything in the autocast dtype, bfloat16's precision
    # (2^-7, rounded on each side) relative to the output's scale, gradients reach float32 weights
    x, w, b = make_t((2, 8, 5, 5), (1, 3, 3), seed=37)
    w.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = ops.stem_conv_transpose2d(x, w, b, 1, 1, impl=impl)
        want = F.conv_transpose2d(x, w, b, 1, 1)
    assert y.dtype == want.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), want.float(), rtol=1.6e-2, atol=1.6e-2 * want.abs().max().item())
    y.float().sum().backward()
    assert w.grad.dtype == torch.float32 and torch.isfinite(w.grad).all()
