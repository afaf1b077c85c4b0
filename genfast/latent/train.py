"""Training the autoencoders of genfast.latent on images in [0, 1].

    result = train(images, "vae.safetensors", TrainConfig(kind="vae", epochs=10), val=test_images)

Each step: a batch x (the resumable shuffled order of genfast.training), the input (x itself, or
for the denoising AE x with noise added), the loss — the reconstruction's negative log-likelihood
(Bernoulli: binary cross-entropy; Gaussian with `sigma`), plus beta * KL for the VAEs: the negative
ELBO — in nats per image, Adam. After every epoch the held-out loss is measured (for a VAE its
negative ELBO with z = mean + noise, as pytorch/examples measures it) and logged.

What every genfast training run guarantees (genfast/training): safetensors weights with the
configuration in the header; a checkpoint `<stem>.ckpt.pt` beside them, atomic, weights-only, that
continues bit-exactly after a kill; a resume with other settings refused with the settings named;
Ctrl-C checkpoints; metrics to `<stem>.metrics.jsonl` (and TensorBoard); data-parallel under torchrun.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from genfast import io
from genfast.checks import ArgumentError, check_choice, check_int, check_number, check_optional_int, check_tensor
from genfast.latent.losses import LIKELIHOODS, add_noise, negative_elbo, reconstruction
from genfast.latent.metrics import evaluate
from genfast.latent.networks import MODELS, build
from genfast.latent.sample import save_model
from genfast.training import (Checkpoint, MetricsLog, TrainResult, checkpoint, checkpoint_on_interrupt,
                              deferred_interrupt, distributed, metrics, postfix, progress_bar)
from genfast.training.sampler import ShardedStream

KIND = "latent"


@dataclass
class TrainConfig:
    kind: str = "vae"                 # tiny, dense, conv, denoising, vae, conv_vae
    latent: int | None = None         # code size (bottleneck channels for conv/denoising); None: the model's default
    epochs: int = 10
    max_steps: int | None = None      # stop after this many steps (overrides epochs)
    batch_size: int = 128
    lr: float = 1e-3
    likelihood: str = "bernoulli"     # or "gaussian"
    sigma: float = 0.1                # the Gaussian likelihood's standard deviation
    beta: float = 1.0                 # the KL weight (VAEs)
    free_bits: float | None = None    # VAEs: nats per latent the KL objective does not go below (None: 0.5 for
                                      # the autoregressive conv_vae, 0 otherwise; latent.losses.negative_elbo)
    autoregressive: bool = True       # conv_vae: the PixelVAE decoder (False: the factorised one)
    noise: str = "gaussian"           # the denoising AE's corruption: gaussian or salt_pepper
    noise_factor: float = 0.5
    seed: int = 0
    checkpoint_every: int = 500

    def check(self) -> "TrainConfig":
        check_choice(self.kind, "kind", MODELS)
        if self.latent is not None:
            check_int(self.latent, "latent", 1)
        check_int(self.epochs, "epochs", 1)
        check_optional_int(self.max_steps, "max_steps", 1)
        check_int(self.batch_size, "batch_size", 1)
        check_number(self.lr, "lr", positive=True)
        check_choice(self.likelihood, "likelihood", LIKELIHOODS)
        check_number(self.sigma, "sigma", positive=True)
        check_number(self.beta, "beta")
        if self.free_bits is not None:
            check_number(self.free_bits, "free_bits", low=0.0)
        if not isinstance(self.autoregressive, bool):
            raise ArgumentError("autoregressive", f"expected True or False, got {self.autoregressive!r}")
        check_choice(self.noise, "noise", ("gaussian", "salt_pepper"))
        check_number(self.noise_factor, "noise_factor", high=1.0 if self.noise == "salt_pepper" else None)
        check_int(self.seed, "seed", 0)
        check_int(self.checkpoint_every, "checkpoint_every", 0)
        return self

    def run_settings(self) -> dict:
        """What a resumed run must share (how long it trains and how often it checkpoints may change)."""
        return {k: v for k, v in asdict(self).items() if k not in ("epochs", "max_steps", "checkpoint_every")}

    def model_options(self) -> dict:
        """The constructor options of config.kind (networks.OPTIONS) this config sets."""
        return {"autoregressive": self.autoregressive} if self.kind == "conv_vae" else {}

    def resolved_free_bits(self) -> float:
        if self.free_bits is not None:
            return self.free_bits
        return 0.5 if self.kind == "conv_vae" and self.autoregressive else 0.0


def as_images(images, name: str = "images") -> torch.Tensor:
    """uint8 (N, H, W) / (N, C, H, W) or float (N, C, H, W) in [0, 1] -> float32 (N, C, H, W) in [0, 1]."""
    check_tensor(images, name, dims=(3, 4), shape="(N, H, W) or (N, C, H, W)")
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dtype == torch.uint8:
        return images.float().div(255.0)
    if not images.is_floating_point():
        raise ArgumentError(name, f"expected uint8 or floating-point images, got {images.dtype}")
    if images.numel() and (float(images.min()) < 0 or float(images.max()) > 1):
        raise ArgumentError(name, f"expected values in [0, 1], got [{float(images.min()):.3g}, {float(images.max()):.3g}]")
    return images.float()


def loss_of(model, x: torch.Tensor, target: torch.Tensor, config: TrainConfig) -> tuple[torch.Tensor, dict]:
    """The training loss (nats per image) of `model` on input x against `target`, and its parts."""
    if getattr(model, "module", model).variational:     # (unwrapped from DDP)
        logits, mean, logvar = model(x)
        loss, rec, kl = negative_elbo(logits, target, mean, logvar, likelihood=config.likelihood,
                                      beta=config.beta, sigma=config.sigma, free_bits=config.resolved_free_bits())
        return loss, {"reconstruction": rec.item(), "kl": kl.item()}
    loss = reconstruction(model(x), target, config.likelihood, config.sigma)
    return loss, {}


def train(images, out, config: TrainConfig | None = None, *, val=None, resume: bool = True, progress: bool = True,
          device=None, checkpoint=None, log_every: int = 50, log_dir=None, callback=None) -> TrainResult:
    """Train config.kind on `images` (see as_images) and write it to `out` (.safetensors).

    The loop reads top to bottom like every genfast train.py (STYLE.md): its set-up lines (checkpoint,
    resume, bar, metrics log, Ctrl-C) stand in genfast.models.classifiers.fit_classifier in the same
    order, each a call into genfast.training; what differs is the model, the loss and the output."""
    t0 = time.perf_counter()
    config = (config or TrainConfig()).check()
    check_int(log_every, "log_every", 1)
    x_all = as_images(images)
    x_val = as_images(val, "val") if val is not None else None
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ArgumentError("out", f"expected a path ending in .safetensors, got {str(out)!r}")
    ckpt_path = Path(checkpoint) if checkpoint is not None else _checkpoint_path(out)
    io.check_output(out, {"checkpoint": ckpt_path}, name="out")
    dist = distributed.setup(device)
    device, main = dist.device, dist.main

    torch.manual_seed(config.seed)
    model = build(config.kind, tuple(x_all.shape[1:]), config.latent, **config.model_options()).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    stream = ShardedStream(len(x_all), config.seed, dist.rank, dist.world)
    steps_per_epoch = math.ceil(stream.per_rank / config.batch_size)
    total = config.max_steps if config.max_steps is not None else config.epochs * steps_per_epoch
    run = {**config.run_settings(), "n": len(x_all), "shape": list(x_all.shape[1:]), "world_size": dist.world,
           "data_sum": float(x_all.double().sum())}
    ckpt = Checkpoint(ckpt_path, kind=KIND, config=run, enabled=main)
    state = ckpt.resume(models={"model": model}, optimizers={"optimizer": opt}) if resume else None
    step = int(state["step"]) if state else 0
    history = list(state["extra"]["history"]) if state else []
    start = step
    train_model = dist.wrap(model)
    log_path = metrics.default_path(out)

    def save(at: int):
        return ckpt.save(at, models={"model": model}, optimizers={"optimizer": opt}, history=history)

    bar = progress_bar(total, initial=min(step, total), desc=f"train {config.kind}", enabled=progress and main)
    log = MetricsLog(log_path, log_dir=log_dir, start_step=step, enabled=main)
    with bar, log, checkpoint_on_interrupt(lambda: (save(step), step)):   # Ctrl-C: checkpoint, then stop
        while step < total:
            idx = torch.tensor(stream.batch(step, config.batch_size))
            target = x_all[idx].to(device)
            x = add_noise(target, config.noise_factor, config.noise) if config.kind == "denoising" else target
            loss, parts = loss_of(train_model, x, target, config)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with deferred_interrupt():          # the update and the step count change together
                opt.step()
                step += 1
            value = loss.item()
            bar.update(1)
            postfix(bar, {"loss": value})
            if step % log_every == 0:
                log.log(step, loss=value, **parts)
            if step % steps_per_epoch == 0 or step == total:
                record = {"step": step, "epoch": step / steps_per_epoch, "loss": value}
                if x_val is not None:
                    record["val_loss"] = evaluate(model, x_val, config)
                    model.train()
                history.append(record)
                log.log(step, **{k: v for k, v in record.items() if k != "step"})
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < total:
                save(step)
            if callback is not None:
                callback(step, {"loss": value})
    save(step)
    if main:
        save_model(model, out, config=asdict(config))
    dist.close()
    return TrainResult(model=model.eval(), output=out if main else None, checkpoint=ckpt_path if main else None,
                       steps=step, start_step=start, seconds=time.perf_counter() - t0, history=history,
                       metrics=log_path if main else None)


def _checkpoint_path(out) -> Path:
    return checkpoint.default_path(out)


__all__ = ["TrainConfig", "train", "as_images", "loss_of", "KIND"]
