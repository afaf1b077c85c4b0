"""How a GAN is judged: mode collapse on the 2-D mixtures, Fréchet distance and class coverage on
images, and the collapse monitor used during training.

Mixtures (PacGAN, Lin et al. 2018, after VEEGAN; computed from 2 500 samples):
- a sample is *high quality* when it lies within 3 standard deviations of its nearest mode;
- a mode is *captured* when it is the nearest mode of at least one high-quality sample;
- *reverse KL*: KL(p || uniform) = sum_i p_i log(M p_i) of the histogram p of the high-quality
  samples over their nearest modes (0 when every mode gets the same share; log M when one mode
  gets them all; infinite when there is no high-quality sample).

Images: in the feature space of a classifier genfast trains (genfast.models.classifiers; there are
no Inception weights offline), the Fréchet distance of torchmetrics (FrechetInceptionDistance with
a custom feature extractor: the classifier's penultimate layer), and class coverage: the histogram
of predicted classes, its KL to uniform, how many classes appear, how many hold 5-15 % of samples.
"""

from __future__ import annotations

import math

import torch

from genfast.checks import ArgumentError, check_number, check_tensor
from genfast.gan.data import mixture

MIXTURE_SAMPLES = 2500


# ---------------------------------------------------------------------------------------- mixtures

def nearest_modes(samples: torch.Tensor, means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(index of the nearest mean (N,), distance to it (N,)) for samples (N, 2), in float64."""
    d = torch.cdist(samples.double(), means.double())
    dist, index = d.min(dim=1)
    return index, dist


def mixture_metrics(samples: torch.Tensor, data: str) -> dict:
    """modes captured, % high quality and reverse KL of `samples` (N, 2) against mixture `data`."""
    check_tensor(samples, "samples", dims=(2,), shape="(N, 2)", floating=True)
    if samples.shape[1] != 2 or samples.shape[0] == 0:
        raise ArgumentError("samples", f"expected a non-empty tensor of shape (N, 2), got {tuple(samples.shape)}")
    means, std = mixture(data)
    index, dist = nearest_modes(samples, means)
    hq = dist <= 3 * std
    counts = torch.bincount(index[hq], minlength=len(means)).double()
    n_hq = int(hq.sum())
    if n_hq:
        p = counts / n_hq
        nz = p > 0
        rev_kl = float((p[nz] * (p[nz] * len(means)).log()).sum())
    else:
        rev_kl = math.inf
    return {"modes": int((counts > 0).sum()), "num_modes": len(means), "high_quality": n_hq / len(samples),
            "reverse_kl": rev_kl, "samples": len(samples), "mode_counts": counts.long().tolist()}


def meets_target(m: dict) -> bool:
    """genfast's mixture target: every mode captured, >= 96 % high quality, reverse KL <= 0.03."""
    return m["modes"] == m["num_modes"] and m["high_quality"] >= 0.96 and m["reverse_kl"] <= 0.03


# ----------------------------------------------------------------------------------- monitoring

def diversity(x: torch.Tensor) -> float:
    """The mean per-feature standard deviation over the batch (x flattened to (N, F))."""
    x = x.detach().flatten(1).double()
    return float(x.std(dim=0, unbiased=False).mean()) if len(x) > 1 else 0.0


def diversity_ratio(fake: torch.Tensor, real: torch.Tensor) -> float:
    """diversity(fake) / diversity(real): near 1 for a healthy generator, near 0 when it collapses
    ("collapse can be detected, since generated samples are of small variance")."""
    r = diversity(real)
    return diversity(fake) / r if r > 0 else math.inf


# ------------------------------------------------------------------------------------- images

class ClassifierFeatures(torch.nn.Module):
    """The feature extractor torchmetrics' Fréchet distance calls: uint8 or [0, 1] float images
    (N, C, H, W), any C (averaged to grey) and size (resized to 28) -> classifier.features."""

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        self.classifier = classifier.eval()
        with torch.no_grad():
            self.num_features = int(classifier.features(torch.zeros(1, 1, 28, 28)).shape[1])

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        x = x.mean(dim=1, keepdim=True)
        if x.shape[-2:] != (28, 28):
            x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", antialias=True,
                                                align_corners=False)
        return self.classifier.features(x)


