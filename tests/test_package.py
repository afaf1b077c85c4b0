"""The installed package: the `genfast` command and `python -m genfast` are the same CLI."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch

import genfast


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "genfast", *args], capture_output=True, text=True, timeout=timeout)


def test_info_json_reports_versions_and_native_ops():
    proc = run("info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["torch"] == torch.__version__
    assert info["cuda"] == torch.version.cuda
    assert info["threads"] == torch.get_num_threads()
    assert info["ops"]["style_loss"]["cpu"] == genfast.native_available("style_loss", "cpu")
    assert info["ops"]["gram_matrix"]["cuda"] == genfast.native_available("gram_matrix", "cuda")
    assert info["build"] == genfast.build_info()


def test_info_text_and_console_script_agree():
    proc = run("info")
    assert proc.returncode == 0 and "gram_matrix" in proc.stdout and "threads" in proc.stdout
    script = Path(sys.executable).parent / "genfast"
    if not script.exists():
        script = shutil.which("genfast")
    if script is None:
        return  # not installed as a console script (e.g. the out-of-tree CPU-torch check)
    other = subprocess.run([str(script), "info"], capture_output=True, text=True, timeout=120)
    assert other.returncode == 0 and other.stdout == proc.stdout


def test_unknown_command_is_a_usage_error():
    proc = run("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
