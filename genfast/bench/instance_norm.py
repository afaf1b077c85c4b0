"""Instance norm + ReLU benchmark: the feed-forward stylizer's normalisation layers.

reference:           torch.nn.InstanceNorm2d(C, affine=True) then torch.nn.ReLU
compiled-reference:  torch.compile of that
native:              genfast.nn.InstanceNorm2d(C, activation="relu") with the same parameters

"forward" runs under torch.no_grad (inference); "forward+backward" takes a dense upstream
gradient (as from the next convolution) to x, weight and bias. GB/s counts the bytes the fused
op must move: read x and write y (2 tensors) forward, plus read dy and x and write dx (5 in all)
forward+backward. "gradient penalty" is what a WGAN-GP critic or R1 runs through the layer (with
LeakyReLU(0.2) on both sides, as in genfast's critics): the gradient of <y, dy> to x with
create_graph, then the backward of its squared norm to x, weight and bias — forward, backward and
the double backward (no compiled side: torch.compile does not trace double backward).
"""

from __future__ import annotations

import torch

from genfast import _native
from genfast import nn as gnn
from genfast.bench.core import Case

PRIMARY_OP = "instance_norm"
DEFAULT_SHAPES = [(4, 32, 256, 256), (4, 64, 128, 128), (4, 128, 64, 64), (1, 32, 512, 512)]
QUICK_SHAPES = [(2, 32, 64, 64), (2, 64, 32, 32)]


def reference_module(c: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.InstanceNorm2d(c, affine=True), torch.nn.ReLU())


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    shapes = shapes or DEFAULT_SHAPES
    native = _native.native_available(PRIMARY_OP, device)
    out = []
    for shape in shapes:
        n, c = shape[:2]
        gen = torch.Generator(device="cpu").manual_seed(0)
        x = (torch.randn(shape, generator=gen) * 2 + 0.5).to(device)
        dy = torch.randn(shape, generator=gen).to(device)
        ref = reference_module(c).to(device)
        with torch.no_grad():
            ref[0].weight.copy_(1 + 0.2 * torch.randn(c, generator=gen))
            ref[0].bias.copy_(0.2 * torch.randn(c, generator=gen))
        mods = {"reference": ref}
        if compile:
            mods["compiled-reference"] = torch.compile(ref, dynamic=False)
        if native:
            mod = gnn.InstanceNorm2d(c, activation="relu", impl="native").to(device)
            mod.load_state_dict(ref[0].state_dict())
            mods["native"] = mod
        xg = x.clone().requires_grad_()

        # bind this shape's tensors now: a bare closure would see the last loop iteration's
        def fwd(m, x=x):
            def run():
                with torch.no_grad():
                    return m(x)
            return run

        def fwd_bwd(m, xg=xg, dy=dy):
            params = list(m.parameters())

            def run():
                m(xg).backward(dy)
                xg.grad = None
                for p in params:
                    p.grad = None
            return run

        def penalty(m, xg=xg, dy=dy):
            params = list(m.parameters())

            def run():
                (g,) = torch.autograd.grad((m(xg) * dy).sum(), xg, create_graph=True)
                g.square().sum().backward()
                xg.grad = None
                for p in params:
                    p.grad = None
            return run

        nbytes = x.numel() * x.element_size()
        out.append(Case(PRIMARY_OP, shape, "forward", {k: fwd(m) for k, m in mods.items()}, bytes=2 * nbytes))
        out.append(Case(PRIMARY_OP, shape, "forward+backward", {k: fwd_bwd(m) for k, m in mods.items()},
                        bytes=5 * nbytes))
        leaky = {"reference": torch.nn.Sequential(torch.nn.InstanceNorm2d(c, affine=True),
                                                  torch.nn.LeakyReLU(0.2)).to(device)}
        leaky["reference"][0].load_state_dict(ref[0].state_dict())
        if native:
            leaky["native"] = gnn.InstanceNorm2d(c, activation="leaky_relu", negative_slope=0.2,
                                                 impl="native").to(device)
            leaky["native"].load_state_dict(ref[0].state_dict())
        out.append(Case(PRIMARY_OP, shape, "gradient penalty", {k: penalty(m) for k, m in leaky.items()}))
    return out
