"""Training a GAN: k discriminator (critic) steps, then one generator step, repeated.

    result = train_gan(GANConfig(data="ring8", steps=3000), "ring8.safetensors")
    result.info["mixture"]       # {"modes": 8, "high_quality": 0.98, "reverse_kl": 0.004, ...}

One generator step (the material's algorithm, Goodfellow et al. 2014, Alg. 1):
  1. k times: a fresh real batch and fresh noise; D (or the critic) takes one step on its loss
     (+ the gradient penalty for wgan-gp, + R1 when asked); WGAN clips the critic's weights after it.
  2. Fresh noise; G takes one step on its loss through the current D.
  3. The generator's exponential moving average, when asked, follows G.

Defaults per loss are the original papers' (LOSS_DEFAULTS); for the 2-D mixtures the recipe
genfast recommends (RECIPES) fills whatever is not given, unless `recipe=False` or another loss is
asked for. Every random draw of step s on rank r comes from a generator seeded by (seed, r, s)
(real mixture samples, noise, the penalty's alpha), and image batches from a ShardedStream: a
resumed run draws exactly what an uninterrupted one would, so a resume is bit-exact.

Under torchrun each rank draws its own batches and the gradients of D and of G are averaged
across ranks after every backward (one flat all-reduce each), and their batch-norm statistics
broadcast from rank 0 after every update. DistributedDataParallel is not used
because its gradient hooks do not support the double backward of the gradient penalty and R1.

What every genfast training run guarantees (genfast/training): the final generator as safetensors
with its configuration in the header; a checkpoint `<stem>.ckpt.pt` beside it (G, D, the EMA,
both optimisers, every RNG), atomic, read weights-only, refused when the settings differ; Ctrl-C
checkpoints and exits cleanly; metrics to `<stem>.metrics.jsonl` (and TensorBoard); rank-0 writes.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from genfast import io
from genfast.checks import ArgumentError, check_choice, check_int, check_number
from genfast.gan import losses
from genfast.gan.data import IMAGE_DATA, MIXTURES, is_mixture, load_images, sample_mixture, to_unit
from genfast.gan.metrics import MIXTURE_SAMPLES, diversity_ratio, mixture_metrics
from genfast.gan.networks import NORMS, build_discriminator, build_generator
from genfast.gan.sample import KIND, plot_mixture, save_generator
from genfast.training import (Checkpoint, MetricsLog, TrainResult, checkpoint, checkpoint_on_interrupt,
                              deferred_interrupt, distributed, metrics, postfix, progress_bar)
from genfast.training.amp import autocast, grad_scaler
from genfast.training.sampler import ShardedStream

CHECKPOINT_VERSION = 1
OPTIMIZERS = ("adam", "rmsprop")

#: the original papers' settings: DCGAN (Radford et al.), WGAN (Arjovsky et al.), WGAN-GP (Gulrajani et al.)
LOSS_DEFAULTS = {
    "minimax": {"optimizer": "adam", "lr_d": 2e-4, "lr_g": 2e-4, "betas": (0.5, 0.999), "k": 1},
    "nonsaturating": {"optimizer": "adam", "lr_d": 2e-4, "lr_g": 2e-4, "betas": (0.5, 0.999), "k": 1},
    "wgan": {"optimizer": "rmsprop", "lr_d": 5e-5, "lr_g": 5e-5, "k": 5, "clip": 0.01},
    "wgan-gp": {"optimizer": "adam", "lr_d": 1e-4, "lr_g": 1e-4, "betas": (0.5, 0.9), "k": 5, "gp_weight": 10.0},
}

#: genfast's recommended recipe per data set (what `genfast gan train --data ring8|grid25|fashion-mnist`
#: runs). Mixtures: G takes a mixture-of-Gaussians latent (networks.MixtureLatent), so it need not stretch
#: across the gaps between modes. Fashion-MNIST: the DCGAN defaults plus a generator EMA (0.995), whose
#: class histogram stays within 5-15 % per class where the live G's over-produced shirts, trained for
#: 3 000 G steps (at 2 000 the smallest class sat near the 5 % edge). How they were found and what they
#: reach: benchmarks/RESULTS.md
RECIPES: dict[str, dict] = {
    "fashion-mnist": {"loss": "nonsaturating", "ema": 0.995, "steps": 3000},
    "ring8": {"loss": "nonsaturating", "steps": 6000, "batch_size": 512, "lr_d": 1e-3, "lr_g": 1e-3,
              "betas": (0.5, 0.999), "r1": 0.0, "minibatch_stddev": 4, "ema": 0.0, "lr_end": 0.02,
              "z_dim": 9, "latent_mixture": 64, "latent_std": 0.1},
    "grid25": {"loss": "nonsaturating", "steps": 8000, "batch_size": 512, "lr_d": 1e-3, "lr_g": 1e-3,
               "betas": (0.5, 0.999), "r1": 0.0, "minibatch_stddev": 4, "ema": 0.0, "lr_end": 0.02,
               "z_dim": 9, "latent_mixture": 128, "latent_std": 0.1},
}

#: what is left when neither the recipe nor the loss says
GENERIC = {"loss": "nonsaturating", "steps": 2000, "batch_size": 64, "clip": 0.0, "gp_weight": 0.0, "r1": 0.0,
           "betas": (0.5, 0.999), "minibatch_stddev": 0, "ema": 0.0, "lr_end": 1.0, "latent_mixture": 0,
           "latent_std": 0.1}


@dataclass
class GANConfig:
    """A run's settings. None means: the data's recipe (mixtures), else the loss's paper default."""
    data: str = "ring8"                 # ring8 | grid25 | fashion-mnist | digits | a folder of images
    loss: str | None = None             # minimax | nonsaturating | wgan | wgan-gp
    recipe: bool = True                 # fill unset options from RECIPES[data] (mixtures, their loss)
    steps: int | None = None            # generator steps
    batch_size: int | None = None
    k: int | None = None                # D / critic steps per G step
    optimizer: str | None = None        # adam | rmsprop
    lr_d: float | None = None
    lr_g: float | None = None
    betas: tuple | None = None          # Adam's (beta1, beta2)
    lr_end: float | None = None         # the learning rates fall linearly to lr * lr_end by the last step
    clip: float | None = None           # WGAN weight clipping (> 0 for wgan)
    gp_weight: float | None = None      # WGAN-GP's lambda
    r1: float | None = None             # R1 gamma on real data (0: off)
    ema: float | None = None            # generator EMA decay (0: off); the EMA is the saved generator
    arch: str | None = None             # mlp | dcgan (default: mlp for mixtures, dcgan for images)
    z_dim: int | None = None            # default 2 for mixtures, 100 for images
    latent_mixture: int | None = None   # K > 0: G's input is a mixture of K Gaussians (networks.MixtureLatent)
    latent_std: float | None = None     # the mixture components' standard deviation
    g_hidden: int = 256
    g_layers: int = 4
    d_hidden: int = 128
    d_layers: int = 3
    width: int = 64                     # dcgan channel base
    g_norm: str = "batch"               # G normalisation: batch | none
    norm: str | None = None             # D normalisation: batch | instance | layer | none
    minibatch_stddev: int | None = None  # group size (0: off)
    mbstd_channels: int = 1
    minibatch_disc: int = 0             # minibatch-discrimination features (0: off)
    mbdisc_dims: int = 8
    pack: int = 1                       # PacGAN: D judges `pack` samples at once
    image_size: int | None = None       # 28 or 64 (default 28 for fashion-mnist / digits, 64 for folders)
    data_root: str | None = None        # the IDX folder / digit sheet for fashion-mnist / digits
    limit: int | None = None            # use the first `limit` images only
    seed: int = 0
    checkpoint_every: int = 1000
    sample_every: int = 0               # a sample sheet from fixed noise every N steps (0: only at the end)
    collapse_threshold: float = 0.25    # warn when diversity(fake) / diversity(real) drops below this
    amp: bool = False                   # autocast: float16 with a GradScaler on CUDA, bfloat16 on the CPU

    def resolved(self) -> "GANConfig":
        """A copy with every None filled (recipe, then the loss's defaults, then GENERIC), checked."""
        c = replace(self)
        if not (is_mixture(c.data) or c.data in IMAGE_DATA or Path(str(c.data)).is_dir()):
            raise ArgumentError("data", f"expected one of {', '.join(MIXTURES + IMAGE_DATA)} or a folder of images, "
                                        f"got {c.data!r}")
        if c.loss is not None:
            check_choice(c.loss, "loss", losses.LOSSES)
        recipe = RECIPES.get(c.data) if c.recipe else None
        if recipe and (c.loss is None or c.loss == recipe["loss"]):
            _fill(c, recipe)
        _fill(c, {"loss": GENERIC["loss"]})
        _fill(c, LOSS_DEFAULTS[c.loss])
        _fill(c, GENERIC)
        mixture = is_mixture(c.data)
        _fill(c, {"arch": "mlp" if mixture else "dcgan", "z_dim": 2 if mixture else 100,
                  "image_size": None if mixture else (64 if c.data not in IMAGE_DATA else 28)})
        # D's normalisation: DCGAN's batch norm, layer norm for a WGAN-GP critic, none in an MLP
        _fill(c, {"norm": "none" if c.arch == "mlp" else ("layer" if c.loss == "wgan-gp" else "batch")})
        return c.check()

    def check(self) -> "GANConfig":
        check_choice(self.loss, "loss", losses.LOSSES)
        check_int(self.steps, "steps", 1)
        check_int(self.batch_size, "batch_size", 2)
        check_int(self.k, "k", 1)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_number(self.lr_d, "lr_d", positive=True)
        check_number(self.lr_g, "lr_g", positive=True)
        if not (isinstance(self.betas, (tuple, list)) and len(self.betas) == 2):
            raise ArgumentError("betas", f"expected two numbers (beta1, beta2), got {self.betas!r}")
        for b in self.betas:
            check_number(b, "betas", below=1.0)
        self.betas = tuple(float(b) for b in self.betas)
        check_number(self.lr_end, "lr_end", high=1.0)
        check_number(self.clip, "clip")
        check_number(self.gp_weight, "gp_weight")
        check_number(self.r1, "r1")
        check_number(self.ema, "ema", below=1.0)
        if self.loss == "wgan" and self.clip <= 0:
            raise ArgumentError("clip", f"wgan needs a positive weight clip, got {self.clip}")
        if self.loss == "wgan-gp" and self.gp_weight <= 0:
            raise ArgumentError("gp_weight", f"wgan-gp needs a positive penalty weight, got {self.gp_weight}")
        check_choice(self.norm, "norm", NORMS)
        check_choice(self.g_norm, "g_norm", ("batch", "none"))
        if self.loss == "wgan-gp" and self.norm == "batch":
            raise ArgumentError("norm", "batch norm makes each critic score depend on the whole batch, which the "
                                        "per-sample gradient penalty assumes it does not; use layer, instance or none "
                                        "with wgan-gp")
        for name in ("g_hidden", "g_layers", "d_hidden", "d_layers", "width", "mbstd_channels", "mbdisc_dims",
                     "pack", "z_dim"):
            check_int(getattr(self, name), name, 1)
        check_int(self.minibatch_stddev, "minibatch_stddev", 0)
        check_int(self.minibatch_disc, "minibatch_disc", 0)
        check_int(self.latent_mixture, "latent_mixture", 0)
        check_number(self.latent_std, "latent_std", positive=True)
        if self.batch_size % self.pack:
            raise ArgumentError("pack", f"expected a divisor of batch_size {self.batch_size}, got {self.pack}")
        rows = self.batch_size // self.pack
        if self.minibatch_stddev and rows % min(self.minibatch_stddev, rows):
            raise ArgumentError("minibatch_stddev", f"expected a group size that divides the {rows} rows D sees "
                                                    f"per batch, got {self.minibatch_stddev}")
        if self.image_size is not None:
            check_choice(self.image_size, "image_size", (28, 64))
        if self.limit is not None:
            check_int(self.limit, "limit", 1)
        check_int(self.seed, "seed", 0)
        check_int(self.checkpoint_every, "checkpoint_every", 0)
        check_int(self.sample_every, "sample_every", 0)
        check_number(self.collapse_threshold, "collapse_threshold")
        return self

    def run_settings(self) -> dict:
        """What a resume must share (how long, and how often to checkpoint or sample, may change)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("steps", "checkpoint_every", "sample_every")}
        if not out["amp"]:
            del out["amp"]      # so that checkpoints written before the option existed still resume
        return out


def _fill(c: GANConfig, values: dict) -> None:
    for k, v in values.items():
        if getattr(c, k) is None:
            setattr(c, k, v)


def default_config(data: str, loss: str | None = None, recipe: bool = True) -> GANConfig:
    """The resolved defaults for `data` (and `loss`): what the CLI shows as its defaults."""
    return GANConfig(data=data, loss=loss, recipe=recipe).resolved()


# ----------------------------------------------------------------------------------- pieces

def network_configs(c: GANConfig, shape: list[int]) -> tuple[dict, dict]:
    g = {"arch": c.arch, "z_dim": c.z_dim, "out_shape": shape, "hidden": c.g_hidden, "layers": c.g_layers,
         "width": c.width, "norm": c.g_norm, "mixture": c.latent_mixture, "mixture_std": c.latent_std}
    d = {"arch": c.arch, "in_shape": shape, "hidden": c.d_hidden, "layers": c.d_layers, "width": c.width,
         "norm": c.norm, "minibatch_stddev": c.minibatch_stddev, "mbstd_channels": c.mbstd_channels,
         "minibatch_disc": c.minibatch_disc, "mbdisc_dims": c.mbdisc_dims, "pack": c.pack}
    return g, d


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """The generator every random draw of step `step` on rank `rank` comes from."""
    return torch.Generator().manual_seed(((seed * 65_537 + rank) * 1_000_003 + step) % (2 ** 63))


def _optimizer(c: GANConfig, params, lr: float):
    if c.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=c.betas)
    return torch.optim.RMSprop(params, lr=lr)


def _set_lr(opt, base: float, c: GANConfig, step: int) -> None:
    frac = 1.0 - (1.0 - c.lr_end) * step / max(1, c.steps - 1)
    for group in opt.param_groups:
        group["lr"] = base * frac


def _average_gradients(model: torch.nn.Module, dist) -> None:
    """Every rank's gradient replaced by the mean over ranks (one flat all-reduce)."""
    if not dist.distributed:
        return
    import torch.distributed as tdist

    params = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    tdist.all_reduce(flat)
    flat /= dist.world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


