"""genfast.gan.reference: the plain PyTorch-GAN-style DCGAN the Fashion-MNIST target is measured
against — its shapes, its wall-clock budget and that its steps train."""

import torch

from genfast.gan import reference


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
