"""Character-LSTM sampling benchmark: `python benchmarks/bench_lstm_sample.py [genfast bench options]`.

The same as `genfast bench --op lstm_sample`: the usual Python sampling loop (oneDNN on and off, the
faster kept) vs CharLSTM.sample's one native call; hidden 256 and 512, batch 1, 32, 256, 400 tokens.
"""

import sys

from genfast.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "--op", "lstm_sample", *sys.argv[1:]]))
