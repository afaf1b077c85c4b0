"""Applying a trained feed-forward stylizer (TransformerNet, MultiStyleNet, or any module with the same
[0, 255] convention, such as genfast.reference.transformer_net.TransformerNet) to images and frames.

Images are (3, H, W) (or (1, 3, H, W), what genfast.io.load_image returns) float tensors of RGB in
[0, 1], of any sizes. Images of the same size are batched together; results come back in the input
order, in [0, 1], on each input's device. Video frames (genfast.style.video, genfast.style.live)
go through `FrameStylizer`, which shares the style rule and the padding rule below.

Sizes that are not multiples of 4: the network halves the size twice (stride-2 convolutions that
round up) and doubles it twice, so an H x W input comes back as ceil4(H) x ceil4(W), with the
extra rows made from the stride-2 convolutions reading reflection padding past the edge. We instead
reflect-pad the image itself to a multiple of 4 (split between both sides), which gives the network
a real, mirrored image there, and crop the output back to H x W (`pad_to_multiple`).

The style of a MultiStyleNet (`style_argument`): an index, or one non-negative mixing weight per
style with a positive sum, normalised to sum 1 (a convex blend of the styles).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genfast.checks import ArgumentError, check_int
from genfast.io import IMAGE_SUFFIXES
from genfast.style.networks import MIN_SIZE, MultiStyleNet, load_stylizer
from genfast.training.progress import progress_bar

MULTIPLE = 4


# ------------------------------------------------------------------------------------- the rules

def style_argument(model, style, *, name: str = "style"):
    """What to pass as forward's `style` (an int, or float weights (S,) summing to 1), or None for a
    single-style model. Errors name `name`."""
    if not isinstance(model, MultiStyleNet):
        if style is not None:
            raise ArgumentError(name, f"style was given, but {type(model).__name__} is a single-style model "
                                      f"(a style index or mixing weights apply to a MultiStyleNet)")
        return None
    s = model.num_styles
    if style is None:
        if s == 1:
            return 0
        raise ArgumentError(name, f"the model is a MultiStyleNet with {s} styles; pass style= (an index in "
                                  f"[0, {s}) or {s} mixing weights)")
    if isinstance(style, bool):
        raise ArgumentError(name, f"expected an int style index or mixing weights, got {style!r}")
    if isinstance(style, torch.Tensor) and style.dim() == 0 and not style.is_floating_point():
        style = int(style)
    if isinstance(style, (int, np.integer)):
        if not 0 <= style < s:
            raise ArgumentError(name, f"expected a style index in [0, {s}), got {style}")
        return int(style)
    try:
        w = torch.as_tensor(style, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise ArgumentError(name, f"expected a style index or mixing weights, got {style!r}") from None
    if w.dim() != 1 or w.shape[0] != s:
        raise ArgumentError(name, f"expected style mixing weights of shape ({s},) (one per style), "
                                  f"got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ArgumentError(name, f"expected finite, non-negative style mixing weights with a positive sum, "
                                  f"got {w.tolist()}")
    return w / w.sum()


def style_from_options(model, *, style_index: int | None = None, mix: Sequence[float] | None = None):
    """The style the command-line options --style-index / --mix ask of `model` (errors name the option)."""
    if style_index is not None and mix:
        raise ArgumentError("mix", "give --style-index or --mix, not both")
    if not isinstance(model, MultiStyleNet):
        if style_index is not None or mix:
            which = "style_index" if style_index is not None else "mix"
            raise ArgumentError(which, f"the model is a single-style {type(model).__name__}; --style-index and "
                                       f"--mix are for a multi-style model")
        return None
    if mix:
        return style_argument(model, list(mix), name="mix")
    if style_index is None and model.num_styles > 1:
        raise ArgumentError("style_index", f"the model has {model.num_styles} styles; choose one with --style-index I "
                                           f"or blend them with --mix W1 ... W{model.num_styles}")
    return style_argument(model, 0 if style_index is None else style_index, name="style_index")


def pad_to_multiple(x: torch.Tensor, m: int = MULTIPLE) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (N, C, H, W) to multiples of `m`, split between both sides; returns the padded
    batch and the (top, left) offset of the original inside it."""
    h, w = x.shape[-2:]
    ph, pw = -h % m, -w % m
    top, left = ph // 2, pw // 2
    if ph or pw:
        x = F.pad(x, (left, pw - left, top, ph - top), mode="reflect")
    return x, (top, left)


