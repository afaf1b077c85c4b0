"""Small image classifiers genfast trains: the target of adversarial examples (genfast.adversarial)
and the feature space its generative metrics are measured in (Fréchet distance, class coverage of
genfast.gan; no Inception weights exist offline).

    model = classifier("material_cnn")                 # or "lenet"
    result = fit_classifier(model, images, labels, out="fmnist_cnn.safetensors", epochs=12)
    model = load_classifier("fmnist_cnn.safetensors")
    logits = model(x)                                  # x: (N, 1, 28, 28) in [0, 1]
    feats = model.features(x)                          # the penultimate layer (128 / 50 values)

Inputs are images in [0, 1]; each model normalises them itself (`mean`, `std` buffers), so that an
attack's epsilon is in pixel units. Training (`fit_classifier`) runs on genfast.training: resumable
checkpoints, Ctrl-C, metrics log, safetensors weights with the architecture in the header; an optional
`perturb(model, x, y) -> x'` replaces each batch's inputs (adversarial training).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from genfast import io
from genfast.checks import ArgumentError, check_choice, check_int, check_number, check_tensor
from genfast.training import (Checkpoint, MetricsLog, TrainResult, checkpoint, checkpoint_on_interrupt,
                              deferred_interrupt, distributed, metrics, postfix, progress_bar, weights)
from genfast.training.sampler import ShardedStream

KIND = "classifier"


class _Normalized(nn.Module):
    def __init__(self, mean: float, std: float):
        super().__init__()
        check_number(std, "std", positive=True)
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", dims=(4,), shape="(N, 1, 28, 28)", floating=True)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for images x (N, 1, 28, 28) in [0, 1]."""
        return self.head(self.features(x))


class MaterialCNN(_Normalized):
    """The course material's MNIST CNN (the Keras mnist_cnn example): two 3x3 convolutions (32, 64,
    ReLU), 2x2 max-pool, dropout 0.25, a 128-unit dense layer (ReLU), dropout 0.5, 10-way output."""

    def __init__(self, num_classes: int = 10, *, mean: float = 0.0, std: float = 1.0):
        super().__init__(mean, std)
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.drop1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(64 * 12 * 12, 128)
        self.drop2 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(self.normalize(x)))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc1(self.drop1(x).flatten(1)))

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop2(f))


class LeNet(_Normalized):
    """LeNet as the PyTorch FGSM tutorial defines it: conv 1->10 (5x5), pool, ReLU; conv 10->20 (5x5),
    dropout2d, pool, ReLU; dense 320->50, ReLU, dropout; dense 50->10."""

    def __init__(self, num_classes: int = 10, *, mean: float = 0.0, std: float = 1.0):
        super().__init__(mean, std)
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(self.normalize(x)), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        return F.relu(self.fc1(x.flatten(1)))

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.dropout(f, training=self.training))


ARCHITECTURES = {"material_cnn": MaterialCNN, "lenet": LeNet}


def classifier(arch: str = "material_cnn", num_classes: int = 10, *, mean: float = 0.0,
               std: float = 1.0) -> nn.Module:
    """A fresh classifier by name (see ARCHITECTURES)."""
    check_choice(arch, "arch", ARCHITECTURES)
    check_int(num_classes, "num_classes", 2)
    model = ARCHITECTURES[arch](num_classes, mean=mean, std=std)
    model.arch = arch
    return model


def _config(model: nn.Module) -> dict:
    return {"arch": model.arch, "num_classes": model.fc2.out_features, "mean": float(model.mean),
            "std": float(model.std)}


def save_classifier(model: nn.Module, path, *, classes=None, **info) -> Path:
    """Safetensors weights with the architecture (and class names) in the header, atomically."""
    return weights.save(path, {k: v for k, v in model.state_dict().items()}, kind=KIND, config=_config(model),
                        classes=list(classes) if classes is not None else None, **info)


def load_classifier(path, *, device="cpu", name: str = "classifier") -> nn.Module:
    """A classifier written by save_classifier / fit_classifier, in eval mode. `.classes` holds the
    class names when they were saved."""
    import json

    state, meta = weights.load(path, kind=KIND, name=name)
    cfg = meta["config"]
    model = classifier(cfg["arch"], cfg["num_classes"], mean=cfg["mean"], std=cfg["std"])
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ArgumentError(name, f"{str(path)!r} does not fit a {cfg['arch']}: {str(e).splitlines()[0]}") from None
    model.classes = json.loads(meta.get("classes", "null"))
    return model.to(device).eval()


