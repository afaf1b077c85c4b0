"""Neural style transfer by optimisation (Gatys, Ecker and Bethge 2016).

The image G is optimised so that its features match the content image's at the content layers and its
Gram matrices match the style image(s)' at the style layers:

    J(G) = content_weight * sum_l J_content^l + style_weight * sum_l w_l J_style^l + tv_weight * TV(G)

Beyond the paper: several style images blended by weight, style scale, colour preservation, coarse-to-fine
scales, and tiles for images whose activations do not fit in memory. A tile is optimised on its own
crop against the whole image's style statistics (a Gram matrix normalised by the number of positions is
an average, so one tile should match it as the whole image does), starts from the current canvas (so it
continues what its neighbours already painted in the overlap) and is blended back with a linear ramp
across the overlap; peak memory is that of one tile.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from genfast import io
from genfast.models import FeatureNet, feature_net
from genfast.style import color, losses

OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


@dataclass
class StylizeResult:
    image: torch.Tensor                       # (1, 3, H, W) in [0, 1]
    seconds: float
    history: list = field(default_factory=list)   # per iteration: {"content", "style", "tv", "total"}
    network: str = ""
    output: Path | None = None


def _as_image(value, size, name: str, device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[:2] != (1, 3):
            raise ValueError(f"{name}: expected an image tensor (1, 3, H, W) or (3, H, W), got {tuple(value.shape)}")
        if t.shape[-1] == 0 or t.shape[-2] == 0:
            raise ValueError(f"{name}: image has zero size {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a float image in [0, 1], got dtype {t.dtype}")
        t = io.resize(t.float(), size)
    elif isinstance(value, (str, Path)):
        t = io.load_image(value, size, name=name)
    else:
        raise TypeError(f"{name}: expected a path or an image tensor, got {type(value).__name__}")
    return t.to(device)


def _check_weight(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}: must be non-negative, got {value}")
    return float(value)


class Objective:
    """J(G) for one network, its layers, weights and targets. Content targets are set per crop."""

    def __init__(self, net: FeatureNet, content_layers, style_layers, layer_weights, content_weight,
                 style_weight, tv_weight, loss: str, impl: str = "auto"):
        self.net = net
        self.content_layers = list(content_layers)
        self.style_layers = list(style_layers)
        self.layer_weights = layer_weights
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight
        self.loss = loss
        self.impl = impl
        self.layers = list(dict.fromkeys(self.content_layers + self.style_layers))
        self.content_targets: dict[str, torch.Tensor] = {}
        self.style_targets: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def set_content(self, content: torch.Tensor) -> None:
        feats = self.net(content, self.content_layers) if self.content_layers else {}
        self.content_targets = {k: v.detach().clone() for k, v in feats.items()}

    @torch.no_grad()
    def set_styles(self, styles: Sequence[torch.Tensor], blend: Sequence[float], tile: int | None) -> None:
        targets = {}
        for image, w in zip(styles, blend):
            for layer, gram in self._style_grams(image, tile).items():
                targets[layer] = targets.get(layer, 0) + w * gram
        self.style_targets = targets

    def _style_grams(self, image: torch.Tensor, tile: int | None) -> dict[str, torch.Tensor]:
        h, w = image.shape[-2:]
        if not tile or (h <= tile and w <= tile):
            feats = self.net(image, self.style_layers)
            return {k: losses.target_gram(v, self.loss, impl=self.impl)[0] for k, v in feats.items()}
        # A normalised Gram matrix is a mean over positions: average the tiles' weighted by their area.
        sums, total = {}, 0
        for y0, x0, y1, x1 in _tiles(h, w, tile, 0):
            area = (y1 - y0) * (x1 - x0)
            feats = self.net(image[..., y0:y1, x0:x1], self.style_layers)
            for k, v in feats.items():
                sums[k] = sums.get(k, 0) + area * losses.target_gram(v, self.loss, impl=self.impl)[0]
            total += area
        return {k: v / total for k, v in sums.items()}

    def __call__(self, image: torch.Tensor):
        feats = self.net(image, self.layers)
        content = sum((losses.content_loss(feats[k], self.content_targets[k], self.loss)
                       for k in self.content_layers), image.new_zeros(()))
        style = sum((losses.style_loss(feats[k], self.style_targets[k], self.loss,
                                       weight=self.layer_weights.get(k, 1.0), impl=self.impl)
                     for k in self.style_layers), image.new_zeros(()))
        tv = losses.tv_loss(image) if self.tv_weight else image.new_zeros(())
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return total, {"content": content, "style": style, "tv": tv}


def _tiles(h: int, w: int, tile: int, overlap: int):
    """(y0, x0, y1, x1) covering an h x w image with tiles of at most `tile`, overlapping by `overlap`."""
    def starts(n):
        if n <= tile:
            return [0]
        stride = tile - overlap
        count = math.ceil((n - tile) / stride) + 1
        # spread the tiles evenly so the last one does not hang over the edge
        return [round(i * (n - tile) / (count - 1)) for i in range(count)]
    return [(y, x, min(y + tile, h), min(x + tile, w)) for y in starts(h) for x in starts(w)]


def _ramp_mask(shape, box, h, w, overlap, device) -> torch.Tensor:
    """Weight 1 inside the tile, falling linearly to 0 over `overlap` pixels at edges inside the image."""
    y0, x0, y1, x1 = box
    def ramp(n, lo_inner, hi_inner):
        r = torch.ones(n, device=device)
        k = min(overlap, n // 2)
        if k > 0:
            edge = (torch.arange(k, device=device, dtype=torch.float32) + 1) / (k + 1)
            if lo_inner:
                r[:k] = torch.minimum(r[:k], edge)
            if hi_inner:
                r[n - k:] = torch.minimum(r[n - k:], edge.flip(0))
        return r
    ry = ramp(y1 - y0, y0 > 0, y1 < h)
    rx = ramp(x1 - x0, x0 > 0, x1 < w)
    return (ry[:, None] * rx[None, :]).expand(shape)


def _optimise(image, objective: Objective, iterations: int, optimizer: str, lr: float, bar, on_iter,
              history: list) -> torch.Tensor:
    image = image.detach().clone().requires_grad_(True)
    if optimizer == "lbfgs":
        # one iteration per step (max_iter=1) keeps the L-BFGS history across steps and lets the loop
        # report progress, save snapshots and stop cleanly every iteration
        opt = torch.optim.LBFGS([image], lr=lr, max_iter=1, history_size=100,
                                tolerance_grad=-1, tolerance_change=-1)
    else:
        opt = torch.optim.Adam([image], lr=lr)
    parts = {}

    def closure():
        opt.zero_grad(set_to_none=False)
        total, p = objective(image)
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"stylize: the loss became {total.item()} (parts: { {k: float(v) for k, v in p.items()} }); "
                f"lower lr or the weights")
        total.backward()
        parts.update({k: float(v.detach()) for k, v in p.items()}, total=float(total.detach()))
        return total

    for it in range(iterations):
        opt.step(closure)
        if optimizer == "adam":
            with torch.no_grad():
                image.clamp_(0.0, 1.0)
        history.append(dict(parts))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(content=f"{parts['content']:.3g}", style=f"{parts['style']:.3g}",
                            tv=f"{parts['tv']:.3g}", refresh=False)
        if on_iter is not None:
            on_iter(image)
    return image.detach().clamp_(0.0, 1.0)


def stylize(content, style, *, style_blend_weights: Sequence[float] | None = None,
            network: str | FeatureNet = "auto", weights="imagenet", pooling: str = "max",
            content_layers: Sequence[str] | None = None, style_layers: Sequence[str] | None = None,
            style_layer_weights: Sequence[float] | dict | None = None,
            content_weight: float = 1.0, style_weight: float = 1e5, tv_weight: float = 300.0,
            loss: str = "mse", size: int | None = 512, style_scale: float = 1.0, init="content",
            optimizer: str = "lbfgs", lr: float | None = None, iterations: int = 300, seed: int = 0,
            preserve_color: str = "none", num_scales: int = 1, tile: int | None = None,
            tile_overlap: int | None = None, output=None, save_every: int = 0, progress: bool = True,
            device=None, impl: str = "auto",
            callback: Callable[[int, torch.Tensor], None] | None = None) -> StylizeResult:
    """Stylize `content` with `style` (a path/tensor or a list of them) and return a StylizeResult.

    Images are paths or tensors (1, 3, H, W) in [0, 1]. `size` is the output's longest side (None keeps
    the content's size). With `output` the result is written there atomically (PNG or JPEG by suffix),
    and every `save_every` iterations a snapshot `<stem>_<iteration>.png` beside it.
    """
    t0 = time.perf_counter()
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    styles_in = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles_in:
        raise ValueError("style: expected at least one style image")
    if style_blend_weights is None:
        blend = [1.0] * len(styles_in)
    else:
        blend = [_check_weight(w, "style_blend_weights") for w in style_blend_weights]
        if len(blend) != len(styles_in):
            raise ValueError(f"style_blend_weights: expected {len(styles_in)} weights (one per style image), "
                             f"got {len(blend)}")
        if sum(blend) <= 0:
            raise ValueError("style_blend_weights: the weights must not all be zero")
    blend = [w / sum(blend) for w in blend]
    content_weight = _check_weight(content_weight, "content_weight")
    style_weight = _check_weight(style_weight, "style_weight")
    tv_weight = _check_weight(tv_weight, "tv_weight")
    style_scale = _check_weight(style_scale, "style_scale")
    if style_scale == 0:
        raise ValueError("style_scale: must be positive, got 0")
    losses.check_convention(loss)
    color.check_mode(preserve_color)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    for name, value, low in (("iterations", iterations, 0), ("num_scales", num_scales, 1),
                             ("save_every", save_every, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    if tile is not None and (not isinstance(tile, int) or tile < 32):
        raise ValueError(f"tile: expected an integer of at least 32 pixels, got {tile!r}")
    overlap = (tile // 4 if tile_overlap is None else tile_overlap) if tile else 0
    if tile and not (0 <= overlap < tile // 2 + 1):
        raise ValueError(f"tile_overlap: expected 0 <= overlap <= tile/2, got {overlap} for tile {tile}")
    if output is not None and Path(output).suffix.lower() not in io.IMAGE_SUFFIXES:
        raise ValueError(f"output: unknown image suffix in {str(output)!r}; expected one of "
                         f"{sorted(io.IMAGE_SUFFIXES)}")

    net = network if isinstance(network, FeatureNet) else feature_net(network, weights, pooling=pooling)
    net = net.to(device)
    content_layers = net.check_layers(net.content_layers if content_layers is None else content_layers,
                                      "content_layers")
    style_layers = net.check_layers(net.style_layers if style_layers is None else style_layers, "style_layers")
    if isinstance(style_layer_weights, dict):
        layer_weights = {k: _check_weight(v, "style_layer_weights") for k, v in style_layer_weights.items()}
        net.check_layers(list(layer_weights), "style_layer_weights")
    elif style_layer_weights is not None:
        ws = [_check_weight(v, "style_layer_weights") for v in style_layer_weights]
        if len(ws) != len(style_layers):
            raise ValueError(f"style_layer_weights: expected {len(style_layers)} weights (one per style layer), "
                             f"got {len(ws)}")
        layer_weights = dict(zip(style_layers, ws))
    else:
        layer_weights = {k: net.style_layer_weights.get(k, 1.0) for k in style_layers}

    content_full = _as_image(content, size, "content", device)
    styles_full = [_as_image(s, None, "style", device) for s in styles_in]
    if preserve_color == "histogram":
        styles_full = [color.match_color(s, content_full) for s in styles_full]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    torch.manual_seed(seed)

    h_full, w_full = content_full.shape[-2:]
    longest = max(h_full, w_full)
    sizes = [max(32, round(longest / 2 ** (num_scales - 1 - i))) for i in range(num_scales)]

    objective = Objective(net, content_layers, style_layers, layer_weights, content_weight, style_weight,
                          tv_weight, loss, impl)
    image = None
    history: list = []
    total_iters = 0
    plans = []
    for s in sizes:
        c = io.resize(content_full, s) if s != longest else content_full
        boxes = _tiles(c.shape[-2], c.shape[-1], tile, overlap) if tile else [(0, 0, c.shape[-2], c.shape[-1])]
        plans.append((c, boxes))
        total_iters += iterations * len(boxes)

    from tqdm.auto import tqdm

    bar = tqdm(total=total_iters, desc="stylize", unit="it", disable=not progress, dynamic_ncols=True)
    done = [0]
    out_path = Path(output) if output is not None else None

    def snapshot(img_full):
        done[0] += 1
        if callback is not None:
            callback(done[0], img_full)
        if save_every and out_path is not None and done[0] % save_every == 0:
            io.save_image(img_full.detach().clamp(0, 1), out_path.with_name(f"{out_path.stem}_{done[0]:05d}.png"))

    try:
        for scale_index, (c, boxes) in enumerate(plans):
            h, w = c.shape[-2:]
            style_size = max(1, round(max(h, w) * style_scale))
            objective.set_styles([io.resize(s, style_size) for s in styles_full], blend, tile)
            if image is None:
                image = _initial_image(init, c, generator, device)
            else:
                image = F.interpolate(image, size=(h, w), mode="bicubic", align_corners=False).clamp_(0, 1)
            if len(boxes) == 1:
                objective.set_content(c)
                image = _optimise(image, objective, iterations, optimizer, lr, bar, snapshot, history)
                continue
            canvas = image.detach().clone()
            for box in boxes:
                y0, x0, y1, x1 = box
                objective.set_content(c[..., y0:y1, x0:x1])

                def tile_snapshot(img, box=box):
                    if callback is not None or save_every:
                        view = canvas.clone()
                        view[..., box[0]:box[2], box[1]:box[3]] = img.detach()
                        snapshot(view)
                    else:
                        done[0] += 1

                result = _optimise(canvas[..., y0:y1, x0:x1], objective, iterations, optimizer, lr, bar,
                                   tile_snapshot, history)
                mask = _ramp_mask(result.shape, box, h, w, overlap, device)
                region = canvas[..., y0:y1, x0:x1]
                canvas[..., y0:y1, x0:x1] = region * (1 - mask) + result * mask
            image = canvas
    finally:
        bar.close()

    if preserve_color == "luminance":
        image = color.transfer_luminance(image, content_full)
    image = image.detach().clamp(0, 1).cpu()
    if out_path is not None:
        io.save_image(image, out_path)
    return StylizeResult(image=image, seconds=time.perf_counter() - t0, history=history,
                         network=f"{type(net).__name__} ({net.weights_source})", output=out_path)


def _initial_image(init, content: torch.Tensor, generator: torch.Generator, device) -> torch.Tensor:
    if isinstance(init, str) and init == "content":
        return content.clone()
    if isinstance(init, str) and init == "noise":
        return torch.rand(content.shape, generator=generator).to(device)
    if isinstance(init, torch.Tensor) or isinstance(init, (str, Path)):
        image = _as_image(init, None, "init", device)
        return F.interpolate(image, size=content.shape[-2:], mode="bicubic", align_corners=False,
                             antialias=True).clamp_(0, 1)
    raise ValueError(f"init: expected 'content', 'noise', an image path or tensor, got {init!r}")
