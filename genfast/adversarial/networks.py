"""The models genfast.adversarial attacks and hardens: the classifiers of genfast.models.classifiers
(the material's CNN and the FGSM tutorial's LeNet), which take images in [0, 1] and normalise them
inside, so an attack's epsilon is in pixel units. This file adds the input checks every attack makes."""

from __future__ import annotations

import torch
from torch import nn

from genfast.checks import ArgumentError, check_tensor
from genfast.models.classifiers import (ARCHITECTURES, LeNet, MaterialCNN, accuracy, as_inputs, classifier,
                                        load_classifier, predict, save_classifier)

#: the input every genfast classifier takes: one channel of 28 x 28 pixels
INPUT_SHAPE = (1, 28, 28)


def check_images(model: nn.Module, images, name: str = "images") -> torch.Tensor:
    """`images` if it is a float (N, 1, 28, 28) batch in [0, 1] on the model's device."""
    check_tensor(images, name, dims=(4,), shape="(N, 1, 28, 28)", floating=True)
    shape = getattr(model, "input_shape", INPUT_SHAPE)
    if tuple(images.shape[1:]) != tuple(shape):
        raise ArgumentError(name, f"expected images of shape (N, {', '.join(map(str, shape))}) for this model, "
                                  f"got shape {tuple(images.shape)}")
    if images.numel() and (float(images.min()) < 0.0 or float(images.max()) > 1.0):
        raise ArgumentError(name, f"expected pixel values in [0, 1], got values in [{float(images.min()):.3g}, "
                                  f"{float(images.max()):.3g}]")
    device = next(model.parameters()).device
    check_tensor(images, name, device=device, like="the model's")
    return images


def check_labels(labels, n: int, num_classes: int, name: str = "labels") -> torch.Tensor:
    """`labels` if it is an int64 (n,) tensor of classes in [0, num_classes)."""
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or tuple(labels.shape) != (n,):
        raise ArgumentError(name, f"expected int64 labels of shape ({n},), got "
                                  f"{getattr(labels, 'dtype', type(labels).__name__)} "
                                  f"{tuple(getattr(labels, 'shape', ()))}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ArgumentError(name, f"expected labels in [0, {num_classes}), got min {int(labels.min())}, "
                                  f"max {int(labels.max())}")
    return labels


__all__ = ["INPUT_SHAPE", "check_images", "check_labels", "classifier", "load_classifier", "save_classifier",
           "predict", "accuracy", "as_inputs", "MaterialCNN", "LeNet", "ARCHITECTURES"]
