"""genfast.gan.reference: the plain PyTorch-GAN-style DCGAN the Fashion-MNIST target is measured
against — its shapes, its wall-clock budget and that its steps train; the equal-time comparison
(genfast.bench.gan_quality) and `genfast bench --op gan`."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from genfast.bench.gan_quality import compare, summarize
from genfast.gan import reference
from genfast.gan.train import GANConfig
from genfast.models.classifiers import classifier
from helpers import shared


def test_networks_have_pytorch_gans_shapes():
    torch.manual_seed(0)
    G, D = reference.Generator(), reference.Discriminator()
    x = G(torch.randn(5, reference.LATENT))
    assert x.shape == (5, 1, 32, 32) and x.abs().max() <= 1
    p = D(x)
    assert p.shape == (5, 1) and ((p > 0) & (p < 1)).all()
    assert reference.resize(torch.zeros(2, 1, 28, 28)).shape == (2, 1, 32, 32)


def test_the_budget_stops_the_loop_and_the_steps_move_the_generator():
    images = torch.rand(96, 1, 28, 28) * 2 - 1
    G0, steps0 = reference.train_plain(images, 0.0, log=None)
    assert steps0 == 0
    G, steps = reference.train_plain(images, 1.0, log=None)
    assert steps >= 1
    before, after = reference.sample_plain(G0, 8), reference.sample_plain(G, 8)
    assert before.shape == after.shape == (8, 1, 32, 32)
    assert not torch.equal(before, after)       # same seed, same initial weights: the steps changed G


@pytest.mark.filterwarnings("ignore:step .* may be collapsing")       # 3 steps of a 4-channel G
def test_the_quality_comparison_gives_both_sides_the_same_time(tmp_path):
    """genfast.bench.gan_quality.compare on a tiny run: the baseline trains at least as long as
    genfast took, both sides are measured in the same feature space, and the sample sheets exist."""
    root = shared("fashion-mnist")
    torch.manual_seed(0)
    clf = classifier("lenet").eval()
    r = compare(GANConfig(data="fashion-mnist", data_root=str(root), width=4, z_dim=8, limit=64, batch_size=16,
                          steps=3), clf, tmp_path, num=40, log=None)
    assert r["genfast"]["steps"] == 3 and r["baseline"]["seconds"] >= r["genfast"]["seconds"]
    for side in ("genfast", "baseline", "real_train"):
        assert r[side]["frechet_distance"] >= 0 and r[side]["class_coverage"]["samples"] == 40
        if side != "real_train":
            assert (tmp_path / f"{side}_samples.png").stat().st_size > 0
    assert r["real_samples"] == 10000


def test_genfast_bench_times_both_gan_steps(tmp_path):
    out = tmp_path / "b.json"
    subprocess.run([sys.executable, "-m", "genfast", "bench", "--op", "gan", "--shape", "4", "--repeat", "1",
                    "--quiet", "--json", str(out)], check=True, capture_output=True, text=True, timeout=300,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    rows = json.loads(out.read_text())["results"]
    assert {(r["op"], r["impl"]) for r in rows} == {(op, impl) for op in ("gan wgan-gp_critic_step",
                                                                          "gan dcgan_D+G_step")
                                                   for impl in ("reference", "native")}
    assert all(tuple(r["shape"]) == (4,) for r in rows)


def test_the_ceiling_side_is_the_critic_without_instance_norms():
    """bench_gan.py --ceiling: the third critic-step side trains the same critic minus its norms."""
    from genfast.bench import gan

    steps = gan.step_fns(4, ceiling=True)
    assert set(steps["wgan-gp critic step"]) == {"genfast", "torch", "no norm"}
    assert set(steps["dcgan D+G step"]) == {"genfast", "torch"}
    bare = steps["wgan-gp critic step"]["no norm"]
    critics = [c.cell_contents for c in bare.__closure__ if isinstance(c.cell_contents, torch.nn.Module)]
    assert len(critics) == 1 and critics[0].cfg["norm"] == "none"
    before = [p.detach().clone() for p in critics[0].parameters()]
    bare()
    assert any(not torch.equal(a, b) for a, b in zip(before, critics[0].parameters()))


def _report(seed, g_fd, b_fd, g_shares, b_shares):
    def side(fd, shares, steps):
        kl = sum(s * math.log(s * len(shares)) for s in shares)
        return {"steps": steps, "seconds": 100.0, "frechet_distance": fd,
                "class_coverage": {"shares": shares, "kl_to_uniform": kl,
                                   "classes_in_band": sum(0.05 <= s <= 0.15 for s in shares)}}
    return {"genfast": dict(side(g_fd, g_shares, 20), config={"seed": seed}), "baseline": side(b_fd, b_shares, 10)}


def test_the_quality_summary_averages_seeds_and_counts_the_ones_meeting_the_target():
    even = [0.1] * 10
    skewed = [0.2, 0.04] + [0.095] * 8
    reports = [_report(1, 110.0, 300.0, even, skewed), _report(0, 130.0, 290.0, even, skewed),
               _report(2, 120.0, 100.0, even, skewed)]          # seed 2: genfast's FD is the higher one
    text = summarize(reports)
    rows = [r for r in text.splitlines() if r.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:7]] == ["0", "0", "1", "1", "2", "2"]   # sorted by seed
    assert "**120.0 ± 10.0**" in rows[7] and "| 10 |" in rows[7]
    assert "**230.0 ± 112.7**" in rows[8] and "| 8 |" in rows[8] and "4.0 % / 20.0 %" in rows[8]
    assert text.endswith("Seeds meeting the target: 2 of 3.")
