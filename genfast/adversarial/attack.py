"""Adversarial examples: FGSM (one signed gradient step), the FGSM epsilon sweep, and PGD.

    x_adv = fgsm(model, x, y, 0.1)                      # x' = clamp(x + 0.1 * sign(grad_x L(f(x), y)), 0, 1)
    x_adv = fgsm(model, x, None, 0.1)                   # y = the model's own predictions (no label leaking)
    x_adv = fgsm(model, x, target, 0.1, targeted=True)  # x' = clamp(x - 0.1 * sign(grad_x L(f(x), target)), 0, 1)
    sweep = fgsm_sweep(model, x, y, [0, .05, .1, .15, .2, .25, .3])    # accuracy for every epsilon
    x_adv = pgd(model, x, y, 0.1, steps=10)             # random start, 10 projected signed steps

Images are float (N, 1, 28, 28) in [0, 1]; the classifiers normalise inside, so epsilon is in pixel
units. L is the cross-entropy summed over the batch: each image's gradient is its own, unscaled by
the batch size (a mean would shrink tiny components towards zero and could change their sign).
Gradients are taken in eval mode (no dropout: the attack is deterministic); the model's mode is
restored afterwards, and no parameter gradient is accumulated.

The sweep's reading order: `tutorial_sweep` is the PyTorch FGSM tutorial's test loop (one image at
a time, a gradient per epsilon), the reference; `fgsm_sweep` is the fast version. sign(grad_x L)
does not depend on epsilon, so one batched gradient per image serves every epsilon; the tests check
the two agree, benchmarks/bench_adversarial.py times them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from genfast.adversarial.networks import check_images, check_labels
from genfast.checks import ArgumentError, check_int, check_number

#: the PyTorch FGSM tutorial's epsilons
TUTORIAL_EPSILONS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """The model in eval mode for the body; its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _checked(model, images, labels, *, required: bool = False):
    """(images, labels, logits of images) after the shared checks; labels None -> the predictions."""
    check_images(model, images)
    with torch.no_grad(), eval_mode(model):
        logits = model(images)
    if labels is None:
        if required:
            raise ArgumentError("labels", "a targeted attack needs the target labels, got None")
        return images, logits.argmax(1), logits
    return images, check_labels(labels, len(images), logits.shape[1]).to(images.device), logits


def _check_eps(eps, name: str = "eps") -> float:
    return check_number(eps, name)          # a finite number >= 0


def input_gradient(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, grad_x L) with L = the cross-entropy of f(images) against labels, summed over the batch."""
    with torch.enable_grad(), eval_mode(model):
        x = images.detach().requires_grad_(True)
        logits = model(x)
        loss = F.cross_entropy(logits, labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return logits.detach(), grad


def fgsm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, eps: float, *,
         targeted: bool = False) -> torch.Tensor:
    """The fast gradient sign method: x' = clamp(x + eps * sign(grad_x L(f(x), y)), 0, 1).

    labels None: y is the model's prediction for x (avoids label leaking). targeted: labels are the
    classes to reach, and the step goes down the loss instead, x - eps * sign(...)."""
    eps = _check_eps(eps)
    images, labels, _ = _checked(model, images, labels, required=targeted)
    _, grad = input_gradient(model, images, labels)
    direction = -1.0 if targeted else 1.0
    return (images + direction * eps * grad.sign()).clamp(0.0, 1.0).detach()


def pgd(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, eps: float, *, steps: int = 10,
        step_size: float | None = None, random_start: bool = True, targeted: bool = False,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient descent in the L-infinity ball (Madry et al.): z_0 = x (+ uniform noise in
    [-eps, eps] with random_start), then `steps` times z <- clip(z + step_size * sign(grad_z L(f(z), y)))
    where clip projects onto |z - x| <= eps and [0, 1]. step_size defaults to min(eps, 2.5 * eps / steps) and
    may not exceed eps (a larger step would only be cut back to the ball). The material's adversarial
    training inner loop is pgd(..., eps=delta, steps=J, step_size=eps2, random_start=False)."""
    eps = _check_eps(eps)
    check_int(steps, "steps", 1)
    step_size = min(eps, 2.5 * eps / steps) if step_size is None else check_number(step_size, "step_size")
    if step_size > eps:
        raise ArgumentError("step_size", f"expected a step size <= eps = {eps:g} (the radius), got {step_size:g}")
    images, labels, _ = _checked(model, images, labels, required=targeted)
    lower, upper = (images - eps).clamp(min=0.0), (images + eps).clamp(max=1.0)
    z = images.detach()
    if random_start and eps > 0:
        noise = torch.rand(images.shape, generator=generator, dtype=images.dtype,
                           device=images.device if generator is None else generator.device).to(images.device)
        z = (images + (2 * noise - 1) * eps).clamp(0.0, 1.0)
    direction = -1.0 if targeted else 1.0
    for _ in range(steps):
        _, grad = input_gradient(model, z, labels)
        z = torch.minimum(torch.maximum(z + direction * step_size * grad.sign(), lower), upper).detach()
    return z


# -------------------------------------------------------------------------------- the epsilon sweep

