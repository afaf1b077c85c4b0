"""Convolution + activation of a frozen network, keeping only what the input's gradient needs.

DeepDream, filter visualisation and style transfer differentiate a frozen network with respect to its
input. Autograd's convolution saves its input even then (one formula gives the input, weight and bias
gradients), and so the padded copy of TensorFlow's SAME stride-2 convolutions too. The input's gradient
through a convolution needs only the weight; through ReLU6 (ReLU) only where the output lies inside
(0, 6) (above 0). `conv2d_act` keeps the weight and the activation's output, nothing of the input:
a 2048 x 2048 DeepDream gradient through EfficientNet-Lite0 up to block8 peaks at 2.7-2.8 GB instead
of 4.4-4.6 GB, and the step is faster (benchmarks/RESULTS.md, "dream").

A bool mask instead of the output would keep a quarter of it, but PyTorch's CPU kernels for bool
masks (comparisons, `where`) ran 3-10x slower than `hardtanh_backward` on the float output and cost
more time than the memory saved.

Same arithmetic as `F.conv2d` then `F.relu6`/`F.relu` (forward and input gradient bit for bit,
tests/models/test_frozen.py); only the memory differs. The weight and bias get no gradient: the
function is used only when they do not require one (otherwise the plain ops run).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS = (None, "relu", "relu6")


def _conv_act(padded, weight, bias, stride, padding, groups, activation):
    """The plain ops: conv2d, then the activation in place on its fresh output."""
    y = F.conv2d(padded, weight, bias, stride, padding, 1, groups)
    if activation == "relu6":
        return F.relu6(y, inplace=True)
    if activation == "relu":
        return F.relu(y, inplace=True)
    return y


class _FrozenConvAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, groups, pad, activation):
        padded = F.pad(x, pad) if pad is not None else x
        y = _conv_act(padded, weight, bias, stride, padding, groups, activation)
        ctx.activation = activation
        ctx.save_for_backward(weight, y if activation else None)
        layout = (torch.channels_last if padded.dim() == 4 and not padded.is_contiguous()
                  and padded.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)
        ctx.conv = (tuple(padded.shape), padded.dtype, layout, stride, padding, groups, pad)
        return y

    @staticmethod
    def backward(ctx, grad):
        weight, y = ctx.saved_tensors
        shape, dtype, layout, stride, padding, groups, pad = ctx.conv
        if ctx.activation == "relu6":
            grad = torch.ops.aten.hardtanh_backward(grad, y, 0.0, 6.0)
        elif ctx.activation == "relu":
            grad = torch.ops.aten.threshold_backward(grad, y, 0.0)
        # the input enters convolution_backward for its shape and layout only (the input gradient
        # does not read it): an uninitialised tensor touches no memory
        stand_in = torch.empty(shape, dtype=dtype, device=grad.device, memory_format=layout)
        (grad_input, _, _) = torch.ops.aten.convolution_backward(
            grad, stand_in, weight, None, list(stride), list(padding), [1, 1], False, [0, 0], groups,
            [True, False, False])
        if pad is not None:
            left, right, top, bottom = pad
            grad_input = grad_input[..., top:grad_input.shape[-2] - bottom, left:grad_input.shape[-1] - right]
        return grad_input, None, None, None, None, None, None, None


def conv2d_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1, padding=0,
               groups: int = 1, *, pad: tuple[int, int, int, int] | None = None,
               activation: str | None = None) -> torch.Tensor:
    """activation(conv2d(F.pad(x, pad), weight, bias, stride, padding, groups=groups)), keeping for the
    backward pass only the weight and the activation's output. Falls back to the plain ops (identical
    values) when no input gradient is being recorded or the weight requires a gradient itself."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
    lean = (torch.is_grad_enabled() and x.requires_grad
            and not weight.requires_grad and not (bias is not None and bias.requires_grad))
    if lean:
        return _FrozenConvAct.apply(x, weight, bias, stride, padding, groups, pad, activation)
    return _conv_act(F.pad(x, pad) if pad is not None else x, weight, bias, stride, padding, groups, activation)
