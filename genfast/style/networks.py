"""Feed-forward stylizers: TransformerNet (Johnson et al. 2016 with Ulyanov's instance norm) and
MultiStyleNet (the same body with conditional instance norm, Dumoulin et al. 2017).

TransformerNet has the module names and parameter shapes of the `TransformerNet` in pytorch/examples
`fast_neural_style` (conv1/in1 ... res1..res5 ... deconv3), so its pretrained checkpoints (candy,
mosaic, udnie, rain princess) load unchanged: the stale `running_mean`/`running_var` keys those
files carry are dropped by genfast.nn.InstanceNorm2d, and a `module.` prefix (saved from
DataParallel/DDP) is stripped by `load_stylizer`. Each instance norm is fused with the ReLU after
it (genfast.ops.instance_norm).

Speed (same function as the plain network, to float32 rounding; every path is differentiable and
used in training too): on the CPU the network runs channels_last; each nearest x2 upsample +
reflection pad + 3x3 convolution is one 2x2 "sub-pixel" convolution at the input resolution with
4 * C_out outputs (the upsampled image is never built; 2.25x fewer multiply-adds); the 9x9 32 -> 3 output
convolution runs on a 2x2 space-to-depth input (oneDNN is slow with 3 output channels). Under
no_grad / inference_mode the re-laid-out weights are cached per module and rebuilt when a
parameter changes. `genfast bench --op stylizer` measures it against the plain network.

Convention (as in pytorch/examples): input and output are RGB in [0, 255], float, (N, 3, H, W);
the output is not clamped (clamp when converting to an image).

The plain twin written the pytorch/examples way (torch.nn.InstanceNorm2d + ReLU) is
genfast/reference/transformer_net.py.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from genfast.checks import check_int
from genfast.nn import ConditionalInstanceNorm2d, InstanceNorm2d


MIN_SIZE = 5  # the 9x9 convolutions' reflection padding of 4 needs at least 5 pixels

def _prepared(module: nn.Module, tag: str, weight: torch.Tensor, bias: torch.Tensor | None, channels_last: bool,
              make) -> tuple[torch.Tensor, torch.Tensor | None]:
    """make(weight, bias, channels_last) -> the (weight, bias) a fast path convolves with.

    With autograd on, computed every call (differentiable: training sees the parameters). With
    autograd off (no_grad / inference_mode, i.e. inference), cached on the module and rebuilt when a
    parameter is replaced or changed in place (its data pointer or version counter moves): the
    re-laid-out or transformed weights are then not rebuilt on every frame."""
    if torch.is_grad_enabled():
        return make(weight, bias, channels_last)
    try:
        key = (tag, channels_last, weight.data_ptr(), weight._version, weight.dtype, weight.device,
               None if bias is None else (bias.data_ptr(), bias._version))
    except RuntimeError:  # inference tensors have no version counter: do not cache
        return make(weight, bias, channels_last)
    cached = module.__dict__.get("_prepared_weights")
    if cached is None or cached[0] != key:
        cached = (key, make(weight, bias, channels_last))
        module.__dict__["_prepared_weights"] = cached
    return cached[1]


def _as_is(weight, bias, channels_last):
    return (weight.contiguous(memory_format=torch.channels_last) if channels_last else weight), bias


class ConvLayer(nn.Module):
    """Reflection padding of kernel_size // 2, then a convolution (pytorch/examples' ConvLayer)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv2d
        xp = self.reflection_pad(x)
        cl = xp.is_contiguous(memory_format=torch.channels_last) and xp.device.type == "cpu"
        if (cl and conv.out_channels <= 8 and conv.kernel_size[0] >= 5 and conv.stride == (1, 1)
                and conv.padding == (0, 0) and conv.dilation == (1, 1) and conv.groups == 1
                and xp.shape[-1] % 2 == 0 and xp.shape[-2] % 2 == 0):
            w2, b2 = _prepared(self, "s2d", conv.weight, conv.bias, cl, _s2d_weights)
            return _s2d_apply(xp, w2, b2, conv.kernel_size[0])
        w, b = _prepared(self, "conv", conv.weight, conv.bias, cl, _as_is)
        return torch.nn.functional.conv2d(xp, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)


