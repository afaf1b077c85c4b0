"""GANs: minimax, non-saturating, WGAN and WGAN-GP training, mode-collapse countermeasures, and
how collapse is measured.

    result = train_gan(GANConfig(data="ring8"), "ring8.safetensors")     # the recommended recipe
    G, meta = load_generator("ring8.safetensors")
    print(mixture_metrics(sample(G, 2500), "ring8"))                     # modes, high quality, reverse KL

Files: losses.py (the objectives and penalties, one formula each), data.py (the 2-D mixtures,
image data in [-1, 1]), networks.py (MLP and DCGAN generators and discriminators with minibatch
stddev / discrimination, packing and the normalisation choice), train.py (the k:1 loop on
genfast.training), sample.py (load, sample, interpolate, plots), metrics.py (mixture metrics,
Fréchet distance and class coverage, the collapse monitor), demos.py (the material's pictures),
cli.py (`genfast gan train|sample|eval|interpolate|demo`).
"""

from genfast.gan.data import MIXTURES, load_images, mixture, sample_mixture
from genfast.gan.losses import (LOSSES, clip_weights, critic_loss_wgan, d_loss_minimax, discriminator_loss,
                                g_loss_nonsaturating, g_loss_saturating, g_loss_wgan, generator_loss,
                                gradient_penalty, r1_penalty)
from genfast.gan.metrics import class_coverage, diversity_ratio, frechet_distance, mixture_metrics
from genfast.gan.networks import build_discriminator, build_generator
from genfast.gan.sample import interpolate, load_generator, sample, save_generator
from genfast.gan.train import GANConfig, RECIPES, train_gan

__all__ = ["MIXTURES", "mixture", "sample_mixture", "load_images", "LOSSES", "d_loss_minimax", "g_loss_saturating",
           "g_loss_nonsaturating", "critic_loss_wgan", "g_loss_wgan", "clip_weights", "gradient_penalty",
           "r1_penalty", "discriminator_loss", "generator_loss", "mixture_metrics", "diversity_ratio",
           "frechet_distance", "class_coverage", "build_generator", "build_discriminator", "load_generator",
           "sample", "interpolate", "save_generator", "GANConfig", "RECIPES", "train_gan"]
