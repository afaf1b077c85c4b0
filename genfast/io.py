"""Files in and out: images as tensors, and writes that never leave a half-written file behind.

Every output genfast writes (images, checkpoints, JSON) goes through `atomic_path`: the data is written
to a temporary file in the destination folder and moved over the destination in one `os.replace`, so a
kill or a full disk leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from genfast.checks import ArgumentError, named

#: the most pixels an image may declare before it is decoded (a decompression bomb: a few KB of
#: PNG can declare 12000 x 12000). PIL's own default, ~89 Mpx; raise it here (or with a command's
#: --max-image-pixels) for a larger image you trust.
MAX_IMAGE_PIXELS = 89_478_485

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


def atomic_save_safetensors(tensors: dict, path, metadata: dict | None = None) -> Path:
    """Write a dict of tensors as safetensors, atomically, with string `metadata` in its header.

    Serialised to bytes first: safetensors.torch.save_file would replace the temporary file with a
    new one of mode 0600 instead of the usual 0666 & ~umask."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    data = save(state, metadata={k: str(v) for k, v in (metadata or {}).items()})
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def load_safetensors(path, *, name: str = "model") -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors file; anything else is an error naming `name` and the file."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise named(FileNotFoundError, name, f"no such file: {str(path)!r}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise ArgumentError(name, f"{str(path)!r} is not a safetensors file ({e})") from None
    return tensors, metadata


def load_tensors(path, *, name: str = "checkpoint"):
    """torch.load with weights_only=True: tensors and plain containers only, so a file whose pickle
    would build arbitrary objects (and run code doing so) is refused before anything runs. Any
    failure is a ValueError naming `name` and the file."""
    path = Path(path)
    if not path.is_file():
        raise named(FileNotFoundError, name, f"no such file: {str(path)!r}")
    try:
        with warnings.catch_warnings():
            # a pickle of another protocol is refused or read all the same; torch's note on it is noise
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, KeyError, IndexError, OSError, UnicodeDecodeError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            reason = "it holds Python objects other than tensors and plain containers, which genfast never unpickles"
        raise UnreadableFileError(name, path, reason) from None


