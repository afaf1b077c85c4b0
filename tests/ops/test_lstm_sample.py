"""Character-LSTM sampling: native vs reference token for token, the sampling distribution, state."""

import math

import pytest
import torch

from genfast import _native, ops
from genfast.nn import CharLSTM
from genfast.reference import lstm_sample as ref
from helpers import needs_native_op

native = needs_native_op("lstm_sample")


def _model(vocab=40, hidden=32, layers=2, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return CharLSTM(vocab, 16, hidden, layers).to(dtype)


# The CPU kernel has three loops (csrc/lstm_sample/lstm_sample_cpu.cpp): for up to 4 rows a row loop
# when the hidden size is a whole number of SIMD vectors (4 doubles / 8 floats with AVX2, up to 16 with
# AVX-512) and a GEMM-per-step loop otherwise; for more rows a column loop (any hidden size). With
# hidden 32 and 30, the batch sizes below reach all three.
HIDDEN_BOTH_LOOPS = [32, 30]


@native
@pytest.mark.parametrize("b,p,steps,temp,top_k,top_p,layers", [
    (1, 1, 60, 1.0, None, None, 2), (5, 4, 50, 0.5, None, None, 2), (8, 3, 40, 1.5, 5, None, 3),
    (6, 2, 45, 0.8, None, 0.9, 1), (9, 1, 30, 1.2, 7, 0.6, 2), (4, 5, 30, 0.0, None, None, 2),
    (80, 2, 12, 1.0, None, None, 2), (2, 3, 40, 0.9, None, None, 1), (3, 2, 40, 1.1, 6, None, 3),
])
@pytest.mark.parametrize("hidden", HIDDEN_BOTH_LOOPS)
def test_native_draws_the_reference_tokens(b, p, steps, temp, top_k, top_p, layers, hidden):
    m = _model(layers=layers, hidden=hidden)
    prime = torch.randint(0, 40, (b, p))
    u = torch.rand(steps, b, dtype=torch.float64)
    t = torch.linspace(0.3, 2.0, b, dtype=torch.float64) * temp
    kw = dict(temperature=t, top_k=top_k, top_p=top_p, uniforms=u)
    a, (ha, ca) = m.sample(prime, steps, impl="native", **kw)
    r, (hr, cr) = m.sample(prime, steps, impl="reference", **kw)
    assert torch.equal(a, r)
    torch.testing.assert_close(ha, hr, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ca, cr, rtol=1e-12, atol=1e-12)


@native
@pytest.mark.parametrize("hidden", [64, 62])
def test_float32_matches_the_reference_closely(hidden):
    m = _model(dtype=torch.float32, hidden=hidden)
    prime = torch.randint(0, 40, (16, 3))
    u = torch.rand(50, 16, dtype=torch.float64)
    a, (ha, _) = m.sample(prime, 50, uniforms=u, impl="native")
    r, (hr, _) = m.sample(prime, 50, uniforms=u, impl="reference")
    # GEMM rounding (~1e-7) can move a CDF boundary past a uniform; then the rows part ways
    assert (a == r).float().mean() > 0.97
    assert torch.equal(a[:, :10], r[:, :10])


def _bias_model(bias: torch.Tensor):
    """All LSTM weights zero: h stays 0, so every draw is from softmax(proj_bias / T), independently."""
    m = CharLSTM(bias.numel(), 4, 8, 1).double()
    with torch.no_grad():
        for prm in m.parameters():
            prm.zero_()
        m.proj.bias.copy_(bias)
    return m


def _expected(bias, temp, top_k=None, top_p=None):
    p = ref.filtered_probs(bias[None].double(), torch.tensor([temp], dtype=torch.float64), top_k or 0, top_p or 1.0)[0]
    return p / p.sum()


@pytest.mark.parametrize("impl", ["native", "reference"])
@pytest.mark.parametrize("temp,top_k,top_p", [(1.0, None, None), (0.5, None, None), (2.0, 4, None),
                                              (1.0, None, 0.8), (0.7, 6, 0.9)])
def test_frequencies_follow_the_filtered_softmax(impl, temp, top_k, top_p):
    if impl == "native" and not _native.native_available("lstm_sample", "cpu"):
        pytest.skip("native lstm_sample not built")
    g = torch.Generator().manual_seed(1)
    bias = torch.randn(12, generator=g, dtype=torch.float64) * 1.5
    m = _bias_model(bias)
    b, steps = 400, 100
    tokens, _ = m.sample(torch.zeros(b, 1, dtype=torch.long), steps, temperature=temp, top_k=top_k, top_p=top_p,
                         generator=g, impl=impl)
    counts = torch.bincount(tokens.flatten(), minlength=12).double()
    n = counts.sum()
    expected = _expected(bias, temp, top_k, top_p)
    assert counts[expected == 0].sum() == 0                       # filtered tokens are never drawn
    cos = torch.nn.functional.cosine_similarity(counts / n, expected, dim=0)
    assert cos > 0.99
    kept = expected > 0
    chi2 = ((counts[kept] - n * expected[kept]) ** 2 / (n * expected[kept])).sum().item()
    dof = int(kept.sum()) - 1
    # about 5 standard deviations above the chi-square mean: fails only if the distribution is wrong
    assert chi2 < dof + 5 * math.sqrt(2 * dof) + 10, (chi2, dof)


@pytest.mark.parametrize("impl", ["native", "reference"])
def test_zero_temperature_and_greedy_take_the_argmax_per_row(impl):
    if impl == "native" and not _native.native_available("lstm_sample", "cpu"):
        pytest.skip("native lstm_sample not built")
    bias = torch.tensor([0.1, 2.0, -1.0, 1.9], dtype=torch.float64)
    m = _bias_model(bias)
    prime = torch.zeros(3, 1, dtype=torch.long)
    temps = torch.tensor([0.0, 1e9, 0.0], dtype=torch.float64)   # row 1: almost uniform
    tokens, _ = m.sample(prime, 400, temperature=temps, impl=impl, generator=torch.Generator().manual_seed(0))
    assert (tokens[0] == 1).all() and (tokens[2] == 1).all()
    assert torch.bincount(tokens[1], minlength=4).min() > 60           # the hot row is honoured per row
    greedy, _ = m.sample(prime, 5, greedy=True, impl=impl)
    assert (greedy == 1).all()


@pytest.mark.parametrize("impl,hidden", [("native", 32), ("native", 30), ("reference", 32)])
def test_state_carries_over(impl, hidden):
    if impl == "native" and not _native.native_available("lstm_sample", "cpu"):
        pytest.skip("native lstm_sample not built")
    m = _model(hidden=hidden)
    prime = torch.randint(0, 40, (3, 4))
    half = 200 if impl == "native" else 60      # the Python reference is slow; the rule is the same
    u = torch.rand(2 * half, 3, dtype=torch.float64)
    whole, (h, c) = m.sample(prime, 2 * half, uniforms=u, impl=impl)
    first, state = m.sample(prime, half, uniforms=u[:half], impl=impl)
    second, (h2, c2) = m.sample(first[:, -1:], half, uniforms=u[half:], state=state, impl=impl)
    assert torch.equal(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(h2, h)
    # and with a seeded generator: two halves draw what the whole draws (uniforms are time-major)
    whole = m.sample(prime, 2 * half, generator=torch.Generator().manual_seed(5), impl=impl)[0]
    g = torch.Generator().manual_seed(5)
    first, state = m.sample(prime, half, generator=g, impl=impl)
    second, _ = m.sample(first[:, -1:], half, generator=g, state=state, impl=impl)
    assert torch.equal(torch.cat([first, second], 1), whole)


@native
@pytest.mark.parametrize("b", [1, 3, 5, 80])
def test_thread_count_does_not_change_the_result(b):
    # each hidden unit's gates are summed by one thread in a fixed order: 1 and 2 threads agree bit for
    # bit, in the row loop (b <= 4) and the column loop (80 rows: several row chunks and a lone vector)
    m = _model(dtype=torch.float32, hidden=64)
    prime = torch.randint(0, 40, (b, 3))
    u = torch.rand(80, b, dtype=torch.float64)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, (h1, c1) = m.sample(prime, 80, uniforms=u, impl="native")
        torch.set_num_threads(2)
        two, (h2, c2) = m.sample(prime, 80, uniforms=u, impl="native")
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two) and torch.equal(h1, h2) and torch.equal(c1, c2)


@native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_row_does_not_depend_on_the_rest_of_the_batch(dtype):
    # the row loop (B <= 4) and the column loop (more rows) do the same arithmetic per row: a row
    # sampled alone, among 3 and among 80 gives the same tokens and state, bit for bit
    m = _model(dtype=dtype, hidden=64)
    prime = torch.randint(0, 40, (80, 4))
    u = torch.rand(60, 80, dtype=torch.float64)
    t = torch.linspace(0.5, 1.5, 80, dtype=dtype)
    many, (hm, cm) = m.sample(prime, 60, uniforms=u, temperature=t, impl="native")
    for rows in ([7], [0, 41, 79]):
        few, (hf, cf) = m.sample(prime[rows], 60, uniforms=u[:, rows], temperature=t[rows], impl="native")
        assert torch.equal(few, many[rows])
        assert torch.equal(hf, hm[:, rows]) and torch.equal(cf, cm[:, rows])


def _ulp_error(y: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    t32 = truth.float().abs()
    ulp = (torch.nextafter(t32, torch.tensor(float("inf"))) - t32).double()
    return (y.double() - truth).abs() / ulp


@native
@pytest.mark.parametrize("fn,ref,bound", [("exp", torch.exp, 1.01), ("sigmoid", torch.sigmoid, 2.5),
                                          ("tanh", torch.tanh, 1.1)])
def test_cell_math_is_accurate(fn, ref, bound):
    # the float32 kernels' inline exp / sigmoid / tanh (csrc/common/cpu_vec_math.h), against float64:
    # every 499th float32 bit pattern, plus [-2, 2] densely (tanh switches formula at |x| = 0.9)
    from genfast import _C
    if "cpu_arch=avx2" not in _C.build_info():
        pytest.skip("the inline functions are AVX2 code; this build uses ATen's generic ones (libm's accuracy)")
    x = torch.arange(-2**31, 2**31, 499, dtype=torch.int64).to(torch.int32).view(torch.float32)
    x = torch.cat([x[torch.isfinite(x)], torch.linspace(-2, 2, 1_000_003)])
    if fn == "exp":
        x = x[(x > -87.3) & (x < 88.3)]  # normal results; beyond, the kernels clamp (documented)
    truth = ref(x.double())
    normal = truth.abs() >= torch.finfo(torch.float32).tiny
    err = _ulp_error(torch.ops.genfast._vec_math(x, fn), truth)[normal]
    assert err.max().item() <= bound, f"{fn}: {err.max().item():.3f} ulp"


@native
def test_cell_math_special_values():
    f = torch.ops.genfast._vec_math
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 20.0, -20.0, 1e-30, -1e-30, 0.9, -0.9])
    t, s = f(x, "tanh"), f(x, "sigmoid")
    assert t[0].isnan() and s[0].isnan() and f(x[:1], "exp")[0].isnan()
    assert t[1:3].tolist() == [1.0, -1.0] and t[5:7].tolist() == [1.0, -1.0]
    assert t[3].item() == 0.0 and torch.signbit(t[4]) and t[7:9].tolist() == x[7:9].tolist()
    assert t[9].item() == -t[10].item()
    assert s[1].item() == 1.0 and 0.0 <= s[2].item() < 1e-37 and s[3].item() == 0.5 and s[5].item() == 1.0


