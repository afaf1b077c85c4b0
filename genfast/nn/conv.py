"""Convolutions on the stem kernels (genfast.ops.stem_conv2d and its adjoint): StemConv2d for an image
discriminator's first layer (few input channels), StemConvTranspose2d and HeadConv2d for an image
generator's last (few output channels)."""

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


class StemConvTranspose2d(torch.nn.ConvTranspose2d):
    """A drop-in torch.nn.ConvTranspose2d (same parameters, same state_dict) whose forward runs
    genfast.ops.stem_conv_transpose2d, fast for few output channels (a generator's image layer).
    Settings the op does not cover (output_padding, dilation, groups, output_size) run torch's own."""

    def __init__(self, *args, impl: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.impl = impl

    @property
    def _native(self) -> bool:
        return (self.output_padding == (0, 0) and self.dilation == (1, 1) and self.groups == 1
                and self.padding_mode == "zeros")

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if self._native and output_size is None:
            return ops.stem_conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, impl=self.impl)
        return super().forward(x, output_size)


class HeadConv2d(torch.nn.Conv2d):
    """A drop-in torch.nn.Conv2d (same parameters, same state_dict) for few output channels, the last
    layer of an image generator (e.g. Conv2d(64, 1, 3, 1, 1) before the tanh). At stride 1 such a
    convolution is the transposed convolution by the weight with its two channel axes swapped and its
    taps flipped, padding KH - 1 - ph: the forward runs genfast.ops.stem_conv_transpose2d that way.
    Other settings (stride, dilation, groups, padding beyond KH - 1, a non-zero padding mode,
    padding="same") run torch's own convolution."""

    def __init__(self, *args, impl: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.impl = impl

    @property
    def _native(self) -> bool:
        return (self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and self.padding_mode == "zeros" and not isinstance(self.padding, str)
                and all(p <= k - 1 for p, k in zip(self.padding, self.kernel_size)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._native:
            return super().forward(x)
        padding = tuple(k - 1 - p for p, k in zip(self.padding, self.kernel_size))
        return ops.stem_conv_transpose2d(x, self.weight.transpose(0, 1).flip(2, 3), self.bias, 1, padding,
                                         impl=self.impl)
