"""The gradient of a sum-over-positions objective, a tile at a time: peak memory is one tile's.

The image is cut into core tiles that partition it. Each core is evaluated on a crop with `halo`
extra pixels of context on every side, and only the feature units the core owns (unit i of a layer
with unit spacing J is owned by the core containing input row i J) count; the tiles' gradients,
crops and all, are added into one image-sized gradient. The objective is a sum over units, so

    tiled gradient = untiled gradient      wherever every unit that sees the pixel is computed exactly,

and a unit is computed exactly when its receptive field lies inside the crop (or runs over the
image's own border, where crop and image pad alike). With `halo` >= the deepest layer's receptive
field every owned unit is exact and so is the whole gradient; a smaller halo leaves differences only
near the tile borders (tested in tests/dream/test_tiling.py).

The crops must see the same unit grid as the whole image. Crops start on multiples of `align`, the
largest unit spacing of the layers asked for (so unit i of the crop is unit i + start / J of the
image), and, for TensorFlow's SAME padding, which puts the odd padding pixel of a stride-2 layer at
the end depending on the size of its input, every crop's size is congruent to the image's modulo
`align` (so every layer of the crop pads its start like the image does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from genfast.dream.receptive_field import AxisGeometry


@dataclass(frozen=True)
class Tile:
    core: tuple[int, int, int, int]   # (top, left, bottom, right) the tile owns; the cores partition the image
    crop: tuple[int, int, int, int]   # what it is evaluated on: the core and its halo, aligned


def _cuts(n: int, tile: int, align: int) -> list[int]:
    count = math.ceil(n / tile)
    inner = {round(i * n / count / align) * align for i in range(1, count)}
    return [0] + sorted(c for c in inner if 0 < c < n) + [n]


def _crop_end(end: int, n: int, align: int) -> int:
    """The smallest e >= end with e = n (mod align), or n: the crop's size then matches the image's
    modulo align (see the module docstring)."""
    if end >= n:
        return n
    return end + (n - end) % align


def plan(h: int, w: int, tile: int | None, halo: int, align: int) -> list[Tile]:
    """Tiles of about `tile` pixels (one tile of the whole image for None or an image that fits)."""
    if not tile or (h <= tile and w <= tile):
        return [Tile((0, 0, h, w), (0, 0, h, w))]
    halo = -(-halo // align) * align
    out = []
    ys, xs = _cuts(h, tile, align), _cuts(w, tile, align)
    for y0, y1 in zip(ys, ys[1:]):
        for x0, x1 in zip(xs, xs[1:]):
            crop = (max(0, y0 - halo), max(0, x0 - halo),
                    _crop_end(y1 + halo, h, align), _crop_end(x1 + halo, w, align))
            out.append(Tile((y0, x0, y1, x1), crop))
    return out


def own_units(tile: Tile, rows: AxisGeometry, cols: AxisGeometry) -> tuple[slice, slice]:
    """The (row, column) slices of a crop's feature map holding the units `tile` owns; `rows` and
    `cols` are the layer's geometry for the whole image."""
    def axis(g: AxisGeometry, start, stop, crop_start):
        first = -(-start // g.jump)
        last = min(g.length, -(-stop // g.jump))
        offset = crop_start // g.jump
        return slice(first - offset, last - offset)

    return axis(rows, tile.core[0], tile.core[2], tile.crop[0]), axis(cols, tile.core[1], tile.core[3], tile.crop[1])


def value_and_grad(image: torch.Tensor, tiles: list[Tile],
                   tile_loss: Callable[[torch.Tensor, Tile], torch.Tensor]) -> tuple[float, torch.Tensor]:
    """sum over tiles of tile_loss(crop, tile), and its gradient with respect to `image` (1, 3, H, W).

    Each tile is evaluated and backpropagated on its own, so only one tile's activations are alive
    at a time; the gradient is accumulated in one image-sized tensor."""
    grad = torch.zeros_like(image)
    total = 0.0
    for t in tiles:
        top, left, bottom, right = t.crop
        crop = image[..., top:bottom, left:right].detach().requires_grad_(True)
        with torch.enable_grad():
            loss = tile_loss(crop, t)
            (g,) = torch.autograd.grad(loss, crop)
        grad[..., top:bottom, left:right] += g
        total += float(loss.detach())
    return total, grad
