"""DeepDream benchmarks: `python benchmarks/bench_dream.py [--shapes 512 1024] [--memory [--memory-only]] [--patches N]`.

One DeepDream step, the plain full-network way vs genfast (interleaved rounds, one process, 2 threads),
with the two sides' images after 3 steps compared; a profile of genfast's step; with --memory the peak
resident memory of a 2048^2 gradient untiled and tiled (fresh processes); with --patches N the
throughput of top_patches over N images vs a plain forward pass of the truncated network.
"""

import argparse
import json
import tempfile

import torch

from genfast.bench import core
from genfast.bench import dream as bench

OP = "dream"     # in the pytest-benchmark suite (`make bench`; see conftest.py)


def test_dream(bench_case, benchmark):
    bench_case(benchmark)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--memory", action="store_true")
    p.add_argument("--patches", type=int, default=0, metavar="N")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--memory-only", action="store_true", help="with --memory: skip the step timings")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    print(f"torch {torch.__version__}; threads {torch.get_num_threads()}; layers {bench.LAYERS}", flush=True)
    shapes = [(1, 3, s, s) for s in args.shapes]
    if args.memory and args.memory_only:
        memory(args)
        return
    results = core.run_cases(bench.cases(device, shapes), device, repeat=args.repeat)
    print(core.format_table(results), flush=True)
    net = bench.network()
    for shape in shapes:
        print(f"{shape[-1]}^2 plain vs genfast (first gradient; images after 3 steps): "
              + json.dumps(bench.agreement(net, shape)), flush=True)
    if not args.no_profile:
        print(bench.profile((1, 3, args.shapes[0], args.shapes[0])), flush=True)
    if args.memory:
        memory(args)
    if args.patches:
        with tempfile.TemporaryDirectory() as tmp:
            bench.make_folder(tmp, args.patches)
            print("top_patches:", json.dumps(bench.patches_throughput(tmp)), flush=True)


def memory(args) -> None:
    """Peak memory of a 2048^2 gradient: untiled, tiled with the exact halo (the receptive field),
    and tiled with a 32 px halo (equal to the untiled gradient away from the tile borders; the
    jitter roll moves the borders every step). Ratios against the untiled run: the whole process's
    peak, and what the gradient adds above the baseline (Python, torch, the network, the image)."""
    untiled = None
    for tile, halo in ((None, None), (512, None), (256, None), (512, 32), (256, 32)):
        m = bench.peak_memory(2048, tile, halo, threads=args.threads)
        m["added_mb"] = m["peak_mb"] - m["baseline_mb"]
        if untiled is None:
            untiled = m
        else:
            m["whole_ratio"] = round(m["peak_mb"] / untiled["peak_mb"], 3)
            m["added_ratio"] = round(m["added_mb"] / untiled["added_mb"], 3)
        name = "untiled" if tile is None else f"tile {tile}, halo {'receptive field' if halo is None else halo}"
        print(f"2048^2 {name}: " + json.dumps(m), flush=True)


if __name__ == "__main__":
    main()
