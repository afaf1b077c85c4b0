"""argparse types and option groups shared by every `genfast` command (one rule, one place).

Each type turns the text into the value or raises argparse.ArgumentTypeError, which argparse prints
as "argument --steps: expected an integer >= 1, got '0'" with exit code 2.
"""

from __future__ import annotations

import argparse
import math


def integer(low: int | None = None, high: int | None = None):
    """An argparse type: an integer in [low, high] (either bound may be None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                want = f"an integer in [{low}, {high}]"
            elif low is not None:
                want = "a positive integer" if low == 1 else f"an integer >= {low}"
            elif high is not None:
                want = f"an integer <= {high}"
            else:
                want = "an integer"
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return value
    parse.__name__ = "integer"
    return parse


def number(low: float | None = 0.0, *, positive: bool = False, high: float | None = None,
           below: float | None = None):
    """An argparse type: a finite number >= low (default 0), > 0 with positive, <= high, < below."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        bad = (not math.isfinite(value) or (positive and value <= 0) or (low is not None and value < low)
               or (high is not None and value > high) or (below is not None and value >= below))
        if bad:
            parts = []
            if positive:
                parts.append("> 0")
            elif low is not None:
                parts.append(f">= {low:g}")
            if high is not None:
                parts.append(f"<= {high:g}")
            if below is not None:
                parts.append(f"< {below:g}")
            raise argparse.ArgumentTypeError(f"expected a number {' and '.join(parts)}, got {text!r}".replace(
                "number >= 0, got", "non-negative number, got") if parts else f"expected a number, got {text!r}")
        return value
    parse.__name__ = "number"
    return parse


positive_int = integer(1)
non_negative_int = integer(0)
non_negative = number(0.0)
positive = number(positive=True)
unit_interval = number(0.0, high=1.0)
real = number(None)


def add_device(p) -> None:
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")


def add_quiet(p) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_image_limit(p) -> None:
    p.add_argument("--max-image-pixels", type=positive_int, metavar="N",
                   help="refuse images that declare more pixels than this before decoding them "
                        "(default: 89478485, PIL's limit against decompression bombs)")


def add_training(p, *, checkpoint_every: int = 500, every_step_at_least: int = 0, seed: bool = True,
                 log_every: int = 10, unit: str = "steps", device: bool = True) -> None:
    """The options every `genfast <workflow> train` has: checkpoint, resume, logging, seed, device
    (`unit` names what the loop counts, `device=False` for a CPU-only workflow)."""
    g = p.add_argument_group("training state and logs")
    g.add_argument("--checkpoint", metavar="PATH", help="training state (default: <out stem>.ckpt.pt beside --out)")
    g.add_argument("--checkpoint-every", type=integer(every_step_at_least), default=checkpoint_every, metavar="N",
                   help=f"{unit} between checkpoints (default {checkpoint_every}"
                        + ("; 0: only at the end and on Ctrl-C)" if every_step_at_least == 0 else ")"))
    g.add_argument("--no-resume", action="store_true", help="start afresh even when the checkpoint exists")
    g.add_argument("--log-every", type=positive_int, default=log_every, metavar="N",
                   help=f"{unit} between lines of the metrics log <out stem>.metrics.jsonl (default {log_every})")
    g.add_argument("--log-dir", metavar="DIR", help="also log to TensorBoard in DIR (needs tensorboard)")
    if seed:
        g.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    if device:
        add_device(g)
    add_quiet(g)
