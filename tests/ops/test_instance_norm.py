"""genfast.ops.instance_norm / conditional_instance_norm: native kernels against the float64
reference and torch.nn.functional.instance_norm, layouts, dtypes, gradients (first and second
order), opcheck, torch.compile, modules and state_dict compatibility, bad input."""

import pytest
import torch
import torch.nn.functional as F

import genfast
from genfast import nn, ops
from genfast.reference import instance_norm as ref
from helpers import needs_cuda, needs_native_op

NATIVE = genfast.native_available("instance_norm", "cpu")
needs_native = needs_native_op("instance_norm")

ACTS = ["none", "relu", "leaky_relu"]
# odd sizes: C not a multiple of the 8-wide vector (the channels_last kernel vectorises over C),
# H*W not a multiple of 8, H*W above the 4096-element summation chunk, H*W = 1, W = 1
SHAPES = [(2, 5, 7, 9), (1, 17, 13, 11), (3, 8, 33, 1), (1, 2, 70, 70), (2, 3, 1, 1), (1, 40, 6, 5)]


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def layouts(x):
    yield "contiguous", x
    yield "channels_last", x.contiguous(memory_format=torch.channels_last)
    wide = torch.zeros(*x.shape[:3], 2 * x.shape[3], dtype=x.dtype)
    wide[..., ::2] = x
    yield "strided", wide[..., ::2]


def assert_close(got, want, tol):
    scale = max(want.abs().max().item(), 1.0)
    torch.testing.assert_close(got.double(), want.double(), rtol=0, atol=tol * scale)


def torch_instance_norm(x, w, b, act, slope):
    """torch's own op + activation, in float64."""
    y = F.instance_norm(x.double(), weight=None if w is None else w.double(), bias=None if b is None else b.double(),
                        eps=1e-5)
    return ref.activate(y, act, slope)


# ---------------------------------------------------------------------------------------------
# forward values


@needs_native
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("affine", [True, False])
def test_forward_matches_reference_and_torch(shape, act, affine):
    x = randn(*shape, seed=1) * 3 + 2
    c = shape[1]
    w, b = (randn(c, seed=2), randn(c, seed=3)) if affine else (None, None)
    want = ref.instance_norm(x.double(), None if w is None else w.double(), None if b is None else b.double(),
                             1e-5, act, 0.2)
    if shape[2] * shape[3] > 1:  # torch refuses a single value per channel
        assert_close(want, torch_instance_norm(x, w, b, act, 0.2), 1e-12)
    for name, xv in layouts(x):
        got = ops.instance_norm(xv, w, b, activation=act, negative_slope=0.2, impl="native")
        assert got.shape == x.shape and got.dtype == x.dtype, name
        assert got.stride() == torch.empty_like(xv).stride(), name
        assert_close(got, want, 2e-6)
        got64 = ops.instance_norm(xv.double(), None if w is None else w.double(), None if b is None else b.double(),
                                  activation=act, negative_slope=0.2, impl="native")
        assert_close(got64, want, 1e-12)


@needs_native
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 4e-3), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_half_precision_computes_in_float(dtype, tol, layout):
    x = (randn(2, 12, 15, 17, seed=4) * 4 + 3).to(dtype)
    w, b = randn(12, seed=5), randn(12, seed=6)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    got = ops.instance_norm(x, w.to(dtype), b.to(dtype), activation="relu", impl="native")
    assert got.dtype == dtype
    want = ref.instance_norm(x.double(), w.to(dtype).double(), b.to(dtype).double(), 1e-5, "relu")
    assert_close(got, want, tol)
    xg = x.detach().requires_grad_()
    ops.instance_norm(xg, impl="native").backward(randn(*x.shape, seed=7).to(dtype))
    xr = x.double().requires_grad_()
    ref.instance_norm(xr).backward(randn(*x.shape, seed=7).to(dtype).double())
    assert xg.grad.dtype == dtype
    assert_close(xg.grad, xr.grad, 4 * tol)


