"""Adversarial examples against the classifiers genfast trains, and adversarial training.

    networks.py   the classifiers attacked (genfast.models.classifiers) and the input checks of every attack
    data.py       labelled 28 x 28 images: MNIST-format IDX folders (Fashion-MNIST), OpenCV's digit sheet
    attack.py     fgsm, pgd, the batched FGSM epsilon sweep and its reference (the tutorial's loop)
    train.py      normal and adversarial training (the material's J steps of eps2 in a delta-ball) on fit_classifier
    metrics.py    clean and robust accuracy under FGSM and PGD, the catastrophic-overfitting statement, targets
    plots.py      accuracy against epsilon, the grid of adversarial examples
    cli.py        genfast adversarial attack|train|eval
"""

from genfast.adversarial.attack import TUTORIAL_EPSILONS, Sweep, fgsm, fgsm_sweep, pgd, tutorial_sweep
from genfast.adversarial.data import labelled_images
from genfast.adversarial.metrics import (catastrophic_overfitting, evaluate, robust_accuracy, robustness_targets,
                                         table)
from genfast.adversarial.networks import classifier, load_classifier
from genfast.adversarial.plots import accuracy_plot, examples_grid, sweep_plot
from genfast.adversarial.train import AdversarialConfig, TrainConfig, perturbation, train

__all__ = ["fgsm", "pgd", "fgsm_sweep", "tutorial_sweep", "Sweep", "TUTORIAL_EPSILONS", "labelled_images",
           "evaluate", "robust_accuracy", "table", "catastrophic_overfitting", "robustness_targets", "classifier",
           "load_classifier", "accuracy_plot", "sweep_plot", "examples_grid", "AdversarialConfig", "TrainConfig",
           "perturbation", "train"]
