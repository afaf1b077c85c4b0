"""GAN objectives, one formula each, all on the discriminator's raw outputs (logits or critic scores).

Probabilities are never formed: log D = log sigmoid(l) = -softplus(-l) and log(1 - D) = -softplus(l),
which stay finite where sigmoid would round to 0 or 1 (a confident D: |l| > ~17 in float32).

    minimax (Goodfellow et al. 2014)   D maximises E log D(x) + E log(1 - D(G(z)))
                                        G minimises E log(1 - D(G(z)))          "saturating"
    non-saturating                      G minimises -E log D(G(z))
    WGAN (Arjovsky et al. 2017)         critic minimises E f(G(z)) - E f(x), weights clipped to [-c, c]
                                        G minimises -E f(G(z))
    WGAN-GP (Gulrajani et al. 2017)     WGAN critic loss + lambda E (||grad f(x_hat)||_2 - 1)^2
    R1 (Mescheder et al. 2018)          gamma / 2 E ||grad D(x)||^2 on real data

Why the saturating form is kept: its gradient with respect to the logit is -sigmoid(l), which
vanishes when D confidently rejects the fakes (l -> -inf), exactly early in training; the
non-saturating form's gradient, -(1 - sigmoid(l)), is largest there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genfast.checks import ArgumentError, check_number, check_tensor

LOSSES = ("minimax", "nonsaturating", "wgan", "wgan-gp")


# ------------------------------------------------------------------------- minimax / non-saturating

def d_loss_minimax(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-(E log D(x) + E log(1 - D(G(z)))): the discriminator's loss of the minimax game (also the
    non-saturating GAN's; only the generator's loss differs)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """E log(1 - D(G(z))), the generator's side of the minimax game (it minimises this)."""
    return -F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E log D(G(z)): the non-saturating generator loss (same fixed point, strong early gradient)."""
    return F.softplus(-fake_logits).mean()


# ---------------------------------------------------------------------------------------- WGAN

def critic_loss_wgan(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E f(G(z)) - E f(x): the critic minimises this; its negative is the Wasserstein estimate."""
    return fake_scores.mean() - real_scores.mean()


def g_loss_wgan(fake_scores: torch.Tensor) -> torch.Tensor:
    """-E f(G(z))."""
    return -fake_scores.mean()


@torch.no_grad()
def clip_weights(critic: torch.nn.Module, clip: float) -> None:
    """Clamp every parameter of `critic` to [-clip, clip] in place (WGAN's crude Lipschitz bound)."""
    clip = check_number(clip, "clip", positive=True)
    for p in critic.parameters():
        p.clamp_(-clip, clip)


# ------------------------------------------------------------------------------------ penalties

def check_no_batch_norm(critic: torch.nn.Module, name: str = "critic") -> None:
    """Refuse a critic with batch norm: the gradient penalty is defined per sample, and batch norm
    makes each score depend on the whole batch (Gulrajani et al. 2017, 4: use layer norm or none)."""
    for module_name, m in critic.named_modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            raise ArgumentError(name, f"the gradient penalty needs per-sample critic scores, but {name} has batch "
                                      f"norm ({module_name or 'itself'}: {type(m).__name__}); use layer, instance or "
                                      f"no normalisation in a WGAN-GP critic")


def _safe_norm(v: torch.Tensor) -> torch.Tensor:
    """The Euclidean norm of each row of v (M, K), with gradient 0 (not NaN) where a row is all zero.

    d sqrt(s)/ds = 1 / (2 sqrt(s)) is infinite at s = 0, and 0 * inf = NaN in the backward pass. The
    inner where keeps sqrt's input away from 0 on that branch; the outer one returns exactly 0 there."""
    sq = v.square().sum(dim=1)
    zero = sq == 0
    return torch.where(zero, torch.zeros_like(sq), torch.where(zero, torch.ones_like(sq), sq).sqrt())


def _input_grad(scores: torch.Tensor, x: torch.Tensor, scaler=None) -> torch.Tensor:
    """d scores.sum() / d x with create_graph=True. Under an enabled AMP GradScaler the sum is
    scaled first, so that float16 gradients do not underflow, and the gradient unscaled after
    (PyTorch's AMP recipe for gradient penalties); an inf or NaN then reaches the scaled loss and
    the scaler skips that step."""
    if scaler is not None and scaler.is_enabled():
        grad, = torch.autograd.grad(scaler.scale(scores.sum()), x, create_graph=True)
        return grad / scaler.get_scale()
    grad, = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad


