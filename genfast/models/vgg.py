"""VGG-16 and VGG-19 feature stacks with the layer names of the style-transfer literature.

`self.features` is built exactly like torchvision's `vgg19().features` (conv, ReLU, ..., max pool as one
nn.Sequential), so the keys are `features.N.weight` / `features.N.bias` and a torchvision checkpoint
(`vgg19-dcbb9e9d.pth`) loads unchanged; its `classifier.*` keys are ignored. The Caffe-converted models
that neural-style / neural-style-pt use (`vgg19-d01eb7cb.pth`, `vgg16-00b39a1b.pth`) share that layout
but expect BGR input in 0..255 minus the Caffe mean; Leon Gatys' `vgg_conv.pth` names its convolutions
`conv1_1.weight`, ..., with the same Caffe input. `preprocess` selects the input normalisation.
"""

from __future__ import annotations

import torch
from torch import nn

from genfast.models.base import FeatureNet

CONFIGS = {
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

#: torchvision's and neural-style-pt's published files (name -> preprocessing)
KNOWN_FILES = {
    "vgg19-dcbb9e9d.pth": "torchvision", "vgg16-397923af.pth": "torchvision",
    "vgg19-d01eb7cb.pth": "caffe", "vgg16-00b39a1b.pth": "caffe", "vgg_conv.pth": "caffe",
}
URLS = {
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
}


class VGG(FeatureNet):
    def __init__(self, arch: str = "vgg19", *, pooling: str = "max", preprocess: str = "torchvision"):
        super().__init__()
        if arch not in CONFIGS:
            raise ValueError(f"arch: expected one of {sorted(CONFIGS)}, got {arch!r}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling: expected 'max' or 'avg', got {pooling!r}")
        self.arch = arch
        self.pooling = pooling
        modules, self._names, self._conv_index = [], [], {}
        in_ch = 3
        for block, widths in enumerate(CONFIGS[arch], start=1):
            for i, width in enumerate(widths, start=1):
                self._conv_index[f"conv{block}_{i}"] = len(modules)
                modules.append(nn.Conv2d(in_ch, width, 3, padding=1))
                modules.append(nn.ReLU(inplace=True))
                self._names += [f"conv{block}_{i}", f"relu{block}_{i}"]
                in_ch = width
            pool = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
            modules.append(pool)
            self._names.append(f"pool{block}")
        self.features = nn.Sequential(*modules)
        self.set_preprocess(preprocess)
        # conv4_2 content and relu1_1..relu5_1 style: Gatys et al. 2016, neural-style's defaults
        self.content_layers = ["relu4_2"]
        self.style_layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
        self.style_layer_weights = {}

    def set_preprocess(self, preprocess: str) -> None:
        if preprocess == "torchvision":
            self.mean.copy_(torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.std.copy_(torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
            self.input_scale, self.bgr = 1.0, False
        elif preprocess == "caffe":
            self.mean.copy_(torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))
            self.std.fill_(1.0)
            self.input_scale, self.bgr = 255.0, True
        else:
            raise ValueError(f"preprocess: expected 'torchvision' or 'caffe', got {preprocess!r}")
        self.preprocess = preprocess

    def _stage_names(self):
        return self._names

    def _run(self, x, wanted):
        out = {}
        last = max(self._names.index(name) for name in wanted)
        for index, (name, module) in enumerate(zip(self._names, self.features)):
            if isinstance(module, nn.ReLU) and self._names[index - 1] in wanted:
                x = torch.relu(x)     # the conv output was handed out: do not overwrite it in place
            else:
                x = module(x)
            if name in wanted:
                out[name] = x
            if index == last:
                break
        return out

    # -- checkpoints ---------------------------------------------------------------------------
    def load_checkpoint(self, state: dict, source: str = "") -> None:
        """Load torchvision (`features.N.*`) or Gatys-style (`convB_I.*`) keys; ignore the classifier."""
        state = {k.removeprefix("module."): v for k, v in state.items()}
        mine = {}
        for name, index in self._conv_index.items():
            for part in ("weight", "bias"):
                for key in (f"features.{index}.{part}", f"{name}.{part}"):
                    if key in state:
                        mine[f"features.{index}.{part}"] = state[key]
                        break
        expected = {k for k in self.state_dict()}
        missing = sorted(expected - set(mine))
        if missing:
            raise ValueError(f"weights: {source or 'checkpoint'} is not a {self.arch} checkpoint: missing "
                             f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} "
                             f"(found keys such as {', '.join(list(state)[:4])})")
        for key, value in mine.items():
            want = self.state_dict()[key].shape
            if tuple(value.shape) != tuple(want):
                raise ValueError(f"weights: {key} in {source or 'checkpoint'} has shape {tuple(value.shape)}, "
                                 f"expected {tuple(want)} for {self.arch}")
        self.load_state_dict(mine)
