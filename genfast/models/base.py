"""The shape every genfast feature network shares.

A feature network is a chain of named stages. `net(x, layers=[...])` takes RGB images in [0, 1],
applies the network's own input normalisation, runs the chain only as far as the last requested layer
and returns {layer name: feature map}. Style transfer asks for a handful of layers and never needs the
rest of the network, so truncation is where most of the saving is.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


class FeatureNet(nn.Module):
    """Base class: subclasses fill `self.stages` (an nn.ModuleDict in network order) and the defaults."""

    #: layers whose features the content loss compares, by default
    content_layers: list[str] = []
    #: layers whose Gram matrices the style loss compares, by default
    style_layers: list[str] = []
    #: per-layer style weights used when the caller gives none (missing layers weigh 1)
    style_layer_weights: dict[str, float] = {}
    #: short description of where the weights came from ("imagenet: <file>", "random")
    weights_source: str = "random"
    #: the smallest image side for which the deepest default layer (stride 16 in VGG and
    #: EfficientNet-Lite0) still has a pixel of its own: smaller images are refused
    min_size: int = 16

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.ones(1, 3, 1, 1), persistent=False)
        self.input_scale = 1.0   # multiply [0, 1] input by this (255 for Caffe models)
        self.bgr = False         # reverse the channel order (Caffe models)

    # -- names ---------------------------------------------------------------------------------
    @property
    def layer_names(self) -> list[str]:
        """Every layer that can be asked for, in network order."""
        return list(self._stage_names())

    def _stage_names(self) -> Iterable[str]:
        raise NotImplementedError

    def check_layers(self, layers, argument: str = "layers") -> list[str]:
        if isinstance(layers, str):
            layers = [layers]
        layers = list(layers)
        known = self.layer_names
        for name in layers:
            if name not in known:
                close = [k for k in known if k.split("_")[0] == str(name).split("_")[0]][:6]
                hint = (f" (did you mean {', '.join(close)}?)" if close else "") + f"; known layers: {', '.join(known)}"
                raise ValueError(f"{argument}: unknown layer {name!r} for {type(self).__name__}{hint}")
        return layers

    # -- forward -------------------------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            x = x.flip(1)
        if self.input_scale != 1.0:
            x = x * self.input_scale
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{type(self).__name__}: expected x of shape (N, 3, H, W) with RGB in [0, 1], "
                             f"got {tuple(x.shape)}")
        wanted = self.check_layers(self.content_layers + self.style_layers if layers is None else layers)
        return self._run(self.normalize(x), set(wanted))

    def _run(self, x: torch.Tensor, wanted: set[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError
