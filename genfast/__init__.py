"""genfast: fused C++/CUDA kernels and a Python toolbox for classic generative deep learning."""

__version__ = "0.1.0"

from genfast._native import (NativeUnavailableError, build_info, cpu_cache_bytes, empty_cache, load_error,
                             native_available)
from genfast import ops, reference, nn

__all__ = ["ops", "reference", "nn", "native_available", "load_error", "build_info", "NativeUnavailableError",
           "empty_cache", "cpu_cache_bytes"]
