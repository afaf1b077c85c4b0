"""`genfast style transfer|apply|train|video|export-onnx`, and the older spellings kept as aliases:
`genfast stylize` (transfer; apply with --model), `genfast train-stylizer`, `genfast video`,
`genfast export-onnx`.

Each command parses its options, calls the library and prints what it did; errors the library
raises are reported by genfast/cli/errors.py.
"""

from __future__ import annotations

import time

from genfast.cli import command, group
from genfast.cli.types import (add_device, add_image_limit, add_quiet, add_training, integer, non_negative,
                               non_negative_int, number, positive, positive_int)

TRAIN_EPILOG = ("Runs data-parallel under torchrun: torchrun --standalone --nproc_per_node=2 -m genfast style "
                "train --content photos/ --style s.jpg --out m.safetensors --steps 2000")
VIDEO_EPILOG = ("Exit codes: 0 done; 2 a bad argument, or an input that did not decode to its end (the frames "
                "that decoded are written; --allow-partial accepts them with a warning); 130 interrupted (the "
                "frames done so far are written).")


def register(sub) -> None:
    verbs = group(sub, "style", help="neural style transfer: transfer (Gatys), apply, train, video, export-onnx")
    p = command(verbs, "transfer", run_transfer, help="optimisation-based style transfer (Gatys et al.)",
                description="Stylize a content image with one or more style images by optimising its pixels "
                            "(Gatys et al.). Images are file paths or scikit-image samples such as skimage:astronaut.")
    _transfer_args(p)
    p = command(verbs, "apply", run_apply, help="stylize images with a trained feed-forward stylizer")
    _apply_args(p)
    p = command(verbs, "train", run_train, help="train a feed-forward stylizer (one style, or several: multi-style)",
                epilog=TRAIN_EPILOG)
    _train_args(p)
    p = command(verbs, "video", run_video, help="stylize a video (or a camera with --live) with a trained stylizer",
                epilog=VIDEO_EPILOG)
    _video_args(p)
    p = command(verbs, "export-onnx", run_export, help="export a trained stylizer to ONNX (checked with onnxruntime)")
    _export_args(p)


def register_aliases(sub) -> None:
    """The top-level commands of earlier genfast versions, with their options unchanged."""
    p = command(sub, "stylize", run_stylize, help="(alias) style transfer; with --model, style apply")
    _transfer_args(p, content_nargs="+")
    p.add_argument("--model", metavar="PATH", help="a trained stylizer (.pth or .safetensors): run style apply")
    p.add_argument("--style-index", type=non_negative_int, help="multi-style model: which style")
    p.add_argument("--mix", nargs="+", type=non_negative, metavar="W", help="multi-style model: mixing weights")
    p = command(sub, "train-stylizer", run_train, help="(alias) style train", epilog=TRAIN_EPILOG)
    _train_args(p)
    p = command(sub, "video", run_video, help="(alias) style video", epilog=VIDEO_EPILOG)
    _video_args(p)
    p = command(sub, "export-onnx", run_export, help="(alias) style export-onnx")
    _export_args(p)


# ------------------------------------------------------------------------------------- options

