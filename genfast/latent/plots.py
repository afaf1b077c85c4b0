"""The pictures of genfast.latent (PNG, written atomically): the point of the workflow.

    latent_scatter({"AE": (codes, labels), "VAE": (codes, labels)}, "scatter.png", classes)
    image_rows(rows, "recon.png", row_labels=["input", "output", "|difference|"])   # triplets, interpolations
    image_sheet(images, "samples.png", nrow=8)                                      # prior samples, manifold
"""

from __future__ import annotations

from pathlib import Path

import torch

from genfast import io


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latent_scatter(panels: dict, path, classes=None, *, max_points: int = 5000) -> Path:
    """One scatter per panel name -> (codes (N, 2), labels (N,)), coloured by class, side by side."""
    plt = _pyplot()
    k = len(classes) if classes else 10
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), dpi=90, squeeze=False)
    for ax, (name, (codes, labels)) in zip(axes[0], panels.items()):
        codes, labels = codes[:max_points].cpu(), labels[:max_points].cpu()
        if codes.shape[1] != 2:
            raise ValueError(f"panels: {name!r} has {codes.shape[1]}-D codes; the scatter needs 2-D ones")
        sc = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7, vmin=-0.5, vmax=k - 0.5)
        ax.set_title(name)
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
    cbar = fig.colorbar(sc, ax=axes[0].tolist(), ticks=range(k), fraction=0.03)
    if classes:
        cbar.ax.set_yticklabels([str(c) for c in classes])
    return io.save_figure(fig, path, tight=False)     # the colour bar is placed by hand


def image_rows(rows, path, *, row_labels=None, scale: int = 2, title: str | None = None) -> Path:
    """A grid with one row per tensor in `rows` (each (K, C, H, W), the same K), labelled per row."""
    k = rows[0].shape[0]
    images = torch.cat([r.detach().cpu().float() for r in rows])
    labels = None
    if row_labels is not None:
        labels = [name if j == 0 else "" for name in row_labels for j in range(k)]
    return io.save_image_grid(images, path, nrow=k, scale=scale, labels=labels, title=title)


def image_sheet(images: torch.Tensor, path, *, nrow: int | None = None, scale: int = 2, title: str | None = None) -> Path:
    return io.save_image_grid(images.detach().cpu().float(), path, nrow=nrow, scale=scale, title=title, padding=1)


__all__ = ["latent_scatter", "image_rows", "image_sheet"]
