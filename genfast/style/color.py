"""Colour preservation for style transfer (Gatys et al. 2017, "Controlling Perceptual Factors").

"luminance": transfer style onto the luminance only; the result takes its Y channel from the stylized
image and its chroma (I, Q of YIQ) from the content.
"histogram": before transfer, recolour the style image so its colour mean and covariance equal the
content's (x' = A (x - mu_s) + mu_c with A = Sigma_c^(1/2) Sigma_s^(-1/2)), so the style brings texture
but the content's palette.
"""

from __future__ import annotations

import torch

MODES = ("none", "luminance", "histogram")

_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.595716, -0.274453, -0.321263],
                            [0.211456, -0.522591, 0.311135]], dtype=torch.float64)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"preserve_color: expected one of {', '.join(MODES)}, got {mode!r}")
    return mode


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    m = _RGB_TO_YIQ.to(image.device, image.dtype)
    return torch.einsum("ij,njhw->nihw", m, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    m = torch.linalg.inv(_RGB_TO_YIQ).to(image.device, image.dtype)
    return torch.einsum("ij,njhw->nihw", m, image)


def transfer_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Y from `stylized`, I and Q from `content` (resized to match when needed)."""
    if content.shape[-2:] != stylized.shape[-2:]:
        content = torch.nn.functional.interpolate(content, size=stylized.shape[-2:], mode="bicubic",
                                                  align_corners=False, antialias=True)
    s, c = rgb_to_yiq(stylized), rgb_to_yiq(content)
    return yiq_to_rgb(torch.cat([s[:, :1], c[:, 1:]], 1)).clamp(0.0, 1.0)


def _mean_cov(image: torch.Tensor):
    x = image.reshape(3, -1).double()
    mu = x.mean(1, keepdim=True)
    d = x - mu
    return mu, d @ d.T / max(x.shape[1] - 1, 1)


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(1e-10)
    return vecs @ torch.diag(vals.rsqrt() if inverse else vals.sqrt()) @ vecs.T


def match_color(source: torch.Tensor, target: torch.Tensor, *, clamp: bool = True) -> torch.Tensor:
    """Recolour `source` (1, 3, H, W) so its colour mean and covariance equal `target`'s."""
    if source.dim() != 4 or source.shape[:2] != (1, 3) or target.dim() != 4 or target.shape[:2] != (1, 3):
        raise ValueError(f"match_color: expected (1, 3, H, W) images, got {tuple(source.shape)} "
                         f"and {tuple(target.shape)}")
    mu_s, cov_s = _mean_cov(source)
    mu_t, cov_t = _mean_cov(target)
    a = _sqrtm(cov_t) @ _sqrtm(cov_s, inverse=True)
    x = source.reshape(3, -1).double()
    out = (a @ (x - mu_s) + mu_t).reshape(source.shape).to(source.dtype)
    return out.clamp(0.0, 1.0) if clamp else out
