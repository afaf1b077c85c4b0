"""Argument checks for the Python side, the twin of csrc/common/checks.h: one rule, one place.

Every check names the argument, says what was expected and what came. A check made inside an op
or a class passes `where` ("genfast.minibatch_stddev", "CharLSTM") and its message reads
"genfast.minibatch_stddev: expected group_size to be an integer >= 1, got 0"; a workflow's check
reads "steps: expected an integer >= 1, got 0".

The errors are `ArgumentError` (a ValueError) and carry the argument's name in `.argument`, so the
command line can say which option was at fault (`--steps`) from the exception's fields instead of
by parsing its text (genfast/cli/errors.py).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch


class ArgumentError(ValueError):
    """A bad argument. `argument` is its Python name, `detail` the message without the name, and
    `where` the op or class that checked it (None for a workflow's own argument)."""

    def __init__(self, argument: str, detail: str, *, where: str | None = None):
        self.argument, self.detail, self.where = argument, detail, where
        super().__init__(f"{where}: {detail}" if where else f"{argument}: {detail}")


class ArgumentTypeError(ArgumentError, TypeError):
    """A bad argument of the wrong type (a list for a tensor, an int tensor for a float one): both a
    ValueError, like every ArgumentError, and a TypeError."""


def named(cls: type[BaseException], argument: str, detail: str) -> BaseException:
    """An exception of another type (FileNotFoundError, ImportError, ...) that names its argument the
    way ArgumentError does: str() is "argument: detail", and `.argument` / `.detail` are set."""
    e = cls(f"{argument}: {detail}")
    e.argument, e.detail, e.where = argument, detail, None
    return e


def fail(name: str, expected: str, got, *, where: str | None = None, cls=ArgumentError) -> ArgumentError:
    """The ArgumentError (or `cls`) for `name`: expected `expected`, got `got` (repr'd unless a str)."""
    got = got if isinstance(got, str) else repr(got)
    if where:
        return cls(name, f"expected {name} to be {expected}, got {got}", where=where)
    return cls(name, f"expected {expected}, got {got}")


def is_int(value) -> bool:
    """An int and not a bool (bools are ints in Python, never a count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(low, high) -> str:
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    if low is not None:
        return f">= {low}"
    return f"<= {high}"


def check_int(value, name: str, low: int | None = None, high: int | None = None, *,
              where: str | None = None) -> int:
    """An int (not a bool) within [low, high] (either bound may be None)."""
    ok = is_int(value) and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        bounds = "" if low is None and high is None else " " + _bounds(low, high)
        raise fail(name, f"an integer{bounds}", value, where=where,
                   cls=ArgumentError if is_int(value) else ArgumentTypeError)
    return value


def check_optional_int(value, name: str, low: int | None = None, high: int | None = None, *,
                       where: str | None = None) -> int | None:
    return None if value is None else check_int(value, name, low, high, where=where)


def check_number(value, name: str, *, positive: bool = False, low: float | None = 0.0,
                 high: float | None = None, below: float | None = None, where: str | None = None) -> float:
    """A finite int or float (not a bool) as a float: >= low (default 0; None for no lower bound),
    > 0 with positive=True, <= high, < below."""
    if not is_number(value) or not math.isfinite(value):
        raise fail(name, "a finite number", value, where=where,
                   cls=ArgumentError if is_number(value) else ArgumentTypeError)
    if positive and value <= 0:
        raise _must(name, "positive", value, where)
    if low is not None and value < low:
        raise _must(name, "non-negative", value, where) if low == 0 else fail(name, f"a number >= {low}", value,
                                                                             where=where)
    if high is not None and value > high:
        raise fail(name, f"a number <= {high}", value, where=where)
    if below is not None and value >= below:
        raise fail(name, f"a number < {below}", value, where=where)
    return float(value)


def _must(name: str, what: str, value, where: str | None) -> ArgumentError:
    return fail(name, what, value, where=where) if where else ArgumentError(name, f"must be {what}, got {value}")


def check_choice(value, name: str, choices: Iterable, *, where: str | None = None):
    """`value` if it is one of `choices`; the error lists them."""
    choices = tuple(choices)
    if value not in choices:
        if where:
            raise fail(name, f"one of {choices}", value, where=where)
        raise ArgumentError(name, f"expected one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_tensor(t, name: str, *, where: str | None = None, dims: Iterable[int] | None = None,
                 shape: str | None = None, floating: bool = False, device: torch.device | None = None,
                 like: str = "") -> torch.Tensor:
    """A torch.Tensor with one of `dims` dimensions (described by `shape`, e.g. "(N, C, H, W)"),
    floating-point when asked, on `device` when given (`like` names the tensor it must sit beside)."""
    if not isinstance(t, torch.Tensor):
        raise fail(name, "a torch.Tensor", type(t).__name__, where=where, cls=ArgumentTypeError)
    if dims is not None and t.dim() not in tuple(dims):
        raise ArgumentError(name, f"expected {name} of shape {shape}, got shape {tuple(t.shape)}", where=where) \
            if where else ArgumentError(name, f"expected a tensor of shape {shape}, got shape {tuple(t.shape)}")
    if floating and not t.is_floating_point():
        raise fail(name, "a floating-point tensor", str(t.dtype), where=where, cls=ArgumentTypeError)
    if device is not None and t.device != device:
        raise fail(name, f"on {like + ' ' if like else ''}device {device}", str(t.device), where=where)
    return t


def check_device(device, name: str = "device") -> torch.device:
    """A torch.device that exists on this machine: "cpu", "cuda" or "cuda:N" (N < the device count).
    None means cuda when a GPU is present, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ArgumentError(name, f"expected cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ArgumentError(name, f"expected cpu, cuda or cuda:N, got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ArgumentError(name, f"{device!r} asked for, but no CUDA device is available on this machine "
                                      f"(torch {torch.__version__}, CUDA {torch.version.cuda or 'not built in'})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ArgumentError(name, f"{device!r} asked for, but this machine has "
                                      f"{torch.cuda.device_count()} CUDA device(s)")
    return dev


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype genfast accumulates `dtype` in: float64 stays float64, everything else float32
    (float16/bfloat16 sums overflow or lose digits)."""
    return torch.float64 if dtype == torch.float64 else torch.float32
