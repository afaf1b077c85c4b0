"""The generators and discriminators genfast.gan trains, each built from a plain dict (the config
saved in the weights' header, so a file rebuilds its own network).

    G = build_generator({"arch": "mlp", "z_dim": 2, "out_shape": [2], "hidden": 400, "layers": 4})
    D = build_discriminator({"arch": "dcgan", "in_shape": [1, 28, 28], "norm": "instance",
                             "minibatch_stddev": 4, "pack": 2})

- "mlp": fully connected. For 2-D mixtures (out_shape [2]: linear output) and for flattened images
  (out_shape [1, 28, 28]: the material's MNIST GAN, batch norm between the affine map and the ReLU,
  tanh output).
- "dcgan": Radford et al.'s convolutional G and D, for 28 x 28 (Fashion-MNIST, digits) and 64 x 64
  (image folders). G: transposed convolutions, batch norm, ReLU, tanh; D: strided convolutions,
  LeakyReLU(0.2), the chosen normalisation, N(0, 0.02) initialisation.

Discriminator options against mode collapse: `minibatch_stddev` (group size, 0 = off;
`mbstd_channels`), `minibatch_disc` (number of minibatch-discrimination features, 0 = off;
`mbdisc_dims` kernel dimensions), `pack` (PacGAN: D judges `pack` samples concatenated along the
feature / channel axis and outputs one score per pack), `norm` in batch / instance / layer / none
(instance is genfast.nn.InstanceNorm2d with the LeakyReLU fused; not for the MLP). The DCGAN
discriminator's first convolution, on the image's few channels, is genfast.nn.StemConv2d with the
LeakyReLU fused; the DCGAN generator's last, onto the image's few channels, genfast.nn.HeadConv2d
(28 x 28) or StemConvTranspose2d (64 x 64).
`impl="torch"` builds the same network from plain torch.nn layers (torch.nn.Conv2d / ConvTranspose2d,
torch.nn.InstanceNorm2d + LeakyReLU, the reference minibatch stddev), with the same state_dict: the
benchmark's baseline.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genfast.checks import ArgumentError, check_choice, check_int, check_number
from genfast.nn import (HeadConv2d, InstanceNorm2d, MinibatchDiscrimination, MinibatchStdDev, StemConv2d,
                        StemConvTranspose2d)
from genfast.reference.minibatch_stddev import minibatch_stddev as minibatch_stddev_reference

ARCHS = ("mlp", "dcgan")
NORMS = ("batch", "instance", "layer", "none")
IMPLS = ("genfast", "torch")
SLOPE = 0.2

GENERATOR_DEFAULTS = {"arch": "mlp", "z_dim": 2, "out_shape": [2], "hidden": 400, "layers": 4, "width": 64,
                      "norm": "batch", "mixture": 0, "mixture_std": 0.1, "impl": "genfast"}
DISCRIMINATOR_DEFAULTS = {"arch": "mlp", "in_shape": [2], "hidden": 200, "layers": 3, "width": 64, "norm": "none",
                          "minibatch_stddev": 0, "mbstd_channels": 1, "minibatch_disc": 0, "mbdisc_dims": 8,
                          "pack": 1, "impl": "genfast"}


def _shape(value, name: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, int) and v > 0 for v in value):
        raise ArgumentError(name, f"expected a list of positive ints ([2], [1, 28, 28], [3, 64, 64]), got {value!r}")
    shape = list(value)
    if len(shape) == 3 and shape[1:] not in ([28, 28], [64, 64]):
        raise ArgumentError(name, f"expected images of 28 x 28 or 64 x 64, got {shape[1]} x {shape[2]}")
    if len(shape) not in (1, 3):
        raise ArgumentError(name, f"expected [features] or [channels, height, width], got {shape!r}")
    return shape


def generator_config(**overrides) -> dict:
    cfg = {**GENERATOR_DEFAULTS, **overrides}
    check_choice(cfg["arch"], "arch", ARCHS)
    check_int(cfg["z_dim"], "z_dim", 1)
    cfg["out_shape"] = _shape(cfg["out_shape"], "out_shape")
    check_int(cfg["hidden"], "hidden", 1)
    check_int(cfg["layers"], "layers", 1)
    check_int(cfg["width"], "width", 1)
    check_choice(cfg["norm"], "g_norm", ("batch", "none"))
    check_int(cfg["mixture"], "latent_mixture", 0)
    check_number(cfg["mixture_std"], "latent_std", positive=True)
    check_choice(cfg["impl"], "impl", IMPLS)
    if cfg["mixture"] and cfg["z_dim"] < 2:
        raise ArgumentError("z_dim", f"a mixture latent takes one noise coordinate for the component and the "
                                     f"rest for the point: expected z_dim >= 2, got {cfg['z_dim']}")
    if cfg["arch"] == "dcgan" and len(cfg["out_shape"]) != 3:
        raise ArgumentError("arch", f"dcgan generates images; got out_shape {cfg['out_shape']} (use arch mlp)")
    return cfg


def discriminator_config(**overrides) -> dict:
    cfg = {**DISCRIMINATOR_DEFAULTS, **overrides}
    check_choice(cfg["arch"], "arch", ARCHS)
    cfg["in_shape"] = _shape(cfg["in_shape"], "in_shape")
    check_int(cfg["hidden"], "hidden", 1)
    check_int(cfg["layers"], "layers", 1)
    check_int(cfg["width"], "width", 1)
    check_choice(cfg["norm"], "norm", NORMS)
    check_int(cfg["minibatch_stddev"], "minibatch_stddev", 0)
    check_int(cfg["mbstd_channels"], "mbstd_channels", 1)
    check_int(cfg["minibatch_disc"], "minibatch_disc", 0)
    check_int(cfg["mbdisc_dims"], "mbdisc_dims", 1)
    check_int(cfg["pack"], "pack", 1)
    check_choice(cfg["impl"], "impl", IMPLS)
    if cfg["arch"] == "dcgan" and len(cfg["in_shape"]) != 3:
        raise ArgumentError("arch", f"dcgan judges images; got in_shape {cfg['in_shape']} (use arch mlp)")
    if cfg["arch"] == "mlp" and cfg["norm"] == "instance":
        raise ArgumentError("norm", "instance norm needs feature maps; the mlp discriminator takes batch, layer or none")
    if cfg["minibatch_stddev"] and cfg["arch"] == "mlp" and cfg["hidden"] % cfg["mbstd_channels"]:
        raise ArgumentError("mbstd_channels", f"expected a divisor of hidden ({cfg['hidden']}), "
                                              f"got {cfg['mbstd_channels']}")
    return cfg


# ----------------------------------------------------------------------------------- generators

class MixtureLatent(nn.Module):
    """A generator's input layer that turns z ~ N(0, I) (N, d) into a draw from a mixture of K equally
    weighted Gaussians in d - 1 dimensions (GM-GAN, Ben-Yosef & Weinshall 2018; DeLiGAN): component
    k = floor(K * Phi(z_0)), uniform over 0..K-1, and the point means[k] + std * z_1..d-1. The means are
    fixed N(0, I) draws (seeded; a buffer, so a saved generator keeps them). Sampling and training still
    draw plain Gaussian noise; what changes is that G may map the components to separate places
    instead of stretching one connected blob across the gaps between the data's modes."""

    def __init__(self, z_dim: int, components: int, std: float, seed: int = 0):
        super().__init__()
        self.components, self.std = components, float(std)
        self.register_buffer("means", torch.randn(components, z_dim - 1, generator=torch.Generator().manual_seed(seed)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = 0.5 * (1.0 + torch.erf(z[:, 0] / math.sqrt(2.0)))
        k = (u * self.components).long().clamp_(0, self.components - 1)
        return self.means[k] + self.std * z[:, 1:]


def latent_layer(cfg: dict) -> tuple[nn.Module, int]:
    """(the input layer, the width it hands on): a MixtureLatent when cfg["mixture"] > 0, else identity."""
    if cfg["mixture"]:
        return MixtureLatent(cfg["z_dim"], cfg["mixture"], cfg["mixture_std"]), cfg["z_dim"] - 1
    return nn.Identity(), cfg["z_dim"]


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> [Linear, (BatchNorm1d), ReLU] x layers -> Linear -> out_shape (tanh for images)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.latent, width = latent_layer(cfg)
        dims = [width] + [cfg["hidden"]] * cfg["layers"]
        body = []
        for a, b in zip(dims[:-1], dims[1:]):
            body += [nn.Linear(a, b)] + ([nn.BatchNorm1d(b)] if cfg["norm"] == "batch" else []) + [nn.ReLU()]
        body.append(nn.Linear(dims[-1], math.prod(cfg["out_shape"])))
        if len(cfg["out_shape"]) == 3:
            body.append(nn.Tanh())
        self.net = nn.Sequential(*body)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.latent(z)).reshape(z.shape[0], *self.cfg["out_shape"])


class DCGANGenerator(nn.Module):
    """z (N, z_dim) -> images (N, C, 28 | 64, 28 | 64) in [-1, 1]."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        c, size = cfg["out_shape"][0], cfg["out_shape"][1]
        w = cfg["width"]
        bn = cfg["norm"] == "batch"
        self.latent, z_width = latent_layer(cfg)
        # the image layer (w channels in, c out) on the stem kernels' adjoint, same state_dict as torch.nn's
        head, head_t = (HeadConv2d, StemConvTranspose2d) if cfg["impl"] == "genfast" else (nn.Conv2d, nn.ConvTranspose2d)

        def up(a, b, k=4, s=2, p=1):
            return [nn.ConvTranspose2d(a, b, k, s, p, bias=not bn)] + ([nn.BatchNorm2d(b)] if bn else []) + [nn.ReLU()]

        if size == 28:      # 7 -> 14 -> 28
            self.project = nn.Sequential(nn.Linear(z_width, 4 * w * 7 * 7, bias=not bn),
                                         *([nn.BatchNorm1d(4 * w * 7 * 7)] if bn else []), nn.ReLU())
            self.start = (4 * w, 7, 7)
            self.net = nn.Sequential(*up(4 * w, 2 * w), *up(2 * w, w), head(w, c, 3, 1, 1), nn.Tanh())
        else:               # 1 -> 4 -> 8 -> 16 -> 32 -> 64
            self.project = nn.Identity()
            self.start = (z_width, 1, 1)
            self.net = nn.Sequential(*up(z_width, 8 * w, 4, 1, 0), *up(8 * w, 4 * w), *up(4 * w, 2 * w),
                                     *up(2 * w, w), head_t(w, c, 4, 2, 1), nn.Tanh())
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(self.latent(z)).reshape(z.shape[0], *self.start))


# ------------------------------------------------------------------------------ discriminators

class _Packed(nn.Module):
    """The shared front: pack check and reshape; subclasses define `body` and `head`."""

    def pack_input(self, x: torch.Tensor) -> torch.Tensor:
        k = self.cfg["pack"]
        if x.shape[0] % k:
            raise ArgumentError("pack", f"expected a batch that is a multiple of pack {k}, got {x.shape[0]} samples")
        return x.reshape(x.shape[0] // k, k * x.shape[1], *x.shape[2:])


class MinibatchStdDevFeatures(nn.Module):
    """Minibatch stddev on feature vectors (N, F) -> (N, F + channels), through the (N, F, 1, 1) op."""

    def __init__(self, group_size: int, channels: int, impl: str):
        super().__init__()
        self.layer = make_mbstd(group_size, channels, impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x[:, :, None, None])[:, :, 0, 0]


class _ReferenceMinibatchStdDev(nn.Module):
    def __init__(self, group_size: int, channels: int):
        super().__init__()
        self.group_size, self.num_channels = group_size, channels

    def forward(self, x):
        return minibatch_stddev_reference(x, self.group_size, self.num_channels)


def make_mbstd(group_size: int, channels: int, impl: str) -> nn.Module:
    if impl == "torch":
        return _ReferenceMinibatchStdDev(group_size, channels)
    return MinibatchStdDev(group_size, channels)


def norm_act(norm: str, channels: int, impl: str, *, conv: bool) -> list[nn.Module]:
    """[the normalisation then LeakyReLU(0.2)] as one block, so that genfast's fused instance norm
    (both in one op) and the torch pair have the same state_dict keys."""
    if norm == "instance":
        if impl == "genfast":
            return [nn.Sequential(InstanceNorm2d(channels, affine=True, activation="leaky_relu",
                                                 negative_slope=SLOPE))]
        return [nn.Sequential(nn.InstanceNorm2d(channels, affine=True), nn.LeakyReLU(SLOPE))]
    if norm == "batch":
        return [nn.Sequential(nn.BatchNorm2d(channels) if conv else nn.BatchNorm1d(channels), nn.LeakyReLU(SLOPE))]
    if norm == "layer":
        return [nn.Sequential(nn.GroupNorm(1, channels) if conv else nn.LayerNorm(channels), nn.LeakyReLU(SLOPE))]
    return [nn.LeakyReLU(SLOPE)]


class MLPDiscriminator(_Packed):
    """x (N, *in_shape) -> scores (N / pack,): [Linear, norm, LeakyReLU] x layers, then the
    minibatch features, then Linear -> 1."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        dims = [cfg["pack"] * math.prod(cfg["in_shape"])] + [cfg["hidden"]] * cfg["layers"]
        body = []
        for a, b in zip(dims[:-1], dims[1:]):
            body += [nn.Linear(a, b)] + norm_act(cfg["norm"], b, cfg["impl"], conv=False)
        self.body = nn.Sequential(*body)
        f = cfg["hidden"]
        extra = []
        if cfg["minibatch_stddev"]:
            extra.append(MinibatchStdDevFeatures(cfg["minibatch_stddev"], cfg["mbstd_channels"], cfg["impl"]))
            f += cfg["mbstd_channels"]
        if cfg["minibatch_disc"]:
            extra.append(MinibatchDiscrimination(f, cfg["minibatch_disc"], cfg["mbdisc_dims"]))
            f += cfg["minibatch_disc"]
        self.minibatch = nn.Sequential(*extra)
        self.head = nn.Linear(f, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pack_input(x).flatten(1)
        return self.head(self.minibatch(self.body(x)))[:, 0]


class DCGANDiscriminator(_Packed):
    """x (N, C, 28 | 64, 28 | 64) -> scores (N / pack,)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        c, size = cfg["in_shape"][0], cfg["in_shape"][1]
        w, norm, impl = cfg["width"], cfg["norm"], cfg["impl"]
        if impl == "genfast":   # the LeakyReLU fused into the stem; Identity keeps torch's state_dict keys
            layers = [StemConv2d(cfg["pack"] * c, w, 4, 2, 1, activation="leaky_relu", negative_slope=SLOPE),
                      nn.Identity()]
        else:
            layers = [nn.Conv2d(cfg["pack"] * c, w, 4, 2, 1), nn.LeakyReLU(SLOPE)]
        if size == 28:      # 28 -> 14 -> 7 -> 4
            plan = [(w, 2 * w, 4, 2, 1), (2 * w, 4 * w, 3, 2, 1)]
        else:               # 64 -> 32 -> 16 -> 8 -> 4
            plan = [(w, 2 * w, 4, 2, 1), (2 * w, 4 * w, 4, 2, 1), (4 * w, 8 * w, 4, 2, 1)]
        for a, b, k, s, p in plan:
            layers += [nn.Conv2d(a, b, k, s, p, bias=norm == "none")] + norm_act(norm, b, impl, conv=True)
        self.body = nn.Sequential(*layers)
        f = plan[-1][1]
        self.mbstd = (make_mbstd(cfg["minibatch_stddev"], cfg["mbstd_channels"], impl)
                      if cfg["minibatch_stddev"] else nn.Identity())
        f += cfg["mbstd_channels"] if cfg["minibatch_stddev"] else 0
        flat = f * 4 * 4
        self.mbdisc = (MinibatchDiscrimination(flat, cfg["minibatch_disc"], cfg["mbdisc_dims"])
                       if cfg["minibatch_disc"] else nn.Identity())
        self.head = nn.Linear(flat + cfg["minibatch_disc"], 1)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mbstd(self.body(self.pack_input(x)))
        return self.head(self.mbdisc(h.flatten(1)))[:, 0]


def dcgan_init(model: nn.Module) -> None:
    """DCGAN's initialisation: convolutions N(0, 0.02), batch norm scales N(1, 0.02), shifts 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_generator(cfg: dict) -> nn.Module:
    cfg = generator_config(**cfg)
    return MLPGenerator(cfg) if cfg["arch"] == "mlp" else DCGANGenerator(cfg)


def build_discriminator(cfg: dict) -> nn.Module:
    cfg = discriminator_config(**cfg)
    return MLPDiscriminator(cfg) if cfg["arch"] == "mlp" else DCGANDiscriminator(cfg)


__all__ = ["ARCHS", "NORMS", "IMPLS", "GENERATOR_DEFAULTS", "DISCRIMINATOR_DEFAULTS", "generator_config",
           "discriminator_config", "build_generator", "build_discriminator", "MLPGenerator", "DCGANGenerator",
           "MLPDiscriminator", "DCGANDiscriminator", "MinibatchStdDevFeatures", "dcgan_init"]