def run_stylizer(model, x: torch.Tensor, style) -> torch.Tensor:
    """(N, 3, H, W) in [0, 255] -> the stylized batch, clamped to [0, 255], at the input's size."""
    h, w = x.shape[-2:]
    xp, (top, left) = pad_to_multiple(x)
    if isinstance(style, torch.Tensor):
        style = style.to(xp.device).reshape(1, -1).expand(xp.shape[0], -1)
    y = model(xp) if style is None else model(xp, style)
    return y[:, :, top:top + h, left:left + w].clamp(0.0, 255.0)


def model_device(model) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


# ------------------------------------------------------------------------------------- images

def _as_images(images) -> tuple[list[torch.Tensor], str]:
    """A list of (3, H, W) tensors and how to return the result ("list", "3d" or "4d")."""
    if isinstance(images, torch.Tensor):
        if images.dim() == 3:
            return [images], "3d"
        if images.dim() == 4:
            return list(images.unbind(0)), "4d"
        raise ValueError(f"stylize_images: expected images to be a (3, H, W) or (N, 3, H, W) tensor or a list of "
                         f"(3, H, W) tensors, got a tensor of shape {tuple(images.shape)}")
    if not isinstance(images, Sequence) or isinstance(images, (str, bytes)):
        raise TypeError(f"stylize_images: expected images to be a tensor or a list of tensors, "
                        f"got {type(images).__name__}")
    out = []
    for i, im in enumerate(images):
        if not isinstance(im, torch.Tensor):
            raise TypeError(f"stylize_images: expected images[{i}] to be a torch.Tensor, got {type(im).__name__}")
        if im.dim() == 4 and im.shape[0] == 1:
            im = im[0]
        out.append(im)
    return out, "list"


def _check_image(im: torch.Tensor, i: int) -> None:
    if im.dim() != 3 or im.shape[0] != 3:
        raise ValueError(f"stylize_images: expected images[{i}] of shape (3, H, W) or (1, 3, H, W) (RGB in [0, 1]), "
                         f"got shape {tuple(im.shape)}")
    if not im.is_floating_point():
        raise TypeError(f"stylize_images: expected images[{i}] to be a floating-point tensor in [0, 1], got {im.dtype}")
    if min(im.shape[1:]) < MIN_SIZE:
        raise ValueError(f"stylize_images: expected images[{i}] of at least {MIN_SIZE}x{MIN_SIZE} pixels, "
                         f"got {tuple(im.shape[1:])}")


def stylize_images(model, images, *, style=None, batch_size: int = 4, device=None, progress: bool = True):
    """Stylize `images` with a trained stylizer; returns [0, 1] tensors like the input.

    Args:
        model: a TransformerNet / MultiStyleNet (or a module with the same [0, 255] convention), or
            the path of a checkpoint (loaded with genfast.style.load_stylizer).
        images: a list of (3, H, W) or (1, 3, H, W) float tensors in [0, 1], sizes may differ
            (returns a list of (3, H, W)); or one (3, H, W) / (N, 3, H, W) tensor (returns the same shape).
        style: MultiStyleNet only: a style index, or one non-negative mixing weight per style
            (normalised to sum 1).
        batch_size: images of the same size run through the network this many at a time.
        device: where to run (the model is moved there); default: the model's device.
        progress: show a progress bar over the images.
    """
    if isinstance(model, (str, Path)):
        model = load_stylizer(model, device=device or "cpu")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"stylize_images: expected model to be a torch.nn.Module or a checkpoint path, "
                        f"got {type(model).__name__}")
    check_int(batch_size, "batch_size", 1, where="stylize_images")
    items, kind = _as_images(images)
    for i, im in enumerate(items):
        _check_image(im, i)
    if device is not None:
        device = torch.device(device)
        model = model.to(device)
    else:
        device = model_device(model)
    style = style_argument(model, style)   # checked once, before any work

    # same-size images together, in order of first appearance
    groups: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(items):
        groups.setdefault(tuple(im.shape[1:]), []).append(i)
    results: list[torch.Tensor | None] = [None] * len(items)
    with torch.inference_mode(), progress_bar(len(items), desc="stylize", unit="img", enabled=progress) as bar:
        for idx in groups.values():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start:start + batch_size]
                x = torch.stack([items[i].to(device=device, dtype=torch.float32) for i in chunk]).mul_(255.0)
                y = run_stylizer(model, x, style).div_(255.0)
                for j, i in enumerate(chunk):
                    results[i] = y[j]
                bar.update(len(chunk))
    # copies made outside inference_mode are ordinary tensors (usable with autograd later)
    results = [r.to(device=im.device, dtype=im.dtype, copy=True) for r, im in zip(results, items)]
    if kind == "3d":
        return results[0]
    if kind == "4d":
        return torch.stack(results)
    return results