def as_inputs(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W) or float (N, 1, H, W) in [0, 1] -> float32 (N, 1, H, W) in [0, 1]."""
    if images.dtype == torch.uint8:
        images = images.float().div_(255.0)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    check_tensor(images, "images", dims=(4,), shape="(N, H, W) uint8 or (N, 1, H, W) in [0, 1]", floating=True)
    if images.shape[1] != 1:
        raise ArgumentError("images", f"expected one channel, (N, 1, H, W), got shape {tuple(images.shape)}")
    return images


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes (N,) of images (uint8 (N, H, W) or float (N, 1, H, W) in [0, 1])."""
    model.eval()
    device = next(model.parameters()).device
    x = as_inputs(images)
    return torch.cat([model(x[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000) -> float:
    """The share of images classified as their label."""
    return float((predict(model, images, batch_size=batch_size) == labels.cpu()).double().mean())


def fit_classifier(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, out, epochs: int = 12,
                   batch_size: int = 128, lr: float = 1e-3, optimizer: str = "adam", val=None,
                   perturb: Callable | None = None, perturb_config: dict | None = None, clean_weight: float = 0.0,
                   classes=None, seed: int = 0, device=None, resume: bool = True, checkpoint_path=None,
                   checkpoint_every: int = 500, log_every: int = 50, log_dir=None, progress: bool = True,
                   callback=None) -> TrainResult:
    """Train `model` on (images, labels) with cross-entropy and write it to `out` (safetensors).

    images: uint8 (N, H, W) or float (N, 1, H, W) in [0, 1]; labels: int64 (N,). optimizer: "adam"
    (lr 1e-3) or "adadelta" (the Keras example's; lr 1.0). val: (images, labels) measured after every
    epoch (history and the metrics log). perturb(model, x, y) -> x': the inputs each step trains on
    (adversarial training; `perturb_config` describes it for the checkpoint's configuration check).
    clean_weight: with perturb, the loss is clean_weight * L(x) + (1 - clean_weight) * L(x') (Goodfellow
    et al. 2015's mixed objective, alpha = 0.5 there); 0 trains on x' alone.
    Checkpoints `<stem>.ckpt.pt` beside `out` (atomic, resumable bit-exactly), Ctrl-C saves and raises
    TrainingInterrupted; data-parallel under torchrun.
    """
    t0 = time.perf_counter()
    x_all = as_inputs(images)
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != (len(x_all),):
        raise ArgumentError("labels", f"expected int64 labels of shape ({len(x_all)},), got "
                                      f"{getattr(labels, 'dtype', type(labels).__name__)} "
                                      f"{tuple(getattr(labels, 'shape', ()))}")
    n_classes = model.fc2.out_features
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ArgumentError("labels", f"expected labels in [0, {n_classes}), got min {int(labels.min())}, "
                                      f"max {int(labels.max())}")
    check_int(epochs, "epochs", 1)
    check_int(batch_size, "batch_size", 1)
    check_number(lr, "lr", positive=True)
    check_choice(optimizer, "optimizer", ("adam", "adadelta"))
    check_int(checkpoint_every, "checkpoint_every", 0)
    check_int(log_every, "log_every", 1)
    check_number(clean_weight, "clean_weight", high=1.0)
    out = Path(out)
    ckpt_path = Path(checkpoint_path) if checkpoint_path is not None else checkpoint.default_path(out)
    io.check_output(out, {"checkpoint": ckpt_path}, name="out")
    dist = distributed.setup(device)
    device, main = dist.device, dist.main

    torch.manual_seed(seed)
    model = model.to(device).train()
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.Adadelta(model.parameters(), lr=lr))
    stream = ShardedStream(len(x_all), seed, dist.rank, dist.world)
    steps_per_epoch = math.ceil(stream.per_rank / batch_size)
    total = epochs * steps_per_epoch
    config = {**_config(model), "n": len(x_all), "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
              "seed": seed, "perturb": perturb_config if perturb is not None else None, "world_size": dist.world,
              "data_sum": int(x_all.double().sum().round()) if len(x_all) else 0}
    ckpt = Checkpoint(ckpt_path, kind=KIND, config=config, enabled=main)
    state = ckpt.resume(models={"model": model}, optimizers={"optimizer": opt}) if resume else None
    step = int(state["step"]) if state else 0
    history = list(state["extra"]["history"]) if state else []
    start = step
    train_model = dist.wrap(model)
    log_path = metrics.default_path(out)

    def save(at: int):
        return ckpt.save(at, models={"model": model}, optimizers={"optimizer": opt}, history=history)

    bar = progress_bar(total, initial=step, desc="train classifier", enabled=progress and main)
    log = MetricsLog(log_path, log_dir=log_dir, start_step=step, enabled=main)
    with bar, log, checkpoint_on_interrupt(lambda: (save(step), step)):   # Ctrl-C: checkpoint, then stop
        while step < total:
            idx = torch.tensor(stream.batch(step, batch_size))
            x, y = x_all[idx].to(device), labels[idx].to(device)
            if perturb is None:
                loss = F.cross_entropy(train_model(x), y)
            else:
                x_adv = perturb(model, x, y).detach()   # the inputs this step trains on
                model.train()
                if clean_weight:                        # one forward pass over the clean and perturbed halves
                    clean, adv = F.cross_entropy(train_model(torch.cat([x, x_adv])), y.repeat(2),
                                                 reduction="none").view(2, -1).mean(1)
                    loss = clean_weight * clean + (1 - clean_weight) * adv
                else:
                    loss = F.cross_entropy(train_model(x_adv), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with deferred_interrupt():
                opt.step()
                step += 1
            bar.update(1)
            postfix(bar, {"loss": loss.item()})
            if step % log_every == 0:
                log.log(step, loss=loss.item())
            if step % steps_per_epoch == 0 or step == total:
                record = {"step": step, "epoch": step / steps_per_epoch, "loss": loss.item()}
                if val is not None:
                    record["val_accuracy"] = accuracy(model, *val)
                    model.train()
                history.append(record)
                log.log(step, **{k: v for k, v in record.items() if k != "step"})
            if checkpoint_every and step % checkpoint_every == 0 and step < total:
                save(step)
            if callback is not None:
                callback(step, {"loss": loss.item()})
    save(step)
    if main:
        save_classifier(model, out, classes=classes)
    dist.close()
    return TrainResult(model=model.eval(), output=out if main else None, checkpoint=ckpt_path if main else None,
                       steps=step, start_step=start, seconds=time.perf_counter() - t0, history=history,
                       metrics=log_path if main else None)
