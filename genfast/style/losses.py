"""The losses of optimisation-based style transfer, in the conventions people know them by.

J(G) = alpha * J_content(C, G) + beta * sum_l lambda_l * J_style^l(S, G) + gamma * TV(G)

Style loss conventions (F: the C x M feature matrix of a layer, M = H*W; G = F F^T, A = the target's):
  "mse"             mean over C x C of (G/(CM) - A/(CM))^2      (the PyTorch tutorial's; default)
  "gatys"           1/(4 C^2 M^2) * sum (G - A)^2                (Gatys et al. 2016, eq. 4)
  "deeplearning_ai" 1/(2 M C)^2 * sum (G - A)^2                  (deeplearning.ai's course)
  "frobenius"       sqrt(sum (G/(CM) - A/(CM))^2)
All are computed by the fused native style loss (genfast.ops.style_loss) where it is built.
Content loss follows the same convention: "mse" and "frobenius" mean((F - P)^2), "gatys" 1/2 sum (F - P)^2,
"deeplearning_ai" 1/(4 M C) sum (F - P)^2.
"""

from __future__ import annotations

from typing import Sequence

import torch

from genfast import ops

#: default loss weights of the feed-forward stylizers for the "mse" conventions (the ratio of
#: pytorch/examples' fast_neural_style, 1e5 : 1e10, with its MSE content loss and Gram / (C H W))
DEFAULT_STYLE_WEIGHT = 1e5
DEFAULT_TV_WEIGHT = 10.0

CONVENTIONS = ("mse", "gatys", "deeplearning_ai", "frobenius")


def check_convention(loss: str) -> str:
    if loss not in CONVENTIONS:
        raise ValueError(f"loss: expected one of {', '.join(CONVENTIONS)}, got {loss!r}")
    return loss


def _gram_normalize(loss: str) -> str:
    # "gatys" uses G/M so the numbers stay small in float32; the 1/M^2 is then already in the difference.
    return "hw" if loss == "gatys" else "chw"


def target_gram(features: torch.Tensor, loss: str = "mse", *, impl: str = "auto") -> torch.Tensor:
    """The Gram matrix a style layer's loss compares against, in the convention's normalisation."""
    return ops.gram_matrix(features, normalize=_gram_normalize(check_convention(loss)), impl=impl)


def style_loss(features: torch.Tensor, target: torch.Tensor, loss: str = "mse", *, weight: float = 1.0,
               impl: str = "auto") -> torch.Tensor:
    """J_style of one layer against a Gram matrix from `target_gram` (same convention)."""
    check_convention(loss)
    c = features.shape[1]
    if loss == "mse":
        return ops.style_loss(features, target, normalize="chw", reduction="mse", weight=weight, impl=impl)
    if loss == "gatys":
        return ops.style_loss(features, target, normalize="hw", reduction="sum", weight=weight / (4.0 * c * c),
                              impl=impl)
    if loss == "deeplearning_ai":
        return ops.style_loss(features, target, normalize="chw", reduction="sum", weight=weight / 4.0, impl=impl)
    return ops.style_loss(features, target, normalize="chw", reduction="frobenius", weight=weight, impl=impl)


