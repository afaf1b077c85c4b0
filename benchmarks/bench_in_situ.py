"""Benchmark `in_situ`: each op alone (warm and cold caches) and inside the step it belongs to (the style loss
in a Gatys iteration, instance norm in a stylizer forward, minibatch-stddev in a discriminator
forward + backward), reference vs native; see genfast/bench/in_situ.py.

Part of the pytest-benchmark suite (`make bench`, or `pytest benchmarks/bench_in_situ.py --benchmark-only`;
the cases are genfast/bench/in_situ.py's, see conftest.py). As a script, `python benchmarks/bench_in_situ.py
[options]` is `genfast bench --op in_situ [options]`.
"""

from genfast.bench import script

OP = "in_situ"


def test_in_situ(bench_case, benchmark):
    bench_case(benchmark)


if __name__ == "__main__":
    script(OP)
