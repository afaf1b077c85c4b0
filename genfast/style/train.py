"""Training feed-forward stylizers (Johnson, Alahi and Fei-Fei 2016; Dumoulin et al. 2017 for many styles).

    train_stylizer("photos/", "starry_night.jpg", out="starry.safetensors", steps=2000, image_size=256)

A TransformerNet (one style) or a MultiStyleNet (several) is trained with Adam so that, for a batch of
photo crops x, the output y = net(x) matches x's features at the content layers of a frozen feature
network and each style image's Gram matrices at its style layers (computed once), plus a total-variation
term: J = content_weight * J_content + style_weight * J_style + tv_weight * TV(y).

Data order is a pure function of (seed, sample position): the position p of a sample on a rank gives
its epoch p // n, the epoch's permutation (seeded by seed and epoch), and its random crop (seeded by
seed, epoch and image index). A resumed run therefore sees exactly the batches an uninterrupted run
would, with nothing to restore but the step. Under torchrun (WORLD_SIZE > 1) every epoch's permutation
is split across ranks as DistributedSampler does (padded by wrapping, rank r takes every world-th
entry), the model is wrapped in DistributedDataParallel, and only rank 0 writes files or draws a bar.

Conventions: the stylizers take and return RGB in [0, 255]; the feature networks take RGB in [0, 1],
so the output is divided by 255 before the loss network (and the TV term is on that [0, 1] image).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from genfast import io
from genfast.models import FeatureNet, feature_net
from genfast.style import losses
from genfast.style.checks import check_int, check_number
from genfast.style.transformer_net import MultiStyleNet, TransformerNet, load_stylizer, save_stylizer

#: default loss weights for the "mse" conventions of genfast.style.losses (the ratio of pytorch/examples'
#: fast_neural_style, 1e5 : 1e10, with its MSE content loss and Gram / (C H W))
DEFAULT_STYLE_WEIGHT = 1e5
DEFAULT_TV_WEIGHT = 10.0
CHECKPOINT_VERSION = 1


# -------------------------------------------------------------------------------------------------
# Data

def _is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in io.IMAGE_SUFFIXES and not path.name.startswith(".")


def find_images(source, *, name: str = "content") -> list:
    """Image specs from a folder (searched recursively), a file, a skimage:NAME spec, or a list of those."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    if not items:
        raise ValueError(f"{name}: expected a folder of images or a list of images, got an empty list")
    found: list = []
    for item in items:
        if isinstance(item, str) and item.startswith("skimage:"):
            io.check_sample(item[len("skimage:"):], name=name)
            found.append(item)
            continue
        if not isinstance(item, (str, Path)):
            raise TypeError(f"{name}: expected paths or skimage:NAME specs, got {type(item).__name__}")
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if _is_image_file(p))
            if not files:
                raise ValueError(f"{name}: no image files ({', '.join(sorted(io.IMAGE_SUFFIXES))}) under the "
                                 f"folder {str(path)!r}")
            found.extend(str(p) for p in files)
        elif path.is_file():
            found.append(str(path))
        else:
            raise FileNotFoundError(f"{name}: no such file or folder: {str(path)!r}")
    return found


class ImageFolderDataset:
    """Random crops of `image_size` from a folder (recursive) or list of images of any size.

    Each image's shorter side is resized to image_size * s, s drawn from `scale` (default 1 to 1.25),
    then an image_size x image_size crop is taken at a random place. `dataset[i, generator]` is item i
    with its randomness from `generator`; items are (3, H, W) float RGB in [0, 1]. Decoded images are
    kept in a small cache (as uint8) so small datasets are not decoded again every epoch.
    """

    def __init__(self, source, image_size: int = 256, *, scale: tuple[float, float] = (1.0, 1.25),
                 cache: int = 32, name: str = "content"):
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16:
            raise ValueError(f"image_size: expected an integer of at least 16 pixels, got {image_size!r}")
        if not (len(scale) == 2 and 1.0 <= scale[0] <= scale[1]):
            raise ValueError(f"scale: expected (low, high) with 1 <= low <= high, got {scale!r}")
        self.files = find_images(source, name=name)
        self.image_size, self.scale, self.name = image_size, (float(scale[0]), float(scale[1])), name
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache

    def __len__(self) -> int:
        return len(self.files)

    def _decoded(self, index: int) -> torch.Tensor:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        image = io.load_image(self.files[index], name=self.name)[0]
        image = image.mul(255).round_().to(torch.uint8)
        if self._cache_size:
            self._cache[index] = image
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return image

    def get(self, index: int, generator: torch.Generator) -> torch.Tensor:
        image = self._decoded(index).float().div_(255.0)[None]
        h, w = image.shape[-2:]
        lo, hi = self.scale
        s = lo + (hi - lo) * torch.rand((), generator=generator).item()
        short = max(self.image_size, round(self.image_size * s))
        k = short / min(h, w)
        size = (max(self.image_size, round(h * k)), max(self.image_size, round(w * k)))
        image = io.resize(image, size)
        top = int(torch.randint(0, size[0] - self.image_size + 1, (), generator=generator))
        left = int(torch.randint(0, size[1] - self.image_size + 1, (), generator=generator))
        return image[0, :, top:top + self.image_size, left:left + self.image_size].contiguous()


