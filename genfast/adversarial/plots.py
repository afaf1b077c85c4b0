"""The pictures of genfast.adversarial (PNG, written atomically): accuracy against epsilon, and the
grid of adversarial examples with their new labels (like the PyTorch FGSM tutorial's)."""

from __future__ import annotations

from pathlib import Path

import torch

from genfast import io
from genfast.adversarial.attack import Sweep


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def accuracy_plot(epsilons, curves: dict, path, *, title: str = "accuracy under attack") -> Path:
    """One line per name -> accuracies (shares, one per epsilon)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
    for name, acc in curves.items():
        ax.plot(list(epsilons), [100 * a for a in acc], marker="o", label=name)
    ax.set_xlabel("epsilon (pixel units)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend()
    return io.save_figure(fig, path)


def sweep_plot(sweep: Sweep, path, *, name: str = "FGSM") -> Path:
    return accuracy_plot(sweep.epsilons, {name: sweep.accuracy}, path, title="accuracy vs epsilon (FGSM)")


def examples_grid(sweep: Sweep, path, *, classes=None, scale: int = 4) -> Path:
    """One row per epsilon, its kept examples labelled 'original -> adversarial' (blank tiles where
    fewer were kept)."""
    k = max((len(ex) for ex in sweep.examples), default=0)
    if k == 0:
        raise ValueError("sweep: no examples were kept (examples=0, or no image was classified correctly)")
    names = (lambda c: str(classes[c])[:7]) if classes else str
    tiles, labels = [], []
    for eps, kept in zip(sweep.epsilons, sweep.examples):
        for j in range(k):
            if j < len(kept):
                _, a, b, image = kept[j]
                tiles.append(image)
                labels.append(f"{names(a)}>{names(b)}")
            else:
                tiles.append(torch.ones(1, 28, 28))
                labels.append("")
    return io.save_image_grid(torch.stack(tiles), path, nrow=k, scale=scale, labels=labels,
                              title="FGSM, one row per epsilon (" + ", ".join(f"{e:g}" for e in sweep.epsilons)
                              + "): original > adversarial class")


__all__ = ["accuracy_plot", "sweep_plot", "examples_grid"]