# A convolution with few output channels (deconv3: 32 -> 3, 9x9 at full resolution) runs at a
# fraction of oneDNN's speed: its kernels vectorise over output channels. Rewritten on the 2x2
# space-to-depth input (4 * C_in channels at half the resolution) it becomes a 5x5 convolution with
# 4 * C_out outputs, one per output phase (a_y, a_x): output pixel (2P + a) = sum over k of
# w[k] * x[2P + a + k] = sum over (M, r) of w[2M + r - a] * x_s2d[r][P + M]: 23% more
# multiply-adds (taps outside the 9x9 kernel are zero), but at oneDNN's full speed (the measured
# gain is in benchmarks/RESULTS.md, "Feed-forward stylizer inference").
def _s2d_taps(k: int, device) -> tuple[torch.Tensor, int]:
    """Indices into the kernel axis padded by one zero each side: [a, M, r] -> 2M + r - a + 1."""
    m = (k + 1 + 1) // 2  # taps M = 0 .. m - 1 cover k + 1 positions (a + k for a in {0, 1})
    a = torch.arange(2, device=device).view(2, 1, 1)
    mm = torch.arange(m, device=device).view(1, m, 1)
    r = torch.arange(2, device=device).view(1, 1, 2)
    return (2 * mm + r - a + 1).reshape(-1), m


def _s2d_weights(weight, bias, channels_last=True):
    co, ci, k, _ = weight.shape
    idx, m = _s2d_taps(k, weight.device)
    wp = torch.nn.functional.pad(weight, (1, 1, 1, 1))
    # (co, ci, ay*My*ry, kx) -> (co, ci, ay, My, ry, ax*Mx*rx) -> (co, ci, ay, My, ry, ax, Mx, rx)
    g = wp.index_select(2, idx).index_select(3, idx).reshape(co, ci, 2, m, 2, 2, m, 2)
    # output channels in pixel_shuffle's order (co, ay, ax); input channels in _space_to_depth's (ry, rx, ci)
    w2 = g.permute(0, 2, 5, 4, 7, 1, 3, 6).reshape(4 * co, 4 * ci, m, m)
    b2 = None if bias is None else bias.repeat_interleave(4)
    return w2.contiguous(memory_format=torch.channels_last), b2