def frechet_distance(real: torch.Tensor, fake: torch.Tensor, classifier: torch.nn.Module, *,
                     batch_size: int = 500) -> float:
    """The Fréchet distance between real and fake images ([0, 1], (N, C, H, W)) in `classifier`'s
    feature space, by torchmetrics."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    for name, x in (("real", real), ("fake", fake)):
        check_tensor(x, name, dims=(4,), shape="(N, C, H, W)", floating=True)
        if len(x) < 2:
            raise ArgumentError(name, f"expected at least 2 images for a covariance, got {len(x)}")
    fid = FrechetInceptionDistance(feature=ClassifierFeatures(classifier), normalize=True)
    for i in range(0, len(real), batch_size):
        fid.update(real[i:i + batch_size], real=True)
    for i in range(0, len(fake), batch_size):
        fid.update(fake[i:i + batch_size], real=False)
    return float(fid.compute())


@torch.no_grad()
def class_coverage(images: torch.Tensor, classifier: torch.nn.Module, *, num_classes: int | None = None,
                   band: tuple[float, float] = (0.05, 0.15), batch_size: int = 500) -> dict:
    """The histogram of `classifier`'s predicted classes over images ([0, 1], (N, 1, 28, 28)): its
    shares, the KL to uniform, the classes that appear at all, and those within `band` of samples."""
    check_tensor(images, "images", dims=(4,), shape="(N, 1, 28, 28)", floating=True)
    lo, hi = band
    check_number(lo, "band", high=1.0)
    check_number(hi, "band", high=1.0)
    features = ClassifierFeatures(classifier)
    preds = torch.cat([classifier.head(features(images[i:i + batch_size])).argmax(1)
                       for i in range(0, len(images), batch_size)])
    k = num_classes or classifier.head(features(images[:1])).shape[1]
    share = torch.bincount(preds, minlength=k).double() / len(preds)
    nz = share > 0
    return {"shares": share.tolist(), "kl_to_uniform": float((share[nz] * (share[nz] * k).log()).sum()),
            "classes_present": int(nz.sum()), "classes_in_band": int(((share >= lo) & (share <= hi)).sum()),
            "band": [lo, hi], "num_classes": k, "samples": len(preds)}


# ----------------------------------------------------------------------------- a saved generator

def evaluate(generator, *, num: int | None = None, seed: int = 0, classifier=None, data_root=None) -> dict:
    """The report `genfast gan eval` prints for a generator file: mixture metrics for 2-D data; for
    images, with a classifier file (genfast.models.classifiers), the Fréchet distance to the real
    test images and class coverage."""
    from genfast.gan.data import is_mixture, load_images, to_unit
    from genfast.gan.sample import load_generator, sample

    G, cfg = load_generator(generator)
    data = cfg.get("data")
    report = {"generator": str(generator), "data": data, "seed": seed}
    if is_mixture(data):
        report.update(mixture_metrics(sample(G, num or MIXTURE_SAMPLES, seed=seed), data))
        report["meets_target"] = meets_target(report)
        return report
    if classifier is None:
        raise ArgumentError("classifier", "image metrics need a classifier file (genfast.models.classifiers."
                                          "fit_classifier) for their feature space")
    from genfast.models.classifiers import load_classifier

    clf = load_classifier(classifier, name="classifier")
    root = data_root or cfg.get("train_config", {}).get("data_root")
    split = "test" if data == "fashion-mnist" else "train"
    real, _ = load_images(data, root=root, split=split) if data == "fashion-mnist" else load_images(data, root=root)
    fake = to_unit(sample(G, num or min(10000, len(real)), seed=seed))
    real = to_unit(real)
    report["frechet_distance"] = frechet_distance(real, fake, clf)
    report["real_samples"], report["fake_samples"] = len(real), len(fake)
    report["class_coverage"] = class_coverage(fake, clf)
    return report


__all__ = ["evaluate", "MIXTURE_SAMPLES", "nearest_modes", "mixture_metrics", "meets_target", "diversity", "diversity_ratio",
           "ClassifierFeatures", "frechet_distance", "class_coverage"]
