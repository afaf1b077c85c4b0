"""Minibatch standard deviation layer (native: csrc/minibatch_stddev/, reference:
genfast/reference/minibatch_stddev.py), with StyleGAN2's semantics.

The native forward writes the whole output (x and the appended channels) in one pass over x; the
native backward is one pass that recomputes the statistics. Autograd of both ops is registered in
C++ (csrc/minibatch_stddev/minibatch_stddev_autograd.cpp): the Python autograd wrapper of
torch.library.register_autograd cost more than the kernels at StyleGAN's sizes. The backward is an
op of its own whose autograd is the closed-form second derivative, so double backward (R1 and
gradient penalties through the discriminator) is exact. Only the fake kernels are registered here.
"""

from __future__ import annotations

import torch

from genfast import _native
from genfast.reference import minibatch_stddev as ref


def _check(x, group_size, num_channels, eps, op: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"genfast.{op}: expected x to be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"genfast.{op}: expected x of shape (N, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"genfast.{op}: expected x to be a floating-point tensor, got {x.dtype}")
    for name, value in (("group_size", group_size), ("num_channels", num_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"genfast.{op}: expected {name} to be a positive int, got {value!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"genfast.{op}: expected eps to be a number >= 0, got {eps!r}")
    n, c = x.shape[:2]
    if c % num_channels:
        raise ValueError(f"genfast.{op}: expected the channel count of x ({c}) to be divisible by "
                         f"num_channels = {num_channels}")
    g = min(group_size, n)
    if n and n % g:
        raise ValueError(f"genfast.{op}: expected the batch size of x ({n}) to be divisible by the group size "
                         f"min(group_size, N) = {g}; use a batch size that is a multiple of {group_size}")


def minibatch_stddev(x: torch.Tensor, *, group_size: int = 4, num_channels: int = 1, eps: float = 1e-8,
                     impl: str = "auto") -> torch.Tensor:
    """Append the group standard deviation as `num_channels` extra channels: (N, C, H, W) -> (N, C + F, H, W).

    Samples i and j share statistics when i = j mod (N / G), G = min(group_size, N), exactly as
    StyleGAN2's MinibatchStdLayer groups them (`x.reshape(G, N // G, ...)`).
    """
    _check(x, group_size, num_channels, eps, "minibatch_stddev")
    if _native.resolve("minibatch_stddev", impl, x.device):
        return torch.ops.genfast.minibatch_stddev(x, group_size, num_channels, float(eps))
    return ref.minibatch_stddev(x, group_size, num_channels, eps)


def _layout(x: torch.Tensor) -> torch.memory_format:
    """The rule of csrc/minibatch_stddev/minibatch_stddev.h layout_of()."""
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _register() -> None:
    @torch.library.register_fake("genfast::minibatch_stddev")
    def _(x, group_size, num_channels, eps):
        n, c, h, w = x.shape
        return x.new_empty((n, c + num_channels, h, w)).contiguous(memory_format=_layout(x))

    @torch.library.register_fake("genfast::minibatch_stddev_backward")
    def _(grad_out, x, group_size, num_channels, eps):
        return x.new_empty(x.shape).contiguous(memory_format=_layout(x))


#: public function -> the registered native ops it runs (all must be built for it to be native)
NATIVE = {"minibatch_stddev": ("minibatch_stddev", "minibatch_stddev_backward")}

if _native.load_error() is None:
    _register()
    _native.precompute(NATIVE)
