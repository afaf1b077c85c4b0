"""Labelled 28 x 28 images for the classifiers: a folder of MNIST-format IDX files (Fashion-MNIST,
MNIST, ...) or OpenCV's sheet of 5 000 digits (a PNG; its 'test' split is a seeded 1 000 of them).

    images, labels, classes = labelled_images("../shared/data/fashion-mnist", "test")   # uint8 (N, 28, 28)
"""

from __future__ import annotations

from pathlib import Path

import torch

from genfast import data
from genfast.checks import ArgumentError, check_choice

DIGITS_TEST_FRACTION = 0.2


def labelled_images(path, split: str = "train", *, limit: int | None = None, name: str = "data"):
    """(uint8 images (N, 28, 28), int64 labels (N,), class names) from `path`."""
    check_choice(split, "split", ("train", "test"))
    path = Path(path)
    if path.is_dir():
        images, labels = data.fashion_mnist(path, split)
        classes = data.FASHION_MNIST_CLASSES if "fashion" in path.name.lower() else data.DIGIT_CLASSES
    elif path.is_file():
        images, labels = data.digits_sheet(path)
        train, test = data.split_indices(len(images), DIGITS_TEST_FRACTION, seed=0)
        pick = train if split == "train" else test
        images, labels, classes = images[pick], labels[pick], data.DIGIT_CLASSES
    else:
        raise ArgumentError(name, f"expected a folder of MNIST-format IDX files or the digits PNG, got {str(path)!r} "
                                  f"(no such file or folder)")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels, list(classes)


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1]."""
    return images.float().div(255.0).unsqueeze(1)
