"""Benchmark `stylizer`: feed-forward stylizer inference, genfast.style.TransformerNet vs the pytorch/examples
TransformerNet (genfast.reference.transformer_net), same weights, 256^2 and 512^2, batch 1 and 4.

Part of the pytest-benchmark suite (`make bench`, or `pytest benchmarks/bench_stylizer.py --benchmark-only`;
the cases are genfast/bench/stylizer.py's, see conftest.py). As a script, `python benchmarks/bench_stylizer.py
[options]` is `genfast bench --op stylizer [options]`.
"""

from genfast.bench import script

OP = "stylizer"


def test_stylizer(bench_case, benchmark):
    bench_case(benchmark)


if __name__ == "__main__":
    script(OP)