def _space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) channels_last -> (N, 4C, H/2, W/2) channels_last with channels ordered (ry, rx, c)
    (pixel_unshuffle's are (c, ry, rx)): one copy that moves whole C-vectors."""
    n, c, h, w = x.shape
    nhwc = x.permute(0, 2, 3, 1).reshape(n, h // 2, 2, w // 2, 2, c)
    return nhwc.permute(0, 1, 3, 2, 4, 5).reshape(n, h // 2, w // 2, 4 * c).permute(0, 3, 1, 2)


def _s2d_apply(xp, w2, b2, k: int):
    xs = _space_to_depth(xp)
    y = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(xs, w2, b2), 2)
    h, w = xp.shape[-2] - k + 1, xp.shape[-1] - k + 1
    return y[:, :, :h, :w]


def space_to_depth_conv(xp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """conv2d(xp, weight, bias) (stride 1, no padding, odd square kernel, even H and W of xp) computed
    as a convolution of pixel_unshuffle(xp, 2), then pixel_shuffle of its output."""
    w2, b2 = _s2d_weights(weight, bias)
    return _s2d_apply(xp, w2, b2, weight.shape[-1])


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling by `upsample`, then a ConvLayer (pytorch/examples' layer;
    this replaces transposed convolutions, which leave checkerboard artefacts)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, upsample: int | None = None):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv2d
        if self.upsample == 2 and conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (0, 0) \
                and conv.dilation == (1, 1) and conv.groups == 1:
            cl = x.is_contiguous(memory_format=torch.channels_last)
            w4, b4 = _prepared(self, "subpixel", conv.weight, conv.bias, cl, _subpixel_weights)
            return _subpixel_apply(x, w4, b4)
        if self.upsample:
            x = torch.nn.functional.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return conv(self.reflection_pad(x))


# Nearest x2 upsampling, reflection padding of 1 and a 3x3 convolution, without the upsampled image.
# Rows of the padded, upsampled image are rows of x: padded[r] = x[clamp((r - 1) // 2, 0, H - 1)],
# so output row 2i + a reads x rows {i - 1, i, i} (a = 0) or {i, i, i + 1} (a = 1) through kernel
# rows 0, 1, 2, and likewise for columns. Each of the 4 output phases (a, b) is therefore a 2x2
# convolution of x padded by replication, with the kernel rows/columns that read the same x row
# summed: 16 taps per 2x2 output block instead of 36, as one convolution with 4 * C_out outputs at
# the input resolution, then the phases interleaved. Plain differentiable torch ops throughout.
def _phase_taps(w: torch.Tensor, dim: int) -> torch.Tensor:
    """Along kernel dimension `dim` (3 taps): the 4 taps of phases 0 and 1 (a = 0 reads rows
    (i - 1, i) with kernel rows (0, 1 + 2); a = 1 reads (i, i + 1) with (0 + 1, 2))."""
    t0, t1, t2 = w.unbind(dim)
    return torch.stack([t0, t1 + t2, t0 + t1, t2], dim=dim)


def _subpixel_weights(weight, bias, channels_last):
    co, ci = weight.shape[:2]
    # (co, ci, 4, 4) -> (co, ci, a, ky', b, kx') -> (a, b, co, ci, ky', kx'): phase (a, b)'s 2x2 kernel
    w4 = _phase_taps(_phase_taps(weight, 2), 3).reshape(co, ci, 2, 2, 2, 2).permute(2, 4, 0, 1, 3, 5)
    w4 = w4.reshape(4 * co, ci, 2, 2)
    if channels_last:
        w4 = w4.contiguous(memory_format=torch.channels_last)
    return w4, (None if bias is None else bias.repeat(4))


def _subpixel_apply(x, w4, b4):
    n, _, h, w = x.shape
    co = w4.shape[0] // 4
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    z = torch.nn.functional.conv2d(xp, w4, b4)
    if x.is_contiguous(memory_format=torch.channels_last):
        # z: (N, 4 * co, H + 1, W + 1) channels_last, i.e. (N, H + 1, W + 1, a, b, co) in memory;
        # output pixel (2i + a, 2j + b) is z[n, i + a, j + b, a, b]
        z = z.permute(0, 2, 3, 1).unflatten(3, (2, 2, co))
        out = torch.empty((n, h, 2, w, 2, co), dtype=z.dtype, device=z.device)
        for a in (0, 1):
            for b in (0, 1):
                out[:, :, a, :, b, :] = z[:, a:a + h, b:b + w, a, b, :]
        return out.view(n, 2 * h, 2 * w, co).permute(0, 3, 1, 2)  # (N, co, 2H, 2W) channels_last
    z = z.unflatten(1, (2, 2, co))
    out = torch.empty((n, co, h, 2, w, 2), dtype=z.dtype, device=z.device)
    for a in (0, 1):
        for b in (0, 1):
            out[:, :, :, a, :, b] = z[:, a, b, :, a:a + h, b:b + w]
    return out.view(n, co, 2 * h, 2 * w)


def upsample2_reflect_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """conv2d(reflection_pad(interpolate(x, scale_factor=2, mode="nearest"), 1), weight, bias)."""
    w4, b4 = _subpixel_weights(weight, bias, x.is_contiguous(memory_format=torch.channels_last))
    return _subpixel_apply(x, w4, b4)


class ResidualBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus the input (the residual block of Johnson et al., no final ReLU)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = InstanceNorm2d(channels, affine=True, activation="relu")
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = InstanceNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.in2(self.conv2(self.in1(self.conv1(x)))) + x


class TransformerNet(nn.Module):
    """Johnson et al.'s image transformation network, state_dict-compatible with pytorch/examples."""

    def __init__(self):
        super().__init__()
        self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = InstanceNorm2d(32, affine=True, activation="relu")
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = InstanceNorm2d(64, affine=True, activation="relu")
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = InstanceNorm2d(128, affine=True, activation="relu")
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = InstanceNorm2d(64, affine=True, activation="relu")
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = InstanceNorm2d(32, affine=True, activation="relu")
        self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, "TransformerNet")
        x, layout = _to_fast_layout(x)
        if _one_image_at_a_time(x):
            y = torch.cat([self._body(x[i:i + 1]) for i in range(x.shape[0])])
        else:
            y = self._body(x)
        return y.contiguous(memory_format=layout)

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        y = self.in1(self.conv1(x))
        y = self.in2(self.conv2(y))
        y = self.in3(self.conv3(y))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.in4(self.deconv1(y))
        y = self.in5(self.deconv2(y))
        return self.deconv3(y)


class _CondResidualBlock(nn.Module):
    def __init__(self, channels: int, num_styles: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = ConditionalInstanceNorm2d(channels, num_styles, activation="relu")
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = ConditionalInstanceNorm2d(channels, num_styles)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.in2(self.conv2(self.in1(self.conv1(x), style)), style) + x


class MultiStyleNet(nn.Module):
    """TransformerNet's body with one instance-norm scale/shift row per style (Dumoulin et al.).

    forward(x, style): `style` is an int64 (N,) tensor of style indices (or a Python int for the
    whole batch) or an (N, num_styles) float tensor of mixing weights; a mixing row blends the
    styles' scale/shift rows, which is how the network blends styles.
    """

    def __init__(self, num_styles: int):
        super().__init__()
        check_int(num_styles, "num_styles", 1, where="MultiStyleNet")
        self.num_styles = num_styles
        s = num_styles
        self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = ConditionalInstanceNorm2d(32, s, activation="relu")
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = ConditionalInstanceNorm2d(64, s, activation="relu")
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = ConditionalInstanceNorm2d(128, s, activation="relu")
        self.res = nn.ModuleList(_CondResidualBlock(128, s) for _ in range(5))
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = ConditionalInstanceNorm2d(64, s, activation="relu")
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = ConditionalInstanceNorm2d(32, s, activation="relu")
        self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)

    def conditional_norms(self) -> list[ConditionalInstanceNorm2d]:
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm2d)]

    def style_tensor(self, style, n: int, device) -> torch.Tensor:
        """Normalise `style` (int, int64 (N,), or float (N, S) / (S,) mixing weights) for a batch of n."""
        if isinstance(style, bool):
            raise TypeError(f"MultiStyleNet: expected style to be an int or a tensor, got {style!r}")
        if isinstance(style, int):
            if not 0 <= style < self.num_styles:
                raise ValueError(f"MultiStyleNet: expected style index in [0, {self.num_styles}), got {style}")
            return torch.full((n,), style, dtype=torch.long, device=device)
        if not isinstance(style, torch.Tensor):
            raise TypeError(f"MultiStyleNet: expected style to be an int or a tensor, got {type(style).__name__}")
        if style.is_floating_point() and style.dim() == 1 and style.shape[0] == self.num_styles and n != 1:
            style = style.expand(n, -1)
        return style.to(device)

    def forward(self, x: torch.Tensor, style) -> torch.Tensor:
        _check_input(x, "MultiStyleNet")
        s = self.style_tensor(style, x.shape[0], x.device)
        x, layout = _to_fast_layout(x)
        if _one_image_at_a_time(x) and s.shape[:1] == x.shape[:1]:
            y = torch.cat([self._body(x[i:i + 1], s[i:i + 1]) for i in range(x.shape[0])])
        else:
            y = self._body(x, s)
        return y.contiguous(memory_format=layout)

    def _body(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        y = self.in1(self.conv1(x), s)
        y = self.in2(self.conv2(y), s)
        y = self.in3(self.conv3(y), s)
        for block in self.res:
            y = block(y, s)
        y = self.in4(self.deconv1(y), s)
        y = self.in5(self.deconv2(y), s)
        return self.deconv3(y)

    def add_style(self, init_from: int | None = None) -> int:
        """Append one style row to every conditional instance norm (initialised from style
        `init_from`, or to the identity scale/shift) and return its index. Train only the new row
        with `style_parameters(index)` (the paper's fine-tuning for a new style)."""
        for norm in self.conditional_norms():
            g, b = norm.gamma.data, norm.beta.data
            new_g = g[init_from:init_from + 1].clone() if init_from is not None else torch.ones_like(g[:1])
            new_b = b[init_from:init_from + 1].clone() if init_from is not None else torch.zeros_like(b[:1])
            norm.gamma = nn.Parameter(torch.cat([g, new_g]))
            norm.beta = nn.Parameter(torch.cat([b, new_b]))
            norm.num_styles += 1
        self.num_styles += 1
        return self.num_styles - 1


def _to_fast_layout(x: torch.Tensor) -> tuple[torch.Tensor, torch.memory_format]:
    """On the CPU the whole network runs channels_last (NHWC): oneDNN's convolutions are 1.5-2x
    faster on it than on NCHW (no reorders), and the fused instance norm, padding and the residual
    adds read it in place. Returns x in that layout and the layout to give the output back in (the
    input's: channels_last in, channels_last out; anything else, contiguous out)."""
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format
    if x.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    return x, layout


def _one_image_at_a_time(x: torch.Tensor) -> bool:
    """Inference on the CPU runs a batch one image at a time: instance norm is per image anyway, and
    one image's activations stay in cache between layers (measured: benchmarks/RESULTS.md, "Feed-forward
    stylizer inference"). With autograd on (training) the batch is kept whole."""
    return x.device.type == "cpu" and x.shape[0] > 1 and not torch.is_grad_enabled()


def _check_input(x, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected x to be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name}: expected x of shape (N, 3, H, W) (RGB in [0, 255]), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected x to be a floating-point tensor (RGB in [0, 255]), got {x.dtype}")
    # two stride-2 convs and two x2 upsamplings give back the input size only when H and W are
    # multiples of 4
    if min(x.shape[2], x.shape[3]) < MIN_SIZE:
        raise ValueError(f"{name}: expected an image of at least 5x5 pixels, got {tuple(x.shape[2:])}")


def clean_state_dict(state: dict) -> dict:
    """Strip a `module.` prefix (DataParallel / DDP checkpoints); keep everything else as is
    (stale instance-norm keys are dropped by the modules when loading)."""
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def read_state_dict(path, *, name: str = "model") -> dict:
    """A stylizer state dict from a .pth / .pt file (read with weights_only=True: no code runs) or a
    .safetensors file. A genfast training checkpoint yields its model's entry. Errors name `name`."""
    from genfast import io
    from genfast.checks import ArgumentError, named

    path = Path(path)
    if not path.is_file():
        raise named(FileNotFoundError, name, f"no file at {str(path)!r} (expected a trained stylizer)")
    if path.suffix == ".safetensors":
        state, _ = io.load_safetensors(path, name=name)
    else:
        state = io.load_tensors(path, name=name)
        if isinstance(state, dict) and state.get("format") == "genfast-checkpoint":
            state = state.get("model", {}).get("model")
        elif isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ArgumentError(name, f"{str(path)!r} is not a stylizer: expected a state dict of tensors")
    return clean_state_dict(state)


def load_stylizer(path, *, device="cpu", name: str = "model") -> nn.Module:
    """A TransformerNet or MultiStyleNet with the weights in `path` (which one is read off the keys:
    conditional instance norms have `gamma`/`beta` tables), in eval mode on `device`."""
    from genfast.checks import ArgumentError

    state = read_state_dict(path, name=name)
    if "in1.gamma" in state:
        model: nn.Module = MultiStyleNet(int(state["in1.gamma"].shape[0]))
    elif "in1.weight" in state:
        model = TransformerNet()
    else:
        raise ArgumentError(name, f"{str(path)!r} is neither a TransformerNet (in1.weight) nor a MultiStyleNet "
                                  f"(in1.gamma) state dict; first keys: {list(state)[:5]}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ArgumentError(name, f"{str(path)!r} does not match {type(model).__name__}: "
                                  f"{str(e).splitlines()[0]}") from None
    return model.to(device).eval()


def save_stylizer(model: nn.Module, path) -> Path:
    """Write the model's state dict atomically: safetensors for a .safetensors path, else torch.save."""
    from genfast.io import atomic_save_safetensors, atomic_torch_save

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in clean_state_dict(model.state_dict()).items()}
    if path.suffix == ".safetensors":
        atomic_save_safetensors(state, path)
    else:
        atomic_torch_save(state, path)
    return path
