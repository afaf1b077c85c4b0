"""End-to-end Gatys iteration: genfast's objective vs the official PyTorch tutorial's pattern.

One iteration = forward through the feature network up to the last loss layer, content + style (+ TV)
losses, backward to the image; the optimiser step itself is the same on both sides and left out.

"reference" is the pattern of the PyTorch neural-style tutorial (pytorch.org/tutorials/advanced/
neural_style_tutorial): a Normalization module, then the network's layers copied into an nn.Sequential
with a ContentLoss or StyleLoss module inserted after each chosen layer, in-place ReLUs replaced by
out-of-place ones, truncated after the last loss; Gram = torch.mm(F, F^T) / (a*b*c*d) and
F.mse_loss against the target. For EfficientNet-Lite0, which is not a Sequential, the tutorial's loss
modules are hooked on the feature maps of the plain EfficientNet-Lite0 (genfast.reference.efficientnet_lite:
a padded copy before every convolution, nn.BatchNorm2d, nn.ReLU6, as the popular ports write it).
"native" is genfast.style.Objective: the fused style loss and genfast's feature network (for Lite0:
padding inside the convolution, batch norm folded into it). Same function, same weights, same layers,
same image.

Shapes are (1, 3, H, W) images; each network is its own "op" row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genfast import models
from genfast.bench.core import Case
from genfast.reference import efficientnet_lite as plain_lite
from genfast.style import Objective

PRIMARY_OP = "style_loss"
DEFAULT_SHAPES = [(1, 3, 256, 256), (1, 3, 512, 512)]
QUICK_SHAPES = [(1, 3, 64, 64)]
NETWORKS = ("vgg19", "efficientnet_lite0")


# --- the tutorial's modules -------------------------------------------------------------------------

def _tutorial_gram(x):
    a, b, c, d = x.size()
    features = x.view(a * b, c * d)
    return torch.mm(features, features.t()).div(a * b * c * d)


class _ContentLoss(nn.Module):
    def __init__(self, target):
        super().__init__()
        self.target = target.detach()

    def forward(self, x):
        self.loss = F.mse_loss(x, self.target)
        return x


class _StyleLoss(nn.Module):
    def __init__(self, target_feature):
        super().__init__()
        self.target = _tutorial_gram(target_feature).detach()

    def forward(self, x):
        self.loss = F.mse_loss(_tutorial_gram(x), self.target)
        return x


class _Normalization(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.normalize(x)


def _tutorial_vgg(net: models.VGG, content, style, content_layers, style_layers):
    model = nn.Sequential(_Normalization(net))
    content_losses, style_losses = [], []
    last = max(net._names.index(n) for n in content_layers + style_layers)
    for index, (name, layer) in enumerate(zip(net._names, net.features)):
        model.add_module(name, nn.ReLU(inplace=False) if isinstance(layer, nn.ReLU) else layer)
        if name in content_layers:
            loss = _ContentLoss(model(content))
            model.add_module(f"content_loss_{name}", loss)
            content_losses.append(loss)
        if name in style_layers:
            loss = _StyleLoss(model(style))
            model.add_module(f"style_loss_{name}", loss)
            style_losses.append(loss)
        if index == last:
            break
    return model, content_losses, style_losses


class _HookedNet(nn.Module):
    """The tutorial's loss modules applied to the feature maps of a network that is not a Sequential:
    the plain EfficientNet-Lite0 (genfast.reference.efficientnet_lite), same weights."""

    def __init__(self, net, content, style, content_layers, style_layers):
        super().__init__()
        self.normalization = _Normalization(net)
        self.net, self.layers = plain_lite.from_genfast(net), list(dict.fromkeys(content_layers + style_layers))
        with torch.no_grad():
            fc = self.net(self.normalization(content), content_layers)
            fs = self.net(self.normalization(style), style_layers)
        self.content = {k: _ContentLoss(v) for k, v in fc.items()}
        self.style = {k: _StyleLoss(v) for k, v in fs.items()}

    def forward(self, x):
        feats = self.net(self.normalization(x), self.layers)
        for k, m in self.content.items():
            m(feats[k])
        for k, m in self.style.items():
            m(feats[k])


def tutorial_iteration(net, content, style, content_layers, style_layers, content_weight, style_weight):
    """A closure doing one tutorial-style iteration on a fresh image (forward, losses, backward)."""
    if isinstance(net, models.VGG):
        model, c_losses, s_losses = _tutorial_vgg(net, content, style, content_layers, style_layers)
    else:
        model = _HookedNet(net, content, style, content_layers, style_layers)
        c_losses, s_losses = list(model.content.values()), list(model.style.values())
    model.eval().requires_grad_(False)
    image = content.clone().requires_grad_(True)

    def run():
        model(image)
        loss = style_weight * sum(m.loss for m in s_losses) + content_weight * sum(m.loss for m in c_losses)
        loss.backward()
        image.grad = None
        return loss
    return run


def genfast_iteration(net, content, style, content_layers, style_layers, content_weight, style_weight,
                      tile=None):
    obj = Objective(net, content_layers, style_layers, {}, content_weight, style_weight, 0.0, "mse", tile=tile)
    obj.set_content(content)
    obj.set_styles([style], [1.0])
    image = content.clone().requires_grad_(True)

    def run():
        total, _ = obj.value_and_grad(image)
        image.grad = None
        return total
    return run


def _network(name: str):
    if name == "efficientnet_lite0":
        try:
            return models.efficientnet_lite0()
        except models.WeightsNotFoundError:
            return models.efficientnet_lite0(None)    # timing does not depend on the weights' values
    torch.manual_seed(0)
    return models.feature_net(name, None)


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    shapes = shapes or DEFAULT_SHAPES
    out = []
    for name in NETWORKS:
        net = _network(name).to(device)
        for shape in shapes:
            g = torch.Generator().manual_seed(0)
            content = torch.rand(shape, generator=g).to(device)
            style = torch.rand(shape, generator=g).to(device)
            args = (net, content, style, net.content_layers, net.style_layers, 1.0, 1e5)
            fns = {"reference": tutorial_iteration(*args), "native": genfast_iteration(*args)}
            out.append(Case(f"gatys_{name}", shape, "iteration", fns))
    return out


# --- peak memory with and without tiles ------------------------------------------------------------

_MEMORY_SCRIPT = r"""
import json, sys, torch
from genfast.bench import gatys
from genfast.style import Objective
name, size, tile = sys.argv[1], int(sys.argv[2]), (int(sys.argv[3]) or None)
net = gatys._network(name)
g = torch.Generator().manual_seed(0)
content, style = torch.rand(1, 3, size, size, generator=g), torch.rand(1, 3, size, size, generator=g)
obj = Objective(net, net.content_layers, net.style_layers, {}, 1.0, 1e5, 0.0, "mse", tile=tile)
obj.set_content(content)
obj.set_styles([style], [1.0])
image = content.clone().requires_grad_(True)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

