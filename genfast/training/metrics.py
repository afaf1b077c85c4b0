"""Metrics of a training run, every N steps, to a JSON-lines file beside its output and, with a
log folder, to TensorBoard, so that runs can be followed and compared.

    log = MetricsLog(out.with_suffix(".metrics.jsonl"), log_dir=args.log_dir, start_step=start)
    log.log(step, loss=..., lr=...)      # one line: {"step": 120, "time": ..., "loss": ..., "lr": ...}
    log.close()

On a resume from step S the file keeps its lines up to S and continues from there, so it reads as
one run. Only the writing rank logs (`enabled`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from genfast import io
from genfast.checks import is_number


def default_path(out) -> Path:
    """`<stem>.metrics.jsonl` beside the run's output."""
    out = Path(out)
    return out.with_name(out.stem + ".metrics.jsonl")


def read(path) -> list[dict]:
    """The records of a metrics file (for plots and tests)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class MetricsLog:
    def __init__(self, path, *, log_dir=None, start_step: int = 0, enabled: bool = True):
        self.path = Path(path) if path is not None else None
        self.enabled = enabled
        self._file = None
        self._writer = None
        if not enabled:
            return
        if self.path is not None:
            kept = []
            if start_step > 0 and self.path.is_file():
                kept = [line for line in self.path.read_text().splitlines()
                        if line.strip() and json.loads(line).get("step", 0) <= start_step]
            io.atomic_write_text(self.path, "".join(line + "\n" for line in kept))
            self._file = open(self.path, "a", encoding="utf-8")
        if log_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ImportError("log_dir: TensorBoard logging needs the tensorboard package "
                                  "(pip install tensorboard)") from None
            self._writer = SummaryWriter(log_dir=str(log_dir), purge_step=start_step + 1 if start_step else None)

    def log(self, step: int, **values) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), "time": round(time.time(), 3)}
        for k, v in values.items():
            v = float(v) if hasattr(v, "__float__") and not isinstance(v, int) else v   # tensors, numpy
            record[k] = v if not (isinstance(v, float) and not math.isfinite(v)) else str(v)
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        if self._writer is not None:
            for k, v in values.items():
                if is_number(v):
                    self._writer.add_scalar(k, float(v), int(step))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