class UnreadableFileError(ArgumentError):
    """A file load_tensors could not read as tensors; `reason` says why, for callers that say more
    precisely what the file should have been (a checkpoint of some kind)."""

    def __init__(self, argument: str, path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(argument, f"{str(path)!r} cannot be read as tensors ({reason})")


def same_file(a, b) -> bool:
    """Whether two paths name the same file (through links and relative parts), existing or not."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_output(output, inputs: dict, *, name: str = "output") -> None:
    """Refuse an output path that is one of the inputs: no command overwrites its own input.

    `inputs` maps each input argument's name to a path or a list of paths (None and skimage:NAME
    specs are skipped)."""
    for arg, paths in inputs.items():
        for p in paths if isinstance(paths, (list, tuple)) else [paths]:
            if p is None or isinstance(p, torch.Tensor) or (isinstance(p, str) and p.startswith("skimage:")):
                continue
            if not isinstance(p, (str, os.PathLike)):
                continue
            if same_file(output, p):
                raise ArgumentError(name, f"{str(output)!r} is the {arg} file; choose another path "
                                          f"(genfast never overwrites its own input)")


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


def load_image(path, size=None, *, name: str = "image", max_pixels: int | None = None) -> torch.Tensor:
    """Read an image file as a float32 tensor (1, 3, H, W) of RGB in [0, 1].

    `size` is None (keep), an int (the longest side, aspect kept) or (height, width). Grey and palette
    images become RGB; an alpha channel is dropped. Errors name the argument (`name`) and the file.

    The size the file declares is checked before anything is decoded: more than `max_pixels`
    (default `MAX_IMAGE_PIXELS`) is refused. A JPEG larger than `size` is decoded at a reduced
    scale (1/2, 1/4 or 1/8, never below `size`), so memory follows `size`, not the file.
    """
    from PIL import Image, UnidentifiedImageError

    size = _check_size(size, "size")
    if isinstance(path, str) and path.startswith("skimage:"):
        return resize(sample_image(path[len("skimage:"):], name=name), size)
    path = Path(path)
    if not path.exists():
        raise named(FileNotFoundError, name, f"no such file: {str(path)!r}")
    if path.is_dir():
        raise named(IsADirectoryError, name, f"expected an image file, got the directory {str(path)!r}")
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    pil_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None      # genfast checks the declared size itself, below, with its own message
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if limit is not None and w * h > limit:
                    raise ArgumentError(name, f"{str(path)!r} declares {w}x{h} pixels ({w * h / 1e6:.1f} Mpx), more "
                                     f"than the limit of {limit / 1e6:.1f} Mpx that guards against decompression "
                                     f"bombs; raise it with --max-image-pixels (genfast.io.MAX_IMAGE_PIXELS in "
                                     f"Python) if you trust the file")
                if im.format == "JPEG" and size is not None:
                    im.draft("RGB", _draft_size(w, h, size))
                im.load()
                image = im.convert("RGB")
    except UnidentifiedImageError:
        raise ArgumentError(name, f"{str(path)!r} is not an image file PIL can read "
                         f"(expected PNG, JPEG, BMP, WEBP or TIFF)") from None
    except (OSError, Image.DecompressionBombError) as e:
        raise ArgumentError(name, f"cannot decode {str(path)!r}: {e}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pil_limit
    if image.width == 0 or image.height == 0:
        raise ArgumentError(name, f"{str(path)!r} has zero size ({image.width}x{image.height})")
    return resize(pil_to_tensor(image), _target_size(w, h, size))


def _target_size(w: int, h: int, size):
    """The (height, width) `size` asks of a w x h image (as `resize` computes it), or None to keep."""
    if size is None or not isinstance(size, int):
        return size
    scale = size / max(h, w)
    return (max(1, round(h * scale)), max(1, round(w * scale)))


def _draft_size(w: int, h: int, size) -> tuple[int, int]:
    """The (width, height) a JPEG draft must not go below to still give `size` by downscaling."""
    th, tw = _target_size(w, h, size)
    return (tw, th)


#: photos inside scikit-image's wheel (the others in skimage.data download on first use)
SKIMAGE_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field", "brick",
                   "grass", "gravel")


def check_sample(sample: str, *, name: str = "image") -> str:
    """`sample` if it names one of SKIMAGE_SAMPLES, else an error naming the argument."""
    if sample not in SKIMAGE_SAMPLES:
        raise ArgumentError(name, f"unknown sample image 'skimage:{sample}'; expected one of "
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


def make_grid(images: torch.Tensor, *, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0,
              value_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Tile (N, C, H, W) images (C = 1 or 3) into one (3, H', W') picture in [0, 1], `nrow` per row
    (default: about square), `padding` pixels of `pad_value` between them; `value_range` is what
    the images' black and white are ((-1, 1) for a tanh generator)."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images: expected a tensor (N, 1 or 3, H, W), got {shape}")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("images: expected at least one image, got an empty batch")
    lo, hi = value_range
    x = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    if c == 1:
        x = x.expand(n, 3, h, w)
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = torch.full((3, rows * (h + padding) + padding, nrow * (w + padding) + padding), float(pad_value))
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid


def save_image_grid(images: torch.Tensor, path, *, nrow: int | None = None, padding: int = 2,
                    pad_value: float = 1.0, value_range: tuple[float, float] = (0.0, 1.0), scale: int = 1,
                    labels: list[str] | None = None, title: str | None = None) -> Path:
    """Write a grid of images (see `make_grid`) as one PNG/JPEG, atomically: sample sheets, filter
    sheets, reconstructions. `scale` enlarges each pixel (nearest) for small images such as 28 x 28;
    `labels` (one short string per image) are written under each tile, `title` above the grid."""
    from PIL import Image, ImageDraw

    grid = make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value, value_range=value_range)
    n, _, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    if scale != 1:
        grid = torch.nn.functional.interpolate(grid[None], scale_factor=scale, mode="nearest")[0]
    pil = tensor_to_pil(grid)
    if labels is not None or title:
        if labels is not None and len(labels) != n:
            raise ValueError(f"labels: expected {n} labels (one per image), got {len(labels)}")
        line = 12
        cell_h, cell_w = (h + padding) * scale, (w + padding) * scale
        rows = math.ceil(n / nrow)
        top = line + 4 if title else 0
        extra = padding * scale + line + 2 if labels is not None else 0    # a tile's crop + its label line
        canvas = Image.new("RGB", (pil.width, top + rows * (cell_h + extra) + padding * scale), "white")
        draw = ImageDraw.Draw(canvas)
        if title:
            draw.text((padding * scale, 2), title, fill="black")
        for i in range(n):
            r, col = divmod(i, nrow)
            box = (col * cell_w, r * cell_h, col * cell_w + cell_w + padding * scale, r * cell_h + cell_h + padding * scale)
            y0 = top + r * (cell_h + extra)
            canvas.paste(pil.crop(box), (col * cell_w, y0))
            if labels is not None:
                draw.text((col * cell_w + padding * scale, y0 + cell_h + padding * scale), str(labels[i])[:24],
                          fill="black")
        pil = canvas
    return _save_pil(pil, path)


def save_figure(fig, path, *, dpi=None, tight: bool = True) -> Path:
    """Write a matplotlib figure as PNG, atomically, and close it: every plot genfast draws."""
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)


def _save_pil(pil, path, *, quality: int = 95) -> Path:
    path = Path(path)
    fmt = IMAGE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"output: unknown image suffix {path.suffix!r} in {str(path)!r}; "
                         f"expected one of {sorted(IMAGE_SUFFIXES)}")
    with atomic_path(path) as tmp:
        kwargs = {"quality": quality} if fmt == "JPEG" else {}
        pil.save(tmp, format=fmt, **kwargs)
    return path


def write_json(path, payload) -> Path:
    """`payload` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=_json_default) + "\n")
    return Path(path)


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_image(image: torch.Tensor, path, *, quality: int = 95) -> Path:
    """Write (1, 3, H, W) or (3, H, W) in [0, 1] as PNG or JPEG (by suffix), atomically."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"output: unknown image suffix {path.suffix!r} in {str(path)!r}; "
                         f"expected one of {sorted(IMAGE_SUFFIXES)}")
    return _save_pil(tensor_to_pil(image), path, quality=quality)
