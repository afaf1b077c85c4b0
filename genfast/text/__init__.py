"""Character-level text generation: vocabulary, windowed corpus, training and sampling.

    vocab = Vocabulary.from_text(text)
    model, history = train(text, "model.pt", epochs=2)       # checkpoints atomically, resumes
    print(generate("model.pt", "To be", temperature=0.5, length=200))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from genfast.io import atomic_torch_save
from genfast.nn import CharLSTM

UNKNOWN_POLICIES = ("error", "skip", "replace")


class Vocabulary:
    """Characters <-> ids. `unknown`: "error" (raise), "skip" (drop) or "replace" (with `replacement`,
    which must be in the vocabulary) for characters not seen when it was built."""

    def __init__(self, chars, *, unknown: str = "replace", replacement: str | None = None):
        chars = list(dict.fromkeys(chars))
        if not chars:
            raise ValueError("Vocabulary: expected at least one character")
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"Vocabulary: unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}
        self.unknown = unknown
        if replacement is None:
            replacement = " " if " " in self.index else chars[0]
        if replacement not in self.index:
            raise ValueError(f"Vocabulary: replacement {replacement!r} is not in the vocabulary")
        self.replacement = replacement

    @classmethod
    def from_text(cls, text: str, **kw) -> "Vocabulary":
        return cls(sorted(set(text)), **kw)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        ids = []
        for ch in text:
            i = self.index.get(ch)
            if i is None:
                if self.unknown == "error":
                    raise ValueError(f"Vocabulary: character {ch!r} is not in the vocabulary")
                if self.unknown == "skip":
                    continue
                i = self.index[self.replacement]
            ids.append(i)
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_dict(self) -> dict:
        return {"chars": self.chars, "unknown": self.unknown, "replacement": self.replacement}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        return cls(d["chars"], unknown=d["unknown"], replacement=d["replacement"])


class CharWindows(torch.utils.data.Dataset):
    """Overlapping windows of `window` characters every `step` characters; target = input shifted by one."""

    def __init__(self, ids: torch.Tensor, window: int = 40, step: int = 3):
        if window < 1 or step < 1:
            raise ValueError(f"CharWindows: window and step must be >= 1, got {window}, {step}")
        if ids.numel() < window + 1:
            raise ValueError(f"CharWindows: the text has {ids.numel()} characters, fewer than window + 1 = {window + 1}")
        self.ids, self.window, self.step = ids, window, step
        self.count = (ids.numel() - window - 1) // step + 1

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):
        s = i * self.step
        chunk = self.ids[s:s + self.window + 1]
        return chunk[:-1], chunk[1:]


def read_corpus(path) -> str:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus: no such file: {str(path)!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"corpus: {str(path)!r} is not UTF-8 text ({e})") from None
    if not text:
        raise ValueError(f"corpus: {str(path)!r} is empty")
    return text


def builtin_corpus() -> str:
    """CPython's own pydoc topics (~700 KB of English), always present: an offline corpus."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def unigram_entropy_bits(ids: torch.Tensor, vocab_size: int) -> float:
    p = torch.bincount(ids, minlength=vocab_size).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log2()).sum())


@dataclass
class TrainConfig:
    window: int = 40
    step: int = 3
    epochs: int = 1
    max_steps: int | None = None
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


def _checkpoint(model, opt, vocab, config, step, history):
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "vocab": vocab.to_dict(),
            "config": config.__dict__, "model_config": model.config(), "step": step, "history": history,
            "rng": torch.get_rng_state()}


@torch.no_grad()
def evaluate(model: CharLSTM, ids: torch.Tensor, window: int, batch: int = 64) -> float:
    """Mean cross-entropy (nats per character) on non-overlapping windows of `ids`."""
    model.eval()
    n = (ids.numel() - 1) // window
    if n == 0:
        return float("nan")
    x = ids[:n * window].view(n, window)
    y = ids[1:n * window + 1].view(n, window)
    total, count = 0.0, 0
    for i in range(0, n, batch):
        logits, _ = model(x[i:i + batch])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[i:i + batch].reshape(-1), reduction="sum").item()
        count += y[i:i + batch].numel()
    model.train()
    return total / count


