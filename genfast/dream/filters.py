"""Filter visualisation: the input pattern each unit of a layer responds to most.

    result = visualize_filters("block3_expand", units=16, output="filters.png")

Climb each unit's mean activation (one channel of the layer, averaged over positions); all units
of the sheet are one batch. Without help the result is high-frequency noise the network happens to
like. Two ways to parameterise the image (`parameterization`):

- "pixel" (default): the pixels themselves, from grey plus small noise, by normalised gradient
  ascent, with two regularisers that keep the pictures readable:
  - jitter: each step the images are rolled by a random shift of up to `jitter` pixels (all units
    the same shift), so the pattern must work at every offset and the stride grid does not print;
  - blur: every `blur_every` steps a Gaussian blur of standard deviation `blur` pixels, which removes
    the highest frequencies the ascent keeps adding (0 switches it off).
- "fourier": lucid's decorrelated parameterisation (Olah et al., "Feature Visualization", Distill
  2017): the parameters are the image's 2-D Fourier spectrum, each frequency scaled by 1 / |f| so that
  a step moves every frequency band alike (plain pixels favour the high ones), and three
  decorrelated colour channels mapped to RGB by the square root of ImageNet's colour covariance, then
  a sigmoid into [0, 1]. Adam (learning rate `step_size`, default 0.05) with the same jitter; no blur
  is needed (`blur` is ignored).

`whole_layer=True` climbs the layer's mean square instead (one image: DeepDream from noise).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from genfast import io
from genfast.checks import ArgumentError, check_choice, check_device, check_int, check_number, is_int
from genfast.dream import losses
from genfast.models import FeatureNet, feature_net
from genfast.training.progress import postfix, progress_bar


@dataclass
class FilterResult:
    images: torch.Tensor                 # (N, 3, size, size) in [0, 1], on the CPU
    units: list                          # the channel of each image (None: the whole layer)
    activations: list = field(default_factory=list)   # each unit's mean activation at the end
    layer: str = ""
    seconds: float = 0.0
    output: Path | None = None


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, 3, H, W), reflect-padded, radius 2 sigma (at least 1 pixel)."""
    radius = max(1, math.ceil(2 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


PARAMETERIZATIONS = ("pixel", "fourier")

#: the square root of ImageNet's RGB colour covariance (its SVD's U sqrt(S)), as lucid uses it to map
#: decorrelated channels to RGB; normalised below so that its largest column has norm 1
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


class FourierImage(torch.nn.Module):
    """(n, 3, size, size) images in (0, 1) from a learnable, 1/|f|-scaled Fourier spectrum of
    decorrelated colour channels (see the module docstring). A zero spectrum is uniform grey 0.5."""

    def __init__(self, n: int, size: int, *, std: float = 0.01, generator: torch.Generator | None = None):
        super().__init__()
        fy = torch.fft.fftfreq(size)[:, None]
        fx = torch.fft.rfftfreq(size)[None, :]
        freq = torch.sqrt(fx * fx + fy * fy)
        self.register_buffer("scale", 1.0 / torch.clamp(freq, min=1.0 / size))     # (size, size // 2 + 1)
        self.register_buffer("color", _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max())
        shape = (n, 3, size, size // 2 + 1, 2)
        self.spectrum = torch.nn.Parameter(std * torch.randn(shape, generator=generator))
        self.size = size

    def forward(self) -> torch.Tensor:
        spec = torch.view_as_complex(self.spectrum) * self.scale
        x = torch.fft.irfft2(spec, s=(self.size, self.size), norm="ortho") / 4.0     # lucid's scale
        x = torch.einsum("nchw,dc->ndhw", x, self.color)                              # decorrelated -> RGB
        return torch.sigmoid(x)


def _check_units(units, channels: int) -> list[int]:
    if is_int(units):
        check_int(units, "units", 1, channels)
        return list(range(units))
    units = list(units)
    if not units:
        raise ArgumentError("units", "expected a count or a non-empty list of channels")
    for u in units:
        if not is_int(u) or not 0 <= u < channels:
            raise ArgumentError("units", f"expected channels in [0, {channels - 1}] (the layer has {channels}), "
                                         f"got {u!r}")
    return units


def visualize_filters(layer: str, *, network: str | FeatureNet = "auto", weights="imagenet", units=16,
                      whole_layer: bool = False, size: int = 96, steps: int = 96, step_size: float | None = None,
                      jitter: int = 4, blur: float = 0.6, blur_every: int = 4, parameterization: str = "pixel",
                      seed: int = 0, output=None, nrow: int | None = None, progress: bool = True,
                      device=None) -> FilterResult:
    """Images that maximise `units` (a count: the first N channels, or a list of channels) of `layer`,
    or with `whole_layer` the whole layer; with `output`, one labelled PNG/JPEG sheet, atomically.
    `step_size` defaults to 0.02 (pixel: the mean pixel change per step) or 0.05 (fourier: Adam's
    learning rate)."""
    t0 = time.perf_counter()
    device = check_device(device)
    check_int(size, "size", 16)
    check_int(steps, "steps", 0)
    check_choice(parameterization, "parameterization", PARAMETERIZATIONS)
    fourier = parameterization == "fourier"
    if step_size is None:
        step_size = 0.05 if fourier else 0.02
    step_size = check_number(step_size, "step_size", positive=True)
    check_int(jitter, "jitter", 0)
    blur = check_number(blur, "blur")
    check_int(blur_every, "blur_every", 1)
    check_int(seed, "seed", 0)
    if output is not None and Path(output).suffix.lower() not in io.IMAGE_SUFFIXES:
        raise ArgumentError("output", f"unknown image suffix in {str(output)!r}; expected one of "
                                      f"{', '.join(sorted(io.IMAGE_SUFFIXES))}")
    net = network if isinstance(network, FeatureNet) else feature_net(network, weights)
    net = net.to(device)
    (layer,) = net.check_layers([layer], "layer")
    if layer == "logits":
        raise ArgumentError("layer", "'logits' has no image positions; choose a spatial layer")
    with torch.no_grad():
        channels = net(torch.zeros(1, 3, size, size, device=device), [layer])[layer].shape[1]
    chosen = [None] if whole_layer else _check_units(units, channels)

    generator = torch.Generator().manual_seed(seed)
    if fourier:
        param = FourierImage(len(chosen), size, generator=generator).to(device)
        optimizer = torch.optim.Adam(param.parameters(), lr=step_size)
    else:
        x = (0.5 + 0.02 * torch.randn(len(chosen), 3, size, size, generator=generator)).clamp_(0, 1).to(device)
    index = torch.tensor([0 if u is None else u for u in chosen], device=device)
    bar = progress_bar(steps, desc=f"filters {layer}", unit="step", enabled=progress)

    def activations(images):
        f = net(images, [layer])[layer].float()
        if whole_layer:
            return f.square().mean(dim=(1, 2, 3))
        return f[torch.arange(len(chosen), device=device), index].mean(dim=(1, 2))

    try:
        for step in range(steps):
            shift = tuple(int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator)) \
                if jitter else (0, 0)
            if fourier:
                with torch.enable_grad():
                    value = activations(torch.roll(param(), shift, dims=(2, 3)))
                    optimizer.zero_grad(set_to_none=True)
                    (-value.sum()).backward()          # the units are independent: one backward
                optimizer.step()
                bar.update(1)
                postfix(bar, {"mean activation": float(value.detach().mean())})
                continue
            rolled = torch.roll(x, shift, dims=(2, 3)).requires_grad_(True)
            with torch.enable_grad():
                value = activations(rolled)
                (grad,) = torch.autograd.grad(value.sum(), rolled)   # the units are independent: one backward
            grad = torch.roll(grad, (-shift[0], -shift[1]), dims=(2, 3))
            grad = torch.stack([losses.normalize_gradient(g) for g in grad])
            x = (x + step_size * grad).clamp_(0, 1)
            if blur and (step + 1) % blur_every == 0 and step + 1 < steps:
                x = gaussian_blur(x, blur).clamp_(0, 1)
            bar.update(1)
            postfix(bar, {"mean activation": float(value.detach().mean())})
    finally:
        bar.close()
    with torch.no_grad():
        if fourier:
            x = param()
        final = activations(x).tolist()
    images = x.detach().cpu()
    out_path = None
    if output is not None:
        labels = [f"{'layer' if u is None else u}: {a:.2f}" for u, a in zip(chosen, final)]
        out_path = io.save_image_grid(images, output, nrow=nrow, padding=2, labels=labels,
                                      title=f"filters from {layer} ({type(net).__name__})")
    return FilterResult(images=images, units=chosen, activations=final, layer=layer,
                        seconds=time.perf_counter() - t0, output=out_path)
