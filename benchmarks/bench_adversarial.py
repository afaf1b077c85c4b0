"""The FGSM epsilon sweep over a test set: the PyTorch tutorial's loop vs the batched sweep, in one
process, with a check that both give the same accuracies.

    python benchmarks/bench_adversarial.py --model out/adv/lenet.safetensors --data ../shared/data/fashion-mnist
    python benchmarks/bench_adversarial.py --model M --data D --limit 2000 --rounds 1    # a subset

Each side is timed `--rounds` times in alternating rounds after one warm-up call on 100 images; the
medians and their ratio are printed, with the accuracy table of each side.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from genfast import adversarial
from genfast.adversarial.data import as_float
from genfast.bench.adversarial import sweep_fns
from genfast.io import write_json

OP = "adversarial"   # genfast/bench/adversarial.py's cases (random weights) in the pytest-benchmark suite


def test_adversarial(bench_case, benchmark):
    bench_case(benchmark)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a classifier from `genfast adversarial train`")
    p.add_argument("--data", required=True, help="an MNIST-format IDX folder (its test split is used)")
    p.add_argument("--limit", type=int, help="the first N test images only (default: all)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the numbers as JSON")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    model = adversarial.load_classifier(args.model)
    images, labels, _ = adversarial.labelled_images(args.data, "test", limit=args.limit)
    x = as_float(images)
    warm = sweep_fns(model, x[:100], labels[:100])
    for fn in warm.values():
        fn()
    fns = sweep_fns(model, x, labels)
    times = {name: [] for name in fns}
    results = {}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ref, fast = results["reference"], results["batched"]
    print(f"{args.model} on {len(x)} test images of {args.data}, {torch.get_num_threads()} threads, "
          f"{args.rounds} round(s)")
    print(f"{'epsilon':>8} {'tutorial loop':>14} {'batched':>9}")
    for e, a, b in zip(ref.epsilons, ref.accuracy, fast.accuracy):
        print(f"{e:>8.3g} {a:>14.2%} {b:>9.2%}")
    same = ref.correct == fast.correct
    print(f"identical accuracies: {'yes' if same else 'NO'} (correct counts {ref.correct} vs {fast.correct})")
    print(f"tutorial loop {med['reference']:.2f} s, batched {med['batched']:.3f} s: "
          f"{med['reference'] / med['batched']:.1f}x faster")
    if args.json:
        write_json(args.json, {"n": len(x), "epsilons": ref.epsilons, "reference": ref.accuracy,
                               "batched": fast.accuracy, "identical": same, "seconds": med, "times": times,
                               "speedup": med["reference"] / med["batched"]})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