@needs_native
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_statistics_are_stable_for_large_means(layout):
    # mean 1e4, std 1: E[x^2] - E[x]^2 in float32 would lose every digit of the variance
    x = randn(2, 9, 300, 301, seed=8) + 1e4
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    got = ops.instance_norm(x, impl="native")
    want = ref.instance_norm(x.double())
    assert_close(got, want, 5e-5)


@needs_native
@pytest.mark.parametrize("act", ACTS)
def test_single_pixel_planes_give_the_activated_bias(act):
    x = randn(3, 4, 1, 1, seed=9) * 5
    w, b = randn(4, seed=10), randn(4, seed=11)
    for _, xv in layouts(x):
        got = ops.instance_norm(xv, w, b, activation=act, negative_slope=0.3, impl="native")
        want = ref.activate(b.expand(3, 4), act, 0.3)[:, :, None, None]
        assert torch.equal(got, want.expand_as(got))


@needs_native
def test_empty_batch():
    x = torch.empty(0, 3, 4, 4, requires_grad=True)
    w = torch.ones(3, requires_grad=True)
    y = ops.instance_norm(x, w, None, activation="relu", impl="native")
    assert y.shape == (0, 3, 4, 4)
    y.sum().backward()
    assert x.grad.shape == x.shape and torch.equal(w.grad, torch.zeros(3))
    s = torch.empty(0, dtype=torch.long)
    assert ops.conditional_instance_norm(x, s, torch.ones(2, 3), torch.zeros(2, 3), impl="native").shape == x.shape


# ---------------------------------------------------------------------------------------------
# gradients


@needs_native
@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 17, 13, 11), (1, 2, 70, 70)])
@pytest.mark.parametrize("act", ACTS)
def test_backward_matches_reference(shape, act):
    x = randn(*shape, seed=12) * 2 + 1
    c = shape[1]
    w, b = randn(c, seed=13), randn(c, seed=14)
    dy = randn(*shape, seed=15)
    xr, wr, br = (t.double().requires_grad_() for t in (x, w, b))
    ref.instance_norm(xr, wr, br, 1e-5, act, 0.1).backward(dy.double())
    for name, xv in layouts(x):
        xn = xv.detach().requires_grad_()
        wn, bn = w.clone().requires_grad_(), b.clone().requires_grad_()
        ops.instance_norm(xn, wn, bn, activation=act, negative_slope=0.1, impl="native").backward(dy)
        assert xn.grad.stride() == torch.empty_like(xv).stride(), name
        assert_close(xn.grad, xr.grad, 1e-5)
        assert_close(wn.grad, wr.grad, 1e-5)
        assert_close(bn.grad, br.grad, 1e-5)


