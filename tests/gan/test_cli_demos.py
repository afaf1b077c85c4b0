"""`genfast gan ...`: train, sample (.png, .npy), eval, interpolate, demo, and bad input refused by name."""

import json

import numpy as np
import pytest

from genfast.cli import main
from genfast.gan import demos

SMALL = ["--g-hidden", "32", "--g-layers", "2", "--d-hidden", "32", "--d-layers", "2", "--batch-size", "32",
         "--quiet"]


def test_train_sample_eval_interpolate(tmp_path, capsys):
    out = tmp_path / "g.safetensors"
    assert main(["gan", "train", "--data", "ring8", "--steps", "5", "--out", str(out), "--sample-every", "0",
                 *SMALL]) == 0
    assert "modes" in capsys.readouterr().out
    assert main(["gan", "sample", str(out), "--num", "100", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (100, 2)
    assert main(["gan", "sample", str(out), "--num", "100", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["gan", "eval", str(out), "--json", str(tmp_path / "e.json")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 2500 and report == json.loads((tmp_path / "e.json").read_text())
    assert main(["gan", "interpolate", str(out), "--out", str(tmp_path / "w.png"), "--rows", "2"]) == 0
    assert main(["gan", "sample", str(out), "--out", str(out)]) == 2          # never overwrites its input
    assert "generator file" in capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    (["--k", "0"], ["--k", "positive integer"]),
    (["--gp-weight", "-1"], ["--gp-weight", "non-negative"]),
    (["--clip", "-0.01"], ["--clip", "non-negative"]),
    (["--loss", "lsgan"], ["--loss", "wgan-gp"]),
    (["--pack", "3"], ["--pack", "divisor of batch_size"]),
])
def test_bad_train_options_are_refused_by_name(tmp_path, capsys, argv, words):
    out = tmp_path / "g.safetensors"
    with pytest.raises(SystemExit) as e:
        code = main(["gan", "train", "--data", "ring8", "--out", str(out), *SMALL, *argv])
        raise SystemExit(code)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err


def test_unknown_data_lists_the_valid_ones(tmp_path, capsys):
    assert main(["gan", "train", "--data", "moons", "--out", str(tmp_path / "g.safetensors"), *SMALL]) == 2
    assert "--data: expected one of ring8, grid25, fashion-mnist, digits" in capsys.readouterr().err


def test_bilinear_game_does_not_converge():
    paths = demos.bilinear_trajectories(200, 0.1)
    r = {m: (p[-1][0] ** 2 + p[-1][1] ** 2) ** 0.5 for m, p in paths.items()}
    assert r["simultaneous"] > 2 * 2 ** 0.5           # spirals out: |z| grows by sqrt(1 + lr^2) a step
    assert 1.0 < r["alternating"] < 2.0               # circles: stays near the start's radius


def test_parallel_lines_critic_tracks_the_wasserstein_distance():
    assert demos.js_parallel_lines(0.0) == 0 and demos.js_parallel_lines(0.3) == pytest.approx(np.log(2))
    assert demos.critic_estimate(0.8, steps=150) == pytest.approx(0.8, abs=0.15)


def test_demo_command_writes_a_png(tmp_path):
    assert main(["gan", "demo", "optimal-d", "--steps", "300", "--out", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"


def test_image_generator_sample_interpolate_and_eval(tmp_path, capsys):
    import torch

    from genfast.gan.networks import build_generator
    from genfast.gan.sample import save_generator
    from genfast.models.classifiers import classifier, save_classifier
    from helpers import shared

    root = shared("fashion-mnist")
    torch.manual_seed(0)
    cfg = {"arch": "dcgan", "z_dim": 8, "out_shape": [1, 28, 28], "width": 4}
    G = build_generator(cfg).eval()
    out = save_generator(G, tmp_path / "f.safetensors", generator_config=cfg, data="fashion-mnist")
    assert main(["gan", "sample", str(out), "--num", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["gan", "sample", str(out), "--num", "5", "--out", str(tmp_path / "s.npy")]) == 0
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert main(["gan", "interpolate", str(out), "--out", str(tmp_path / "w.png"), "--rows", "2", "--steps", "3"]) == 0
    assert main(["gan", "eval", str(out)]) == 2
    assert "--classifier" in capsys.readouterr().err
    clf = save_classifier(classifier("lenet"), tmp_path / "c.safetensors")
    assert main(["gan", "eval", str(out), "--classifier", str(clf), "--data-root", str(root), "--num", "200"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fake_samples"] == 200 and report["real_samples"] == 10000
    assert report["frechet_distance"] > 0 and report["class_coverage"]["samples"] == 200
