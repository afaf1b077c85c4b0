"""genfast.ops.gram_matrix / style_loss: native kernels against the float64 reference and the
hand-written formulas, gradients, opcheck, torch.compile, bad input, impl selection."""

import warnings

import pytest
import torch

import genfast
from genfast import _native, nn, ops
from genfast.reference import gram as ref
from helpers import assert_compiles_like_eager, needs_cuda, needs_native_op

NATIVE = genfast.native_available("style_loss", "cpu")
needs_native = needs_native_op("style_loss")

NORMALIZE = ["none", "hw", "chw"]
REDUCTION = ["mse", "sum", "frobenius"]
# odd sizes: C = 1 and 3, L = 1, sizes that are not multiples of the 16-wide vector tile
SHAPES = [(2, 17, 5, 7), (1, 3, 1, 1), (3, 1, 33), (2, 37, 129), (1, 16, 8, 8), (2, 21, 300)]


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def assert_close(got, want, rtol):
    """Relative to the largest magnitude: Gram entries span orders of magnitude."""
    scale = want.abs().max().item() or 1.0
    torch.testing.assert_close(got.double(), want.double(), rtol=0, atol=rtol * scale)


def layouts(x):
    """The same values as x in several memory layouts (contiguous, channels_last, strided)."""
    yield "contiguous", x
    if x.dim() == 4:
        yield "channels_last", x.to(memory_format=torch.channels_last)
        # a non-contiguous view: every other column of a twice-as-wide tensor
        wide = torch.zeros(*x.shape[:3], 2 * x.shape[3], dtype=x.dtype)
        wide[..., ::2] = x
        yield "strided", wide[..., ::2]
    else:
        yield "transposed", x.transpose(1, 2).contiguous().transpose(1, 2)


# ---------------------------------------------------------------------------------------------
# values and gradients against the float64 reference


@needs_native
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("normalize", NORMALIZE)
def test_gram_matrix_matches_reference(shape, normalize):
    x = randn(*shape, seed=1)
    want = ref.gram_matrix(x.double(), normalize)
    for name, xv in layouts(x):
        got = ops.gram_matrix(xv, normalize=normalize, impl="native")
        assert got.shape == want.shape and got.dtype == torch.float32, name
        assert_close(got, want, 1e-5)


@needs_native
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("normalize", NORMALIZE)
@pytest.mark.parametrize("reduction", REDUCTION)
def test_style_loss_and_gradient_match_reference(shape, normalize, reduction):
    x = randn(*shape, seed=2)
    c = shape[1]
    target = ref.gram_matrix(randn(*shape, seed=3).double(), normalize)[:1]
    xr = x.double().requires_grad_()
    want = ref.style_loss(xr, target, normalize, reduction, weight=0.7)
    want.backward()
    for name, xv in layouts(x):
        xv = xv.detach().requires_grad_()
        got = ops.style_loss(xv, target.float().reshape(c, c), normalize=normalize, reduction=reduction,
                             weight=0.7, impl="native")
        assert got.dim() == 0 and got.dtype == torch.float32
        assert_close(got, want.detach(), 1e-5)
        got.backward()
        assert xv.grad.stride() == xv.stride() or not xv.is_contiguous(), name
        assert_close(xv.grad, xr.grad, 1e-4)


@needs_native
def test_per_sample_target_and_target_gradient():
    x = randn(3, 6, 4, 5, seed=4)
    t = randn(3, 6, 6, seed=5).requires_grad_()
    tr = t.detach().double().requires_grad_()
    ops.style_loss(x, t, reduction="sum", impl="native").backward()
    ref.style_loss(x.double(), tr, "chw", "sum").backward()
    assert_close(t.grad, tr.grad, 1e-5)
    # a (1, C, C) target is shared by the batch: its gradient sums over N
    t1 = randn(1, 6, 6, seed=6).requires_grad_()
    t1r = t1.detach().double().requires_grad_()
    ops.style_loss(x, t1, impl="native").backward()
    ref.style_loss(x.double(), t1r).backward()
    assert_close(t1.grad, t1r.grad, 1e-5)


# ---------------------------------------------------------------------------------------------
# the classic formulations, written out by hand


def gatys_by_hand(f, a):
    """Gatys et al. 2016 eq. 4: E_l = 1/(4 N^2 M^2) sum_ij (G_ij - A_ij)^2, raw Grams."""
    n_ch, m = f.shape[1], f.shape[2] * f.shape[3]
    flat = f[0].reshape(n_ch, m)
    g = torch.zeros(n_ch, n_ch, dtype=torch.float64)
    for i in range(n_ch):
        for j in range(n_ch):
            g[i, j] = (flat[i] * flat[j]).sum()
    return ((g - a) ** 2).sum() / (4 * n_ch**2 * m**2)