base = status("VmHWM")
obj.value_and_grad(image)
obj.value_and_grad(image)
print(json.dumps({"baseline_mb": base, "peak_mb": status("VmHWM")}))
"""


def peak_memory(name: str, size: int, tile: int | None) -> dict:
    """Peak resident memory of Gatys iterations in a fresh process (Linux VmHWM, which unlike ru_maxrss
    is not inherited from the parent), in MB.

    `baseline_mb` is the peak after loading the network and computing the targets; `peak_mb` after
    two iterations; their difference is what the iterations add."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, name, str(size), str(tile or 0)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(device: torch.device, shapes, results=None) -> list[str]:
    """Extra lines for `genfast bench --op gatys`: peak memory of 512^2 (or the largest shape) with and
    without tiles, on the CPU."""
    if device.type != "cpu":
        return []
    size = max(s[-1] for s in shapes)
    lines = []
    for name in NETWORKS:
        for tile in (None, size // 4):
            m = peak_memory(name, size, tile)
            lines.append(f"peak memory {name} {size}x{size} {'tile ' + str(tile) if tile else 'untiled':>9}: "
                         f"{m['peak_mb']:.0f} MB (iterations add {m['peak_mb'] - m['baseline_mb']:.0f} MB "
                         f"to the {m['baseline_mb']:.0f} MB of network and targets)")
    return lines
