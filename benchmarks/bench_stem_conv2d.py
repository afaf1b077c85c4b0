"""Benchmark `stem_conv2d`: a discriminator's first convolution on grey 28 x 28 and RGB 64 x 64 batches:
torch's conv2d vs torch.compile of it vs native, forward, forward+backward and the gradient penalty.

Part of the pytest-benchmark suite (`make bench`, or `pytest benchmarks/bench_stem_conv2d.py --benchmark-only`;
the cases are genfast/bench/stem_conv2d.py's, see conftest.py). As a script, `python benchmarks/bench_stem_conv2d.py
[options]` is `genfast bench --op stem_conv2d [options]`.
"""

from genfast.bench import script

OP = "stem_conv2d"


def test_stem_conv2d(bench_case, benchmark):
    bench_case(benchmark)


if __name__ == "__main__":
    script(OP)
