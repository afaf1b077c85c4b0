"""What a GAN learns from: the 2-D Gaussian mixtures of the mode-collapse tables, and images.

    means, std = mixture("ring8")                    # (8, 2) means, std 0.01
    x = sample_mixture("grid25", 512, generator=g)   # (512, 2), each sample from a uniformly drawn mode
    images = load_images("fashion-mnist", root="../shared/data/fashion-mnist")   # (N, 1, 28, 28) in [-1, 1]

The mixtures are PacGAN's (Lin et al. 2018, section 5.1, after VEEGAN): `ring8`, eight Gaussians
with means (cos 2 pi i / 8, sin 2 pi i / 8) and standard deviation 0.01; `grid25`, 25 Gaussians
with means {-4, -2, 0, 2, 4}^2 and standard deviation 0.05; every mode equally likely. Image data
comes from genfast.data (IDX files, the OpenCV digit sheet, image folders), scaled to [-1, 1] for a
tanh generator.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from genfast import data as gdata
from genfast.checks import ArgumentError, check_int

MIXTURES = ("ring8", "grid25")
IMAGE_DATA = ("fashion-mnist", "digits")


def mixture(name: str) -> tuple[torch.Tensor, float]:
    """(means (M, 2) float64, std) of the mixture `name` (one of MIXTURES)."""
    if name == "ring8":
        angles = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
        return torch.stack([angles.cos(), angles.sin()], dim=1), 0.01
    if name == "grid25":
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0], dtype=torch.float64)
        return torch.cartesian_prod(axis, axis), 0.05
    raise ArgumentError("data", f"expected one of {', '.join(MIXTURES)}, got {name!r}")


def sample_mixture(name: str, n: int, *, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """n samples (n, 2) of the mixture `name`: a mode drawn uniformly, plus Gaussian noise of its std."""
    check_int(n, "n", 0)
    means, std = mixture(name)
    modes = torch.randint(len(means), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return (means[modes] + std * noise).to(dtype)


def is_mixture(name) -> bool:
    return isinstance(name, str) and name in MIXTURES


def load_images(source: str, *, root=None, image_size: int | None = None, limit: int | None = None,
                split: str = "train") -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images float32 (N, C, H, W) in [-1, 1], labels int64 (N,) or None) for a GAN to learn.

    source: "fashion-mnist" (MNIST-format IDX files in `root`; any such folder works), "digits"
    (OpenCV's digit sheet: `root` is the PNG or its folder; 20 x 20 digits padded to 28 x 28), or a
    folder of images (RGB, centre-cropped to `image_size`, default 64)."""
    if source == "fashion-mnist":
        if root is None:
            raise ArgumentError("data_root", "expected the folder of the MNIST-format IDX files for fashion-mnist")
        images, labels = gdata.fashion_mnist(root, split)
        images = images[:, None]
    elif source == "digits":
        if root is None:
            raise ArgumentError("data_root", "expected OpenCV's digits.png (or its folder) for digits")
        root = Path(root)
        sheet = root / "digits_20x20.png" if root.is_dir() else root
        images, labels = gdata.digits_sheet(sheet)
        images = images[:, None]
    else:
        path = Path(source)
        if not path.is_dir():
            raise ArgumentError("data", f"expected one of {', '.join(MIXTURES + IMAGE_DATA)} or a folder of "
                                        f"images, got {source!r}")
        images, labels = gdata.load_image_folder(path, image_size or 64, limit=limit), None
    if limit is not None:
        check_int(limit, "limit", 1)
        images = images[:limit]
        labels = labels[:limit] if labels is not None else None
    if image_size is not None and images.shape[-1] != image_size:
        images = torch.nn.functional.interpolate(images.float(), size=(image_size, image_size), mode="bilinear",
                                                 antialias=True, align_corners=False).round().clamp(0, 255)
    return images.float().div(127.5).sub(1.0), labels


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> [0, 1] (for image files and the classifier)."""
    return images.add(1.0).mul(0.5).clamp(0.0, 1.0)


__all__ = ["MIXTURES", "IMAGE_DATA", "mixture", "sample_mixture", "is_mixture", "load_images", "to_unit"]
