"""Data-parallel training under torchrun: 2 gloo processes, only rank 0 writes, and both ranks end
with the same generator and discriminator (their gradients are averaged every step)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import equal_state

SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from genfast.gan.train import GANConfig, train_gan
from genfast.training import distributed
out = sys.argv[1]
r = train_gan(GANConfig(data="ring8", steps=4, g_hidden=32, g_layers=2, d_hidden=32, d_layers=2, batch_size=32,
                        minibatch_stddev=4), out, progress=False, resume=False)
rank = distributed.env()[0]
torch.save({"G": r.model.state_dict(), "wrote": r.output is not None}, out + f".rank{rank}.pt")
"""


def test_two_gloo_processes_train_in_step(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists() and shutil.which("torchrun") is None:
        pytest.skip("torchrun not installed")
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "g.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(torchrun if torchrun.exists() else "torchrun"), "--standalone", "--nproc_per_node=2",
                           str(script), str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r0 = torch.load(f"{out}.rank0.pt", weights_only=True)
    r1 = torch.load(f"{out}.rank1.pt", weights_only=True)
    assert r0["wrote"] and not r1["wrote"] and out.is_file()
    assert equal_state(r0["G"], r1["G"])
