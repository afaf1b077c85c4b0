"""Gatys end-to-end benchmark: `python benchmarks/bench_gatys.py [genfast bench options]`.

The same as `genfast bench --op gatys`: one style-transfer iteration, the PyTorch tutorial's pattern vs
genfast, VGG-19 and EfficientNet-Lite0 at 256^2 and 512^2, plus peak memory with and without tiles.
"""

import sys

from genfast.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "--op", "gatys", *sys.argv[1:]]))
