"""GAN sample quality at equal wall-clock time: genfast's Fashion-MNIST recipe vs the plain DCGAN of
PyTorch-GAN (genfast.gan.reference), in one process (issue 17, target 2).

1. genfast trains with `train_gan` for the config's steps; its wall-clock time T counts everything the
   call does (loading the data, checkpoints, the sample sheet, saving the generator).
2. the baseline (reference.train_plain) then trains for the same T seconds, all of them in its loop.
3. both draw `num` samples from a fixed seed; each side's Fréchet distance to the real test images and
   its class coverage are measured in one classifier's feature space (genfast.gan.metrics).

The thread count is the caller's (torch.set_num_threads) and is the same for both sides.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch

from genfast.gan import reference
from genfast.gan.data import load_images, to_unit
from genfast.gan.metrics import class_coverage, frechet_distance
from genfast.gan.sample import sample
from genfast.gan.train import GANConfig, train_gan


def compare(config: GANConfig, classifier: torch.nn.Module, out_dir, *, num: int = 10000, seed: int = 0,
            log=print) -> dict:
    """Train both sides at equal wall-clock time and measure them; sample sheets (64 each) and the
    genfast generator go to out_dir. Returns the report (JSON-ready)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from genfast import io

    result = train_gan(config, out_dir / "genfast_G.safetensors", resume=False, progress=log is not None)
    seconds = result.seconds
    if log:
        log(f"genfast: {result.steps} steps in {seconds:.0f} s; baseline gets the same {seconds:.0f} s")
    c = GANConfig(**result.info["config"])
    images, _ = load_images(c.data, root=c.data_root, limit=c.limit)
    t0 = time.perf_counter()
    G_plain, plain_steps = reference.train_plain(images, seconds, seed=seed, log=log)
    plain_seconds = time.perf_counter() - t0
    del images

    real, _ = load_images(c.data, root=c.data_root, split="test")
    real = to_unit(real)
    sides = {"genfast": to_unit(sample(result.model, num, seed=seed)),
             "baseline": to_unit(reference.sample_plain(G_plain, num, seed=seed))}
    report = {"data": c.data, "num_samples": num, "real_samples": len(real), "threads": torch.get_num_threads(),
              "genfast": {"config": asdict(c), "steps": result.steps, "seconds": seconds,
                          "images_seen": result.steps * c.batch_size * (1 + c.k)},
              "baseline": {"name": "PyTorch-GAN dcgan.py (genfast.gan.reference)", "steps": plain_steps,
                           "seconds": plain_seconds, "images_seen": plain_steps * 64 * 2}}
    for side, fake in sides.items():
        report[side]["frechet_distance"] = frechet_distance(real, fake, classifier)
        report[side]["class_coverage"] = class_coverage(fake, classifier)
        io.save_image_grid(fake[:64], out_dir / f"{side}_samples.png", nrow=8, scale=2)
        if log:
            cov = report[side]["class_coverage"]
            log(f"{side}: FD {report[side]['frechet_distance']:.2f}, classes present {cov['classes_present']}, "
                f"in 5-15 % {cov['classes_in_band']}, KL to uniform {cov['kl_to_uniform']:.3f}")
    # the floor: real training images against the real test images, the same number as the samples
    train, _ = load_images(c.data, root=c.data_root, limit=num)
    report["real_train"] = {"frechet_distance": frechet_distance(real, to_unit(train), classifier),
                            "class_coverage": class_coverage(to_unit(train), classifier)}
    return report


def _span(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def summarize(reports: list[dict]) -> str:
    """The comparisons of several seeds (compare's reports) as a markdown table: one row per seed and
    side, then each side's mean ± sd, and how many seeds meet the target (genfast's Fréchet distance and
    KL to uniform lower than the baseline's, all 10 classes within 5-15 % of genfast's samples)."""
    from genfast.bench.core import mean_sd

    head = ["| seed | side | steps | seconds | Fréchet distance | classes within 5-15 % | smallest / largest share "
            "| KL to uniform |", "|---|---|---|---|---|---|---|---|"]
    rows, met = [], 0
    for r in sorted(reports, key=lambda r: r["genfast"]["config"]["seed"]):
        seed = r["genfast"]["config"]["seed"]
        for side in ("genfast", "baseline"):
            s, cov = r[side], r[side]["class_coverage"]
            rows.append(f"| {seed} | {side} | {s['steps']} | {s['seconds']:.0f} | {s['frechet_distance']:.2f} | "
                        f"{cov['classes_in_band']} | {100 * min(cov['shares']):.1f} % / {100 * max(cov['shares']):.1f} % "
                        f"| {cov['kl_to_uniform']:.3f} |")
        g, b = r["genfast"], r["baseline"]
        met += (g["frechet_distance"] < b["frechet_distance"]
                and g["class_coverage"]["kl_to_uniform"] < b["class_coverage"]["kl_to_uniform"]
                and g["class_coverage"]["classes_in_band"] == len(g["class_coverage"]["shares"]))
    for side in ("genfast", "baseline"):
        vals = [r[side] for r in reports]
        rows.append(f"| **{len(reports)} seeds** | **{side}** | {mean_sd([v['steps'] for v in vals], '.0f')} | "
                    f"{mean_sd([v['seconds'] for v in vals], '.0f')} | "
                    f"**{mean_sd([v['frechet_distance'] for v in vals], '.1f')}** | "
                    f"{_span([v['class_coverage']['classes_in_band'] for v in vals])} | "
                    f"{100 * min(min(v['class_coverage']['shares']) for v in vals):.1f} % / "
                    f"{100 * max(max(v['class_coverage']['shares']) for v in vals):.1f} % (over all seeds) | "
                    f"**{mean_sd([v['class_coverage']['kl_to_uniform'] for v in vals], '.3f')}** |")
    return "\n".join(head + rows + ["", f"Seeds meeting the target: {met} of {len(reports)}."])


__all__ = ["compare", "summarize"]
