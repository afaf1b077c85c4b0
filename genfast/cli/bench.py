"""`genfast bench`: reference vs torch.compile(reference) vs native, in one process (the quick
command; `make bench` runs the same cases as a pytest-benchmark suite)."""

from __future__ import annotations

import argparse
import json
import importlib
import sys

import torch

from genfast.bench import BENCHES
from genfast.checks import ArgumentError
from genfast.cli.info import info_dict
from genfast.cli.types import positive_int
from genfast.io import atomic_write_text


def _parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(p) for p in text.lower().replace("x", ",").split(",") if p)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 1,64,512,512, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected a shape of positive sizes such as 1,64,512,512, got {text!r}")
    return shape


def cmd_bench(args) -> int:
    from genfast import _native
    from genfast.bench import core

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ArgumentError("device", "cuda asked for, but no CUDA device is available")
    bench = importlib.import_module(BENCHES[args.op])
    if getattr(bench, "NATIVE", True) and not _native.native_available(bench.PRIMARY_OP, device):
        print(f"genfast bench: warning: native kernels unavailable on {device.type}: "
              f"{_native.unavailable_reason(bench.PRIMARY_OP, device.type)}", file=sys.stderr)
    shapes = args.shape or (bench.QUICK_SHAPES if args.quick else bench.DEFAULT_SHAPES)
    arity = getattr(bench, "SHAPE_SIZES", (3, 4))  # how many sizes a --shape of this op has
    for shape in args.shape or []:
        if len(shape) not in arity:
            example = ",".join(map(str, bench.DEFAULT_SHAPES[0]))
            raise ValueError(f"--shape for --op {args.op} takes {' or '.join(map(str, sorted(arity)))} sizes "
                             f"(such as {example}), got {','.join(map(str, shape))}")
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


def register(sub) -> None:
    from genfast.cli import command

    bench = command(sub, "bench", cmd_bench, help="benchmark native kernels against the PyTorch reference")
    bench.add_argument("--op", choices=sorted(BENCHES), default="gram", help="which op (default: gram)")
    bench.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    bench.add_argument("--shape", type=_parse_shape, action="append",
                       help="an input shape such as N,C,H,W (repeatable; default: the op's benchmark shapes)")
    bench.add_argument("--quick", action="store_true", help="small shapes, for a smoke run")
    bench.add_argument("--repeat", type=positive_int, default=10, help="timed runs per case (median is reported)")
    bench.add_argument("--no-compile", action="store_true", help="skip the torch.compile(reference) column")
    bench.add_argument("--json", metavar="PATH", help="write results as JSON")
    bench.add_argument("--plot", metavar="PATH", help="write a PNG bar chart of the speed-ups")
    bench.add_argument("--quiet", action="store_true", help="no per-case progress lines")
