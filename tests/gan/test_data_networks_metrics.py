"""genfast.gan data (the PacGAN mixtures, images), networks (shapes, options, packing, the torch twin)
and metrics on synthetic samples with known answers."""

import gzip
import math

import pytest
import torch

from genfast.checks import ArgumentError
from genfast import nn
from genfast.gan import data, metrics, networks
from helpers import shared


def test_mixtures_are_pacgans():
    means, std = data.mixture("ring8")
    assert std == 0.01 and means.shape == (8, 2)
    for i in range(8):
        assert means[i].tolist() == pytest.approx([math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)])
    means, std = data.mixture("grid25")
    assert std == 0.05 and means.shape == (25, 2)
    assert sorted(set(means[:, 0].tolist())) == [-4, -2, 0, 2, 4] == sorted(set(means[:, 1].tolist()))
    with pytest.raises(ArgumentError, match="ring8, grid25"):
        data.mixture("ring9")


def test_mixture_samples_have_the_stated_spread_and_uniform_modes():
    x = data.sample_mixture("grid25", 20000, generator=torch.Generator().manual_seed(0))
    means, std = data.mixture("grid25")
    index, dist = metrics.nearest_modes(x, means)
    offsets = x.double() - means[index]
    assert offsets.std(0).tolist() == pytest.approx([std, std], rel=0.03)
    counts = torch.bincount(index, minlength=25).double()
    assert counts.min() > 0.8 * 800 and counts.max() < 1.2 * 800


def test_metrics_of_real_samples_meet_the_target():
    x = data.sample_mixture("ring8", 2500, generator=torch.Generator().manual_seed(1))
    m = metrics.mixture_metrics(x, "ring8")
    assert m["modes"] == 8 and m["high_quality"] > 0.98 and m["reverse_kl"] < 0.01
    assert metrics.meets_target(m)


def test_all_mass_on_one_mode_is_one_mode_and_log_m():
    x = torch.tensor([[1.0, 0.0]]).repeat(2500, 1) + 0.005 * torch.randn(2500, 2, generator=torch.Generator()
                                                                          .manual_seed(0))
    m = metrics.mixture_metrics(x, "ring8")
    assert m["modes"] == 1 and m["high_quality"] == 1.0
    assert m["reverse_kl"] == pytest.approx(math.log(8))
    assert not metrics.meets_target(m)


def test_known_partial_answers():
    means, std = data.mixture("grid25")
    # 10 modes hit equally by exact means, plus 500 samples far from every mode (low quality)
    good = means[:10].float().repeat(200, 1)
    bad = torch.full((500, 2), 1.0)             # (1, 1) is sqrt(2) from the nearest mode: > 3 * 0.05
    m = metrics.mixture_metrics(torch.cat([good, bad]), "grid25")
    assert m["modes"] == 10
    assert m["high_quality"] == pytest.approx(2000 / 2500)
    assert m["reverse_kl"] == pytest.approx(math.log(25 / 10))
    # two modes with 3:1 shares
    x = torch.cat([means[0].float().repeat(300, 1), means[1].float().repeat(100, 1)])
    m = metrics.mixture_metrics(x, "grid25")
    want = 0.75 * math.log(25 * 0.75) + 0.25 * math.log(25 * 0.25)
    assert m["modes"] == 2 and m["reverse_kl"] == pytest.approx(want)


def test_no_high_quality_sample_is_infinite_kl():
    m = metrics.mixture_metrics(torch.zeros(10, 2), "ring8")
    assert m["modes"] == 0 and m["high_quality"] == 0 and m["reverse_kl"] == math.inf


def test_diversity_ratio_flags_collapse():
    real = data.sample_mixture("ring8", 512, generator=torch.Generator().manual_seed(0))
    assert metrics.diversity_ratio(real.flip(0), real) == pytest.approx(1.0)
    collapsed = torch.tensor([[1.0, 0.0]]) + 0.01 * torch.randn(512, 2)
    assert metrics.diversity_ratio(collapsed, real) < 0.05


@pytest.mark.parametrize("shape,arch", [([2], "mlp"), ([1, 28, 28], "mlp"), ([1, 28, 28], "dcgan"),
                                        ([3, 64, 64], "dcgan")])