class ShardedStream:
    """The infinite, resumable sample order of one rank (see the module docstring)."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.per_rank = math.ceil(n / world)
        self._perm_epoch, self._perm = None, None

    def _shard(self, epoch: int) -> list[int]:
        if self._perm_epoch != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.n, generator=g).tolist()
            total = self.per_rank * self.world
            perm = (perm * math.ceil(total / self.n))[:total]
            self._perm, self._perm_epoch = perm[self.rank::self.world], epoch
        return self._perm

    def item(self, position: int) -> tuple[int, int]:
        """(epoch, image index) of this rank's sample number `position`."""
        epoch, i = divmod(position, self.per_rank)
        return epoch, self._shard(epoch)[i]

    def crop_generator(self, epoch: int, index: int) -> torch.Generator:
        return torch.Generator().manual_seed((self.seed * 7_919 + epoch) * 1_000_003 + index)


class PerceptualLoss:
    """Johnson et al.'s training objective for a stylizer: for photos x in [0, 1] and the stylizer's
    output y in [0, 255], J = content_weight * J_content(x, y/255) + style_weight * J_style(y/255, style)
    + tv_weight * TV(y/255), with each style image's Gram matrices computed once. `style_ids` picks,
    per sample, which of the style images (by position) each output is compared with."""

    def __init__(self, net: FeatureNet, style_images: Sequence[torch.Tensor], *, content_layers=None,
                 style_layers=None, content_weight: float = 1.0, style_weight: float = DEFAULT_STYLE_WEIGHT,
                 tv_weight: float = DEFAULT_TV_WEIGHT, loss: str = "mse", impl: str = "auto"):
        self.net = net
        self.content_layers = net.check_layers(net.content_layers if content_layers is None else content_layers,
                                               "content_layers")
        self.style_layers = net.check_layers(net.style_layers if style_layers is None else style_layers,
                                             "style_layers")
        self.layers = list(dict.fromkeys(self.content_layers + self.style_layers))
        self.layer_weights = {k: net.style_layer_weights.get(k, 1.0) for k in self.style_layers}
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight
        self.loss, self.impl = losses.check_convention(loss), impl
        self.targets: list[dict[str, torch.Tensor]] = []
        with torch.no_grad():
            for image in style_images:
                feats = net(image, self.style_layers)
                self.targets.append({k: losses.target_gram(feats[k].float(), loss, impl=impl)[0]
                                     for k in self.style_layers})

    def _target(self, ids: Sequence[int], layer: str) -> torch.Tensor:
        if all(i == ids[0] for i in ids):
            return self.targets[ids[0]][layer]
        return torch.stack([self.targets[i][layer] for i in ids])

    def __call__(self, x: torch.Tensor, y: torch.Tensor, style_ids: Sequence[int] | None = None):
        """(total, {"content", "style", "tv"}) for photos x in [0, 1] and outputs y in [0, 255]."""
        ids = list(style_ids) if style_ids is not None else [0] * x.shape[0]
        y01 = y / 255
        with torch.no_grad():
            content_feats = self.net(x, self.content_layers)
        feats = self.net(y01, self.layers)
        zero = torch.zeros((), device=x.device)
        c = sum((losses.content_loss(feats[k].float(), content_feats[k].float(), self.loss)
                 for k in self.content_layers), zero)
        s = sum((losses.style_loss(feats[k], self._target(ids, k), self.loss, weight=self.layer_weights[k],
                                   impl=self.impl) for k in self.style_layers), zero)
        t = losses.tv_loss(y01.float()) if self.tv_weight else zero
        total = self.content_weight * c + self.style_weight * s + self.tv_weight * t
        return total, {"content": c, "style": s, "tv": t}


# -------------------------------------------------------------------------------------------------
# Training

