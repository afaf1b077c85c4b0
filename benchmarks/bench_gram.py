"""Style loss / Gram matrix benchmark: `python benchmarks/bench_gram.py [genfast bench options]`.

The same as `genfast bench --op gram`: reference vs torch.compile(reference) vs native on the
VGG-19 style layers at 512x512, one process, warm-up, median of many runs.
"""

import sys

from genfast.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "--op", "gram", *sys.argv[1:]]))
