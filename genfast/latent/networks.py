"""The autoencoders of genfast.latent, as the course material builds them. Every decoder returns
logits; `reconstruct` (sigmoid) gives images in [0, 1]. Images are (N, C, H, W) in [0, 1].

    TinyAE        one fully connected layer to 20 latents (ReLU), one back (the material's first AE)
    DenseAE       784-512-128-latent-128-512-784, for 28 x 28
    ConvAE        conv/pool to a 3 x 7 x 7 = 147-value bottleneck, conv/upsample back
    DenoisingAE   the same shape with the material's 32 x 7 x 7 bottleneck
    DenseVAE      pytorch/examples' VAE: 784-400-(20 mean, 20 log-variance), 20-400-784
    ConvVAE       conv encoder (32, 64 channels, stride 2) to mean and log-variance, transposed-conv decoder
                  with a one-layer PixelCNN head (PixelVAE); autoregressive=False for the factorised one

Autoencoders: forward(x) -> logits, encode(x) -> z, decode(z) -> logits.
VAEs: forward(x) -> (logits, mean, logvar), with z drawn by the reparameterisation trick in training
mode and z = mean in eval mode; encode(x) -> (mean, logvar); decode(z, context=None) -> logits
(context: the image whose likelihood is wanted, for the autoregressive decoder).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genfast.checks import ArgumentError, check_choice, check_int, check_tensor
from genfast.latent.losses import reparameterize


class _Images(nn.Module):
    """Shared by every model: the input shape it takes, checked by name, and `reconstruct`."""

    variational = False

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def check(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "images", dims=(4,), shape=f"(N, {', '.join(map(str, self.shape))})", floating=True)
        if tuple(x.shape[1:]) != self.shape:
            raise ArgumentError("images", f"expected images of shape (N, {', '.join(map(str, self.shape))}) for "
                                          f"{type(self).__name__}, got shape {tuple(x.shape)}")
        return x

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        out = self(x)
        return torch.sigmoid(out[0] if isinstance(out, tuple) else out)


class TinyAE(_Images):
    """One dense layer to `latent` values (ReLU), one dense layer back (sigmoid in `reconstruct`)."""

    def __init__(self, shape=(1, 28, 28), latent: int = 20):
        super().__init__(shape)
        n = math.prod(self.shape)
        self.encoder = nn.Linear(n, latent)
        self.decoder = nn.Linear(latent, n)

    def encode(self, x):
        return F.relu(self.encoder(self.check(x).flatten(1)))

    def decode(self, z):
        return self.decoder(z).view(-1, *self.shape)

    def forward(self, x):
        return self.decode(self.encode(x))


class DenseAE(_Images):
    def __init__(self, shape=(1, 28, 28), latent: int = 2, hidden=(512, 128)):
        super().__init__(shape)
        n = math.prod(self.shape)
        sizes = [n, *hidden]
        enc = []
        for a, b in zip(sizes, sizes[1:]):
            enc += [nn.Linear(a, b), nn.ReLU()]
        self.encoder = nn.Sequential(*enc, nn.Linear(sizes[-1], latent))
        dec = []
        back = [latent, *reversed(hidden)]
        for a, b in zip(back, back[1:]):
            dec += [nn.Linear(a, b), nn.ReLU()]
        self.decoder = nn.Sequential(*dec, nn.Linear(back[-1], n))

    def encode(self, x):
        return self.encoder(self.check(x).flatten(1))

    def decode(self, z):
        return self.decoder(z).view(-1, *self.shape)

    def forward(self, x):
        return self.decode(self.encode(x))


def _conv_encoder(c: int, widths, bottleneck: int) -> nn.Sequential:
    """3x3 conv + ReLU + 2x2 max-pool per width (28 -> 14 -> 7), then a 3x3 conv to `bottleneck` channels."""
    layers, prev = [], c
    for w in widths:
        layers += [nn.Conv2d(prev, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        prev = w
    return nn.Sequential(*layers, nn.Conv2d(prev, bottleneck, 3, padding=1))


def _conv_decoder(c: int, widths, bottleneck: int) -> nn.Sequential:
    """3x3 conv + ReLU + 2x upsampling per width (7 -> 14 -> 28), then a 3x3 conv to `c` channels."""
    layers, prev = [], bottleneck
    for w in widths:
        layers += [nn.Conv2d(prev, w, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2)]
        prev = w
    return nn.Sequential(*layers, nn.Conv2d(prev, c, 3, padding=1))


class ConvAE(_Images):
    """Convolutional AE for 28 x 28: bottleneck `bottleneck` x 7 x 7 (3 x 7 x 7 = 147 values by default)."""

    def __init__(self, shape=(1, 28, 28), bottleneck: int = 3, widths=(16, 8)):
        super().__init__(shape)
        if self.shape[1] % 4 or self.shape[2] % 4:
            raise ArgumentError("shape", f"expected a height and width divisible by 4, got {self.shape}")
        self.encoder = _conv_encoder(self.shape[0], widths, bottleneck)
        self.decoder = _conv_decoder(self.shape[0], tuple(reversed(widths)), bottleneck)

    def encode(self, x):
        return F.relu(self.encoder(self.check(x)))

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class DenoisingAE(ConvAE):
    """The material's denoising AE: 32-channel convolutions, a 32 x 7 x 7 bottleneck."""

    def __init__(self, shape=(1, 28, 28), bottleneck: int = 32, widths=(32, 32)):
        super().__init__(shape, bottleneck, widths)


