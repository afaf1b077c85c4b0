"""The plain DCGAN that genfast.gan's Fashion-MNIST target is measured against: the network and loop
of PyTorch-GAN's implementations/dcgan/dcgan.py (eriklindernoren), written out again here.

    G: Linear(z 100 -> 128 x 8 x 8), BatchNorm, then twice (upsample x2, 3x3 conv, BatchNorm(eps 0.8),
       LeakyReLU 0.2) to 128 then 64 channels, a 3x3 conv to 1 channel, tanh: 32 x 32 images
    D: four blocks (3x3 conv stride 2, LeakyReLU 0.2, Dropout2d 0.25, BatchNorm(eps 0.8) except the
       first) of 16, 32, 64, 128 channels, a linear layer and a sigmoid
    loop: per batch of 64, one G step (BCE of D(G(z)) against "real"), then one D step (the mean of the
       BCE on the real batch and on the detached fakes); Adam 2e-4, betas (0.5, 0.999); weights N(0, 0.02),
       batch-norm weights N(1, 0.02); images resized to 32 x 32 and scaled to [-1, 1]

The only changes: the data is a tensor instead of a torchvision DataLoader (a seeded permutation per
epoch plays its shuffle), the loop is a function that stops after a wall-clock budget (the target
compares the two at equal training time), and it is seeded.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

LATENT = 100
SIZE = 32


class Generator(nn.Module):
    def __init__(self, channels: int = 1):
        super().__init__()
        self.init_size = SIZE // 4
        self.l1 = nn.Sequential(nn.Linear(LATENT, 128 * self.init_size ** 2))
        self.conv_blocks = nn.Sequential(
            nn.BatchNorm2d(128),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, channels, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, z):
        out = self.l1(z).view(z.shape[0], 128, self.init_size, self.init_size)
        return self.conv_blocks(out)


class Discriminator(nn.Module):
    def __init__(self, channels: int = 1):
        super().__init__()

        def block(in_filters, out_filters, bn=True):
            layers = [nn.Conv2d(in_filters, out_filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]
            if bn:
                layers.append(nn.BatchNorm2d(out_filters, 0.8))
            return layers

        self.model = nn.Sequential(*block(channels, 16, bn=False), *block(16, 32), *block(32, 64), *block(64, 128))
        self.adv_layer = nn.Sequential(nn.Linear(128 * (SIZE // 16) ** 2, 1), nn.Sigmoid())

    def forward(self, img):
        return self.adv_layer(self.model(img).flatten(1))


def weights_init_normal(m):
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm2d") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.constant_(m.bias, 0.0)


def resize(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (N, C, 28, 28) -> (N, C, 32, 32), as torchvision's Resize(32) on the PIL image."""
    return F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)


def train_plain(images: torch.Tensor, seconds: float, *, seed: int = 0, batch_size: int = 64,
                log=print, log_every: int = 200) -> tuple[Generator, int]:
    """Train on images in [-1, 1] (N, C, H, W) until `seconds` of wall-clock time have passed (at a
    whole step). Returns (the generator, the number of steps)."""
    torch.manual_seed(seed)
    data = resize(images)
    generator, discriminator = Generator(data.shape[1]), Discriminator(data.shape[1])
    generator.apply(weights_init_normal)
    discriminator.apply(weights_init_normal)
    adversarial_loss = nn.BCELoss()
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    start, steps = time.perf_counter(), 0
    while True:
        for idx in torch.randperm(len(data)).split(batch_size):
            if time.perf_counter() - start >= seconds:
                return generator.eval(), steps
            imgs = data[idx]
            valid = torch.ones(len(imgs), 1)
            fake = torch.zeros(len(imgs), 1)

            optimizer_G.zero_grad()
            z = torch.randn(len(imgs), LATENT)
            gen_imgs = generator(z)
            g_loss = adversarial_loss(discriminator(gen_imgs), valid)
            g_loss.backward()
            optimizer_G.step()

            optimizer_D.zero_grad()
            real_loss = adversarial_loss(discriminator(imgs), valid)
            fake_loss = adversarial_loss(discriminator(gen_imgs.detach()), fake)
            d_loss = (real_loss + fake_loss) / 2
            d_loss.backward()
            optimizer_D.step()
            steps += 1
            if log is not None and steps % log_every == 0:
                log(f"[step {steps}] [D loss: {d_loss.item():.4f}] [G loss: {g_loss.item():.4f}] "
                    f"[{time.perf_counter() - start:.0f} s]")


@torch.no_grad()
def sample_plain(generator: Generator, n: int, *, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """n samples in [-1, 1], (n, C, 32, 32)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, LATENT, generator=gen)
    return torch.cat([generator(z[i:i + batch_size]) for i in range(0, n, batch_size)])
