"""Style loss (Gram matrix) benchmark: the VGG-19 style layers at a 512x512 input, batch 1.

Effective GFLOP/s count 2*N*C^2*L per Gram matrix (a full product, as a plain bmm does it) and
4*N*C^2*L for forward+backward (the Gram and the one product the backward needs). The native
forward computes only one triangle, so its effective rate can exceed the machine's mm rate.
"""

from __future__ import annotations

import torch

from genfast import _native, ops
from genfast.bench.core import Case
from genfast.reference import gram as ref

PRIMARY_OP = "style_loss"
# relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of VGG-19 at 512x512
DEFAULT_SHAPES = [(1, 64, 512, 512), (1, 128, 256, 256), (1, 256, 128, 128), (1, 512, 64, 64), (1, 512, 32, 32)]
QUICK_SHAPES = [(1, 64, 128, 128), (1, 128, 64, 64), (1, 256, 32, 32)]


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    shapes = shapes or DEFAULT_SHAPES
    native = _native.native_available("style_loss", device)
    compiled = torch.compile(ref.style_loss, dynamic=False) if compile else None
    out = []
    for shape in shapes:
        n, c = shape[:2]
        length = 1
        for s in shape[2:]:
            length *= s
        gen = torch.Generator(device="cpu").manual_seed(0)
        # post-ReLU-like activations and a plausible target
        x = torch.randn(shape, generator=gen).relu_().to(device)
        target = ops.gram_matrix(torch.randn(shape, generator=gen).relu_().to(device), impl="reference")[:1]
        xg = x.clone().requires_grad_()

        # bind this shape's tensors now: a bare closure would see the last loop iteration's
        def fwd(fn, x=x, target=target):
            return lambda: fn(x, target)

        def fwd_bwd(fn, xg=xg, target=target):
            def run():
                fn(xg, target).backward()
                xg.grad = None
            return run

        impls = {"reference": ref.style_loss}
        if compiled is not None:
            impls["compiled-reference"] = compiled
        if native:
            impls["native"] = lambda f, t: ops.style_loss(f, t, impl="native")
        flops = 2.0 * n * c * c * length
        out.append(Case("style_loss", shape, "forward", {k: fwd(v) for k, v in impls.items()}, flops=flops))
        out.append(Case("style_loss", shape, "forward+backward", {k: fwd_bwd(v) for k, v in impls.items()},
                        flops=2 * flops))
    return out
