"""The quantities DeepDream and filter visualisation climb, one formula each.

Every loss here is a sum over feature-map positions divided by a count given from outside, so a
tiled evaluation (tiling.py) adds up the tiles' sums and gets the whole image's value and gradient.
"""

from __future__ import annotations

import torch

#: "mean_square": the mean of the squared activations, (1 / CHW) sum F^2 (Chollet's Keras DeepDream);
#: "mean": the mean activation, (1 / CHW) sum F (the TensorFlow DeepDream tutorial)
OBJECTIVES = ("mean_square", "mean")


def activation_sum(feature: torch.Tensor, objective: str = "mean_square") -> torch.Tensor:
    """sum F^2 ("mean_square") or sum F ("mean") over every channel and position of `feature`
    (N, C, H, W), in float32; divided by C H W of the whole image it is the layer's loss."""
    f = feature.float()
    return f.square().sum() if objective == "mean_square" else f.sum()


def guide_sum(feature: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """sum over positions p of max_q <F_p, G_q>: each position's best dot product with one of the
    guide's feature vectors (Mordvintsev's guided DeepDream). `feature` (1, C, H, W), `guide` (C, M);
    the gradient at p is the best-matching guide vector, so the image moves towards the guide's
    features instead of amplifying its own. Divided by the number of positions it is the loss."""
    f = feature.float().flatten(2)[0]                  # (C, P)
    return (f.t() @ guide.float()).amax(dim=1).sum()


def normalize_gradient(grad: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """grad / max(mean|grad|, eps) (eps only keeps a zero gradient zero).

    The gradient's size changes by orders of magnitude between layers, octaves and images (and with
    the loss's own scale); divided by its mean absolute value, a step of size `step_size` moves the
    average pixel by `step_size` whatever the layer, so one step size works everywhere (the
    normalisation of Mordvintsev's DeepDream and of Chollet's Keras example)."""
    return grad / grad.abs().mean().clamp_min(eps)
