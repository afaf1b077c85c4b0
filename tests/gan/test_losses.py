"""genfast.gan.losses against hand-written formulas, the gradient penalty against an independent
per-sample float64 computation and gradcheck, and the pitfalls the issue names."""

import math

import pytest
import torch

from genfast.checks import ArgumentError
from genfast.gan import losses
from genfast.gan.networks import build_discriminator


def sig(x):
    return 1 / (1 + math.exp(-x))


LOGITS_R = [2.0, -0.5, 0.3, 4.0]
LOGITS_F = [-1.0, 0.7, -3.0, 0.1]


def test_minimax_discriminator_loss_is_the_formula():
    r, f = torch.tensor(LOGITS_R, dtype=torch.float64), torch.tensor(LOGITS_F, dtype=torch.float64)
    want = -(sum(math.log(sig(x)) for x in LOGITS_R) / 4 + sum(math.log(1 - sig(x)) for x in LOGITS_F) / 4)
    assert losses.d_loss_minimax(r, f).item() == pytest.approx(want, rel=1e-12)


def test_generator_losses_are_the_formulas():
    f = torch.tensor(LOGITS_F, dtype=torch.float64)
    assert losses.g_loss_saturating(f).item() == pytest.approx(sum(math.log(1 - sig(x)) for x in LOGITS_F) / 4,
                                                               rel=1e-12)
    assert losses.g_loss_nonsaturating(f).item() == pytest.approx(-sum(math.log(sig(x)) for x in LOGITS_F) / 4,
                                                                  rel=1e-12)


def test_wgan_losses_are_the_formulas():
    r, f = torch.tensor(LOGITS_R), torch.tensor(LOGITS_F)
    assert losses.critic_loss_wgan(r, f).item() == pytest.approx(sum(LOGITS_F) / 4 - sum(LOGITS_R) / 4, rel=1e-6)
    assert losses.g_loss_wgan(f).item() == pytest.approx(-sum(LOGITS_F) / 4, rel=1e-6)


def test_logit_losses_stay_finite_where_sigmoid_saturates():
    f = torch.tensor([-200.0, 200.0], requires_grad=True)
    for loss in (losses.g_loss_saturating(f), losses.g_loss_nonsaturating(f), losses.d_loss_minimax(f, f)):
        assert torch.isfinite(loss)
        g, = torch.autograd.grad(loss, f)
        assert torch.isfinite(g).all()
    # the saturating loss's gradient vanishes where D rejects the fakes; the non-saturating one's does not
    x = torch.tensor([-10.0], requires_grad=True)
    g_sat, = torch.autograd.grad(losses.g_loss_saturating(x), x)
    g_ns, = torch.autograd.grad(losses.g_loss_nonsaturating(x), x)
    assert abs(g_sat.item()) < 1e-4 < 0.99 < abs(g_ns.item())


def test_losses_by_name_refuse_unknown_names_listing_the_valid_ones():
    with pytest.raises(ArgumentError, match="minimax, nonsaturating, wgan, wgan-gp"):
        losses.generator_loss("lsgan", torch.zeros(2))


class Quadratic(torch.nn.Module):
    """A critic whose input gradient is known per sample: f(x) = sum(w * x^2) + sum(v * x) over all dims."""

    def __init__(self, shape, dtype=torch.float64):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.w = torch.nn.Parameter(torch.randn(shape, generator=g, dtype=dtype))
        self.v = torch.nn.Parameter(torch.randn(shape, generator=g, dtype=dtype))

    def forward(self, x):
        return (self.w * x.square() + self.v * x).flatten(1).sum(1)


def independent_penalty(critic, real, fake, alpha, weight):
    """One sample at a time, float64: x_hat_i, its own gradient, its own norm over all dims."""
    total = 0.0
    for i in range(len(real)):
        x = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).detach().double()[None].requires_grad_(True)
        g, = torch.autograd.grad(critic(x).sum(), x)
        total += (math.sqrt(float((g.double() ** 2).sum())) - 1) ** 2
    return weight * total / len(real)


def test_gradient_penalty_matches_a_per_sample_float64_computation():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(5, 2, 3, 3, generator=g, dtype=torch.float64), torch.randn(5, 2, 3, 3, generator=g,
                                                                                         dtype=torch.float64)
    alpha = torch.rand(5, generator=g, dtype=torch.float64)
    critic = Quadratic((2, 3, 3))
    got = losses.gradient_penalty(critic, real, fake, alpha=alpha, weight=10.0)
    assert got.item() == pytest.approx(independent_penalty(critic, real, fake, alpha, 10.0), rel=1e-10)
    # the per-pixel norm and the batch-wide alpha (the known pitfalls) give other values
    per_pixel = 10.0 * sum(((critic.w * 2 * x + critic.v).abs() - 1).square().mean().item()
                           for x in (alpha.reshape(5, 1, 1, 1) * real + (1 - alpha.reshape(5, 1, 1, 1)) * fake))
    assert abs(per_pixel / 5 - got.item()) > 1e-3
    one_alpha = losses.gradient_penalty(critic, real, fake, alpha=alpha[:1].expand(5).clone(), weight=10.0)
    assert abs(one_alpha.item() - got.item()) > 1e-3


