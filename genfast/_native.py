"""Loading genfast._C once, and choosing between the native kernels and the reference twins.

`impl` on every op (and GENFAST_IMPL in the environment) is one of:
  "auto"       native where it is built for the tensor's device, else the reference, with a
               warning, once per op and device, that says why;
  "native"     native or an error that says what to do;
  "reference"  the pure-PyTorch reference (genfast/reference/).
An explicit `impl=` argument wins over GENFAST_IMPL.
"""

from __future__ import annotations

import os
import warnings

import torch

IMPLS = ("auto", "native", "reference")

_loaded = False
_load_error: str | None = None
_warned: set[tuple[str, str]] = set()


class NativeUnavailableError(RuntimeError):
    """impl="native" was asked for where the native kernel is not built."""


def _load() -> str | None:
    """Import genfast._C once; remember the failure instead of retrying on every call."""
    global _loaded, _load_error
    if not _loaded:
        _loaded = True
        try:
            from genfast import _C  # noqa: F401  (importing registers the ops)
        except Exception as exc:  # ImportError, or OSError from a broken shared library
            _load_error = f"{type(exc).__name__}: {exc}"
    return _load_error


def load_error() -> str | None:
    """Why genfast._C could not be loaded, or None when it is loaded."""
    return _load()


def build_info() -> str:
    if _load() is not None:
        return "not built"
    from genfast import _C

    return _C.build_info()


def empty_cache() -> int:
    """Return the free blocks genfast keeps for reuse as large CPU outputs (csrc/common/
    cpu_output_cache.h; at most GENFAST_CPU_CACHE_MB, default 512, 0 turns the cache off) to the
    system. Returns the number of bytes released (0 when the native library is not loaded)."""
    if _load() is not None:
        return 0
    from genfast import _C

    return int(_C.empty_cpu_cache())


def cpu_cache_bytes() -> int:
    """Bytes of free CPU output blocks genfast holds for reuse (see empty_cache)."""
    if _load() is not None:
        return 0
    from genfast import _C

    return int(_C.cpu_cache_bytes())


def built_with_cuda() -> bool:
    if _load() is not None:
        return False
    from genfast import _C

    return bool(_C.built_with_cuda())


def _dispatch_key(device_type: str) -> str:
    return {"cpu": "CPU", "cuda": "CUDA"}.get(device_type, device_type.upper())


_kernel_cache: dict[tuple[str, str], bool] = {}


def has_kernel(op: str, device_type: str) -> bool:
    """Whether genfast::<op> has a native kernel registered for the device type.

    Cached, so that torch.compile traces a plain dict lookup instead of a dispatcher query.
    """
    key = (op, device_type)
    found = _kernel_cache.get(key)
    if found is None:
        found = False
        if _load() is None:
            try:
                found = torch._C._dispatch_has_kernel_for_dispatch_key(f"genfast::{op}", _dispatch_key(device_type))
            except RuntimeError:  # unknown op or dispatch key
                found = False
        _kernel_cache[key] = found
    return found


def precompute(native: dict[str, tuple[str, ...]]) -> None:
    """Fill the kernel cache for an ops module's registered ops (its NATIVE table: public function
    -> registered ops) on the device types genfast builds for."""
    for ops in native.values():
        for op in ops:
            for device_type in ("cpu", "cuda"):
                has_kernel(op, device_type)


def native_available(op: str | None = None, device: str | torch.device = "cpu") -> bool:
    """True when genfast._C loaded and (given `op`) that op has a kernel for `device`."""
    if _load() is not None:
        return False
    if op is None:
        return True
    return has_kernel(op, torch.device(device).type)


def unavailable_reason(op: str, device_type: str) -> str:
    err = _load()
    if err is not None:
        return (f"genfast._C failed to load ({err}); rebuild with "
                "`pip install --no-build-isolation -e .` against the installed torch")
    if device_type == "cuda" and not built_with_cuda():
        return ("genfast._C was built without CUDA kernels (build info: "
                f"{build_info()}); rebuild with CUDA_HOME set and GENFAST_CUDA=1")
    return f"genfast::{op} has no native kernel for device type '{device_type}'"


_env_snapshot: str | None = None


def _env_impl() -> str:
    global _env_snapshot
    if torch.compiler.is_compiling() and _env_snapshot is not None:
        return _env_snapshot  # the value seen by the last eager call
    value = os.environ.get("GENFAST_IMPL", "auto").strip().lower() or "auto"
    if value not in IMPLS:
        raise ValueError(f"GENFAST_IMPL must be one of {IMPLS}, got {value!r}")
    _env_snapshot = value
    return value


def resolve(op: str, impl: str, device: torch.device) -> bool:
    """Return True to run the native kernel of `op` on `device`, False for the reference.

    An explicit impl="native" or "reference" wins; impl="auto" defers to GENFAST_IMPL.
    """
    if impl == "auto":
        impl = _env_impl()
    if impl not in IMPLS:
        raise ValueError(f"genfast.{op}: expected impl to be one of {IMPLS}, got {impl!r}")
    if impl == "reference":
        return False
    if has_kernel(op, device.type):
        return True
    reason = unavailable_reason(op, device.type)
    if impl == "native":
        raise NativeUnavailableError(f"genfast.{op}(impl='native'): {reason}")
    key = (op, device.type)
    if key not in _warned:
        _warned.add(key)
        warnings.warn(f"genfast.{op}: using the slower pure-PyTorch reference on {device.type}: {reason}",
                      RuntimeWarning, stacklevel=3)
    return False
