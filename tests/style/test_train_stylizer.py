"""Training feed-forward stylizers: loss goes down, resume is exact, multi-style fine-tuning touches only the
new rows, dataset errors, the CLI, and a 2-process DDP (gloo) smoke test. Tiny: 32 px crops, batch 2."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from genfast import io
from genfast.models import feature_net
from genfast.style import MultiStyleNet, TransformerNet, load_stylizer
from genfast.data import ImageFolderDataset, find_images
from genfast.style.losses import PerceptualLoss
from genfast.style.train import train_stylizer
from genfast.training import TrainingInterrupted
from genfast.training.sampler import ShardedStream

CONTENT = ["skimage:coffee", "skimage:chelsea", "skimage:rocket"]
STYLE_A, STYLE_B, STYLE_C = "skimage:brick", "skimage:gravel", "skimage:grass"
from helpers import SHARED_DATA, equal_state  # noqa: E402

SHARED = SHARED_DATA
TINY = dict(batch_size=2, image_size=32, style_size=64, progress=False, checkpoint_every=0)


@pytest.fixture(scope="module")
def net():
    return feature_net("auto")


# -- data ------------------------------------------------------------------------------------------

def test_dataset_folder_recursive_any_size(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    io.save_image(torch.rand(1, 3, 20, 50), tmp_path / "a.png")              # smaller than the crop
    io.save_image(torch.rand(1, 3, 90, 40), tmp_path / "sub" / "deeper" / "b.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(tmp_path, 32)
    assert [Path(f).name for f in ds.files] == ["a.png", "b.jpg"]
    g = torch.Generator().manual_seed(0)
    for i in range(len(ds)):
        crop = ds.get(i, g)
        assert crop.shape == (3, 32, 32) and crop.dtype == torch.float32
        assert 0.0 <= crop.min() and crop.max() <= 1.0
    # the same generator state gives the same crop
    assert torch.equal(ds.get(1, torch.Generator().manual_seed(5)), ds.get(1, torch.Generator().manual_seed(5)))


def test_dataset_errors(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "x.txt").write_text("no images here")
    with pytest.raises(ValueError, match="content: no image files .* under the folder"):
        ImageFolderDataset(tmp_path / "empty", 32)
    with pytest.raises(FileNotFoundError, match="content: no such file or folder"):
        find_images(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown sample image"):
        find_images(["skimage:nope"])
    with pytest.raises(ValueError, match="empty list"):
        find_images([])
    with pytest.raises(ValueError, match="image_size"):
        ImageFolderDataset(CONTENT, 8)
    with pytest.raises(ValueError, match="content: no image files"):
        train_stylizer(tmp_path / "empty", STYLE_A, out=tmp_path / "m.safetensors", steps=1, **TINY)


@pytest.mark.skipif(not (SHARED / "content").is_dir(), reason="../shared/data/content is absent")
def test_dataset_shared_content_and_skimage():
    ds = ImageFolderDataset([SHARED / "content", "skimage:astronaut"], 48)
    assert len(ds) >= 2 and ds.files[-1] == "skimage:astronaut"
    assert ds.get(0, torch.Generator().manual_seed(1)).shape == (3, 48, 48)


def test_sharded_stream_splits_epochs_like_distributed_sampler():
    n, world = 5, 2
    ranks = [ShardedStream(n, seed=3, rank=r, world=world) for r in range(world)]
    per = ranks[0].per_rank
    assert per == 3
    for epoch in range(3):
        seen = [ranks[r].item(epoch * per + i)[1] for r in range(world) for i in range(per)]
        assert set(seen) == set(range(n))           # every image each epoch (one repeated as padding)
    assert [ranks[0].item(i) for i in range(6)] == [ShardedStream(n, 3, 0, world).item(i) for i in range(6)]


def test_argument_errors(tmp_path):
    out = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="steps/epochs"):
        train_stylizer(CONTENT, STYLE_A, out=out, **TINY)
    with pytest.raises(ValueError, match="steps"):
        train_stylizer(CONTENT, STYLE_A, out=out, steps=0, **TINY)
    with pytest.raises(ValueError, match="lr"):
        train_stylizer(CONTENT, STYLE_A, out=out, steps=1, lr=-1.0, **TINY)
    with pytest.raises(FileNotFoundError, match="styles"):
        train_stylizer(CONTENT, tmp_path / "none.jpg", out=out, steps=1, **TINY)
    with pytest.raises(ValueError, match="out"):
        train_stylizer(CONTENT, STYLE_A, out=tmp_path / "m.png", steps=1, **TINY)


# -- training --------------------------------------------------------------------------------------

def test_training_reduces_the_loss(tmp_path, net):
    """The objective on a fixed batch, before and after 12 steps from the same seeded initialisation."""
    ds = ImageFolderDataset(CONTENT, 32)
    x = torch.stack([ds.get(i, torch.Generator().manual_seed(i)) for i in range(3)])
    objective = PerceptualLoss(net, [io.load_image(STYLE_A, 64)])
    torch.manual_seed(0)                                             # train_stylizer's initialisation
    with torch.no_grad():
        before, _ = objective(x, TransformerNet().eval()(x * 255))
    result = train_stylizer(CONTENT, STYLE_A, out=tmp_path / "m.safetensors", steps=12, lr=1e-2, network=net,
                            seed=0, **TINY)
    with torch.no_grad():
        after, _ = objective(x, result.model(x * 255))
    assert len(result.history) == 12 and isinstance(result.model, TransformerNet)
    print(f"objective on a fixed batch: {float(before):.4g} before, {float(after):.4g} after 12 steps")
    assert float(after) < 0.8 * float(before), (float(before), float(after))
    # the written model is the trained one
    loaded = load_stylizer(tmp_path / "m.safetensors")
    assert equal_state(loaded.state_dict(), result.model.state_dict())


class Killed(Exception):
    pass


def test_resume_after_kill_is_bit_identical(tmp_path, net):
    """4 steps in one go vs 2 steps, a crash in step 3 (checkpoint of step 2 left behind), then resume."""
    kw = dict(TINY, checkpoint_every=2, network=net, lr=1e-2, seed=1)
    straight = train_stylizer(CONTENT, STYLE_A, out=tmp_path / "a" / "m.safetensors", steps=4, **kw)

    def kill_at_3(step, parts):
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        train_stylizer(CONTENT, STYLE_A, out=tmp_path / "b" / "m.safetensors", steps=4, callback=kill_at_3, **kw)
    assert not (tmp_path / "b" / "m.safetensors").exists()
    ckpt = torch.load(tmp_path / "b" / "m.ckpt.pt", weights_only=True)
    assert ckpt["step"] == 2 and set(ckpt) >= {"model", "optimizer", "rng", "config"}
    resumed = train_stylizer(CONTENT, STYLE_A, out=tmp_path / "b" / "m.safetensors", steps=4, **kw)
    assert resumed.start_step == 2 and [h["step"] for h in resumed.history] == [3, 4]
    assert [h["total"] for h in resumed.history] == [h["total"] for h in straight.history[2:]]
    assert equal_state(resumed.model.state_dict(), straight.model.state_dict())      # bitwise
    assert equal_state(load_stylizer(tmp_path / "b" / "m.safetensors").state_dict(),
                        load_stylizer(tmp_path / "a" / "m.safetensors").state_dict())
    # a different configuration does not silently continue someone else's checkpoint
    with pytest.raises(ValueError, match="different configuration"):
        train_stylizer(CONTENT, STYLE_B, out=tmp_path / "b" / "m.safetensors", steps=5, **kw)
    fresh = train_stylizer(CONTENT, STYLE_B, out=tmp_path / "b" / "m.safetensors", steps=1, resume=False, **kw)
    assert fresh.start_step == 0


def test_ctrl_c_checkpoints_the_last_completed_step(tmp_path, net):
    def interrupt(step, parts):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as info:
        train_stylizer(CONTENT, STYLE_A, out=tmp_path / "m.safetensors", steps=5, callback=interrupt, network=net,
                       **TINY)
    assert info.value.step == 2
    assert torch.load(info.value.checkpoint, weights_only=True)["step"] == 2


def test_multi_style_and_finetune_new_row_only(tmp_path, net):
    out = tmp_path / "multi.safetensors"
    multi = train_stylizer(CONTENT, [STYLE_A, STYLE_B], out=out, steps=2, network=net, lr=1e-2, **TINY)
    assert isinstance(multi.model, MultiStyleNet) and multi.model.num_styles == 2
    mixed = train_stylizer(CONTENT, [STYLE_A, STYLE_B], out=tmp_path / "mixed.safetensors", steps=1, network=net,
                           style_sampling="per_sample", **TINY)
    assert mixed.model.num_styles == 2

    before = {k: v.clone() for k, v in load_stylizer(out).state_dict().items()}
    tuned = train_stylizer(CONTENT, STYLE_C, out=tmp_path / "tuned.safetensors", steps=3, network=net, lr=1e-2,
                           finetune_from=out, **TINY)
    assert tuned.info["new_styles"] == [2] and tuned.model.num_styles == 3
    after = load_stylizer(tmp_path / "tuned.safetensors").state_dict()
    assert after.keys() == before.keys()
    changed_rows = 0
    for k, old in before.items():
        new = after[k]
        if k.endswith(".gamma") or k.endswith(".beta"):
            assert new.shape == (3, old.shape[1])
            assert torch.equal(new[:2], old), k                     # old styles' rows bit-identical
            changed_rows += int(not torch.equal(new[2], old[0]))     # new row starts as style 0's
        else:
            assert torch.equal(new, old), k                          # every convolution untouched
    assert changed_rows > 0
    x = torch.rand(1, 3, 32, 32) * 255
    with torch.no_grad():
        assert tuned.model(x, 2).shape == x.shape

    with pytest.raises(ValueError, match="finetune_from: .*MultiStyleNet"):
        single = tmp_path / "single.safetensors"
        train_stylizer(CONTENT, STYLE_A, out=single, steps=1, network=net, **TINY)
        train_stylizer(CONTENT, STYLE_B, out=tmp_path / "x.safetensors", steps=1, network=net, finetune_from=single,
                       **TINY)


def test_amp_runs(tmp_path, net):
    result = train_stylizer(CONTENT, STYLE_A, out=tmp_path / "m.safetensors", steps=2, network=net, amp=True, **TINY)
    assert all(torch.isfinite(torch.tensor(h["total"])) for h in result.history)


def test_samples_and_epochs(tmp_path, net):
    result = train_stylizer(CONTENT, STYLE_A, out=tmp_path / "m.safetensors", epochs=1, network=net, sample_every=1,
                            sample_image="skimage:chelsea", **TINY)
    assert result.steps == 2                                         # ceil(3 images / batch 2)
    samples = sorted((tmp_path / "m_samples").glob("*.png"))
    assert [p.name for p in samples] == ["step_000001.png", "step_000002.png"]
    # chelsea (300 x 451) at a longest side of 2 * 32 is 43 x 64, cut to 40 x 64; input | output side by side
    assert io.load_image(samples[0]).shape == (1, 3, 40, 128)


# -- CLI -------------------------------------------------------------------------------------------

def test_cli_end_to_end(tmp_path, capsys):
    from genfast.cli import main

    out = tmp_path / "cli.safetensors"
    code = main(["train-stylizer", "--content", *CONTENT[:2], "--style", STYLE_A, "--out", str(out), "--steps", "2",
                 "--batch-size", "2", "--image-size", "32", "--style-size", "64", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    assert isinstance(load_stylizer(out), TransformerNet)
    assert (tmp_path / "cli.ckpt.pt").is_file()

    code = main(["train-stylizer", "--content", str(tmp_path / "nothing"), "--style", STYLE_A, "--out", str(out),
                 "--steps", "1", "--quiet"])
    assert code == 2 and "content: no such file or folder" in capsys.readouterr().err
    code = main(["train-stylizer", "--content", CONTENT[0], "--style", STYLE_A, "--out", str(out), "--steps", "0",
                 "--quiet"])
    assert code == 2 and "steps" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:                             # --steps and --epochs together
        main(["train-stylizer", "--content", "x", "--style", "y", "--out", str(out), "--steps", "1", "--epochs", "1"])
    assert e.value.code == 2


# -- DDP -------------------------------------------------------------------------------------------

DDP_SCRIPT = """
import os, sys, torch
from genfast.style.train import train_stylizer
out = sys.argv[1]
r = train_stylizer({content!r}, {style!r}, out=os.path.join(out, "ddp.safetensors"), steps=3, batch_size=2,
                   image_size=32, style_size=64, progress=False, checkpoint_every=0, lr=1e-2)
rank = int(os.environ["RANK"])
assert (r.output is not None) == (rank == 0)
torch.save(r.model.state_dict(), os.path.join(out, f"rank{{rank}}.pt"))
"""


def test_ddp_two_gloo_processes(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(content=CONTENT, style=STYLE_A)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(script), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "ddp.safetensors").is_file() and (tmp_path / "ddp.ckpt.pt").is_file()
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    assert equal_state(r0, r1)
    assert equal_state(load_stylizer(tmp_path / "ddp.safetensors").state_dict(), r0)
    assert torch.load(tmp_path / "ddp.ckpt.pt", weights_only=True)["config"]["world_size"] == 2
