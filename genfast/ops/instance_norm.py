"""Fused instance norm + activation, plain and conditional (native: csrc/instance_norm/,
reference: genfast/reference/instance_norm.py).

Both public functions reduce to one native op that takes the affine part per (n, c) plane,
scale and shift of shape (N, C): the plain op passes weight/bias expanded over N, the conditional
op the style rows picked or blended per sample. Autograd of that expand / blend (plain torch ops)
gives the weight, bias, gamma, beta and mixing-weight gradients; the native backward gives the
gradient of x and of the (N, C) scale and shift in one fused pass.

Double backward: genfast::instance_norm_backward has its own autograd, the vector-Jacobian
product of the backward formula in closed form, so gradient penalties (WGAN-GP, R1) through these
layers get exact second derivatives: the native genfast::instance_norm_double_backward (one pass of
sums and one of outputs per plane), or, when a third derivative is being recorded, the same formula
in differentiable ATen ops (the twin of ref.instance_norm_double_backward, which recomputes the
statistics). The autograd of both ops is registered in C++ (csrc/instance_norm/instance_norm_autograd.cpp):
at a GAN critic's 4x4 and 7x7 maps the Python wrapper of torch.library.register_autograd cost as
much as the kernels. Only the fake kernels are registered here.
"""

from __future__ import annotations

import torch

from genfast.checks import ArgumentError, acc_dtype, check_choice, check_number, check_tensor

from genfast import _native
from genfast.reference import instance_norm as ref

ACTIVATIONS = ref.ACTIVATIONS



def _check_x(x, op: str) -> None:
    check_tensor(x, "x", dims=(4,), shape="(N, C, H, W)", floating=True, where=f"genfast.{op}")


def _check_options(eps, activation, negative_slope, op: str) -> None:
    check_number(eps, "eps", where=f"genfast.{op}")
    check_choice(activation, "activation", ACTIVATIONS, where=f"genfast.{op}")
    check_number(negative_slope, "negative_slope", low=None, where=f"genfast.{op}")


def _check_param(t, shape: tuple, x: torch.Tensor, op: str, name: str) -> None:
    where = f"genfast.{op}"
    check_tensor(t, name, where=where)
    if tuple(t.shape) != shape:
        raise ArgumentError(name, f"expected {name} of shape {shape} to match x of shape {tuple(x.shape)}, "
                                  f"got shape {tuple(t.shape)}", where=where)
    check_tensor(t, name, floating=True, device=x.device, like="x's", where=where)


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None, *,
                  eps: float = 1e-5, activation: str = "none", negative_slope: float = 0.01,
                  impl: str = "auto") -> torch.Tensor:
    """Instance normalisation of each (n, c) plane over H*W, then weight/bias and the activation.

    Args:
        x: (N, C, H, W), float32/float64/float16/bfloat16, any layout (contiguous and
            channels_last run natively; the output keeps x's layout).
        weight, bias: (C,) or None (no scale / no shift).
        eps: added to the biased variance.
        activation: "none", "relu" or "leaky_relu" (with `negative_slope`).
        impl: "auto" | "native" | "reference" (see genfast._native).

    Unlike torch.nn.functional.instance_norm, H*W = 1 is allowed (the output is act(bias)).
    """
    op = "instance_norm"
    _check_x(x, op)
    _check_options(eps, activation, negative_slope, op)
    n, c = x.shape[:2]
    if weight is not None:
        _check_param(weight, (c,), x, op, "weight")
    if bias is not None:
        _check_param(bias, (c,), x, op, "bias")
    if _native.resolve(op, impl, x.device):
        acc = acc_dtype(x.dtype)
        scale = None if weight is None else weight.to(acc).reshape(1, c).expand(n, c)
        shift = None if bias is None else bias.to(acc).reshape(1, c).expand(n, c)
        y, _, _ = torch.ops.genfast.instance_norm(x, scale, shift, float(eps), activation, float(negative_slope))
        return y
    return ref.instance_norm(x, weight, bias, eps, activation, negative_slope)


