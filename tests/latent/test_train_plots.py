"""genfast.latent: the models' shapes, short training lowers the held-out loss, resume is bit-exact,
settings are checked, the pictures are written (memorisation demo included), the CLI."""

import pytest
import torch

from genfast import io, latent
from genfast.cli import main
from genfast.training import TrainingInterrupted
from helpers import equal_state


def blobs(n=128, seed=0):
    """28 x 28 images of a bright square at one of four places (a structure worth encoding)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.1
    where = torch.randint(0, 4, (n,), generator=g)
    for i, w in enumerate(where.tolist()):
        r, c = divmod(w, 2)
        x[i, :, 2 + 14 * r:12 + 14 * r, 2 + 14 * c:12 + 14 * c] = 0.9
    return x, where


@pytest.mark.parametrize("kind,code", [("tiny", (20,)), ("dense", (2,)), ("conv", (3, 7, 7)),
                                       ("denoising", (32, 7, 7)), ("vae", (20,)), ("conv_vae", (20,))])
def test_models_shapes(kind, code):
    model = latent.build(kind).eval()
    x = torch.rand(3, 1, 28, 28)
    z = model.encode(x)
    assert (z[0] if isinstance(z, tuple) else z).shape == (3, *code)
    assert model.reconstruct(x).shape == x.shape
    with pytest.raises(ValueError, match=r"images: expected images of shape \(N, 1, 28, 28\)"):
        model(torch.rand(3, 1, 32, 32))


@pytest.mark.parametrize("kind", ["vae", "conv", "denoising"])
def test_short_training_lowers_the_loss(tmp_path, kind):
    x, _ = blobs(96)
    val, _ = blobs(32, seed=1)
    config = latent.TrainConfig(kind=kind, epochs=3, batch_size=32, lr=2e-3, checkpoint_every=0)
    torch.manual_seed(0)
    before = latent.evaluate(latent.build(kind), val, config)
    result = latent.train(x, tmp_path / "m.safetensors", config, val=val, progress=False)
    losses = [h["val_loss"] for h in result.history]
    assert losses[-1] < losses[0] < before, (before, losses)
    loaded = latent.load(tmp_path / "m.safetensors")
    assert equal_state(loaded.state_dict(), result.model.state_dict()) and loaded.kind == kind


def test_resume_is_bit_exact_and_settings_are_checked(tmp_path):
    x, _ = blobs(96)
    config = latent.TrainConfig(kind="vae", epochs=2, batch_size=32, checkpoint_every=2)
    full = latent.train(x, tmp_path / "a.safetensors", config, progress=False)

    def stop(step, _):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        latent.train(x, tmp_path / "b.safetensors", config, progress=False, callback=stop)
    resumed = latent.train(x, tmp_path / "b.safetensors", config, progress=False)
    assert resumed.start_step == 4 and equal_state(resumed.model.state_dict(), full.model.state_dict())
    with pytest.raises(ValueError, match="different configuration.*beta: 1.0 -> 2.0"):
        latent.train(x, tmp_path / "b.safetensors", latent.TrainConfig(**{**config.__dict__, "beta": 2.0}),
                     progress=False)


def test_bad_settings_are_named(tmp_path):
    x, _ = blobs(8)
    for kw, match in (({"kind": "gan"}, "kind"), ({"latent": 0}, "latent: expected an integer >= 1"),
                      ({"beta": -1.0}, "beta: must be non-negative"),
                      ({"noise": "salt_pepper", "noise_factor": 2.0}, "noise_factor"),
                      ({"likelihood": "poisson"}, "likelihood")):
        with pytest.raises(ValueError, match=match):
            latent.train(x, tmp_path / "m.safetensors", latent.TrainConfig(**kw), progress=False)
    with pytest.raises(ValueError, match=r"images: expected values in \[0, 1\]"):
        latent.train(x * 3, tmp_path / "m.safetensors", progress=False)
    with pytest.raises(ValueError, match="out: expected a path ending in .safetensors"):
        latent.train(x, tmp_path / "m.pt", progress=False)


def test_vae_pictures(tmp_path):
    torch.manual_seed(0)
    vae, ae = latent.build("vae", latent=2).eval(), latent.build("dense", latent=2).eval()
    x, where = blobs(40)
    panels = {"AE": (latent.latent_codes(ae, x), where), "VAE": (latent.latent_codes(vae, x), where)}
    assert latent.latent_scatter(panels, tmp_path / "s.png", ["a", "b", "c", "d"]).stat().st_size > 5000
    grid = latent.manifold(vae, 5)
    assert grid.shape == (25, 1, 28, 28)
    rows = latent.interpolate(vae, x[:2], x[2:4], steps=4)
    assert rows.shape == (8, 1, 28, 28)
    # the ends of an interpolation are the reconstructions (z = the mean)
    torch.testing.assert_close(rows[0], vae.reconstruct(x[:1])[0])
    g = torch.Generator().manual_seed(0)
    again = latent.resample(vae, x[:1], 3, generator=g)
    assert again.shape == (3, 1, 28, 28) and not torch.equal(again[0], again[1])    # each output differs
    assert latent.image_sheet(latent.sample_prior(vae, 9, generator=g), tmp_path / "p.png").stat().st_size > 300
    assert latent.image_rows([x[:4], vae.reconstruct(x[:4])], tmp_path / "r.png",
                             row_labels=["in", "out"]).stat().st_size > 300
    with pytest.raises(ValueError, match="model: sampling from the prior needs a VAE"):
        latent.sample_prior(ae, 4)
    with pytest.raises(ValueError, match="model: the manifold grid needs a 2-D latent space"):
        latent.manifold(latent.build("vae"), 4)


def test_the_tiny_ae_memorises_its_photo():
    photo = io.resize(io.sample_image("chelsea"), (24, 24))
    other = io.resize(io.sample_image("coffee"), (24, 24))
    _, (inputs, outputs, diff), names = latent.memorisation(photo, {"black": torch.zeros_like(photo), "other": other},
                                                             steps=150)
    to_photo = (outputs - photo).abs().mean((1, 2, 3))
    assert names == ["the photo", "black", "other"]
    assert float(to_photo.max()) < 0.05                                        # every input gives the photo back
    assert float(diff[2].mean()) > 4 * float(to_photo[2])                      # and not the other photo


def test_cli_train_sample_plot(tmp_path, capsys):
    from PIL import Image

    sheet = torch.zeros(40, 100)                     # a 5 x 2 sheet of 20 x 20 "digits", one per class
    for i in range(10):
        r, c = divmod(i, 5)
        sheet[20 * r + 4:20 * r + 16, 20 * c + 2 + i:20 * c + 6 + i] = 1.0
    png = tmp_path / "digits.png"
    Image.fromarray((sheet * 255).byte().numpy()).save(png)
    vae, ae = tmp_path / "vae.safetensors", tmp_path / "ae.safetensors"
    assert main(["latent", "train", "--data", str(png), "--out", str(vae), "--latent", "2", "--epochs", "2",
                 "--quiet"]) == 0
    assert "test negative ELBO" in capsys.readouterr().out
    assert main(["latent", "train", "--data", str(png), "--out", str(ae), "--kind", "dense", "--epochs", "1",
                 "--quiet"]) == 0
    assert main(["latent", "sample", str(vae), "--out", str(tmp_path / "p.png"), "--n", "4"]) == 0
    for what, models in (("scatter", [ae, vae]), ("manifold", [vae]), ("interpolate", [vae]), ("reconstruct", [ae]),
                         ("resample", [vae])):
        out = tmp_path / f"{what}.png"
        assert main(["latent", "plot", what, *map(str, models), "--data", str(png), "--out", str(out), "--n", "2",
                     "--steps", "3"]) == 0
        assert out.stat().st_size > 300
    assert main(["latent", "sample", str(ae), "--out", str(tmp_path / "q.png")]) == 2
    assert "needs a VAE" in capsys.readouterr().err
    assert main(["latent", "sample", str(vae), "--out", str(vae)]) == 2
    assert "--out: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["latent", "train", "--data", str(png), "--out", str(tmp_path / "x.safetensors"), "--beta", "-1"])


def test_loading_never_runs_code(tmp_path):
    from helpers import code_running_pickle

    marker = tmp_path / "pwned"
    evil = code_running_pickle(tmp_path / "m.safetensors", marker)
    with pytest.raises(ValueError, match="model: .* is not a safetensors file"):
        latent.load(evil)
    ckpt = code_running_pickle(tmp_path / "m2.ckpt.pt", marker)
    x, _ = blobs(8)
    with pytest.raises(ValueError, match="not a genfast latent checkpoint"):
        latent.train(x, tmp_path / "m2.safetensors", latent.TrainConfig(epochs=1), checkpoint=ckpt, progress=False)
    assert not marker.exists()


@pytest.mark.parametrize("mask", ["A", "B"])
def test_a_masked_convolution_sees_only_the_pixels_before(mask):
    from genfast.latent.networks import MaskedConv2d

    conv = MaskedConv2d(2, 3, 5, mask)
    x = torch.rand(1, 2, 9, 9, requires_grad=True)
    conv(x)[0, :, 4, 4].sum().backward()
    seen = {tuple(p) for p in (x.grad[0].abs().sum(0) > 0).nonzero().tolist()}
    before = {(i, j) for i in range(2, 7) for j in range(2, 7) if i < 4 or (i == 4 and j < 4)}
    assert seen == before | ({(4, 4)} if mask == "B" else set())


def test_the_autoregressive_conv_vae_generates_what_it_scores():
    torch.manual_seed(0)
    model = latent.build("conv_vae").eval()
    assert model.autoregressive and latent.build("conv_vae", autoregressive=False).decode(torch.zeros(1, 20)).shape \
        == (1, 1, 28, 28)
    z = torch.randn(3, 20)
    with torch.no_grad():
        logits = model.decode(z)                              # generated pixel by pixel
        again = model.decode(z, context=torch.sigmoid(logits))  # the same image scored in one pass
    torch.testing.assert_close(again, logits, rtol=1e-5, atol=1e-5)
    # teacher forcing: pixel (i, j)'s logit does not depend on pixel (i, j) or any later one
    x = torch.rand(1, 1, 28, 28, requires_grad=True)
    model.decode(z[:1], context=x)[0, 0, 10, 10].backward()
    assert x.grad[0, 0, 10, 10:].abs().sum() == 0 and x.grad[0, 0, 11:].abs().sum() == 0
    with pytest.raises(ValueError, match="options: vae takes no options, got autoregressive"):
        latent.build("vae", autoregressive=True)


def test_conv_vae_options_are_saved_and_old_files_load_factorised(tmp_path):
    from genfast.training import weights

    for ar in (True, False):
        model = latent.build("conv_vae", autoregressive=ar)
        latent.save_model(model, tmp_path / f"{ar}.safetensors")
        assert latent.load(tmp_path / f"{ar}.safetensors").autoregressive is ar
    old = latent.build("conv_vae", autoregressive=False)          # a file without "options" in its header
    weights.save(tmp_path / "old.safetensors", dict(old.state_dict()), kind="latent",
                 config={"kind": "conv_vae", "shape": [1, 28, 28], "latent": 20, "train": {}})
    assert latent.load(tmp_path / "old.safetensors").autoregressive is False
