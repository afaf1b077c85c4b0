"""DeepDream (Mordvintsev, Olah and Tyka 2015): gradient ascent on the pixels to amplify what whole
layers of a frozen network respond to, at several scales (octaves), with the detail that shrinking
lost put back after each upscale.

    result = dream("skimage:coffee", layers={"block5": 1.0, "block8": 1.5}, output="dream.png")

The algorithm, as the material (Chollet's Keras example) describes it:

1. Octave sizes: the image's size divided by octave_scale^(octaves-1), ..., octave_scale, 1.
2. Start from the original shrunk to the smallest size. At each octave, run `steps` steps of
   gradient ascent on J(x) = sum over layers of weight * (mean square of the layer's activations)
   (or the mean activation, or the match with a guide's features: see losses.py).
3. Upscale the result to the next size and add the lost detail, the original at that size minus the
   original shrunk to the previous size and upscaled again (what shrinking and upscaling blurred).

One step: roll the image by a random shift (jitter: it hides tile seams and the network's stride
grid), compute dJ/dx (a tile at a time when `tile` is set: tiling.py), roll the gradient back, divide
it by its mean absolute value (losses.normalize_gradient says why), step, clip to [0, 1].

The network runs only as far as the deepest layer asked for (FeatureNet truncates there).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from genfast import io
from genfast.checks import ArgumentError, check_choice, check_device, check_int, check_number, is_int
from genfast.dream import losses, tiling
from genfast.dream.receptive_field import geometry
from genfast.models import VGG, FeatureNet, feature_net
from genfast.training.progress import postfix, progress_bar

#: layers and weights per network when none are given: a middle block of Lite0 (curls, eyes and
#: fur-like textures) and a later one (object parts), weighted towards the later
DEFAULT_LAYERS = {
    "EfficientNetLite0": {"block5": 1.0, "block8": 1.5},
    "VGG": {"relu4_2": 1.0, "relu5_2": 1.5},
}


class DreamInterrupted(KeyboardInterrupt):
    """Ctrl-C during dream(): the image as it was is written to `output` first."""

    def __init__(self, output: Path, steps: int):
        super().__init__(f"interrupted after {steps} steps; wrote the image so far to {output}")
        self.output, self.steps = output, steps


@dataclass
class DreamResult:
    image: torch.Tensor                              # (1, 3, H, W) in [0, 1], on the CPU
    seconds: float
    history: list = field(default_factory=list)      # per step: {"octave", "step", "loss"}
    sizes: list = field(default_factory=list)        # the octaves' (height, width), smallest first
    octave_outputs: list = field(default_factory=list)   # files written by save_octaves
    network: str = ""
    output: Path | None = None


# -- inputs ------------------------------------------------------------------------------------

def as_image(value, size, name: str, device, *, max_pixels: int | None = None) -> torch.Tensor:
    """A path, skimage:NAME spec or tensor (1, 3, H, W) / (3, H, W) in [0, 1] as (1, 3, H, W) float32
    on `device`, its longest side resized to `size` (None keeps it)."""
    if isinstance(value, torch.Tensor):
        t = value.unsqueeze(0) if value.dim() == 3 else value
        if t.dim() != 4 or t.shape[:2] != (1, 3) or t.shape[-1] == 0 or t.shape[-2] == 0:
            raise ArgumentError(name, f"expected an image tensor (1, 3, H, W) or (3, H, W), got {tuple(value.shape)}")
        if not t.is_floating_point():
            raise ArgumentError(name, f"expected a float image in [0, 1], got dtype {t.dtype}")
        t = io.resize(t.detach().float(), size)
    elif isinstance(value, (str, Path)):
        t = io.load_image(value, size, name=name, max_pixels=max_pixels)
    else:
        raise ArgumentError(name, f"expected a path, skimage:NAME or an image tensor, got {type(value).__name__}")
    return t.to(device)


def check_layer_weights(net: FeatureNet, layers, name: str = "layers") -> dict[str, float]:
    """{layer: weight} from a mapping or a list (weight 1 each), by the network's own layer names."""
    if layers is None:
        layers = DEFAULT_LAYERS.get("VGG" if isinstance(net, VGG) else type(net).__name__)
        if layers is None:
            raise ArgumentError(name, f"no default layers for {type(net).__name__}; pass a mapping {{layer: weight}}")
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, dict):
        layers = {k: 1.0 for k in layers}
    if not layers:
        raise ArgumentError(name, "expected at least one layer")
    net.check_layers(list(layers), name)      # unknown names: the error lists the valid ones
    if "logits" in layers:
        raise ArgumentError(name, "'logits' has no image positions; choose a spatial layer "
                                  f"(e.g. {', '.join(net.layer_names[-6:-1])})")
    weights = {k: check_number(v, f"{name}[{k!r}]", low=None) for k, v in layers.items()}
    if not any(weights.values()):
        raise ArgumentError(name, f"every layer weighs 0: {weights}")
    return weights