def deeplearning_ai_by_hand(f, gs):
    """J_style = 1/(2 n_H n_W n_C)^2 sum (G_S - G_G)^2 with G = A A^T of the unrolled activations."""
    _, n_c, n_h, n_w = f.shape
    a = f[0].reshape(n_c, n_h * n_w)
    gg = a @ a.T
    return ((gs - gg) ** 2).sum() / (2 * n_h * n_w * n_c) ** 2


def frobenius_by_hand(f, gs):
    """sqrt(sum (g - g_s)^2) with g = F F^T / (C H W)."""
    _, c, h, w = f.shape
    a = f[0].reshape(c, h * w)
    g = a @ a.T / (c * h * w)
    return torch.sqrt(((g - gs) ** 2).sum())


@pytest.mark.parametrize("impl", ["native", "reference"])
def test_seed_formulations(impl):
    if impl == "native" and not NATIVE:
        pytest.skip("native not built")
    c, h, w = 5, 4, 3
    f = randn(1, c, h, w, seed=7, dtype=torch.float64)
    s = randn(1, c, h, w, seed=8, dtype=torch.float64)
    raw_s = ref.gram_matrix(s, "none")[0]
    got = ops.style_loss(f, raw_s, normalize="none", reduction="sum", weight=1 / (4 * c**2 * (h * w) ** 2), impl=impl)
    torch.testing.assert_close(got, gatys_by_hand(f, raw_s))
    got = ops.style_loss(f, raw_s, normalize="none", reduction="sum", weight=1 / (2 * h * w * c) ** 2, impl=impl)
    torch.testing.assert_close(got, deeplearning_ai_by_hand(f, raw_s))
    chw_s = ref.gram_matrix(s, "chw")[0]
    got = ops.style_loss(f, chw_s, reduction="frobenius", impl=impl)
    torch.testing.assert_close(got, frobenius_by_hand(f, chw_s))


# ---------------------------------------------------------------------------------------------
# reduced precision


@needs_native
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_half_inputs_accumulate_in_float32(dtype, tol):
    x = randn(2, 19, 9, 11, seed=9).to(dtype)
    want = ref.gram_matrix(x.double(), "chw")
    got = ops.gram_matrix(x, impl="native")
    assert got.dtype == dtype
    assert_close(got, want, tol)
    t = randn(19, 19, seed=10) * 0.01
    xg = x.clone().requires_grad_()
    # the weight keeps the gradient in the normal range of float16 (an unweighted one is ~1e-7)
    loss = ops.style_loss(xg, t, weight=1e5, impl="native")
    assert loss.dtype == torch.float32
    xr = x.double().requires_grad_()
    want_loss = ref.style_loss(xr, t.double(), weight=1e5)
    assert_close(loss, want_loss.detach(), 1e-4)  # float32 sums of exactly-representable inputs
    loss.backward()
    want_loss.backward()
    assert xg.grad.dtype == dtype
    assert_close(xg.grad, xr.grad, tol)


@needs_native
def test_fp16_vgg_scale_activations_do_not_overflow():
    # relu1_1-like activations at 256x256: raw F F^T sums reach ~1e7, far past fp16's 65504
    x = (torch.rand(1, 64, 256 * 256, generator=torch.Generator().manual_seed(11)) * 40).half()
    plain = torch.bmm(x, x.transpose(1, 2))
    assert torch.isinf(plain).any(), "the plain fp16 product was expected to overflow"
    target = ref.gram_matrix(x.double(), "chw")[0].float() * 0.5
    loss = ops.style_loss(x, target, impl="native")
    assert torch.isfinite(loss)
    want = ref.style_loss(x.double(), target.double())
    assert_close(loss, want, 1e-4)
    g = ops.gram_matrix(x, normalize="chw", impl="native")
    assert torch.isfinite(g).all()
    xg = x.clone().requires_grad_()
    ops.style_loss(xg, target, impl="native").backward()
    assert torch.isfinite(xg.grad).all()


# ---------------------------------------------------------------------------------------------
# empty input


