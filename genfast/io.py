"""Files in and out: images as tensors, and writes that never leave a half-written file behind.

Every output genfast writes (images, checkpoints, JSON) goes through `atomic_path`: the data is written
to a temporary file in the destination folder and moved over the destination in one `os.replace`, so a
kill or a full disk leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP",
                  ".tif": "TIFF", ".tiff": "TIFF"}


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path next to `path`; on success move it over `path`, on error delete it."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp",
                               dir=path.parent)
    os.close(fd)
    # mkstemp creates the file 0600; give the result the mode a plain open() would (0666 & ~umask)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_torch_save(obj, path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _check_size(size, name: str):
    if size is None:
        return None
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"{name} must be a positive number of pixels, got {size}")
        return size
    if isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size):
        return tuple(size)
    raise ValueError(f"{name} must be a positive int (longest side) or (height, width), got {size!r}")


def load_image(path, size=None, *, name: str = "image") -> torch.Tensor:
    """Read an image file as a float32 tensor (1, 3, H, W) of RGB in [0, 1].

    `size` is None (keep), an int (the longest side, aspect kept) or (height, width). Grey and palette
    images become RGB; an alpha channel is dropped. Errors name the argument (`name`) and the file.
    """
    from PIL import Image, UnidentifiedImageError

    size = _check_size(size, "size")
    if isinstance(path, str) and path.startswith("skimage:"):
        return resize(sample_image(path[len("skimage:"):], name=name), size)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such file: {str(path)!r}")
    if path.is_dir():
        raise IsADirectoryError(f"{name}: expected an image file, got the directory {str(path)!r}")
    try:
        with Image.open(path) as im:
            im.load()
            image = im.convert("RGB")
    except UnidentifiedImageError:
        raise ValueError(f"{name}: {str(path)!r} is not an image file PIL can read "
                         f"(expected PNG, JPEG, BMP, WEBP or TIFF)") from None
    except OSError as e:
        raise ValueError(f"{name}: cannot decode {str(path)!r}: {e}") from None
    if image.width == 0 or image.height == 0:
        raise ValueError(f"{name}: {str(path)!r} has zero size ({image.width}x{image.height})")
    return resize(pil_to_tensor(image), size)


#: photos inside scikit-image's wheel (the others in skimage.data download on first use)
SKIMAGE_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field", "brick",
                   "grass", "gravel")


def check_sample(sample: str, *, name: str = "image") -> str:
    """`sample` if it names one of SKIMAGE_SAMPLES, else an error naming the argument."""
    if sample not in SKIMAGE_SAMPLES:
        raise ValueError(f"{name}: unknown sample image 'skimage:{sample}'; expected one of "
                         f"{', '.join('skimage:' + s for s in SKIMAGE_SAMPLES)}")
    return sample


def sample_image(sample: str, *, name: str = "image") -> torch.Tensor:
    """One of scikit-image's bundled photos, by name (`skimage:astronaut` on the command line)."""
    check_sample(sample, name=name)
    try:
        import skimage.data
    except ImportError:
        raise ImportError(f"{name}: 'skimage:{sample}' needs scikit-image (pip install scikit-image)") from None
    return array_to_tensor(getattr(skimage.data, sample)())


def pil_to_tensor(image) -> torch.Tensor:
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def array_to_tensor(array) -> torch.Tensor:
    """(H, W, 3) or (H, W) uint8/float array (e.g. a scikit-image sample) -> (1, 3, H, W) in [0, 1]."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"array: expected (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    a = a[:, :, :3]
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).unsqueeze(0)
    return t.float().div_(255.0) if a.dtype == np.uint8 else t.float()


def resize(image: torch.Tensor, size) -> torch.Tensor:
    """Resize (N, 3, H, W) to `size` (longest side or (height, width)) with antialiased bicubic."""
    size = _check_size(size, "size")
    if size is None:
        return image
    h, w = image.shape[-2:]
    if isinstance(size, int):
        scale = size / max(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if tuple(size) == (h, w):
        return image
    out = torch.nn.functional.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def tensor_to_pil(image: torch.Tensor):
    from PIL import Image

    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"image: expected a single image (1, 3, H, W), got {tuple(image.shape)}")
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image: expected (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def save_image(image: torch.Tensor, path, *, quality: int = 95) -> Path:
    """Write (1, 3, H, W) or (3, H, W) in [0, 1] as PNG or JPEG (by suffix), atomically."""
    path = Path(path)
    fmt = IMAGE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"output: unknown image suffix {path.suffix!r} in {str(path)!r}; "
                         f"expected one of {sorted(IMAGE_SUFFIXES)}")
    pil = tensor_to_pil(image)
    with atomic_path(path) as tmp:
        kwargs = {"quality": quality} if fmt == "JPEG" else {}
        pil.save(tmp, format=fmt, **kwargs)
    return path
