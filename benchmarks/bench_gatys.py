"""Benchmark `gatys`: one style-transfer iteration, the PyTorch tutorial's pattern vs genfast, VGG-19 and
EfficientNet-Lite0 at 256^2 and 512^2 (`genfast bench --op gatys` adds peak memory with and without tiles).

Part of the pytest-benchmark suite (`make bench`, or `pytest benchmarks/bench_gatys.py --benchmark-only`;
the cases are genfast/bench/gatys.py's, see conftest.py). As a script, `python benchmarks/bench_gatys.py
[options]` is `genfast bench --op gatys [options]`.
"""

from genfast.bench import script

OP = "gatys"


def test_gatys(bench_case, benchmark):
    bench_case(benchmark)


if __name__ == "__main__":
    script(OP)
