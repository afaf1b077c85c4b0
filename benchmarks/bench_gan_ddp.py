"""GAN training throughput under torchrun: 1 process vs 2 gloo processes (issue 17, target 3).

    python benchmarks/bench_gan_ddp.py [--data fashion-mnist] [--data-root DIR] [--steps N] [--json PATH]

Runs `train_gan` three ways, each in fresh processes: one process on 1 thread, one process on 2 threads,
and `torchrun --standalone --nproc_per_node=2` with 1 thread per process (each rank draws its own batch
of batch_size, so one step of the pair trains on twice the images). Steps/s are timed from the
generator-step callback between step `--warmup` and the last step (start-up, data loading and the final
save are outside it). Scaling efficiency = images/s of the pair / (2 x images/s of one 1-thread process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from genfast.gan.train import GANConfig, train_gan
    from genfast.training import distributed

    stamps = {}

    def callback(step, values):
        if step in (args.warmup, args.steps):
            stamps[step] = time.perf_counter()

    out = Path(args.out)
    r = train_gan(GANConfig(data=args.data, data_root=args.data_root, steps=args.steps, checkpoint_every=0,
                            seed=0), out, progress=False, resume=False, callback=callback)
    rank, world = distributed.env()[:2]
    if rank == 0:
        c = r.info["config"]
        seconds = stamps[args.steps] - stamps[args.warmup]
        steps = args.steps - args.warmup
        Path(args.report).write_text(json.dumps({
            "world": world, "threads": args.threads, "steps_per_s": steps / seconds,
            "images_per_s": steps * c["batch_size"] * (1 + c["k"]) * world / seconds, "batch_per_rank": c["batch_size"]}))


def run(cmd, env) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        proc = subprocess.run(cmd + ["--out", str(Path(tmp) / "g.safetensors"), "--report", str(report)],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        return json.loads(report.read_text())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--data-root", default="../shared/data/fashion-mnist")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--report", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not 0 < args.warmup < args.steps:
        sys.exit(f"--warmup: expected 0 < warmup < steps ({args.steps}), got {args.warmup}")
    if args.worker:
        worker(args)
        return
    torchrun = Path(sys.executable).with_name("torchrun")
    torchrun = str(torchrun) if torchrun.exists() else shutil.which("torchrun")
    if torchrun is None:
        sys.exit("torchrun: not found next to this python or on PATH")
    base = [__file__, "--worker", "--data", args.data, "--data-root", args.data_root, "--steps", str(args.steps),
            "--warmup", str(args.warmup)]
    rows = {}
    for name, cmd, threads in (("1 process, 1 thread", [sys.executable] + base, 1),
                               ("1 process, 2 threads", [sys.executable] + base, 2),
                               ("torchrun 2 x 1 thread", [torchrun, "--standalone", "--nproc_per_node=2"] + base, 1)):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        rows[name] = run(cmd + ["--threads", str(threads)], env)
        print(f"{name:24s} {rows[name]['steps_per_s']:6.2f} steps/s  {rows[name]['images_per_s']:8.1f} images/s",
              flush=True)
    one = rows["1 process, 1 thread"]["images_per_s"]
    eff = rows["torchrun 2 x 1 thread"]["images_per_s"] / (2 * one)
    print(f"scaling efficiency of the pair: {eff:.2f}  (2 threads in one process: "
          f"{rows['1 process, 2 threads']['images_per_s'] / (2 * one):.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "efficiency": eff}, indent=1))


if __name__ == "__main__":
    main()