@torch.no_grad()
def _broadcast_buffers(model: torch.nn.Module, dist) -> None:
    """Batch-norm running statistics from rank 0 to every rank, as DistributedDataParallel does."""
    if not dist.distributed:
        return
    import torch.distributed as tdist

    for b in model.buffers():
        tdist.broadcast(b, 0)


@torch.no_grad()
def _update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def recalibrated(G: torch.nn.Module, z_dim: int, *, seed: int, batches: int = 16, batch_size: int = 256,
                 device=None) -> torch.nn.Module:
    """A copy of G (eval mode) whose batch-norm running statistics are its own: the mean and variance
    of each batch-norm input over `batches` batches of fresh N(0, I) noise (cumulative average, as
    torch.optim.swa_utils.update_bn does). An EMA generator needs this: its weights are an average,
    but the running statistics it carries were copied from the live G, and do not match them. G is
    unchanged; a G without batch norm comes back as a plain copy."""
    G = copy.deepcopy(G)
    norms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms:
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None                 # cumulative moving average over the batches
        gen = torch.Generator().manual_seed(seed)
        G.train()
        with torch.no_grad():
            for _ in range(batches):
                G(torch.randn(batch_size, z_dim, generator=gen).to(device))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
    return G.eval()


# ----------------------------------------------------------------------------------- the loop

