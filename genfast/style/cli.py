"""`genfast stylize`: optimisation-based style transfer from the command line (and, with --model, a
trained feed-forward stylizer)."""

from __future__ import annotations

import argparse
import sys
import time


def non_negative(text: str) -> float:
    """argparse type of the style commands' weights: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def _init(text: str):
    return text


def register(sub) -> None:
    from genfast.models import NETWORKS
    from genfast.style import color, losses

    p = sub.add_parser(
        "stylize", help="neural style transfer (Gatys; or a trained stylizer with --model)",
        description="Stylize a content image with one or more style images by optimising its pixels "
                    "(Gatys et al.). Images are file paths or scikit-image samples such as skimage:astronaut.")
    p.add_argument("--content", nargs="+", required=True, metavar="PATH", help="content image(s)")
    p.add_argument("--style", nargs="+", metavar="PATH", help="style image(s)")
    p.add_argument("--style-blend-weights", nargs="+", type=non_negative, metavar="W",
                   help="one weight per style image (normalised to sum 1; default equal)")
    p.add_argument("--output", "-o", required=True, metavar="PATH", help="output image (.png/.jpg)")
    p.add_argument("--size", type=int, default=512, help="longest side of the output (default 512)")
    p.add_argument("--iterations", type=int, default=300, help="iterations per scale (and per tile)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--lr", type=float, help="learning rate (default 1.0 for L-BFGS, 0.02 for Adam)")
    p.add_argument("--content-weight", type=non_negative, default=1.0)
    p.add_argument("--style-weight", type=non_negative, default=1e5)
    p.add_argument("--tv-weight", type=non_negative, default=300.0)
    p.add_argument("--loss", choices=losses.CONVENTIONS, default="mse",
                   help="loss convention (default mse; the weights' defaults are for mse)")
    p.add_argument("--init", type=_init, default="content", help="content, noise, or an image path")
    p.add_argument("--preserve-color", choices=color.MODES, default="none")
    p.add_argument("--network", choices=NETWORKS, default="auto",
                   help="feature network (auto: VGG-19 when its weights are on disk, else EfficientNet-Lite0)")
    p.add_argument("--weights", default="imagenet", help="network weights: imagenet, or a checkpoint path")
    p.add_argument("--pooling", choices=["max", "avg"], default="max", help="VGG pooling")
    p.add_argument("--content-layers", nargs="+", metavar="LAYER")
    p.add_argument("--style-layers", nargs="+", metavar="LAYER")
    p.add_argument("--style-layer-weights", nargs="+", type=non_negative, metavar="W")
    p.add_argument("--style-scale", type=float, default=1.0, help="style image size relative to the output")
    p.add_argument("--num-scales", type=int, default=1, help="coarse-to-fine scales (each halves the size)")
    p.add_argument("--tile", type=int, help="optimise in tiles of this many pixels (bounded memory)")
    p.add_argument("--tile-halo", type=int, default=64,
                   help="pixels of context around each tile (default 64; more is closer to untiled)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=0, metavar="N", help="write a snapshot every N iterations")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    # a trained feed-forward network instead of optimisation
    p.add_argument("--model", metavar="PATH", help="a trained stylizer (.pth or .safetensors)")
    p.add_argument("--style-index", type=int, help="multi-style model: which style")
    p.add_argument("--mix", nargs="+", type=non_negative, metavar="W", help="multi-style model: mixing weights")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.model:
        from genfast.style import cli_fast
        return cli_fast.run_model(args)
    if not args.style:
        print("genfast stylize: --style is required (or --model for a trained stylizer)", file=sys.stderr)
        return 2
    if len(args.content) != 1:
        print(f"genfast stylize: optimisation stylizes one --content image at a time, got {len(args.content)}",
              file=sys.stderr)
        return 2
    from genfast.style import stylize

    t0 = time.perf_counter()
    try:
        result = stylize(
            args.content[0], args.style, style_blend_weights=args.style_blend_weights, network=args.network,
            weights=args.weights, pooling=args.pooling, content_layers=args.content_layers,
            style_layers=args.style_layers, style_layer_weights=args.style_layer_weights,
            content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
            loss=args.loss, size=args.size, style_scale=args.style_scale, init=args.init,
            optimizer=args.optimizer, lr=args.lr, iterations=args.iterations, seed=args.seed,
            preserve_color=args.preserve_color, num_scales=args.num_scales, tile=args.tile,
            tile_halo=args.tile_halo, output=args.output, save_every=args.save_every,
            progress=not args.quiet, device=args.device)
    except (ValueError, TypeError, FileNotFoundError, IsADirectoryError, ImportError, FloatingPointError) as e:
        print(f"genfast stylize: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"genfast stylize: {e or 'interrupted'}", file=sys.stderr)
        return 130
    h, w = result.image.shape[-2:]
    last = result.history[-1] if result.history else {}
    print(f"wrote {result.output} ({w}x{h}) with {result.network} in {time.perf_counter() - t0:.1f} s"
          + (f"; final losses: content {last['content']:.4g}, style {last['style']:.4g}, tv {last['tv']:.4g}"
             if last else ""))
    return 0
