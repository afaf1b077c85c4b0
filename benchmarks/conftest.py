"""The pytest-benchmark suite: `make bench` (pytest benchmarks --benchmark-only ...).

Every `bench_<name>.py` here names a benchmark of genfast/bench/ (`OP = "<name>"`, a key of
genfast.bench.BENCHES) and has one test, `test_<name>(bench_case, benchmark)`. The cases are the
ones `genfast bench --op <name>` times: one definition of each, in genfast/bench/<name>.py. Each
(case, implementation) pair is one benchmark; the implementations of a case share a group, so
pytest-benchmark's table shows reference, torch.compile(reference) and native side by side, and the
saved JSON carries each one's speed-up over the reference in `extra_info` (median against median).

Options: --bench-quick (the small shapes: a smoke run), --bench-device cpu|cuda, --bench-rounds N.
Unlike `genfast bench`, pytest-benchmark times one implementation's rounds after another's, never
in alternating rounds; on this VM, whose speed drifts over seconds, `genfast bench` is the one to
quote for the cases marked interleaved (lstm_sample, rl, in_situ).
"""

from __future__ import annotations

import importlib

import pytest
import torch

from genfast.bench import BENCHES
from genfast.bench.core import benchmark_case


def pytest_addoption(parser):
    group = parser.getgroup("genfast benchmarks")
    group.addoption("--bench-quick", action="store_true", help="the benchmarks' small shapes (a smoke run)")
    group.addoption("--bench-device", default="cpu", choices=("cpu", "cuda"), help="device (default cpu)")
    group.addoption("--bench-rounds", type=int, default=10, help="timed rounds per benchmark (default 10)")


_CASES: dict[tuple, list] = {}


def _cases(op: str, config) -> list:
    device = torch.device(config.getoption("--bench-device"))
    key = (op, device.type, config.getoption("--bench-quick"))
    if key not in _CASES:
        if device.type == "cuda" and not torch.cuda.is_available():
            _CASES[key] = []
        else:
            bench = importlib.import_module(BENCHES[op])
            shapes = bench.QUICK_SHAPES if config.getoption("--bench-quick") else bench.DEFAULT_SHAPES
            _CASES[key] = bench.cases(device, shapes, compile=True)
    return _CASES[key]


def pytest_generate_tests(metafunc):
    if "bench_case" not in metafunc.fixturenames:
        return
    op = metafunc.module.OP
    if op not in BENCHES:
        raise pytest.UsageError(f"{metafunc.module.__name__}: OP = {op!r} is not one of {sorted(BENCHES)}")
    cases = _cases(op, metafunc.config)
    params = [(case, impl) for case in cases for impl in case.fns]
    ids = [f"{case.op}-{case.mode.replace(' ', '').replace(',', '-')}-{'x'.join(map(str, case.shape))}-{impl}"
           for case, impl in params]
    if not params:
        metafunc.parametrize("bench_case", [pytest.param(None, marks=pytest.mark.skip(
            reason=f"no {metafunc.config.getoption('--bench-device')} device"))], indirect=True)
        return
    metafunc.parametrize("bench_case", params, ids=ids, indirect=True)


@pytest.fixture
def bench_case(request):
    """A function of `benchmark` timing this test's (case, implementation)."""
    case, impl = request.param
    device = torch.device(request.config.getoption("--bench-device"))
    rounds = request.config.getoption("--bench-rounds")
    return lambda benchmark: benchmark_case(benchmark, case, impl, device, rounds=rounds)


def pytest_benchmark_update_machine_info(config, machine_info):
    from genfast import _native

    machine_info["torch"] = torch.__version__
    machine_info["torch_threads"] = torch.get_num_threads()
    machine_info["genfast_build"] = _native.build_info()


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Each benchmark's speed-up over the reference of its group (median against median)."""
    medians = {}
    for b in output_json["benchmarks"]:
        medians[(b["group"], b["extra_info"].get("impl"))] = b["stats"]["median"]
    for b in output_json["benchmarks"]:
        ref = medians.get((b["group"], "reference"))
        if ref:
            b["extra_info"]["speedup_vs_reference"] = ref / b["stats"]["median"]
