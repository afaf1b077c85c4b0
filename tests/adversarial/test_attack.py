"""genfast.adversarial.attack: FGSM against the formula written out by hand, the batched sweep
against the tutorial's loop, PGD's ball and range, and bad input named."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genfast import adversarial
from genfast.models import classifiers


class Tiny(nn.Module):
    """A linear classifier on 28 x 28 with its own normalisation: its input gradient has a closed form."""

    def __init__(self, seed=0, mean=0.3, std=0.4):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(3, 784, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(3, generator=g, dtype=torch.float64))
        self.mean, self.std = mean, std

    def forward(self, x):
        return ((x - self.mean) / self.std).flatten(1) @ self.w.T + self.b


def by_hand(model, x, y, eps, targeted=False):
    """x' = clamp(x +- eps * sign(grad_x CE)), grad_x CE = (softmax(z) - onehot(y)) W / std, per image."""
    z = model(x).detach()
    p = torch.softmax(z, 1) - F.one_hot(y, 3).double()
    grad = (p @ model.w.detach() / model.std).reshape(x.shape)
    step = -eps if targeted else eps
    return (x + step * grad.sign()).clamp(0, 1)


def test_fgsm_is_the_formula_exactly():
    model = Tiny()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 28, 28, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    for eps in (0.0, 0.03, 0.25):
        assert torch.equal(adversarial.fgsm(model, x, y, eps), by_hand(model, x, y, eps))
        assert torch.equal(adversarial.fgsm(model, x, y, eps, targeted=True), by_hand(model, x, y, eps, True))
    predicted = model(x).argmax(1)
    assert torch.equal(adversarial.fgsm(model, x, None, 0.1), by_hand(model, x, predicted, 0.1))
    x_adv = adversarial.fgsm(model, x, y, 0.1)
    assert float((x_adv - x).abs().max()) <= 0.1 + 1e-12 and x_adv.min() >= 0 and x_adv.max() <= 1


def test_fgsm_raises_the_loss_and_a_targeted_attack_lowers_it():
    model = Tiny()
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.8 + 0.1
    y = model(x).argmax(1)
    loss = lambda z, t: float(F.cross_entropy(model(z), t).detach())
    assert loss(adversarial.fgsm(model, x, y, 0.05), y) > loss(x, y)
    target = (y + 1) % 3
    assert loss(adversarial.fgsm(model, x, target, 0.05, targeted=True), target) < loss(x, target)


def lenet(seed=0):
    torch.manual_seed(seed)
    return classifiers.classifier("lenet", 10, mean=0.3, std=0.35).eval()


def test_sweep_equals_the_tutorials_loop():
    model = lenet()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(12, 1, 28, 28, generator=g)
    y = classifiers.predict(model, x)
    y[::4] = (y[::4] + 1) % 10              # some misclassified images, which both skip
    eps = [0.0, 0.03, 0.3]
    fast = adversarial.fgsm_sweep(model, x, y, eps, batch_size=16)
    slow = adversarial.tutorial_sweep(model, x, y, eps)
    assert fast.correct == slow.correct and fast.accuracy == slow.accuracy
    assert fast.correct[0] == 9 and fast.correct[-1] < fast.correct[0]      # eps 0: the clean accuracy
    for a, b in zip(fast.examples, slow.examples):
        assert [e[:3] for e in a] == [e[:3] for e in b]
        for e, f in zip(a, b):
            assert torch.equal(e[3], f[3])
    # each epsilon's accuracy is that of fgsm() at that epsilon on the correctly classified images
    right = classifiers.predict(model, x) == y
    for e, c in zip(eps, fast.correct):
        assert int((right & (classifiers.predict(model, adversarial.fgsm(model, x, y, e)) == y)).sum()) == c
    assert model.training is False


def test_pgd_stays_in_the_ball_and_in_range_and_beats_fgsm():
    model = lenet(1)
    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    x[:4] = 0.0
    x[4:8] = 1.0                                   # the [0, 1] clip binds at once
    y = classifiers.predict(model, x)
    for eps, steps, random_start in ((0.1, 4, True), (0.03, 3, False), (0.3, 2, True)):
        z = adversarial.pgd(model, x, y, eps, steps=steps, random_start=random_start,
                            generator=torch.Generator().manual_seed(0))
        assert float((z - x).abs().max()) <= eps + 1e-6
        assert float(z.min()) >= 0.0 and float(z.max()) <= 1.0
    loss = lambda z: float(F.cross_entropy(model(z), y).detach())
    z = adversarial.pgd(model, x, y, 0.05, steps=10, generator=torch.Generator().manual_seed(0))
    assert loss(z) > loss(adversarial.fgsm(model, x, y, 0.05)) > loss(x)
    # one step of eps2 = delta from z0 = x is FGSM
    assert torch.equal(adversarial.pgd(model, x, y, 0.1, steps=1, step_size=0.1, random_start=False),
                       adversarial.fgsm(model, x, y, 0.1))
    # seeded random start: reproducible
    a = adversarial.pgd(model, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(5))
    b = adversarial.pgd(model, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_bad_input_is_named():
    model = lenet()
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="eps: must be non-negative, got -0.1"):
        adversarial.fgsm(model, x, y, -0.1)
    with pytest.raises(ValueError, match=r"images: expected images of shape \(N, 1, 28, 28\).*\(4, 3, 28, 28\)"):
        adversarial.fgsm(model, torch.rand(4, 3, 28, 28), y, 0.1)
    with pytest.raises(ValueError, match=r"images: expected a tensor of shape"):
        adversarial.fgsm(model, torch.rand(28, 28), y, 0.1)
    with pytest.raises(ValueError, match=r"images: expected pixel values in \[0, 1\]"):
        adversarial.fgsm(model, x * 255, y, 0.1)
    with pytest.raises(ValueError, match=r"labels: expected labels in \[0, 10\), got min 0, max 10"):
        adversarial.fgsm(model, x, torch.tensor([0, 1, 2, 10]), 0.1)
    with pytest.raises(ValueError, match=r"labels: expected int64 labels of shape \(4,\)"):
        adversarial.fgsm(model, x, torch.tensor([0, 1]), 0.1)
    with pytest.raises(ValueError, match="labels: a targeted attack needs"):
        adversarial.fgsm(model, x, None, 0.1, targeted=True)
    with pytest.raises(ValueError, match="steps: expected an integer >= 1, got 0"):
        adversarial.pgd(model, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="step_size: expected a step size <= eps"):
        adversarial.pgd(model, x, y, 0.1, step_size=0.2)
    with pytest.raises(ValueError, match="epsilons: must be non-negative"):
        adversarial.fgsm_sweep(model, x, y, [0.1, -0.2])
    with pytest.raises(ValueError, match="labels"):
        adversarial.fgsm_sweep(model, x, y + 7, [0.1])
