"""How a character model is judged: cross-entropy on held-out text (bits per character), the unigram
entropy it must beat, and how repetitive its samples are."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genfast.nn import CharLSTM


def unigram_entropy_bits(ids: torch.Tensor, vocab_size: int) -> float:
    p = torch.bincount(ids, minlength=vocab_size).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log2()).sum())


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


def distinct_ngram_ratio(text: str, n: int = 4) -> float:
    grams = [text[i:i + n] for i in range(len(text) - n + 1)]
    return len(set(grams)) / max(len(grams), 1)
