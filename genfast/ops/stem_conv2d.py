"""Stem convolution: a 2-D convolution for inputs with few channels, the first layer of an image
discriminator, with its activation fused (native: csrc/stem_conv2d/, reference:
genfast/reference/stem_conv2d.py).

On the CPU, torch runs convolutions through oneDNN, which is fast on wide layers and slow on a
layer with 1 or 3 input channels: its input gradient, which a WGAN-GP or R1 penalty needs on every
critic step, runs far below the machine's FLOP rate there. The native kernels treat
the three products of such a layer as GEMMs with one short side (csrc/stem_conv2d/stem_conv2d_cpu.cpp).
Dilation 1, one group, zero padding; any number of channels is correct, few are fast.

The activation (relu or leaky_relu) is applied to each output tile before it leaves the
registers, and its slopes to the incoming gradient as the backward reads it: the layer's output is the largest
tensor of a small critic, and a separate LeakyReLU makes two more passes over it forward and two
backward. At fixed slopes the forward and its two backward ops are each linear in each argument,
so their autograd (registered in C++, csrc/stem_conv2d/stem_conv2d_autograd.cpp: cheaper per node,
and it skips the weights' gradient in a penalty's first pass, which a Python node cannot know)
differentiates every one of them with the others: double (and higher) backward is exact and runs
on the same kernels. Only the fake kernels are registered here. On CUDA the ops are cuDNN's
convolution behind the same schema.
"""

from __future__ import annotations

import torch

from genfast import _native
from genfast.checks import ArgumentError, check_choice, check_int, check_number, check_tensor, fail
from genfast.reference import stem_conv2d as ref

WHERE = "genfast.stem_conv2d"


def _pair(value, name: str, low: int, where: str = WHERE) -> tuple[int, int]:
    """An int or a pair of ints, each >= low, as (h, w)."""
    items = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(items) != 2:
        raise fail(name, "an int or a pair of ints (h, w)", value, where=where)
    for v in items:
        check_int(v, name, low, where=where)
    return int(items[0]), int(items[1])


def _check_tensors(x, weight, bias, *, transposed: bool, where: str):
    """x (N, C, H, W), weight with x's channels on axis 0 (transposed) or 1, bias over the other axis,
    all beside x in its dtype."""
    layout = "(C_in, C_out, KH, KW)" if transposed else "(O, C, KH, KW)"
    check_tensor(x, "x", dims=(4,), shape="(N, C_in, H, W)" if transposed else "(N, C, H, W)", floating=True,
                 where=where)
    check_tensor(weight, "weight", dims=(4,), shape=layout, floating=True, where=where, device=x.device, like="x's")
    if weight.dtype != x.dtype:
        raise fail("weight", f"x's dtype ({x.dtype})", str(weight.dtype), where=where)
    c_axis, o_axis = (0, 1) if transposed else (1, 0)
    if weight.shape[c_axis] != x.shape[1]:
        want = f"({x.shape[1]}, C_out, KH, KW)" if transposed else f"(O, {x.shape[1]}, KH, KW)"
        raise ArgumentError("weight", f"expected weight of shape {want} to match x with "
                                      f"{'C_in' if transposed else 'C'} = {x.shape[1]}, got shape "
                                      f"{tuple(weight.shape)}", where=where)
    o = weight.shape[o_axis]
    if bias is not None:
        check_tensor(bias, "bias", dims=(1,), shape=f"({o},)", floating=True, where=where, device=x.device,
                     like="x's")
        if bias.shape[0] != o or bias.dtype != x.dtype:
            raise fail("bias", f"shape ({o},) and dtype {x.dtype}", f"shape {tuple(bias.shape)}, dtype {bias.dtype}",
                       where=where)


def _autocast_inputs(x, weight, bias):
    """As torch's convolutions under autocast: the inputs in the autocast dtype (the kernels compute
    float16/bfloat16 in float32 and round the output once). Unchanged outside autocast."""
    if isinstance(x, torch.Tensor) and torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
        x, weight = x.to(dtype), weight.to(dtype) if isinstance(weight, torch.Tensor) else weight
        bias = bias.to(dtype) if isinstance(bias, torch.Tensor) else bias
    return x, weight, bias


def _check(x, weight, bias, stride, padding):
    _check_tensors(x, weight, bias, transposed=False, where=WHERE)
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    for i, dim in enumerate("HW"):
        if x.shape[2 + i] + 2 * padding[i] < weight.shape[2 + i]:
            raise ArgumentError("x", f"expected x's padded {dim} ({x.shape[2 + i]} + 2 * {padding[i]}) to be at "
                                     f"least the kernel's ({weight.shape[2 + i]})", where=WHERE)
    return stride, padding


