"""Reference minibatch standard deviation (Karras et al. 2018; StyleGAN2's MinibatchStdLayer).

x: (N, C, H, W). With G = min(group_size, N) and F = num_channels:
  y = x.reshape(G, N // G, F, C // F, H, W)     sample i is in group i mod (N // G)
  y = y - y.mean(0)                              deviation from the group mean
  y = sqrt(mean over the G samples of y^2 + eps) biased standard deviation per element
  y = mean of y over the C // F channels and H, W   one value per (group, channel group)
  out = cat([x, y broadcast to (N, F, H, W)], dim=1)
float16/bfloat16 inputs are computed in float32.
"""

from __future__ import annotations

import torch

from genfast.checks import acc_dtype


def group_size_of(n: int, group_size: int) -> int:
    return min(group_size, n)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_channels: int = 1, eps: float = 1e-8) -> torch.Tensor:
    n, c, h, w = x.shape
    g = group_size_of(n, group_size)
    f = num_channels
    if n == 0:      # no samples, no groups: the empty output the native op returns
        return torch.cat([x, x.new_empty((0, f, h, w))], dim=1)
    acc = acc_dtype(x.dtype)
    y = x.to(acc).reshape(g, -1, f, c // f, h, w)
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + eps).sqrt()
    y = y.mean(dim=[2, 3, 4])                 # (N // G, F)
    y = y.reshape(-1, f, 1, 1).to(x.dtype)
    y = y.repeat(g, 1, h, w)                  # sample i gets group i mod (N // G)
    return torch.cat([x, y], dim=1)


def minibatch_stddev_backward(grad_out: torch.Tensor, x: torch.Tensor, group_size: int = 4, num_channels: int = 1,
                              eps: float = 1e-8) -> torch.Tensor:
    """dL/dx from dL/d(out), written with differentiable torch ops (it defines the double backward):
    dx = dy[:, :C] + gstat * (x - mu) / (K * G * s),  K = C/F * H * W, s = sqrt(var + eps)."""
    n, c, h, w = x.shape
    g = group_size_of(n, group_size)
    f = num_channels
    if n == 0:
        return grad_out[:, :c].to(x.dtype).clone()
    acc = acc_dtype(x.dtype)
    xs = x.to(acc).reshape(g, -1, f, c // f, h, w)
    mu = xs.mean(dim=0, keepdim=True)
    s = ((xs - mu).square().mean(dim=0, keepdim=True) + eps).sqrt()
    dy = grad_out.to(acc)
    gstat = dy[:, c:].sum(dim=[2, 3]).reshape(g, -1, f).sum(0)            # (N // G, F)
    k = (c // f) * h * w
    coef = gstat.reshape(1, -1, f, 1, 1, 1) / (k * g * s)
    dx = dy[:, :c] + (coef * (xs - mu)).reshape(n, c, h, w)
    return dx.to(x.dtype)
