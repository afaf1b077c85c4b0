"""Final weights: safetensors, with what is needed to rebuild the model in the header.

    weights.save(path, model.state_dict(), kind="text", config={"vocab_size": 65, ...})
    state, meta = weights.load(path, kind="text")      # meta["config"] is the dict given to save

safetensors holds tensors and a string header only: reading a file can never run code.
"""

from __future__ import annotations

import json
from pathlib import Path

from genfast import io
from genfast.training.checkpoint import CheckpointError, plain


def save(path, state: dict, *, kind: str, config: dict | None = None, **metadata) -> Path:
    """Write `state` (name -> tensor) to `path` with {"genfast_kind": kind, "config": JSON} in the header."""
    header = {"genfast_kind": kind, "config": json.dumps(plain(config or {}))}
    header.update({k: v if isinstance(v, str) else json.dumps(plain(v)) for k, v in metadata.items()})
    return io.atomic_save_safetensors(state, path, header)


def load(path, *, kind: str, name: str = "model") -> tuple[dict, dict]:
    """(state, metadata) of weights written by `save` for `kind`; metadata["config"] is decoded."""
    state, header = io.load_safetensors(path, name=name)
    if header.get("genfast_kind") != kind:
        found = header.get("genfast_kind")
        what = f"genfast {found} weights" if found else "weights without a genfast header"
        raise CheckpointError(name, f"{str(path)!r} holds {what}, not genfast {kind} weights")
    meta = dict(header)
    try:
        meta["config"] = json.loads(header.get("config", "{}"))
    except json.JSONDecodeError:
        raise CheckpointError(name, f"{str(path)!r} has a damaged genfast header (config is not JSON)") from None
    return state, meta
