"""Fused Gram matrix and Gram-matrix style loss (native: csrc/gram/, reference: genfast/reference/gram.py).

The native forward computes one triangle of F F^T and mirrors it; the native backward is one
product, dL/dF = s * k * (D + D^T) F with D = G - T, instead of autograd's two products through
bmm. float16/bfloat16 features accumulate in float32, so fp16 VGG activations at 512x512 do not
overflow the way a plain fp16 bmm does.
"""

from __future__ import annotations

import torch

from genfast.checks import ArgumentTypeError, acc_dtype, check_choice, check_tensor, fail, is_number

from genfast import _native
from genfast.reference import gram as ref

NORMALIZE = ref.NORMALIZE
REDUCTION = ref.REDUCTION


def _check_features(features, op: str) -> torch.Tensor:
    """Validate features and view them as (N, C, L) without copying."""
    check_tensor(features, "features", dims=(3, 4), shape="(N, C, H, W) or (N, C, L)", floating=True,
                 where=f"genfast.{op}")
    n, c = features.shape[:2]
    # A channels_last (N, C, H, W) map flattens to an (N, C, L) view with stride 1 over C:
    # the kernels take any strides, so no copy is made.
    if features.dim() == 3:
        return features
    return features.reshape(n, c, features.shape[2] * features.shape[3])  # explicit: -1 is ambiguous at N = 0


def _check_choice(value, choices, op: str, name: str) -> str:
    return check_choice(value, name, choices, where=f"genfast.{op}")


def gram_matrix(features: torch.Tensor, *, normalize: str = "chw", impl: str = "auto") -> torch.Tensor:
    """Gram matrices of a batch of feature maps.

    Args:
        features: (N, C, H, W) or (N, C, L), any floating dtype, any layout.
        normalize: "none" (raw F F^T sums), "hw" (divide by H*W) or "chw" (divide by C*H*W).
        impl: "auto" | "native" | "reference" (see genfast._native).

    Returns:
        (N, C, C) in the dtype of `features` (accumulated in float32 for half/bfloat16).
    """
    f = _check_features(features, "gram_matrix")
    _check_choice(normalize, NORMALIZE, "gram_matrix", "normalize")
    if _native.resolve("gram_matrix", impl, f.device):
        return torch.ops.genfast.gram_matrix(f, ref.gram_scale(normalize, f.shape[1], f.shape[2]))
    return ref.gram_matrix(f, normalize)


