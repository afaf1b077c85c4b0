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
from genfast.checks import check_int, check_number, check_tensor
from genfast.reference import minibatch_stddev as ref


def _check(x, group_size, num_channels, eps, op: str) -> None:
    where = f"genfast.{op}"
    check_tensor(x, "x", dims=(4,), shape="(N, C, H, W)", floating=True, where=where)
    check_int(group_size, "group_size", 1, where=where)
    check_int(num_channels, "num_channels", 1, where=where)
    check_number(eps, "eps", where=where)
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
