"""In situ: an op timed inside the step it belongs to, next to the same op timed alone.

A kernel timed alone in a tight loop finds its inputs in cache and its worker threads awake; inside a
real step it follows a convolution that has just streamed megabytes through the caches. So each op
gets three timings, every one reference vs native in this one process:

- "alone, warm": the op's calls from one step, replayed on the same inputs back to back;
- "alone, cold": the same calls, each timed run right after an unrelated 64 MB elementwise op
  (untimed) that pushes the inputs out of the caches;
- "in step": the whole step, once with the reference op and once with the native op, everything
  else identical. The two steps differ only in the op, so their difference is the op's cost (or
  saving) in situ, to set against the difference "alone".

The steps, one per op:
- style_loss: one Gatys iteration (EfficientNet-Lite0 features up to the last loss layer, content and
  style losses, backward to the image), the style losses of all five style layers being the op;
- instance_norm: a feed-forward stylizer forward (genfast.style.TransformerNet, inference), its ten
  fused instance norms + activations being the op;
- minibatch_stddev: a discriminator forward + backward (StyleGAN-like: convolutions down to
  512 x 4 x 4, minibatch-stddev, a 3x3 convolution, a linear layer), the op at (32, 512, 4, 4).

Shapes are the step's input: (1, 3, H, W) images, or (N, 3, 32, 32) discriminator batches.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from genfast import _native, nn as gnn
from genfast.bench.core import Case

PRIMARY_OP = "style_loss"
DEFAULT_SHAPES = [(1, 3, 256, 256), (32, 3, 32, 32)]
QUICK_SHAPES = [(1, 3, 64, 64), (8, 3, 32, 32)]
STEPS = ("gatys", "stylizer", "discriminator")
IMPLS = ("reference", "native")

#: an elementwise op over this many bytes runs (untimed) before each "alone, cold" call
THRASH_BYTES = 64 << 20


def thrash(nbytes: int = THRASH_BYTES):
    """A function doing an unrelated elementwise op over `nbytes` of fresh-ish memory (read + write)."""
    a = torch.rand(nbytes // 4)
    b = torch.empty_like(a)

    def run():
        torch.add(a, 1.0, out=b)
    return run


def _three(op: str, shape, alone, step, setup) -> list[Case]:
    """The three cases of one op: alone warm, alone cold, in the step."""
    return [Case(op, shape, "alone, warm", alone, interleave=True),
            Case(op, shape, "alone, cold", alone, interleave=True, setup=setup),
            Case(op, shape, "in step", step, interleave=True)]


# --- style loss inside a Gatys iteration -------------------------------------------------------------

def gatys_cases(shape, device) -> list[Case]:
    from genfast.bench.gatys import _network
    from genfast.style import Objective, losses

    net = _network("efficientnet_lite0").to(device)
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(shape, generator=g).to(device), torch.rand(shape, generator=g).to(device)
    steps, alone = {}, {}
    for impl in IMPLS:
        obj = Objective(net, net.content_layers, net.style_layers, {}, 1.0, 1e5, 0.0, "mse", impl=impl)
        obj.set_content(content)
        obj.set_styles([style], [1.0])
        image = content.clone().requires_grad_(True)

        def step(obj=obj, image=image):
            obj.value_and_grad(image)
            image.grad = None
        steps[impl] = step

        with torch.no_grad():
            feats = {k: v.clone().requires_grad_(True) for k, v in net(content, net.style_layers).items()}

        def losses_only(obj=obj, feats=feats, impl=impl):
            total = sum(losses.style_loss(f, obj.style_targets[k], "mse", impl=impl) for k, f in feats.items())
            total.backward()
            for f in feats.values():
                f.grad = None
        alone[impl] = losses_only
    return _three("style_loss", shape, alone, steps, thrash())


# --- instance norm inside a stylizer forward ----------------------------------------------------------

def stylizer_cases(shape, device) -> list[Case]:
    from genfast.bench.stylizer import make_pair

    _, net = make_pair(0, device)
    nets = {"native": net, "reference": copy.deepcopy(net)}
    for module in nets["reference"].modules():
        if isinstance(module, (gnn.InstanceNorm2d, gnn.ConditionalInstanceNorm2d)):
            module.impl = "reference"
    for module in nets["native"].modules():
        if isinstance(module, (gnn.InstanceNorm2d, gnn.ConditionalInstanceNorm2d)):
            module.impl = "native"
    x = (torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 255).to(device)

    # the inputs every norm sees in one forward, captured once, for the "alone" timings
    captured: list[tuple[nn.Module, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda m, args, out: captured.append((m, args[0].clone())))
             for m in nets["native"].modules() if isinstance(m, gnn.InstanceNorm2d)]
    with torch.inference_mode():
        net(x)
    for h in hooks:
        h.remove()

    def forward(model):
        def run():
            with torch.inference_mode():
                model(x)
        return run

    def norms(impl):
        def run():
            with torch.inference_mode():
                for m, inp in captured:
                    saved, m.impl = m.impl, impl
                    try:
                        m(inp)
                    finally:
                        m.impl = saved
        return run

    return _three("instance_norm", shape, {k: norms(k) for k in IMPLS}, {k: forward(v) for k, v in nets.items()},
                  thrash())


# --- minibatch-stddev inside a discriminator forward + backward ---------------------------------------

class Discriminator(nn.Module):
    """32x32 RGB -> a logit, StyleGAN-like: 3x3 convolutions with leaky ReLU and average pooling
    down to 512 x 4 x 4, minibatch-stddev (one channel, groups of 4), a 3x3 convolution, a linear
    layer. The minibatch-stddev input is (N, 512, 4, 4)."""

    def __init__(self, impl: str = "auto"):
        super().__init__()
        widths = [3, 128, 256, 512]
        self.blocks = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths, widths[1:]))
        self.mbstd = gnn.MinibatchStdDev(group_size=4, num_channels=1, impl=impl)
        self.conv = nn.Conv2d(513, 512, 3, padding=1)
        self.fc = nn.Linear(512 * 16, 1)

    def forward(self, x):
        for conv in self.blocks:
            x = F.avg_pool2d(F.leaky_relu(conv(x), 0.2), 2)
        x = F.leaky_relu(self.conv(self.mbstd(x)), 0.2)
        return self.fc(x.flatten(1))


def discriminator_cases(shape, device) -> list[Case]:
    torch.manual_seed(0)
    d = Discriminator().to(device)
    nets = {"native": d, "reference": copy.deepcopy(d)}
    for k, m in nets.items():
        m.mbstd.impl = k
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(device)

    def step(model):
        def run():
            model(x).sum().backward()
            model.zero_grad(set_to_none=True)
        return run

    with torch.no_grad():
        h = x
        for conv in d.blocks:
            h = F.avg_pool2d(F.leaky_relu(conv(h), 0.2), 2)
    h = h.clone().requires_grad_(True)
    dy = torch.randn(h.shape[0], h.shape[1] + 1, *h.shape[2:], generator=torch.Generator().manual_seed(2)).to(device)

    def alone(module):
        def run():
            module(h).backward(dy)
            h.grad = None
        return run

    return _three("minibatch_stddev", shape, {k: alone(v.mbstd) for k, v in nets.items()},
                  {k: step(v) for k, v in nets.items()}, thrash())


_STEP_OF_SHAPE = {"gatys": gatys_cases, "stylizer": stylizer_cases, "discriminator": discriminator_cases}


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    """Every op's three cases. A (1, 3, H, W) shape runs the Gatys and stylizer steps at that size;
    an (N, 3, 32, 32) shape with N > 1 the discriminator step (torch.compile is not a side here:
    the question is how one implementation behaves inside a step, not which is fastest)."""
    del compile
    if not _native.native_available("style_loss", device):
        raise RuntimeError(f"in-situ bench: the native kernels are not built for {device.type}: "
                           f"{_native.unavailable_reason('style_loss', device.type)}")
    out = []
    for shape in shapes or DEFAULT_SHAPES:
        shape = tuple(shape)
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"in-situ bench: expected image shapes (N, 3, H, W), got {shape}")
        if shape[0] == 1:
            out += gatys_cases(shape, device) + stylizer_cases(shape, device)
        elif shape[2:] == (32, 32):
            out += discriminator_cases(shape, device)
        else:
            raise ValueError(f"in-situ bench: expected (1, 3, H, W) for the Gatys and stylizer steps or "
                             f"(N, 3, 32, 32) for the discriminator step, got {shape}")
    return out


def report(device: torch.device, shapes, results=None) -> list[str]:
    """Per op: what native saves over the reference alone (warm, cold) and inside its step."""
    ms = {(r.op, r.shape, r.mode, r.impl): r.ms for r in results or []}
    lines = []
    for op, shape in dict.fromkeys((r.op, r.shape) for r in results or []):
        saved = {mode: ms[(op, shape, mode, "reference")] - ms[(op, shape, mode, "native")]
                 for mode in ("alone, warm", "alone, cold", "in step")
                 if (op, shape, mode, "native") in ms and (op, shape, mode, "reference") in ms}
        step_ref = ms.get((op, shape, "in step", "reference"))
        parts = ", ".join(f"{mode} {v:+.3f} ms" for mode, v in saved.items())
        share = f" (the step: {step_ref:.2f} ms with the reference op)" if step_ref else ""
        lines.append(f"{op} {shape}: native saves {parts}{share}")
    return lines
