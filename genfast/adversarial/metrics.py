"""How a classifier is judged against attacks: clean accuracy, and robust accuracy (the share of
images still classified correctly after the attack) under FGSM and under PGD for several epsilons.

    report = evaluate(model, x, y, epsilons=(0.05, 0.1, 0.2), pgd_steps=10)
    report["clean"], report["fgsm"][i], report["pgd"][i]        # accuracies, for report["epsilons"][i]
    for line in catastrophic_overfitting(report): print(line)

Robust accuracy attacks every image with its true label (the misclassified ones too) and counts
the ones still right. FGSM alone can flatter a model trained against FGSM: its loss surface bends
so that the one-step direction stops finding the nearby errors that an iterative attack still finds
(catastrophic overfitting, Wong et al. 2020). `catastrophic_overfitting` says so whenever PGD's
accuracy falls far below FGSM's at the same epsilon.
"""

from __future__ import annotations

import torch
from torch import nn

from genfast.adversarial.attack import _check_epsilons, fgsm, pgd
from genfast.adversarial.networks import check_images, check_labels
from genfast.checks import check_choice, check_int, check_number

ATTACKS = ("fgsm", "pgd")


def robust_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float, *,
                    attack: str = "pgd", steps: int = 10, step_size: float | None = None, batch_size: int = 500,
                    seed: int = 0) -> float:
    """The share of `images` the model classifies as `labels` after `attack` with radius eps (PGD:
    `steps` steps from a random start drawn from a generator seeded with `seed`)."""
    check_choice(attack, "attack", ATTACKS)
    check_int(batch_size, "batch_size", 1)
    check_images(model, images)
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    right = 0
    for start in range(0, len(images), batch_size):
        x, y = images[start:start + batch_size], labels[start:start + batch_size].to(device)
        if attack == "fgsm":
            x_adv = fgsm(model, x, y, eps)
        else:
            x_adv = pgd(model, x, y, eps, steps=steps, step_size=step_size, generator=gen)
        was = model.training
        model.eval()
        with torch.no_grad():
            right += int((model(x_adv).argmax(1) == y).sum())
        model.train(was)
    return right / len(images) if len(images) else 0.0


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilons=(0.05, 0.1, 0.2), *,
             pgd_steps: int = 10, batch_size: int = 500, seed: int = 0) -> dict:
    """Clean accuracy, and robust accuracy under FGSM and under PGD (`pgd_steps` steps, random start,
    step min(eps, 2.5 * eps / steps)) at every epsilon."""
    epsilons = _check_epsilons(epsilons)
    check_int(pgd_steps, "pgd_steps", 1)
    check_images(model, images)
    was = model.training
    model.eval()
    with torch.no_grad():
        logits = model(images[:1])
    check_labels(labels, len(images), logits.shape[1])
    device = next(model.parameters()).device
    with torch.no_grad():
        clean = sum(int((model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size].to(device)).sum())
                    for i in range(0, len(images), batch_size)) / max(1, len(images))
    model.train(was)
    report = {"n": len(images), "clean": clean, "epsilons": epsilons, "pgd_steps": pgd_steps, "fgsm": [], "pgd": []}
    for eps in epsilons:
        report["fgsm"].append(robust_accuracy(model, images, labels, eps, attack="fgsm", batch_size=batch_size))
        report["pgd"].append(robust_accuracy(model, images, labels, eps, attack="pgd", steps=pgd_steps,
                                             batch_size=batch_size, seed=seed))
    return report


def table(report: dict, name: str = "") -> str:
    """The report as a text table: one row per epsilon."""
    head = f"{name}: " if name else ""
    rows = [f"{head}clean accuracy {report['clean']:.2%} on {report['n']} images",
            f"{'epsilon':>8} {'FGSM':>8} {'PGD-' + str(report['pgd_steps']):>8}"]
    rows += [f"{e:>8.3g} {f:>8.2%} {p:>8.2%}" for e, f, p in zip(report["epsilons"], report["fgsm"], report["pgd"])]
    return "\n".join(rows)


def catastrophic_overfitting(report: dict, *, gap: float = 0.2) -> list[str]:
    """A plain statement for every epsilon where the model looks robust to FGSM but PGD's accuracy is
    more than `gap` (a share, default 20 points) below FGSM's: the FGSM number is not robustness."""
    check_number(gap, "gap", high=1.0)
    lines = []
    for eps, f, p in zip(report["epsilons"], report["fgsm"], report["pgd"]):
        if f - p > gap:
            lines.append(f"at epsilon {eps:g} the model looks robust to FGSM ({f:.1%}) but not to PGD ({p:.1%}): "
                         f"catastrophic overfitting (the one-step attack no longer finds the errors an iterative "
                         f"attack does); judge robustness by PGD")
    return lines


def robustness_targets(normal: dict, robust: dict, *, eps: float = 0.1) -> dict:
    """The issue's targets for adversarial training at `eps`: PGD accuracy raised by >= 30 points
    over the normally trained model, clean accuracy within 5 points of it."""
    i, j = normal["epsilons"].index(eps), robust["epsilons"].index(eps)
    gain = robust["pgd"][j] - normal["pgd"][i]
    drop = normal["clean"] - robust["clean"]
    return {"pgd_gain_points": 100 * gain, "clean_drop_points": 100 * drop,
            "pgd_gain_at_least_30": gain >= 0.30, "clean_within_5": drop <= 0.05}


__all__ = ["robust_accuracy", "evaluate", "table", "catastrophic_overfitting", "robustness_targets", "ATTACKS"]
