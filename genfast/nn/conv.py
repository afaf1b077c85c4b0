"""StemConv2d: torch.nn.Conv2d for an image discriminator's first layer, on genfast.ops.stem_conv2d."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genfast import ops
from genfast.checks import check_choice, check_number
from genfast.reference.stem_conv2d import ACTIVATIONS


class StemConv2d(torch.nn.Conv2d):
    """A drop-in torch.nn.Conv2d (same parameters, same state_dict) whose forward runs
    genfast.ops.stem_conv2d, fast for few input channels (1 to 4), optionally with its activation
    fused: StemConv2d(..., activation="leaky_relu", negative_slope=0.2) is Conv2d then
    LeakyReLU(0.2) in one op. Settings the op does not cover (dilation, groups, a non-zero padding
    mode, padding="same") run torch's own convolution and activation."""

    def __init__(self, *args, activation: str = "none", negative_slope: float = 0.01, impl: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.activation = check_choice(activation, "activation", ACTIVATIONS, where="StemConv2d")
        self.negative_slope = check_number(negative_slope, "negative_slope", where="StemConv2d")
        self.impl = impl

    @property
    def _native(self) -> bool:
        """Whether stem_conv2d covers this layer's settings (read from them, so it follows any change)."""
        return (self.dilation == (1, 1) and self.groups == 1 and self.padding_mode == "zeros"
                and not isinstance(self.padding, str))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._native:
            return ops.stem_conv2d(x, self.weight, self.bias, self.stride, self.padding, activation=self.activation,
                                   negative_slope=self.negative_slope, impl=self.impl)
        y = super().forward(x)
        if self.activation == "relu":
            return F.relu(y)
        return F.leaky_relu(y, self.negative_slope) if self.activation == "leaky_relu" else y

    def extra_repr(self) -> str:
        act = "" if self.activation == "none" else f", activation={self.activation!r}"
        if self.activation == "leaky_relu":
            act += f", negative_slope={self.negative_slope}"
        return super().extra_repr() + act