def train_gan(config: GANConfig | None, out, *, resume: bool = True, progress: bool = True, device=None,
              checkpoint_path=None, log_every: int = 50, log_dir=None, callback=None) -> TrainResult:
    """Train a GAN as `config` says and write the generator to `out` (.safetensors).

    Returns a TrainResult: `model` is the saved generator (the EMA when config.ema > 0); `info` holds
    the resolved config, the D and G update counts, and for mixtures the final mode-collapse
    metrics on 2 500 samples. `callback(step, values)` is called after every generator step."""
    t0 = time.perf_counter()
    c = (config or GANConfig()).resolved()
    check_int(log_every, "log_every", 1)
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ArgumentError("out", f"expected a path ending in .safetensors, got {str(out)!r}")
    ckpt_path = Path(checkpoint_path) if checkpoint_path is not None else checkpoint.default_path(out)
    io.check_output(out, {"checkpoint": ckpt_path, "data": c.data, "data_root": c.data_root}, name="out")
    dist = distributed.setup(device)
    device, main = dist.device, dist.main
    mixture = is_mixture(c.data)

    # the data: mixtures are drawn per step; images are loaded once and streamed in a resumable order
    if mixture:
        shape, images, stream = [2], None, None
        data_id = c.data
    else:
        images, _ = load_images(c.data, root=c.data_root, image_size=c.image_size, limit=c.limit)
        shape = list(images.shape[1:])
        stream = ShardedStream(len(images), c.seed, dist.rank, dist.world)
        data_id = {"n": len(images), "sum": float(images.double().sum())}

    torch.manual_seed(c.seed)
    g_cfg, d_cfg = network_configs(c, shape)
    G, D = build_generator(g_cfg).to(device), build_discriminator(d_cfg).to(device)
    if c.loss == "wgan-gp":
        losses.check_no_batch_norm(D, "norm")
    G_ema = copy.deepcopy(G).eval() if c.ema > 0 else None
    opt_d, opt_g = _optimizer(c, D.parameters(), c.lr_d), _optimizer(c, G.parameters(), c.lr_g)
    # AMP: one scaler for every D and G step (each step scales, steps and updates it: a complete cycle);
    # disabled it passes losses and steps through unchanged
    scaler = grad_scaler(device, c.amp)
    fixed_z = torch.randn(64, c.z_dim, generator=torch.Generator().manual_seed(c.seed)).to(device)

    models = {"G": G, "D": D, **({"G_ema": G_ema} if G_ema is not None else {})}
    optimizers = {"G": opt_g, "D": opt_d}
    run = {**c.run_settings(), "data_id": data_id, "world_size": dist.world}
    ckpt = Checkpoint(ckpt_path, kind=KIND, config=run, version=CHECKPOINT_VERSION, enabled=main)
    state = ckpt.resume(models=models, optimizers=optimizers, scaler=scaler) if resume else None
    step = int(state["step"]) if state else 0
    history = list(state["extra"]["history"]) if state else []
    warned = bool(state["extra"].get("warned_collapse")) if state else False
    start = step
    log_path = metrics.default_path(out)
    sample_dir = out.with_name(out.stem + ".samples")

    def real_batch(i: int, gen: torch.Generator) -> torch.Tensor:
        if mixture:
            return sample_mixture(c.data, c.batch_size, generator=gen).to(device)
        idx = torch.tensor(stream.batch(step * c.k + i, c.batch_size))
        return images[idx].to(device)

    def save_state(at: int):
        return ckpt.save(at, models=models, optimizers=optimizers, scaler=scaler, history=history,
                         warned_collapse=warned)

    def sample_sheet(at: int) -> None:
        if not main:
            return
        net = recalibrated(G_ema, c.z_dim, seed=c.seed + 3, device=device) if G_ema is not None else G
        was = net.training
        net.eval()
        with torch.no_grad():
            x = net(fixed_z).cpu()
            if mixture:
                x = torch.cat([x, net(torch.randn(1000 - len(x), c.z_dim,
                                                  generator=torch.Generator().manual_seed(c.seed + 1)).to(device)).cpu()])
        net.train(was)
        path = sample_dir / f"step_{at:06d}.png"
        if mixture:
            plot_mixture(x, c.data, path, title=f"step {at}")
        else:
            io.save_image_grid(to_unit(x), path, nrow=8, scale=2 if shape[-1] == 28 else 1)

    G.train()
    D.train()
    bar = progress_bar(c.steps, initial=min(step, c.steps), desc=f"gan {c.loss}", enabled=progress and main)
    log = MetricsLog(log_path, log_dir=log_dir, start_step=step, enabled=main)
    d_updates = g_updates = 0
    with bar, log, checkpoint_on_interrupt(lambda: (save_state(step), step)):   # Ctrl-C: checkpoint, then stop
        while step < c.steps:
            gen = step_generator(c.seed, dist.rank, step)
            _set_lr(opt_d, c.lr_d, c, step)
            _set_lr(opt_g, c.lr_g, c, step)

            # 1. k discriminator / critic steps, each on a fresh real batch and fresh noise
            for i in range(c.k):
                real = real_batch(i, gen)
                with torch.no_grad(), autocast(device, c.amp):
                    fake = G(torch.randn(c.batch_size, c.z_dim, generator=gen).to(device))
                with autocast(device, c.amp):
                    real_out, fake_out = D(real), D(fake)
                    d_loss = losses.discriminator_loss(c.loss, real_out, fake_out)
                    penalty = 0.0
                    if c.loss == "wgan-gp":
                        alpha = torch.rand(c.batch_size, generator=gen).to(device)
                        penalty = losses.gradient_penalty(D, real, fake, alpha=alpha, weight=c.gp_weight,
                                                          scaler=scaler)
                    if c.r1 > 0:
                        penalty = penalty + losses.r1_penalty(D, real, gamma=c.r1, scaler=scaler)
                opt_d.zero_grad(set_to_none=True)
                scaler.scale(d_loss + penalty).backward()
                _average_gradients(D, dist)
                scaler.step(opt_d)
                scaler.update()
                _broadcast_buffers(D, dist)
                if c.loss == "wgan":
                    losses.clip_weights(D, c.clip)
                d_updates += 1

            # 2. one generator step through the current D
            with autocast(device, c.amp):
                fake = G(torch.randn(c.batch_size, c.z_dim, generator=gen).to(device))
                g_loss = losses.generator_loss(c.loss, D(fake))
            opt_g.zero_grad(set_to_none=True)
            D.requires_grad_(False)        # G's step needs no D gradients
            scaler.scale(g_loss).backward()
            D.requires_grad_(True)
            _average_gradients(G, dist)
            with deferred_interrupt():     # the update, the EMA and the step count change together
                scaler.step(opt_g)
                scaler.update()
                _broadcast_buffers(G, dist)
                if G_ema is not None:
                    _update_ema(G_ema, G, c.ema)
                g_updates += 1
                step += 1

            values = {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
            if c.loss in ("wgan", "wgan-gp"):
                values["w_estimate"] = -d_loss.item()      # E f(x) - E f(G(z)): the critic's Wasserstein estimate
            bar.update(1)
            postfix(bar, values)
            if step % log_every == 0 or step == c.steps:
                ratio = diversity_ratio(fake, real)
                values = {k: dist.all_mean(v) for k, v in values.items()}
                values["diversity"] = ratio
                history.append({"step": step, **values})
                log.log(step, **values)
                if ratio < c.collapse_threshold and not warned:
                    warned = True
                    warnings.warn(f"step {step}: generated samples vary {ratio:.3f}x as much as real ones "
                                  f"(threshold {c.collapse_threshold}): the generator may be collapsing",
                                  RuntimeWarning, stacklevel=2)
            if c.sample_every and step % c.sample_every == 0:
                sample_sheet(step)
            if c.checkpoint_every and step % c.checkpoint_every == 0 and step < c.steps:
                save_state(step)
            if callback is not None:
                callback(step, values)

    save_state(step)
    final = recalibrated(G_ema, c.z_dim, seed=c.seed + 3, device=device) if G_ema is not None else G.eval()
    info = {"config": asdict(c), "d_updates": d_updates, "g_updates": g_updates, "collapse_warning": warned}
    if mixture:
        with torch.no_grad():
            z = torch.randn(MIXTURE_SAMPLES, c.z_dim, generator=torch.Generator().manual_seed(c.seed + 2))
            info["mixture"] = mixture_metrics(final(z.to(device)).cpu(), c.data)
    if main:
        sample_sheet(step)
        save_generator(final, out, generator_config=g_cfg, data=c.data, train_config=asdict(c),
                       discriminator_config=d_cfg)
    dist.close()
    return TrainResult(model=final, output=out if main else None, checkpoint=ckpt_path if main else None,
                       steps=step, start_step=start, seconds=time.perf_counter() - t0, history=history,
                       metrics=log_path if main else None, info=info)


__all__ = ["GANConfig", "LOSS_DEFAULTS", "RECIPES", "GENERIC", "OPTIMIZERS", "default_config", "train_gan",
           "network_configs", "step_generator"]
