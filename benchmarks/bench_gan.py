"""GAN steps at 28 x 28, batch 64: genfast layers vs plain torch.nn layers, in one process.

    python benchmarks/bench_gan.py [--threads N] [--repeat N] [--json PATH] [--profile] [--amp] [--ceiling]

Both sides are timed in alternating rounds (genfast.bench.core.time_interleaved, warm-up first,
median of the rounds). --profile prints torch.profiler's top operators for each side. --ceiling times
a third critic, the same one without instance norms, in the same rounds: torch.nn / that is the most
speed-up any instance norm could give the critic step.

Sample quality at equal wall-clock time (genfast.bench.gan_quality), Fashion-MNIST:

    python benchmarks/bench_gan.py --quality --classifier CLF.safetensors --data-root ../shared/data/fashion-mnist \
        [--steps N] [--seed S] [--out-dir out/gan/quality] [--json PATH]

trains genfast's default Fashion-MNIST recipe for its steps, then PyTorch-GAN's dcgan.py for the same
seconds, and reports each side's Fréchet distance to the test images and class coverage. The mean ± sd
table over seeds, from such reports:

    python benchmarks/bench_gan.py --quality-report out/gan/quality.json out/gan/quality_1.json ...
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
    p.add_argument("--amp", action="store_true", help="also time every step under autocast (bfloat16 on the CPU)")
    p.add_argument("--ceiling", action="store_true",
                   help="also time the critic step without instance norms (the bound on any norm's speed-up)")
    q = p.add_argument_group("sample quality at equal wall-clock time")
    q.add_argument("--quality", action="store_true")
    q.add_argument("--classifier", help="a Fashion-MNIST classifier (genfast adversarial train) for the features")
    q.add_argument("--data-root", default="../shared/data/fashion-mnist")
    q.add_argument("--steps", type=int, help="genfast's generator steps (default: the recipe's)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--num", type=int, default=10000)
    q.add_argument("--out-dir", default="out/gan/quality")
    q.add_argument("--quality-report", nargs="+", metavar="JSON",
                   help="print the mean ± sd table of earlier --quality --json reports (one per seed); run nothing")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.quality_report:
        quality_report(args.quality_report)
        return
    if args.quality:
        quality(args)
        return
    rows = []
    steps = gan.step_fns(args.batch, ceiling=args.ceiling)
    if args.amp:
        steps.update(gan.step_fns(args.batch, amp=True))
    for name, fns in steps.items():
        t = time_interleaved(fns, torch.device("cpu"), warmup=3, repeat=args.repeat, max_seconds=30.0)
        row = {"case": name, "threads": args.threads, "batch": args.batch, "genfast_ms": 1e3 * t["genfast"],
               "torch_ms": 1e3 * t["torch"], "speedup": t["torch"] / t["genfast"]}
        line = (f"{name:22s} genfast {row['genfast_ms']:8.2f} ms   torch.nn {row['torch_ms']:8.2f} ms   "
                f"speed-up {row['speedup']:.3f}x")
        if "no norm" in t:
            row.update(no_norm_ms=1e3 * t["no norm"], ceiling=t["torch"] / t["no norm"])
            line += f"   no norm {row['no_norm_ms']:8.2f} ms (ceiling {row['ceiling']:.3f}x)"
        rows.append(row)
        print(line, flush=True)
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


def quality(args) -> None:
    from genfast.bench.gan_quality import compare
    from genfast.checks import ArgumentError
    from genfast.gan.train import GANConfig
    from genfast.io import write_json
    from genfast.models.classifiers import load_classifier

    if not args.classifier:
        raise ArgumentError("classifier", "--quality needs --classifier (a Fashion-MNIST classifier file)")
    clf = load_classifier(args.classifier)
    report = compare(GANConfig(data="fashion-mnist", data_root=args.data_root, steps=args.steps, seed=args.seed),
                     clf, args.out_dir, num=args.num, seed=args.seed)
    report["classifier"] = args.classifier
    if args.json:
        write_json(args.json, report)


def quality_report(paths: list[str]) -> None:
    import json
    from pathlib import Path

    from genfast.bench.gan_quality import summarize
    from genfast.checks import ArgumentError

    reports = []
    for p in paths:
        try:
            reports.append(json.loads(Path(p).read_text()))
        except (OSError, ValueError) as e:
            raise ArgumentError("quality-report", f"a --quality --json report, readable JSON; {p}: {e}") from None
    print(summarize(reports))


if __name__ == "__main__":
    main()
