"""Stem convolution benchmark: a discriminator's first layer (O = 64, 4 x 4, stride 2, padding 1) on
grey 28 x 28 and RGB 64 x 64 batches, alone and with its LeakyReLU(0.2). The reference side is
torch's own layers (torch.nn.functional.conv2d, oneDNN on the CPU, then F.leaky_relu), the way a
plain PyTorch critic runs them; native is genfast.ops.stem_conv2d with the activation fused.

Also the other end of a GAN: the generator's image layer for the same images (64 channels onto 1 or
3), on genfast.ops.stem_conv_transpose2d, the stem convolution's adjoint.

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
OUTPUT_FROM = 64     # the generator's image layer: 64 channels onto the image's few


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
        out += _generator_layer_cases(shape, device, native, compile)
    return out


def _generator_layer_cases(shape, device, native: bool, compile: bool) -> list[Case]:
    """The image layer of a generator making these images, as genfast.gan's DCGAN has it: for
    28 x 28 a Conv2d(64, C, 3, 1, 1) (genfast.nn.HeadConv2d: the transposed op with the weight's
    channel axes swapped and its taps flipped), else a ConvTranspose2d(64, C, 4, 2, 1)
    (genfast.nn.StemConvTranspose2d). Reference: torch's conv2d / conv_transpose2d. Forward and
    forward+backward (the input and weight gradients, as a generator step needs them)."""
    n, c, h, w = shape
    gen = torch.Generator().manual_seed(1)
    if (h, w) == (28, 28):
        name, hin, win = "head_conv2d (stem_conv_transpose2d)", h, w
        weight = (torch.randn(c, OUTPUT_FROM, 3, 3, generator=gen) * 0.05).to(device).requires_grad_()

        def ref_layer(x, wt):
            return F.conv2d(x, wt, None, 1, 1)

        def native_layer(x, wt):
            return ops.stem_conv_transpose2d(x, wt.transpose(0, 1).flip(2, 3), None, 1, 1, impl="native")
    else:
        name, hin, win = "stem_conv_transpose2d", max(1, h // 2), max(1, w // 2)
        h, w = 2 * hin, 2 * win     # what the layer makes (an odd size's last row and column dropped)
        weight = (torch.randn(OUTPUT_FROM, c, 4, 4, generator=gen) * 0.05).to(device).requires_grad_()

        def ref_layer(x, wt):
            return F.conv_transpose2d(x, wt, None, 2, 1)

        def native_layer(x, wt):
            return ops.stem_conv_transpose2d(x, wt, None, 2, 1, impl="native")
    x = torch.randn(n, OUTPUT_FROM, hin, win, generator=gen).to(device).requires_grad_()
    dy = torch.randn(n, c, h, w, generator=gen).to(device)
    flops = 2.0 * n * OUTPUT_FROM * c * weight.shape[2] * weight.shape[3] * hin * win

    def fwd(fn):
        def run():
            with torch.no_grad():
                fn(x, weight)
        return run

    def fwd_bwd(fn):
        def run():
            fn(x, weight).backward(dy)
            x.grad = weight.grad = None
        return run

    impls = {"reference": ref_layer}
    if compile:
        impls["compiled-reference"] = torch.compile(ref_layer, dynamic=False)
    if native:
        impls["native"] = native_layer
    return [Case(name, (n, OUTPUT_FROM, hin, win), mode, {k: make(v) for k, v in impls.items()}, flops=passes * flops)
            for mode, make, passes in (("forward", fwd, 1), ("forward+backward", fwd_bwd, 3))]