@needs_native
def test_empty_inputs():
    assert ops.gram_matrix(torch.randn(0, 4, 3, 3), impl="native").shape == (0, 4, 4)
    g = ops.gram_matrix(torch.randn(2, 4, 0), impl="native")
    assert g.shape == (2, 4, 4) and (g == 0).all()
    x = torch.randn(2, 4, 0, requires_grad=True)
    ops.style_loss(x, torch.ones(4, 4), reduction="sum", impl="native").backward()
    assert x.grad.shape == (2, 4, 0)


# ---------------------------------------------------------------------------------------------
# autograd machinery


@needs_native
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradcheck(seed):
    x = randn(2, 4, 3, 5, seed=seed, dtype=torch.float64).requires_grad_()
    t = randn(1, 4, 4, seed=seed + 10, dtype=torch.float64).requires_grad_()
    for normalize in NORMALIZE:
        assert torch.autograd.gradcheck(lambda f: ops.gram_matrix(f, normalize=normalize, impl="native"), (x,))
        for reduction in REDUCTION:
            assert torch.autograd.gradcheck(
                lambda f, tt: ops.style_loss(f, tt, normalize=normalize, reduction=reduction, weight=1.3,
                                             impl="native"), (x, t))


@needs_native
def test_double_backward_raises():
    x = randn(1, 3, 4, 4, dtype=torch.float64).requires_grad_()
    loss = ops.style_loss(x, torch.eye(3, dtype=torch.float64), impl="native")
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        grad.sum().backward()
    g = ops.gram_matrix(x, impl="native")
    (grad,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        grad.sum().backward()


@needs_native
def test_opcheck_every_op():
    ops_ = torch.ops.genfast
    for dtype in (torch.float32, torch.float64):
        f = randn(2, 5, 7, seed=12, dtype=dtype)
        f_cl = randn(2, 5, 3, 4, seed=13, dtype=dtype).to(memory_format=torch.channels_last).reshape(2, 5, 12)
        for feats in (f, f_cl):
            c = feats.shape[1]
            t = randn(1, c, c, seed=14, dtype=dtype)
            grad = randn(2, c, c, seed=15, dtype=dtype)
            torch.library.opcheck(ops_.gram_matrix, (feats.clone().requires_grad_(), 0.25))
            torch.library.opcheck(ops_.gram_matrix_backward, (grad, feats, 0.25))
            for reduction in REDUCTION:
                args = (feats.clone().requires_grad_(), t, 0.25, reduction, 0.5)
                torch.library.opcheck(ops_.style_loss, args)
                loss, gram = ops_.style_loss(feats, t, 0.25, reduction, 0.5)
                torch.library.opcheck(ops_.style_loss_backward,
                                      (torch.ones((), dtype=dtype), feats, gram, t, 0.25, reduction, 0.5))


@needs_native
def test_torch_compile_fullgraph():
    x = randn(2, 8, 6, 6, seed=16)
    t = randn(8, 8, seed=17) * 0.1

    def objective(f):  # impl="auto": the choice itself must trace without a graph break
        return ops.style_loss(f, t) + ops.gram_matrix(f, impl="native").square().sum()

    assert_compiles_like_eager(objective, x)   # inductor: the ops stay opaque calls


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_bad_inputs_name_the_argument(impl):
    x = torch.randn(1, 4, 3, 3)
    with pytest.raises(ValueError, match="features"):
        ops.gram_matrix(torch.randn(4, 9), impl=impl)
    with pytest.raises(TypeError, match="features"):
        ops.gram_matrix(torch.ones(1, 4, 3, 3, dtype=torch.int64), impl=impl)
    with pytest.raises(TypeError, match="features"):
        ops.gram_matrix([[1.0]], impl=impl)
    with pytest.raises(ValueError, match="target_gram"):
        ops.style_loss(x, torch.randn(5, 5), impl=impl)
    with pytest.raises(ValueError, match="target_gram"):
        ops.style_loss(x, torch.randn(3, 4, 4), impl=impl)
    with pytest.raises(ValueError, match="target_gram"):
        ops.style_loss(x, torch.randn(4, 4, device="meta"), impl=impl)
    with pytest.raises(TypeError, match="target_gram"):
        ops.style_loss(x, torch.ones(4, 4, dtype=torch.int32), impl=impl)
    with pytest.raises(ValueError, match="normalize"):
        ops.gram_matrix(x, normalize="c", impl=impl)
    with pytest.raises(ValueError, match="reduction"):
        ops.style_loss(x, torch.randn(4, 4), reduction="mean", impl=impl)
    with pytest.raises(TypeError, match="weight"):
        ops.style_loss(x, torch.randn(4, 4), weight="1", impl=impl)
    with pytest.raises(ValueError, match="impl"):
        ops.gram_matrix(x, impl="fast")


@needs_native
def test_native_op_checks_name_the_argument():
    with pytest.raises(RuntimeError, match="features"):
        torch.ops.genfast.gram_matrix(torch.randn(4, 9), 1.0)
    with pytest.raises(RuntimeError, match="target"):
        torch.ops.genfast.style_loss(torch.randn(1, 4, 9), torch.randn(1, 5, 5), 1.0, "mse", 1.0)
    with pytest.raises(RuntimeError, match="reduction"):
        torch.ops.genfast.style_loss(torch.randn(1, 4, 9), torch.randn(1, 4, 4), 1.0, "max", 1.0)
    with pytest.raises(RuntimeError, match="grad"):
        torch.ops.genfast.gram_matrix_backward(torch.randn(2, 4, 4), torch.randn(1, 4, 9), 1.0)


# ---------------------------------------------------------------------------------------------
# choosing the implementation


@pytest.fixture
def fresh_warnings():
    saved = set(_native._warned)
    _native._warned.clear()
    yield
    _native._warned.clear()
    _native._warned.update(saved)


def test_env_selects_reference(monkeypatch):
    calls = []
    real = ref.gram_matrix

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ops.gram.ref, "gram_matrix", spy)
    x = torch.randn(1, 3, 4, 4)
    monkeypatch.setenv("GENFAST_IMPL", "reference")
    ops.gram_matrix(x)
    assert calls == [1]
    if NATIVE:
        ops.gram_matrix(x, impl="native")  # an explicit argument beats the environment
        assert calls == [1]
        monkeypatch.setenv("GENFAST_IMPL", "auto")
        ops.gram_matrix(x)
        assert calls == [1]
    monkeypatch.setenv("GENFAST_IMPL", "fastest")
    with pytest.raises(ValueError, match="GENFAST_IMPL"):
        ops.gram_matrix(x)


