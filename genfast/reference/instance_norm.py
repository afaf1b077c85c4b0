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


def _normalised(x, scale, shift, eps, activation):
    """What both backward formulas recompute from x, in the accumulation dtype: x_hat and rstd per
    plane, the scale a as (N, C, 1, 1) (or 1), and the pre-activation a x_hat + b (None without an
    activation)."""
    acc = acc_dtype(x.dtype)
    xf = x.to(acc)
    mean = xf.mean(dim=(2, 3), keepdim=True)
    d = xf - mean
    rstd = torch.rsqrt(d.square().mean(dim=(2, 3), keepdim=True) + eps)
    xhat = d * rstd
    a = torch.ones((), dtype=acc, device=x.device) if scale is None else scale.to(acc)[:, :, None, None]
    pre = None
    if activation != "none":
        b = torch.zeros((), dtype=acc, device=x.device) if shift is None else shift.to(acc)[:, :, None, None]
        pre = xhat * a + b
    return xhat, rstd, a, pre


def instance_norm_backward(grad: torch.Tensor, x: torch.Tensor, scale: torch.Tensor | None,
                           shift: torch.Tensor | None, eps: float, activation: str,
                           negative_slope: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad_x, grad_scale, grad_shift) of affine_instance_norm, as differentiable torch ops.

    The statistics are recomputed from x, so differentiating this gives the full second
    derivative (instance_norm_double_backward below is that derivative in closed form, tested
    against torch.func.vjp of this). grad_scale and grad_shift are (N, C) in the accumulation dtype.
    """
    g = grad.to(acc_dtype(x.dtype))
    xhat, rstd, a, pre = _normalised(x, scale, shift, eps, activation)
    m = x.shape[2] * x.shape[3]
    if pre is not None:
        slope = 0.0 if activation == "relu" else negative_slope
        g = torch.where(pre > 0, g, g * slope)
    sum_g = g.sum(dim=(2, 3), keepdim=True)
    sum_gxhat = (g * xhat).sum(dim=(2, 3), keepdim=True)
    grad_x = a * rstd * (g - sum_g / m - xhat * (sum_gxhat / m))
    return grad_x.to(x.dtype), sum_gxhat[:, :, 0, 0], sum_g[:, :, 0, 0]


def instance_norm_double_backward(grad: torch.Tensor, x: torch.Tensor, scale: torch.Tensor | None,
                                  shift: torch.Tensor | None, gg_x: torch.Tensor | None,
                                  gg_scale: torch.Tensor | None, gg_shift: torch.Tensor | None, eps: float,
                                  activation: str, negative_slope: float):
    """The VJP of `instance_norm_backward` in closed form: (d grad, d x, d scale), given the
    cotangents u = gg_x (N, C, H, W), alpha = gg_scale and beta = gg_shift (N, C) (None: zero).

    Per plane of M values, with g' = s * grad (s the activation's slope at the plane's pre-activation,
    piecewise constant, so its own derivative is 0 almost everywhere), S1 = sum g', S2 = sum g' x_hat,
    U1 = sum u, U2 = sum u x_hat, Q = sum u g' - (S1 U1 + S2 U2) / M, the backward's outputs
    grad_x = a r (g' - S1/M - x_hat S2/M), grad_scale = S2, grad_shift = S1 give

        d grad  = s * (a r (u - U1/M - x_hat U2/M) + alpha x_hat + beta)
        d scale = r Q
        d x     = r (G - mean(G) - x_hat mean(G x_hat)) - a Q r^2 x_hat / M,
                  G = alpha g' - a r (g' U2 + u S2) / M      (dL/dx_hat at fixed r)

    and no derivative for shift (it enters only through s). One pass of sums and one of outputs
    where autograd through the backward formula re-runs it and then its transpose (tested against
    torch.func.vjp of `instance_norm_backward` in float64)."""
    acc = acc_dtype(x.dtype)
    g = grad.to(acc)
    xhat, r, a, pre = _normalised(x, scale, shift, eps, activation)
    m = x.shape[2] * x.shape[3]
    dims = (2, 3)
    s = None
    if pre is not None:
        slope = 0.0 if activation == "relu" else negative_slope
        s = torch.where(pre > 0, torch.ones((), dtype=acc, device=x.device),
                        torch.full((), slope, dtype=acc, device=x.device))
        g = g * s
    zero = torch.zeros((), dtype=acc, device=x.device)
    alpha = zero if gg_scale is None else gg_scale.to(acc)[:, :, None, None]
    beta = zero if gg_shift is None else gg_shift.to(acc)[:, :, None, None]
    s1 = g.sum(dim=dims, keepdim=True)
    s2 = (g * xhat).sum(dim=dims, keepdim=True)
    if gg_x is None:
        d_grad = alpha * xhat + beta
        q = torch.zeros_like(s1)
        G = alpha * g
    else:
        u = gg_x.to(acc)
        u1 = u.sum(dim=dims, keepdim=True)
        u2 = (u * xhat).sum(dim=dims, keepdim=True)
        ar = a * r
        d_grad = ar * (u - u1 / m - xhat * (u2 / m)) + alpha * xhat + beta
        q = (u * g).sum(dim=dims, keepdim=True) - (s1 * u1 + s2 * u2) / m
        G = alpha * g - (ar / m) * (g * u2 + u * s2)
    if s is not None:
        d_grad = d_grad * s
    mean_G = G.mean(dim=dims, keepdim=True)
    mean_Gxhat = (G * xhat).mean(dim=dims, keepdim=True)
    d_x = r * (G - mean_G - xhat * mean_Gxhat) - (a * q) * (r * r / m) * xhat
    d_scale = (r * q)[:, :, 0, 0]
    return d_grad.to(grad.dtype), d_x.to(x.dtype), d_scale
