"""GAN training steps, genfast layers vs the same architecture in plain torch.nn layers.

Both sides are genfast.gan.networks' DCGAN critic for 28 x 28 (instance norm + LeakyReLU, minibatch
stddev), built once with impl="genfast" (the native StemConv2d with its LeakyReLU fused, the fused
native InstanceNorm2d, the native minibatch stddev) and once with impl="torch" (torch.nn.Conv2d +
LeakyReLU, torch.nn.InstanceNorm2d + LeakyReLU, the reference minibatch stddev), with the same
weights. Cases:

- "wgan-gp critic step": forward on real and fake, the gradient penalty (double backward), backward.
- "dcgan D+G step": a non-saturating D step then a G step with the DCGAN generator for 28 x 28,
  likewise built twice (impl="genfast": its last convolution, 64 channels onto the image's one, is
  genfast.nn.HeadConv2d on the stem kernels; impl="torch": torch.nn.Conv2d), same weights.

`genfast bench --op gan [--shape BATCH]` times them as cases (the torch.nn side is "reference", the
genfast side "native"); `python benchmarks/bench_gan.py` adds a profile and the sample-quality run.
"""

from __future__ import annotations

import torch

from genfast.bench.core import Case
from genfast.gan import losses
from genfast.gan.networks import build_discriminator, build_generator
from genfast.training.amp import autocast

PRIMARY_OP = "instance_norm"    # a native op the genfast side runs (with stem_conv2d and minibatch_stddev)
DEFAULT_SHAPES = [(64,)]
QUICK_SHAPES = [(8,)]
SHAPE_SIZES = (1,)              # --shape BATCH

D_CFG = {"arch": "dcgan", "in_shape": [1, 28, 28], "norm": "instance", "minibatch_stddev": 4, "width": 64}
G_CFG = {"arch": "dcgan", "z_dim": 100, "out_shape": [1, 28, 28], "width": 64}


def pair(seed: int = 0, device=None) -> dict:
    """{"genfast": D, "torch": D} with the same weights."""
    torch.manual_seed(seed)
    d = {"genfast": build_discriminator(D_CFG).to(device)}
    d["torch"] = build_discriminator({**D_CFG, "impl": "torch"}).to(device)
    d["torch"].load_state_dict(d["genfast"].state_dict())
    return d


def critic_step(D, real, fake, gen_seed: int = 0):
    opt = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def step():
        loss = losses.critic_loss_wgan(D(real), D(fake)) + losses.gradient_penalty(
            D, real, fake, generator=torch.Generator().manual_seed(gen_seed))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def dcgan_step(D, G, real, z):
    opt_d, opt_g = torch.optim.Adam(D.parameters(), lr=2e-4), torch.optim.Adam(G.parameters(), lr=2e-4)

    def step():
        with torch.no_grad():
            fake = G(z)
        loss = losses.d_loss_minimax(D(real), D(fake))
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        g_loss = losses.g_loss_nonsaturating(D(G(z)))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    return step


def _autocast(fn, device_type: str):
    """fn run under AMP's autocast: bfloat16 on the CPU, float16 on CUDA (no gradient scaler: a
    timing, not a training run)."""
    def step():
        with autocast(device_type):
            fn()
    return step


def step_fns(batch: int = 64, device=None, amp: bool = False, ceiling: bool = False) -> dict:
    """name -> {"genfast": fn, "torch": fn}; with `amp` every step runs under autocast. With `ceiling`
    the critic step gets a third side, "no norm": the genfast critic without its instance norms (norm
    "none": conv bias + LeakyReLU), a normalisation that costs nothing. torch.nn / no norm is the most
    speed-up any instance norm can give the step."""
    g = torch.Generator().manual_seed(1)
    real = (torch.rand(batch, 1, 28, 28, generator=g) * 2 - 1).to(device)
    fake = (torch.rand(batch, 1, 28, 28, generator=g) * 2 - 1).to(device)
    z = torch.randn(batch, 100, generator=g).to(device)
    dc, dd = pair(device=device), pair(device=device)
    torch.manual_seed(2)
    G = {"genfast": build_generator(G_CFG).to(device)}
    G["torch"] = build_generator({**G_CFG, "impl": "torch"}).to(device)
    G["torch"].load_state_dict(G["genfast"].state_dict())
    out = {"wgan-gp critic step": {k: critic_step(dc[k], real, fake) for k in dc},
           "dcgan D+G step": {k: dcgan_step(dd[k], G[k], real, z) for k in dd}}
    if ceiling:
        torch.manual_seed(0)
        bare = build_discriminator({**D_CFG, "norm": "none"}).to(device)
        out["wgan-gp critic step"]["no norm"] = critic_step(bare, real, fake)
    if amp:
        kind = torch.device(device or "cpu").type
        out = {f"{name} (amp)": {k: _autocast(fn, kind) for k, fn in fns.items()} for name, fns in out.items()}
    return out


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    """`genfast bench --op gan`: each step at each batch size, torch.nn ("reference") vs genfast
    ("native"), timed in alternating rounds. (No torch.compile side: the double backward of the
    gradient penalty is what is timed.)"""
    out = []
    for (batch,) in shapes or DEFAULT_SHAPES:
        for name, fns in step_fns(batch, device).items():
            out.append(Case(op="gan " + name.replace(" ", "_"), shape=(batch,), mode="step",
                            fns={"reference": fns["torch"], "native": fns["genfast"]}, interleave=True))
    return out
