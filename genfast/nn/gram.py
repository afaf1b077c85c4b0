"""Gram-matrix modules: GramMatrix, and StyleLoss holding its target Gram as a buffer."""

from __future__ import annotations

import torch

from genfast import ops
from genfast.checks import acc_dtype


class GramMatrix(torch.nn.Module):
    """(N, C, H, W) or (N, C, L) -> (N, C, C); see genfast.ops.gram_matrix."""

    def __init__(self, normalize: str = "chw", impl: str = "auto"):
        super().__init__()
        ops.gram._check_choice(normalize, ops.gram.NORMALIZE, "GramMatrix", "normalize")
        self.normalize = normalize
        self.impl = impl

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return ops.gram_matrix(features, normalize=self.normalize, impl=self.impl)

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}"


class StyleLoss(torch.nn.Module):
    """Style loss against a fixed target Gram matrix, kept as the buffer `target`.

    Build it from a target Gram (`StyleLoss(target_gram)`) or from a target feature map
    (`StyleLoss.from_features(style_features)`); calling it on features returns the scalar loss.
    """

    def __init__(self, target_gram: torch.Tensor, *, normalize: str = "chw", reduction: str = "mse",
                 weight: float = 1.0, impl: str = "auto"):
        super().__init__()
        if not isinstance(target_gram, torch.Tensor) or target_gram.dim() not in (2, 3) or \
                target_gram.shape[-1] != target_gram.shape[-2]:
            shape = tuple(target_gram.shape) if isinstance(target_gram, torch.Tensor) else type(target_gram).__name__
            raise ValueError(f"StyleLoss: expected target_gram of shape (C, C) or (N, C, C), got {shape}")
        ops.gram._check_choice(normalize, ops.gram.NORMALIZE, "StyleLoss", "normalize")
        ops.gram._check_choice(reduction, ops.gram.REDUCTION, "StyleLoss", "reduction")
        # kept 3-D, (1, C, C) or (N, C, C), so checkpoints have one shape whichever form came in
        t = target_gram.detach().clone()
        self.register_buffer("target", t.unsqueeze(0) if t.dim() == 2 else t)
        self.normalize, self.reduction, self.weight, self.impl = normalize, reduction, float(weight), impl

    @classmethod
    def from_features(cls, features: torch.Tensor, **kwargs) -> "StyleLoss":
        """Target = the Gram matrix of `features` (batch averaged to one (1, C, C) target)."""
        with torch.no_grad():
            g = ops.gram_matrix(features.detach(), normalize=kwargs.get("normalize", "chw"),
                                impl=kwargs.get("impl", "auto"))
        # the batch mean in the accumulation dtype: float64 features keep a float64 target
        return cls(g.to(acc_dtype(g.dtype)).mean(0, keepdim=True).to(g.dtype), **kwargs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return ops.style_loss(features, self.target, normalize=self.normalize, reduction=self.reduction,
                              weight=self.weight, impl=self.impl)

    def extra_repr(self) -> str:
        return (f"channels={self.target.shape[-1]}, normalize={self.normalize!r}, "
                f"reduction={self.reduction!r}, weight={self.weight}")