def octave_sizes(hw: tuple[int, int], octaves: int, scale: float) -> list[tuple[int, int]]:
    """[(height, width)] from the smallest octave to `hw` itself, each `scale` times the previous."""
    h, w = hw
    return [(max(1, round(h / scale ** k)), max(1, round(w / scale ** k))) for k in range(octaves - 1, -1, -1)]


def smallest_side(min_side: int, octaves: int, scale: float) -> int:
    """The smallest image side whose smallest octave still has `min_side` pixels."""
    side = max(min_side, math.floor((min_side - 0.5) * scale ** (octaves - 1)))
    while round(side / scale ** (octaves - 1)) < min_side:
        side += 1
    return side


def resize_to(image: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return io.resize(image, tuple(hw))


def reinject_detail(image: torch.Tensor, original: torch.Tensor, previous_hw, hw) -> torch.Tensor:
    """Upscale `image` to `hw` and add the detail shrinking lost: the original at `hw` minus the
    original shrunk to `previous_hw` and upscaled back to `hw`."""
    shrunk_then_upscaled = resize_to(resize_to(original, previous_hw), hw)
    lost_detail = resize_to(original, hw) - shrunk_then_upscaled
    return (resize_to(image, hw) + lost_detail).clamp_(0.0, 1.0)


# -- the objective -----------------------------------------------------------------------------

class DreamObjective:
    """J(x) = sum over layers l of w_l * S_l(x) / N_l, S_l a sum over the layer's units (losses.py)
    and N_l their number in the whole image, so tiles (tiling.py) add up to the untiled value.

    `tile` bounds memory (pixels per tile, None: one piece); `halo` (pixels of context around each
    tile) defaults to the deepest layer's receptive field, which makes the tiled gradient equal the
    untiled one; `guide` ({layer: (C, M) features}) replaces the activation sums by guide_sum."""

    def __init__(self, net: FeatureNet, layers: dict[str, float], objective: str = "mean_square", *,
                 guide: dict[str, torch.Tensor] | None = None, tile: int | None = None, halo: int | None = None):
        self.net, self.weights, self.objective = net, dict(layers), objective
        self.layers = list(self.weights)
        self.guide = guide
        self.tile, self.halo = tile, halo
        self._geometry: dict = {}

    def geometry(self, hw):
        """{layer: (rows, columns)} for an image of `hw`, and the alignment and halo of its tiles."""
        hw = tuple(hw)
        if hw not in self._geometry:
            geo = {k: geometry(self.net, k, hw) for k in self.layers}
            align = max(rows.jump for rows, _ in geo.values())
            halo = self.halo if self.halo is not None else max(max(r.size, c.size) for r, c in geo.values())
            self._geometry[hw] = (geo, align, halo)
        return self._geometry[hw]

    def tiles(self, hw) -> list[tiling.Tile]:
        _, align, halo = self.geometry(hw)
        return tiling.plan(hw[0], hw[1], self.tile, halo, align)

    def value_and_grad(self, image: torch.Tensor) -> tuple[float, torch.Tensor]:
        hw = tuple(image.shape[-2:])
        geo, _, _ = self.geometry(hw)

        def tile_loss(crop, tile):
            feats = self.net(crop, self.layers)
            total = crop.new_zeros((), dtype=torch.float32)
            for k, w in self.weights.items():
                rows, cols = geo[k]
                own_rows, own_cols = tiling.own_units(tile, rows, cols)
                f = feats[k][..., own_rows, own_cols]
                positions = rows.length * cols.length
                if self.guide is not None:
                    total = total + w * losses.guide_sum(f, self.guide[k]) / positions
                else:
                    total = total + w * losses.activation_sum(f, self.objective) / (positions * f.shape[1])
            return total

        return tiling.value_and_grad(image, self.tiles(hw), tile_loss)


def guide_features(net: FeatureNet, guide: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    """{layer: (C, M)}: the guide image's feature vectors at every position."""
    with torch.no_grad():
        feats = net(guide, list(layers))
    return {k: v[0].flatten(1).float() for k, v in feats.items()}


# -- the loop ----------------------------------------------------------------------------------

def ascent_step(image: torch.Tensor, objective: DreamObjective, step_size: float, shift: tuple[int, int]):
    """One gradient-ascent step with the image rolled by `shift`: (new image, loss before the step)."""
    rolled = torch.roll(image, shifts=shift, dims=(-2, -1)) if any(shift) else image
    loss, grad = objective.value_and_grad(rolled)
    if any(shift):
        grad = torch.roll(grad, shifts=(-shift[0], -shift[1]), dims=(-2, -1))
    return (image + step_size * losses.normalize_gradient(grad)).clamp_(0.0, 1.0), loss


def dream(image, *, network: str | FeatureNet = "auto", weights="imagenet", layers=None,
          objective: str = "mean_square", octaves: int = 4, octave_scale: float = 1.4, steps: int = 20,
          step_size: float = 0.01, jitter: int = 32, max_loss: float | None = None, guide=None,
          guide_size: int = 256, size: int | None = None, tile: int | None = None, tile_halo: int | None = None,
          seed: int = 0, output=None, save_octaves: bool = False, progress: bool = True, device=None,
          max_image_pixels: int | None = None,
          callback: Callable[[int, int, torch.Tensor], None] | None = None) -> DreamResult:
    """DeepDream `image` (a path, skimage:NAME or a (1, 3, H, W) tensor in [0, 1]); see the module
    docstring. `layers` maps layer names of the network to weights (a list weighs each 1; None: the
    network's DEFAULT_LAYERS). `size` resizes the image's longest side first. `max_loss` ends an
    octave's steps once the loss passes it. `guide` (an image) makes the image take on the guide's
    features (losses.guide_sum). With `output` the result is written atomically (PNG or JPEG by
    suffix), and with `save_octaves` each octave's result beside it as <stem>_octave<k><suffix>.
    `callback(octave, step, image)` runs after every step. On Ctrl-C the image so far is written to
    `output` and DreamInterrupted (a KeyboardInterrupt) raised."""
    t0 = time.perf_counter()
    device = check_device(device)
    check_choice(objective, "objective", losses.OBJECTIVES)
    check_int(octaves, "octaves", 1)
    octave_scale = check_number(octave_scale, "octave_scale")
    if octave_scale <= 1:
        raise ArgumentError("octave_scale", f"expected a number > 1 (each octave larger than the previous), "
                                            f"got {octave_scale:g}")
    check_int(steps, "steps", 0)
    step_size = check_number(step_size, "step_size", positive=True)
    check_int(jitter, "jitter", 0)
    if max_loss is not None:
        max_loss = check_number(max_loss, "max_loss", low=None)
    check_int(guide_size, "guide_size", 16)
    if size is not None:
        check_int(size, "size", 1)
    if tile is not None and (not is_int(tile) or tile < 32):
        raise ArgumentError("tile", f"expected an integer of at least 32 pixels, got {tile!r}")
    if tile_halo is not None:
        check_int(tile_halo, "tile_halo", 0)
    check_int(seed, "seed", 0)
    out_path = Path(output) if output is not None else None
    if out_path is not None:
        if out_path.suffix.lower() not in io.IMAGE_SUFFIXES:
            raise ArgumentError("output", f"unknown image suffix in {str(out_path)!r}; expected one of "
                                          f"{', '.join(sorted(io.IMAGE_SUFFIXES))}")
        io.check_output(out_path, {"image": image, "guide": guide})

    net = network if isinstance(network, FeatureNet) else feature_net(network, weights)
    net = net.to(device)
    layer_weights = check_layer_weights(net, layers)
    original = as_image(image, size, "image", device, max_pixels=max_image_pixels)
    h, w = original.shape[-2:]
    deepest = max(layer_weights, key=net.layer_names.index)
    min_side = max(net.min_size, geometry(net, deepest, (h, w))[0].jump)
    need = smallest_side(min_side, octaves, octave_scale)
    if min(h, w) < need:
        raise ArgumentError("image", f"the image is {w}x{h}: {octaves} octaves of scale {octave_scale:g} need at "
                                     f"least {need} pixels on its shorter side (the smallest octave must keep "
                                     f"{min_side} for layer {deepest}); pass a larger image or size, or fewer octaves")
    guide_feats = None
    if guide is not None:
        guide_image = as_image(guide, None, "guide", device, max_pixels=max_image_pixels)
        if max(guide_image.shape[-2:]) > guide_size:
            guide_image = io.resize(guide_image, guide_size)
        guide_feats = guide_features(net, guide_image, layer_weights)
    obj = DreamObjective(net, layer_weights, objective, guide=guide_feats, tile=tile, halo=tile_halo)

    generator = torch.Generator().manual_seed(seed)
    sizes = octave_sizes((h, w), octaves, octave_scale)
    history, octave_outputs = [], []
    bar = progress_bar(octaves * steps, desc="dream", unit="step", enabled=progress)
    try:
        current = resize_to(original, sizes[0]).clone()
        for k, hw in enumerate(sizes):
            if k > 0:
                current = reinject_detail(current, original, sizes[k - 1], hw)
            for step in range(steps):
                shift = tuple(int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator)) \
                    if jitter else (0, 0)
                current, loss = ascent_step(current, obj, step_size, shift)
                history.append({"octave": k, "step": step, "loss": loss})
                bar.update(1)
                postfix(bar, {"octave": f"{k + 1}/{octaves}", "size": f"{hw[1]}x{hw[0]}", "loss": loss})
                if callback is not None:
                    callback(k, step, current)
                if max_loss is not None and loss > max_loss:
                    bar.update(steps - step - 1)     # the octave's remaining steps are skipped
                    break
            if save_octaves and out_path is not None:
                path = out_path.with_name(f"{out_path.stem}_octave{k}{out_path.suffix}")
                io.check_output(path, {"image": image, "guide": guide})
                octave_outputs.append(io.save_image(current.cpu(), path))
    except KeyboardInterrupt:
        # keep the work: the image so far goes to the output (atomically), then the interrupt goes on
        if out_path is None:
            raise
        io.save_image(current.detach().cpu(), out_path)
        raise DreamInterrupted(out_path, len(history)) from None
    finally:
        bar.close()

    result = current.detach().cpu()
    if out_path is not None:
        io.save_image(result, out_path)
    return DreamResult(image=result, seconds=time.perf_counter() - t0, history=history, sizes=sizes,
                       octave_outputs=octave_outputs, network=f"{type(net).__name__} ({net.weights_source})",
                       output=out_path)
