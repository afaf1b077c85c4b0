"""genfast.gan.train: the k:1 schedule, per-loss defaults, bit-exact resume, the collapse monitor,
bad settings refused by name, and a short ring8 run that captures every mode."""

import warnings

import pytest
import torch

from genfast.checks import ArgumentError
from genfast.gan import load_generator, sample
from genfast.gan.train import GENERIC, LOSS_DEFAULTS, RECIPES, GANConfig, train_gan
from genfast.training import CheckpointError, TrainingInterrupted
from helpers import equal_state

TINY = {"g_hidden": 32, "g_layers": 2, "d_hidden": 32, "d_layers": 2, "batch_size": 32}


def test_k_critic_steps_per_generator_step(tmp_path):
    r = train_gan(GANConfig(data="ring8", loss="wgan-gp", steps=4, k=3, **TINY), tmp_path / "g.safetensors",
                  progress=False)
    assert r.info["d_updates"] == 12 and r.info["g_updates"] == 4
    state = torch.load(r.checkpoint, weights_only=True)
    assert {int(s["step"]) for s in state["optimizer"]["D"]["state"].values()} == {12}
    assert {int(s["step"]) for s in state["optimizer"]["G"]["state"].values()} == {4}


def test_defaults_follow_the_papers_and_the_recipe():
    c = GANConfig(data="fashion-mnist", loss="wgan").resolved()
    assert (c.optimizer, c.lr_d, c.k, c.clip) == ("rmsprop", 5e-5, 5, 0.01)
    c = GANConfig(data="fashion-mnist", loss="wgan-gp").resolved()
    assert (c.optimizer, c.lr_d, c.betas, c.k, c.gp_weight, c.norm) == ("adam", 1e-4, (0.5, 0.9), 5, 10.0, "layer")
    c = GANConfig(data="fashion-mnist").resolved()
    assert (c.loss, c.lr_d, c.betas, c.k, c.arch, c.norm, c.ema, c.steps) == (
        "nonsaturating", 2e-4, (0.5, 0.999), 1, "dcgan", "batch", RECIPES["fashion-mnist"]["ema"],
        RECIPES["fashion-mnist"]["steps"])
    c = GANConfig(data="fashion-mnist", recipe=False).resolved()
    assert (c.ema, c.steps) == (0.0, GENERIC["steps"])
    c = GANConfig(data="ring8").resolved()
    for key, value in RECIPES["ring8"].items():
        assert getattr(c, key) == value
    c = GANConfig(data="ring8", recipe=False).resolved()
    assert (c.r1, c.minibatch_stddev, c.lr_d, c.latent_mixture, c.z_dim) == (0.0, 0, LOSS_DEFAULTS["nonsaturating"]["lr_d"], 0, 2)
    c = GANConfig(data="ring8", loss="wgan").resolved()          # another loss: the paper's settings
    assert (c.lr_d, c.k, c.r1) == (5e-5, 5, 0.0)


@pytest.mark.parametrize("kwargs,name", [({"k": 0}, "k"), ({"loss": "wgan-gp", "gp_weight": -1.0}, "gp_weight"),
                                         ({"loss": "wgan", "clip": -0.01}, "clip"), ({"loss": "lsgan"}, "loss"),
                                         ({"data": "ring9"}, "data"), ({"pack": 3}, "pack"),
                                         ({"loss": "wgan-gp", "norm": "batch", "arch": "dcgan"}, "norm"),
                                         ({"lr_d": 0.0}, "lr_d"), ({"ema": 1.0}, "ema")])
def test_bad_settings_are_refused_by_name(kwargs, name):
    with pytest.raises(ArgumentError) as e:
        GANConfig(**{"data": "ring8", **kwargs}).resolved()
    assert e.value.argument == name


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ArgumentError, match="minimax, nonsaturating, wgan, wgan-gp"):
        GANConfig(loss="hinge").resolved()
    with pytest.raises(ArgumentError, match="ring8, grid25, fashion-mnist, digits"):
        GANConfig(data="moons").resolved()


