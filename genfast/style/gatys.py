"""Neural style transfer by optimisation (Gatys, Ecker and Bethge 2016).

The image G is optimised so that its features match the content image's at the content layers and its
Gram matrices match the style image(s)' at the style layers:

    J(G) = content_weight * sum_l J_content^l + style_weight * sum_l w_l J_style^l + tv_weight * TV(G)

Beyond the paper: several style images blended by weight, style scale, colour preservation, coarse-to-fine
scales, and tiles for images whose activations do not fit in memory (see Objective: the whole image is
optimised as one, its gradient computed a tile at a time, so peak memory is one tile's and there are no
seams).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from genfast import io, ops
from genfast.checks import ArgumentError, check_device, check_int, check_number, is_int
from genfast.models import FeatureNet, feature_net
from genfast.style import color, losses
from genfast.training.progress import progress_bar

OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


class StylizeInterrupted(KeyboardInterrupt):
    """Ctrl-C during stylize: the last iterate was written to `output` first."""

    def __init__(self, output: Path, iterations: int):
        super().__init__(f"interrupted after {iterations} iterations; wrote the last iterate to {output}")
        self.output, self.iterations = output, iterations


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


class Objective:
    """J(G) for one network, its layers, weights and targets.

    `tile` (pixels) bounds peak memory: the image is cut into tiles, each evaluated on a crop with
    `halo` extra pixels of context on every side, and only each tile's own positions are counted. The
    style loss is a function of the whole image's Gram matrices, which are sums over positions, so it
    takes two passes: the first (no autograd) adds up every tile's Gram contribution and yields the loss
    and dL/dG; the second backpropagates <dL/dG, G_tile> through each tile in turn, which is exactly the
    whole image's gradient (d<D, F F^T>/dF = (D + D^T) F). With a halo at least the receptive field of
    the deepest layer, tiled and untiled objectives agree to rounding; with a smaller one they differ
    only near tile borders, and since one image is optimised as a whole there are no seams.
    """

    #: tiles start and end on multiples of this, so every layer's grid (stride <= 32) lines up with it
    ALIGN = 32

    def __init__(self, net: FeatureNet, content_layers, style_layers, layer_weights, content_weight,
                 style_weight, tv_weight, loss: str, impl: str = "auto", *, tile: int | None = None,
                 halo: int = 64):
        self.net = net
        self.content_layers = list(content_layers)
        self.style_layers = list(style_layers)
        self.layer_weights = layer_weights
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight
        self.loss = loss
        self.impl = impl
        self.tile = tile
        self.halo = -(-halo // self.ALIGN) * self.ALIGN
        self.layers = list(dict.fromkeys(self.content_layers + self.style_layers))
        self.content_targets: dict = {}
        self.style_targets: dict[str, torch.Tensor] = {}
        self._norm = losses.gram_normalize(loss)

    # -- tiles ---------------------------------------------------------------------------------
    def plan(self, h: int, w: int):
        """[(core box, crop box)] as (y0, x0, y1, x1); the cores partition the image."""
        if not self.tile or (h <= self.tile and w <= self.tile):
            return [((0, 0, h, w), (0, 0, h, w))]

        def cuts(n):
            count = math.ceil(n / self.tile)
            inner = [round(i * n / count / self.ALIGN) * self.ALIGN for i in range(1, count)]
            return [0] + sorted(set(c for c in inner if 0 < c < n)) + [n]

        ys, xs = cuts(h), cuts(w)
        out = []
        for y0, y1 in zip(ys, ys[1:]):
            for x0, x1 in zip(xs, xs[1:]):
                crop = (max(0, y0 - self.halo), max(0, x0 - self.halo), min(h, y1 + self.halo), min(w, x1 + self.halo))
                out.append(((y0, x0, y1, x1), crop))
        return out

    @staticmethod
    def _interior(feature: torch.Tensor, core, crop, full_hw) -> torch.Tensor:
        """The part of a crop's feature map that belongs to the core tile."""
        fh, fw = feature.shape[-2:]
        ch, cw = crop[2] - crop[0], crop[3] - crop[1]
        sy, sx = max(1, round(ch / fh)), max(1, round(cw / fw))
        y_start = (core[0] - crop[0]) // sy
        x_start = (core[1] - crop[1]) // sx
        y_end = fh if core[2] == full_hw[0] else (core[2] - crop[0]) // sy
        x_end = fw if core[3] == full_hw[1] else (core[3] - crop[1]) // sx
        return feature[..., y_start:y_end, x_start:x_end]

    # -- targets -------------------------------------------------------------------------------
    @torch.no_grad()
    def set_content(self, content: torch.Tensor) -> None:
        """Content features per tile (interior positions only), for the content loss."""
        h, w = content.shape[-2:]
        self._plan = self.plan(h, w)
        self._hw = (h, w)
        self.content_targets = {}
        counts = {k: 0 for k in self.content_layers}
        for core, crop in self._plan:
            if not self.content_layers:
                break
            feats = self.net(content[..., crop[0]:crop[2], crop[1]:crop[3]], self.content_layers)
            for k, v in feats.items():
                inner = self._interior(v, core, crop, (h, w)).clone()
                self.content_targets[(k, core)] = inner
                counts[k] += inner[0, 0].numel()
        self._content_positions = counts

    @torch.no_grad()
    def _grams(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The whole image's normalised Gram matrices at the style layers, tile by tile.

        Also leaves in self._divisor the number each layer's F F^T was divided by."""
        h, w = image.shape[-2:]
        sums, positions = {}, {}
        for core, crop in self.plan(h, w):
            feats = self.net(image[..., crop[0]:crop[2], crop[1]:crop[3]], self.style_layers)
            for k, v in feats.items():
                inner = self._interior(v, core, crop, (h, w))
                sums[k] = sums.get(k, 0) + ops.gram_matrix(inner, normalize="none", impl=self.impl)[0]
                positions[k] = positions.get(k, 0) + inner[0, 0].numel()
        self._divisor = {k: positions[k] * (g.shape[-1] if self._norm == "chw" else 1) for k, g in sums.items()}
        return {k: g / self._divisor[k] for k, g in sums.items()}

    @torch.no_grad()
    def set_styles(self, styles: Sequence[torch.Tensor], blend: Sequence[float]) -> None:
        targets = {}
        for image, w in zip(styles, blend):
            for layer, gram in self._grams(image).items():
                targets[layer] = targets.get(layer, 0) + w * gram
        self.style_targets = targets

    # -- the objective -------------------------------------------------------------------------
    def __call__(self, image: torch.Tensor):
        """(total, parts) with autograd through `image`; untiled only (see backward for tiles)."""
        if len(self._plan) != 1:
            raise RuntimeError("Objective: a tiled objective is evaluated with value_and_grad")
        feats = self.net(image, self.layers)
        core, crop = self._plan[0]
        content = sum((losses.content_loss(feats[k], self.content_targets[(k, core)], self.loss)
                       for k in self.content_layers), image.new_zeros(()))
        style = sum((losses.style_loss(feats[k], self.style_targets[k], self.loss,
                                       weight=self.layer_weights.get(k, 1.0), impl=self.impl)
                     for k in self.style_layers), image.new_zeros(()))
        tv = losses.tv_loss(image) if self.tv_weight else image.new_zeros(())
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return total, {"content": content, "style": style, "tv": tv}

    def value_and_grad(self, image: torch.Tensor):
        """J(image) and its parts; adds dJ/dimage into image.grad. Memory: one tile at a time."""
        if len(self._plan) == 1:
            total, parts = self(image)
            total.backward()
            return total.detach(), {k: v.detach() for k, v in parts.items()}
        h, w = image.shape[-2:]
        # pass 1: the whole image's Gram matrices, the style loss, and dL/dG per layer
        style = image.new_zeros((), dtype=torch.float32)
        dgram = {}
        for k, g in self._grams(image.detach()).items():
            g = g.detach().requires_grad_(True)
            with torch.enable_grad():
                value = losses.gram_loss(g, self.style_targets[k], self.loss, weight=self.layer_weights.get(k, 1.0))
                (dgram[k],) = torch.autograd.grad(value, g)
            style = style + value.detach()
        # pass 2: per tile, a surrogate whose gradient is the whole objective's gradient on that tile
        content = image.new_zeros((), dtype=torch.float32)
        for core, crop in self._plan:
            view = image[..., crop[0]:crop[2], crop[1]:crop[3]]
            feats = self.net(view, self.layers)
            surrogate = image.new_zeros((), dtype=torch.float32)
            for k in self.style_layers:
                inner = self._interior(feats[k], core, crop, (h, w))
                g = ops.gram_matrix(inner, normalize="none", impl=self.impl)[0]
                surrogate = surrogate + self.style_weight * (dgram[k] * g).sum() / self._divisor[k]
            for k in self.content_layers:
                inner = self._interior(feats[k], core, crop, (h, w))
                scale = losses.content_scale(self.loss, inner.shape[1], self._content_positions[k])
                part = scale * (inner - self.content_targets[(k, core)]).float().square().sum()
                surrogate = surrogate + self.content_weight * part
                content = content + part.detach()
            surrogate.backward()
        tv = losses.tv_loss(image) if self.tv_weight else image.new_zeros(())
        if self.tv_weight:
            (self.tv_weight * tv).backward()
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv.detach()
        return total, {"content": content, "style": style, "tv": tv.detach()}


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
        total, p = objective.value_and_grad(image)
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"stylize: the loss became {total.item()} (parts: { {k: float(v) for k, v in p.items()} }); "
                f"lower lr or the weights")
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
            tile_halo: int = 64, output=None, save_every: int = 0, progress: bool = True,
            device=None, impl: str = "auto",
            callback: Callable[[int, torch.Tensor], None] | None = None) -> StylizeResult:
    """Stylize `content` with `style` (a path/tensor or a list of them) and return a StylizeResult.

    Images are paths or tensors (1, 3, H, W) in [0, 1]. `size` is the output's longest side (None keeps
    the content's size). With `output` the result is written there atomically (PNG or JPEG by suffix),
    and every `save_every` iterations a snapshot `<stem>_<iteration>.png` beside it.
    """
    t0 = time.perf_counter()
    device = check_device(device)
    styles_in = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles_in:
        raise ValueError("style: expected at least one style image")
    if style_blend_weights is None:
        blend = [1.0] * len(styles_in)
    else:
        blend = [check_number(w, "style_blend_weights") for w in style_blend_weights]
        if len(blend) != len(styles_in):
            raise ValueError(f"style_blend_weights: expected {len(styles_in)} weights (one per style image), "
                             f"got {len(blend)}")
        if sum(blend) <= 0:
            raise ValueError("style_blend_weights: the weights must not all be zero")
    blend = [w / sum(blend) for w in blend]
    content_weight = check_number(content_weight, "content_weight")
    style_weight = check_number(style_weight, "style_weight")
    tv_weight = check_number(tv_weight, "tv_weight")
    style_scale = check_number(style_scale, "style_scale")
    if style_scale == 0:
        raise ValueError("style_scale: must be positive, got 0")
    losses.check_convention(loss)
    color.check_mode(preserve_color)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    lr = check_number(DEFAULT_LR[optimizer] if lr is None else lr, "lr", positive=True)
    for name, value, low in (("iterations", iterations, 0), ("num_scales", num_scales, 1),
                             ("save_every", save_every, 0)):
        check_int(value, name, low)
    if tile is not None and (not is_int(tile) or tile < 32):
        raise ArgumentError("tile", f"expected an integer of at least 32 pixels, got {tile!r}")
    check_int(tile_halo, "tile_halo", 0)
    if output is not None and Path(output).suffix.lower() not in io.IMAGE_SUFFIXES:
        raise ValueError(f"output: unknown image suffix in {str(output)!r}; expected one of "
                         f"{sorted(io.IMAGE_SUFFIXES)}")
    if output is not None:
        io.check_output(output, {"content": content, "style": styles_in,
                                 "init": init if init not in ("content", "noise") else None})

    net = network if isinstance(network, FeatureNet) else feature_net(network, weights, pooling=pooling)
    net = net.to(device)
    if size is not None:
        check_int(size, "size", net.min_size)    # a smaller image has no pixels left at the deepest layers
    content_layers = net.check_layers(net.content_layers if content_layers is None else content_layers,
                                      "content_layers")
    style_layers = net.check_layers(net.style_layers if style_layers is None else style_layers, "style_layers")
    if isinstance(style_layer_weights, dict):
        layer_weights = {k: check_number(v, "style_layer_weights") for k, v in style_layer_weights.items()}
        net.check_layers(list(layer_weights), "style_layer_weights")
    elif style_layer_weights is not None:
        ws = [check_number(v, "style_layer_weights") for v in style_layer_weights]
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
    if min(h_full, w_full) < net.min_size:
        raise ArgumentError("content", f"the image is {w_full}x{h_full}: {type(net).__name__} needs at least "
                                       f"{net.min_size} pixels on each side (pass a larger size)")
    longest = max(h_full, w_full)
    sizes = [max(net.min_size, round(longest / 2 ** (num_scales - 1 - i))) for i in range(num_scales)]

    objective = Objective(net, content_layers, style_layers, layer_weights, content_weight, style_weight,
                          tv_weight, loss, impl, tile=tile, halo=tile_halo)
    image = None
    history: list = []
    bar = progress_bar(iterations * len(sizes), desc="stylize", unit="it", enabled=progress)
    done = [0]
    out_path = Path(output) if output is not None else None

    latest = {}

    def snapshot(img):
        done[0] += 1
        latest["image"] = img
        if callback is not None:
            callback(done[0], img)
        if save_every and out_path is not None and done[0] % save_every == 0:
            io.save_image(img.detach().clamp(0, 1), out_path.with_name(f"{out_path.stem}_{done[0]:05d}.png"))

    try:
        for s in sizes:
            c = io.resize(content_full, s) if s != longest else content_full
            h, w = c.shape[-2:]
            style_size = max(1, round(max(h, w) * style_scale))
            objective.set_content(c)
            objective.set_styles([io.resize(st, style_size) for st in styles_full], blend)
            if image is None:
                image = _initial_image(init, c, generator, device)
            else:
                image = F.interpolate(image, size=(h, w), mode="bicubic", align_corners=False).clamp_(0, 1)
            image = _optimise(image, objective, iterations, optimizer, lr, bar, snapshot, history)
    except KeyboardInterrupt:
        # keep the work: the last iterate goes to the output (atomically) before the interrupt propagates
        if out_path is not None and "image" in latest:
            partial = latest["image"].detach().clamp(0, 1)
            if preserve_color == "luminance":
                partial = color.transfer_luminance(partial, content_full)
            io.save_image(partial.cpu(), out_path)
            raise StylizeInterrupted(out_path, done[0]) from None
        raise
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