def test_fallback_warns_once_and_native_raises(fresh_warnings, monkeypatch):
    monkeypatch.delenv("GENFAST_IMPL", raising=False)
    x = torch.randn(1, 3, 4, 4, device="meta")  # no genfast kernel is registered for meta
    with pytest.warns(RuntimeWarning, match="reference"):
        ops.gram_matrix(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops.gram_matrix(x)  # the second fallback is silent
    with pytest.raises(genfast.NativeUnavailableError, match="meta"):
        ops.gram_matrix(x, impl="native")


# ---------------------------------------------------------------------------------------------
# modules


def test_modules_match_functional_and_round_trip():
    x = randn(2, 6, 5, 5, seed=18)
    s = randn(1, 6, 5, 5, seed=19)
    torch.testing.assert_close(nn.GramMatrix("hw")(x), ops.gram_matrix(x, normalize="hw"))
    crit = nn.StyleLoss.from_features(s, reduction="sum", weight=2.0)
    torch.testing.assert_close(crit.target, ops.gram_matrix(s))
    torch.testing.assert_close(crit(x), ops.style_loss(x, ops.gram_matrix(s), reduction="sum", weight=2.0))
    state = crit.state_dict()
    assert set(state) == {"target"}
    other = nn.StyleLoss(torch.zeros(6, 6), reduction="sum", weight=2.0)
    other.load_state_dict(state)
    torch.testing.assert_close(other(x), crit(x))
    with pytest.raises(ValueError, match="target_gram"):
        nn.StyleLoss(torch.zeros(3, 4))


# ---------------------------------------------------------------------------------------------
# CUDA


@needs_cuda
@pytest.mark.parametrize("shape", [(2, 17, 5, 7), (1, 70, 33, 9), (1, 3, 1, 1)])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 2e-3)])
def test_cuda_matches_reference(shape, dtype, tol):
    assert genfast.native_available("style_loss", "cuda"), genfast.build_info()
    x = randn(*shape, seed=20).to(dtype)
    want = ref.gram_matrix(x.double(), "chw")
    assert_close(ops.gram_matrix(x.cuda(), impl="native").cpu(), want, tol)
    t = randn(shape[1], shape[1], seed=21) * 0.01
    xg = x.cuda().requires_grad_()
    ops.style_loss(xg, t.cuda(), impl="native").backward()
    xr = x.double().requires_grad_()
    ref.style_loss(xr, t.double()).backward()
    assert_close(xg.grad.cpu(), xr.grad, tol * 10)
