"""Instance norm + ReLU benchmark: `python benchmarks/bench_instance_norm.py [genfast bench options]`.

The same as `genfast bench --op instance_norm`: torch.nn.InstanceNorm2d(affine=True) + ReLU vs
torch.compile of it vs genfast's fused op, forward and forward+backward, one process, warm-up,
median of many runs, GB/s beside the machine's copy bandwidth.
"""

import sys

from genfast.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "--op", "instance_norm", *sys.argv[1:]]))
