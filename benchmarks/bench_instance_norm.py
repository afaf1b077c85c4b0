"""Benchmark `instance_norm`: instance norm + ReLU: torch.nn.InstanceNorm2d(affine=True) + ReLU vs torch.compile of
it vs genfast's fused op, forward and forward+backward, GB/s beside the machine's copy bandwidth.

Part of the pytest-benchmark suite (`make bench`, or `pytest benchmarks/bench_instance_norm.py --benchmark-only`;
the cases are genfast/bench/instance_norm.py's, see conftest.py). As a script, `python benchmarks/bench_instance_norm.py
[options]` is `genfast bench --op instance_norm [options]`.
"""

from genfast.bench import script

OP = "instance_norm"


def test_instance_norm(bench_case, benchmark):
    bench_case(benchmark)


if __name__ == "__main__":
    script(OP)
