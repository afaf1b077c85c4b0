"""Flow-free temporal smoothing of stylized video frames for a static camera."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genfast.checks import check_number


def static_mask(prev: torch.Tensor, cur: torch.Tensor, threshold: float = 20.0, radius: int = 4) -> torch.Tensor:
    """Per-pixel weight in [0, 1]: 1 where the input did not change between `prev` and `cur`
    ((3, H, W), 0-255), falling linearly to 0 where it changed by `threshold` or more.

    The change is the channel mean of |cur - prev|, box-blurred 3x3 (so sensor and compression noise
    of a static camera does not count as motion), then dilated by a (2 radius + 1)^2 max filter: a
    stylizer's output pixel depends on a neighbourhood of input pixels, so the output next to a moving
    edge changes too and must not be held either.
    """
    d = (cur - prev).abs().mean(0, keepdim=True)[None]
    d = F.avg_pool2d(d, 3, stride=1, padding=1, count_include_pad=False)
    if radius > 0:
        d = F.max_pool2d(d, 2 * radius + 1, stride=1, padding=radius)
    return (1.0 - d[0, 0] / threshold).clamp_(0.0, 1.0)


class TemporalSmoother:
    """Flow-free temporal consistency for a static camera.

    Feed-forward stylizers see each frame alone, so tiny input changes (sensor noise, compression)
    move the stylized strokes and the output flickers. Ruder et al. (2016, "Artistic style transfer
    for videos") fix this with a temporal loss: each output frame should equal the previous output
    warped by the optical flow, except where the flow is unreliable (occlusions, motion boundaries).
    Here the camera is assumed static, so the flow is zero and no warp is needed; the "reliable"
    mask becomes "the input pixel did not change" (`static_mask`), and the loss is replaced by its
    cheapest minimiser, a blend with the previous *output*:

        out_t = raw_t + smoothing * mask_t * (out_{t-1} - raw_t)

    Static regions become an exponential moving average of the stylized frames (flicker falls by
    about (1 - smoothing) / sqrt(1 - smoothing^2) for independent noise); where the input changed the
    mask is 0 and the output is the fresh stylized frame exactly, so moving content does not ghost.
    A moving camera makes every pixel "changed": the smoother then does nothing, it never smears.

    What it cannot remove: slow drift. Instance norm is computed over the whole frame, so people
    walking through a static scene shift every channel's statistics and with them the stylized
    background a little each frame; an average damps fast jitter but passes a steady drift through
    (measured on the static-camera test clip: benchmarks/RESULTS.md, "genfast video, end to end").
    """

    def __init__(self, smoothing: float = 0.0, *, threshold: float = 20.0, radius: int = 4):
        self.smoothing = check_number(smoothing, "smoothing", below=1.0)
        self.threshold = check_number(threshold, "threshold", positive=True)
        self.radius = int(radius)
        self.reset()

    def reset(self) -> None:
        self.prev_in: torch.Tensor | None = None
        self.prev_out: torch.Tensor | None = None

    def __call__(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """inputs, outputs: (N, 3, H, W) consecutive frames (0-255); returns the smoothed outputs."""
        if self.smoothing == 0.0:
            return outputs
        result = torch.empty_like(outputs)
        for i in range(outputs.shape[0]):
            x, y = inputs[i], outputs[i]
            if self.prev_in is not None and self.prev_in.shape == x.shape:
                weight = static_mask(self.prev_in, x, self.threshold, self.radius).mul_(self.smoothing)
                y = y + weight * (self.prev_out - y)
            result[i] = y
            self.prev_in, self.prev_out = x, result[i]
        return result
