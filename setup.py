"""Build genfast._C: CPU kernels always, CUDA kernels when torch and the toolkit allow.

Environment switches (read at build time):
  GENFAST_CUDA=0|1        forbid / force the CUDA kernels (default: build them when torch
                          has CUDA support and a CUDA toolkit is found; never decided by
                          torch.cuda.is_available(), which is False on GPU-less build hosts)
  GENFAST_CUDA_ARCH       e.g. "8.0;9.0" (the default) or "8.6+PTX"; sets TORCH_CUDA_ARCH_LIST
  GENFAST_CPU_ARCH        "avx2" | "default" (default: avx2 when the build machine has AVX2+FMA)
  GENFAST_DEBUG=1         -O0 -g instead of the release flags
  MAX_JOBS                parallel compile jobs (ninja)
"""

import glob
import os
import sys

from setuptools import find_packages, setup

import torch
from torch.utils import cpp_extension
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

HERE = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name):
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    sys.exit(f"setup.py: {name} must be 0, 1 or auto, got {value!r}")


def _cpu_has_avx2_fma():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


def _want_cuda():
    forced = _env_flag("GENFAST_CUDA")
    torch_cuda = torch.version.cuda is not None
    toolkit = cpp_extension.CUDA_HOME
    if forced is False:
        return False, "GENFAST_CUDA=0"
    if forced is True:
        if not torch_cuda:
            sys.exit("setup.py: GENFAST_CUDA=1 but this torch "
                     f"({torch.__version__}) is a CPU-only build; install a CUDA build of torch")
        if toolkit is None or not os.path.exists(os.path.join(toolkit, "bin", "nvcc")):
            sys.exit("setup.py: GENFAST_CUDA=1 but no CUDA toolkit was found; set CUDA_HOME "
                     "to the toolkit root (the folder above nvcc's bin/)")
        return True, "GENFAST_CUDA=1"
    if not torch_cuda:
        return False, f"torch {torch.__version__} has no CUDA support"
    if toolkit is None:
        return False, "no CUDA toolkit found (set CUDA_HOME)"
    return True, f"torch CUDA {torch.version.cuda}, toolkit at {toolkit}"


def _cpu_arch():
    arch = os.environ.get("GENFAST_CPU_ARCH", "").strip().lower()
    if arch in ("", "auto"):
        arch = "avx2" if _cpu_has_avx2_fma() else "default"
    if arch not in ("avx2", "default"):
        sys.exit(f"setup.py: GENFAST_CPU_ARCH must be avx2, default or auto, got {arch!r}")
    return arch


def build_extension():
    debug = bool(_env_flag("GENFAST_DEBUG"))
    with_cuda, cuda_reason = _want_cuda()
    arch = _cpu_arch()

    sources = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
    cuda_sources = sorted(glob.glob(os.path.join("csrc", "**", "*.cu"), recursive=True))

    opt = ["-O0", "-g"] if debug else ["-O3", "-g0"]
    cxx = opt + ["-fopenmp", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter", "-Wno-unknown-pragmas"]
    if arch == "avx2":
        # at::vec::Vectorized picks its AVX2 implementation from these macros.
        cxx += ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    else:
        cxx += ["-DCPU_CAPABILITY=DEFAULT"]
    build_info = f"cpu_arch={arch};cuda={'on' if with_cuda else 'off'} ({cuda_reason});debug={int(debug)}"
    defines = [("GENFAST_BUILD_INFO", '"' + build_info.replace('"', "'") + '"')]
    extra = {"cxx": cxx}
    ext_cls = CppExtension
    if with_cuda:
        sources += cuda_sources
        ext_cls = CUDAExtension
        defines.append(("GENFAST_WITH_CUDA", "1"))
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", os.environ.get("GENFAST_CUDA_ARCH", "8.0;9.0"))
        extra["nvcc"] = (["-O0", "-g", "-G"] if debug else ["-O3"]) + [
            "--expt-relaxed-constexpr", "-lineinfo" if debug else "-DNDEBUG",
        ]
    print(f"genfast build: {build_info}; {len(sources)} sources", file=sys.stderr)
    return ext_cls(
        "genfast._C",
        sources,
        include_dirs=[os.path.join(HERE, "csrc")],
        define_macros=defines,
        extra_compile_args=extra,
        extra_link_args=["-fopenmp"],
    )


setup(
    packages=find_packages(include=["genfast", "genfast.*"]),
    ext_modules=[build_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
