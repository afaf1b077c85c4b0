"""Data sets every workflow reads, written once: image folders, MNIST-format IDX files (Fashion-MNIST,
MNIST, KMNIST ...), and OpenCV's sheet of 5 000 handwritten digits.

    images, labels = data.fashion_mnist("../shared/data/fashion-mnist", "train")   # uint8 (60000, 28, 28), int64
    images, labels = data.digits_sheet("../shared/data/digits/digits_20x20.png")   # uint8 (5000, 28, 28)
    files = data.find_images("photos/")                                            # recursive, sorted
    crops = data.ImageFolderDataset("photos/", 256)                                # random crops, for training

Nothing here downloads: the files are read where they are, and every error names the file.
"""

from __future__ import annotations

import gzip
import math
import struct
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from genfast import io
from genfast.checks import ArgumentError, check_choice, check_int

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(i) for i in range(10))

# ------------------------------------------------------------------------------------- image folders


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in io.IMAGE_SUFFIXES and not path.name.startswith(".")


def find_images(source, *, name: str = "content") -> list:
    """Image specs from a folder (searched recursively), a file, a skimage:NAME spec, or a list of those."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    if not items:
        raise ValueError(f"{name}: expected a folder of images or a list of images, got an empty list")
    found: list = []
    for item in items:
        if isinstance(item, str) and item.startswith("skimage:"):
            io.check_sample(item[len("skimage:"):], name=name)
            found.append(item)
            continue
        if not isinstance(item, (str, Path)):
            raise TypeError(f"{name}: expected paths or skimage:NAME specs, got {type(item).__name__}")
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if is_image_file(p))
            if not files:
                raise ValueError(f"{name}: no image files ({', '.join(sorted(io.IMAGE_SUFFIXES))}) under the "
                                 f"folder {str(path)!r}")
            found.extend(str(p) for p in files)
        elif path.is_file():
            found.append(str(path))
        else:
            raise FileNotFoundError(f"{name}: no such file or folder: {str(path)!r}")
    return found


class ImageFolderDataset:
    """Random crops of `image_size` from a folder (recursive) or list of images of any size.

    Each image's shorter side is resized to image_size * s, s drawn from `scale` (default 1 to 1.25),
    then an image_size x image_size crop is taken at a random place. `dataset.get(i, generator)` is
    item i with its randomness from `generator`; items are (3, H, W) float RGB in [0, 1]. Decoded
    images are kept in a small cache (as uint8) so small datasets are not decoded again every epoch.
    """

    def __init__(self, source, image_size: int = 256, *, scale: tuple[float, float] = (1.0, 1.25),
                 cache: int = 32, name: str = "content"):
        check_int(image_size, "image_size", 16)
        if not (len(scale) == 2 and 1.0 <= scale[0] <= scale[1]):
            raise ArgumentError("scale", f"expected (low, high) with 1 <= low <= high, got {scale!r}")
        self.files = find_images(source, name=name)
        self.image_size, self.scale, self.name = image_size, (float(scale[0]), float(scale[1])), name
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache

    def __len__(self) -> int:
        return len(self.files)

    def _decoded(self, index: int) -> torch.Tensor:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        image = io.load_image(self.files[index], name=self.name)[0]
        image = image.mul(255).round_().to(torch.uint8)
        if self._cache_size:
            self._cache[index] = image
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return image

    def get(self, index: int, generator: torch.Generator) -> torch.Tensor:
        image = self._decoded(index).float().div_(255.0)[None]
        h, w = image.shape[-2:]
        lo, hi = self.scale
        s = lo + (hi - lo) * torch.rand((), generator=generator).item()
        short = max(self.image_size, round(self.image_size * s))
        k = short / min(h, w)
        size = (max(self.image_size, round(h * k)), max(self.image_size, round(w * k)))
        image = io.resize(image, size)
        top = int(torch.randint(0, size[0] - self.image_size + 1, (), generator=generator))
        left = int(torch.randint(0, size[1] - self.image_size + 1, (), generator=generator))
        return image[0, :, top:top + self.image_size, left:left + self.image_size].contiguous()


def load_image_folder(source, size: int, *, limit: int | None = None, name: str = "data") -> torch.Tensor:
    """Every readable image under `source` as uint8 (N, 3, size, size): the shorter side resized to
    `size`, then the centre crop. Unreadable files are skipped with one warning that names them; a
    folder with no readable image is an error."""
    check_int(size, "size", 4)
    files = find_images(source, name=name)
    if limit is not None:
        files = files[:check_int(limit, "limit", 1)]
    out, bad = [], []
    for f in files:
        try:
            image = io.load_image(f, name=name)
        except (ValueError, OSError) as e:
            bad.append(f"{f} ({e})")
            continue
        h, w = image.shape[-2:]
        k = size / min(h, w)
        image = io.resize(image, (max(size, round(h * k)), max(size, round(w * k))))
        h, w = image.shape[-2:]
        top, left = (h - size) // 2, (w - size) // 2
        out.append(image[0, :, top:top + size, left:left + size].mul(255).round().to(torch.uint8))
    if bad:
        warnings.warn(f"{name}: skipped {len(bad)} unreadable file(s): {'; '.join(bad[:5])}"
                      + (" ..." if len(bad) > 5 else ""), RuntimeWarning, stacklevel=2)
    if not out:
        raise ValueError(f"{name}: no readable image under {source!r}")
    return torch.stack(out)


# ------------------------------------------------------------------------------------- IDX files

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path, *, name: str = "data") -> np.ndarray:
    """An IDX file (the MNIST format; gzip-compressed or not) as a numpy array.

    The header is checked: two zero bytes, a known type code, the number of dimensions, and a payload
    of exactly the size the dimensions declare (a truncated file is refused, naming the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no such file: {str(path)!r}")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"{name}: {str(path)!r} is not a readable gzip file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        magic = raw[:4].hex() if len(raw) >= 4 else raw.hex()
        raise ValueError(f"{name}: {str(path)!r} is not an IDX file (magic number 0x{magic}; expected 0x0000TTDD "
                         f"with a known type TT, e.g. 0x00000803 for images, 0x00000801 for labels)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{name}: {str(path)!r} is truncated (its header declares {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    payload = len(raw) - 4 - 4 * ndim
    if payload != expected:
        what = "truncated" if payload < expected else "longer than its header declares"
        raise ValueError(f"{name}: {str(path)!r} is {what}: the header declares {'x'.join(map(str, dims))} values "
                         f"({expected} bytes), the file holds {payload}")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(dims).astype(dtype.newbyteorder("="))


def idx_pair(images_path, labels_path, *, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, H, W) uint8 and labels (N,) int64 from two IDX files that must agree in N."""
    images = read_idx(images_path, name=name)
    labels = read_idx(labels_path, name=name)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{name}: {str(images_path)!r} holds {images.dtype} of shape {images.shape}, expected "
                         f"uint8 images (N, H, W)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{name}: {str(labels_path)!r} holds {labels.shape} labels for the {len(images)} images of "
                         f"{str(images_path)!r}")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def fashion_mnist(root, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST (or any MNIST-format folder: train-/t10k-{images-idx3,labels-idx1}-ubyte[.gz])."""
    if split not in ("train", "test"):
        raise ArgumentError("split", f"expected 'train' or 'test', got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data: no such folder: {str(root)!r}")
    prefix = "train" if split == "train" else "t10k"
    found = []
    for kind, stem in (("images", f"{prefix}-images-idx3-ubyte"), ("labels", f"{prefix}-labels-idx1-ubyte")):
        for candidate in (root / (stem + ".gz"), root / stem):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            raise FileNotFoundError(f"data: {str(root)!r} has no {stem}[.gz] (the MNIST-format {split} {kind})")
    return idx_pair(*found, name="data")


def digits_sheet(path, *, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV's samples/data/digits.png: 5 000 handwritten digits of 20 x 20, 100 per row, 500 per
    class in order (0 first), as uint8 (5000, size, size) padded with black to `size` (default 28,
    the MNIST frame, centred) and int64 labels."""
    image = io.load_image(path, name="data")[0].mean(0)          # grey, (1000, 2000) in [0, 1]
    h, w = image.shape
    if h % 20 or w % 20 or (h // 20) * (w // 20) % 10:
        raise ValueError(f"data: {str(path)!r} is {w}x{h}: expected a sheet of 20 x 20 digits with a multiple of "
                         f"10 of them (OpenCV's digits.png is 2000x1000)")
    cells = (image.mul(255).round().to(torch.uint8).reshape(h // 20, 20, w // 20, 20).permute(0, 2, 1, 3)
             .reshape(-1, 20, 20))
    n = cells.shape[0]
    pad = size - 20
    if pad < 0:
        raise ArgumentError("size", f"expected at least 20 pixels, got {size}")
    cells = torch.nn.functional.pad(cells, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    labels = torch.arange(10).repeat_interleave(n // 10)
    return cells.contiguous(), labels


def split_indices(n: int, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of range(n) into (first, second) with `fraction` of n in the second."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    k = int(math.floor(n * fraction))
    return perm[k:], perm[:k]


#: the digit sheet's 'test' split: a seeded fifth of it
DIGITS_TEST_FRACTION = 0.2


def labelled_images(path, split: str = "train", *, limit: int | None = None, name: str = "data"):
    """(uint8 images (N, 28, 28), int64 labels (N,), class names) from `path`."""
    check_choice(split, "split", ("train", "test"))
    path = Path(path)
    if path.is_dir():
        images, labels = fashion_mnist(path, split)
        classes = FASHION_MNIST_CLASSES if "fashion" in path.name.lower() else DIGIT_CLASSES
    elif path.is_file():
        images, labels = digits_sheet(path)
        train, test = split_indices(len(images), DIGITS_TEST_FRACTION, seed=0)
        pick = train if split == "train" else test
        images, labels, classes = images[pick], labels[pick], DIGIT_CLASSES
    else:
        raise ArgumentError(name, f"expected a folder of MNIST-format IDX files or the digits PNG, got {str(path)!r} "
                                  f"(no such file or folder)")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels, list(classes)
