"""Training a character-level LSTM (genfast.nn.CharLSTM) on a text, with teacher forcing.

    model, vocab, history = train(corpus, "shakespeare.safetensors", TrainConfig(epochs=2))

The corpus is split into training text and a held-out tail (`val_fraction`); the training text is
cut into overlapping windows of `window` characters every `step` characters, each window's target
the same characters shifted by one. Adam on the mean cross-entropy, gradient norm clipped to `clip`.
Every `checkpoint_every` steps the held-out loss is measured (bits per character) and the training
state is checkpointed.

What every genfast training run guarantees (genfast/training): the final model as safetensors (with
its vocabulary and sizes in the header; .pt/.pth for a weights-only torch file); a checkpoint
`<stem>.ckpt.pt` beside it, atomic, read back with weights_only=True, that continues bit-exactly
after a kill; a resume with other settings or another corpus refused with the differing settings
named; Ctrl-C checkpoints and exits cleanly; metrics to `<stem>.metrics.jsonl` (and TensorBoard);
data-parallel under torchrun (each rank its share of every epoch's windows).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from genfast import io
from genfast.checks import ArgumentError, check_int, check_number, check_optional_int
from genfast.nn import CharLSTM
from genfast.text.data import CharWindows, Vocabulary, corpus_digest
from genfast.text.metrics import evaluate
from genfast.text.sample import LEGACY_KEYS, save_model
from genfast.training import (Checkpoint, CheckpointError, MetricsLog, TrainResult, checkpoint, checkpoint_on_interrupt,
                              deferred_interrupt, distributed, metrics, postfix, progress_bar)
from genfast.training.sampler import ShardedStream

CHECKPOINT_VERSION = 1
OUT_SUFFIXES = (".safetensors", ".pt", ".pth")


@dataclass
class TrainConfig:
    window: int = 40
    step: int = 3
    epochs: int = 1
    max_steps: int | None = None      # stop after this many optimiser steps (overrides epochs)
    batch_size: int = 64
    lr: float = 2e-3
    embedding_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.0
    val_fraction: float = 0.05
    checkpoint_every: int = 200
    seed: int = 0
    clip: float = 5.0

    def check(self) -> "TrainConfig":
        check_int(self.window, "window", 1)
        check_int(self.step, "step", 1)
        check_int(self.epochs, "epochs", 1)
        check_optional_int(self.max_steps, "max_steps", 1)
        check_int(self.batch_size, "batch_size", 1)
        check_number(self.lr, "lr", positive=True)
        check_int(self.embedding_dim, "embedding_dim", 1)
        check_int(self.hidden_size, "hidden_size", 1)
        check_int(self.num_layers, "num_layers", 1)
        check_number(self.dropout, "dropout", below=1.0)
        check_number(self.val_fraction, "val_fraction", below=1.0)
        check_int(self.checkpoint_every, "checkpoint_every", 1)
        check_int(self.seed, "seed", 0)
        check_number(self.clip, "clip", positive=True)
        return self

    def run_settings(self) -> dict:
        """The settings a resumed run must share (how long to train and how often to checkpoint may change)."""
        return {k: v for k, v in asdict(self).items() if k not in ("epochs", "max_steps", "checkpoint_every")}


def checkpoint_path(out) -> Path:
    return checkpoint.default_path(out)


def train(text: str, out, config: TrainConfig | None = None, *, resume: bool = True, progress: bool = True,
          device=None, checkpoint=None, log_every: int = 10, log_dir=None, callback=None):
    """Train a CharLSTM on `text` and write it to `out` (.safetensors, or .pt/.pth); checkpoint to
    `checkpoint` (default `<stem>.ckpt.pt` beside `out`) every config.checkpoint_every steps, at the
    end and on Ctrl-C. With resume=True an existing checkpoint of the same settings and corpus is
    continued from its step. Returns (model, vocab, history); history has per-evaluation train/val
    loss and bits per character. `train_run` returns the full TrainResult."""
    result = train_run(text, out, config, resume=resume, progress=progress, device=device, checkpoint=checkpoint,
                       log_every=log_every, log_dir=log_dir, callback=callback)
    return result.model, result.info["vocab"], result.history


def train_run(text: str, out, config: TrainConfig | None = None, *, resume: bool = True, progress: bool = True,
              device=None, checkpoint=None, log_every: int = 10, log_dir=None, callback=None) -> TrainResult:
    t0 = time.perf_counter()
    config = (config or TrainConfig()).check()
    check_int(log_every, "log_every", 1)
    if not isinstance(text, str) or not text:
        raise ArgumentError("text", "expected a non-empty corpus string")
    out = Path(out)
    if out.suffix not in OUT_SUFFIXES:
        raise ArgumentError("out", f"expected a path ending in {', '.join(OUT_SUFFIXES)}, got {str(out)!r}")
    ckpt_path = Path(checkpoint) if checkpoint is not None else checkpoint_path(out)
    if io.same_file(ckpt_path, out):
        raise ArgumentError("checkpoint", f"{str(ckpt_path)!r} is also the output file; give them different paths")
    log_path = metrics.default_path(out)
    dist = distributed.setup(device)
    device, main = dist.device, dist.main

    if resume and not ckpt_path.exists() and _is_legacy_checkpoint(out):
        raise CheckpointError("out", f"{str(out)!r} is a text checkpoint of an older genfast (model and training state "
                              f"in one file); it still samples (genfast text sample), but training now keeps its "
                              f"state beside the model: pass --no-resume to train afresh into it, or choose "
                              f"another --out")
    vocab = Vocabulary.from_text(text)
    ids = vocab.encode(text)
    n_val = max(config.window + 1, int(ids.numel() * config.val_fraction))
    if ids.numel() - n_val < config.window + 1:
        raise ArgumentError("text", f"{ids.numel()} characters are too few for window {config.window} and a "
                                    f"validation split")
    train_ids, val_ids = ids[:-n_val], ids[-n_val:].to(device)
    data = CharWindows(train_ids, config.window, config.step)
    stream = ShardedStream(len(data), config.seed, dist.rank, dist.world)
    steps_per_epoch = math.ceil(stream.per_rank / config.batch_size)
    total = config.max_steps if config.max_steps is not None else config.epochs * steps_per_epoch

    torch.manual_seed(config.seed)
    model = CharLSTM(len(vocab), config.embedding_dim, config.hidden_size, config.num_layers,
                     config.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    run = {**config.run_settings(), "corpus": corpus_digest(text), "corpus_chars": len(text),
           "vocab": vocab.chars, "world_size": dist.world}
    ckpt = Checkpoint(ckpt_path, kind="text", config=run, version=CHECKPOINT_VERSION, enabled=main)
    step, history = 0, []
    state = ckpt.resume(models={"model": model}, optimizers={"optimizer": opt}) if resume else None
    running = None      # the smoothed training loss the bar and the history show
    if state:
        step, history = int(state["step"]), list(state["extra"]["history"])
        running = state["extra"]["running_loss"]
    start = step
    train_model = dist.wrap(model)

    def save_checkpoint(at: int):
        return ckpt.save(at, models={"model": model}, optimizers={"optimizer": opt}, history=history,
                         running_loss=running, vocab=vocab.to_dict(), model_config=model.config())

    model.train()
    bar = progress_bar(total, initial=min(step, total), desc="train", enabled=progress and main)
    log = MetricsLog(log_path, log_dir=log_dir, start_step=step, enabled=main)
    with bar, log, checkpoint_on_interrupt(lambda: (save_checkpoint(step), step)):   # Ctrl-C: checkpoint, then stop
        while step < total:
            batch = stream.batch(step, config.batch_size)
            x = torch.stack([data[j][0] for j in batch]).to(device)
            y = torch.stack([data[j][1] for j in batch]).to(device)
            logits, _ = train_model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            with deferred_interrupt():         # the update and the step count change together
                opt.step()
                step += 1
            value = loss.item()
            running = value if running is None else 0.98 * running + 0.02 * value
            bar.update(1)
            postfix(bar, {"loss": running, "bpc": running / math.log(2)})
            if step % log_every == 0 or step == total:
                log.log(step, loss=value, running_loss=running)
            if step % config.checkpoint_every == 0 or step == total:
                val = evaluate(model, val_ids, config.window)
                history.append({"step": step, "train_loss": running, "val_loss": val,
                                "val_bpc": val / math.log(2), "time": time.time()})
                log.log(step, val_loss=val, val_bpc=val / math.log(2))
                if step < total:
                    save_checkpoint(step)
            if callback is not None:
                callback(step, {"loss": value})

    save_checkpoint(step)
    if main:
        save_model(model, vocab, out, config=asdict(config))
    dist.close()
    return TrainResult(model=model.eval(), output=out if main else None, checkpoint=ckpt_path if main else None,
                       steps=step, start_step=start, seconds=time.perf_counter() - t0, history=history,
                       metrics=log_path if main else None, info={"vocab": vocab})


def _is_legacy_checkpoint(out: Path) -> bool:
    """Whether `out` is a text checkpoint written before genfast.training (read weights-only)."""
    if out.suffix == ".safetensors" or not out.is_file():
        return False
    try:
        state = io.load_tensors(out, name="out")
    except ValueError:
        return False
    return isinstance(state, dict) and LEGACY_KEYS <= set(state) and "format" not in state


__all__ = ["TrainConfig", "train", "train_run", "checkpoint_path"]
