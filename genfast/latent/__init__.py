"""Autoencoders, variational autoencoders and denoising: train them, look inside them.

    networks.py   TinyAE, DenseAE, ConvAE (3 x 7 x 7 bottleneck), DenoisingAE (32 x 7 x 7), DenseVAE, ConvVAE
    losses.py     reparameterisation, Bernoulli / Gaussian reconstruction, KL, negative ELBO, the denoising noise
    train.py      the loop on genfast.training (checkpoints, resume, Ctrl-C, metrics log)
    sample.py     save/load, prior samples, resampling one input, interpolation, the 2-D manifold
    metrics.py    held-out loss in nats per image (the VAE's negative ELBO), latent codes
    plots.py      latent scatter (AE vs VAE), image rows (triplets, interpolations), sheets
    demo.py       the tiny AE that memorises one photo
    reference.py  pytorch/examples' VAE as written there, the target's comparison
    cli.py        genfast latent train|plot|sample
"""

from genfast.latent.demo import memorisation
from genfast.latent.losses import add_noise, kl_divergence, negative_elbo, reconstruction, reparameterize
from genfast.latent.metrics import evaluate, latent_codes
from genfast.latent.networks import MODELS, ConvAE, ConvVAE, DenoisingAE, DenseAE, DenseVAE, TinyAE, build
from genfast.latent.plots import image_rows, image_sheet, latent_scatter
from genfast.latent.sample import interpolate, load, manifold, resample, sample_prior, save_model
from genfast.latent.train import TrainConfig, as_images, train

__all__ = ["TinyAE", "DenseAE", "ConvAE", "DenoisingAE", "DenseVAE", "ConvVAE", "MODELS", "build", "reparameterize",
           "reconstruction", "kl_divergence", "negative_elbo", "add_noise", "TrainConfig", "train", "as_images",
           "evaluate", "latent_codes", "load", "save_model", "sample_prior", "resample", "interpolate", "manifold",
           "latent_scatter", "image_rows", "image_sheet", "memorisation"]
