"""Mixed precision as every genfast training loop uses it: float16 autocast with a GradScaler on
CUDA (float16 gradients underflow without one), bfloat16 autocast and no scaler elsewhere (bfloat16
has float32's range).

    scaler = grad_scaler(device, amp)          # disabled: scale() and step() pass through unchanged
    with autocast(device, amp):
        loss = ...
    scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()
"""

from __future__ import annotations

import contextlib

import torch


def amp_dtype(device) -> torch.dtype:
    return torch.float16 if torch.device(device).type == "cuda" else torch.bfloat16


def autocast(device, enabled: bool = True):
    """torch.autocast in amp_dtype(device), or a context that does nothing when not enabled."""
    if not enabled:
        return contextlib.nullcontext()
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=amp_dtype(kind))


def grad_scaler(device, enabled: bool) -> torch.amp.GradScaler:
    """A GradScaler that is enabled only for float16 (CUDA) mixed precision."""
    kind = torch.device(device).type
    return torch.amp.GradScaler(kind, enabled=enabled and kind == "cuda")
