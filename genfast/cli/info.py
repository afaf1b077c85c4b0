"""`genfast info`: versions, which ops are native on which device, threads, build flags."""

from __future__ import annotations

import json
import os
import platform

import torch


def info_dict() -> dict:
    import genfast
    from genfast import _native
    from genfast.ops import NATIVE_OPS

    ops = {name: {dev: all(_native.has_kernel(p, dev) for p in parts) for dev in ("cpu", "cuda")}
           for name, parts in NATIVE_OPS.items()}
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


def run(args) -> int:
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


def register(sub) -> None:
    from genfast.cli import command

    p = command(sub, "info", run, help="versions, native ops per device, threads, build flags")
    p.add_argument("--json", action="store_true", help="print JSON")
