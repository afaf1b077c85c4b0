"""`genfast train-stylizer`: train a feed-forward stylizer (genfast.style.train.train_stylizer).

The same command runs data-parallel under torchrun:
    torchrun --standalone --nproc_per_node=2 -m genfast train-stylizer --content photos/ --style s.jpg --out m.safetensors --steps 2000
"""

from __future__ import annotations

import sys
import time

from genfast.style.cli import non_negative


def register(sub) -> None:
    from genfast.models import NETWORKS

    p = sub.add_parser(
        "train-stylizer", help="train a feed-forward stylizer (Johnson et al.; several styles: multi-style net)",
        description="Train a feed-forward stylizer on a folder of photos (or skimage:NAME samples) for one style "
                    "image (TransformerNet) or several (MultiStyleNet). Checkpoints are resumable; under torchrun "
                    "the same command trains data-parallel.")
    p.add_argument("--content", nargs="+", required=True, metavar="DIR_OR_IMAGE",
                   help="training photos: folders (searched recursively), image files or skimage:NAME")
    p.add_argument("--style", nargs="+", required=True, metavar="IMAGE", help="style image(s)")
    p.add_argument("--out", required=True, metavar="PATH", help="output weights (.safetensors)")
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--steps", type=int, help="optimizer steps")
    length.add_argument("--epochs", type=float, help="passes over the training photos")
    p.add_argument("--batch-size", type=int, default=4, help="per process (default 4)")
    p.add_argument("--image-size", type=int, default=256, help="training crop size in pixels (default 256)")
    p.add_argument("--style-size", type=int, help="longest side of the style images (default 2 x image size)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--content-weight", type=non_negative, default=1.0)
    p.add_argument("--style-weight", type=non_negative, default=None, help="default 1e5")
    p.add_argument("--tv-weight", type=non_negative, default=None, help="default 10")
    p.add_argument("--network", choices=NETWORKS, default="auto",
                   help="loss network (auto: VGG-19 when its weights are on disk, else EfficientNet-Lite0)")
    p.add_argument("--content-layers", nargs="+", metavar="LAYER")
    p.add_argument("--style-layers", nargs="+", metavar="LAYER")
    p.add_argument("--style-sampling", choices=["cycle", "per_sample"], default="cycle",
                   help="several styles: one style per batch in turn, or per sample")
    p.add_argument("--sample-every", type=int, default=0, metavar="N", help="write a sample image every N steps")
    p.add_argument("--sample-image", metavar="IMAGE", help="the sample's input (default: the first content image)")
    p.add_argument("--checkpoint", metavar="PATH", help="training state (default: <out stem>.ckpt.pt beside --out)")
    p.add_argument("--checkpoint-every", type=int, default=500, metavar="N", help="steps between checkpoints")
    p.add_argument("--no-resume", action="store_true", help="start over even when the checkpoint exists")
    p.add_argument("--amp", action="store_true", help="mixed precision (float16 on CUDA, bfloat16 on CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--finetune-from", metavar="MODEL",
                   help="a trained multi-style model: add --style as new styles, training only their norm rows")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


# exceptions whose message already names the argument at fault
_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, IsADirectoryError, ImportError, FloatingPointError)


def run(args) -> int:
    from genfast.style.train import DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT, TrainingInterrupted, train_stylizer

    t0 = time.perf_counter()
    try:
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
            finetune_from=args.finetune_from)
    except TrainingInterrupted as e:
        print(f"genfast train-stylizer: {e}; run the same command again to continue", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("genfast train-stylizer: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as e:
        print(f"genfast train-stylizer: {e}", file=sys.stderr)
        return 2
    if result.output is None:     # a rank other than 0 under torchrun
        return 0
    last = result.history[-1] if result.history else {}
    resumed = f" (resumed at step {result.start_step})" if result.start_step else ""
    print(f"wrote {result.output}: {type(result.model).__name__}, {result.steps} steps{resumed} with "
          f"{result.network} in {time.perf_counter() - t0:.1f} s"
          + (f"; last losses: content {last['content']:.4g}, style {last['style']:.4g}, tv {last['tv']:.4g}"
             if last else "") + (f"; new styles {result.new_styles}" if result.new_styles else ""))
    return 0
