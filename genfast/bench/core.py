"""Timing helpers and the result table shared by every benchmark."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from typing import Callable

import torch

from genfast.io import save_figure


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], object], device: torch.device, *, warmup: int = 2, repeat: int = 10,
            max_seconds: float = 10.0) -> float:
    """Median wall time of fn() in seconds: `warmup` untimed calls, then up to `repeat` timed ones
    (fewer when they would take longer than `max_seconds`, but at least 3)."""
    return time_interleaved({"fn": fn}, device, warmup=warmup, repeat=repeat, max_seconds=max_seconds)["fn"]


def time_interleaved(fns: dict[str, Callable[[], object]], device: torch.device, *, warmup: int = 2,
                     repeat: int = 10, max_seconds: float = 10.0, rewarm: bool = False,
                     setup: Callable[[], object] | None = None) -> dict[str, float]:
    """Median wall time of each fn() in seconds, the timed calls taken in rounds (one call of each
    implementation per round), so that every implementation is timed under the same machine state
    when that state drifts (a VM whose speed changes over seconds). `warmup` untimed calls of each
    first; then up to `repeat` rounds (fewer when they would take longer than `max_seconds` per
    implementation, but at least 3). With `rewarm`, each timed call follows an untimed call of the
    same fn, so that it runs warm, as in time_fn's back-to-back series, rather than right after the
    other implementations (a short native call after a long Python loop finds its worker threads
    asleep and the other core idle: ~3% slower for lstm_sample at B = 1). `setup`, when given, runs
    untimed right before every timed call (after any rewarm): genfast.bench.in_situ uses it to time
    an op with cold caches."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < repeat and (rounds < 3 or time.perf_counter() - start < max_seconds * len(fns)):
        for name, fn in fns.items():
            if rewarm:
                fn()
                _sync(device)
            if setup is not None:
                setup()
                _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    return {name: statistics.median(ts) for name, ts in times.items()}


def mean_sd(values: list[float], fmt: str) -> str:
    """"mean ± sd" of runs over seeds (one run: its value alone); runs with an infinite value (a
    rev-KL when no sample is high quality) are counted apart and left out of the mean."""
    finite = [v for v in values if math.isfinite(v)]
    inf = f" (∞ in {len(values) - len(finite)} of {len(values)})" if len(finite) < len(values) else ""
    if not finite:
        return f"∞ in {len(values)} of {len(values)}"
    if len(finite) == 1:
        return format(finite[0], fmt) + inf
    return f"{format(statistics.mean(finite), fmt)} ± {format(statistics.stdev(finite), fmt)}" + inf