def test_gradient_penalty_draws_one_alpha_per_sample():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return x.flatten(1).sum(1)

    real, fake = torch.ones(6, 1, 2, 2), torch.zeros(6, 1, 2, 2)
    losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    x_hat = seen[0]
    per_sample = x_hat.flatten(1)
    assert torch.equal(per_sample, per_sample[:, :1].expand_as(per_sample))      # one value within a sample
    assert len(set(per_sample[:, 0].tolist())) == 6                              # different across samples


def test_gradient_penalty_gradcheck():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g,
                                                                                  dtype=torch.float64)
    alpha = torch.rand(3, generator=g, dtype=torch.float64)
    w0 = torch.randn(4, generator=g, dtype=torch.float64)
    v0 = torch.randn(4, generator=g, dtype=torch.float64)

    def penalty(w, v):
        return losses.gradient_penalty(lambda x: (w * x.square() + v * x).sum(1), real, fake, alpha=alpha,
                                       weight=10.0)

    assert torch.autograd.gradcheck(penalty, (w0.requires_grad_(), v0.requires_grad_()))


def test_gradient_penalty_trains_a_real_critic_through_double_backward():
    D = build_discriminator({"arch": "dcgan", "in_shape": [1, 28, 28], "norm": "instance", "minibatch_stddev": 4,
                             "width": 8})
    real, fake = torch.randn(8, 1, 28, 28), torch.randn(8, 1, 28, 28)
    gp = losses.gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(0))
    gp.backward()
    grads = {n: p.grad for n, p in D.named_parameters()}
    assert grads.pop("head.bias") is None          # the input gradient does not depend on the last bias
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert all(float(g.abs().sum()) > 0 for g in grads.values())


def test_gradient_penalty_is_safe_where_the_gradient_is_zero():
    w = torch.zeros(3, requires_grad=True)
    gp = losses.gradient_penalty(lambda x: (w * x).sum(1), torch.randn(4, 3), torch.randn(4, 3))
    assert gp.item() == pytest.approx(10.0)      # ||0|| = 0: (0 - 1)^2 * 10
    gp.backward()
    assert torch.isfinite(w.grad).all()


def test_gradient_penalty_refuses_batch_norm_and_bad_alpha():
    D = build_discriminator({"arch": "mlp", "in_shape": [2], "norm": "batch"})
    with pytest.raises(ArgumentError, match="batch norm"):
        losses.gradient_penalty(D, torch.randn(4, 2), torch.randn(4, 2))
    with pytest.raises(ArgumentError, match=r"one value per sample, shape \(4,\)"):
        losses.gradient_penalty(lambda x: x.sum(1), torch.randn(4, 2), torch.randn(4, 2), alpha=torch.rand(1))
    with pytest.raises(ArgumentError, match="weight"):
        losses.gradient_penalty(lambda x: x.sum(1), torch.randn(4, 2), torch.randn(4, 2), weight=-1.0)


def test_packed_critic_norm_is_per_pack():
    """A PacGAN critic scores pack samples at once: the norm is over the pack's inputs."""
    alpha = torch.full((4,), 0.5, dtype=torch.float64)
    real, fake = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)

    def critic(x):      # one score per pair: 3 * sum over both samples' features -> gradient 3 everywhere
        return 3 * x.reshape(2, 4).sum(1)

    got = losses.gradient_penalty(critic, real, fake, alpha=alpha, weight=1.0)
    assert got.item() == pytest.approx((math.sqrt(4 * 9) - 1) ** 2)


def test_r1_is_the_formula():
    critic = Quadratic((3,))
    real = torch.randn(5, 3, dtype=torch.float64)
    want = 0.5 * 2.0 * ((2 * critic.w * real + critic.v) ** 2).sum(1).mean()
    assert losses.r1_penalty(critic, real, gamma=2.0).item() == pytest.approx(want.item(), rel=1e-12)


def test_clipped_critic_weights_stay_in_range():
    D = build_discriminator({"arch": "mlp", "in_shape": [2]})
    opt = torch.optim.RMSprop(D.parameters(), lr=0.5)
    for _ in range(3):
        loss = losses.critic_loss_wgan(D(torch.randn(16, 2)), D(torch.randn(16, 2) + 3))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.clip_weights(D, 0.01)
        assert max(float(p.detach().abs().max()) for p in D.parameters()) <= 0.01
    with pytest.raises(ArgumentError, match="clip"):
        losses.clip_weights(D, -0.01)


def test_penalties_under_a_gradient_scaler_equal_the_unscaled_ones():
    """AMP's recipe: the critic's output sum is scaled before the input gradient and the gradient
    unscaled after; with a power-of-two scale that is exact, so the penalties are bit-equal."""
    from genfast.gan.losses import gradient_penalty, r1_penalty

    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1), torch.nn.Flatten(0))
    real, fake = torch.randn(8, 6), torch.randn(8, 6)
    alpha = torch.rand(8)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    assert scaler.is_enabled()
    for f in (lambda s: gradient_penalty(critic, real, fake, alpha=alpha, scaler=s),
              lambda s: r1_penalty(critic, real, scaler=s)):
        plain, scaled = f(None), f(scaler)
        assert torch.equal(plain, scaled)
        params = list(critic.parameters())[:3]      # (the last bias does not change an input gradient)
        g_plain = torch.autograd.grad(plain, params)
        g_scaled = torch.autograd.grad(scaled, params)
        assert all(torch.equal(a, b) for a, b in zip(g_plain, g_scaled))