def test_manual_seed_controls_the_text():
    m = _model(dtype=torch.float32)
    prime = torch.randint(0, 40, (2, 3))
    torch.manual_seed(3)
    a = m.sample(prime, 50)[0]
    torch.manual_seed(3)
    b = m.sample(prime, 50)[0]
    torch.manual_seed(4)
    c = m.sample(prime, 50)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


@native
def test_opcheck():
    m = _model(hidden=8, layers=2)
    layers = m.layer_weights()
    cols = [list(col) for col in zip(*layers)]
    b = 3
    args = (m.embedding.weight.detach(), *[[t.detach() for t in col] for col in cols], m.proj.weight.detach(),
            m.proj.bias.detach(), torch.randint(0, 40, (b, 2)), torch.zeros(2, b, 8, dtype=torch.float64),
            torch.zeros(2, b, 8, dtype=torch.float64), torch.ones(b, dtype=torch.float64),
            torch.rand(7, b, dtype=torch.float64), 5, 0.9)
    torch.library.opcheck(torch.ops.genfast.lstm_sample.default, args)
    for fn in ("exp", "sigmoid", "tanh"):
        torch.library.opcheck(torch.ops.genfast._vec_math.default, (torch.randn(37), fn))


def test_bad_input_names_the_argument():
    m = _model(dtype=torch.float32)
    prime = torch.randint(0, 40, (2, 3))
    with pytest.raises(ValueError, match="prime to be at least one token"):
        m.sample(torch.zeros(2, 0, dtype=torch.long), 5)
    with pytest.raises(ValueError, match=r"prime holds ids outside \[0, 40\)"):
        m.sample(torch.tensor([[3, 40]]), 5)
    with pytest.raises(ValueError, match="temperature to be finite and >= 0"):
        m.sample(prime, 5, temperature=-0.5)
    with pytest.raises(ValueError, match="temperature to be finite and >= 0"):
        m.sample(prime, 5, temperature=float("nan"))
    with pytest.raises(ValueError, match=r"temperature to be finite and >= 0 \(in torch.float32\), got 1e\+39"):
        m.float().sample(prime, 5, temperature=1e39)  # finite in Python, inf in float32
    with pytest.raises(ValueError, match="temperature to be finite and >= 0"):
        m.sample(prime, 5, temperature=torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match=r"top_p to be in \(0, 1\]"):
        m.sample(prime, 5, top_p=0.0)
    with pytest.raises(ValueError, match=r"top_p to be in \(0, 1\]"):
        m.sample(prime, 5, top_p=1.5)
    with pytest.raises(ValueError, match="steps to be an integer >= 0"):
        m.sample(prime, -1)
    with pytest.raises(ValueError, match="top_k to be None or an integer >= 0"):
        m.sample(prime, 5, top_k=-2)
    with pytest.raises(ValueError, match=r"temperature to be a float or a \(B,\)"):
        m.sample(prime, 5, temperature=torch.ones(3))
    with pytest.raises(ValueError, match="uniforms to be of shape"):
        m.sample(prime, 5, uniforms=torch.rand(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="CharLSTM: hidden_size must be a positive integer"):
        CharLSTM(10, hidden_size=0)


def test_steps_zero_consumes_the_prime():
    m = _model()
    prime = torch.randint(0, 40, (2, 3))
    tokens, (h, c) = m.sample(prime, 0)
    assert tokens.shape == (2, 0)
    _, (h_ref, c_ref) = m(prime)
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)


