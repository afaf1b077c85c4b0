"""Helpers shared by the test files (import them: `from helpers import SHARED_DATA, needs_cuda`;
tests/conftest.py puts this folder on the import path). Written once here, never copied.

- SHARED_DATA, shared(*parts): the test data in ../shared/data next to the checkout (or
  GENFAST_SHARED_DATA); shared() skips the test when the file is absent (a user's fresh checkout).
- needs_native, needs_cuda, needs_native_op(op): skip markers.
- equal_state(a, b): two state dicts bitwise equal.
- assert_compiles_like_eager(fn, x): torch.compile(fullgraph=True) gives eager's value and gradient.
- code_running_pickle(path, marker): a .pth whose unpickling would create `marker` (the classic
  `__reduce__` attack); a loader that is safe refuses it and `marker` never appears.
"""

import os
from pathlib import Path

import pytest
import torch

import genfast

SHARED_DATA = Path(os.environ.get("GENFAST_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")

needs_native = pytest.mark.skipif(genfast.load_error() is not None,
                                  reason=f"genfast._C not built: {genfast.load_error()}")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def needs_native_op(op: str, device: str = "cpu"):
    """Skip unless genfast.<op> has a native kernel for `device`."""
    return pytest.mark.skipif(not genfast.native_available(op, device),
                              reason=f"native {op} not built for {device}: {genfast.load_error()}")


def shared(*parts) -> Path:
    """A file of the shared test data; skips the calling test when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found: {path}")
    return path


def equal_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_compiles_like_eager(fn, x: torch.Tensor) -> None:
    """fn(x) -> scalar: the fullgraph-compiled function gives eager's value and x-gradient."""
    compiled = torch.compile(fn, fullgraph=True)
    xe, xc = x.clone().requires_grad_(), x.clone().requires_grad_()
    want, got = fn(xe), compiled(xc)
    torch.testing.assert_close(got, want)
    want.backward()
    got.backward()
    torch.testing.assert_close(xc.grad, xe.grad)


class _CreatesFile:
    """Unpickling this calls open(marker, "w"): code run by the loader."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def code_running_pickle(path, marker, *, wrap=lambda payload: {"model": payload}) -> Path:
    """Write a torch file at `path` whose unpickling would create `marker`."""
    torch.save(wrap(_CreatesFile(marker)), path)
    return Path(path)
