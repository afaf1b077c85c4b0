"""Benchmark `gram`: the style loss / Gram matrix: reference vs torch.compile(reference) vs native on the
VGG-19 style layers at 512x512, forward and forward+backward.

Part of the pytest-benchmark suite (`make bench`, or `pytest benchmarks/bench_gram.py --benchmark-only`;
the cases are genfast/bench/gram.py's, see conftest.py). As a script, `python benchmarks/bench_gram.py
[options]` is `genfast bench --op gram [options]`.
"""

from genfast.bench import script

OP = "gram"


def test_gram(bench_case, benchmark):
    bench_case(benchmark)


if __name__ == "__main__":
    script(OP)