def test_charlstm_loads_an_nn_lstm_state_dict_and_matches_its_forward():
    lstm = torch.nn.LSTM(16, 32, 2, batch_first=True)
    m = CharLSTM(40, 16, 32, 2)
    m.lstm.load_state_dict(lstm.state_dict())
    assert set(lstm.state_dict()) == {k.removeprefix("lstm.") for k in m.state_dict() if k.startswith("lstm.")}
    tokens = torch.randint(0, 40, (3, 7))
    logits, _ = m(tokens)
    out, _ = lstm(m.embedding(tokens))
    torch.testing.assert_close(logits, m.proj(out))
    # the sampler's own LSTM step agrees with nn.LSTM's
    _, (h, c) = m.sample(tokens, 0, impl="reference")
    _, (h2, c2) = lstm(m.embedding(tokens))
    torch.testing.assert_close(h, h2)


@native
@pytest.mark.parametrize("b", [1, 40])
def test_packed_weights_reuse_one_cached_block(b):
    # each call re-packs the weights into scratch from genfast's CPU cache: the second call takes the
    # block the first one returned instead of mapping fresh memory
    import genfast
    m = _model(dtype=torch.float32, hidden=64)
    prime = torch.randint(0, 40, (b, 2))
    genfast.empty_cache()
    m.sample(prime, 5, impl="native")
    held = genfast.cpu_cache_bytes()
    assert held >= 4 * 64 * (64 + 128) * 4  # at least both layers' packed weights
    m.sample(prime, 5, impl="native")
    assert genfast.cpu_cache_bytes() == held
