"""Benchmarks: reference vs torch.compile(reference) vs native, in one process.

Used by `genfast bench` and by the scripts in benchmarks/. Timing: warm-up first, then the
median of many runs, with device synchronisation around each run on CUDA.
"""

from genfast.bench.core import Case, Result, machine_mm_gflops, run_cases, time_fn

__all__ = ["Case", "Result", "machine_mm_gflops", "run_cases", "time_fn"]