def machine_mm_gflops(device: torch.device, size: int = 1024, repeat: int = 10) -> float:
    """What this machine's torch.mm achieves on a float32 size^3 product, in GFLOP/s."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    t = time_fn(lambda: torch.mm(a, b), device, warmup=2, repeat=repeat)
    return 2 * size**3 / t / 1e9


def machine_copy_gbps(device: torch.device, numel: int = 1 << 25, repeat: int = 10) -> float:
    """Copy bandwidth (read + write) of a float32 tensor copy, in GB/s."""
    src = torch.randn(numel, device=device)
    dst = torch.empty_like(src)
    t = time_fn(lambda: dst.copy_(src), device, warmup=2, repeat=repeat)
    return 2 * src.numel() * src.element_size() / t / 1e9


@dataclasses.dataclass
class Case:
    """One benchmark case: the same computation in several implementations."""

    op: str
    shape: tuple
    mode: str  # "forward" or "forward+backward"
    fns: dict[str, Callable[[], object]]  # implementation name -> callable
    interleave: bool = False  # time the implementations in alternating rounds (time_interleaved, rewarm)
    setup: Callable[[], object] | None = None  # untimed, before every timed call (time_interleaved's setup)
    flops: float = 0.0  # per call, for GFLOP/s (0: not reported)
    bytes: float = 0.0  # per call, for GB/s (0: not reported)


@dataclasses.dataclass
class Result:
    op: str
    shape: tuple
    mode: str
    impl: str
    ms: float
    speedup: float  # vs the "reference" implementation of the same case
    gflops: float | None
    gbps: float | None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_cases(cases: list[Case], device: torch.device, *, repeat: int = 10, progress=None) -> list[Result]:
    results: list[Result] = []
    for case in cases:
        if case.interleave:
            if progress is not None:
                progress(f"{case.op} {case.mode} {tuple(case.shape)} {' / '.join(case.fns)} (interleaved)")
            times = time_interleaved(case.fns, device, repeat=repeat, rewarm=case.setup is None, setup=case.setup)
        else:
            times = {}
            for impl, fn in case.fns.items():
                if progress is not None:
                    progress(f"{case.op} {case.mode} {tuple(case.shape)} {impl}")
                times[impl] = time_interleaved({impl: fn}, device, repeat=repeat, setup=case.setup)[impl]
        base = times.get("reference")
        for impl, t in times.items():
            results.append(Result(
                op=case.op, shape=tuple(case.shape), mode=case.mode, impl=impl, ms=t * 1e3,
                speedup=(base / t) if base else float("nan"),
                gflops=case.flops / t / 1e9 if case.flops else None,
                gbps=case.bytes / t / 1e9 if case.bytes else None))
    return results


def format_table(results: list[Result]) -> str:
    head = f"{'op':<12} {'mode':<17} {'shape':<20} {'impl':<18} {'ms':>9} {'x ref':>7} {'GFLOP/s':>8} {'GB/s':>7}"
    lines = [head, "-" * len(head)]
    for r in results:
        gf = f"{r.gflops:8.1f}" if r.gflops is not None else f"{'':>8}"
        gb = f"{r.gbps:7.1f}" if r.gbps is not None else f"{'':>7}"
        lines.append(f"{r.op:<12} {r.mode:<17} {str(r.shape):<20} {r.impl:<18} {r.ms:9.2f} {r.speedup:7.2f} {gf} {gb}")
    return "\n".join(lines)


def totals(results: list[Result]) -> dict[tuple[str, str, str], float]:
    """Summed milliseconds per (op, mode, impl) over all shapes."""
    out: dict[tuple[str, str, str], float] = {}
    for r in results:
        key = (r.op, r.mode, r.impl)
        out[key] = out.get(key, 0.0) + r.ms
    return out


def summarize(results: list[Result]) -> list[dict]:
    """Per (op, mode): every implementation's summed time over shapes against the reference's."""
    tot = totals(results)
    rows = []
    for (op, mode, impl), ms in tot.items():
        base = tot.get((op, mode, "reference"))
        if impl != "reference" and base:
            rows.append({"op": op, "mode": mode, "impl": impl, "reference_ms": base, "ms": ms, "speedup": base / ms})
    return rows


def plot(results: list[Result], path: str, title: str) -> None:
    """Bar chart of speed-up over the reference, one group per (mode, shape)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = []
    for r in results:
        key = (r.op, r.mode, r.shape)
        if key not in groups:
            groups.append(key)
    impls = []
    for r in results:
        if r.impl not in impls:
            impls.append(r.impl)
    width = 0.8 / max(1, len(impls))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups)), 4.5))
    for k, impl in enumerate(impls):
        xs, ys = [], []
        for g, key in enumerate(groups):
            for r in results:
                if (r.op, r.mode, r.shape) == key and r.impl == impl:
                    xs.append(g + (k - (len(impls) - 1) / 2) * width)
                    ys.append(r.speedup)
        ax.bar(xs, ys, width, label=impl)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{m}\n{'x'.join(map(str, s))}" for _, m, s in groups], fontsize=7)
    ax.set_ylabel("speed-up over the PyTorch reference")
    ax.set_title(title)
    ax.legend()
    save_figure(fig, path, dpi=120)


def benchmark_case(benchmark, case: Case, impl: str, device: torch.device, *, rounds: int = 10,
                   warmup: int = 2) -> None:
    """Time `case.fns[impl]` with pytest-benchmark's `benchmark` fixture (benchmarks/conftest.py):
    `warmup` untimed calls, then `rounds` timed ones, each after `case.setup` (untimed) when the case
    has one, synchronising the device around each call. The implementations of one case share a
    group, so the suite's table puts them side by side."""
    fn = case.fns[impl]

    def call():
        fn()
        _sync(device)

    def setup():
        case.setup()
        _sync(device)

    benchmark.group = f"{case.op} {case.mode} {'x'.join(map(str, case.shape))}"
    benchmark.extra_info.update(op=case.op, mode=case.mode, shape=list(case.shape), impl=impl)
    if case.flops:
        benchmark.extra_info["flops"] = case.flops
    if case.bytes:
        benchmark.extra_info["bytes"] = case.bytes
    benchmark.pedantic(call, setup=setup if case.setup is not None else None, rounds=rounds,
                       warmup_rounds=warmup, iterations=1)