def content_loss(features: torch.Tensor, target: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """J_content of one layer: features against the content image's features at that layer."""
    check_convention(loss)
    if features.shape != target.shape:
        raise ValueError(f"content_loss: features {tuple(features.shape)} and target {tuple(target.shape)} differ")
    diff = features - target
    if diff.dtype in (torch.float16, torch.bfloat16):
        diff = diff.float()    # half-precision squares overflow; accumulate in float32 as the style loss does
    if loss == "gatys":
        return 0.5 * diff.square().sum()
    if loss == "deeplearning_ai":
        m_c = features[0].numel()
        return diff.square().sum() / (4.0 * m_c)
    return diff.square().mean()


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared difference between neighbouring pixels (both directions)."""
    if image.dim() != 4:
        raise ValueError(f"tv_loss: expected image of shape (N, C, H, W), got {tuple(image.shape)}")
    dy = image[..., 1:, :] - image[..., :-1, :]
    dx = image[..., :, 1:] - image[..., :, :-1]
    return dy.square().mean() + dx.square().mean()


def gram_normalize(loss: str) -> str:
    """How `target_gram` normalises G for this convention ("chw" or "hw")."""
    return _gram_normalize(check_convention(loss))


def gram_loss(gram: torch.Tensor, target: torch.Tensor, loss: str = "mse", *, weight: float = 1.0) -> torch.Tensor:
    """J_style from a normalised Gram matrix (as `target_gram` makes it) instead of from features.

    style_loss(F, A) == gram_loss(target_gram(F), A): tiled style transfer assembles the whole image's
    Gram matrix from tiles and needs the loss (and its gradient) as a function of G alone.
    """
    check_convention(loss)
    d = (gram.double() if gram.dtype == torch.float64 else gram.float()) - target
    if loss == "mse":
        return weight * d.square().mean()
    if loss == "gatys":
        c = gram.shape[-1]
        return weight / (4.0 * c * c) * d.square().sum()
    if loss == "deeplearning_ai":
        return weight / 4.0 * d.square().sum()
    return weight * d.square().sum().sqrt()


def content_scale(loss: str, channels: int, positions: int) -> float:
    """J_content = content_scale * sum (F - P)^2 for a layer with `channels` x `positions` values."""
    check_convention(loss)
    if loss == "gatys":
        return 0.5
    if loss == "deeplearning_ai":
        return 1.0 / (4.0 * channels * positions)
    return 1.0 / (channels * positions)


class PerceptualLoss:
    """Johnson et al.'s training objective for a stylizer: for photos x in [0, 1] and the stylizer's
    output y in [0, 255], J = content_weight * J_content(x, y/255) + style_weight * J_style(y/255, style)
    + tv_weight * TV(y/255), with each style image's Gram matrices computed once. `style_ids` picks,
    per sample, which of the style images (by position) each output is compared with."""

    def __init__(self, net, style_images: Sequence[torch.Tensor], *, content_layers=None,
                 style_layers=None, content_weight: float = 1.0, style_weight: float = DEFAULT_STYLE_WEIGHT,
                 tv_weight: float = DEFAULT_TV_WEIGHT, loss: str = "mse", impl: str = "auto"):
        self.net = net
        self.content_layers = net.check_layers(net.content_layers if content_layers is None else content_layers,
                                               "content_layers")
        self.style_layers = net.check_layers(net.style_layers if style_layers is None else style_layers,
                                             "style_layers")
        self.layers = list(dict.fromkeys(self.content_layers + self.style_layers))
        self.layer_weights = {k: net.style_layer_weights.get(k, 1.0) for k in self.style_layers}
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight
        self.loss, self.impl = check_convention(loss), impl
        self.targets: list[dict[str, torch.Tensor]] = []
        with torch.no_grad():
            for image in style_images:
                feats = net(image, self.style_layers)
                self.targets.append({k: target_gram(feats[k].float(), loss, impl=impl)[0]
                                     for k in self.style_layers})

    def _target(self, ids: Sequence[int], layer: str) -> torch.Tensor:
        if all(i == ids[0] for i in ids):
            return self.targets[ids[0]][layer]
        return torch.stack([self.targets[i][layer] for i in ids])

    def __call__(self, x: torch.Tensor, y: torch.Tensor, style_ids: Sequence[int] | None = None):
        """(total, {"content", "style", "tv"}) for photos x in [0, 1] and outputs y in [0, 255]."""
        ids = list(style_ids) if style_ids is not None else [0] * x.shape[0]
        y01 = y / 255
        with torch.no_grad():
            content_feats = self.net(x, self.content_layers)
        feats = self.net(y01, self.layers)
        zero = torch.zeros((), device=x.device)
        c = sum((content_loss(feats[k].float(), content_feats[k].float(), self.loss)
                 for k in self.content_layers), zero)
        s = sum((style_loss(feats[k], self._target(ids, k), self.loss, weight=self.layer_weights[k],
                                   impl=self.impl) for k in self.style_layers), zero)
        t = tv_loss(y01.float()) if self.tv_weight else zero
        total = self.content_weight * c + self.style_weight * s + self.tv_weight * t
        return total, {"content": c, "style": s, "tv": t}