def _stem(spec: str) -> str:
    if spec.startswith("skimage:"):
        return spec[len("skimage:"):]
    return Path(spec).stem


def output_paths(contents: list[str], output: str) -> list[Path]:
    """Where each stylized content goes: with one content and an image suffix, `output` itself;
    otherwise `output` is a directory and each result is <stem>_stylized.png (stems made unique)."""
    out = Path(output)
    if len(contents) == 1 and out.suffix.lower() in IMAGE_SUFFIXES:
        return [out]
    if (out.exists() and not out.is_dir()) or out.suffix.lower() in IMAGE_SUFFIXES:
        raise ArgumentError("output", f"with {len(contents)} content images the output must be a directory, "
                                      f"got the {'file' if out.exists() else 'image path'} {output!r}")
    paths, seen = [], {}
    for spec in contents:
        stem = _stem(spec)
        count = seen.get(stem, 0) + 1
        seen[stem] = count
        paths.append(out / (f"{stem}_stylized.png" if count == 1 else f"{stem}_{count}_stylized.png"))
    return paths


def stylize_files(model, contents: Sequence[str], output, *, size: int | None = None, style=None,
                  batch_size: int = 4, device=None, progress: bool = True,
                  protect: dict | None = None) -> tuple[list[Path], float]:
    """Stylize image files (or skimage:NAME specs) into `output` (a file for one image, else a folder,
    see `output_paths`); refuses an output that is one of the inputs (the contents, a model path, and
    `protect`: more {argument: path} the outputs must not overwrite). Returns the paths written and
    the seconds spent stylizing."""
    from genfast.io import check_output, load_image, save_image

    paths = output_paths(list(contents), output)
    inputs = {"content": list(contents), "model": model if isinstance(model, (str, Path)) else None,
              **(protect or {})}
    for path in paths:
        check_output(path, inputs)
    images = [load_image(spec, size, name="content") for spec in contents]
    t0 = time.perf_counter()
    results = stylize_images(model, images, style=style, batch_size=batch_size, device=device, progress=progress)
    seconds = time.perf_counter() - t0
    for image, path in zip(results, paths):
        save_image(image, path)
    return paths, seconds


# ------------------------------------------------------------------------------------- frames

class FrameStylizer:
    """uint8 RGB frames (H, W, 3) in, stylized uint8 frames out, in order, with the temporal
    smoothing state and (with `track`) the running flicker sums carried across batches."""

    def __init__(self, model, style, device, smoothing: float, track: bool = True):
        from genfast.style.metrics import RunningFlicker
        from genfast.style.smoothing import TemporalSmoother

        self.model, self.device, self.track = model, device, track
        self.style = style_argument(model, style)
        self.smoother = TemporalSmoother(smoothing)
        self.seconds = 0.0
        self.frames = 0
        self.flicker = {name: RunningFlicker() for name in ("input", "raw", "smoothed")}

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        t0 = time.perf_counter()
        with torch.inference_mode():
            x = torch.from_numpy(np.stack(frames)).to(self.device).permute(0, 3, 1, 2).float()
            y = run_stylizer(self.model, x, self.style)
            smooth = self.smoother(x, y)
            raw_q = y.round()
            out_q = raw_q if smooth is y else smooth.round()
            if self.track:  # the flicker sums (three whole-frame reductions per frame)
                self.flicker["input"].update(x)
                self.flicker["raw"].update(raw_q)
                if self.smoother.smoothing:
                    self.flicker["smoothed"].update(out_q)
            out = out_q.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        self.seconds += time.perf_counter() - t0
        self.frames += len(frames)
        return [np.ascontiguousarray(o) for o in out]


def resolve_model(model, device):
    """(model on `device` in eval mode, device) from a module or a checkpoint path."""
    from torch import nn

    from genfast.checks import check_device

    if device is None and isinstance(model, nn.Module):
        device = model_device(model)
    device = check_device(device)
    if isinstance(model, (str, Path)):
        model = load_stylizer(model, device=device)
    elif isinstance(model, nn.Module):
        model = model.to(device).eval()
    elif not callable(model):
        raise TypeError(f"model: expected a stylizer module or a checkpoint path, got {type(model).__name__}")
    return model, device
