"""The mode-collapse table (issue 17, target 1): every countermeasure on ring8 and grid25, several seeds.

    python benchmarks/bench_gan_table.py --out out/gan/table.jsonl [--seeds 0-4] [--rows NAME,...] [--data ring8,grid25]
    python benchmarks/bench_gan_table.py --out out/gan/table.jsonl --report      # the mean ± sd table only

Each run is `train_gan` with the papers' settings for its loss (`recipe=False`), G 128x3, D 128x3,
batch 256, 3 000 generator steps — the CLI equivalent is
`genfast gan train --data D --no-recipe --g-hidden 128 --g-layers 3 --d-hidden 128 --d-layers 3 --steps 3000 [...]`
— plus genfast's recipe (`RECIPES[data]`). One line of JSON per finished run is appended to --out, and
runs already there are skipped, so an interrupted table resumes where it stopped. One thread per run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from genfast.bench.core import mean_sd
from genfast.gan.train import GANConfig, train_gan

#: the table's rows: name -> GANConfig overrides (None: the data's recipe)
BASE = {"recipe": False, "g_hidden": 128, "g_layers": 3, "d_hidden": 128, "d_layers": 3, "steps": 3000,
        "batch_size": 256}
ROWS = {
    "GAN (non-saturating)": {},
    "+ minibatch stddev 4": {"minibatch_stddev": 4},
    "+ minibatch discrimination 16": {"minibatch_disc": 16},
    "PacGAN-2": {"pack": 2},
    "PacGAN-4": {"pack": 4},
    "WGAN": {"loss": "wgan"},
    "WGAN-GP": {"loss": "wgan-gp"},
    "genfast recipe": None,
}
#: PacGAN Table 1 (10 trials): modes / % HQ / rev-KL
PUBLISHED = {("ring8", "GAN (non-saturating)"): "6.3 / 98.2 % / 0.45",
             ("ring8", "PacGAN-4"): "7.8 / 95.9 % / 0.07",
             ("grid25", "GAN (non-saturating)"): "17.3 / 94.8 % / 0.70",
             ("grid25", "PacGAN-4"): "24.8 / 93.6 % / 0.04"}


def config(data: str, row: str, seed: int) -> GANConfig:
    over = ROWS[row]
    if over is None:
        return GANConfig(data=data, seed=seed)
    return GANConfig(data=data, seed=seed, **{**BASE, **over})


def run(data: str, row: str, seed: int) -> dict:
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = train_gan(config(data, row, seed), Path(d) / "G.safetensors", resume=False, progress=False,
                      log_every=1000, checkpoint_path=Path(d) / "ck.pt")
    m = r.info["mixture"]
    return {"data": data, "row": row, "seed": seed, "modes": m["modes"], "hq": m["high_quality"],
            "rkl": m["reverse_kl"], "sec": round(time.perf_counter() - t, 1)}


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def report(lines: list[dict]) -> str:
    out = ["| data | configuration | seeds | modes, mean ± sd (min) | % HQ, mean ± sd | rev-KL, mean ± sd | "
           "s per run | published (PacGAN Table 1, 10 trials) |", "|---|---|---|---|---|---|---|---|"]
    for data in ("ring8", "grid25"):
        for row in ROWS:
            rs = [r for r in lines if r["data"] == data and r["row"] == row]
            if not rs:
                continue
            modes = [r["modes"] for r in rs]
            out.append(f"| {data} | {row} | {len(rs)} | {mean_sd(modes, '.1f')} ({min(modes)}) | "
                       f"{mean_sd([100 * r['hq'] for r in rs], '.1f')} | {mean_sd([r['rkl'] for r in rs], '.3f')} | "
                       f"{statistics.mean(r['sec'] for r in rs):.0f} | {PUBLISHED.get((data, row), '')} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="a JSON-lines file; finished runs are appended, and skipped on a rerun")
    p.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,2")
    p.add_argument("--data", default="ring8,grid25")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of: {', '.join(ROWS)}")
    p.add_argument("--report", action="store_true", help="print the table from --out and run nothing")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    done = [json.loads(s) for s in out.read_text().splitlines() if s.strip()] if out.exists() else []
    if not args.report:
        rows = [r.strip() for r in args.rows.split(",")]
        for r in rows:
            if r not in ROWS:
                raise SystemExit(f"--rows: expected names from {', '.join(ROWS)}, got {r!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        have = {(r["data"], r["row"], r["seed"]) for r in done}
        for seed in _seeds(args.seeds):
            for data in args.data.split(","):
                for row in rows:
                    if (data, row, seed) in have:
                        continue
                    line = run(data, row, seed)
                    print(json.dumps(line), flush=True)
                    with out.open("a") as f:
                        f.write(json.dumps(line) + "\n")
                    done.append(line)
    print(report(done))


if __name__ == "__main__":
    main()
