"""Character-LSTM sampling benchmark: the usual Python loop vs genfast's one native call.

Model: embedding 64, 2-layer LSTM (hidden 256 or 512), vocabulary 60; prime of 8 characters, 400
generated tokens per row, batch 1, 32 and 256. Shapes are (B, H).

"reference" is the loop every popular char-RNN script writes: per token `nn.LSTM` on one step,
`softmax(logits / T)`, `torch.multinomial`, feed back. It is timed with oneDNN (mkldnn) on and off
and the faster of the two is kept (which one is printed). "native" is `CharLSTM.sample(impl="native")`.
Both at temperature 1. Times are per call (400 tokens for each of the B rows): the median over rounds
of one reference call and one native call, each right after an untimed call of its own (warm, as in a
back-to-back series), so that both are timed under the same machine state (this VM's speed drifts over
seconds to minutes, and a whole series of one then of the other could land in different states).
"""

from __future__ import annotations

import torch

from genfast.bench.core import Case, time_interleaved
from genfast.nn import CharLSTM

PRIMARY_OP = "lstm_sample"
DEFAULT_SHAPES = [(1, 256), (32, 256), (256, 256), (1, 512), (32, 512), (256, 512)]
QUICK_SHAPES = [(1, 64), (8, 64)]
SHAPE_SIZES = (2,)  # --shape B,H
STEPS = 400
VOCAB = 60
_CHOSEN: dict = {}


@torch.no_grad()
def python_loop(model: CharLSTM, prime: torch.Tensor, steps: int, temperature: float = 1.0):
    out, state = model.lstm(model.embedding(prime))
    logits = model.proj(out[:, -1])
    tokens = []
    for _ in range(steps):
        probs = torch.softmax(logits / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1)
        tokens.append(nxt)
        out, state = model.lstm(model.embedding(nxt), state)
        logits = model.proj(out[:, -1])
    return torch.cat(tokens, 1)


def _with_mkldnn(fn, enabled: bool):
    def run():
        with torch.backends.mkldnn.flags(enabled=enabled):
            return fn()
    return run


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    shapes = shapes or DEFAULT_SHAPES
    out = []
    for b, hidden in shapes:
        torch.manual_seed(0)
        model = CharLSTM(VOCAB, 64, hidden, 2).to(device).eval()
        prime = torch.randint(0, VOCAB, (b, 8), device=device)
        loop = lambda model=model, prime=prime: python_loop(model, prime, STEPS)  # noqa: E731
        on, off = _with_mkldnn(loop, True), _with_mkldnn(loop, False)
        # the faster of oneDNN on and off is the reference (a quick pre-timing decides)
        pre = time_interleaved({"on": on, "off": off}, device, warmup=1, repeat=2)
        t_on, t_off = pre["on"], pre["off"]
        _CHOSEN[(b, hidden)] = "on" if t_on <= t_off else "off"
        fns = {"reference": on if t_on <= t_off else off,
               "native": lambda model=model, prime=prime: model.sample(prime, STEPS, impl="native")}
        out.append(Case(PRIMARY_OP, (b, hidden), f"{STEPS} tokens", fns, interleave=True))
    return out


def report(device: torch.device, shapes, results=None) -> list[str]:
    lines = []
    for r in results or []:
        b, hidden = r.shape
        which = f" (oneDNN {_CHOSEN.get((b, hidden), '?')})" if r.impl == "reference" else ""
        lines.append(f"tokens/s B={b:<4} hidden={hidden:<4} {r.impl:<10} {b * STEPS / (r.ms / 1e3):>10.0f}{which}")
    return lines
