"""`genfast stylize --model M` (a trained feed-forward stylizer) and `genfast export-onnx`.

ONNX export. genfast's TransformerNet runs its instance norms through the custom op
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

import sys
import time
import warnings
from pathlib import Path

import torch

from genfast.io import IMAGE_SUFFIXES


def _stem(spec: str) -> str:
    if spec.startswith("skimage:"):
        return spec[len("skimage:"):]
    return Path(spec).stem


def output_paths(contents: list[str], output: str) -> list[Path]:
    """Where each stylized content goes: with one content and an image suffix, `output` itself;
    otherwise `output` is a directory and each result is <stem>_stylized.png (stems made unique)."""
    out = Path(output)
    if len(contents) == 1 and out.suffix.lower() in IMAGE_SUFFIXES:
        return [out]
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output: with {len(contents)} content images --output must be a directory, "
                         f"got the file {output!r}")
    if out.suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(f"--output: with {len(contents)} content images --output must be a directory, "
                         f"got the image path {output!r}")
    paths, seen = [], {}
    for spec in contents:
        stem = _stem(spec)
        count = seen.get(stem, 0) + 1
        seen[stem] = count
        paths.append(out / (f"{stem}_stylized.png" if count == 1 else f"{stem}_{count}_stylized.png"))
    return paths


def _style_from_args(args, model):
    from genfast.style.transformer_net import MultiStyleNet

    index, mix = getattr(args, "style_index", None), getattr(args, "mix", None)
    if not isinstance(model, MultiStyleNet):
        if index is not None or mix:
            raise ValueError("--style-index/--mix: the model is a single-style TransformerNet; "
                             "these options are for a multi-style model")
        return None
    if index is not None and mix:
        raise ValueError("--style-index and --mix: give one of them, not both")
    if mix:
        if len(mix) != model.num_styles:
            raise ValueError(f"--mix: expected {model.num_styles} weights (one per style), got {len(mix)}")
        total = sum(mix)
        if total <= 0:
            raise ValueError("--mix: expected weights with a positive sum")
        return [w / total for w in mix]  # normalised to sum 1: a convex blend of the styles
    if index is None:
        if model.num_styles == 1:
            return 0
        raise ValueError(f"--style-index: the model has {model.num_styles} styles; pass --style-index I "
                         f"or --mix W1 ... W{model.num_styles}")
    if not 0 <= index < model.num_styles:
        raise ValueError(f"--style-index: expected an index in [0, {model.num_styles}), got {index}")
    return index


def run_model(args) -> int:
    """`genfast stylize --model M --content C [C ...] --output OUT`."""
    from genfast.io import load_image, save_image
    from genfast.style.fast import stylize_images
    from genfast.style.transformer_net import load_stylizer

    quiet = getattr(args, "quiet", False)
    try:
        if getattr(args, "style", None):
            raise ValueError("--style: a trained stylizer (--model) has its style built in; "
                             "drop --style (or drop --model for optimisation-based transfer)")
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_stylizer(args.model, device=device)
        style = _style_from_args(args, model)
        paths = output_paths(args.content, args.output)
        images = [load_image(spec, args.size, name="--content") for spec in args.content]
        t0 = time.perf_counter()
        results = stylize_images(model, images, style=style, device=device, progress=not quiet)
        seconds = time.perf_counter() - t0
        for image, path in zip(results, paths):
            save_image(image, path)
    except (ValueError, TypeError, FileNotFoundError, IsADirectoryError, ImportError, RuntimeError) as e:
        print(f"genfast stylize: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genfast stylize: interrupted", file=sys.stderr)
        return 130
    for image, path in zip(results, paths):
        print(f"wrote {path} ({image.shape[-1]}x{image.shape[-2]})")
    print(f"stylized {len(results)} image(s) with {type(model).__name__} on {device} in {seconds:.2f} s "
          f"({len(results) / seconds:.2f} frames/s)")
    return 0


# ---------------------------------------------------------------------------------------------- export

def reference_twin(model: torch.nn.Module, style_index: int | None = None) -> torch.nn.Module:
    """The plain genfast.reference TransformerNet with `model`'s weights (for a MultiStyleNet, the
    scale/shift rows of style `style_index`), in eval mode, on the CPU."""
    from genfast.reference.transformer_net import TransformerNet as PlainNet
    from genfast.style.transformer_net import MultiStyleNet, TransformerNet

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
    from genfast.style.transformer_net import MultiStyleNet

    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, *size, generator=gen) * 255
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    from genfast.style.fast import _model_device

    device = _model_device(model)
    with torch.inference_mode():
        xd = x.to(device)
        want = model(xd, style_index) if isinstance(model, MultiStyleNet) else model(xd)
    return (got - want.float().cpu()).abs().max().item()


def cmd_export_onnx(args) -> int:
    from genfast.style.transformer_net import MIN_SIZE, load_stylizer

    try:
        h, w = args.size
        if min(h, w) < MIN_SIZE:
            raise ValueError(f"--size: expected H and W of at least 5, got {h} {w}")
        model = load_stylizer(args.model, device="cpu")
        t0 = time.perf_counter()
        path = export_onnx(model, args.out, size=(h, w), style_index=args.style_index, opset=args.opset)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, opset {args.opset}, dynamic batch/height/width) "
              f"in {time.perf_counter() - t0:.1f} s")
        diff = check_onnx(model, path, size=(h, w), style_index=args.style_index)
    except (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError) as e:
        print(f"genfast export-onnx: {e}", file=sys.stderr)
        return 2
    if diff is None:
        print("onnxruntime not installed: the exported graph was not run (pip install onnxruntime to check it)")
    else:
        print(f"onnxruntime vs PyTorch on a random {h}x{w} input: max abs difference {diff:.3g} (of 0..255)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("export-onnx", help="export a trained stylizer to ONNX (checked with onnxruntime)",
                       description="Export a trained stylizer (.pth or .safetensors) to ONNX, batch/height/width "
                                   "dynamic; run it through onnxruntime when installed and report the difference.")
    p.add_argument("model", metavar="MODEL", help="a trained stylizer (.pth or .safetensors)")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--size", nargs=2, type=int, default=[256, 256], metavar=("H", "W"),
                   help="example input size (default 256 256; the exported graph takes any size)")
    p.add_argument("--style-index", type=int, help="multi-style model: the style to export")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=cmd_export_onnx)