@pytest.mark.parametrize("loss", ["nonsaturating", "wgan-gp"])
def test_resume_is_bit_exact(tmp_path, loss):
    cfg = dict(data="ring8", loss=loss, steps=12, k=2, ema=0.9, minibatch_stddev=4, **TINY)
    full = train_gan(GANConfig(**cfg), tmp_path / "full.safetensors", progress=False)

    def stop_at_5(step, values):
        if step == 5:
            raise KeyboardInterrupt       # as Ctrl-C would: the loop checkpoints step 5 and stops

    with pytest.raises(TrainingInterrupted) as e:
        train_gan(GANConfig(**cfg), tmp_path / "part.safetensors", progress=False, callback=stop_at_5)
    assert e.value.step == 5
    resumed = train_gan(GANConfig(**cfg), tmp_path / "part.safetensors", progress=False)
    assert resumed.start_step == 5 and resumed.steps == 12
    a = torch.load(full.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    for key in ("G", "D", "G_ema"):
        assert equal_state(a["model"][key], b["model"][key])
    assert equal_state(full.model.state_dict(), resumed.model.state_dict())


def test_resume_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "g.safetensors"
    train_gan(GANConfig(data="ring8", steps=2, **TINY), out, progress=False)
    with pytest.raises(CheckpointError, match="lr_d"):
        train_gan(GANConfig(data="ring8", steps=4, lr_d=5e-4, **TINY), out, progress=False)
    r = train_gan(GANConfig(data="ring8", steps=4, lr_d=5e-4, **TINY), out, progress=False, resume=False)
    assert r.start_step == 0


def test_output_files_and_the_saved_generator(tmp_path):
    out = tmp_path / "g.safetensors"
    r = train_gan(GANConfig(data="ring8", steps=6, sample_every=3, **TINY), out, progress=False, log_every=2)
    assert (tmp_path / "g.samples" / "step_000003.png").is_file() and (tmp_path / "g.samples" / "step_000006.png")\
        .is_file()
    assert r.metrics.is_file() and r.checkpoint.is_file()
    G, cfg = load_generator(out)
    assert cfg["data"] == "ring8"
    torch.testing.assert_close(sample(G, 10), sample(r.model, 10))
    with pytest.raises(ArgumentError, match="is the checkpoint file"):
        train_gan(GANConfig(data="ring8", steps=1, **TINY), out, checkpoint_path=out, progress=False)


def test_collapse_monitor_warns(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a generator that barely learns stays at its initial output, far narrower than grid25
        train_gan(GANConfig(data="grid25", steps=2, lr_g=1e-12, recipe=False, **TINY), tmp_path / "g.safetensors",
                  progress=False, log_every=1)
    assert any("collapsing" in str(w.message) for w in caught)


def test_short_ring8_run_captures_all_modes(tmp_path):
    r = train_gan(GANConfig(data="ring8", steps=600, g_hidden=64, g_layers=3, d_hidden=64, d_layers=3,
                            batch_size=128, lr_d=1e-3, lr_g=1e-3, lr_end=0.05, minibatch_stddev=4, r1=0.0, ema=0.0),
                  tmp_path / "r.safetensors", progress=False, log_every=100)
    m = r.info["mixture"]
    assert m["modes"] == 8, m


@pytest.mark.filterwarnings("ignore:step 2. generated samples vary")      # 2 steps: G has not spread out yet
def test_image_training_with_wgan_keeps_the_critic_clipped(tmp_path):
    from helpers import shared

    root = shared("fashion-mnist")
    r = train_gan(GANConfig(data="fashion-mnist", data_root=str(root), loss="wgan", width=4, z_dim=8, limit=64,
                            steps=2, k=2, batch_size=16, sample_every=1), tmp_path / "f.safetensors", progress=False)
    assert r.info["d_updates"] == 4 and (tmp_path / "f.samples" / "step_000002.png").is_file()
    state = torch.load(r.checkpoint, weights_only=True)
    assert max(float(v.abs().max()) for k, v in state["model"]["D"].items() if "running" not in k
               and "num_batches" not in k) <= 0.01
    x = sample(r.model, 4)
    assert x.shape == (4, 1, 28, 28)


def test_an_ema_generator_gets_batch_norm_statistics_of_its_own():
    from genfast.gan.networks import build_generator
    from genfast.gan.train import network_configs, recalibrated

    c = GANConfig(data="ring8", **TINY).resolved()
    torch.manual_seed(0)
    G = build_generator(network_configs(c, [2])[0])
    bns = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert bns
    for m in bns:                           # statistics that belong to some other weights
        m.running_mean.fill_(3.0)
        m.running_var.fill_(7.0)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    R = recalibrated(G, c.z_dim, seed=5, batches=4, batch_size=64)
    assert equal_state(G.state_dict(), before)           # G itself is untouched
    assert not R.training and all(m.momentum == 0.1 for m in R.modules() if isinstance(m, torch.nn.BatchNorm1d))
    # the first batch norm's running mean is the mean of its input over the same 4 x 64 noise draws
    seen = []
    probe = recalibrated(G, c.z_dim, seed=5, batches=0)
    first = next(m for m in probe.modules() if isinstance(m, torch.nn.BatchNorm1d))
    first.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    probe.train()
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for _ in range(4):
            probe(torch.randn(64, c.z_dim, generator=gen))
    expected = torch.stack([x.mean(0) for x in seen]).mean(0)
    r_first = next(m for m in R.modules() if isinstance(m, torch.nn.BatchNorm1d))
    torch.testing.assert_close(r_first.running_mean, expected, rtol=1e-5, atol=1e-6)
    assert (r_first.running_mean - 3.0).abs().min() > 1e-3


def test_amp_trains_and_resumes_bit_exactly_on_the_cpu(tmp_path):
    """--amp on the CPU: bfloat16 autocast (no scaler), finite losses, bit-exact resume, and the
    setting is part of what a resume must share."""
    cfg = dict(data="ring8", loss="wgan-gp", steps=8, k=2, amp=True, **TINY)
    full = train_gan(GANConfig(**cfg), tmp_path / "full.safetensors", progress=False, log_every=1)
    assert all(torch.isfinite(torch.tensor([h["d_loss"], h["g_loss"]])).all() for h in full.history)
    assert full.info["config"]["amp"] is True

    def stop_at_3(step, values):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train_gan(GANConfig(**cfg), tmp_path / "part.safetensors", progress=False, callback=stop_at_3)
    resumed = train_gan(GANConfig(**cfg), tmp_path / "part.safetensors", progress=False)
    assert resumed.start_step == 3
    assert equal_state(full.model.state_dict(), resumed.model.state_dict())
    with pytest.raises(CheckpointError, match="amp"):
        train_gan(GANConfig(**{**cfg, "amp": False, "steps": 9}), tmp_path / "part.safetensors", progress=False)
