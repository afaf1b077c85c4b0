"""What every genfast training function returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class TrainResult:
    model: torch.nn.Module               # the trained model (unwrapped from DDP), in eval mode
    output: Path | None                  # the final weights (None on ranks that do not write)
    checkpoint: Path | None              # the training state, for a resume
    steps: int                           # the step training ended at
    start_step: int = 0                  # the step it resumed from (0 for a fresh run)
    seconds: float = 0.0
    history: list = field(default_factory=list)   # per step (or per logged step) of this run: {"step", ...}
    metrics: Path | None = None          # the JSON-lines metrics file
    info: dict = field(default_factory=dict)      # what the workflow adds (network used, new styles, ...)
