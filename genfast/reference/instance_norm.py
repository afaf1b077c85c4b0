"""Reference instance norm with an activation, and its conditional (multi-style) variant.

For x of shape (N, C, H, W), every (n, c) plane is normalised over its H*W values with the biased
variance (what torch.nn.functional.instance_norm computes):
    x_hat = (x - mean) / sqrt(var + eps)
then scaled and shifted per plane and passed through the activation:
    y = act(x_hat * scale[n, c] + shift[n, c])
For the plain op scale[n, c] = weight[c] and shift[n, c] = bias[c]. For the conditional op
(Dumoulin et al., "A Learned Representation for Artistic Style") the rows of the (S, C) tables
gamma and beta are picked per sample by a style index, or blended by (N, S) mixing weights:
    scale = w @ gamma,  shift = w @ beta
float16/bfloat16 inputs are computed in float32.
"""

from __future__ import annotations

import torch

from genfast.checks import acc_dtype

ACTIVATIONS = ("none", "relu", "leaky_relu")



def activate(y: torch.Tensor, activation: str, negative_slope: float = 0.01) -> torch.Tensor:
    if activation == "none":
        return y
    if activation == "relu":
        return torch.relu(y)
    if activation == "leaky_relu":
        return torch.nn.functional.leaky_relu(y, negative_slope)
    raise ValueError(f"expected activation to be one of {ACTIVATIONS}, got {activation!r}")


def affine_instance_norm(x: torch.Tensor, scale: torch.Tensor | None, shift: torch.Tensor | None,
                         eps: float = 1e-5, activation: str = "none", negative_slope: float = 0.01) -> torch.Tensor:
    """The shared core: scale and shift of shape (N, C) (or None), in x's dtype out."""
    xf = x.to(acc_dtype(x.dtype))
    mean = xf.mean(dim=(2, 3), keepdim=True)
    var = (xf - mean).square().mean(dim=(2, 3), keepdim=True)
    y = (xf - mean) * torch.rsqrt(var + eps)
    if scale is not None:
        y = y * scale.to(y.dtype)[:, :, None, None]
    if shift is not None:
        y = y + shift.to(y.dtype)[:, :, None, None]
    return activate(y, activation, negative_slope).to(x.dtype)


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                  eps: float = 1e-5, activation: str = "none", negative_slope: float = 0.01) -> torch.Tensor:
    n, c = x.shape[:2]
    scale = None if weight is None else weight.reshape(1, c).expand(n, c)
    shift = None if bias is None else bias.reshape(1, c).expand(n, c)
    return affine_instance_norm(x, scale, shift, eps, activation, negative_slope)


def style_affine(style: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (N, C) scale and shift: rows picked by index, or blended by mixing weights."""
    if style.dtype in (torch.int64, torch.int32):
        return gamma.index_select(0, style.long()), beta.index_select(0, style.long())
    w = style.to(gamma.dtype)
    return w @ gamma, w @ beta.to(gamma.dtype)


def conditional_instance_norm(x: torch.Tensor, style: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                              eps: float = 1e-5, activation: str = "none",
                              negative_slope: float = 0.01) -> torch.Tensor:
    scale, shift = style_affine(style, gamma, beta)
    return affine_instance_norm(x, scale, shift, eps, activation, negative_slope)


def instance_norm_backward(grad: torch.Tensor, x: torch.Tensor, scale: torch.Tensor | None,
                           shift: torch.Tensor | None, eps: float, activation: str,
                           negative_slope: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad_x, grad_scale, grad_shift) of affine_instance_norm, as differentiable torch ops.

    The statistics are recomputed from x, so differentiating this gives the full second
    derivative (the native backward's own autograd is built on it). grad_scale and grad_shift are
    (N, C) in the accumulation dtype.
    """
    acc = acc_dtype(x.dtype)
    xf, g = x.to(acc), grad.to(acc)
    m = xf.shape[2] * xf.shape[3]
    mean = xf.mean(dim=(2, 3), keepdim=True)
    d = xf - mean
    rstd = torch.rsqrt(d.square().mean(dim=(2, 3), keepdim=True) + eps)
    xhat = d * rstd
    a = torch.ones((), dtype=acc, device=x.device) if scale is None else scale.to(acc)[:, :, None, None]
    if activation != "none":
        b = torch.zeros((), dtype=acc, device=x.device) if shift is None else shift.to(acc)[:, :, None, None]
        pre = xhat * a + b
        slope = 0.0 if activation == "relu" else negative_slope
        g = torch.where(pre > 0, g, g * slope)
    sum_g = g.sum(dim=(2, 3), keepdim=True)
    sum_gxhat = (g * xhat).sum(dim=(2, 3), keepdim=True)
    grad_x = a * rstd * (g - sum_g / m - xhat * (sum_gxhat / m))
    return grad_x.to(x.dtype), sum_gxhat[:, :, 0, 0], sum_g[:, :, 0, 0]
