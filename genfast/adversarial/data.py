"""Labelled 28 x 28 images for the classifiers: genfast.data.labelled_images (an IDX folder or the
OpenCV digit sheet, shared with genfast.latent), and uint8 -> float.

    images, labels, classes = labelled_images("../shared/data/fashion-mnist", "test")   # uint8 (N, 28, 28)
"""

from __future__ import annotations

import torch

from genfast.data import labelled_images  # noqa: F401 - re-exported: genfast.adversarial.labelled_images


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1]."""
    return images.float().div(255.0).unsqueeze(1)
