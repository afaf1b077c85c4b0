"""Training checkpoints: all a run needs to continue bit-exactly, written atomically, read back
without running code.

A checkpoint file is `torch.save` of a dict that holds only tensors and plain Python values:

    {"format": "genfast-checkpoint", "kind": "gan", "version": 1,
     "config": {...},              # the run's settings, JSON types only; a resume must match them
     "step": 1200,
     "model": state_dict, "optimizer": state_dict,   # or several, named: {"G": ..., "D": ...}
     "scaler": state_dict | None, "rng": rng_state(), "extra": {...}}

and it is read back with `torch.load(weights_only=True)` (genfast.io.load_tensors): a pickle that
would construct any other object, the classic `__reduce__ -> os.system` among them, is refused
before anything runs, with an error saying the file is not a genfast checkpoint. RNG states are
stored as tensors (numpy's and Python's included) for the same reason.

    ckpt = Checkpoint(path, kind="text", config=config)
    state = ckpt.resume(models={"model": model}, optimizers={"optimizer": opt}) if resume else None
    ...
    ckpt.save(step, models={"model": model}, optimizers={"optimizer": opt})
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from genfast import io
from genfast.checks import ArgumentError, named

FORMAT = "genfast-checkpoint"


class CheckpointError(ArgumentError):
    """A file that is not a genfast checkpoint of the expected kind, or one that a different
    configuration wrote. The message names the argument and the file, and for a mismatch the
    differing settings."""


def plain(value):
    """`value` as JSON would give it back (tuples -> lists, Paths -> str): configs compare as saved."""
    return json.loads(json.dumps(value, default=str))


# ------------------------------------------------------------------------------------------- RNG

def rng_state() -> dict:
    """Every random number generator a training step may draw from (torch CPU and CUDA, numpy's
    global generator, Python's `random`), as tensors and ints, so that weights_only loading reads it."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
             "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                        "gauss_next": gauss_next}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` saved."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------- read, write

def read(path, *, kind: str, name: str = "checkpoint") -> dict:
    """A genfast checkpoint of `kind` from `path`, loaded with weights_only=True; anything else
    (code in the pickle, another kind, random bytes, a text file) is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise named(FileNotFoundError, name, f"no such file: {str(path)!r}")
    try:
        state = io.load_tensors(path, name=name)
    except io.UnreadableFileError as e:
        raise CheckpointError(name, f"{str(path)!r} is not a genfast {kind} checkpoint: {e.reason}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(name, f"{str(path)!r} is not a genfast {kind} checkpoint (no genfast header)")
    if state.get("kind") != kind:
        raise CheckpointError(name, f"{str(path)!r} is a genfast {state.get('kind')} checkpoint, "
                              f"not a {kind} checkpoint")
    return state


def write(path, state: dict) -> Path:
    """torch.save `state` to `path` atomically (a kill leaves the old checkpoint or the new one)."""
    io.atomic_torch_save(state, path)
    return Path(path)


def config_diff(saved: dict, current: dict) -> list[str]:
    """`key: saved -> current` for every setting that differs (keys missing on one side included)."""
    saved, current = plain(saved), plain(current)
    keys = list(current) + [k for k in saved if k not in current]
    return [f"{k}: {_short(saved.get(k))} -> {_short(current.get(k))}" for k in keys if saved.get(k) != current.get(k)]


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Checkpoint:
    """The checkpoint of one training run: its path, its kind, and the configuration it belongs to.

    `enabled=False` (ranks other than 0 under torchrun) makes `save` a no-op; every rank still
    resumes from the same file."""

    def __init__(self, path, *, kind: str, config: dict, version: int = 1, enabled: bool = True,
                 option: str = "--no-resume"):
        self.path, self.kind, self.version, self.enabled = Path(path), kind, version, enabled
        self.config = plain(config)
        self.option = option

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> dict:
        """The saved state, after checking that it is this kind, this version and this configuration."""
        state = read(self.path, kind=self.kind)
        if state.get("version") != self.version:
            raise CheckpointError("checkpoint", f"{str(self.path)!r} is version {state.get('version')} of the "
                                  f"{self.kind} checkpoint, this genfast reads version {self.version}; pass "
                                  f"{self.option} to start afresh (or another checkpoint path)")
        changed = config_diff(state.get("config", {}), self.config)
        if changed:
            more = f" and {len(changed) - 6} more" if len(changed) > 6 else ""
            raise CheckpointError("checkpoint", f"{str(self.path)!r} was written by a different configuration "
                                  f"({'; '.join(changed[:6])}{more}); pass {self.option} to start afresh, or "
                                  f"choose another checkpoint path")
        return state

    def resume(self, *, models: dict, optimizers: dict | None = None, scaler=None) -> dict | None:
        """Restore models, optimizers, scaler and every RNG from the checkpoint when it exists;
        returns the state (its "step", "extra", ...) or None for a fresh run."""
        if not self.exists():
            return None
        state = self.load()
        for key, model in models.items():
            _load_into(model, state["model"][key], f"model {key!r}", self.path)
        for key, opt in (optimizers or {}).items():
            opt.load_state_dict(state["optimizer"][key])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        return state

    def save(self, step: int, *, models: dict, optimizers: dict | None = None, scaler=None, **extra) -> Path | None:
        """Write the state after `step` completed steps (rank 0 only); returns the path written."""
        if not self.enabled:
            return None
        state = {"format": FORMAT, "kind": self.kind, "version": self.version, "config": self.config,
                 "step": int(step),
                 "model": {k: _unwrap(m).state_dict() for k, m in models.items()},
                 "optimizer": {k: o.state_dict() for k, o in (optimizers or {}).items()},
                 "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
                 "rng": rng_state(), "extra": extra}
        return write(self.path, state)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


def _load_into(model: torch.nn.Module, state: dict, what: str, path: Path) -> None:
    try:
        _unwrap(model).load_state_dict(state)
    except RuntimeError as e:   # shapes differ although the config matched: a hand-edited file
        raise CheckpointError("checkpoint", f"{str(path)!r}: {what} does not fit ({str(e).splitlines()[0]})") from None


def default_path(out) -> Path:
    """Where a run writing `out` keeps its checkpoint: `<stem>.ckpt.pt` beside it."""
    out = Path(out)
    return out.with_name(out.stem + ".ckpt.pt")