def _as_batched_target(target_gram, f: torch.Tensor, op: str) -> torch.Tensor:
    check_tensor(target_gram, "target_gram", where=f"genfast.{op}")
    n, c = f.shape[:2]
    t = target_gram.unsqueeze(0) if target_gram.dim() == 2 else target_gram
    if t.dim() != 3 or t.shape[1:] != (c, c) or t.shape[0] not in (1, n):
        raise ValueError(f"genfast.{op}: expected target_gram of shape ({c}, {c}), (1, {c}, {c}) or ({n}, {c}, {c}) "
                         f"to match features with C = {c}, N = {n}, got shape {tuple(target_gram.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"genfast.{op}: expected target_gram to be a floating-point tensor, got {t.dtype}")
    if t.device != f.device:
        raise ValueError(f"genfast.{op}: expected target_gram on the features' device ({f.device}), got {t.device}")
    return t


def style_loss(features: torch.Tensor, target_gram: torch.Tensor, *, normalize: str = "chw",
               reduction: str = "mse", weight: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """Distance between the Gram matrices of `features` and `target_gram`, as a scalar.

    Args:
        features: (N, C, H, W) or (N, C, L).
        target_gram: (C, C), (1, C, C) (both broadcast over N) or (N, C, C).
        normalize: as in gram_matrix.
        reduction: "mse" (mean of squared differences over (N, C, C)), "sum" (sum of squares) or
            "frobenius" (square root of the sum of squares).
        weight: multiplies the loss.

    The three classic formulations:
        Gatys et al. E_l = 1/(4 N^2 M^2) sum (G - A)^2:  normalize="none", reduction="sum",
            weight=1/(4 C^2 (HW)^2)
        deeplearning.ai 1/(2 nH nW nC)^2 sum (G_S - G_G)^2:  normalize="none", reduction="sum",
            weight=1/(2 H W C)^2
        Frobenius sqrt(sum (g - g_s)^2):  reduction="frobenius"

    Returns:
        A 0-dim tensor, float32 (float64 for float64 features).
    """
    f = _check_features(features, "style_loss")
    t = _as_batched_target(target_gram, f, "style_loss")
    _check_choice(normalize, NORMALIZE, "style_loss", "normalize")
    _check_choice(reduction, REDUCTION, "style_loss", "reduction")
    if not is_number(weight):
        raise fail("weight", "a number", type(weight).__name__, where="genfast.style_loss", cls=ArgumentTypeError)
    if _native.resolve("style_loss", impl, f.device):
        scale = ref.gram_scale(normalize, f.shape[1], f.shape[2])
        loss, _ = torch.ops.genfast.style_loss(f, t, scale, reduction, float(weight))
        return loss
    return ref.style_loss(f, t, normalize, reduction, weight)


# ---------------------------------------------------------------------------------------------
# Fake (meta) kernels and autograd, registered when the native library is loaded.


def _register() -> None:
    @torch.library.register_fake("genfast::gram_matrix")
    def _(features, scale):
        n, c, _ = features.shape
        return features.new_empty((n, c, c))

    @torch.library.register_fake("genfast::gram_matrix_backward")
    def _(grad, features, scale):
        return torch.empty_like(features)

    @torch.library.register_fake("genfast::style_loss")
    def _(features, target, scale, reduction, weight):
        n, c, _ = features.shape
        acc = acc_dtype(features.dtype)
        return features.new_empty((), dtype=acc), features.new_empty((n, c, c), dtype=acc)

    @torch.library.register_fake("genfast::style_loss_backward")
    def _(grad, features, gram, target, scale, reduction, weight):
        return torch.empty_like(features)

    def gram_setup(ctx, inputs, output):
        features, scale = inputs
        ctx.save_for_backward(features)
        ctx.scale = scale

    def gram_backward(ctx, grad):
        (features,) = ctx.saved_tensors
        return torch.ops.genfast.gram_matrix_backward(grad, features, ctx.scale), None

    torch.library.register_autograd("genfast::gram_matrix", gram_backward, setup_context=gram_setup)

    def style_setup(ctx, inputs, output):
        features, target, scale, reduction, weight = inputs
        loss, gram = output
        ctx.mark_non_differentiable(gram)
        ctx.save_for_backward(features, gram, target)
        ctx.args = (scale, reduction, weight)

    def style_backward(ctx, grad_loss, grad_gram):
        features, gram, target = ctx.saved_tensors
        scale, reduction, weight = ctx.args
        grad_features = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_features = torch.ops.genfast.style_loss_backward(
                grad_loss, features, gram, target, scale, reduction, weight)
        if ctx.needs_input_grad[1]:
            grad_target = _target_grad(grad_loss, gram, target, reduction, weight)
        return grad_features, grad_target, None, None, None

    torch.library.register_autograd("genfast::style_loss", style_backward, setup_context=style_setup)

    # The backward ops are not differentiable: say so instead of returning a wrong second derivative.
    def no_double_backward(name):
        def backward(ctx, *grads):
            raise RuntimeError(f"genfast.{name}: double backward (differentiating the gradient) is not "
                               "supported; use impl='reference' where a second derivative is needed")
        return backward

    for name in ("gram_matrix_backward", "style_loss_backward"):
        torch.library.register_autograd(f"genfast::{name}", no_double_backward(name),
                                        setup_context=lambda ctx, inputs, output: None)


def _target_grad(grad_loss, gram, target, reduction, weight):
    """dloss/dtarget = -dloss/dG, summed over the batch when the target was broadcast."""
    d = gram - target.to(gram.dtype)
    if reduction == "mse":
        g = d * (2.0 * weight / d.numel())
    elif reduction == "sum":
        g = d * (2.0 * weight)
    else:
        norm = d.square().sum().sqrt()
        g = torch.where(norm > 0, d * (weight / norm), torch.zeros_like(d))
    g = -(g * grad_loss)
    if target.shape[0] != g.shape[0]:
        g = g.sum(0, keepdim=True)
    return g.to(target.dtype)


#: public function -> the registered native ops it runs (all must be built for it to be native)
NATIVE = {"gram_matrix": ("gram_matrix", "gram_matrix_backward"),
          "style_loss": ("style_loss", "style_loss_backward")}

if _native.load_error() is None:
    _register()
    _native.precompute(NATIVE)
