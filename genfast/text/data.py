"""The text workflow's data: a character vocabulary, overlapping training windows, and corpora."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from genfast.checks import check_int

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
        check_int(window, "window", 1, where="CharWindows")
        check_int(step, "step", 1, where="CharWindows")
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


def corpus_digest(text: str) -> str:
    """A short fingerprint of a corpus (checkpoints name the corpus they were trained on by it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
