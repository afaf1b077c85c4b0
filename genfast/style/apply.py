"""Stylize images with a trained feed-forward stylizer (TransformerNet, MultiStyleNet, or any module
with the same [0, 255] convention, such as genfast.reference.transformer_net.TransformerNet).

Images are (3, H, W) (or (1, 3, H, W), what genfast.io.load_image returns) float tensors of RGB in
[0, 1], of any sizes. Images of the same size are batched together; results come back in the input
order, in [0, 1], on each input's device.

Sizes that are not multiples of 4: the network halves the size twice (stride-2 convolutions that
round up) and doubles it twice, so an H x W input comes back as ceil4(H) x ceil4(W), with the
extra rows made from the stride-2 convolutions reading reflection padding past the edge. We instead
reflect-pad the image itself to a multiple of 4 (split between both sides), which gives the network
a real, mirrored image there, and crop the output back to H x W.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from genfast.style.transformer_net import MIN_SIZE, MultiStyleNet, load_stylizer

MULTIPLE = 4


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


def _style_arg(model, style, n: int, device):
    """What to pass as forward's `style` for a batch of n, or None for a single-style model."""
    multi = isinstance(model, MultiStyleNet)
    if not multi:
        if style is not None:
            raise ValueError(f"stylize_images: style was given, but {type(model).__name__} is a single-style "
                             f"model (style applies to a MultiStyleNet)")
        return None
    s = model.num_styles
    if style is None:
        if s == 1:
            return 0
        raise ValueError(f"stylize_images: the model is a MultiStyleNet with {s} styles; pass style= "
                         f"(an index in [0, {s}) or {s} mixing weights)")
    if isinstance(style, bool):
        raise TypeError(f"stylize_images: expected style to be an int index or mixing weights, got {style!r}")
    if isinstance(style, torch.Tensor) and style.dim() == 0 and not style.is_floating_point():
        style = int(style)
    if isinstance(style, int):
        if not 0 <= style < s:
            raise ValueError(f"stylize_images: expected style index in [0, {s}), got {style}")
        return style
    w = torch.as_tensor(style)
    if not w.is_floating_point():
        w = w.float()
    if w.dim() != 1 or w.shape[0] != s:
        raise ValueError(f"stylize_images: expected style mixing weights of shape ({s},) (one per style), "
                         f"got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        raise ValueError("stylize_images: expected finite style mixing weights")
    return w.to(device=device, dtype=torch.float32).reshape(1, s).expand(n, s)


def _pad_to_multiple(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    h, w = x.shape[-2:]
    ph, pw = -h % MULTIPLE, -w % MULTIPLE
    top, left = ph // 2, pw // 2
    pads = (left, pw - left, top, ph - top)
    if ph or pw:
        x = torch.nn.functional.pad(x, pads, mode="reflect")
    return x, pads


def _model_device(model) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def stylize_images(model, images, *, style=None, batch_size: int = 4, device=None, progress: bool = True):
    """Stylize `images` with a trained stylizer; returns [0, 1] tensors like the input.

    Args:
        model: a TransformerNet / MultiStyleNet (or a module with the same [0, 255] convention), or
            the path of a checkpoint (loaded with genfast.style.load_stylizer).
        images: a list of (3, H, W) or (1, 3, H, W) float tensors in [0, 1], sizes may differ
            (returns a list of (3, H, W)); or one (3, H, W) / (N, 3, H, W) tensor (returns the same shape).
        style: MultiStyleNet only: a style index, or one mixing weight per style (used as given;
            weights that sum to 1 blend the styles).
        batch_size: images of the same size run through the network this many at a time.
        device: where to run (the model is moved there); default: the model's device.
        progress: show a progress bar over the images.
    """
    if isinstance(model, (str, Path)):
        model = load_stylizer(model, device=device or "cpu")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"stylize_images: expected model to be a torch.nn.Module or a checkpoint path, "
                        f"got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"stylize_images: expected batch_size to be an int >= 1, got {batch_size!r}")
    items, kind = _as_images(images)
    for i, im in enumerate(items):
        _check_image(im, i)
    if device is not None:
        device = torch.device(device)
        model = model.to(device)
    else:
        device = _model_device(model)

    # same-size images together, in order of first appearance
    groups: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(items):
        groups.setdefault(tuple(im.shape[1:]), []).append(i)
    style1 = _style_arg(model, style, 1, device)  # validated once, before any work

    from tqdm.auto import tqdm

    results: list[torch.Tensor | None] = [None] * len(items)
    with torch.inference_mode(), tqdm(total=len(items), desc="stylize", unit="img", disable=not progress,
                                      dynamic_ncols=True) as bar:
        for (h, w), idx in groups.items():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start:start + batch_size]
                x = torch.stack([items[i].to(device=device, dtype=torch.float32) for i in chunk]).mul_(255.0)
                x, (left, _, top, _) = _pad_to_multiple(x)
                s = style1.expand(len(chunk), -1) if isinstance(style1, torch.Tensor) else style1
                y = model(x) if s is None else model(x, s)
                y = y[:, :, top:top + h, left:left + w].clamp(0.0, 255.0).div_(255.0)
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
