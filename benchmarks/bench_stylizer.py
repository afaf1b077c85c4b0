"""Feed-forward stylizer benchmark: `python benchmarks/bench_stylizer.py [genfast bench options]`.

The same as `genfast bench --op stylizer`: genfast.style.TransformerNet vs the pytorch/examples
TransformerNet (genfast.reference.transformer_net), same weights, inference frames/s at 256^2 and
512^2, batch 1 and 4, one process, warm-up, median of many runs.
"""

import sys

from genfast.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "--op", "stylizer", *sys.argv[1:]]))
