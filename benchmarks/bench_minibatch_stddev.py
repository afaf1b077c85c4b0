"""Benchmark `minibatch_stddev`: minibatch-stddev on StyleGAN-like discriminator feature maps: reference vs
torch.compile(reference) vs native, forward and forward+backward.

Part of the pytest-benchmark suite (`make bench`, or `pytest benchmarks/bench_minibatch_stddev.py --benchmark-only`;
the cases are genfast/bench/minibatch_stddev.py's, see conftest.py). As a script, `python benchmarks/bench_minibatch_stddev.py
[options]` is `genfast bench --op minibatch_stddev [options]`.
"""

from genfast.bench import script

OP = "minibatch_stddev"


def test_minibatch_stddev(bench_case, benchmark):
    bench_case(benchmark)


if __name__ == "__main__":
    script(OP)
