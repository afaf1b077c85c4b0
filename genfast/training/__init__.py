"""What every genfast training loop is built from, written once (each workflow's train.py reads
top to bottom and uses these):

- `checkpoint`: Checkpoint(path, kind, config) — model, optimisers, grad scaler, every RNG and the
  step, written atomically, read back with weights_only=True; a resume continues bit-exactly and a
  different configuration is refused with the differing settings named.
- `interrupt`: Ctrl-C checkpoints the last completed step and raises TrainingInterrupted (exit 130).
- `distributed`: torchrun set-up (gloo on the CPU), rank-0-only writes.
- `metrics`: a JSON-lines log beside the output, TensorBoard with a log folder.
- `progress`: the progress bar.
- `amp`: mixed precision (autocast and the GradScaler, per device).
- `weights`: final weights as safetensors with their configuration in the header.
- `TrainResult`: what every train function returns.
Sample sheets are genfast.io.save_image_grid.
"""

from genfast.training import checkpoint, distributed, metrics, weights
from genfast.training.checkpoint import Checkpoint, CheckpointError
from genfast.training.interrupt import TrainingInterrupted, checkpoint_on_interrupt, deferred_interrupt
from genfast.training.metrics import MetricsLog
from genfast.training.progress import postfix, progress_bar
from genfast.training.result import TrainResult

__all__ = ["checkpoint", "distributed", "metrics", "weights", "Checkpoint", "CheckpointError", "TrainingInterrupted",
           "deferred_interrupt", "checkpoint_on_interrupt", "MetricsLog", "progress_bar", "postfix", "TrainResult"]