def train(text: str, out, config: TrainConfig | None = None, *, resume: bool = True, progress: bool = True,
          device=None):
    """Train a CharLSTM on `text`; checkpoint to `out` (atomically) every config.checkpoint_every steps
    and at the end. With resume=True an existing checkpoint at `out` is continued from its step.
    Returns (model, vocab, history); history has per-evaluation train/val loss and bits per character."""
    from tqdm.auto import tqdm

    out = Path(out)
    device = torch.device(device or "cpu")
    state = None
    if resume and out.exists():
        state = torch.load(out, map_location="cpu", weights_only=False)
        if config is None:
            config = TrainConfig(**state["config"])
        vocab = Vocabulary.from_dict(state["vocab"])
    else:
        vocab = Vocabulary.from_text(text)
    config = config or TrainConfig()
    ids = vocab.encode(text)
    n_val = max(config.window + 1, int(ids.numel() * config.val_fraction))
    if ids.numel() - n_val < config.window + 1:
        raise ValueError(f"corpus: {ids.numel()} characters are too few for window {config.window} and a "
                         f"validation split")
    train_ids, val_ids = ids[:-n_val], ids[-n_val:]
    data = CharWindows(train_ids, config.window, config.step)
    torch.manual_seed(config.seed)
    model = CharLSTM(len(vocab), config.embedding_dim, config.hidden_size, config.num_layers, config.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    step, history = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, history = state["step"], state["history"]
        torch.set_rng_state(state["rng"])
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    total = config.max_steps if config.max_steps is not None else config.epochs * steps_per_epoch
    loader_gen = torch.Generator().manual_seed(config.seed)
    bar = tqdm(total=total, initial=step, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
    model.train()
    running = None
    try:
        while step < total:
            epoch = step // steps_per_epoch
            loader_gen.manual_seed(config.seed + epoch)     # the same order for an epoch after a resume
            order = torch.randperm(len(data), generator=loader_gen)
            skip = step - epoch * steps_per_epoch
            for i in range(skip * config.batch_size, len(data), config.batch_size):
                if step >= total:
                    break
                batch = [data[int(j)] for j in order[i:i + config.batch_size]]
                x = torch.stack([b[0] for b in batch]).to(device)
                y = torch.stack([b[1] for b in batch]).to(device)
                logits, _ = model(x)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                opt.step()
                step += 1
                running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
                bar.update(1)
                bar.set_postfix(loss=f"{running:.3f}", bpc=f"{running / math.log(2):.3f}", refresh=False)
                if step % config.checkpoint_every == 0 or step == total:
                    val = evaluate(model, val_ids.to(device), config.window)
                    history.append({"step": step, "train_loss": running, "val_loss": val,
                                    "val_bpc": val / math.log(2), "time": time.time()})
                    atomic_torch_save(_checkpoint(model, opt, vocab, config, step, history), out)
    finally:
        bar.close()
    return model, vocab, history


def load(path, device=None):
    """(model, vocab) from a checkpoint written by `train`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model: no such file: {str(path)!r}")
    try:
        state = torch.load(path, map_location=device or "cpu", weights_only=False)
        model = CharLSTM(**state["model_config"])
        model.load_state_dict(state["model"])
        vocab = Vocabulary.from_dict(state["vocab"])
    except (KeyError, RuntimeError, TypeError) as e:
        raise ValueError(f"model: {str(path)!r} is not a genfast text checkpoint ({e})") from None
    return model.eval(), vocab


def generate(model, vocab: Vocabulary, prime: str, *, length: int = 400, temperature=1.0, num: int = 1,
             top_k=None, top_p=None, generator=None) -> list[str]:
    """`num` samples of `length` characters after `prime` (the prime is not repeated in the output)."""
    if not prime:
        raise ValueError("prime: expected at least one character")
    ids = vocab.encode(prime)
    if ids.numel() == 0:
        raise ValueError(f"prime: none of the characters of {prime!r} is in the vocabulary")
    tokens, _ = model.sample(ids.expand(num, -1).contiguous(), length, temperature=temperature, top_k=top_k,
                             top_p=top_p, generator=generator)
    return [vocab.decode(row) for row in tokens]


def distinct_ngram_ratio(text: str, n: int = 4) -> float:
    grams = [text[i:i + n] for i in range(len(text) - n + 1)]
    return len(set(grams)) / max(len(grams), 1)


__all__ = ["Vocabulary", "CharWindows", "TrainConfig", "train", "load", "generate", "evaluate", "read_corpus",
           "builtin_corpus", "unigram_entropy_bits", "distinct_ngram_ratio"]
