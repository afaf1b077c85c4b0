"""`genfast video IN OUT --model M.pth`: stylize a video with a trained feed-forward stylizer
(genfast.style.video), or `--live` to stylize a camera through OpenCV."""

from __future__ import annotations

import argparse
import sys

from genfast.style.cli import non_negative

PROG = "genfast video"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _smoothing(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "video", help="stylize a video (or a camera with --live) with a trained stylizer",
        description="Decode IN, stylize every frame with a trained feed-forward stylizer, encode H.264 to "
                    "OUT (.mp4, .mkv, .mov ...) keeping the frame timing and copying the audio. "
                    "With --live, IN is an OpenCV camera index (or a file) and OUT is not used.",
        epilog="Exit codes: 0 done; 2 a bad argument or an input that did not decode to its end (the frames "
               "that decoded are written); 130 interrupted (the frames done so far are written).")
    p.add_argument("input", metavar="IN", help="input video file (with --live: a camera index such as 0)")
    p.add_argument("output", metavar="OUT", nargs="?", help="output video file (.mp4, .mkv, .mov, .avi)")
    p.add_argument("--model", required=True, metavar="PATH", help="a trained stylizer (.pth or .safetensors)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--style-index", type=int, metavar="I", help="multi-style model: which style")
    which.add_argument("--mix", nargs="+", type=non_negative, metavar="W",
                       help="multi-style model: one mixing weight per style (normalised to sum 1)")
    p.add_argument("--batch-size", type=_positive_int, default=4, metavar="N", help="frames per forward pass (default 4)")
    p.add_argument("--smoothing", type=_smoothing, default=0.0, metavar="S",
                   help="temporal smoothing of static regions in [0, 1) (default 0; try 0.7 for a static camera)")
    p.add_argument("--size", type=_positive_int, metavar="N", help="resize so the longest side is N pixels")
    p.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--live", action="store_true", help="stylize a camera in a window (needs opencv-python)")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


# the library names arguments by their Python names; the command line by its own
_ARGUMENTS = {"input": "IN", "output": "OUT", "size": "--size", "style": "--style-index/--mix",
              "device": "--device", "batch_size": "--batch-size", "max_frames": "--max-frames"}


def _name_argument(message: str) -> str:
    word, sep, rest = message.partition(" ")
    key = word.rstrip(":")
    if key in _ARGUMENTS:
        return f"{_ARGUMENTS[key]}{':' if word.endswith(':') else ''} {rest}"
    return message


def run(args) -> int:
    from genfast.style import video
    from genfast.style.transformer_net import MultiStyleNet, load_stylizer

    if not args.live and not args.output:
        return _fail("OUT: the output video file is required (or --live)")
    try:
        import torch
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            return _fail(f"--device: expected cpu or cuda, got {device!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            return _fail("--device: cuda asked for, but no CUDA device is available")
        model = load_stylizer(args.model, device=device)
    except (FileNotFoundError, ValueError) as e:
        return _fail(f"--model: {e}")
    style = None
    if isinstance(model, MultiStyleNet):
        if args.style_index is None and args.mix is None:
            return _fail(f"--style-index: the model has {model.num_styles} styles; choose one with "
                         f"--style-index I or blend them with --mix W ... ({model.num_styles} weights)")
        if args.style_index is not None:
            if not 0 <= args.style_index < model.num_styles:
                return _fail(f"--style-index: expected 0 .. {model.num_styles - 1}, got {args.style_index}")
            style = args.style_index
        else:
            if len(args.mix) != model.num_styles or sum(args.mix) <= 0:
                return _fail(f"--mix: expected {model.num_styles} non-negative weights with a positive sum, "
                             f"got {args.mix}")
            style = args.mix
    elif args.style_index is not None or args.mix is not None:
        return _fail(f"--{'style-index' if args.style_index is not None else 'mix'}: the model is a single-style "
                     "TransformerNet")

    if args.live:
        camera = int(args.input) if args.input.isdigit() else args.input
        try:
            result = video.live(model, camera, style=style, size=args.size or 480, smoothing=args.smoothing,
                                device=device, max_frames=args.max_frames)
        except ImportError as e:
            return _fail(f"--live: {e}")
        except ValueError as e:
            return _fail(f"IN: {e}")
        except KeyboardInterrupt:
            return 130
        print(f"{result['frames']} frames at {result['fps']:.2f} frames/s")
        return 0

    try:
        report = video.stylize_video(args.input, args.output, model, style=style, batch_size=args.batch_size,
                                     smoothing=args.smoothing, size=args.size, device=device,
                                     progress=not args.quiet, max_frames=args.max_frames)
    except video.VideoInterrupted as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted before the first frame was written", file=sys.stderr)
        return 130
    except video.VideoDecodeError as e:
        return _fail(_name_argument(str(e)))
    except (FileNotFoundError, ValueError, TypeError, ImportError) as e:
        return _fail(_name_argument(str(e)))
    except OSError as e:   # e.g. OUT's folder is not writable
        return _fail(f"OUT: {e}")
    except Exception as e:  # noqa: BLE001 - PyAV/FFmpeg errors while encoding: say so, no traceback
        import av
        if not isinstance(e, av.error.FFmpegError):
            raise
        return _fail(f"OUT: encoding failed: {e}")
    print(f"wrote {report.output}: {report.summary()}")
    return 0
