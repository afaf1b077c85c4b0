"""Benchmarks: reference vs torch.compile(reference) vs native, in one process.

Used by `genfast bench` and by the scripts in benchmarks/. Timing: warm-up first, then the
median of many runs, with device synchronisation around each run on CUDA.
"""

from genfast.bench.core import Case, Result, machine_mm_gflops, run_cases, time_fn

#: `genfast bench --op NAME` -> the module in genfast/bench/ that defines its cases:
#:   PRIMARY_OP (a registered op name), DEFAULT_SHAPES, QUICK_SHAPES,
#:   cases(device, shapes, compile) -> list[Case], and optionally report(...), SHAPE_SIZES and
#:   NATIVE = False (a workflow step with no native op of its own: no "native unavailable" warning)
BENCHES = {
    "gram": "genfast.bench.gram",
    "minibatch_stddev": "genfast.bench.minibatch_stddev",
    "instance_norm": "genfast.bench.instance_norm",
    "gatys": "genfast.bench.gatys",
    "lstm_sample": "genfast.bench.lstm_sample",
    "stylizer": "genfast.bench.stylizer",
    "rl": "genfast.bench.rl",
    "in_situ": "genfast.bench.in_situ",
    "dream": "genfast.bench.dream",
    "adversarial": "genfast.bench.adversarial",
    "gan": "genfast.bench.gan",
    "stem_conv2d": "genfast.bench.stem_conv2d",
}

__all__ = ["Case", "Result", "machine_mm_gflops", "run_cases", "time_fn", "BENCHES", "script"]


def script(op: str) -> None:
    """`python benchmarks/bench_<op>.py [options]`: the same as `genfast bench --op <op> [options]`."""
    import sys

    from genfast.cli import main

    raise SystemExit(main(["bench", "--op", op, *sys.argv[1:]]))
