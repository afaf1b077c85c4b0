"""Benchmark `lstm_sample`: character-LSTM sampling, the usual Python sampling loop (oneDNN on and off, the
faster kept) vs CharLSTM.sample's one native call; hidden 256 and 512, batch 1, 32, 256, 400 tokens.

Part of the pytest-benchmark suite (`make bench`, or `pytest benchmarks/bench_lstm_sample.py --benchmark-only`;
the cases are genfast/bench/lstm_sample.py's, see conftest.py). As a script, `python benchmarks/bench_lstm_sample.py
[options]` is `genfast bench --op lstm_sample [options]`.
"""

from genfast.bench import script

OP = "lstm_sample"


def test_lstm_sample(bench_case, benchmark):
    bench_case(benchmark)


if __name__ == "__main__":
    script(OP)
