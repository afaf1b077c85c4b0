"""What is done with a trained generator: load it, sample it, walk its latent space, picture it.

    G, meta = load_generator("ring8.safetensors")      # meta["config"]: generator, data, training
    x = sample(G, 2500, seed=0)                        # (2500, 2) for a mixture, (N, C, H, W) in [-1, 1]
    path = interpolate(G, "walk.png", rows=8, steps=10)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genfast import io
from genfast.checks import ArgumentError, check_int
from genfast.training import weights

KIND = "gan"


def save_generator(G: torch.nn.Module, path, *, generator_config: dict, data: str, **info) -> Path:
    """The generator's weights as safetensors, its configuration (and the data it learnt) in the header."""
    return weights.save(path, G.state_dict(), kind=KIND,
                        config={"generator": generator_config, "data": str(data), **info})


def load_generator(path, *, device="cpu", name: str = "generator") -> tuple[torch.nn.Module, dict]:
    """(generator in eval mode, its header config) of a file written by `genfast gan train`."""
    from genfast.gan.networks import build_generator

    state, meta = weights.load(path, kind=KIND, name=name)
    cfg = meta["config"]
    if "generator" not in cfg:
        raise ArgumentError(name, f"{str(path)!r} has no generator configuration in its header")
    G = build_generator(cfg["generator"])
    try:
        G.load_state_dict(state)
    except RuntimeError as e:
        raise ArgumentError(name, f"{str(path)!r} does not fit its own configuration: {str(e).splitlines()[0]}") \
            from None
    return G.to(device).eval(), cfg


def latent_dim(G: torch.nn.Module) -> int:
    return G.cfg["z_dim"]


@torch.no_grad()
def sample(G: torch.nn.Module, n: int, *, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """n samples of G (eval mode), from noise seeded by `seed`, on the CPU."""
    check_int(n, "num", 1)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, latent_dim(G), generator=gen)
    device = next(G.parameters()).device
    return torch.cat([G(z[i:i + batch_size].to(device)).cpu() for i in range(0, n, batch_size)])


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows a and b (Gaussian latents keep their norm), t in [0, 1]."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@torch.no_grad()
def interpolate(G: torch.nn.Module, out, *, rows: int = 8, steps: int = 10, seed: int = 0,
                spherical: bool = True, data: str | None = None) -> Path:
    """A sheet of `rows` latent walks of `steps` images each (slerp, or a straight line), or for a
    2-D generator a plot of the walks as paths; written atomically to `out` (PNG)."""
    check_int(rows, "rows", 1)
    check_int(steps, "steps", 2)
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(rows, latent_dim(G), generator=gen), torch.randn(rows, latent_dim(G), generator=gen)
    t = torch.linspace(0, 1, steps)[None, :, None]
    z = slerp(a[:, None], b[:, None], t) if spherical else a[:, None] + t * (b - a)[:, None]
    device = next(G.parameters()).device
    x = G(z.reshape(rows * steps, -1).to(device)).cpu()
    if x.dim() == 2:
        return plot_mixture(x, data, out, paths=x.reshape(rows, steps, -1), title="latent walks")
    from genfast.gan.data import to_unit

    return io.save_image_grid(to_unit(x), out, nrow=steps, scale=2 if x.shape[-1] == 28 else 1)


def plot_mixture(samples: torch.Tensor, data: str | None, path, *, paths: torch.Tensor | None = None,
                 title: str | None = None) -> Path:
    """A scatter plot of 2-D samples over the mixture's modes (and their 3-std circles), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genfast.gan.data import is_mixture, mixture

    fig, ax = plt.subplots(figsize=(3.2, 3.2), dpi=100)
    x = samples.detach().cpu().numpy()
    ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5, color="tab:blue", linewidths=0)
    if is_mixture(data):
        means, std = mixture(data)
        for m in means.numpy():
            ax.add_patch(plt.Circle(m, 3 * std, fill=False, color="tab:red", lw=0.6))
        lim = float(means.abs().max()) * 1.3 + 0.2
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    if paths is not None:
        for p in paths.detach().cpu().numpy():
            ax.plot(p[:, 0], p[:, 1], "-", lw=0.8, color="tab:orange")
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    if title:
        ax.set_title(title, fontsize=8)
    return io.save_figure(fig, path)


def save_samples(x: torch.Tensor, out, *, data: str | None = None) -> Path:
    """Samples to `out`: .npy (the raw values: (N, 2) for 2-D data, (N, C, H, W) in [-1, 1]) or an
    image sheet (.png/.jpg; a scatter plot for 2-D data)."""
    out = Path(out)
    if out.suffix == ".npy":
        with io.atomic_path(out) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, x.numpy())
        return out
    if out.suffix.lower() not in io.IMAGE_SUFFIXES:
        raise ArgumentError("out", f"expected a .npy, .png or .jpg path, got {str(out)!r}")
    if x.dim() == 2:
        return plot_mixture(x, data, out)
    from genfast.gan.data import to_unit

    return io.save_image_grid(to_unit(x), out, scale=2 if x.shape[-1] == 28 else 1)


__all__ = ["KIND", "save_generator", "load_generator", "sample", "slerp", "interpolate", "plot_mixture",
           "save_samples", "latent_dim"]