class DenseVAE(_Images):
    """pytorch/examples' VAE: fc1 784-400 (ReLU), fc21/fc22 400-20 (mean, log-variance), fc3 20-400
    (ReLU), fc4 400-784."""

    variational = True

    def __init__(self, shape=(1, 28, 28), latent: int = 20, hidden: int = 400):
        super().__init__(shape)
        n = math.prod(self.shape)
        self.fc1 = nn.Linear(n, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, n)
        self.latent = latent

    def encode(self, x):
        h = F.relu(self.fc1(self.check(x).flatten(1)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z, context=None):
        """Logits of p(x | z); `context` (the image, for autoregressive decoders) is not needed here."""
        return self.fc4(F.relu(self.fc3(z))).view(-1, *self.shape)

    def forward(self, x, generator=None):
        mean, logvar = self.encode(x)
        z = reparameterize(mean, logvar, generator=generator) if self.training else mean
        return self.decode(z), mean, logvar


class MaskedConv2d(nn.Conv2d):
    """PixelCNN's masked convolution (van den Oord et al. 2016): output pixel (i, j) sees the input
    only in the rows above i and left of j in row i (mask "A": not pixel (i, j) itself; "B": also
    (i, j)), so the pixels can be predicted, and generated, one at a time in raster order."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask: str = "A"):
        check_choice(mask, "mask", ("A", "B"))
        if kernel_size % 2 == 0:
            raise ArgumentError("kernel_size", f"expected an odd kernel size, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        m = torch.ones_like(self.weight)
        c = kernel_size // 2
        m[:, :, c, c + (mask == "B"):] = 0
        m[:, :, c + 1:] = 0
        self.register_buffer("mask", m, persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class ConvVAE(_Images):
    """Conv encoder 1-32-64 (4x4, stride 2: 28 -> 14 -> 7), a 256-unit dense layer, mean and
    log-variance; the decoder mirrors it with transposed convolutions.

    With `autoregressive` (the default) the decoder is PixelVAE's (Gulrajani et al. 2017) in its
    smallest form: the transposed convolutions give `head` feature channels per pixel, and pixel
    (i, j)'s logits come from those features plus one 3 x 3 masked convolution ("A") of the image's
    pixels above and to the left, then two 1 x 1 layers: p(x | z) = prod_ij p(x_ij | x_<ij, z). The
    masked window sees 4 neighbours only, so shapes and textures must still come from z (trained with
    free bits, see latent.losses.negative_elbo, z keeps ~10 nats). decode(z, context=x) gives the
    logits of x itself (training, the ELBO); decode(z) generates an image pixel by pixel in raster
    order, each pixel set to its predicted mean (the data are grey levels, not binary)."""

    variational = True

    def __init__(self, shape=(1, 28, 28), latent: int = 20, hidden: int = 256, autoregressive: bool = True,
                 head: int = 32):
        super().__init__(shape)
        c, h, w = self.shape
        if h % 4 or w % 4:
            raise ArgumentError("shape", f"expected a height and width divisible by 4, got {self.shape}")
        self.grid = (64, h // 4, w // 4)
        flat = math.prod(self.grid)
        self.encoder = nn.Sequential(nn.Conv2d(c, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU())
        self.mean = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.decoder_fc = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, flat), nn.ReLU())
        self.autoregressive = bool(autoregressive)
        out = check_int(head, "head", 1) if self.autoregressive else c
        self.decoder = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, out, 4, 2, 1))
        if self.autoregressive:
            self.pixel_in = MaskedConv2d(c, head, 3, "A")
            self.pixel_out = nn.Sequential(nn.ReLU(), nn.Conv2d(head, head, 1), nn.ReLU(), nn.Conv2d(head, c, 1))
        self.latent = latent

    def encode(self, x):
        h = self.encoder(self.check(x))
        return self.mean(h), self.logvar(h)

    def decode(self, z, context=None):
        features = self.decoder(self.decoder_fc(z).view(-1, *self.grid))
        if not self.autoregressive:
            return features
        if context is None:
            return self._generate(features)
        return self.pixel_out(features + self.pixel_in(self.check(context)))

    def _generate(self, features):
        """Logits of an image generated in raster order from the decoder's features (N, head, H, W);
        each pixel is its predicted mean, sigmoid(logit). Equal to decode(z, context=the result)."""
        n, _, h, w = features.shape
        c = self.shape[0]
        weight = self.pixel_in.weight * self.pixel_in.mask                      # (head, c, 3, 3)
        above, left = weight[:, :, 0, :], weight[:, :, 1, 0].t()               # the row above; the left pixel
        x = features.new_zeros(n, c, h + 1, w + 2)      # image pixel (i, j) at (i + 1, j + 1): zero padding
        logits = features.new_empty(n, c, h, w)
        for i in range(h):
            row = F.conv1d(x[:, :, i], above, self.pixel_in.bias) + features[:, :, i]      # (N, head, W)
            for j in range(w):
                logit = self.pixel_out((row[:, :, j] + x[:, :, i + 1, j] @ left)[:, :, None, None])[:, :, 0, 0]
                logits[:, :, i, j] = logit
                x[:, :, i + 1, j + 1] = torch.sigmoid(logit)
        return logits

    def forward(self, x, generator=None):
        mean, logvar = self.encode(x)
        z = reparameterize(mean, logvar, generator=generator) if self.training else mean
        return self.decode(z, context=x), mean, logvar

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(mean of q(z|x)) as images; with the autoregressive decoder generated from z alone
        (given x's own pixels as context it would copy them)."""
        return torch.sigmoid(self.decode(self.encode(x)[0]))


MODELS = {"tiny": TinyAE, "dense": DenseAE, "conv": ConvAE, "denoising": DenoisingAE, "vae": DenseVAE,
          "conv_vae": ConvVAE}


#: the constructor options a kind takes beyond its code size (saved in the weights' header)
OPTIONS = {"conv_vae": ("autoregressive",)}


def build(kind: str, shape=(1, 28, 28), latent: int | None = None, **options) -> nn.Module:
    """A fresh model by name (see MODELS); `latent` is the code size (the bottleneck's channels for
    the conv AEs), None for the model's default; `options` as OPTIONS lists them for the kind."""
    check_choice(kind, "kind", MODELS)
    if latent is not None:
        check_int(latent, "latent", 1)
    unknown = sorted(set(options) - set(OPTIONS.get(kind, ())))
    if unknown:
        raise ArgumentError("options", f"{kind} takes {', '.join(OPTIONS.get(kind, ())) or 'no options'}, "
                                       f"got {', '.join(unknown)}")
    cls = MODELS[kind]
    key = "bottleneck" if kind in ("conv", "denoising") else "latent"
    model = cls(shape, **({key: latent} if latent is not None else {}), **options)
    model.kind = kind
    model.options = dict(options)
    return model


__all__ = ["MaskedConv2d", "TinyAE", "DenseAE", "ConvAE", "DenoisingAE", "DenseVAE", "ConvVAE", "MODELS", "OPTIONS", "build"]