@dataclass
class TrainResult:
    model: torch.nn.Module               # the trained stylizer (unwrapped from DDP), on the training device
    output: Path | None
    checkpoint: Path | None
    steps: int                           # the step training ended at
    start_step: int                      # the step it resumed from (0 for a fresh run)
    seconds: float
    history: list = field(default_factory=list)   # per step of this run: {"step", "content", "style", "tv", "total"}
    network: str = ""
    new_styles: list = field(default_factory=list)  # fine-tuning: the indices of the styles added


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during train_stylizer: the state after the last completed step was checkpointed first."""

    def __init__(self, checkpoint, step: int):
        where = f"; checkpoint at step {step} in {checkpoint}" if checkpoint is not None else ""
        super().__init__(f"interrupted at step {step}{where}")
        self.checkpoint, self.step = checkpoint, step


def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def default_checkpoint(out: Path) -> Path:
    return out.with_name(out.stem + ".ckpt.pt")


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    callback(step, losses): called after every step (on every rank).
    Under torchrun (WORLD_SIZE > 1) this trains data-parallel; `batch_size` is per process.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix not in (".safetensors", ".pth", ".pt"):
        raise ValueError(f"out: expected a .safetensors (or .pth/.pt) path, got {str(out)!r}")
    if (steps is None) == (epochs is None):
        raise ValueError("steps/epochs: give exactly one of them")
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
    if style_sampling not in ("cycle", "per_sample"):
        raise ValueError(f"style_sampling: expected 'cycle' or 'per_sample', got {style_sampling!r}")
    check_int(sample_every, "sample_every", 0)
    check_int(checkpoint_every, "checkpoint_every", 0)
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

    # -- processes and device ----------------------------------------------------------------------
    rank, world, local_rank = _dist_env()
    distributed = world > 1
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() and distributed else (
            "cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and distributed and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    own_group = False
    if distributed:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            own_group = True
        rank, world = dist.get_rank(), dist.get_world_size()
    main = rank == 0

    # -- data, loss network, targets ---------------------------------------------------------------
    dataset = ImageFolderDataset(content, image_size)
    stream = ShardedStream(len(dataset), seed, rank, world)
    if steps is None:
        steps = max(1, math.ceil(epochs * stream.per_rank / batch_size))

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
        model = load_stylizer(finetune_from, device="cpu").train()
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
    use_scaler = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    config = {"version": CHECKPOINT_VERSION, "content": dataset.files, "styles": style_specs,
              "model": type(model).__name__, "num_styles": getattr(model, "num_styles", 1),
              "style_ids": style_ids, "finetune_from": str(finetune_from) if finetune_from else None,
              "batch_size": batch_size, "image_size": image_size, "style_size": style_size, "lr": lr,
              "content_weight": content_weight, "style_weight": style_weight, "tv_weight": tv_weight,
              "network": type(net).__name__, "content_layers": content_layers, "style_layers": style_layers,
              "loss": loss, "style_sampling": style_sampling, "amp": bool(amp), "seed": seed, "world_size": world}
    ckpt_path = Path(checkpoint) if checkpoint is not None else default_checkpoint(out)
    start = 0
    if resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        old = state.get("config", {})
        changed = [k for k in config if old.get(k) != config[k]]
        if changed:
            raise ValueError(f"checkpoint: {str(ckpt_path)!r} was written by a different configuration "
                             f"({', '.join(f'{k}: {old.get(k)!r} -> {config[k]!r}' for k in changed[:4])}); "
                             f"pass resume=False (--no-resume) to start over, or another checkpoint path")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if use_scaler and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        start = int(state["step"])

    train_model: torch.nn.Module = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def save_checkpoint(step: int) -> None:
        if main:
            io.atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                  "scaler": scaler.state_dict() if use_scaler else None, "step": step,
                                  "rng": _rng_state(), "config": config}, ckpt_path)

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
            crops.append(dataset.get(index, stream.crop_generator(epoch, index)))
            k = step if style_sampling == "cycle" else step * batch_size * world + rank * batch_size + j
            ids.append(k % len(style_ids) if multi else 0)
        return torch.stack(crops).to(device), ids

    from tqdm.auto import tqdm

    bar = tqdm(total=steps, initial=min(start, steps), desc="train-stylizer", unit="step",
               disable=not (progress and main), dynamic_ncols=True)
    history: list = []
    step = start
    updating = False
    try:
        while step < steps:
            x, ids = batch_for(step)
            autocast = torch.autocast(device.type, dtype=amp_dtype) if amp else contextlib.nullcontext()
            with autocast:
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
            updating = True
            scaler.step(optimizer)
            scaler.update()
            updating = False
            step += 1
            parts = {"step": step, "content": c_loss.item(), "style": s_loss.item(), "tv": t_loss.item(),
                     "total": total.item()}
            history.append(parts)
            bar.update(1)
            bar.set_postfix(content=f"{parts['content']:.3g}", style=f"{parts['style']:.3g}",
                            tv=f"{parts['tv']:.3g}", refresh=False)
            if sample_src is not None and step % sample_every == 0:
                write_sample(step)
            if checkpoint_every and step % checkpoint_every == 0 and step < steps:
                save_checkpoint(step)
            if callback is not None:
                callback(step, parts)
    except KeyboardInterrupt:
        bar.close()
        # an interrupt inside the optimizer update may leave the weights half-updated: keep the last
        # periodic checkpoint then; otherwise the weights are those after `step` completed steps
        if not updating:
            save_checkpoint(step)
            raise TrainingInterrupted(ckpt_path if main else None, step) from None
        raise TrainingInterrupted(ckpt_path if main and ckpt_path.is_file() else None, step) from None
    finally:
        bar.close()
        for h in hooks:
            h.remove()

    save_checkpoint(step)
    if main:
        save_stylizer(model, out)
    if distributed:
        import torch.distributed as dist
        dist.barrier()
        if own_group:
            dist.destroy_process_group()
    return TrainResult(model=model.eval(), output=out if main else None, checkpoint=ckpt_path if main else None,
                       steps=step, start_step=start, seconds=time.perf_counter() - t0, history=history,
                       network=f"{type(net).__name__} ({net.weights_source})", new_styles=new_styles)
