"""How a stylized video is judged: flicker, the mean change between consecutive frames."""

from __future__ import annotations

import numpy as np
import torch


def flicker(frames) -> float:
    """Mean absolute difference between consecutive frames, in the frames' own units (0-255 for
    uint8), averaged over pixels, channels and the T-1 pairs: the flicker measure of issue 7.

    `frames`: an array/tensor (T, ...) or an iterable of equally-shaped frames (uint8 or float);
    iterables are consumed one frame at a time, so a whole clip never has to be in memory.
    Fewer than two frames give 0.0.
    """
    total, pairs, prev = 0.0, 0, None
    for f in frames:
        f = torch.as_tensor(np.asarray(f) if not isinstance(f, torch.Tensor) else f).to(torch.float64)
        if prev is not None:
            if f.shape != prev.shape:
                raise ValueError(f"flicker: frames must all have the same shape, got {tuple(prev.shape)} "
                                 f"then {tuple(f.shape)}")
            total += (f - prev).abs().mean().item()
            pairs += 1
        prev = f
    return total / pairs if pairs else 0.0


class RunningFlicker:
    """flicker() over a stream of batches: frames (N, ...) fed in order, one batch at a time."""

    def __init__(self):
        self.prev, self.total, self.pairs = None, 0.0, 0

    def update(self, frames: torch.Tensor) -> None:
        for f in frames:
            if self.prev is not None and self.prev.shape == f.shape:
                self.total += (f - self.prev).abs().mean().item()
                self.pairs += 1
            self.prev = f

    def value(self) -> float | None:
        return self.total / self.pairs if self.pairs else None
