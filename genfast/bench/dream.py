"""DeepDream benchmarks: one gradient-ascent step, genfast vs the same algorithm written plainly; peak
memory of tiled vs untiled steps; top-9 patch search vs a plain forward pass.

One step = roll the image by the jitter shift, forward to the dream layers, the weighted mean-square
objective, backward to the pixels, roll the gradient back, divide it by its mean absolute value, step,
clip. Both sides take the same shifts, layers, weights and image, so their images agree to rounding.

"reference" is the plain way: EfficientNet-Lite0 as the popular PyTorch ports write it
(genfast.reference.efficientnet_lite: a padded copy before every convolution, nn.BatchNorm2d, ReLU6)
with its head and classifier, run whole every step (the layers captured on the way, as forward hooks
would), contiguous NCHW. "native" is genfast.dream: genfast's Lite0 (batch norm folded into the
convolutions, padding inside them) run only as far as the deepest dream layer.

    python benchmarks/bench_dream.py                 # 512^2 and 1024^2, profile, memory, patches
"""

from __future__ import annotations

import json
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch import nn

from genfast import models
from genfast.bench.core import Case
from genfast.dream.deepdream import DEFAULT_LAYERS, DreamObjective, ascent_step
from genfast.reference import efficientnet_lite as plain_lite

PRIMARY_OP = "dream_step"
NATIVE = False      # a workflow step: genfast's side is its truncated, folded network, not a native op
DEFAULT_SHAPES = [(1, 3, 512, 512), (1, 3, 1024, 1024)]
QUICK_SHAPES = [(1, 3, 128, 128)]
LAYERS = DEFAULT_LAYERS["EfficientNetLite0"]
STEP_SIZE = 0.01


def network() -> models.EfficientNetLite0:
    try:
        return models.efficientnet_lite0()
    except models.WeightsNotFoundError:
        return models.efficientnet_lite0(None)      # timing does not depend on the weights' values


class PlainLite0(nn.Module):
    """The whole EfficientNet-Lite0 classifier, the plain way, handing out named feature maps."""

    def __init__(self, net: models.EfficientNetLite0):
        super().__init__()
        self.body = plain_lite.from_genfast(net)
        self.head = plain_lite.SamePadConv2d(320, 1280, 1)
        self.head_bn = nn.BatchNorm2d(1280, eps=plain_lite.BN_EPS)
        self.head.load_state_dict(net._conv_head.state_dict())
        self.head_bn.load_state_dict(net._bn1.state_dict())
        self.fc = nn.Linear(1280, 1000)
        self.fc.load_state_dict(net._fc.state_dict())
        self.register_buffer("mean", net.mean.clone())
        self.register_buffer("std", net.std.clone())
        self.eval().requires_grad_(False)

    def forward(self, x, layers):
        out, b = {}, self.body
        x = (x - self.mean) / self.std
        x = b._act(b._bn0(b._conv_stem(x)))
        out["stem"] = x
        for i, blk in enumerate(b._blocks):
            inputs = x
            if blk.has_expand:
                x = blk._act(blk._bn0(blk._expand_conv(x)))
                out[f"block{i}_expand"] = x
            x = blk._act(blk._bn1(blk._depthwise_conv(x)))
            out[f"block{i}_dw"] = x
            x = blk._bn2(blk._project_conv(x))
            if blk.residual:
                x = x + inputs
            out[f"block{i}"] = x
        x = F.relu6(self.head_bn(self.head(x)))
        out["logits"] = self.fc(x.mean((2, 3)))
        return {k: out[k] for k in layers}


def plain_step(model: PlainLite0, image: torch.Tensor, layers: dict, step_size: float, shift) -> torch.Tensor:
    """One DeepDream step written plainly."""
    x = torch.roll(image, shifts=shift, dims=(2, 3)).detach().requires_grad_(True)
    feats = model(x, list(layers))
    loss = sum(w * feats[k].pow(2).mean() for k, w in layers.items())
    loss.backward()
    grad = torch.roll(x.grad, shifts=(-shift[0], -shift[1]), dims=(2, 3))
    grad = grad / grad.abs().mean().clamp_min(1e-12)
    return (image + step_size * grad).clamp(0.0, 1.0)


def genfast_step(net, layers: dict, step_size: float):
    objective = DreamObjective(net, layers)
    return lambda image, shift: ascent_step(image, objective, step_size, shift)[0]


def _image(shape) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


