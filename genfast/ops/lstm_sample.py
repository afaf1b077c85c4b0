"""Character-LSTM sampling with the whole loop in one native call (csrc/lstm_sample/).

The op is a pure function of its inputs: the randomness comes in as `uniforms` (steps, B), drawn here
from a torch.Generator (time-major, so sampling n then n more tokens draws what 2n tokens draw), which
also makes the native op and the reference (genfast/reference/lstm_sample.py) draw the same tokens.
"""

from __future__ import annotations

import math

import torch

from genfast import _native
from genfast.checks import ArgumentError, check_int, is_int, is_number
from genfast.reference import lstm_sample as ref

OP = "genfast.lstm_sample"


def _fail(name: str, expected: str, got) -> None:
    raise ArgumentError(name, f"expected {name} to be {expected}, got {got}", where=OP)


def lstm_sample(embedding: torch.Tensor, layers, proj_weight: torch.Tensor, proj_bias: torch.Tensor,
                prime: torch.Tensor, steps: int, *, temperature=1.0, top_k: int | None = None,
                top_p: float | None = None, greedy: bool = False, generator: torch.Generator | None = None,
                state=None, uniforms: torch.Tensor | None = None, impl: str = "auto"):
    """Sample `steps` tokens per row from a character LSTM after consuming `prime` (B, P).

    Args:
        embedding: (V, E). layers: [(w_ih (4H, In), w_hh (4H, H), b_ih (4H,), b_hh (4H,))] per layer,
            torch.nn.LSTM's layout. proj_weight (V, H), proj_bias (V,).
        temperature: a float >= 0 or a (B,) tensor; 0 (or greedy=True) takes the argmax.
        top_k: keep the k most probable tokens (None or 0: all). top_p: nucleus in (0, 1] (None: 1).
        state: (h0, c0), each (L, B, H), or None for zeros.
        uniforms: (steps, B) values in [0, 1); None draws them from `generator`.
    Returns:
        tokens (B, steps) int64, and (h, c): the state that produced the last token's distribution.
    """
    if not isinstance(prime, torch.Tensor) or prime.dtype != torch.long or prime.dim() != 2:
        _fail("prime", "a LongTensor (B, P)", f"{getattr(prime, 'dtype', type(prime).__name__)} "
                                               f"{tuple(getattr(prime, 'shape', ()))}")
    b, p = prime.shape
    if p < 1:
        _fail("prime", "at least one token per row (P >= 1)", f"shape {tuple(prime.shape)}")
    check_int(steps, "steps", 0, where=OP)
    if embedding.dim() != 2:
        _fail("embedding", "(V, E)", tuple(embedding.shape))
    v, e = embedding.shape
    if prime.numel():
        lo, hi = (int(t) for t in torch.aminmax(prime))
        if lo < 0 or hi >= v:
            _fail("prime", f"token ids in [0, {v})", f"min {lo}, max {hi}")
    layers = [tuple(layer) for layer in layers]
    if not layers:
        _fail("layers", "at least one LSTM layer", "none")
    hidden = layers[0][1].shape[1]
    dtype, device = embedding.dtype, embedding.device
    if dtype not in (torch.float32, torch.float64):
        _fail("embedding", "float32 or float64 (cast half-precision models with .float())", dtype)
    in_size = e
    for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
        for name, t, shape in ((f"layers[{i}].w_ih", w_ih, (4 * hidden, in_size)),
                               (f"layers[{i}].w_hh", w_hh, (4 * hidden, hidden)),
                               (f"layers[{i}].b_ih", b_ih, (4 * hidden,)), (f"layers[{i}].b_hh", b_hh, (4 * hidden,))):
            if tuple(t.shape) != shape:
                _fail(name, f"of shape {shape}", tuple(t.shape))
            if t.dtype != dtype or t.device != device:
                _fail(name, f"{dtype} on {device} like embedding", f"{t.dtype} on {t.device}")
        in_size = hidden
    if tuple(proj_weight.shape) != (v, hidden):
        _fail("proj_weight", f"of shape {(v, hidden)}", tuple(proj_weight.shape))
    if tuple(proj_bias.shape) != (v,):
        _fail("proj_bias", f"of shape {(v,)}", tuple(proj_bias.shape))
    if prime.device != device:
        _fail("prime", f"on {device} like the weights", prime.device)

    # temperature -> (B,) tensor
    if isinstance(temperature, torch.Tensor):
        temp = temperature.to(device=device, dtype=dtype).reshape(-1)
        if temp.numel() == 1:
            temp = temp.expand(b)
        if temp.shape != (b,):
            _fail("temperature", f"a float or a (B,) = ({b},) tensor", tuple(temperature.shape))
        if not bool((torch.isfinite(temp) & (temp >= 0)).all()):
            _fail("temperature", "finite and >= 0",
                  temp.tolist() if temp.numel() <= 8 else "a negative or non-finite value")
    else:
        if not is_number(temperature):
            _fail("temperature", "a float or a (B,) tensor", type(temperature).__name__)
        if not math.isfinite(temperature) or temperature < 0 or temperature > torch.finfo(dtype).max:
            _fail("temperature", f"finite and >= 0 (in {dtype})", temperature)
        temp = torch.full((b,), float(temperature), dtype=dtype, device=device)
    if greedy:
        temp = torch.zeros_like(temp)
    temp = temp.contiguous()

    if top_k is None:
        top_k = 0
    if not is_int(top_k) or top_k < 0:
        _fail("top_k", "None or an integer >= 0", repr(top_k))
    if top_p is None:
        top_p = 1.0
    if not is_number(top_p) or not (0.0 < top_p <= 1.0) or math.isnan(top_p):
        _fail("top_p", "in (0, 1]", repr(top_p))

    layers_n = len(layers)
    if state is None:
        h0 = torch.zeros(layers_n, b, hidden, dtype=dtype, device=device)
        c0 = torch.zeros_like(h0)
    else:
        h0, c0 = state
        for name, t in (("state[0] (h0)", h0), ("state[1] (c0)", c0)):
            if tuple(t.shape) != (layers_n, b, hidden):
                _fail(name, f"of shape {(layers_n, b, hidden)}", tuple(t.shape))
        h0, c0 = h0.to(dtype).contiguous(), c0.to(dtype).contiguous()

    if uniforms is None:
        uniforms = torch.rand(steps, b, generator=generator, dtype=torch.float64).to(device)
    else:
        if tuple(uniforms.shape) != (steps, b):
            _fail("uniforms", f"of shape (steps, B) = {(steps, b)}", tuple(uniforms.shape))
        if uniforms.numel() and (float(uniforms.min()) < 0 or float(uniforms.max()) >= 1):
            _fail("uniforms", "values in [0, 1)", f"min {float(uniforms.min())}, max {float(uniforms.max())}")
        uniforms = uniforms.to(device=device, dtype=torch.float64).contiguous()

    if _native.resolve("lstm_sample", impl, device):
        w = [[t.detach().contiguous() for t in col] for col in zip(*layers)]
        tokens, h, c = torch.ops.genfast.lstm_sample(
            embedding.detach().contiguous(), w[0], w[1], w[2], w[3], proj_weight.detach().contiguous(),
            proj_bias.detach().contiguous(), prime.contiguous(), h0, c0, temp, uniforms, top_k, float(top_p))
        return tokens, (h, c)
    with torch.no_grad():
        tokens, h, c = ref.lstm_sample(embedding, layers, proj_weight, proj_bias, prime, steps, temp, uniforms,
                                       top_k, float(top_p), h0, c0)
    return tokens, (h, c)


def _register() -> None:
    @torch.library.register_fake("genfast::lstm_sample")
    def _(embedding, w_ih, w_hh, b_ih, b_hh, proj_weight, proj_bias, prime, h0, c0, temperature, uniforms,
          top_k, top_p):
        steps = uniforms.shape[0]
        return (prime.new_empty((prime.shape[0], steps)), torch.empty_like(h0), torch.empty_like(c0))

    # the kernel's inline float32 exp / sigmoid / tanh, exposed for the accuracy tests only
    @torch.library.register_fake("genfast::_vec_math")
    def _(x, fn):
        return torch.empty_like(x, memory_format=torch.contiguous_format)


#: public function -> the registered native ops it runs
NATIVE = {"lstm_sample": ("lstm_sample",)}

if _native.load_error() is None:
    _register()
    _native.precompute(NATIVE)