def _check_style(style, n: int, num_styles: int, x: torch.Tensor, op: str) -> None:
    check_tensor(style, "style", device=x.device, like="x's", where=f"genfast.{op}")
    if style.dtype in (torch.int64, torch.int32):
        if tuple(style.shape) != (n,):
            raise ValueError(f"genfast.{op}: expected style indices of shape ({n},) (one per sample of x), "
                             f"got shape {tuple(style.shape)}")
        # A data-dependent check (one host sync): skipped while tracing, where index_select's own
        # bounds check still fails loudly.
        if n and not torch.compiler.is_compiling() and bool(((style < 0) | (style >= num_styles)).any()):
            raise IndexError(f"genfast.{op}: style index out of range: expected indices in [0, {num_styles}) "
                             f"for {num_styles} styles, got min {int(style.min())}, max {int(style.max())}")
    elif style.is_floating_point():
        if tuple(style.shape) != (n, num_styles):
            raise ValueError(f"genfast.{op}: expected style mixing weights of shape ({n}, {num_styles}) "
                             f"(N samples by S styles), got shape {tuple(style.shape)}")
    else:
        raise TypeError(f"genfast.{op}: expected style to be int64 indices of shape (N,) or floating-point "
                        f"mixing weights of shape (N, S), got {style.dtype}")


def conditional_instance_norm(x: torch.Tensor, style: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, *,
                              eps: float = 1e-5, activation: str = "none", negative_slope: float = 0.01,
                              impl: str = "auto") -> torch.Tensor:
    """Conditional instance norm (Dumoulin et al.): per-sample scale and shift from style tables.

    Args:
        x: (N, C, H, W).
        style: int64 (N,) style indices, or floating (N, S) mixing weights (each sample's scale
            and shift are then the weighted sums of the style rows; gradients flow to the weights).
        gamma, beta: (S, C) scale and shift tables, one row per style.
        eps, activation, negative_slope, impl: as in instance_norm.
    """
    op = "conditional_instance_norm"
    _check_x(x, op)
    _check_options(eps, activation, negative_slope, op)
    n, c = x.shape[:2]
    if not isinstance(gamma, torch.Tensor) or gamma.dim() != 2 or gamma.shape[1] != c:
        shape = tuple(gamma.shape) if isinstance(gamma, torch.Tensor) else type(gamma).__name__
        raise ValueError(f"genfast.{op}: expected gamma of shape (S, {c}) (S styles, C = {c} channels of x), "
                         f"got {shape}")
    num_styles = gamma.shape[0]
    _check_param(gamma, (num_styles, c), x, op, "gamma")
    _check_param(beta, (num_styles, c), x, op, "beta")
    _check_style(style, n, num_styles, x, op)
    if _native.resolve("instance_norm", impl, x.device):
        acc = acc_dtype(x.dtype)
        scale, shift = ref.style_affine(style, gamma.to(acc), beta.to(acc))
        y, _, _ = torch.ops.genfast.instance_norm(x, scale, shift, float(eps), activation, float(negative_slope))
        return y
    return ref.conditional_instance_norm(x, style, gamma, beta, eps, activation, negative_slope)


# ---------------------------------------------------------------------------------------------
# Fake (meta) kernels and autograd, registered when the native library is loaded.

def _register() -> None:
    @torch.library.register_fake("genfast::instance_norm")
    def _(x, scale, shift, eps, activation, negative_slope):
        n, c = x.shape[:2]
        acc = acc_dtype(x.dtype)
        return torch.empty_like(x), x.new_empty((n, c), dtype=torch.float64), x.new_empty((n, c), dtype=acc)

    @torch.library.register_fake("genfast::instance_norm_backward")
    def _(grad, x, mean, rstd, scale, shift, eps, activation, negative_slope):
        n, c = x.shape[:2]
        acc = acc_dtype(x.dtype)
        return torch.empty_like(x), x.new_empty((n, c), dtype=acc), x.new_empty((n, c), dtype=acc)

    @torch.library.register_fake("genfast::instance_norm_double_backward")
    def _(grad, x, mean, rstd, scale, shift, gg_x, gg_scale, gg_shift, activation, negative_slope):
        n, c = x.shape[:2]
        return torch.empty_like(grad), torch.empty_like(x), x.new_empty((n, c), dtype=acc_dtype(x.dtype))


#: public function -> the registered native ops it runs (all must be built for it to be native)
NATIVE = {"instance_norm": ("instance_norm", "instance_norm_backward", "instance_norm_double_backward")}

if _native.load_error() is None:
    _register()
    _native.precompute(NATIVE)
