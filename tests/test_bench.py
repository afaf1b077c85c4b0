"""The benchmark harness measures what it says it measures."""

import json
import subprocess
import sys

import pytest
import torch

from genfast.bench import core, gram
from genfast.reference import gram as ref


def test_each_case_runs_its_own_shape():
    # every case must close over its own tensors (a late-binding closure would time the last shape)
    shapes = [(1, 3, 4, 5), (2, 6, 3, 3)]
    cases = gram.cases(torch.device("cpu"), shapes, compile=False)
    forward = [c for c in cases if c.mode == "forward"]
    assert [c.shape for c in forward] == shapes
    for case in forward:
        losses = {impl: fn() for impl, fn in case.fns.items()}
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(case.shape, generator=gen).relu_()
        t = ref.gram_matrix(torch.randn(case.shape, generator=gen).relu_())[:1]
        want = ref.style_loss(x, t)
        for impl, got in losses.items():
            torch.testing.assert_close(got, want, rtol=1e-5, atol=0, msg=f"{impl} on {case.shape}")


def test_time_fn_reports_a_median():
    calls = []
    t = core.time_fn(lambda: calls.append(1), torch.device("cpu"), warmup=2, repeat=5)
    assert len(calls) == 7 and t >= 0


@pytest.fixture
def fake_clock(monkeypatch):
    """(work, order): a clock that only work(name, seconds)'s functions advance, and the call order."""
    clock, order = [0.0], []
    monkeypatch.setattr(core.time, "perf_counter", lambda: clock[0])

    def work(name, seconds):
        def fn():
            order.append(name)
            clock[0] += seconds
        return fn
    return work, order


def test_time_interleaved_alternates_and_keeps_each_median(fake_clock):
    work, order = fake_clock     # "a" takes 1 s a call, "b" 3 s
    fns = {"a": work("a", 1.0), "b": work("b", 3.0)}
    t = core.time_interleaved(fns, torch.device("cpu"), warmup=1, repeat=4)
    assert order == ["a", "b"] + ["a", "b"] * 4 and t == {"a": 1.0, "b": 3.0}
    # a time budget (per implementation) ends the rounds early, but never before three
    order.clear()
    t = core.time_interleaved(fns, torch.device("cpu"), warmup=0, repeat=10, max_seconds=2.0)
    assert order == ["a", "b"] * 3 and t == {"a": 1.0, "b": 3.0}
    # rewarm: an untimed call of the same implementation right before each timed one
    order.clear()
    t = core.time_interleaved(fns, torch.device("cpu"), warmup=0, repeat=2, rewarm=True)
    assert order == ["a", "a", "b", "b"] * 2 and t == {"a": 1.0, "b": 3.0}


def test_bench_command_writes_json_and_png(tmp_path):
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    subprocess.run([sys.executable, "-m", "genfast", "bench", "--shape", "1,8,6,6", "--repeat", "1",
                    "--no-compile", "--quiet", "--json", str(out_json), "--plot", str(out_png)],
                   check=True, capture_output=True, text=True, timeout=300)
    data = json.loads(out_json.read_text())
    impls = {r["impl"] for r in data["results"]}
    assert "reference" in impls and "native" in impls
    assert data["machine_mm_gflops"] > 0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_rejects_a_bad_shape():
    proc = subprocess.run([sys.executable, "-m", "genfast", "bench", "--shape", "1,x,3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "shape" in proc.stderr


def test_bench_shape_sizes_are_the_ops():
    proc = subprocess.run([sys.executable, "-m", "genfast", "bench", "--op", "lstm_sample", "--shape", "1,8,6,6"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--shape for --op lstm_sample takes 2 sizes" in proc.stderr
    assert "got 1,8,6,6" in proc.stderr


def test_bench_lstm_sample_takes_batch_and_hidden(tmp_path):
    out_json = tmp_path / "b.json"
    subprocess.run([sys.executable, "-m", "genfast", "bench", "--op", "lstm_sample", "--shape", "2,16",
                    "--repeat", "1", "--quiet", "--json", str(out_json)],
                   check=True, capture_output=True, text=True, timeout=300)
    shapes = {tuple(r["shape"]) for r in json.loads(out_json.read_text())["results"]}
    assert shapes == {(2, 16)}


def test_time_interleaved_runs_setup_untimed_before_each_timed_call(fake_clock):
    work, order = fake_clock
    t = core.time_interleaved({"a": work("a", 1.0), "b": work("b", 3.0)}, torch.device("cpu"), warmup=1,
                              repeat=3, setup=work("setup", 100.0))
    assert order == ["a", "b"] + ["setup", "a", "setup", "b"] * 3
    assert t == {"a": 1.0, "b": 3.0}      # the setup's 100 s are in no timing


def test_in_situ_steps_differ_only_in_the_op():
    # the "in step" pair of each op runs the same step with the reference and the native op: same
    # result to rounding (so the time difference is the op's), and the "alone" pair replays that op
    from genfast.bench import in_situ

    torch.manual_seed(0)
    d = in_situ.Discriminator()
    x = torch.randn(8, 3, 32, 32)
    out = {}
    for impl in ("reference", "native"):
        d.mbstd.impl = impl
        d.zero_grad(set_to_none=True)
        y = d(x)
        y.sum().backward()
        out[impl] = (y.detach(), d.blocks[0].weight.grad.clone())
    torch.testing.assert_close(out["native"], out["reference"], rtol=1e-4, atol=1e-5)
    cases = in_situ.cases(torch.device("cpu"), [(8, 3, 32, 32)])
    assert [(c.op, c.mode) for c in cases] == [("minibatch_stddev", m) for m in ("alone, warm", "alone, cold", "in step")]
    assert cases[1].setup is not None and all(set(c.fns) == {"reference", "native"} for c in cases)


def test_benchmark_suite_groups_implementations_and_records_speedups(tmp_path):
    # `make bench` is pytest-benchmark over benchmarks/: one group per case, every implementation in
    # it, and each one's speed-up over the group's reference in the saved JSON
    out_json = tmp_path / "suite.json"
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "pytest", str(root / "benchmarks" / "bench_minibatch_stddev.py"),
                           "--bench-quick", "--bench-rounds", "2", "--benchmark-only", "-q", "-p", "no:cacheprovider",
                           f"--benchmark-json={out_json}"], capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out_json.read_text())
    groups: dict = {}
    for b in data["benchmarks"]:
        groups.setdefault(b["group"], {})[b["extra_info"]["impl"]] = b
    assert len(groups) == 4     # two quick shapes x forward, forward+backward
    for group, impls in groups.items():
        assert {"reference", "compiled-reference", "native"} <= set(impls), group
        ref_median = impls["reference"]["stats"]["median"]
        for b in impls.values():
            assert b["stats"]["rounds"] == 2
            assert abs(b["extra_info"]["speedup_vs_reference"] - ref_median / b["stats"]["median"]) < 1e-9
    assert "genfast_build" in data["machine_info"]


def test_mean_sd_keeps_infinite_runs_out_of_the_mean_and_counts_them():
    assert core.mean_sd([1.0, 2.0, 3.0], ".2f") == "2.00 ± 1.00"
    assert core.mean_sd([0.5], ".1f") == "0.5"
    assert core.mean_sd([1.0, 3.0, float("inf")], ".1f") == "2.0 ± 1.4 (∞ in 1 of 3)"
    assert core.mean_sd([float("inf")] * 2, ".1f") == "∞ in 2 of 2"
