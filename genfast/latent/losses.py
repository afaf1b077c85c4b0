"""The losses of genfast.latent, one formula each, in nats per image (summed over pixels and latent
dimensions, averaged over the batch).

    reconstruction (Bernoulli)   BCE(x, sigmoid(logits)) = sum softplus(l) - x * l
    reconstruction (Gaussian)    sum (x - sigmoid(l))^2 / (2 sigma^2) + log(sigma) + log(2 pi) / 2
    KL(N(mean, exp(logvar)) || N(0, I)) = -1/2 sum (1 + logvar - mean^2 - exp(logvar))
    negative ELBO                = reconstruction + beta * KL
    reparameterisation           z = mean + exp(logvar / 2) * e, e ~ N(0, I)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genfast.checks import check_choice, check_number

LIKELIHOODS = ("bernoulli", "gaussian")


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, *, generator: torch.Generator | None = None,
                   noise: torch.Tensor | None = None) -> torch.Tensor:
    """z = mean + exp(logvar / 2) * e with e ~ N(0, I) (or the given `noise`): differentiable in mean and logvar."""
    if noise is None:
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype,
                            device=mean.device if generator is None else generator.device).to(mean.device)
    return mean + torch.exp(0.5 * logvar) * noise


def reconstruction(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli",
                   sigma: float = 1.0) -> torch.Tensor:
    """-log p(x | z) per image, averaged over the batch (nats)."""
    check_choice(likelihood, "likelihood", LIKELIHOODS)
    n = max(1, x.shape[0])
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
    check_number(sigma, "sigma", positive=True)
    d = x[0].numel()
    sq = (x - torch.sigmoid(logits)).pow(2).sum() / n
    return sq / (2 * sigma ** 2) + d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per image, averaged over the batch (nats)."""
    return -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp()) / max(1, mean.shape[0])


def negative_elbo(logits, x, mean, logvar, *, likelihood: str = "bernoulli", beta: float = 1.0,
                  sigma: float = 1.0, free_bits: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reconstruction + beta * KL, reconstruction, KL), each per image averaged over the batch.

    With `free_bits` > 0 the KL in the first term is Kingma et al.'s (2016) free-bits objective:
    each latent's KL, averaged over the batch, counts as at least `free_bits` nats, so the optimiser
    gains nothing by pushing a latent below that — what keeps an autoregressive decoder from
    ignoring z. The KL returned is the true one; only the training objective changes."""
    check_number(beta, "beta")
    check_number(free_bits, "free_bits", low=0.0)
    rec = reconstruction(logits, x, likelihood, sigma)
    kl = kl_divergence(mean, logvar)
    if free_bits == 0:
        return rec + beta * kl, rec, kl
    per_latent = (-0.5 * (1 + logvar - mean.pow(2) - logvar.exp())).flatten(1).mean(0)
    return rec + beta * per_latent.clamp(min=free_bits).sum(), rec, kl


def add_noise(x: torch.Tensor, factor: float, kind: str = "gaussian", *,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """The denoising AE's inputs. gaussian: clamp(x + factor * N(0, 1), 0, 1) (the material's noise
    factor); salt_pepper: a share `factor` of the pixels set to 0 or 1, half each."""
    check_choice(kind, "noise", ("gaussian", "salt_pepper"))
    check_number(factor, "noise_factor")
    dev = x.device if generator is None else generator.device
    if kind == "gaussian":
        e = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=dev).to(x.device)
        return (x + factor * e).clamp(0.0, 1.0)
    check_number(factor, "noise_factor", high=1.0)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=dev).to(x.device)
    out = x.clone()
    out[u < factor / 2] = 0.0
    out[(u >= factor / 2) & (u < factor)] = 1.0
    return out


__all__ = ["reparameterize", "reconstruction", "kl_divergence", "negative_elbo", "add_noise", "LIKELIHOODS"]