def stem_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1, padding=0,
                *, activation: str = "none", negative_slope: float = 0.01, impl: str = "auto") -> torch.Tensor:
    """activation(torch.nn.functional.conv2d(x, weight, bias, stride, padding)), dilation 1, one group.

    Args:
        x: (N, C, H, W), any floating dtype (float16/bfloat16 computed in float32).
        weight: (O, C, KH, KW), x's dtype and device.
        bias: (O,) or None.
        stride, padding: an int or a pair (h, w).
        activation: "none", "relu" or "leaky_relu" (with negative_slope >= 0), fused.
        impl: "auto" | "native" | "reference" (see genfast._native).

    Under autocast x, weight and bias are cast to the autocast dtype first, as for torch's conv2d.

    Returns:
        (N, O, Ho, Wo) in x's dtype, Ho = (H + 2 ph - KH) // sh + 1 (and Wo alike).
    """
    x, weight, bias = _autocast_inputs(x, weight, bias)
    stride, padding = _check(x, weight, bias, stride, padding)
    check_choice(activation, "activation", ref.ACTIVATIONS, where=WHERE)
    check_number(negative_slope, "negative_slope", where=WHERE)
    if _native.resolve("stem_conv2d", impl, x.device):
        return torch.ops.genfast.stem_conv2d(x, weight, bias, None, list(stride), list(padding), activation,
                                             float(negative_slope))
    return ref.stem_conv2d(x, weight, bias, stride, padding, activation, negative_slope)


WHERE_T = "genfast.stem_conv_transpose2d"


def _check_transpose(x, weight, bias, stride, padding):
    _check_tensors(x, weight, bias, transposed=True, where=WHERE_T)
    stride, padding = _pair(stride, "stride", 1, WHERE_T), _pair(padding, "padding", 0, WHERE_T)
    out_hw = tuple((x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + weight.shape[2 + i] for i in range(2))
    if min(out_hw) < 1:
        raise ArgumentError("padding", f"expected padding {padding} to leave an output of at least 1 x 1 "
                                       f"((H - 1) * stride - 2 * padding + KH), got {out_hw}", where=WHERE_T)
    return stride, padding, out_hw


def stem_conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1,
                          padding=0, *, impl: str = "auto") -> torch.Tensor:
    """torch.nn.functional.conv_transpose2d(x, weight, bias, stride, padding) (output_padding 0,
    dilation 1, one group), fast for few OUTPUT channels: the last layer of an image generator.

    It is the adjoint of stem_conv2d (the transposed convolution of x by weight is the input
    gradient of the stem convolution with that weight), so it runs on the stem's input-gradient
    kernel, and autograd differentiates it with the stem's forward (for x) and weight-gradient
    kernels (for weight): oneDNN runs such a layer at a few GFLOP/s on the CPU (RESULTS, "Stem
    convolution"). A torch.nn.Conv2d with few output channels at stride 1 is this op with the
    weight transposed and flipped: see genfast.nn.HeadConv2d.

    Args:
        x: (N, C_in, H, W), any floating dtype (float16/bfloat16 computed in float32).
        weight: (C_in, C_out, KH, KW) (torch.nn.ConvTranspose2d's layout), x's dtype and device.
        bias: (C_out,) or None.
        stride, padding: an int or a pair (h, w).

    Returns:
        (N, C_out, (H - 1) * sh - 2 ph + KH, (W - 1) * sw - 2 pw + KW) in x's dtype.
    """
    x, weight, bias = _autocast_inputs(x, weight, bias)
    stride, padding, out_hw = _check_transpose(x, weight, bias, stride, padding)
    if _native.resolve("stem_conv2d", impl, x.device):
        y = torch.ops.genfast.stem_conv2d_backward_input(x, None, weight, list(out_hw), list(stride), list(padding),
                                                          "none", 0.0)
        return y if bias is None else y + bias.reshape(1, -1, 1, 1)
    return ref.stem_conv_transpose2d(x, weight, bias, stride, padding)


# ---------------------------------------------------------------------------------------------
# Fake (meta) kernels, registered when the native library is loaded.


def _register() -> None:
    @torch.library.register_fake("genfast::stem_conv2d")
    def _(x, weight, bias, slopes_of, stride, padding, activation, negative_slope):
        ho, wo = ref.output_hw(x.shape[2:], weight.shape[2:], stride, padding)
        return x.new_empty((x.shape[0], weight.shape[0], ho, wo))

    @torch.library.register_fake("genfast::stem_conv2d_backward_input")
    def _(grad_out, out, weight, input_hw, stride, padding, activation, negative_slope):
        return grad_out.new_empty((grad_out.shape[0], weight.shape[1], *input_hw))

    @torch.library.register_fake("genfast::stem_conv2d_backward_weight")
    def _(grad_out, out, x, kernel_size, stride, padding, activation, negative_slope):
        return grad_out.new_empty((grad_out.shape[1], x.shape[1], *kernel_size)), grad_out.new_empty(grad_out.shape[1])


#: public function -> the registered native ops it runs (all must be built for it to be native)
NATIVE = {"stem_conv2d": ("stem_conv2d", "stem_conv2d_backward_input", "stem_conv2d_backward_weight"),
          "stem_conv_transpose2d": ("stem_conv2d_backward_input", "stem_conv2d", "stem_conv2d_backward_weight")}

if _native.load_error() is None:
    _register()
    _native.precompute(NATIVE)