def agreement(net, shape, steps: int = 3) -> dict:
    """How far apart the two sides are: the relative difference of their first gradients, and after
    `steps` steps with the same shifts the largest and mean pixel difference and the share of 8-bit
    pixels that differ."""
    model, step = PlainLite0(net), genfast_step(net, LAYERS, STEP_SIZE)
    a = b = _image(shape)
    x = a.clone().requires_grad_(True)
    feats = model(x, list(LAYERS))
    sum(w * feats[k].pow(2).mean() for k, w in LAYERS.items()).backward()
    _, grad = DreamObjective(net, LAYERS).value_and_grad(a)
    gradient = ((grad - x.grad).norm() / x.grad.norm()).item()
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        shift = tuple(int(v) for v in torch.randint(-32, 33, (2,), generator=g))
        a, b = plain_step(model, a, LAYERS, STEP_SIZE, shift), step(b, shift)
    d = (a - b).abs()
    return {"gradient_rel_diff": gradient, "max_abs": d.max().item(), "mean_abs": d.mean().item(),
            "share_8bit_differ": ((a * 255).round() != (b * 255).round()).float().mean().item()}


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    net = network().to(device)
    model = PlainLite0(net).to(device)
    step = genfast_step(net, LAYERS, STEP_SIZE)
    out = []
    for shape in shapes or DEFAULT_SHAPES:
        image = _image(shape).to(device)
        fns = {"reference": lambda image=image: plain_step(model, image, LAYERS, STEP_SIZE, (7, -5)),
               "native": lambda image=image: step(image, (7, -5))}
        out.append(Case(PRIMARY_OP, shape, "step", fns, interleave=True))
    return out


def profile(shape=(1, 3, 512, 512), top: int = 12) -> str:
    """The operators that take genfast's step's time (torch.profiler, CPU)."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    net = network()
    step = genfast_step(net, LAYERS, STEP_SIZE)
    image = _image(shape)
    step(image, (3, 3))
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            step(image, (3, 3))
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


# --- peak memory with and without tiles ------------------------------------------------------------

_MEMORY_SCRIPT = r"""
import json, sys, torch
torch.set_num_threads(int(sys.argv[4]))
from genfast.bench import dream as bench
from genfast.dream.deepdream import DreamObjective
size, tile = int(sys.argv[1]), (int(sys.argv[2]) or None)
halo = None if sys.argv[3] == "auto" else int(sys.argv[3])
net = bench.network()
image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
objective = DreamObjective(net, bench.LAYERS, tile=tile, halo=halo)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

base = status("VmHWM")
for _ in range(2):
    loss, grad = objective.value_and_grad(image)
print(json.dumps({"baseline_mb": base, "peak_mb": status("VmHWM"), "tiles": len(objective.tiles((size, size))),
                  "loss": loss}))
"""


def peak_memory(size: int, tile: int | None, halo: int | None = None, threads: int = 2) -> dict:
    """Peak resident memory (Linux VmHWM of a fresh process, not inherited from this one) of two
    DeepDream gradient evaluations of a size x size image, tiled or not, in MB; `baseline_mb` is the
    peak before them (Python, torch, the network and the image)."""
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(size), str(tile or 0),
                          "auto" if halo is None else str(halo), str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


__all__ = ["PRIMARY_OP", "DEFAULT_SHAPES", "QUICK_SHAPES", "cases", "plain_step", "genfast_step", "PlainLite0",
           "agreement", "profile", "peak_memory"]


# --- top_patches against a plain forward pass -------------------------------------------------------

def make_folder(path, count: int = 1000, size: int = 128) -> list:
    """`count` PNG crops (size x size) of scikit-image's photos, for the throughput benchmark."""
    from pathlib import Path

    from genfast import io

    names = ["astronaut", "chelsea", "coffee", "rocket", "brick", "grass", "gravel"]
    photos = [io.load_image(f"skimage:{n}") for n in names]
    g = torch.Generator().manual_seed(0)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        p = photos[i % len(photos)]
        h, w = p.shape[-2:]
        s = min(h, w, 2 * size)
        top = int(torch.randint(0, h - s + 1, (), generator=g))
        left = int(torch.randint(0, w - s + 1, (), generator=g))
        crop = io.resize(p[..., top:top + s, left:left + s], (size, size))
        files.append(io.save_image(crop, path / f"{i:04d}.png"))
    return files


def patches_throughput(folder, layer: str = "block5", units: int = 16, rounds: int = 2, batch_size: int = 4) -> dict:
    """Images per second of top_patches over `folder` vs reading each image and running the network
    to `layer` (the plain forward pass of the truncated network), alternated `rounds` times. With
    `batch_size` > 1 also the plain forward over batches of that many images (read one by one and
    stacked), which top_patches does too: the forward alone at top_patches' batching."""
    import time

    from genfast import data, io
    from genfast.dream.patches import top_patches

    net = network()
    files = data.find_images(folder, name="source")

    def plain():
        for f in files:
            with torch.no_grad():
                net(io.load_image(f), [layer])

    def plain_batched():
        for i in range(0, len(files), batch_size):
            with torch.no_grad():
                net(torch.cat([io.load_image(f) for f in files[i:i + batch_size]]), [layer])

    def patches():
        top_patches(files, layer, network=net, units=units, size=None, progress=False, batch_size=batch_size)

    sides = [("plain_forward", plain)] + ([("plain_forward_batched", plain_batched)] if batch_size > 1 else [])
    sides.append(("top_patches", patches))
    best = {name: float("inf") for name, _ in sides}
    for _ in range(rounds):
        for name, fn in sides:
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {k + "_images_per_s": len(files) / v for k, v in best.items()} | {"images": len(files)}
