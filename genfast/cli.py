"""The `genfast` command (also `python -m genfast`).

  genfast info [--json]                       versions, native ops per device, threads, build flags
  genfast bench [--op gram] [--device cpu]    reference vs torch.compile(reference) vs native
  genfast stylize --content C --style S -o OUT  neural style transfer (see `genfast stylize -h`);
                                                with --model M, a trained feed-forward stylizer
  genfast train-stylizer --content DIR --style S --out M.safetensors --steps N   train a stylizer
  genfast video IN OUT --model M                stylize a video with a trained stylizer (or --live camera)
  genfast export-onnx M OUT.onnx                a trained stylizer as an ONNX graph
  genfast text train CORPUS --out M.pt          character-LSTM training; `genfast text sample M.pt`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import torch

import genfast
from genfast import _native
from genfast.io import atomic_write_text

# public op name -> the registered native ops it is built from (all must be native for "native")
NATIVE_OPS = {
    "gram_matrix": ("gram_matrix", "gram_matrix_backward"),
    "style_loss": ("style_loss", "style_loss_backward"),
    "minibatch_stddev": ("minibatch_stddev", "minibatch_stddev_backward"),
    "instance_norm": ("instance_norm", "instance_norm_backward"),
    "lstm_sample": ("lstm_sample",),
}

# `genfast bench --op NAME` -> module in genfast/bench/ providing
#   PRIMARY_OP (a registered op name), DEFAULT_SHAPES, QUICK_SHAPES,
#   cases(device, shapes, compile) -> list[Case], and optionally machine_rates(device) -> dict
BENCHES = {
    "gram": "genfast.bench.gram",
    "minibatch_stddev": "genfast.bench.minibatch_stddev",
    "instance_norm": "genfast.bench.instance_norm",
    "gatys": "genfast.bench.gatys",
    "lstm_sample": "genfast.bench.lstm_sample",
    "stylizer": "genfast.bench.stylizer",
}


def info_dict() -> dict:
    ops = {}
    for name, parts in NATIVE_OPS.items():
        ops[name] = {dev: all(_native.has_kernel(p, dev) for p in parts) for dev in ("cpu", "cuda")}
    return {
        "genfast": genfast.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "native_loaded": _native.load_error() is None,
        "native_error": _native.load_error(),
        "build": _native.build_info(),
        "ops": ops,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "impl_env": os.environ.get("GENFAST_IMPL", "auto"),
    }


def cmd_info(args) -> int:
    info = info_dict()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"genfast {info['genfast']}  (python {info['python']})")
    cuda = info["cuda"] or "none (CPU-only build)"
    print(f"torch   {info['torch']}  CUDA {cuda}; GPU available: {info['cuda_available']}"
          + (f" {info['cuda_devices']}" if info["cuda_devices"] else ""))
    print(f"threads {info['threads']}  (torch CPU capability {info['cpu_capability']})")
    if info["native_loaded"]:
        print(f"build   {info['build']}")
    else:
        print(f"native  NOT LOADED: {info['native_error']}")
    print(f"GENFAST_IMPL={info['impl_env']}")
    print()
    print(f"{'op':<16} {'cpu':<8} {'cuda':<8}")
    for name, devs in info["ops"].items():
        print(f"{name:<16} {'native' if devs['cpu'] else 'ref':<8} {'native' if devs['cuda'] else 'ref':<8}")
    return 0


def _parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(p) for p in text.lower().replace("x", ",").split(",") if p)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 1,64,512,512, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected a shape of positive sizes such as 1,64,512,512, got {text!r}")
    return shape


def cmd_bench(args) -> int:
    import importlib

    from genfast.bench import core

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("genfast bench: --device cuda asked for, but no CUDA device is available", file=sys.stderr)
        return 2
    bench = importlib.import_module(BENCHES[args.op])
    if not _native.native_available(bench.PRIMARY_OP, device):
        print(f"genfast bench: warning: native kernels unavailable on {device.type}: "
              f"{_native.unavailable_reason(bench.PRIMARY_OP, device.type)}", file=sys.stderr)
    shapes = args.shape or (bench.QUICK_SHAPES if args.quick else bench.DEFAULT_SHAPES)
    arity = getattr(bench, "SHAPE_SIZES", (3, 4))  # how many sizes a --shape of this op has
    for shape in args.shape or []:
        if len(shape) not in arity:
            example = ",".join(map(str, bench.DEFAULT_SHAPES[0]))
            print(f"genfast bench: --shape for --op {args.op} takes {' or '.join(map(str, sorted(arity)))} sizes "
                  f"(such as {example}), got {','.join(map(str, shape))}", file=sys.stderr)
            return 2
    print(f"device {device}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"build {_native.build_info()}", flush=True)
    mm = core.machine_mm_gflops(device)
    copy = core.machine_copy_gbps(device)
    print(f"machine: torch.mm (float32 1024^3) {mm:.1f} GFLOP/s; tensor copy {copy:.1f} GB/s", flush=True)
    cases = bench.cases(device, shapes, compile=not args.no_compile)
    progress = None
    if not args.quiet:
        def progress(msg):
            print(f"  timing {msg} ...", file=sys.stderr, flush=True)
    results = core.run_cases(cases, device, repeat=args.repeat, progress=progress)
    print(core.format_table(results))
    print()
    summary = core.summarize(results)
    for row in summary:
        print(f"{row['op']} {row['mode']:<17} summed over shapes: reference {row['reference_ms']:8.2f} ms, "
              f"{row['impl']} {row['ms']:8.2f} ms  -> {row['speedup']:.2f}x")
    extra = bench.report(device, shapes, results) if hasattr(bench, "report") else []
    for line in extra:
        print(line)
    gf = [r.gflops / mm for r in results if r.impl == "native" and r.gflops]
    if gf:
        print(f"native GFLOP/s as a fraction of torch.mm's: min {min(gf):.0%}, max {max(gf):.0%}")
    gb = [r.gbps / copy for r in results if r.impl == "native" and r.gbps]
    if gb:
        print(f"native GB/s as a fraction of copy bandwidth: min {min(gb):.0%}, max {max(gb):.0%}")
    if args.json:
        payload = {"command": " ".join(["genfast"] + sys.argv[1:]), "info": info_dict(),
                   "machine_mm_gflops": mm, "machine_copy_gbps": copy,
                   "results": [r.as_dict() for r in results], "summary": summary, "report": extra}
        atomic_write_text(args.json, json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    if args.plot:
        core.plot(results, args.plot, f"genfast {args.op} on {device.type} ({torch.get_num_threads()} threads)")
        print(f"wrote {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genfast", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="versions, native ops per device, threads, build flags")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    bench = sub.add_parser("bench", help="benchmark native kernels against the PyTorch reference")
    bench.add_argument("--op", choices=sorted(BENCHES), default="gram", help="which op (default: gram)")
    bench.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    bench.add_argument("--shape", type=_parse_shape, action="append",
                       help="an input shape such as N,C,H,W (repeatable; default: the op's benchmark shapes)")
    bench.add_argument("--quick", action="store_true", help="small shapes, for a smoke run")
    bench.add_argument("--repeat", type=int, default=10, help="timed runs per case (median is reported)")
    bench.add_argument("--no-compile", action="store_true", help="skip the torch.compile(reference) column")
    bench.add_argument("--json", metavar="PATH", help="write results as JSON")
    bench.add_argument("--plot", metavar="PATH", help="write a PNG bar chart of the speed-ups")
    bench.add_argument("--quiet", action="store_true", help="no per-case progress lines")
    bench.set_defaults(func=cmd_bench)

    from genfast.style import cli as style_cli
    from genfast.style import cli_fast, cli_train, cli_video
    from genfast.text import cli as text_cli
    style_cli.register(sub)    # stylize (Gatys, or --model)
    cli_train.register(sub)    # train-stylizer
    cli_video.register(sub)    # video
    cli_fast.register(sub)     # export-onnx
    text_cli.register(sub)     # text train | sample
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "repeat", 1) < 1:
        print("genfast bench: --repeat must be at least 1", file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
