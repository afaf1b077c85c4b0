"""What a trained character model does: load it, generate text with temperature, top-k and top-p.

    model, vocab = load("shakespeare.safetensors")
    print(generate(model, vocab, "ROMEO:", length=400, temperature=0.5)[0])

A text model is a CharLSTM's weights with its vocabulary and sizes: a .safetensors file whose header
holds them (what `genfast text train` writes), a weights-only .pt/.pth of the same, a training
checkpoint (`<stem>.ckpt.pt`), or a checkpoint of older genfast (model and training state in one
.pt). All are read without running code: safetensors, or torch.load(weights_only=True).
"""

from __future__ import annotations

import json
from pathlib import Path

from genfast import io
from genfast.checks import ArgumentError, check_int
from genfast.nn import CharLSTM
from genfast.text.data import Vocabulary
from genfast.training import weights
from genfast.training.checkpoint import FORMAT as CHECKPOINT_FORMAT

KIND = "text"
#: what a text checkpoint of older genfast held (model and training state in one file)
LEGACY_KEYS = frozenset({"model", "optimizer", "vocab", "model_config", "step"})
WEIGHTS_FORMAT = "genfast-weights"


def save_model(model: CharLSTM, vocab: Vocabulary, path, *, config: dict | None = None) -> Path:
    """Write `model` and `vocab` to `path`: safetensors (sizes and vocabulary in the header), or a
    weights-only torch file for .pt/.pth. Atomic."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        return weights.save(path, state, kind=KIND, config=config, model=model.config(), vocab=vocab.to_dict())
    io.atomic_torch_save({"format": WEIGHTS_FORMAT, "kind": KIND, "model": state, "model_config": model.config(),
                          "vocab": vocab.to_dict(), "config": config or {}}, path)
    return path


def _parts(path: Path) -> tuple[dict, dict, dict]:
    """(state dict, model config, vocabulary dict) from any of the files a text model comes in."""
    if path.suffix == ".safetensors":
        state, meta = weights.load(path, kind=KIND)
        return state, json.loads(meta["model"]), json.loads(meta["vocab"])
    state = io.load_tensors(path, name="model")
    if not isinstance(state, dict):
        raise ValueError("no genfast header")
    if state.get("format") == CHECKPOINT_FORMAT:
        if state.get("kind") != KIND:
            raise ValueError(f"it is a genfast {state.get('kind')} checkpoint")
        extra = state["extra"]
        return state["model"]["model"], extra["model_config"], extra["vocab"]
    if state.get("format") == WEIGHTS_FORMAT or LEGACY_KEYS <= set(state):
        if state.get("kind", KIND) != KIND:
            raise ValueError(f"it holds genfast {state.get('kind')} weights")
        return state["model"], state["model_config"], state["vocab"]
    raise ValueError("no genfast header")


def load(path, device=None) -> tuple[CharLSTM, Vocabulary]:
    """(model in eval mode, vocab) from a file written by `genfast text train` (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model: no such file: {str(path)!r}")
    try:
        state, model_config, vocab = _parts(path)
        model = CharLSTM(**model_config)
        model.load_state_dict(state)
        vocab = Vocabulary.from_dict(vocab)
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        reason = e.reason if isinstance(e, io.UnreadableFileError) else str(e)
        raise ValueError(f"model: {str(path)!r} is not a genfast text checkpoint ({reason})") from None
    return model.to(device or "cpu").eval(), vocab


def generate(model, vocab: Vocabulary, prime: str, *, length: int = 400, temperature=1.0, num: int = 1,
             top_k=None, top_p=None, generator=None) -> list[str]:
    """`num` samples of `length` characters after `prime` (the prime is not repeated in the output)."""
    if not prime:
        raise ArgumentError("prime", "expected at least one character")
    check_int(length, "length", 1)
    check_int(num, "num", 1)
    ids = vocab.encode(prime)
    if ids.numel() == 0:
        raise ArgumentError("prime", f"none of the characters of {prime!r} is in the vocabulary")
    device = next(model.parameters()).device
    tokens, _ = model.sample(ids.expand(num, -1).contiguous().to(device), length, temperature=temperature,
                             top_k=top_k, top_p=top_p, generator=generator)
    return [vocab.decode(row) for row in tokens]


__all__ = ["load", "generate", "save_model"]
