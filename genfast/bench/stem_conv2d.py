"""Stem convolution benchmark: a discriminator's first layer (O = 64, 4 x 4, stride 2, padding 1) on
grey 28 x 28 and RGB 64 x 64 batches, alone and with its LeakyReLU(0.2). The reference side is
torch's own layers (torch.nn.functional.conv2d, oneDNN on the CPU, then F.leaky_relu), the way a
plain PyTorch critic runs them; native is genfast.ops.stem_conv2d with the activation fused.

Modes: forward; forward+backward (input and weight gradients); "gradient penalty" (forward, the
input gradient with create_graph, then the backward of its squared norm into the weights: WGAN-GP's
path through the layer). GFLOP/s counts 2 N O K L per convolution-sized product: 1, 3 and 5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genfast import _native, ops
from genfast.bench.core import Case

PRIMARY_OP = "stem_conv2d"
DEFAULT_SHAPES = [(64, 1, 28, 28), (64, 3, 64, 64)]
QUICK_SHAPES = [(8, 1, 28, 28), (4, 3, 32, 32)]
OUT_CHANNELS, KERNEL, STRIDE, PADDING, SLOPE = 64, 4, 2, 1, 0.2


def _torch_layer(activation):
    def layer(x, w, b):
        y = F.conv2d(x, w, b, STRIDE, PADDING)
        return F.leaky_relu(y, SLOPE) if activation == "leaky_relu" else y
    return layer


def _native_layer(activation):
    def layer(x, w, b):
        return ops.stem_conv2d(x, w, b, STRIDE, PADDING, activation=activation, negative_slope=SLOPE, impl="native")
    return layer


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    native = _native.native_available(PRIMARY_OP, device)
    out = []
    for shape in shapes or DEFAULT_SHAPES:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=gen).to(device)
        w = (torch.randn(OUT_CHANNELS, shape[1], KERNEL, KERNEL, generator=gen) * 0.2).to(device).requires_grad_()
        b = (torch.randn(OUT_CHANNELS, generator=gen) * 0.1).to(device).requires_grad_()
        y = F.conv2d(x, w, b, STRIDE, PADDING).detach()
        dy = torch.randn(y.shape, generator=gen).to(device)
        xg = x.clone().requires_grad_()
        flops = 2.0 * y.numel() * shape[1] * KERNEL * KERNEL

        def fwd(fn, x=x, w=w, b=b):   # bound now: a bare closure would see the last shape's tensors
            def run():
                with torch.no_grad():
                    fn(x, w, b)
            return run

        def fwd_bwd(fn, xg=xg, w=w, b=b, dy=dy):
            def run():
                fn(xg, w, b).backward(dy)
                xg.grad = w.grad = b.grad = None
            return run

        def penalty(fn, xg=xg, w=w, b=b, dy=dy):
            def run():
                (g,) = torch.autograd.grad((fn(xg, w, b) * dy).sum(), xg, create_graph=True)
                g.square().sum().backward()
                xg.grad = w.grad = b.grad = None
            return run

        for activation in ("none", "leaky_relu"):
            impls = {"reference": _torch_layer(activation)}
            if compile:
                impls["compiled-reference"] = torch.compile(_torch_layer(activation), dynamic=False)
            if native:
                impls["native"] = _native_layer(activation)
            name = PRIMARY_OP + ("+leaky_relu" if activation == "leaky_relu" else "")
            for mode, make, passes in (("forward", fwd, 1), ("forward+backward", fwd_bwd, 3),
                                       ("gradient penalty", penalty, 5)):
                # (no compiled side for the penalty: torch.compile does not trace double backward)
                fns = {k: make(v) for k, v in impls.items() if mode != "gradient penalty" or k != "compiled-reference"}
                out.append(Case(name, shape, mode, fns, flops=passes * flops))
    return out
