"""Where a unit of a feature map looks in the input: strides, kernel sizes and padding, written once.

A feature network is, along each image axis, a chain of windowed operations (convolutions and
pools), each with a kernel k, a stride s and a padding before the first input pixel p. Following
the chain from the input (Dumoulin & Visin 2016; Araujo et al., "Computing receptive fields", Distill
2019), with j the distance in input pixels between neighbouring units, r the receptive field's size
and c the input position of the first unit's centre:

    j_out = j_in * s          r_out = r_in + (k - 1) * j_in          c_out = c_in + ((k - 1) / 2 - p) * j_in

Unit i of the layer then sees the input pixels [c + i j - (r - 1) / 2, c + i j + (r - 1) / 2]
(clipped to the image: what lies outside is padding). Residual additions do not widen it (the
identity path sees a subset of what the convolution path sees), so a chain is enough.

TensorFlow's "SAME" padding (EfficientNet-Lite0) depends on the size of each layer's input: for
stride 2 the extra pixel goes at the end, so the padding before the input is floor(total / 2) with
total = max((ceil(n / s) - 1) s + k - n, 0). The geometry is therefore computed for a given input
size; VGG's (padding 1, pools of 2) does not depend on it.

`chain(net, layer)` lists the windows up to a layer of genfast's feature networks; `geometry(net,
layer, size)` gives, per axis, the unit spacing, the receptive field and the feature map's size;
`receptive_box(...)` the input box of one unit. Tiling (tiling.py) and the top-9 patches
(patches.py) both use these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genfast.checks import ArgumentError
from genfast.models import VGG, EfficientNetLite0, FeatureNet

SAME = "same"   # TensorFlow's SAME padding, decided by the input size


@dataclass(frozen=True)
class Window:
    """One windowed operation along an axis: kernel, stride and padding (an int before the input,
    or SAME)."""

    kernel: int
    stride: int
    padding: int | str


@dataclass(frozen=True)
class AxisGeometry:
    """A layer's geometry along one axis of an input of `input_size` pixels."""

    input_size: int
    jump: int        # input pixels between neighbouring units (the layer's total stride)
    size: int        # receptive field of one unit, in input pixels
    first: int       # input position of the first pixel of unit 0's receptive field (may be < 0)
    length: int      # units along this axis (the feature map's size)

    def span(self, index: int) -> tuple[int, int]:
        """[start, stop) of unit `index`'s receptive field, clipped to the input."""
        start = self.first + index * self.jump
        return max(0, start), min(self.input_size, start + self.size)


def chain(net: FeatureNet, layer: str) -> list[Window]:
    """The windows (convolutions and pools) from the input up to `layer` (its output), in order."""
    net.check_layers([layer], "layer")
    if isinstance(net, EfficientNetLite0):
        return _lite0_chain(net, layer)
    if isinstance(net, VGG):
        return _vgg_chain(net, layer)
    raise ArgumentError("network", f"no receptive-field geometry for {type(net).__name__} "
                                   f"(known: EfficientNetLite0, VGG)")


def _lite0_chain(net: EfficientNetLite0, layer: str) -> list[Window]:
    if layer == "logits":
        raise ArgumentError("layer", "'logits' is pooled over the whole image: it has no receptive field "
                                     "of its own; choose a spatial layer")

    def conv(module):
        k, s = module.kernel_size[0], module.stride[0]
        # the network pads stride-1 convolutions symmetrically by k // 2 (= SAME for odd k)
        return Window(k, s, SAME if s > 1 else k // 2)

    windows = [conv(net._conv_stem)]
    if layer == "stem":
        return windows
    for i, block in enumerate(net._blocks):
        if block.has_expand:
            windows.append(conv(block._expand_conv))
            if layer == f"block{i}_expand":
                return windows
        windows.append(conv(block._depthwise_conv))
        if layer == f"block{i}_dw":
            return windows
        windows.append(conv(block._project_conv))
        if layer == f"block{i}":
            return windows
    windows.append(conv(net._conv_head))    # "head"
    return windows


def _vgg_chain(net: VGG, layer: str) -> list[Window]:
    windows = []
    for name, module in zip(net._names, net.features):
        if hasattr(module, "kernel_size"):      # Conv2d, MaxPool2d, AvgPool2d
            pair = lambda v: v if isinstance(v, int) else v[0]   # noqa: E731 - square windows
            windows.append(Window(pair(module.kernel_size), pair(module.stride), pair(module.padding)))
        if name == layer:
            return windows
    raise AssertionError(f"{layer} not in the VGG chain")   # check_layers let only known names in


def axis_geometry(windows: list[Window], input_size: int) -> AxisGeometry:
    """The recurrence of the module docstring along one axis of `input_size` pixels."""
    jump, size, centre, n = 1, 1, 0.0, input_size
    for w in windows:
        if w.padding == SAME:
            out = math.ceil(n / w.stride)
            before = max((out - 1) * w.stride + w.kernel - n, 0) // 2
        else:
            before = w.padding
            out = (n + 2 * before - w.kernel) // w.stride + 1
        centre += ((w.kernel - 1) / 2 - before) * jump
        size += (w.kernel - 1) * jump
        jump *= w.stride
        n = out
    return AxisGeometry(input_size, jump, size, round(centre - (size - 1) / 2), n)


def geometry(net: FeatureNet, layer: str, input_hw: tuple[int, int]) -> tuple[AxisGeometry, AxisGeometry]:
    """(rows, columns) geometry of `layer` for an input of `input_hw` = (height, width) pixels."""
    windows = chain(net, layer)
    return axis_geometry(windows, int(input_hw[0])), axis_geometry(windows, int(input_hw[1]))


def receptive_box(net: FeatureNet, layer: str, input_hw: tuple[int, int], y: int, x: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the input pixels unit (y, x) of `layer` sees, bottom/right
    exclusive, clipped to the image."""
    rows, cols = geometry(net, layer, input_hw)
    (top, bottom), (left, right) = rows.span(y), cols.span(x)
    return top, left, bottom, right