def _input_grad_norms(critic, x: torch.Tensor, scaler=None) -> torch.Tensor:
    """The norm of d critic(x) / d x for every critic output, over all the input dimensions that
    output sees (one sample; `pack` samples for a PacGAN critic, whose M outputs see N / M rows each),
    with create_graph=True so that the penalty can be trained through."""
    scores = critic(x)
    grad = _input_grad(scores, x, scaler)
    m = scores.shape[0]
    if m == 0 or x.shape[0] % m:
        raise ArgumentError("critic", f"expected a critic output per sample or per pack of samples, got "
                                      f"{m} outputs for {x.shape[0]} inputs")
    return _safe_norm(grad.reshape(m, -1))


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, *, alpha: torch.Tensor | None = None,
                     weight: float = 10.0, generator: torch.Generator | None = None, scaler=None) -> torch.Tensor:
    """WGAN-GP's penalty: weight * E (||grad critic(x_hat)||_2 - 1)^2 with x_hat = a real + (1 - a) fake.

    alpha: one a ~ U(0, 1) per sample (shape (N,); drawn from `generator` when None), never one for
    the whole batch. The norm is taken per sample over all its dimensions (C, H, W), never per pixel.
    A critic with batch norm is refused (check_no_batch_norm). `fake` is detached: the penalty
    trains the critic only. `scaler`: the AMP GradScaler of the training loop, if any (see _input_grad)."""
    check_tensor(real, "real", floating=True)
    check_tensor(fake, "fake", floating=True)
    if real.shape != fake.shape:
        raise ArgumentError("fake", f"expected the shape of real, {tuple(real.shape)}, got {tuple(fake.shape)}")
    weight = check_number(weight, "weight")
    if isinstance(critic, torch.nn.Module):
        check_no_batch_norm(critic)
    n = real.shape[0]
    if alpha is None:
        alpha = torch.rand(n, generator=generator, dtype=real.dtype, device=real.device)
    check_tensor(alpha, "alpha", floating=True)
    if alpha.shape != (n,):
        raise ArgumentError("alpha", f"expected one value per sample, shape ({n},), got {tuple(alpha.shape)}")
    a = alpha.reshape(n, *([1] * (real.dim() - 1)))
    x_hat = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    norms = _input_grad_norms(critic, x_hat, scaler)
    return weight * (norms - 1).square().mean()


def r1_penalty(discriminator, real: torch.Tensor, *, gamma: float = 10.0, scaler=None) -> torch.Tensor:
    """R1: gamma / 2 * E ||grad D(x)||^2 on real samples (the norm per sample, over all dimensions).
    `scaler`: the AMP GradScaler of the training loop, if any."""
    check_tensor(real, "real", floating=True)
    gamma = check_number(gamma, "gamma")
    x = real.detach().requires_grad_(True)
    scores = discriminator(x)
    grad = _input_grad(scores, x, scaler)
    m = scores.shape[0]
    return 0.5 * gamma * grad.reshape(m, -1).square().sum(dim=1).mean()


# ------------------------------------------------------------------------------ by loss name

def discriminator_loss(loss: str, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """The discriminator's / critic's loss for `loss` (one of LOSSES), without penalties."""
    if loss in ("minimax", "nonsaturating"):
        return d_loss_minimax(real_out, fake_out)
    if loss in ("wgan", "wgan-gp"):
        return critic_loss_wgan(real_out, fake_out)
    raise ArgumentError("loss", f"expected one of {', '.join(LOSSES)}, got {loss!r}")


def generator_loss(loss: str, fake_out: torch.Tensor) -> torch.Tensor:
    """The generator's loss for `loss` (one of LOSSES)."""
    if loss == "minimax":
        return g_loss_saturating(fake_out)
    if loss == "nonsaturating":
        return g_loss_nonsaturating(fake_out)
    if loss in ("wgan", "wgan-gp"):
        return g_loss_wgan(fake_out)
    raise ArgumentError("loss", f"expected one of {', '.join(LOSSES)}, got {loss!r}")


__all__ = ["LOSSES", "d_loss_minimax", "g_loss_saturating", "g_loss_nonsaturating", "critic_loss_wgan",
           "g_loss_wgan", "clip_weights", "check_no_batch_norm", "gradient_penalty", "r1_penalty",
           "discriminator_loss", "generator_loss"]
