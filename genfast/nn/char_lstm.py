"""Character-level LSTM language model whose sampling loop runs in one native call."""

from __future__ import annotations

import torch
from torch import nn

from genfast.checks import ArgumentError, is_int


class CharLSTM(nn.Module):
    """embedding -> torch.nn.LSTM (batch_first) -> linear projection to the vocabulary.

    The LSTM is a plain `torch.nn.LSTM` held as `self.lstm`, so its parameters keep nn.LSTM's names
    (`lstm.weight_ih_l0`, ...) and a trained nn.LSTM state dict loads into it unchanged.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 64, hidden_size: int = 256, num_layers: int = 2,
                 dropout: float = 0.0):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embedding_dim", embedding_dim),
                            ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not is_int(value) or value < 1:
                raise ArgumentError(name, f"{name} must be a positive integer, got {value!r}", where="CharLSTM")
        self.vocab_size, self.embedding_dim = vocab_size, embedding_dim
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.proj = nn.Linear(hidden_size, vocab_size)

    def config(self) -> dict:
        return {"vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "dropout": self.lstm.dropout}

    def forward(self, tokens: torch.Tensor, state=None):
        """tokens (B, T) -> logits (B, T, V), (h, c) each (L, B, H). Teacher forcing for training."""
        self._check_tokens(tokens, "tokens")
        out, state = self.lstm(self.embedding(tokens), state)
        return self.proj(out), state

    def _check_tokens(self, tokens, name):
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tokens.dim() != 2:
            got = f"{tokens.dtype} {tuple(tokens.shape)}" if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"CharLSTM: {name} must be a LongTensor (B, T), got {got}")
        if tokens.numel():
            lo, hi = (int(t) for t in torch.aminmax(tokens))
            if lo < 0 or hi >= self.vocab_size:
                raise ValueError(f"CharLSTM: {name} holds ids outside [0, {self.vocab_size}): min {lo}, max {hi}")

    def layer_weights(self) -> list:
        """[(w_ih, w_hh, b_ih, b_hh)] per layer, nn.LSTM's tensors (zeros where it has no bias)."""
        out = []
        for i in range(self.num_layers):
            w_ih, w_hh = getattr(self.lstm, f"weight_ih_l{i}"), getattr(self.lstm, f"weight_hh_l{i}")
            b_ih = getattr(self.lstm, f"bias_ih_l{i}", None)
            b_hh = getattr(self.lstm, f"bias_hh_l{i}", None)
            if b_ih is None or b_hh is None:
                zero = torch.zeros(w_ih.shape[0], dtype=w_ih.dtype, device=w_ih.device)
                b_ih, b_hh = zero if b_ih is None else b_ih, zero if b_hh is None else b_hh
            out.append((w_ih, w_hh, b_ih, b_hh))
        return out

    @torch.no_grad()
    def sample(self, prime: torch.Tensor, steps: int, *, temperature=1.0, top_k: int | None = None,
               top_p: float | None = None, greedy: bool = False, generator: torch.Generator | None = None,
               state=None, uniforms: torch.Tensor | None = None, impl: str = "auto"):
        """Generate `steps` tokens after each row of `prime` (B, P). Returns (tokens (B, steps), state).

        The returned state has consumed the prime and every generated token but the last: continue
        with `sample(tokens[:, -1:], n, state=state)`. Randomness: `uniforms` (steps, B) if given, else
        drawn from `generator` (default: torch's), time-major, so split calls draw what one call draws.
        """
        from genfast import ops

        self._check_tokens(prime, "prime")
        return ops.lstm_sample(self.embedding.weight, self.layer_weights(), self.proj.weight, self.proj.bias,
                               prime, steps, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                               generator=generator, state=state, uniforms=uniforms, impl=impl)
