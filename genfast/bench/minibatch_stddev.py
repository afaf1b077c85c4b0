"""Minibatch-stddev benchmark: StyleGAN-like discriminator feature maps.

GB/s counts the minimum traffic: forward reads x and writes the output (2 x bytes);
forward+backward adds reading dy and x and writing dx (5 x bytes in all).
"""

from __future__ import annotations

import torch

from genfast import _native, ops
from genfast.bench.core import Case
from genfast.reference import minibatch_stddev as ref

PRIMARY_OP = "minibatch_stddev"
DEFAULT_SHAPES = [(32, 512, 4, 4), (64, 256, 8, 8), (16, 128, 32, 32)]
QUICK_SHAPES = [(8, 64, 4, 4), (16, 32, 8, 8)]


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    shapes = shapes or DEFAULT_SHAPES
    native = _native.native_available(PRIMARY_OP, device)
    compiled = torch.compile(ref.minibatch_stddev, dynamic=False) if compile else None
    impls = {"reference": ref.minibatch_stddev}
    if compiled is not None:
        impls["compiled-reference"] = compiled
    if native:
        impls["native"] = lambda x: ops.minibatch_stddev(x, impl="native")
    out = []
    for shape in shapes:
        gen = torch.Generator(device="cpu").manual_seed(0)
        x = torch.randn(shape, generator=gen).to(device)
        xg = x.clone().requires_grad_()
        dy = torch.randn(shape[0], shape[1] + 1, *shape[2:], generator=gen).to(device)

        def fwd(fn, x=x):  # bound now: a bare closure would see the last shape's tensors
            return lambda: fn(x)

        def fwd_bwd(fn, xg=xg, dy=dy):
            def run():
                fn(xg).backward(dy)
                xg.grad = None
            return run

        nbytes = x.numel() * x.element_size()
        out.append(Case(PRIMARY_OP, shape, "forward", {k: fwd(v) for k, v in impls.items()}, bytes=2.0 * nbytes))
        out.append(Case(PRIMARY_OP, shape, "forward+backward", {k: fwd_bwd(v) for k, v in impls.items()},
                        bytes=5.0 * nbytes))
    return out
