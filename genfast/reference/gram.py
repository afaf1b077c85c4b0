"""Reference Gram matrix and Gram-matrix style loss.

For features F of one sample as a (C, L) matrix (L = H*W), the Gram matrix is G = s * F F^T with
s = 1 ("none"), 1/L ("hw") or 1/(C*L) ("chw"). The style loss compares G with a target Gram T:
  "mse"        mean over (N, C, C) of (G - T)^2
  "sum"        sum of (G - T)^2
  "frobenius"  sqrt(sum of (G - T)^2)
times `weight`.
"""

from __future__ import annotations

import torch

from genfast.checks import acc_dtype

NORMALIZE = ("none", "hw", "chw")
REDUCTION = ("mse", "sum", "frobenius")


def gram_scale(normalize: str, channels: int, length: int) -> float:
    if normalize == "none":
        return 1.0
    if normalize == "hw":
        return 1.0 / max(length, 1)
    if normalize == "chw":
        return 1.0 / max(channels * length, 1)
    raise ValueError(f"expected normalize to be one of {NORMALIZE}, got {normalize!r}")



def _gram_acc(features: torch.Tensor, normalize: str) -> torch.Tensor:
    """G in float32 (float64 for float64 input)."""
    n, c = features.shape[:2]
    length = 1
    for size in features.shape[2:]:
        length *= size
    f = features.reshape(n, c, length).to(acc_dtype(features.dtype))
    return torch.bmm(f, f.transpose(1, 2)) * gram_scale(normalize, c, f.shape[2])


def gram_matrix(features: torch.Tensor, normalize: str = "chw") -> torch.Tensor:
    """(N, C, H, W) or (N, C, L) -> (N, C, C) in the features' dtype."""
    return _gram_acc(features, normalize).to(features.dtype)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor, normalize: str = "chw",
               reduction: str = "mse", weight: float = 1.0) -> torch.Tensor:
    """Scalar loss in float32 (float64 for float64 features)."""
    g = _gram_acc(features, normalize)
    d = g - target_gram.to(g.dtype)  # (1, C, C) and (C, C) targets broadcast over N
    if reduction == "mse":
        loss = (d * d).mean()
    elif reduction == "sum":
        loss = (d * d).sum()
    elif reduction == "frobenius":
        loss = (d * d).sum().sqrt()
    else:
        raise ValueError(f"expected reduction to be one of {REDUCTION}, got {reduction!r}")
    return loss * weight