@dataclass
class Sweep:
    """Accuracy under FGSM for every epsilon. `accuracy[i]` counts an image as correct when the model
    classified it correctly before the attack and still does after it (the tutorial's definition; at
    epsilon 0 it is the clean accuracy). `examples[i]`: up to k (index, original prediction,
    adversarial prediction, image) — at epsilon 0 correctly classified images, otherwise ones the
    attack turned (as the tutorial keeps them)."""
    epsilons: list
    accuracy: list
    correct: list
    n: int
    examples: list = field(default_factory=list)

    def table(self) -> str:
        rows = [f"{'epsilon':>8} {'accuracy':>9} {'correct':>13}"]
        rows += [f"{e:>8.3g} {a:>9.2%} {c:>6}/{self.n:<6}" for e, a, c in zip(self.epsilons, self.accuracy,
                                                                             self.correct)]
        return "\n".join(rows)

    def as_dict(self) -> dict:
        return {"epsilons": self.epsilons, "accuracy": self.accuracy, "correct": self.correct, "n": self.n,
                "examples": [[{"index": i, "original": a, "adversarial": b} for i, a, b, _ in ex]
                             for ex in self.examples]}


def _check_epsilons(epsilons) -> list[float]:
    epsilons = list(epsilons)
    if not epsilons:
        raise ArgumentError("epsilons", "expected at least one epsilon, got none")
    return [_check_eps(e, "epsilons") for e in epsilons]


def _keep(examples: list, k: int, index: int, original: int, adversarial: int, image: torch.Tensor) -> None:
    if len(examples) < k:
        examples.append((index, original, adversarial, image.detach().cpu().clone()))


def fgsm_sweep(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilons=TUTORIAL_EPSILONS, *,
               batch_size: int = 1000, examples: int = 5) -> Sweep:
    """FGSM accuracy for every epsilon: per batch one forward and backward for sign(grad_x L), then
    one forward per epsilon on clamp(x + eps * sign, 0, 1)."""
    epsilons = _check_epsilons(epsilons)
    check_int(batch_size, "batch_size", 1)
    check_int(examples, "examples", 0)
    check_images(model, images)
    device = next(model.parameters()).device
    correct = [0] * len(epsilons)
    kept: list[list] = [[] for _ in epsilons]
    with eval_mode(model):
        if len(images):
            with torch.no_grad():
                check_labels(labels, len(images), model(images[:1]).shape[1])
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size]
            y = labels[start:start + batch_size]
            y = y.to(device)
            logits, grad = input_gradient(model, x, y)
            original = logits.argmax(1)
            right = original == y                          # only these count, as in the tutorial
            sign = grad.sign()
            with torch.no_grad():
                for i, eps in enumerate(epsilons):
                    x_adv = (x + eps * sign).clamp(0.0, 1.0)
                    pred = model(x_adv).argmax(1)
                    correct[i] += int((right & (pred == y)).sum())
                    show = right & (pred == y) if eps == 0 else right & (pred != y)
                    for j in show.nonzero().flatten().tolist()[:max(0, examples - len(kept[i]))]:
                        _keep(kept[i], examples, start + j, int(original[j]), int(pred[j]), x_adv[j])
    n = len(images)
    return Sweep(epsilons, [c / n if n else 0.0 for c in correct], correct, n, kept)


def tutorial_sweep(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilons=TUTORIAL_EPSILONS, *,
                   examples: int = 5) -> Sweep:
    """The PyTorch FGSM tutorial's `test()` for each epsilon: one image at a time, skip it when it is
    misclassified, else take the gradient, attack, classify again. The reference for `fgsm_sweep`
    (the gradient is taken with autograd.grad on the input only, which spares the tutorial's
    parameter gradients: a stronger baseline than its loss.backward())."""
    epsilons = _check_epsilons(epsilons)
    check_images(model, images)
    correct = [0] * len(epsilons)
    kept: list[list] = [[] for _ in epsilons]
    with eval_mode(model):
        if len(images):
            with torch.no_grad():
                check_labels(labels, len(images), model(images[:1]).shape[1])
        for i, eps in enumerate(epsilons):
            for k in range(len(images)):
                data, target = images[k:k + 1].detach().requires_grad_(True), labels[k:k + 1]
                output = model(data)
                init_pred = output.argmax(1)
                if init_pred.item() != target.item():
                    continue
                loss = F.cross_entropy(output, target)
                (data_grad,) = torch.autograd.grad(loss, data)
                perturbed = (data + eps * data_grad.sign()).clamp(0, 1)
                final_pred = model(perturbed).argmax(1)
                if final_pred.item() == target.item():
                    correct[i] += 1
                    if eps == 0:
                        _keep(kept[i], examples, k, init_pred.item(), final_pred.item(), perturbed[0])
                else:
                    _keep(kept[i], examples, k, init_pred.item(), final_pred.item(), perturbed[0])
    n = len(images)
    return Sweep(epsilons, [c / n if n else 0.0 for c in correct], correct, n, kept)


__all__ = ["fgsm", "pgd", "fgsm_sweep", "tutorial_sweep", "Sweep", "input_gradient", "eval_mode",
           "TUTORIAL_EPSILONS"]
