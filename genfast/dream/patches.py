"""The image patches that excite a unit most (Zeiler & Fergus 2014): for each of the first K channels
of a layer, the 9 strongest positions over a whole folder of images, each shown as the input patch its
receptive field covers (receptive_field.py), one 3 x 3 block per unit.

    result = top_patches("photos/", "block3_expand", units=16, output="patches.png")

The images are streamed: one forward pass each (to the layer only; consecutive images of one size
batched), then every unit's best positions merged into a running top 9 that keeps the
receptive-field crops of its entries (resized into patches once, at the end), so memory holds K x 9
crops whatever the folder's size. By default one image gives a unit at most one patch
(`per_image=1`), so a block shows nine images, not nine neighbouring positions of one.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from genfast import data, io
from genfast.checks import ArgumentError, check_device, check_int
from genfast.dream.receptive_field import geometry
from genfast.models import FeatureNet, feature_net
from genfast.training.progress import progress_bar


@dataclass
class PatchResult:
    patches: torch.Tensor        # (K, 9, 3, P, P) in [0, 1]; missing ones (fewer than 9 found) are grey
    values: torch.Tensor         # (K, 9) the activations, descending (-inf where missing)
    sources: list                # [unit][rank] (file, row, column) of the unit in the layer
    layer: str
    images: int                  # images read
    skipped: list                # files that could not be read
    seconds: float
    output: Path | None = None


def cut_patch(image: torch.Tensor, box, field: tuple[int, int], offset: tuple[int, int], size: int) -> torch.Tensor:
    """The receptive field `box` (top, left, bottom, right; clipped to the image) of (1, 3, H, W),
    placed in a grey square of the whole field's size at `offset` (where the clipped box starts
    inside the field), resized to size x size."""
    top, left, bottom, right = box
    canvas = torch.full((3, field[0], field[1]), 0.5, dtype=image.dtype, device=image.device)
    y, x = offset
    canvas[:, y:y + bottom - top, x:x + right - left] = image[0, :, top:bottom, left:right]
    return F.interpolate(canvas[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def top_patches(source, layer: str, *, network: str | FeatureNet = "auto", weights="imagenet", units: int = 16,
                top: int = 9, per_image: int = 1, size: int | None = 224, patch_size: int = 48, batch_size: int = 4,
                output=None, progress: bool = True, device=None, max_image_pixels: int | None = None) -> PatchResult:
    """The `top` strongest positions of each of the first `units` channels of `layer` over the
    images in `source` (a folder, searched recursively, files or skimage:NAME specs; each image's
    longest side resized to `size`, None keeps it). Unreadable files are skipped with one warning
    naming them. Consecutive images of one size go through the network `batch_size` at a time
    (4 by default: with the channels-last network 1.4x the images/s of one at a time over 128 x 128
    crops on 2 cores; benchmarks/RESULTS.md, "top_patches").
    With `output`, a sheet of one block per unit, written atomically."""
    t0 = time.perf_counter()
    device = check_device(device)
    check_int(units, "units", 1)
    check_int(top, "top", 1)
    check_int(per_image, "per_image", 1)
    if size is not None:
        check_int(size, "size", 16)
    check_int(patch_size, "patch_size", 4)
    check_int(batch_size, "batch_size", 1)
    if output is not None:
        if Path(output).suffix.lower() not in io.IMAGE_SUFFIXES:
            raise ArgumentError("output", f"unknown image suffix in {str(output)!r}; expected one of "
                                          f"{', '.join(sorted(io.IMAGE_SUFFIXES))}")
    files = data.find_images(source, name="source")
    if output is not None:
        io.check_output(output, {"source": files})
    net = network if isinstance(network, FeatureNet) else feature_net(network, weights)
    net = net.to(device)
    (layer,) = net.check_layers([layer], "layer")
    if layer == "logits":
        raise ArgumentError("layer", "'logits' has no image positions; choose a spatial layer")

    values = torch.full((units, top), -math.inf)
    # [unit][rank]: (receptive-field crop, field size, offset) of the running top; resized once, at the end
    crops: list = [[None] * top for _ in range(units)]
    sources: list = [[None] * top for _ in range(units)]
    geometries: dict = {}       # input (h, w) -> the layer's (rows, columns) geometry
    skipped, read = [], 0
    bar = progress_bar(len(files), desc=f"patches {layer}", unit="image", enabled=progress)

    def merge(image, f, feature):
        """Merge one image's best positions into the running top of each unit."""
        if feature.shape[0] < units:
            raise ArgumentError("units", f"{layer} has {feature.shape[0]} channels, asked for the first {units}")
        flat = feature[:units].flatten(1).float()                         # (K, h w)
        best, where = flat.topk(min(per_image, flat.shape[1]), dim=1)     # this image's candidates
        best, where = best.cpu(), where.cpu()
        entering = (best[:, 0] > values[:, -1]).nonzero().flatten().tolist()
        if not entering:                                                  # the common case, late in a folder
            return
        merged_values, order = torch.cat([values, best], dim=1).topk(top, dim=1)   # every unit at once
        order, where = order.tolist(), where.tolist()
        hw = tuple(image.shape[-2:])
        if hw not in geometries:
            geometries[hw] = geometry(net, layer, hw)
        rows, cols = geometries[hw]
        width = feature.shape[-1]
        for u in entering:
            old_crops, old_sources = list(crops[u]), list(sources[u])
            for rank, j in enumerate(order[u]):
                if j < top:                                               # kept from before
                    crops[u][rank], sources[u][rank] = old_crops[j], old_sources[j]
                    continue
                y, x = divmod(where[u][j - top], width)
                (t, b), (l, r) = rows.span(y), cols.span(x)
                offset = (t - (rows.first + y * rows.jump), l - (cols.first + x * cols.jump))
                crops[u][rank] = (image[:, :, t:b, l:r].cpu().clone(), (rows.size, cols.size), offset)
                sources[u][rank] = (str(f), y, x)
            values[u] = merged_values[u]

    pending: list = []          # consecutive images of one size, run through the network as one batch

    def flush():
        if pending:
            batch = pending[0][0] if len(pending) == 1 else torch.cat([image for image, _ in pending])
            with torch.no_grad():
                features = net(batch, [layer])[layer]
            for (image, f), feature in zip(pending, features):
                merge(image, f, feature)
            pending.clear()

    try:
        for f in files:
            bar.update(1)
            try:
                image = io.load_image(f, size, name="source", max_pixels=max_image_pixels).to(device)
            except (ValueError, OSError) as e:
                skipped.append(f"{f} ({getattr(e, 'detail', e)})")
                continue
            read += 1
            if pending and (pending[0][0].shape != image.shape or len(pending) == batch_size):
                flush()
            pending.append((image, f))
        flush()
    finally:
        bar.close()
    if skipped:
        warnings.warn(f"source: skipped {len(skipped)} unreadable file(s): {'; '.join(skipped)}", RuntimeWarning,
                      stacklevel=2)
    if read == 0:
        raise ArgumentError("source", f"no readable image among {len(files)} file(s)")
    grey = torch.full((3, patch_size, patch_size), 0.5)
    patches = torch.stack([torch.stack([grey if c is None else
                                        cut_patch(c[0], (0, 0, *c[0].shape[-2:]), c[1], c[2], patch_size)
                                        for c in unit]) for unit in crops])
    out_path = None
    if output is not None:
        out_path = save_sheet(patches, values, layer, output)
    return PatchResult(patches=patches, values=values, sources=sources, layer=layer, images=read, skipped=skipped,
                       seconds=time.perf_counter() - t0, output=out_path)


def save_sheet(patches: torch.Tensor, values: torch.Tensor, layer: str, output) -> Path:
    """One square block of patches per unit (3 x 3 for the top 9), labelled with the unit and its best value."""
    k, top = patches.shape[:2]
    side = math.ceil(math.sqrt(top))
    blocks = torch.stack([io.make_grid(patches[u], nrow=side, padding=1, pad_value=1.0) for u in range(k)])
    labels = [f"unit {u}: {values[u, 0].item():.2f}" for u in range(k)]
    return io.save_image_grid(blocks, output, padding=4, labels=labels,
                              title=f"top {top} patches per unit, {layer}")