@needs_native
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("affine", [True, False, "weight only", "bias only"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradcheck_and_gradgradcheck(act, affine, layout):
    # (weight only / bias only: the C++ autograd counts only the tensors given; see instance_norm_autograd.cpp)
    x = randn(2, 3, 2, 3, seed=16, dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w, b = randn(3, seed=17, dtype=torch.float64).requires_grad_(), randn(3, seed=18, dtype=torch.float64).requires_grad_()
    params = {True: [w, b], False: [], "weight only": [w], "bias only": [b]}[affine]

    def f(x, *p):
        weight = p[0] if affine in (True, "weight only") else None
        bias = p[-1] if affine in (True, "bias only") else None
        return ops.instance_norm(x, weight, bias, activation=act, negative_slope=0.2, impl="native")

    assert torch.autograd.gradcheck(f, (x, *params))
    assert torch.autograd.gradgradcheck(f, (x, *params))


@needs_native
@pytest.mark.parametrize("act", ["none", "leaky_relu"])
def test_conditional_gradcheck_and_gradgradcheck(act):
    x = randn(3, 4, 3, 3, seed=19, dtype=torch.float64).requires_grad_()
    mix = torch.rand(3, 2, generator=torch.Generator().manual_seed(20), dtype=torch.float64).requires_grad_()
    gamma = randn(2, 4, seed=21, dtype=torch.float64).requires_grad_()
    beta = randn(2, 4, seed=22, dtype=torch.float64).requires_grad_()

    def f(x, mix, gamma, beta):
        return ops.conditional_instance_norm(x, mix, gamma, beta, activation=act, impl="native")

    assert torch.autograd.gradcheck(f, (x, mix, gamma, beta))
    assert torch.autograd.gradgradcheck(f, (x, mix, gamma, beta))
    idx = torch.tensor([1, 0, 1])
    assert torch.autograd.gradgradcheck(lambda x, g, b: ops.conditional_instance_norm(x, idx, g, b, impl="native"),
                                        (x, gamma, beta))


@needs_native
def test_gradient_penalty_matches_reference():
    # an R1-style penalty: the gradient of a gradient norm through the normalisation layer
    x = randn(2, 6, 8, 8, seed=23) * 2
    w, b = randn(6, seed=24), randn(6, seed=25)
    grads = {}
    for impl in ("native", "reference"):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = ops.instance_norm(xi, wi, b, activation="leaky_relu", negative_slope=0.2, impl=impl)
        (g,) = torch.autograd.grad((y * y.detach().sin()).sum(), xi, create_graph=True)
        g.square().sum().backward()
        grads[impl] = (xi.grad, wi.grad)
    for got, want in zip(grads["native"], grads["reference"]):
        assert_close(got, want, 1e-4)


# ---------------------------------------------------------------------------------------------
# conditional instance norm


@needs_native
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_conditional_indices_and_mixing_weights(act, layout):
    n, c, s = 4, 6, 3
    x = randn(n, c, 5, 7, seed=26) * 2 + 1
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    gamma, beta = randn(s, c, seed=27), randn(s, c, seed=28)
    idx = torch.tensor([2, 0, 1, 2])
    got = ops.conditional_instance_norm(x, idx, gamma, beta, activation=act, impl="native")
    want = ref.instance_norm(x.double()[:1], gamma[2].double(), beta[2].double(), 1e-5, act)
    assert_close(got[:1], want, 2e-6)
    # one-hot mixing rows select exactly the indexed styles
    onehot = F.one_hot(idx, s).float()
    assert torch.equal(ops.conditional_instance_norm(x, onehot, gamma, beta, activation=act, impl="native"), got)
    # blended styles: gradients to x, gamma, beta and the mixing weights against the reference
    mix = torch.rand(n, s, generator=torch.Generator().manual_seed(29))
    dy = randn(*x.shape, seed=30)
    out = {}
    for impl, dt in (("native", torch.float32), ("reference", torch.float64)):
        ts = [t.detach().to(dt).requires_grad_() for t in (x, mix, gamma, beta)]
        y = ops.conditional_instance_norm(*ts, activation=act, impl=impl)
        y.backward(dy.to(dt))
        out[impl] = [y] + [t.grad for t in ts]
    for got, want in zip(out["native"], out["reference"]):
        assert_close(got, want, 2e-5)


# ---------------------------------------------------------------------------------------------
# opcheck, torch.compile


@needs_native
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck(layout):
    x = randn(2, 5, 4, 3, seed=31)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    scale, shift = randn(2, 5, seed=32), randn(2, 5, seed=33)
    fwd = torch.ops.genfast.instance_norm.default
    bwd = torch.ops.genfast.instance_norm_backward.default
    for args in [(x, scale, shift, 1e-5, "relu", 0.01), (x, None, None, 1e-5, "none", 0.01),
                 (x.requires_grad_(), scale.requires_grad_(), shift.requires_grad_(), 1e-3, "leaky_relu", 0.2)]:
        torch.library.opcheck(fwd, args)
    x = x.detach()
    _, mean, rstd = fwd(x, scale.detach(), shift.detach(), 1e-5, "relu", 0.0)
    dy = randn(2, 5, 4, 3, seed=34)
    for args in [(dy, x, mean, rstd, scale.detach(), shift.detach(), 1e-5, "relu", 0.0),
                 (dy, x, mean, rstd, None, None, 1e-5, "none", 0.01)]:
        torch.library.opcheck(bwd, args)


@needs_native
def test_torch_compile_fullgraph():
    torch._dynamo.reset()
    x = randn(2, 4, 6, 6, seed=35)
    w, b = randn(4, seed=36), randn(4, seed=37)
    gamma, beta = randn(3, 4, seed=38), randn(3, 4, seed=39)
    idx = torch.tensor([2, 1])

    def f(x, w, b, gamma, beta, idx):
        y = ops.instance_norm(x, w, b, activation="relu", impl="native")
        return ops.conditional_instance_norm(y, idx, gamma, beta, activation="leaky_relu", impl="native")

    compiled = torch.compile(f, fullgraph=True, dynamic=False)
    xe, xc = x.clone().requires_grad_(), x.clone().requires_grad_()
    want = f(xe, w, b, gamma, beta, idx)
    got = compiled(xc, w, b, gamma, beta, idx)
    torch.testing.assert_close(got, want)
    want.sum().backward()
    got.sum().backward()
    torch.testing.assert_close(xc.grad, xe.grad)


# ---------------------------------------------------------------------------------------------
# modules


@pytest.mark.parametrize("impl", [pytest.param("native", marks=needs_native), "reference"])
def test_instance_norm_module_is_a_drop_in(impl):
    torch_mod = torch.nn.InstanceNorm2d(7, affine=True)
    with torch.no_grad():
        torch_mod.weight.copy_(randn(7, seed=40))
        torch_mod.bias.copy_(randn(7, seed=41))
    mod = nn.InstanceNorm2d(7, activation="relu", impl=impl)
    mod.load_state_dict(torch_mod.state_dict())
    x = randn(2, 7, 9, 8, seed=42)
    torch.testing.assert_close(mod(x), torch.relu(torch_mod(x)), rtol=1e-5, atol=1e-5)
    # and back: into torch's module, and from a pre-0.4 checkpoint carrying running statistics
    back = torch.nn.InstanceNorm2d(7, affine=True)
    back.load_state_dict(mod.state_dict())
    assert torch.equal(back.weight, torch_mod.weight) and torch.equal(back.bias, torch_mod.bias)
    stale = dict(torch_mod.state_dict(), running_mean=torch.zeros(7), running_var=torch.ones(7))
    fresh = nn.InstanceNorm2d(7, impl=impl)
    fresh.load_state_dict(stale)  # strict: the stale keys are accepted and ignored
    assert torch.equal(fresh.weight, torch_mod.weight)
    assert set(fresh.state_dict()) == {"weight", "bias"}
    nested = torch.nn.Sequential(nn.InstanceNorm2d(7, impl=impl))
    nested.load_state_dict({"0.weight": torch.ones(7), "0.bias": torch.zeros(7), "0.running_mean": torch.zeros(7),
                            "0.running_var": torch.ones(7), "0.num_batches_tracked": torch.tensor(0)})
    assert nn.InstanceNorm2d(7, affine=False).state_dict() == {}


def test_conditional_module():
    mod = nn.ConditionalInstanceNorm2d(5, 3, activation="relu")
    with torch.no_grad():
        mod.gamma.copy_(randn(3, 5, seed=43))
        mod.beta.copy_(randn(3, 5, seed=44))
    x = randn(2, 5, 6, 6, seed=45)
    y = mod(x, torch.tensor([0, 2]))
    want = ref.conditional_instance_norm(x, torch.tensor([0, 2]), mod.gamma.detach(), mod.beta.detach(), 1e-5, "relu")
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
    y.sum().backward()
    assert torch.equal(mod.gamma.grad[1], torch.zeros(5))  # an unused style gets no gradient


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_input_names_the_argument():
    x = randn(2, 3, 4, 4)
    cases = [
        (lambda: ops.instance_norm(randn(3, 4, 4)), ValueError, "x of shape"),
        (lambda: ops.instance_norm(torch.ones(2, 3, 4, 4, dtype=torch.long)), TypeError, "x to be a floating"),
        (lambda: ops.instance_norm(x, torch.ones(4)), ValueError, "weight of shape"),
        (lambda: ops.instance_norm(x, torch.ones(3), torch.ones(2)), ValueError, "bias of shape"),
        (lambda: ops.instance_norm(x, activation="gelu"), ValueError, "activation"),
        (lambda: ops.instance_norm(x, eps=-1.0), ValueError, "eps"),
        (lambda: ops.conditional_instance_norm(x, torch.tensor([0, 2]), torch.ones(2, 3), torch.ones(2, 3)),
         IndexError, "style index out of range"),
        (lambda: ops.conditional_instance_norm(x, torch.tensor([0, -1]), torch.ones(2, 3), torch.ones(2, 3)),
         IndexError, "style index out of range"),
        (lambda: ops.conditional_instance_norm(x, torch.tensor([0]), torch.ones(2, 3), torch.ones(2, 3)),
         ValueError, "style indices of shape"),
        (lambda: ops.conditional_instance_norm(x, torch.rand(2, 3), torch.ones(2, 3), torch.ones(2, 3)),
         ValueError, "mixing weights of shape"),
        (lambda: ops.conditional_instance_norm(x, torch.tensor([0, 1]), torch.ones(2, 4), torch.ones(2, 4)),
         ValueError, "gamma of shape"),
        (lambda: ops.conditional_instance_norm(x, torch.tensor([0, 1]), torch.ones(2, 3), torch.ones(3, 3)),
         ValueError, "beta of shape"),
        (lambda: ops.conditional_instance_norm(x, torch.tensor([True, False]), torch.ones(2, 3), torch.ones(2, 3)),
         TypeError, "style"),
    ]
    for fn, exc, msg in cases:
        for impl in ("reference",) + (("native",) if NATIVE else ()):
            with pytest.raises(exc, match=msg):
                fn.__call__() if impl == "reference" else fn()


@needs_native
def test_native_op_checks_its_inputs():
    x = randn(2, 3, 4, 4)
    with pytest.raises(RuntimeError, match="expected x of shape"):
        torch.ops.genfast.instance_norm(randn(2, 3, 4), None, None, 1e-5, "none", 0.0)
    with pytest.raises(RuntimeError, match="expected scale of shape"):
        torch.ops.genfast.instance_norm(x, torch.ones(3), None, 1e-5, "none", 0.0)
    with pytest.raises(RuntimeError, match="activation"):
        torch.ops.genfast.instance_norm(x, None, None, 1e-5, "tanh", 0.0)


def test_reference_impl_matches_the_formula():
    x = randn(2, 3, 5, 5, seed=46)
    w, b = randn(3, seed=47), randn(3, seed=48)
    got = ops.instance_norm(x, w, b, activation="leaky_relu", negative_slope=0.3, impl="reference")
    want = F.leaky_relu(F.instance_norm(x, weight=w, bias=b), 0.3)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# CUDA


@needs_cuda
@pytest.mark.skipif(not genfast.native_available("instance_norm", "cuda"), reason="CUDA kernels not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_cuda_matches_cpu(dtype, layout):
    x = (randn(3, 10, 33, 17, seed=49) * 2 + 1).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    w, b = randn(10, seed=50).to(dtype), randn(10, seed=51).to(dtype)
    dy = randn(3, 10, 33, 17, seed=52).to(dtype)
    out = {}
    for dev in ("cpu", "cuda"):
        xd, wd, bd = (t.to(dev).requires_grad_() for t in (x, w, b))
        y = ops.instance_norm(xd, wd, bd, activation="relu", impl="native")
        y.backward(dy.to(dev))
        out[dev] = [t.cpu() for t in (y, xd.grad, wd.grad, bd.grad)]
    tol = 1e-5 if dtype != torch.float16 else 4e-3
    for got, want in zip(out["cuda"], out["cpu"]):
        assert_close(got, want, tol)
    assert ops.instance_norm(torch.empty(0, 3, 4, 4, device="cuda"), impl="native").shape == (0, 3, 4, 4)


@needs_cuda
@pytest.mark.skipif(not genfast.native_available("instance_norm", "cuda"), reason="CUDA kernels not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_double_backward_matches_cpu(dtype):
    g = torch.Generator().manual_seed(53)
    x = (torch.randn(3, 10, 33, 17, generator=g) * 2 + 1).to(dtype)
    grad, u = (torch.randn(x.shape, generator=g).to(dtype) for _ in range(2))
    scale, shift, alpha, beta = (torch.randn(3, 10, generator=g).to(dtype) for _ in range(4))
    out = {}
    for dev in ("cpu", "cuda"):
        t = [v.to(dev) for v in (grad, x, scale, shift, u, alpha, beta)]
        _, mean, rstd = torch.ops.genfast.instance_norm(t[1], t[2], t[3], 1e-5, "leaky_relu", 0.2)
        out[dev] = [v.cpu() for v in torch.ops.genfast.instance_norm_double_backward(
            t[0], t[1], mean, rstd, t[2], t[3], t[4], t[5], t[6], "leaky_relu", 0.2)]
    for got, want in zip(out["cuda"], out["cpu"]):
        assert_close(got, want, 1e-5 if dtype == torch.float32 else 1e-12)


def test_benchmark_cases_compute_the_same_thing():
    from genfast.bench import instance_norm as bench

    shapes = [(1, 3, 4, 5), (2, 6, 3, 3)]
    cases = bench.cases(torch.device("cpu"), shapes, compile=False)
    assert [c.shape for c in cases if c.mode == "forward"] == shapes
    for case in cases:
        outs = {impl: fn() for impl, fn in case.fns.items()}
        if case.mode == "forward":
            assert NATIVE == ("native" in outs)
            for impl, y in outs.items():
                assert y.shape == case.shape
                torch.testing.assert_close(y, outs["reference"], rtol=1e-5, atol=1e-5, msg=impl)


@pytest.mark.skipif(not genfast.native_available("instance_norm", "cpu"), reason="native instance_norm not built")
def test_large_outputs_reuse_freed_blocks_and_stay_correct():
    genfast.empty_cache()
    x = torch.randn(2, 16, 256, 256)   # 8 MB: above the cache's 4 MB minimum
    w, b = torch.rand(16) + 0.5, torch.randn(16)
    expected = torch.relu(torch.nn.functional.instance_norm(x, weight=w, bias=b))
    y = ops.instance_norm(x, w, b, activation="relu")
    first = y.data_ptr()
    del y
    assert genfast.cpu_cache_bytes() == x.nbytes
    y = ops.instance_norm(x, w, b, activation="relu")          # the freed block, reused
    assert y.data_ptr() == first and genfast.cpu_cache_bytes() == 0
    torch.testing.assert_close(y, expected)
    z = ops.instance_norm(x, w, b, activation="relu")          # y still alive: a different block
    assert z.data_ptr() != y.data_ptr()
    torch.testing.assert_close(z, expected)
    y.resize_(4, 16, 256, 256)                                 # storage from the cache is ordinary storage
    y.numpy()[:] = 1.0
    assert float(y.sum()) == y.numel()
    del y, z
    assert genfast.empty_cache() > 0 and genfast.cpu_cache_bytes() == 0


@pytest.mark.skipif(not genfast.native_available("instance_norm", "cpu"), reason="native instance_norm not built")
def test_the_output_cache_can_be_turned_off():
    import subprocess
    import sys

    code = ("import torch, genfast\nfrom genfast import ops\nx = torch.randn(2, 16, 256, 256)\n"
            "del x\ny = ops.instance_norm(torch.randn(2, 16, 256, 256))\ndel y\nprint(genfast.cpu_cache_bytes())\n")
    env = dict(__import__("os").environ, GENFAST_CPU_CACHE_MB="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
    env["GENFAST_CPU_CACHE_MB"] = "512"
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert on.stdout.strip() == str(2 * 16 * 256 * 256 * 4)


@pytest.mark.parametrize("activation", ["none", "relu", "leaky_relu"])
@pytest.mark.parametrize("given", [(True, True, True), (False, True, False), (True, False, False)])
def test_double_backward_closed_form_equals_autograd_of_the_backward(activation, given):
    """ref.instance_norm_double_backward (what the native op's double backward runs) against
    torch.func.vjp of the reference backward formula, float64."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 4, 5, 6, generator=g, dtype=torch.float64)
    grad = torch.randn(x.shape, generator=g, dtype=torch.float64)
    scale, shift = (torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(2))
    u = torch.randn(x.shape, generator=g, dtype=torch.float64) if given[0] else None
    alpha = torch.randn(3, 4, generator=g, dtype=torch.float64) if given[1] else None
    beta = torch.randn(3, 4, generator=g, dtype=torch.float64) if given[2] else None
    outs, vjp = torch.func.vjp(lambda gr, xx, s, b: ref.instance_norm_backward(gr, xx, s, b, 1e-5, activation, 0.2),
                               grad, x, scale, shift)
    want = vjp(tuple(torch.zeros_like(o) if c is None else c for o, c in zip(outs, (u, alpha, beta))))
    got = ref.instance_norm_double_backward(grad, x, scale, shift, u, alpha, beta, 1e-5, activation, 0.2)
    for a, b in zip(got, want[:3]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert float(want[3].abs().max()) == 0.0      # shift: no derivative, as the closed form says


@needs_native
@pytest.mark.parametrize("activation", ["none", "relu", "leaky_relu"])
@pytest.mark.parametrize("given", [(True, True, True), (False, True, False), (True, False, False), (False, False, True)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_native_double_backward_matches_the_closed_form(activation, given, affine, dtype):
    """genfast::instance_norm_double_backward against ref.instance_norm_double_backward in float64
    (odd plane sizes: vector tails, one-element planes, a plane longer than the summation chunk)."""
    g = torch.Generator().manual_seed(8)
    for shape in [(3, 4, 5, 7), (2, 3, 1, 1), (1, 2, 70, 70)]:
        n, c = shape[:2]
        x = (torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 2).to(dtype)
        grad = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
        scale, shift = ((torch.randn(n, c, generator=g, dtype=torch.float64).to(dtype) if affine else None)
                        for _ in range(2))
        u = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype) if given[0] else None
        alpha = torch.randn(n, c, generator=g, dtype=torch.float64).to(dtype) if given[1] else None
        beta = torch.randn(n, c, generator=g, dtype=torch.float64).to(dtype) if given[2] else None
        _, mean, rstd = torch.ops.genfast.instance_norm(x, scale, shift, 1e-5, activation, 0.2)
        got = torch.ops.genfast.instance_norm_double_backward(grad, x, mean, rstd, scale, shift, u, alpha, beta,
                                                              activation, 0.2)
        d = [None if t is None else t.double() for t in (grad, x, scale, shift, u, alpha, beta)]
        want = ref.instance_norm_double_backward(*d, 1e-5, activation, 0.2)
        assert [t.dtype for t in got] == [dtype, dtype, dtype]
        for a, b in zip(got, want):
            assert_close(a, b, 1e-12 if dtype == torch.float64 else 2e-6)


@needs_native
def test_native_double_backward_layouts_dtypes_and_opcheck():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 5, 4, 3, generator=g) * 2 + 1
    grad, u = torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)
    scale, shift, alpha = (torch.randn(2, 5, generator=g) for _ in range(3))
    op = torch.ops.genfast.instance_norm_double_backward.default
    _, mean, rstd = torch.ops.genfast.instance_norm(x, scale, shift, 1e-5, "leaky_relu", 0.2)
    want = op(grad, x, mean, rstd, scale, shift, u, alpha, None, "leaky_relu", 0.2)
    cl = lambda t: t.contiguous(memory_format=torch.channels_last)
    got = op(cl(grad), cl(x), mean, rstd, scale, shift, cl(u), alpha, None, "leaky_relu", 0.2)
    assert got[0].is_contiguous(memory_format=torch.channels_last) and got[1].is_contiguous(
        memory_format=torch.channels_last)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    half = op(grad.half(), x.half(), mean, rstd.float(), scale, shift, u.half(), alpha, None, "leaky_relu", 0.2)
    assert [t.dtype for t in half] == [torch.float16, torch.float16, torch.float32]
    for args in [(grad, x, mean, rstd, scale, shift, u, alpha, None, "leaky_relu", 0.2),
                 (cl(grad), cl(x), mean, rstd, None, None, None, None, shift, "relu", 0.0),
                 (grad, x, mean, rstd, scale, None, u, None, None, "none", 0.01)]:
        torch.library.opcheck(op, args)
    with pytest.raises(RuntimeError, match="gg_x of shape"):
        op(grad, x, mean, rstd, scale, shift, u[:1], alpha, None, "leaky_relu", 0.2)
    with pytest.raises(RuntimeError, match="gg_scale of shape"):
        op(grad, x, mean, rstd, scale, shift, u, alpha[:1], None, "leaky_relu", 0.2)


@needs_native
def test_third_derivative_through_the_double_backward():
    """With a graph recorded of the double backward (create_graph on the penalty's backward), the
    differentiable closed form runs instead of the native op, so a third derivative exists and
    matches the reference implementation's."""
    x0 = randn(2, 3, 4, 4, seed=40, dtype=torch.float64)
    w = randn(3, seed=41, dtype=torch.float64)
    out = {}
    for impl in ("native", "reference"):
        x = x0.clone().requires_grad_()
        y = ops.instance_norm(x, w, None, activation="leaky_relu", negative_slope=0.2, impl=impl)
        (g1,) = torch.autograd.grad((y * y.detach().cos()).sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad(g1.square().sum(), x, create_graph=True)
        (g3,) = torch.autograd.grad((g2 * x0.sin()).sum(), x)
        out[impl] = (g2.detach(), g3)
    for a, b in zip(out["native"], out["reference"]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@needs_native
@pytest.mark.parametrize("act", ACTS)
def test_grouped_small_planes_equal_one_plane_at_a_time(act):
    """Small float planes go through the CPU kernels four at a time (instance_norm_cpu.cpp,
    forward_group / backward_group); one plane alone takes the single-plane loop. Same bits."""
    x = randn(1, 7, 7, 7, seed=60) * 3 + 5
    scale, shift, dy = randn(1, 7, seed=61), randn(1, 7, seed=62), randn(1, 7, 7, 7, seed=63)
    y, mean, rstd = torch.ops.genfast.instance_norm(x, scale, shift, 1e-5, act, 0.2)
    gx, gs, gb = torch.ops.genfast.instance_norm_backward(dy, x, mean, rstd, scale, shift, 1e-5, act, 0.2)
    for c in range(7):
        one = slice(c, c + 1)
        y1, m1, r1 = torch.ops.genfast.instance_norm(x[:, one].contiguous(), scale[:, one].contiguous(),
                                                     shift[:, one].contiguous(), 1e-5, act, 0.2)
        assert torch.equal(y1, y[:, one]) and torch.equal(m1, mean[:, one]) and torch.equal(r1, rstd[:, one])
        g1 = torch.ops.genfast.instance_norm_backward(dy[:, one].contiguous(), x[:, one].contiguous(), m1, r1,
                                                      scale[:, one].contiguous(), shift[:, one].contiguous(),
                                                      1e-5, act, 0.2)
        assert torch.equal(g1[0], gx[:, one]) and torch.equal(g1[1], gs[:, one]) and torch.equal(g1[2], gb[:, one])
