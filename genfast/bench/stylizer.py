"""Feed-forward stylizer inference: genfast.style.TransformerNet vs the same network written the
pytorch/examples way (genfast.reference.transformer_net: torch.nn.InstanceNorm2d + ReLU, a reflection
pad copy before every convolution, nearest upsampling), same weights, under torch.inference_mode.

genfast's network runs channels_last on the CPU, the fused instance norm + ReLU, the two
upsample + pad + 3x3 convolutions as 2x2 sub-pixel convolutions at the input resolution, and the
9x9 32 -> 3 output convolution on a space-to-depth input (see genfast/style/networks.py).

Shapes are (N, 3, H, W) image batches; frames/s = N / time per batch. GFLOP/s counts the reference
network's multiply-adds (2 per MAC) for both, so it is an effective rate. The torch.compile column
is left out: compiling the whole network takes minutes on 2 cores and is not how either side is used.
"""

from __future__ import annotations

import torch

from genfast.bench.core import Case
from genfast.reference.transformer_net import TransformerNet as PlainNet
from genfast.style.networks import TransformerNet

PRIMARY_OP = "instance_norm"
DEFAULT_SHAPES = [(1, 3, 256, 256), (4, 3, 256, 256), (1, 3, 512, 512), (4, 3, 512, 512)]
QUICK_SHAPES = [(1, 3, 64, 64), (2, 3, 64, 64)]

# (C_in, C_out, kernel, resolution divisor of the output) of every convolution, in order
_CONVS = [(3, 32, 9, 1), (32, 64, 3, 2), (64, 128, 3, 4)] + [(128, 128, 3, 4)] * 10 + \
         [(128, 64, 3, 2), (64, 32, 3, 1), (32, 3, 9, 1)]


def network_flops(n: int, h: int, w: int) -> float:
    return float(sum(2 * ci * co * k * k * n * (h // d) * (w // d) for ci, co, k, d in _CONVS))


def make_pair(seed: int = 0, device="cpu") -> tuple[torch.nn.Module, torch.nn.Module]:
    """(plain, genfast) networks with the same random weights, including non-trivial instance-norm
    scales and shifts."""
    gen = torch.Generator().manual_seed(seed)
    plain = PlainNet()
    with torch.no_grad():
        for name, p in plain.named_parameters():
            if name.split(".")[-2].startswith("in"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5 if name.endswith("weight")
                        else torch.rand(p.shape, generator=gen) - 0.5)
    net = TransformerNet()
    net.load_state_dict(plain.state_dict())
    return plain.to(device).eval(), net.to(device).eval()


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    del compile  # see the module docstring
    shapes = shapes or DEFAULT_SHAPES
    plain, net = make_pair(0, device)
    out = []
    for shape in shapes:
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"stylizer bench: expected image shapes (N, 3, H, W), got {shape}")
        gen = torch.Generator().manual_seed(1)
        x = (torch.rand(shape, generator=gen) * 255).to(device)

        def run(model, x=x):
            def call():
                with torch.inference_mode():
                    return model(x)
            return call

        n, _, h, w = shape
        out.append(Case("stylizer", shape, "forward", {"reference": run(plain), "native": run(net)},
                        flops=network_flops(n, h, w)))
    return out


def report(device: torch.device, shapes, results=None) -> list[str]:
    """frames/s of each side per shape, and the ratio."""
    by_shape: dict[tuple, dict[str, float]] = {}
    for r in results or []:
        by_shape.setdefault(tuple(r.shape), {})[r.impl] = r.shape[0] / (r.ms / 1e3)
    lines = []
    for shape, fps in by_shape.items():
        n, _, h, w = shape
        ref, nat = fps.get("reference"), fps.get("native")
        ratio = f"{nat / ref:5.2f}x" if ref and nat else "   n/a"
        lines.append(f"frames/s {h}x{w} batch {n}: reference {ref or float('nan'):7.3f}  "
                     f"genfast {nat or float('nan'):7.3f}  -> {ratio}")
    return lines
