"""Reference stem convolution: the convolution, its activation and its two gradients as the textbook
writes them.

With k = (c, kh, kw) over the input channels and kernel taps and l = (oh, ow) over output pixels,
unfold(x)[n, k, l] = x[n, c, oh * sh + kh - ph, ow * sw + kw - pw] (0 outside x), and

    z[n]  = W . unfold(x)[n] + b                 W viewed as (O, K)
    y     = a(z)                                 a: none, relu, or leaky_relu (z > 0 ? z : slope * z)
    dz    = dy * a'(y)                           a'(y) = 1 where y > 0, else slope (= a'(z) for slope >= 0)
    dx[n] = fold(W^T . dz[n])                    fold: unfold's adjoint, overlapping taps add up
    dW    = sum over n of dz[n] . unfold(x)[n]^T,   db = dz summed over n and the pixels

Given `slopes_of` (an earlier output y0), the forward is the layer linearised at y0: z * a'(y0).
Dilation 1, one group, zero padding. float16/bfloat16 inputs are computed in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genfast.checks import acc_dtype

ACTIVATIONS = ("none", "relu", "leaky_relu")


def activation_slope(activation: str, negative_slope: float) -> float | None:
    """The activation's slope below zero, None for "none"."""
    return {"none": None, "relu": 0.0}.get(activation, negative_slope)


def slope_factor(out: torch.Tensor, slope: float) -> torch.Tensor:
    """a'(out): 1 where out > 0, else the slope."""
    return torch.where(out > 0, torch.ones_like(out), torch.full_like(out, slope))


def output_hw(input_hw, kernel_size, stride, padding) -> tuple[int, int]:
    return tuple((i + 2 * p - k) // s + 1 for i, k, s, p in zip(input_hw, kernel_size, stride, padding))


def _acc(*tensors):
    dtype = acc_dtype(tensors[0].dtype)
    return [None if t is None else t.to(dtype) for t in tensors]


def _dz(grad_out, out, activation, negative_slope):
    slope = activation_slope(activation, negative_slope)
    return grad_out if slope is None else grad_out * slope_factor(out.to(grad_out.dtype), slope)


def stem_conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0), activation="none", negative_slope=0.01,
                slopes_of=None) -> torch.Tensor:
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = output_hw((h, w), (kh, kw), stride, padding)
    xs, ws, bs = _acc(x, weight, bias)
    cols = F.unfold(xs, (kh, kw), padding=tuple(padding), stride=tuple(stride))         # (N, K, L)
    z = (ws.reshape(o, -1) @ cols).reshape(n, o, ho, wo)
    if bs is not None:
        z = z + bs.reshape(1, o, 1, 1)
    slope = activation_slope(activation, negative_slope)
    if slope is not None:
        z = z * slope_factor(slopes_of.to(z.dtype), slope) if slopes_of is not None else torch.where(z > 0, z, z * slope)
    return z.to(x.dtype)


def stem_conv2d_backward_input(grad_out, out, weight, input_hw, stride, padding, activation="none",
                               negative_slope=0.01) -> torch.Tensor:
    n, o = grad_out.shape[:2]
    _, _, kh, kw = weight.shape
    gy, ws, y = _acc(grad_out, weight, out)
    cols = ws.reshape(o, -1).t() @ _dz(gy, y, activation, negative_slope).reshape(n, o, -1)    # (N, K, L)
    gx = F.fold(cols, tuple(input_hw), (kh, kw), padding=tuple(padding), stride=tuple(stride))
    return gx.to(grad_out.dtype)


def stem_conv2d_backward_weight(grad_out, out, x, kernel_size, stride, padding, activation="none",
                                negative_slope=0.01) -> tuple[torch.Tensor, torch.Tensor]:
    n, o = grad_out.shape[:2]
    c = x.shape[1]
    gy, xs, y = _acc(grad_out, x, out)
    dz = _dz(gy, y, activation, negative_slope)
    cols = F.unfold(xs, tuple(kernel_size), padding=tuple(padding), stride=tuple(stride))  # (N, K, L)
    gw = torch.einsum("nol,nkl->ok", dz.reshape(n, o, -1), cols)
    return gw.reshape(o, c, *kernel_size).to(grad_out.dtype), dz.sum((0, 2, 3)).to(grad_out.dtype)


def stem_conv_transpose2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0)) -> torch.Tensor:
    """conv_transpose2d(x, weight, bias, stride, padding): the stem convolution's input gradient
    with x in the role of its output gradient (fold(W^T . x[n]) + b)."""
    kh, kw = weight.shape[2:]
    out_hw = tuple((i - 1) * s - 2 * p + k for i, k, s, p in zip(x.shape[2:], (kh, kw), stride, padding))
    y = stem_conv2d_backward_input(x, None, weight, out_hw, stride, padding)
    return y if bias is None else y + bias.reshape(1, -1, 1, 1).to(y.dtype)
