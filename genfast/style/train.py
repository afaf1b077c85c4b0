"""Training feed-forward stylizers (Johnson, Alahi and Fei-Fei 2016; Dumoulin et al. 2017 for many styles).

    train_stylizer("photos/", "starry_night.jpg", out="starry.safetensors", steps=2000, image_size=256)

A TransformerNet (one style) or a MultiStyleNet (several) is trained with Adam so that, for a batch of
photo crops x, the output y = net(x) matches x's features at the content layers of a frozen feature
network and each style image's Gram matrices at its style layers (computed once), plus a total-variation
term: J = content_weight * J_content + style_weight * J_style + tv_weight * TV(y)
(genfast.style.losses.PerceptualLoss).

The data order is genfast.training.sampler.ShardedStream's: a pure function of (seed, sample
position), so a resumed run sees exactly the batches an uninterrupted run would. Under torchrun
(WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel and only rank 0 writes files or
draws a bar (genfast.training.distributed).

Conventions: the stylizers take and return RGB in [0, 255]; the feature networks take RGB in [0, 1],
so the output is divided by 255 before the loss network (and the TV term is on that [0, 1] image).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from genfast import io
from genfast.checks import ArgumentError, check_choice, check_int, check_number
from genfast.data import ImageFolderDataset
from genfast.models import FeatureNet, feature_net
from genfast.style import losses
from genfast.style.losses import DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT, PerceptualLoss
from genfast.style.networks import MultiStyleNet, TransformerNet, load_stylizer, save_stylizer
from genfast.training import (Checkpoint, MetricsLog, TrainResult, checkpoint, checkpoint_on_interrupt,
                              deferred_interrupt, distributed, metrics, progress_bar, postfix)
from genfast.training.amp import autocast, grad_scaler
from genfast.training.sampler import ShardedStream

CHECKPOINT_VERSION = 2     # 2: the genfast.training checkpoint (weights_only-readable RNG states)
STYLE_SAMPLING = ("cycle", "per_sample")


def _mask_rows_hook(rows: list[int]):
    """A gradient hook keeping only `rows` of a (num_styles, C) gradient (fine-tuning a new style)."""
    def hook(grad: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(grad.shape[0], 1, dtype=grad.dtype, device=grad.device)
        mask[rows] = 1
        return grad * mask
    return hook


def train_stylizer(content, styles, *, out, steps: int | None = None, epochs: float | None = None,
                   batch_size: int = 4, image_size: int = 256, style_size: int | None = None,
                   lr: float = 1e-3, content_weight: float = 1.0, style_weight: float = DEFAULT_STYLE_WEIGHT,
                   tv_weight: float = DEFAULT_TV_WEIGHT, network: str | FeatureNet = "auto", weights="imagenet",
                   content_layers: Sequence[str] | None = None, style_layers: Sequence[str] | None = None,
                   loss: str = "mse", multi_style: bool | None = None, style_sampling: str = "cycle",
                   sample_every: int = 0, sample_image=None, sample_dir=None, checkpoint=None,
                   checkpoint_every: int = 500, resume: bool = True, amp: bool = False, seed: int = 0,
                   device=None, progress: bool = True, finetune_from=None, impl: str = "auto",
                   log_every: int = 10, log_dir=None,
                   callback: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train a feed-forward stylizer on `content` photos for `styles` and write it to `out` (safetensors).

    content: a folder (recursive), an image path or skimage:NAME spec, or a list of those.
    styles: one style image (-> TransformerNet) or several (-> MultiStyleNet, `multi_style` forces it);
        with `style_sampling="cycle"` each batch uses one style in turn, with "per_sample" the samples
        of a batch take the styles in turn.
    steps / epochs: how long (exactly one of them; an epoch is one pass over the images per rank).
    style_size: longest side of the style images (default 2 * image_size).
    finetune_from: a trained MultiStyleNet; each style in `styles` is added as a new style and only the
        new rows of its conditional instance norms are trained (everything else stays bit-identical).
    checkpoint: where the training state goes (default: next to `out`, `<stem>.ckpt.pt`); written
        atomically every `checkpoint_every` steps, at the end, and on Ctrl-C. With `resume` an existing
        checkpoint of the same configuration is continued from its step.
    sample_every / sample_image / sample_dir: every N steps, stylize sample_image (default: the first
        content image; longest side 2 * image_size) into sample_dir (default `<stem>_samples/` beside `out`),
        written as input | output (| output of each further style).
    amp: autocast in float16 with a GradScaler on CUDA, bfloat16 on CPU.
    log_every / log_dir: the losses every N steps to `<stem>.metrics.jsonl` beside `out` (and to
        TensorBoard in log_dir).
    callback(step, losses): called after every step (on every rank).
    Under torchrun (WORLD_SIZE > 1) this trains data-parallel; `batch_size` is per process.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix not in (".safetensors", ".pth", ".pt"):
        raise ArgumentError("out", f"expected a .safetensors (or .pth/.pt) path, got {str(out)!r}")
    if (steps is None) == (epochs is None):
        raise ArgumentError("steps", "steps/epochs: give exactly one of them")
    if steps is not None:
        check_int(steps, "steps", 1)
    else:
        check_number(epochs, "epochs", positive=True)
    check_int(batch_size, "batch_size", 1)
    check_int(image_size, "image_size", 16)
    if style_size is not None:
        check_int(style_size, "style_size", 16)
    lr = check_number(lr, "lr", positive=True)
    content_weight = check_number(content_weight, "content_weight")
    style_weight = check_number(style_weight, "style_weight")
    tv_weight = check_number(tv_weight, "tv_weight")
    losses.check_convention(loss)
    check_choice(style_sampling, "style_sampling", STYLE_SAMPLING)
    check_int(sample_every, "sample_every", 0)
    check_int(checkpoint_every, "checkpoint_every", 0)
    check_int(log_every, "log_every", 1)
    check_int(seed, "seed", 0)
    style_specs = [styles] if isinstance(styles, (str, Path)) else list(styles)
    if not style_specs:
        raise ValueError("styles: expected at least one style image")
    style_specs = [str(s) for s in style_specs]
    for s in style_specs:
        if not s.startswith("skimage:") and not Path(s).is_file():
            raise FileNotFoundError(f"styles: no such image file: {s!r}")
    if finetune_from is not None and not Path(finetune_from).is_file():
        raise FileNotFoundError(f"finetune_from: no such file: {str(finetune_from)!r}")
    ckpt_path = Path(checkpoint) if checkpoint is not None else checkpoint_path(out)
    log_path = metrics.default_path(out)

    # -- processes and device ----------------------------------------------------------------------
    dist = distributed.setup(device)
    device, main = dist.device, dist.main

    # -- data: the files are known now, so no output may be one of them -----------------------------
    dataset = ImageFolderDataset(content, image_size)
    inputs = {"content": dataset.files, "style": style_specs, "finetune_from": finetune_from,
              "sample_image": sample_image}
    io.check_output(out, {**inputs, "checkpoint": ckpt_path}, name="out")
    io.check_output(ckpt_path, inputs, name="checkpoint")
    stream = ShardedStream(len(dataset), seed, dist.rank, dist.world)
    if steps is None:
        steps = max(1, math.ceil(epochs * stream.per_rank / batch_size))

    # -- loss network, targets ---------------------------------------------------------------------
    net = network if isinstance(network, FeatureNet) else feature_net(network, weights)
    net = net.to(device).eval().requires_grad_(False)
    style_size = style_size or 2 * image_size
    objective = PerceptualLoss(net, [io.load_image(st, style_size, name="styles").to(device) for st in style_specs],
                               content_layers=content_layers, style_layers=style_layers,
                               content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                               loss=loss, impl=impl)
    content_layers, style_layers = objective.content_layers, objective.style_layers

    # -- model --------------------------------------------------------------------------------------
    torch.manual_seed(seed)
    new_styles: list[int] = []
    if finetune_from is not None:
        model = load_stylizer(finetune_from, device="cpu", name="finetune_from").train()
        if not isinstance(model, MultiStyleNet):
            raise ValueError(f"finetune_from: {str(finetune_from)!r} is a {type(model).__name__}; fine-tuning "
                             f"a new style needs a MultiStyleNet (trained with several styles)")
        for _ in style_specs:
            new_styles.append(model.add_style(init_from=0))
        style_ids = new_styles
    elif multi_style or (multi_style is None and len(style_specs) > 1):
        model = MultiStyleNet(len(style_specs))
        style_ids = list(range(len(style_specs)))
    else:
        model = TransformerNet()
        style_ids = [0]
    model = model.to(device).train()
    multi = isinstance(model, MultiStyleNet)
    hooks = []
    if finetune_from is not None:
        model.requires_grad_(False)
        for norm in model.conditional_norms():
            for p in (norm.gamma, norm.beta):
                p.requires_grad_(True)
                hooks.append(p.register_hook(_mask_rows_hook(new_styles)))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    scaler = grad_scaler(device, amp)
    use_scaler = scaler.is_enabled()

    config = {"content": dataset.files, "styles": style_specs,
              "model": type(model).__name__, "num_styles": getattr(model, "num_styles", 1),
              "style_ids": style_ids, "finetune_from": str(finetune_from) if finetune_from else None,
              "batch_size": batch_size, "image_size": image_size, "style_size": style_size, "lr": lr,
              "content_weight": content_weight, "style_weight": style_weight, "tv_weight": tv_weight,
              "network": type(net).__name__, "content_layers": content_layers, "style_layers": style_layers,
              "loss": loss, "style_sampling": style_sampling, "amp": bool(amp), "seed": seed,
              "world_size": dist.world}
    ckpt = Checkpoint(ckpt_path, kind="stylizer", config=config, version=CHECKPOINT_VERSION, enabled=main)
    state = ckpt.resume(models={"model": model}, optimizers={"optimizer": optimizer},
                        scaler=scaler if use_scaler else None) if resume else None
    start = int(state["step"]) if state else 0
    train_model = dist.wrap(model)

    def save_checkpoint(step: int):
        return ckpt.save(step, models={"model": model}, optimizers={"optimizer": optimizer},
                         scaler=scaler if use_scaler else None)

    sample_src = None
    if sample_every and main:
        # twice the crop size, cut to multiples of 4 (the stylizers give back their input's size only then)
        sample_src = io.load_image(sample_image if sample_image is not None else dataset.files[0], 2 * image_size,
                                   name="sample_image").to(device)
        h, w = sample_src.shape[-2:]
        sample_src = sample_src[..., :max(4, h // 4 * 4), :max(4, w // 4 * 4)].contiguous()
        sample_dir = Path(sample_dir) if sample_dir is not None else out.with_name(out.stem + "_samples")

    def write_sample(step: int) -> None:
        model.eval()
        with torch.no_grad():
            x = sample_src * 255
            if multi:
                ys = [model(x, i) for i in style_ids]
            else:
                ys = [model(x)]
            image = torch.cat([sample_src] + [y.float().div(255).clamp(0, 1) for y in ys], dim=-1)
        model.train()
        io.save_image(image.cpu(), sample_dir / f"step_{step:06d}.png")

    def batch_for(step: int) -> tuple[torch.Tensor, torch.Tensor | int]:
        crops, ids = [], []
        for j in range(batch_size):
            position = step * batch_size + j
            epoch, index = stream.item(position)
            crops.append(dataset.get(index, stream.item_generator(epoch, index)))
            k = step if style_sampling == "cycle" else step * batch_size * dist.world + dist.rank * batch_size + j
            ids.append(k % len(style_ids) if multi else 0)
        return torch.stack(crops).to(device), ids

    history: list = []
    step = start
    try:
        bar = progress_bar(steps, initial=min(start, steps), desc="train-stylizer", enabled=progress and main)
        log = MetricsLog(log_path, log_dir=log_dir, start_step=start, enabled=main)
        with bar, log, checkpoint_on_interrupt(lambda: (save_checkpoint(step), step)):   # Ctrl-C: checkpoint, then stop
            while step < steps:
                x, ids = batch_for(step)
                with autocast(device, amp):
                    if multi:
                        which = torch.tensor([style_ids[i] for i in ids], dtype=torch.long, device=device)
                        y = train_model(x * 255, which)
                    else:
                        y = train_model(x * 255)
                    total, parts_t = objective(x, y, ids)
                c_loss, s_loss, t_loss = parts_t["content"], parts_t["style"], parts_t["tv"]
                if not torch.isfinite(total):
                    raise FloatingPointError(f"train_stylizer: the loss became {total.item()} at step {step} "
                                             f"(content {c_loss.item():.4g}, style {s_loss.item():.4g}, "
                                             f"tv {t_loss.item():.4g}); lower lr or the weights")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(total).backward()
                with deferred_interrupt():       # the update and the step count change together
                    scaler.step(optimizer)
                    scaler.update()
                    step += 1
                parts = {"step": step, "content": c_loss.item(), "style": s_loss.item(), "tv": t_loss.item(),
                         "total": total.item()}
                history.append(parts)
                bar.update(1)
                postfix(bar, {"content": parts["content"], "style": parts["style"], "tv": parts["tv"]})
                if step % log_every == 0 or step == steps:
                    log.log(step, **{k: v for k, v in parts.items() if k != "step"})
                if sample_src is not None and step % sample_every == 0:
                    write_sample(step)
                if checkpoint_every and step % checkpoint_every == 0 and step < steps:
                    save_checkpoint(step)
                if callback is not None:
                    callback(step, parts)
    finally:
        for h in hooks:
            h.remove()

    save_checkpoint(step)
    if main:
        save_stylizer(model, out)
    dist.close()
    return TrainResult(model=model.eval(), output=out if main else None, checkpoint=ckpt_path if main else None,
                       steps=step, start_step=start, seconds=time.perf_counter() - t0, history=history,
                       metrics=log_path if main else None,
                       info={"network": f"{type(net).__name__} ({net.weights_source})", "new_styles": new_styles})


def checkpoint_path(out) -> Path:
    """The default checkpoint of a run writing `out`: `<stem>.ckpt.pt` beside it."""
    return checkpoint.default_path(out)