def _transfer_args(p, content_nargs=None) -> None:
    from genfast.models import NETWORKS
    from genfast.style import color, losses

    if content_nargs:    # the alias took several --content for --model
        p.add_argument("--content", nargs=content_nargs, required=True, metavar="PATH", help="content image(s)")
    else:
        p.add_argument("--content", required=True, metavar="PATH", help="content image")
    p.add_argument("--style", nargs="+", metavar="PATH", help="style image(s)")
    p.add_argument("--style-blend-weights", nargs="+", type=non_negative, metavar="W",
                   help="one weight per style image (normalised to sum 1; default equal)")
    p.add_argument("--output", "-o", required=True, metavar="PATH", help="output image (.png/.jpg)")
    p.add_argument("--size", type=positive_int, default=512, help="longest side of the output (default 512)")
    p.add_argument("--iterations", type=non_negative_int, default=300, help="iterations per scale (and per tile)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--lr", type=positive, help="learning rate (default 1.0 for L-BFGS, 0.02 for Adam)")
    p.add_argument("--content-weight", type=non_negative, default=1.0)
    p.add_argument("--style-weight", type=non_negative, default=1e5)
    p.add_argument("--tv-weight", type=non_negative, default=300.0)
    p.add_argument("--loss", choices=losses.CONVENTIONS, default="mse",
                   help="loss convention (default mse; the weights' defaults are for mse)")
    p.add_argument("--init", default="content", help="content, noise, or an image path")
    p.add_argument("--preserve-color", choices=color.MODES, default="none")
    p.add_argument("--network", choices=NETWORKS, default="auto",
                   help="feature network (auto: VGG-19 when its weights are on disk, else EfficientNet-Lite0)")
    p.add_argument("--weights", default="imagenet", help="network weights: imagenet, or a checkpoint path")
    p.add_argument("--pooling", choices=["max", "avg"], default="max", help="VGG pooling")
    p.add_argument("--content-layers", nargs="+", metavar="LAYER")
    p.add_argument("--style-layers", nargs="+", metavar="LAYER")
    p.add_argument("--style-layer-weights", nargs="+", type=non_negative, metavar="W")
    p.add_argument("--style-scale", type=positive, default=1.0, help="style image size relative to the output")
    p.add_argument("--num-scales", type=positive_int, default=1, help="coarse-to-fine scales (each halves the size)")
    p.add_argument("--tile", type=integer(32), help="optimise in tiles of this many pixels (bounded memory)")
    p.add_argument("--tile-halo", type=non_negative_int, default=64,
                   help="pixels of context around each tile (default 64; more is closer to untiled)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--save-every", type=non_negative_int, default=0, metavar="N",
                   help="write a snapshot every N iterations")
    add_image_limit(p)
    add_device(p)
    add_quiet(p)


def _apply_args(p) -> None:
    p.add_argument("--model", required=True, metavar="PATH", help="a trained stylizer (.pth or .safetensors)")
    p.add_argument("--content", nargs="+", required=True, metavar="PATH", help="content image(s)")
    p.add_argument("--output", "-o", required=True, metavar="PATH",
                   help="output image (one content) or folder (several)")
    p.add_argument("--size", type=positive_int, help="resize each content so its longest side is N pixels")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--style-index", type=non_negative_int, help="multi-style model: which style")
    which.add_argument("--mix", nargs="+", type=non_negative, metavar="W",
                       help="multi-style model: one mixing weight per style (normalised to sum 1)")
    p.add_argument("--batch-size", type=positive_int, default=4, help="images of one size per forward pass")
    add_image_limit(p)
    add_device(p)
    add_quiet(p)


def _train_args(p) -> None:
    from genfast.models import NETWORKS

    p.add_argument("--content", nargs="+", required=True, metavar="DIR_OR_IMAGE",
                   help="training photos: folders (searched recursively), image files or skimage:NAME")
    p.add_argument("--style", nargs="+", required=True, metavar="IMAGE", help="style image(s)")
    p.add_argument("--out", required=True, metavar="PATH", help="output weights (.safetensors)")
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--steps", type=int, help="optimizer steps (checked by train_stylizer)")
    length.add_argument("--epochs", type=positive, help="passes over the training photos")
    p.add_argument("--batch-size", type=positive_int, default=4, help="per process (default 4)")
    p.add_argument("--image-size", type=integer(16), default=256, help="training crop size in pixels (default 256)")
    p.add_argument("--style-size", type=integer(16), help="longest side of the style images (default 2 x image size)")
    p.add_argument("--lr", type=positive, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--content-weight", type=non_negative, default=1.0)
    p.add_argument("--style-weight", type=non_negative, default=None, help="default 1e5")
    p.add_argument("--tv-weight", type=non_negative, default=None, help="default 10")
    p.add_argument("--network", choices=NETWORKS, default="auto",
                   help="loss network (auto: VGG-19 when its weights are on disk, else EfficientNet-Lite0)")
    p.add_argument("--content-layers", nargs="+", metavar="LAYER")
    p.add_argument("--style-layers", nargs="+", metavar="LAYER")
    p.add_argument("--style-sampling", choices=["cycle", "per_sample"], default="cycle",
                   help="several styles: one style per batch in turn, or per sample")
    p.add_argument("--sample-every", type=non_negative_int, default=0, metavar="N",
                   help="write a sample image every N steps")
    p.add_argument("--sample-image", metavar="IMAGE", help="the sample's input (default: the first content image)")
    p.add_argument("--amp", action="store_true", help="mixed precision (float16 on CUDA, bfloat16 on CPU)")
    p.add_argument("--finetune-from", metavar="MODEL",
                   help="a trained multi-style model: add --style as new styles, training only their norm rows")
    add_image_limit(p)
    add_training(p, checkpoint_every=500)


def _video_args(p) -> None:
    p.add_argument("input", metavar="IN", help="input video file (with --live: a camera index such as 0)")
    p.add_argument("output", metavar="OUT", nargs="?", help="output video file (.mp4, .mkv, .mov, .avi)")
    p.add_argument("--model", required=True, metavar="PATH", help="a trained stylizer (.pth or .safetensors)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--style-index", type=non_negative_int, metavar="I", help="multi-style model: which style")
    which.add_argument("--mix", nargs="+", type=non_negative, metavar="W",
                       help="multi-style model: one mixing weight per style (normalised to sum 1)")
    p.add_argument("--batch-size", type=positive_int, default=4, metavar="N",
                   help="frames per forward pass (default 4)")
    p.add_argument("--smoothing", type=number(0.0, below=1.0), default=0.0, metavar="S",
                   help="temporal smoothing of static regions in [0, 1) (default 0; try 0.7 for a static camera)")
    p.add_argument("--size", type=integer(8), metavar="N", help="resize so the longest side is N pixels")
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--allow-partial", action="store_true",
                   help="accept an input that stops decoding early (truncated): warn and exit 0")
    add_device(p)
    add_quiet(p)
    p.add_argument("--live", action="store_true", help="stylize a camera in a window (needs opencv-python)")