def test_generator_and_discriminator_shapes(shape, arch):
    G = networks.build_generator({"arch": arch, "z_dim": 8, "out_shape": shape, "hidden": 32, "layers": 2,
                                  "width": 8})
    x = G(torch.randn(8, 8))
    assert x.shape == (8, *shape)
    if len(shape) == 3:
        assert x.abs().max() <= 1
    for opts in ({}, {"minibatch_stddev": 4}, {"minibatch_disc": 5}, {"pack": 2, "minibatch_stddev": 2}):
        D = networks.build_discriminator({"arch": arch, "in_shape": shape, "hidden": 32, "layers": 2, "width": 8,
                                          "norm": "layer", **opts})
        assert D(x).shape == (8 // opts.get("pack", 1),)


def test_pack_concatenates_consecutive_samples():
    D = networks.build_discriminator({"arch": "mlp", "in_shape": [2], "pack": 2, "hidden": 16, "layers": 1})
    x = torch.randn(4, 2)
    first = D.body[0]
    want = first(torch.cat([x[0], x[1]])[None])
    got = first(D.pack_input(x).flatten(1))[:1]
    torch.testing.assert_close(got, want)
    with pytest.raises(ArgumentError, match="multiple of pack 2"):
        D(torch.randn(3, 2))


def test_genfast_and_torch_layers_are_the_same_network():
    cfg = {"arch": "dcgan", "in_shape": [1, 28, 28], "norm": "instance", "minibatch_stddev": 4, "width": 8}
    torch.manual_seed(0)
    Dg = networks.build_discriminator(cfg)
    Dt = networks.build_discriminator({**cfg, "impl": "torch"})
    Dt.load_state_dict(Dg.state_dict())
    x = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(Dg(x), Dt(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("out_shape", [[1, 28, 28], [3, 64, 64]])
def test_genfast_and_torch_generators_are_the_same_network(out_shape):
    """The image layer is HeadConv2d (28 x 28) or StemConvTranspose2d (64 x 64) on the genfast side,
    torch.nn.Conv2d / ConvTranspose2d on the torch side: same state_dict, same images and gradients."""
    cfg = {"arch": "dcgan", "z_dim": 16, "out_shape": out_shape, "width": 8}
    torch.manual_seed(0)
    Gg = networks.build_generator(cfg)
    Gt = networks.build_generator({**cfg, "impl": "torch"})
    assert isinstance(Gg.net[-2], (nn.HeadConv2d, nn.StemConvTranspose2d))
    assert type(Gt.net[-2]) in (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    Gt.load_state_dict(Gg.state_dict())
    z = torch.randn(4, 16)
    yg, yt = Gg(z), Gt(z)
    torch.testing.assert_close(yg, yt, rtol=1e-4, atol=1e-5)
    yg.square().sum().backward()
    yt.square().sum().backward()
    for (name, pg), pt in zip(Gg.named_parameters(), Gt.parameters()):
        torch.testing.assert_close(pg.grad, pt.grad, rtol=1e-4, atol=1e-5, msg=name)
    with pytest.raises(ValueError, match="impl"):
        networks.build_generator({**cfg, "impl": "numpy"})


def test_mixture_latent_draws_uniform_components_and_is_saved(tmp_path):
    """z ~ N(0, I) -> means[k] + std * z[1:], k = floor(K * Phi(z_0)): every component equally often, the
    points within their component; the means are in the state_dict, so a saved generator rebuilds them."""
    layer = networks.MixtureLatent(5, 8, 0.1)
    z = torch.randn(80_000, 5, generator=torch.Generator().manual_seed(1))
    out = layer(z)
    k = torch.floor(8 * 0.5 * (1 + torch.erf(z[:, 0] / math.sqrt(2)))).long()
    torch.testing.assert_close(out, layer.means[k] + 0.1 * z[:, 1:])
    share = torch.bincount(k, minlength=8).double() / len(k)
    assert (share - 1 / 8).abs().max() < 0.005, share
    cfg = {"arch": "mlp", "z_dim": 5, "out_shape": [2], "hidden": 16, "layers": 2, "mixture": 8, "mixture_std": 0.1}
    G = networks.build_generator(cfg)
    assert G(z[:4]).shape == (4, 2) and torch.equal(G.latent.means, layer.means)
    from genfast.gan.sample import load_generator, save_generator
    path = save_generator(G.eval(), tmp_path / "g.safetensors", generator_config=networks.generator_config(**cfg),
                          data="ring8")
    G2, _ = load_generator(path)
    torch.testing.assert_close(G2(z[:16]), G(z[:16]))
    with pytest.raises(ArgumentError, match="z_dim >= 2"):
        networks.build_generator({**cfg, "z_dim": 1})
    with pytest.raises(ArgumentError, match="latent_std"):
        networks.build_generator({**cfg, "mixture_std": 0.0})


def test_bad_network_options_are_refused_by_name():
    with pytest.raises(ArgumentError, match="norm"):
        networks.build_discriminator({"arch": "mlp", "in_shape": [2], "norm": "instance"})
    with pytest.raises(ArgumentError, match="norm"):
        networks.build_discriminator({"arch": "mlp", "in_shape": [2], "norm": "group"})
    with pytest.raises(ArgumentError, match="pack"):
        networks.build_discriminator({"arch": "mlp", "in_shape": [2], "pack": 0})
    with pytest.raises(ArgumentError, match="28 x 28 or 64 x 64"):
        networks.build_generator({"arch": "dcgan", "out_shape": [1, 32, 32]})


def test_images_from_idx_and_refusals(tmp_path):
    root = shared("fashion-mnist")
    x, y = data.load_images("fashion-mnist", root=root, limit=50)
    assert x.shape == (50, 1, 28, 28) and x.min() >= -1 and x.max() <= 1 and y.shape == (50,)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x07\x03" + b"\x00" * 20))
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x00"))
    with pytest.raises(ValueError, match="magic number"):
        data.load_images("fashion-mnist", root=bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no image files"):
        data.load_images(str(empty))
    with pytest.raises(ArgumentError, match="ring8, grid25, fashion-mnist, digits"):
        data.load_images(str(tmp_path / "missing"))


def test_digit_sheet():
    x, y = data.load_images("digits", root=shared("digits"))
    assert x.shape == (5000, 1, 28, 28) and int(y[0]) == 0 and int(y[-1]) == 9


def test_class_coverage_and_frechet_distance_known_answers():
    from genfast.models.classifiers import classifier

    torch.manual_seed(0)
    clf = classifier("lenet").eval()
    images = torch.rand(200, 1, 28, 28)
    cov = metrics.class_coverage(images, clf)
    assert sum(cov["shares"]) == pytest.approx(1.0) and cov["num_classes"] == 10
    one = metrics.class_coverage(images[:1].repeat(50, 1, 1, 1), clf)
    assert one["classes_present"] == 1 and one["kl_to_uniform"] == pytest.approx(math.log(10))
    same = metrics.frechet_distance(images, images, clf)
    other = metrics.frechet_distance(images, images * 0.2, clf)
    assert abs(same) < 1e-3 < other
