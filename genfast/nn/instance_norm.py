"""Instance-norm modules: InstanceNorm2d (a drop-in for torch.nn.InstanceNorm2d with a fused
activation) and ConditionalInstanceNorm2d (one learned scale/shift row per style)."""

from __future__ import annotations

import torch

from genfast import ops
from genfast.ops.instance_norm import ACTIVATIONS


class InstanceNorm2d(torch.nn.Module):
    """torch.nn.InstanceNorm2d(num_features, eps, affine) followed by an activation, in one op.

    Its state_dict has the same keys as torch.nn.InstanceNorm2d(affine=True) ("weight", "bias"),
    so checkpoints load either way. The stale "running_mean"/"running_var" (and
    "num_batches_tracked") keys of checkpoints from before torch 0.4 are accepted and ignored:
    instance norm here always normalises with the statistics of the input, as
    torch.nn.InstanceNorm2d does without track_running_stats.
    """

    _STALE_KEYS = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True, activation: str = "none",
                 negative_slope: float = 0.01, impl: str = "auto"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"InstanceNorm2d: expected activation to be one of "
                             f"{ACTIVATIONS}, got {activation!r}")
        self.num_features, self.eps, self.affine = int(num_features), float(eps), bool(affine)
        self.activation, self.negative_slope, self.impl = activation, float(negative_slope), impl
        if self.affine:
            self.weight = torch.nn.Parameter(torch.ones(self.num_features))
            self.bias = torch.nn.Parameter(torch.zeros(self.num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.instance_norm(x, self.weight, self.bias, eps=self.eps, activation=self.activation,
                                 negative_slope=self.negative_slope, impl=self.impl)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for key in self._STALE_KEYS:
            state_dict.pop(prefix + key, None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        s = f"{self.num_features}, eps={self.eps}, affine={self.affine}, activation={self.activation!r}"
        if self.activation == "leaky_relu":
            s += f", negative_slope={self.negative_slope}"
        return s


class ConditionalInstanceNorm2d(torch.nn.Module):
    """Conditional instance norm (Dumoulin et al.): `gamma` and `beta` are (num_styles, C) tables.

    forward(x, style): style is an int64 (N,) tensor of style indices or an (N, num_styles)
    float tensor of mixing weights (blends the styles' rows per sample).
    """

    def __init__(self, num_features: int, num_styles: int, activation: str = "none", eps: float = 1e-5,
                 negative_slope: float = 0.01, impl: str = "auto"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"ConditionalInstanceNorm2d: expected activation to be one of "
                             f"{ACTIVATIONS}, got {activation!r}")
        if num_styles < 1:
            raise ValueError(f"ConditionalInstanceNorm2d: expected num_styles >= 1, got {num_styles}")
        self.num_features, self.num_styles = int(num_features), int(num_styles)
        self.activation, self.eps, self.negative_slope, self.impl = activation, float(eps), float(negative_slope), impl
        self.gamma = torch.nn.Parameter(torch.ones(self.num_styles, self.num_features))
        self.beta = torch.nn.Parameter(torch.zeros(self.num_styles, self.num_features))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return ops.conditional_instance_norm(x, style, self.gamma, self.beta, eps=self.eps,
                                             activation=self.activation, negative_slope=self.negative_slope,
                                             impl=self.impl)

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_styles={self.num_styles}, activation={self.activation!r}, eps={self.eps}"
