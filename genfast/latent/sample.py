"""What a trained autoencoder does: save and load it, reconstruct, decode samples from the prior,
interpolate between two inputs, decode a grid over a 2-D latent space (the manifold), denoise.

    model = load("vae.safetensors")
    x_hat = model.reconstruct(x)                          # images in [0, 1]
    samples = sample_prior(model, 64, generator=g)        # VAEs: z ~ N(0, I)
    rows = interpolate(model, a, b, steps=10)             # decode((1 - t) z_a + t z_b)
    grid = manifold(model, 20)                            # 2-D VAEs: a 20 x 20 grid over the N(0, 1) quantiles
"""

from __future__ import annotations

import torch

from genfast.checks import ArgumentError, check_int
from genfast.latent.losses import reparameterize
from genfast.latent.networks import build
from genfast.training import weights

KIND = "latent"


def save_model(model, path, *, config: dict | None = None):
    """Safetensors weights with the model's kind, input shape, code size and training settings in the header."""
    return weights.save(path, dict(model.state_dict()), kind=KIND,
                        config={"kind": model.kind, "shape": list(model.shape), "latent": _latent(model),
                                "options": getattr(model, "options", {}), "train": config or {}})


def _latent(model):
    if hasattr(model, "latent"):
        return model.latent
    if model.kind in ("conv", "denoising"):
        return model.encoder[-1].out_channels
    return model.encoder.out_features if model.kind == "tiny" else model.encoder[-1].out_features


def load(path, *, device="cpu", name: str = "model"):
    """A model written by genfast.latent.train, in eval mode."""
    state, meta = weights.load(path, kind=KIND, name=name)
    cfg = meta["config"]
    # files written before conv_vae had options hold the factorised conv VAE
    options = cfg.get("options", {"autoregressive": False} if cfg["kind"] == "conv_vae" else {})
    model = build(cfg["kind"], tuple(cfg["shape"]), cfg["latent"], **options)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ArgumentError(name, f"{str(path)!r} does not fit a {cfg['kind']} model: {str(e).splitlines()[0]}") from None
    model.train_config = cfg.get("train", {})
    return model.to(device).eval()


def _need_vae(model, what: str):
    if not model.variational:
        raise ArgumentError("model", f"{what} needs a VAE (a model with a prior), got a {model.kind} autoencoder")


@torch.no_grad()
def sample_prior(model, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """n images decoded from z ~ N(0, I)."""
    _need_vae(model, "sampling from the prior")
    check_int(n, "n", 1)
    device = next(model.parameters()).device
    z = torch.randn(n, model.latent, generator=generator, device="cpu" if generator is None else generator.device)
    return torch.sigmoid(model.eval().decode(z.to(device)))


@torch.no_grad()
def resample(model, x: torch.Tensor, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """n decodings of one input (1, C, H, W), each with its own z ~ q(z|x): "each output of a VAE is different"."""
    _need_vae(model, "resampling")
    check_int(n, "n", 1)
    mean, logvar = model.eval().encode(x[:1])
    z = reparameterize(mean.expand(n, -1), logvar.expand(n, -1), generator=generator)
    return torch.sigmoid(model.decode(z))


def _code(model, x):
    z = model.encode(x)
    return z[0] if isinstance(z, tuple) else z


@torch.no_grad()
def interpolate(model, a: torch.Tensor, b: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """(len(a) * steps, C, H, W): for each pair (a[i], b[i]), decode((1 - t) z_a + t z_b), t from 0 to 1."""
    check_int(steps, "steps", 2)
    model.eval()
    za, zb = _code(model, a), _code(model, b)
    t = torch.linspace(0, 1, steps, device=za.device).view(1, steps, *([1] * (za.dim() - 1)))
    z = ((1 - t) * za.unsqueeze(1) + t * zb.unsqueeze(1)).flatten(0, 1)
    return torch.sigmoid(model.decode(z))


@torch.no_grad()
def manifold(model, n: int = 15, *, span: float = 0.95) -> torch.Tensor:
    """(n * n, C, H, W) decoded over a 2-D latent grid: for a VAE the N(0, 1) quantiles from (1 - span) / 2
    to (1 + span) / 2 (the material's picture), row by row from the top (largest z_2)."""
    check_int(n, "n", 2)
    if getattr(model, "latent", None) != 2:
        raise ArgumentError("model", f"the manifold grid needs a 2-D latent space, got {getattr(model, 'latent', '?')} "
                                     f"latent values (train with --latent 2)")
    q = torch.linspace((1 - span) / 2, (1 + span) / 2, n, dtype=torch.float64)
    ticks = torch.distributions.Normal(0.0, 1.0).icdf(q).float()
    device = next(model.parameters()).device
    z = torch.stack(torch.meshgrid(ticks, ticks.flip(0), indexing="xy"), -1).reshape(-1, 2).to(device)
    return torch.sigmoid(model.eval().decode(z))


__all__ = ["save_model", "load", "sample_prior", "resample", "interpolate", "manifold"]