def _export_args(p) -> None:
    p.add_argument("model", metavar="MODEL", help="a trained stylizer (.pth or .safetensors)")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--size", nargs=2, type=integer(5), default=[256, 256], metavar=("H", "W"),
                   help="example input size (default 256 256; the exported graph takes any size)")
    p.add_argument("--style-index", type=non_negative_int, help="multi-style model: the style to export")
    p.add_argument("--opset", type=integer(7), default=17, help="ONNX opset (default 17)")


def _image_limit(args) -> None:
    if getattr(args, "max_image_pixels", None):
        from genfast import io

        io.MAX_IMAGE_PIXELS = args.max_image_pixels


# ------------------------------------------------------------------------------------- commands

def run_stylize(args) -> int:
    """The `genfast stylize` alias: transfer, or apply with --model."""
    from genfast.checks import ArgumentError

    if args.model:
        if args.style:
            raise ArgumentError("style", "a trained stylizer (--model) has its style built in; drop --style "
                                         "(or drop --model for optimisation-based transfer)")
        args.batch_size = 4
        return run_apply(args)
    if args.style_index is not None or args.mix:
        raise ArgumentError("style_index" if args.style_index is not None else "mix",
                            "is for a trained multi-style model (--model)")
    if len(args.content) != 1:
        raise ArgumentError("content", f"optimisation stylizes one image at a time, got {len(args.content)}")
    args.content = args.content[0]
    return run_transfer(args)


def run_transfer(args) -> int:
    from genfast.checks import ArgumentError
    from genfast.style import stylize

    if not args.style:
        raise ArgumentError("style", "is required (or use `genfast style apply --model M` for a trained stylizer)")
    _image_limit(args)
    t0 = time.perf_counter()
    result = stylize(
        args.content, args.style, style_blend_weights=args.style_blend_weights, network=args.network,
        weights=args.weights, pooling=args.pooling, content_layers=args.content_layers,
        style_layers=args.style_layers, style_layer_weights=args.style_layer_weights,
        content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
        loss=args.loss, size=args.size, style_scale=args.style_scale, init=args.init,
        optimizer=args.optimizer, lr=args.lr, iterations=args.iterations, seed=args.seed,
        preserve_color=args.preserve_color, num_scales=args.num_scales, tile=args.tile,
        tile_halo=args.tile_halo, output=args.output, save_every=args.save_every,
        progress=not args.quiet, device=args.device)
    h, w = result.image.shape[-2:]
    last = result.history[-1] if result.history else {}
    print(f"wrote {result.output} ({w}x{h}) with {result.network} in {time.perf_counter() - t0:.1f} s"
          + (f"; final losses: content {last['content']:.4g}, style {last['style']:.4g}, tv {last['tv']:.4g}"
             if last else ""))
    return 0


