"""Reference character-LSTM sampling: the whole generation loop written plainly in PyTorch.

Model: token -> embedding -> L stacked LSTM layers (torch.nn.LSTM's equations and gate order i, f, g, o)
-> linear projection to the vocabulary. The prime (B, P) is consumed first; the distribution after its
last token gives the first generated token, which is fed back, and so on.

Drawing a token from probabilities p (one row), given a uniform u in [0, 1):
  1. temperature: p = softmax(logits / T), max subtracted first; T = 0 means argmax (first maximum).
  2. top-k (k > 0): keep the k most probable tokens (ties: the lower index first).
  3. top-p (p < 1): among what is kept, in order of decreasing probability (ties: lower index first),
     keep the shortest prefix whose probability (renormalised over the kept tokens) reaches top_p.
  4. inverse CDF: over the kept tokens in vocabulary order, the first index whose cumulative
     probability exceeds u times the kept total.
With the same uniforms the native op (csrc/lstm_sample/) draws the same tokens: in float64 exactly
(tested), in float32 up to GEMM rounding that can move a boundary by ~1e-7.
"""

from __future__ import annotations

import torch

from genfast.checks import acc_dtype


def lstm_step(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_ih, w_hh, b_ih, b_hh):
    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def filtered_probs(logits: torch.Tensor, temperature: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Unnormalised kept probabilities (B, V) for T > 0 rows; rows with T = 0 are handled by argmax."""
    acc = acc_dtype(logits.dtype)
    t = temperature.to(acc).clamp_min(torch.finfo(acc).tiny)[:, None]
    z = logits.to(acc) / t
    p = torch.exp(z - z.max(dim=1, keepdim=True).values)
    v = p.shape[1]
    # order by decreasing probability, ties by lower index: a stable sort of -p
    order = torch.sort(-p, dim=1, stable=True).indices
    ranked = torch.gather(p, 1, order)
    keep_ranked = torch.ones_like(ranked, dtype=torch.bool)
    if 0 < top_k < v:
        keep_ranked[:, top_k:] = False
    if top_p < 1.0:
        kept = ranked * keep_ranked
        cum = torch.cumsum(kept, dim=1)
        before = cum - kept                                  # mass strictly before each rank
        total = cum[:, -1:]
        keep_ranked &= before < top_p * total                # the prefix up to the one that reaches top_p
    keep = torch.zeros_like(keep_ranked).scatter(1, order, keep_ranked)
    return p * keep


def draw(logits: torch.Tensor, temperature: torch.Tensor, uniforms: torch.Tensor, top_k: int, top_p: float):
    p = filtered_probs(logits, temperature, top_k, top_p)
    cdf = torch.cumsum(p, dim=1)
    threshold = uniforms.to(cdf.dtype)[:, None] * cdf[:, -1:]
    token = (cdf <= threshold).sum(dim=1).clamp_max(p.shape[1] - 1)
    # a kept token has p > 0; the clamp and this guard only matter when u * total rounds to total
    token = torch.where(p.gather(1, token[:, None])[:, 0] > 0, token, p.argmax(dim=1))
    greedy = logits.argmax(dim=1)
    return torch.where(temperature == 0, greedy, token)


def lstm_sample(embedding: torch.Tensor, layers: list, proj_weight: torch.Tensor, proj_bias: torch.Tensor,
                prime: torch.Tensor, steps: int, temperature: torch.Tensor, uniforms: torch.Tensor,
                top_k: int = 0, top_p: float = 1.0, h0: torch.Tensor | None = None, c0: torch.Tensor | None = None):
    """Generate `steps` tokens per row. `layers` is [(w_ih, w_hh, b_ih, b_hh)] per LSTM layer.

    uniforms: (steps, B), time-major, so that two calls of n steps draw what one call of 2n draws.
    Returns tokens (B, steps), h (L, B, H), c (L, B, H): the state that produced the last token's
    distribution; continue with prime = the last token.
    """
    b = prime.shape[0]
    hidden = layers[0][1].shape[1]
    dtype = embedding.dtype
    h = [torch.zeros(b, hidden, dtype=dtype, device=prime.device) if h0 is None else h0[i] for i in range(len(layers))]
    c = [torch.zeros(b, hidden, dtype=dtype, device=prime.device) if c0 is None else c0[i] for i in range(len(layers))]

    def step(token):
        x = embedding[token]
        for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
            h[i], c[i] = lstm_step(x, h[i], c[i], w_ih, w_hh, b_ih, b_hh)
            x = h[i]
        return x @ proj_weight.T + proj_bias

    tokens = torch.empty(b, steps, dtype=torch.long, device=prime.device)
    for t in range(prime.shape[1]):
        logits = step(prime[:, t])
    for t in range(steps):
        tokens[:, t] = draw(logits, temperature, uniforms[t], top_k, top_p)
        if t + 1 < steps:
            logits = step(tokens[:, t])
    return tokens, torch.stack(h), torch.stack(c)
