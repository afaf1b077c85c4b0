"""How an autoencoder is judged: its held-out loss in nats per image.

For a VAE that is the negative ELBO, -E_q[log p(x|z)] + KL(q(z|x) || N(0, I)), estimated with one
z = mean + exp(logvar / 2) * e per image (e from a generator seeded with `seed`, so the number is
reproducible), with beta = 1 whatever beta trained the model: the ELBO is a bound on log p(x) only
then. pytorch/examples reports the same quantity (its test loss: summed BCE + KL over the test set,
divided by its size). For the autoencoders it is the reconstruction's negative log-likelihood; for
the denoising AE, of the clean image from a noisy one (noise seeded too).
"""

from __future__ import annotations

import torch

from genfast.checks import check_int
from genfast.latent.losses import add_noise, negative_elbo, reconstruction, reparameterize


@torch.no_grad()
def evaluate(model, images: torch.Tensor, config=None, *, batch_size: int = 1000, seed: int = 0) -> float:
    """Held-out loss of `model` on float images (N, C, H, W) in [0, 1], nats per image (see above).
    `config` (a latent.TrainConfig) gives the likelihood, sigma and the denoising noise."""
    from genfast.latent.train import TrainConfig

    config = config or TrainConfig(kind=getattr(model, "kind", "vae"))
    check_int(batch_size, "batch_size", 1)
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    total = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        if model.variational:
            mean, logvar = model.encode(x)
            z = reparameterize(mean, logvar, generator=gen)
            loss, _, _ = negative_elbo(model.decode(z, context=x), x, mean, logvar, likelihood=config.likelihood, beta=1.0,
                                       sigma=config.sigma)
        else:
            inp = add_noise(x, config.noise_factor, config.noise, generator=gen) if model.kind == "denoising" else x
            loss = reconstruction(model(inp), x, config.likelihood, config.sigma)
        total += float(loss) * len(x)
    return total / max(1, len(images))


@torch.no_grad()
def latent_codes(model, images: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """The code of every image, flattened (N, D): z for an AE, the mean of q(z|x) for a VAE."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        z = model.encode(images[start:start + batch_size].to(device))
        out.append((z[0] if isinstance(z, tuple) else z).flatten(1).cpu())
    return torch.cat(out)


__all__ = ["evaluate", "latent_codes"]
