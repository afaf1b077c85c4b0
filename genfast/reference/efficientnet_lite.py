"""EfficientNet-Lite0 written the plain way, as the popular PyTorch ports write it.

Every convolution is a `Conv2dStaticSamePadding`-style module (an nn.ZeroPad2d for TensorFlow's SAME
padding, then nn.Conv2d), followed by an nn.BatchNorm2d and nn.ReLU6. Same checkpoint keys as
genfast.models.EfficientNetLite0, same function; genfast's version pads inside the convolution where
it can and, frozen, folds batch norm into the convolutions. This twin is the test oracle for that and
the "plain PyTorch" side of the Gatys benchmark.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genfast.models.efficientnet_lite import BN_EPS, STAGES


class SamePadConv2d(nn.Conv2d):
    def __init__(self, cin, cout, kernel, stride=1, groups=1, bias=False, image_size=None):
        super().__init__(cin, cout, kernel, stride, groups=groups, bias=bias)

    def forward(self, x):
        h, w = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]
        ph = max((math.ceil(h / s) - 1) * s + k - h, 0)
        pw = max((math.ceil(w / s) - 1) * s + k - w, 0)
        x = nn.functional.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return super().forward(x)


class Block(nn.Module):
    def __init__(self, kernel, stride, expand, cin, cout):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SamePadConv2d(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SamePadConv2d(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self._act = nn.ReLU6()
        self.residual = stride == 1 and cin == cout


class EfficientNetLite0(nn.Module):
    """forward(x, layers) takes ImageNet-normalised input and returns {layer name: feature map}."""

    def __init__(self):
        super().__init__()
        self._conv_stem = SamePadConv2d(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        self._act = nn.ReLU6()
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for r in range(repeats):
                blocks.append(Block(kernel, stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x, layers):
        out, wanted = {}, set(layers)
        x = self._act(self._bn0(self._conv_stem(x)))
        if "stem" in wanted:
            out["stem"] = x
        for i, b in enumerate(self._blocks):
            if len(out) == len(wanted):
                break
            inputs = x
            if b.has_expand:
                x = b._act(b._bn0(b._expand_conv(x)))
                if f"block{i}_expand" in wanted:
                    out[f"block{i}_expand"] = x
            x = b._act(b._bn1(b._depthwise_conv(x)))
            if f"block{i}_dw" in wanted:
                out[f"block{i}_dw"] = x
            x = b._bn2(b._project_conv(x))
            if b.residual:
                x = x + inputs
            if f"block{i}" in wanted:
                out[f"block{i}"] = x
        return out


def from_genfast(net) -> EfficientNetLite0:
    """The plain twin with the same weights as a genfast EfficientNetLite0."""
    plain = EfficientNetLite0()
    state = {k: v for k, v in net.state_dict().items() if not k.startswith(("_conv_head", "_bn1", "_fc"))}
    plain.load_state_dict(state)
    return plain.to(next(net.parameters()).device).eval().requires_grad_(False)