def run_apply(args) -> int:
    from genfast.checks import check_device
    from genfast.style.apply import stylize_files, style_from_options
    from genfast.style.networks import load_stylizer

    _image_limit(args)
    device = check_device(args.device)
    model = load_stylizer(args.model, device=device)
    style = style_from_options(model, style_index=args.style_index, mix=args.mix)
    paths, seconds = stylize_files(model, args.content, args.output, size=args.size, style=style,
                                   batch_size=args.batch_size, device=device, progress=not args.quiet,
                                   protect={"model": args.model})
    for path in paths:
        print(f"wrote {path}")
    print(f"stylized {len(paths)} image(s) with {type(model).__name__} on {device} in {seconds:.2f} s "
          f"({len(paths) / seconds:.2f} frames/s)")
    return 0


def run_train(args) -> int:
    from genfast.style.losses import DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT
    from genfast.style.train import train_stylizer

    _image_limit(args)
    t0 = time.perf_counter()
    result = train_stylizer(
        args.content, args.style, out=args.out, steps=args.steps, epochs=args.epochs,
        batch_size=args.batch_size, image_size=args.image_size, style_size=args.style_size, lr=args.lr,
        content_weight=args.content_weight,
        style_weight=DEFAULT_STYLE_WEIGHT if args.style_weight is None else args.style_weight,
        tv_weight=DEFAULT_TV_WEIGHT if args.tv_weight is None else args.tv_weight,
        network=args.network, content_layers=args.content_layers, style_layers=args.style_layers,
        style_sampling=args.style_sampling, sample_every=args.sample_every, sample_image=args.sample_image,
        checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every, resume=not args.no_resume,
        amp=args.amp, seed=args.seed, device=args.device, progress=not args.quiet,
        finetune_from=args.finetune_from, log_every=args.log_every, log_dir=args.log_dir)
    if result.output is None:     # a rank other than 0 under torchrun
        return 0
    last = result.history[-1] if result.history else {}
    resumed = f" (resumed at step {result.start_step})" if result.start_step else ""
    new = result.info["new_styles"]
    print(f"wrote {result.output}: {type(result.model).__name__}, {result.steps} steps{resumed} with "
          f"{result.info['network']} in {time.perf_counter() - t0:.1f} s"
          + (f"; last losses: content {last['content']:.4g}, style {last['style']:.4g}, tv {last['tv']:.4g}"
             if last else "") + (f"; new styles {new}" if new else ""))
    return 0


def run_video(args) -> int:
    import sys

    from genfast.checks import ArgumentError, check_device
    from genfast.style import video
    from genfast.style.apply import style_from_options
    from genfast.style.networks import load_stylizer

    if not args.live and not args.output:
        raise ArgumentError("output", "the output video file is required (or --live)")
    device = check_device(args.device)
    model = load_stylizer(args.model, device=device)
    style = style_from_options(model, style_index=args.style_index, mix=args.mix)
    if args.live:
        from genfast.style import live

        camera = int(args.input) if args.input.isdigit() else args.input
        result = live.live(model, camera, style=style, size=args.size or 480, smoothing=args.smoothing,
                           device=device, max_frames=args.max_frames)
        print(f"{result['frames']} frames at {result['fps']:.2f} frames/s")
        return 0
    report = video.stylize_video(args.input, args.output, model, style=style, batch_size=args.batch_size,
                                 smoothing=args.smoothing, size=args.size, device=device,
                                 progress=not args.quiet, max_frames=args.max_frames,
                                 allow_partial=args.allow_partial)
    if report.decode_errors:
        print(f"{args._prog}: warning: the input did not decode to its end ({'; '.join(report.decode_errors)}); "
              f"--allow-partial kept the {report.frames} frames that did", file=sys.stderr)
    print(f"wrote {report.output}: {report.summary()}")
    return 0


def run_export(args) -> int:
    from genfast.io import check_output
    from genfast.style.export import check_onnx, export_onnx
    from genfast.style.networks import load_stylizer

    h, w = args.size
    check_output(args.out, {"model": args.model}, name="out")
    model = load_stylizer(args.model, device="cpu")
    t0 = time.perf_counter()
    path = export_onnx(model, args.out, size=(h, w), style_index=args.style_index, opset=args.opset)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, opset {args.opset}, dynamic batch/height/width) "
          f"in {time.perf_counter() - t0:.1f} s")
    diff = check_onnx(model, path, size=(h, w), style_index=args.style_index)
    if diff is None:
        print("onnxruntime not installed: the exported graph was not run (pip install onnxruntime to check it)")
    else:
        print(f"onnxruntime vs PyTorch on a random {h}x{w} input: max abs difference {diff:.3g} (of 0..255)")
    return 0
