"""GAN steps at 28 x 28, batch 64: genfast layers vs plain torch.nn layers, in one process.

    python benchmarks/bench_gan.py [--threads N] [--repeat N] [--json PATH] [--profile]

Both sides are timed in alternating rounds (genfast.bench.core.time_interleaved, warm-up first,
median of the rounds). --profile prints torch.profiler's top operators for each side.
"""

from __future__ import annotations

import argparse

import torch

from genfast.bench import gan
from genfast.bench.core import time_interleaved


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--json")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, fns in gan.cases(args.batch).items():
        t = time_interleaved(fns, torch.device("cpu"), warmup=3, repeat=args.repeat, max_seconds=30.0)
        rows.append({"case": name, "threads": args.threads, "batch": args.batch, "genfast_ms": 1e3 * t["genfast"],
                     "torch_ms": 1e3 * t["torch"], "speedup": t["torch"] / t["genfast"]})
        print(f"{name:22s} genfast {1e3 * t['genfast']:8.2f} ms   torch.nn {1e3 * t['torch']:8.2f} ms   "
              f"speed-up {t['torch'] / t['genfast']:.2f}x", flush=True)
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            for side, fn in fns.items():
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    for _ in range(5):
                        fn()
                print(f"--- {name}, {side}")
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    if args.json:
        from genfast.io import write_json

        write_json(args.json, rows)


if __name__ == "__main__":
    main()
