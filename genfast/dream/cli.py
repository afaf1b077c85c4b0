"""`genfast dream run|filters|patches`: parse, call genfast.dream, print what was written."""

from __future__ import annotations

from genfast.cli import command, group
from genfast.cli.types import (add_device, add_image_limit, add_quiet, integer, non_negative, non_negative_int,
                               number, positive, positive_int, real)


def _layer_weight(text: str):
    """LAYER or LAYER=WEIGHT."""
    import argparse

    name, _, weight = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"expected LAYER or LAYER=WEIGHT, got {text!r}")
    return name, (real(weight) if weight else 1.0)


def _network_args(p) -> None:
    from genfast.models import NETWORKS

    p.add_argument("--network", choices=NETWORKS, default="auto",
                   help="feature network (auto: VGG-19 when its weights are on disk, else EfficientNet-Lite0)")
    p.add_argument("--weights", default="imagenet", help="network weights: imagenet, or a checkpoint path")


def register(sub) -> None:
    verbs = group(sub, "dream", help="DeepDream, filter visualisation, top-9 patches per unit")
    p = command(verbs, "run", run_dream, help="DeepDream an image (octaves, detail re-injection)",
                description="Amplify what layers of a frozen network see in an image by gradient ascent over "
                            "octaves. Images are paths or skimage:NAME samples.")
    p.add_argument("image", help="input image (path or skimage:NAME)")
    p.add_argument("--output", "-o", required=True, metavar="PATH", help="output image (.png/.jpg)")
    p.add_argument("--layers", nargs="+", type=_layer_weight, metavar="LAYER[=W]",
                   help="layers and weights by the network's names (default: block5=1 block8=1.5 for Lite0)")
    p.add_argument("--objective", choices=("mean_square", "mean"), default="mean_square",
                   help="per layer: mean of squared activations (default) or mean activation")
    p.add_argument("--octaves", type=positive_int, default=4)
    p.add_argument("--octave-scale", type=number(None), default=1.4, help="size ratio of octaves (> 1; default 1.4)")
    p.add_argument("--steps", type=non_negative_int, default=20, help="ascent steps per octave (default 20)")
    p.add_argument("--step-size", type=positive, default=0.01, help="mean pixel change per step (default 0.01)")
    p.add_argument("--jitter", type=non_negative_int, default=32, help="random roll per step, pixels (default 32)")
    p.add_argument("--max-loss", type=real, help="end an octave's steps once the loss exceeds this")
    p.add_argument("--guide", metavar="IMAGE", help="pull towards this image's features instead")
    p.add_argument("--size", type=positive_int, help="resize the input's longest side first")
    p.add_argument("--tile", type=integer(32), help="compute the gradient in tiles of this many pixels")
    p.add_argument("--tile-halo", type=non_negative_int,
                   help="context around each tile (default: the deepest layer's receptive field: exact)")
    p.add_argument("--save-octaves", action="store_true", help="also write <stem>_octave<k> after each octave")
    p.add_argument("--seed", type=non_negative_int, default=0)
    _network_args(p)
    add_image_limit(p)
    add_device(p)
    add_quiet(p)

    p = command(verbs, "filters", run_filters, help="a labelled sheet of what the units of a layer look for")
    p.add_argument("layer", help="layer name (e.g. block3_expand)")
    p.add_argument("--output", "-o", required=True, metavar="PATH")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--units", type=positive_int, default=16, help="the first N channels (default 16)")
    which.add_argument("--channels", type=non_negative_int, nargs="+", metavar="C", help="these channels")
    which.add_argument("--whole-layer", action="store_true", help="one image for the whole layer")
    p.add_argument("--size", type=integer(16), default=96)
    p.add_argument("--steps", type=non_negative_int, default=96)
    p.add_argument("--parameterization", choices=("pixel", "fourier"), default="pixel",
                   help="pixel: normalised ascent on the pixels with jitter and blur; fourier: lucid's decorrelated "
                        "Fourier-space image with Adam")
    p.add_argument("--step-size", type=positive, help="default 0.02 (pixel) or 0.05 (fourier: Adam's learning rate)")
    p.add_argument("--jitter", type=non_negative_int, default=4)
    p.add_argument("--blur", type=non_negative, default=0.6, help="Gaussian blur sigma (0: none; pixel only)")
    p.add_argument("--blur-every", type=positive_int, default=4)
    p.add_argument("--seed", type=non_negative_int, default=0)
    _network_args(p)
    add_device(p)
    add_quiet(p)

    p = command(verbs, "patches", run_patches, help="the 9 image patches that excite each unit most")
    p.add_argument("source", nargs="+", help="folders (recursive), image files or skimage:NAME")
    p.add_argument("--layer", required=True)
    p.add_argument("--output", "-o", required=True, metavar="PATH")
    p.add_argument("--units", type=positive_int, default=16, help="the first N channels (default 16)")
    p.add_argument("--per-image", type=positive_int, default=1, help="patches one image may give a unit")
    p.add_argument("--size", type=integer(16), default=224, help="longest side images are resized to")
    p.add_argument("--patch-size", type=integer(4), default=48)
    p.add_argument("--batch-size", type=positive_int, default=4,
                   help="consecutive images of one size run through the network together (default 4)")
    _network_args(p)
    add_image_limit(p)
    add_device(p)
    add_quiet(p)


def run_dream(args) -> int:
    from genfast.dream import dream

    r = dream(args.image, network=args.network, weights=args.weights,
              layers=dict(args.layers) if args.layers else None, objective=args.objective, octaves=args.octaves,
              octave_scale=args.octave_scale, steps=args.steps, step_size=args.step_size, jitter=args.jitter,
              max_loss=args.max_loss, guide=args.guide, size=args.size, tile=args.tile, tile_halo=args.tile_halo,
              seed=args.seed, output=args.output, save_octaves=args.save_octaves, progress=not args.quiet,
              device=args.device, max_image_pixels=args.max_image_pixels)
    octaves = f" (+ {len(r.octave_outputs)} octave images)" if r.octave_outputs else ""
    print(f"wrote {r.output}{octaves}: {r.image.shape[-1]}x{r.image.shape[-2]}, {len(r.history)} steps over "
          f"{len(r.sizes)} octaves in {r.seconds:.1f} s with {r.network}; final loss {r.history[-1]['loss']:.4g}"
          if r.history else f"wrote {r.output} (no steps) with {r.network}")
    return 0


def run_filters(args) -> int:
    from genfast.dream.filters import visualize_filters

    r = visualize_filters(args.layer, network=args.network, weights=args.weights,
                          units=args.channels if args.channels else args.units, whole_layer=args.whole_layer,
                          size=args.size, steps=args.steps, step_size=args.step_size, jitter=args.jitter,
                          blur=args.blur, blur_every=args.blur_every, parameterization=args.parameterization,
                          seed=args.seed, output=args.output,
                          progress=not args.quiet, device=args.device)
    print(f"wrote {r.output}: {len(r.units)} image(s) of {r.layer} in {r.seconds:.1f} s")
    return 0


def run_patches(args) -> int:
    from genfast.dream.patches import top_patches

    r = top_patches(args.source, args.layer, network=args.network, weights=args.weights, units=args.units,
                    per_image=args.per_image, size=args.size, patch_size=args.patch_size,
                    batch_size=args.batch_size, output=args.output, progress=not args.quiet, device=args.device, max_image_pixels=args.max_image_pixels)
    skipped = f", skipped {len(r.skipped)} unreadable" if r.skipped else ""
    print(f"wrote {r.output}: {args.units} units of {r.layer} over {r.images} images{skipped} in {r.seconds:.1f} s")
    return 0
