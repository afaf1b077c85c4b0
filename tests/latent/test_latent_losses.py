"""genfast.latent.losses against float64 hand computations; reparameterisation gradients by gradcheck;
the dense VAE's loss equals pytorch/examples' on the same weights; the denoising noise."""

import math

import numpy as np
import pytest
import torch

from genfast import latent
from genfast.latent import reference


def data(seed=0, n=5, d=12, k=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 3, 4, generator=g, dtype=torch.float64)
    logits = torch.randn(n, 1, 3, 4, generator=g, dtype=torch.float64) * 2
    mean = torch.randn(n, k, generator=g, dtype=torch.float64)
    logvar = torch.randn(n, k, generator=g, dtype=torch.float64) * 0.5
    return x, logits, mean, logvar


def test_negative_elbo_matches_a_float64_hand_computation():
    x, logits, mean, logvar = data()
    X, L, M, V = (t.numpy() for t in (x, logits, mean, logvar))
    p = 1 / (1 + np.exp(-L))
    n = len(X)
    bce = -sum(X[i].ravel()[j] * math.log(p[i].ravel()[j]) + (1 - X[i].ravel()[j]) * math.log(1 - p[i].ravel()[j])
               for i in range(n) for j in range(X[i].size)) / n
    kl = sum(0.5 * (M[i, j] ** 2 + math.exp(V[i, j]) - 1 - V[i, j]) for i in range(n) for j in range(M.shape[1])) / n
    for beta in (1.0, 0.25, 4.0):
        total, rec, kld = latent.negative_elbo(logits, x, mean, logvar, beta=beta)
        assert abs(float(rec) - bce) < 1e-12 * max(1, bce) and abs(float(kld) - kl) < 1e-12 * max(1, kl)
        assert abs(float(total) - (bce + beta * kl)) < 1e-11
    sigma = 0.3
    gauss = sum(0.5 * ((X[i].ravel()[j] - p[i].ravel()[j]) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
                for i in range(n) for j in range(X[i].size)) / n
    total, rec, _ = latent.negative_elbo(logits, x, mean, logvar, likelihood="gaussian", sigma=sigma)
    assert abs(float(rec) - gauss) < 1e-11


def test_reparameterisation_gradients_by_gradcheck():
    _, _, mean, logvar = data(1)
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mean.requires_grad_(True)
    logvar.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m, v: latent.reparameterize(m, v, noise=noise), (mean, logvar))
    assert torch.autograd.gradcheck(latent.kl_divergence, (mean, logvar))
    x, logits, _, _ = data(3)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda l, m, v: latent.negative_elbo(l, x, latent.reparameterize(m, v, noise=noise) * 0 + m, v, beta=0.5)[0],
        (logits, mean, logvar))
    # dz/dmean = 1, dz/dlogvar = exp(logvar / 2) * noise / 2
    z = latent.reparameterize(mean, logvar, noise=noise)
    gm, gv = torch.autograd.grad(z.sum(), (mean, logvar))
    assert torch.equal(gm, torch.ones_like(mean))
    torch.testing.assert_close(gv, torch.exp(logvar / 2) * noise / 2, rtol=0, atol=1e-15)


def test_reparameterised_samples_have_the_posteriors_moments():
    mean, logvar = torch.tensor([[1.5, -2.0]]).expand(200_000, 2), torch.tensor([[0.0, math.log(0.25)]]).expand(200_000, 2)
    z = latent.reparameterize(mean, logvar, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.5, -2.0]), atol=0.01, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 0.5]), atol=0.01, rtol=0)


def test_dense_vae_loss_equals_pytorch_examples_on_the_same_weights():
    torch.manual_seed(0)
    theirs = reference.VAE()
    ours = latent.build("vae")
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(16, 1, 28, 28)
    torch.manual_seed(5)
    recon, mu, logvar = theirs(x)
    want = reference.loss_function(recon, x, mu, logvar)
    torch.manual_seed(5)
    ours.train()
    logits, mean, lv = ours(x)
    got, _, _ = latent.negative_elbo(logits, x, mean, lv)
    torch.testing.assert_close(got * len(x), want, rtol=1e-5, atol=0)
    torch.testing.assert_close(torch.sigmoid(logits).flatten(1), recon, rtol=1e-6, atol=1e-6)


def test_noise():
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    noisy = latent.add_noise(x, 0.5, generator=torch.Generator().manual_seed(1))
    e = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(noisy, (x + 0.5 * e).clamp(0, 1))
    sp = latent.add_noise(x, 0.2, "salt_pepper", generator=torch.Generator().manual_seed(2))
    changed = sp != x
    assert 0.17 < float(changed.double().mean()) < 0.23 and set(sp[changed].unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="noise_factor: expected a number <= 1.0"):
        latent.add_noise(x, 1.5, "salt_pepper")
    with pytest.raises(ValueError, match="noise: expected one of gaussian, salt_pepper"):
        latent.add_noise(x, 0.1, "speckle")


def test_free_bits_floor_each_latents_batch_mean_kl_and_return_the_true_kl():
    x, logits, mean, logvar = data(3, k=4)
    M, V = mean.numpy(), logvar.numpy()
    n = len(M)
    per_latent = [sum(0.5 * (M[i, j] ** 2 + math.exp(V[i, j]) - 1 - V[i, j]) for i in range(n)) / n
                  for j in range(M.shape[1])]
    floor = sorted(per_latent)[1] + 1e-3                  # two latents below it, two above
    total, rec, kl = latent.negative_elbo(logits, x, mean, logvar, free_bits=floor, beta=2.0)
    assert abs(float(kl) - sum(per_latent)) < 1e-11      # the true KL
    assert abs(float(total) - (float(rec) + 2.0 * sum(max(floor, v) for v in per_latent))) < 1e-11
    mean.requires_grad_(True)
    total, _, _ = latent.negative_elbo(logits, x, mean, logvar, free_bits=floor)
    total.backward()
    below = [j for j, v in enumerate(per_latent) if v < floor]
    assert len(below) == 2 and torch.all(mean.grad[:, below] == 0)     # no pull on a latent under its floor
    with pytest.raises(ValueError, match="free_bits"):
        latent.negative_elbo(logits, x, mean, logvar, free_bits=-1.0)
