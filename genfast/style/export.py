"""ONNX export of a trained stylizer (`genfast style export-onnx`).

genfast's TransformerNet runs its instance norms through the custom op
genfast::instance_norm (fused with the ReLU), which no ONNX exporter knows. Rather than teach the
exporter a custom op (a runtime would need genfast's kernels too), the export copies the weights
into the plain twin genfast.reference.transformer_net.TransformerNet (torch.nn.InstanceNorm2d +
ReLU, reflection padding, nearest upsampling: all standard ONNX ops, InstanceNormalization, Pad
reflect, Resize) and exports that with the TorchScript exporter (torch.onnx.export(dynamo=False),
which needs no onnxscript), batch, height and width dynamic. The graph computes the same function
as the genfast model (tests compare them). A MultiStyleNet is exported for one style
(--style-index): that style's scale/shift rows become the plain network's instance-norm weights.
When onnxruntime is importable, the exported graph is run on a random input and its max abs
difference from PyTorch is reported.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch


def reference_twin(model: torch.nn.Module, style_index: int | None = None) -> torch.nn.Module:
    """The plain genfast.reference TransformerNet with `model`'s weights (for a MultiStyleNet, the
    scale/shift rows of style `style_index`), in eval mode, on the CPU."""
    from genfast.reference.transformer_net import TransformerNet as PlainNet
    from genfast.style.networks import MultiStyleNet, TransformerNet

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if isinstance(model, MultiStyleNet):
        if style_index is None or not 0 <= style_index < model.num_styles:
            raise ValueError(f"--style-index: a MultiStyleNet is exported for one style; expected an index in "
                             f"[0, {model.num_styles}), got {style_index}")
        plain = {}
        for k, v in state.items():
            if k.startswith("res."):
                _, i, rest = k.split(".", 2)
                k = f"res{int(i) + 1}.{rest}"
            if k.endswith(".gamma"):
                plain[k[:-len("gamma")] + "weight"] = v[style_index].clone()
            elif k.endswith(".beta"):
                plain[k[:-len("beta")] + "bias"] = v[style_index].clone()
            else:
                plain[k] = v
        state = plain
    elif isinstance(model, TransformerNet):
        if style_index is not None:
            raise ValueError("--style-index: the model is a single-style TransformerNet")
    else:
        raise TypeError(f"export: expected a TransformerNet or MultiStyleNet, got {type(model).__name__}")
    twin = PlainNet()
    twin.load_state_dict(state)
    return twin.eval()


def export_onnx(model: torch.nn.Module, path, *, size=(256, 256), style_index: int | None = None,
                opset: int = 17) -> Path:
    """Export `model` (TransformerNet, or MultiStyleNet for `style_index`) to ONNX at `path` through its
    plain twin; input "image" and output "stylized" are (N, 3, H, W) RGB in [0, 255], N/H/W dynamic
    (`size` is the example input's H, W). Written atomically."""
    from genfast.io import atomic_path

    twin = reference_twin(model, style_index)
    h, w = size
    example = torch.rand(1, 3, h, w) * 255
    path = Path(path)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and constant-folding notes
        torch.onnx.export(twin, (example,), str(tmp), input_names=["image"], output_names=["stylized"],
                          dynamic_axes={"image": dynamic, "stylized": dynamic}, opset_version=opset, dynamo=False)
    return path


def check_onnx(model: torch.nn.Module, path, *, size=(256, 256), style_index: int | None = None,
               batch: int = 1, seed: int = 0) -> float | None:
    """Max abs difference between onnxruntime on the exported graph and `model` in PyTorch on a random
    [0, 255] input, or None when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    from genfast.style.networks import MultiStyleNet

    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, *size, generator=gen) * 255
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    from genfast.style.apply import model_device

    device = model_device(model)
    with torch.inference_mode():
        xd = x.to(device)
        want = model(xd, style_index) if isinstance(model, MultiStyleNet) else model(xd)
    return (got - want.float().cpu()).abs().max().item()
