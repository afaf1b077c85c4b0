"""Training a classifier, normally or adversarially, on genfast.models.classifiers.fit_classifier
(genfast.training underneath: checkpoints, resume, Ctrl-C, metrics log, safetensors weights).

Adversarial training as the course material writes it, for each batch (x, y):

    z_0 = x
    z_{j+1} = clip(z_j + eps2 * sign(grad_z L(f(z_j), y)))   j < J, clip: |z - x| <= delta and [0, 1]
    theta <- theta - eps1 * grad_theta L(f(z_J), y)

J = `steps`, eps2 = `step_size`, delta = `eps`, eps1 the optimiser's learning rate; J = 1 with
eps2 = delta is FGSM training. `clean_weight` alpha > 0 trains on alpha * L(f(x), y) + (1 - alpha) *
L(f(z_J), y) instead (Goodfellow et al. 2015's mixed objective, alpha = 0.5): less clean accuracy lost.
The inner loop is genfast.adversarial.pgd (random_start=False, or True for the random start that
keeps FGSM training from catastrophic overfitting); it becomes fit_classifier's `perturb` hook, and its
settings are part of the checkpoint's configuration.

    result = train(images, labels, "robust.safetensors", TrainConfig(adversarial=AdversarialConfig(steps=3)))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from genfast.adversarial.attack import pgd
from genfast.checks import ArgumentError, check_choice, check_int, check_number
from genfast.models.classifiers import ARCHITECTURES, as_inputs, classifier, fit_classifier
from genfast.training import TrainResult


@dataclass
class AdversarialConfig:
    steps: int = 1               # J, inner steps per batch
    step_size: float = 0.1       # eps2, the size of each inner step (pixel units)
    eps: float = 0.1             # delta, the radius of the L-infinity ball around x
    random_start: bool = False   # start from x + uniform noise in [-delta, delta] instead of x
    clean_weight: float = 0.0    # alpha: the clean batch's share of the loss (0: train on z_J alone)

    def check(self) -> "AdversarialConfig":
        check_int(self.steps, "steps", 1)
        check_number(self.step_size, "step_size", positive=True)
        check_number(self.eps, "eps", positive=True)
        check_number(self.clean_weight, "clean_weight", high=1.0)
        if self.eps < self.step_size:
            raise ArgumentError("eps", f"expected a radius delta >= the step size eps2 = {self.step_size:g} (a "
                                       f"larger step only lands on the ball's edge), got {self.eps:g}")
        return self


def perturbation(config: AdversarialConfig):
    """fit_classifier's `perturb(model, x, y) -> z_J` for this configuration."""
    config.check()

    def perturb(model, x, y):
        return pgd(model, x, y, config.eps, steps=config.steps, step_size=config.step_size,
                   random_start=config.random_start)
    return perturb


@dataclass
class TrainConfig:
    arch: str = "lenet"                  # or "material_cnn"
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"              # or "adadelta" (the Keras example's, lr 1.0)
    seed: int = 0
    checkpoint_every: int = 500
    adversarial: AdversarialConfig | None = field(default=None)

    def check(self) -> "TrainConfig":
        check_choice(self.arch, "arch", ARCHITECTURES)
        check_int(self.epochs, "epochs", 1)
        check_int(self.batch_size, "batch_size", 1)
        check_number(self.lr, "lr", positive=True)
        check_choice(self.optimizer, "optimizer", ("adam", "adadelta"))
        check_int(self.seed, "seed", 0)
        check_int(self.checkpoint_every, "checkpoint_every", 0)
        if self.adversarial is not None:
            self.adversarial.check()
        return self


def train(images: torch.Tensor, labels: torch.Tensor, out, config: TrainConfig | None = None, *, val=None,
          classes=None, resume: bool = True, progress: bool = True, device=None, checkpoint=None,
          log_every: int = 50, log_dir=None, callback=None) -> TrainResult:
    """Train config.arch on (images, labels) — uint8 (N, 28, 28) or float (N, 1, 28, 28) in [0, 1] — and
    write it to `out` (safetensors). The model normalises with the training images' mean and std."""
    config = (config or TrainConfig()).check()
    x = as_inputs(images)
    torch.manual_seed(config.seed)
    model = classifier(config.arch, 10 if labels.numel() == 0 else max(10, int(labels.max()) + 1),
                       mean=float(x.mean()), std=float(x.std()))
    adv = config.adversarial
    return fit_classifier(model, x, labels, out=out, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                          optimizer=config.optimizer, val=val, perturb=perturbation(adv) if adv else None,
                          perturb_config={"pgd": asdict(adv)} if adv else None,
                          clean_weight=adv.clean_weight if adv else 0.0, classes=classes, seed=config.seed,
                          device=device, resume=resume, checkpoint_path=checkpoint,
                          checkpoint_every=config.checkpoint_every, log_every=log_every, log_dir=log_dir,
                          progress=progress, callback=callback)


__all__ = ["AdversarialConfig", "TrainConfig", "perturbation", "train"]
