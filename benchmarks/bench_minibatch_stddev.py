"""Minibatch-stddev benchmark: `python benchmarks/bench_minibatch_stddev.py [genfast bench options]`,
the same as `genfast bench --op minibatch_stddev`."""

import sys

from genfast.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "--op", "minibatch_stddev", *sys.argv[1:]]))
