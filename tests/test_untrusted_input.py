"""Regression tests of issue 15, each with its reproduction on small files made here: nothing genfast
reads runs code; no command overwrites its input or claims work it did not do; bad files and
arguments are one clear line, never a traceback. (Video's truncated-file and Ctrl-C cases are in
test_video.py, next to the clip helpers.)"""

import ast
import os
import stat
from pathlib import Path

import pytest
import torch

from genfast import io, nn, ops, text
from genfast.cli import main
from genfast.style import TransformerNet, save_stylizer
from helpers import code_running_pickle

PACKAGE = Path(__file__).resolve().parents[1] / "genfast"
TINY_TEXT = ["--hidden-size", "16", "--embedding-dim", "8", "--num-layers", "1", "--window", "20", "--quiet"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "mine.png"
    io.save_image(torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(0)), path)
    return path


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(text.builtin_corpus()[:6000], encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ no code on load

def test_every_torch_load_call_in_the_package_is_weights_only():
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f"{getattr(f.value, 'id', '?')}.{f.attr}" if isinstance(f, ast.Attribute) else \
                    getattr(f, "id", "")
                if name in ("torch.load", "pickle.load", "pickle.loads", "dill.load"):
                    safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                               for k in node.keywords)
                    calls.append((str(path.relative_to(PACKAGE)), node.lineno, name, safe))
    assert calls, "the walk found no torch.load at all: it is not looking where the loads are"
    unsafe = [c for c in calls if not c[3]]
    assert not unsafe, f"loads that can run code: {unsafe}"
    assert [c[0] for c in calls] == ["io.py"], f"torch.load outside genfast.io.load_tensors: {calls}"


def test_text_sample_and_load_refuse_a_code_running_file(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = code_running_pickle(tmp_path / "evil.pth", marker)
    code, _, err = run(["text", "sample", evil, "--prime", "A"], capsys)
    assert code == 2 and "not a genfast text checkpoint" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="not a genfast text checkpoint"):
        text.load(evil)
    assert not marker.exists()


def test_text_train_never_resumes_from_a_code_running_file(tmp_path, corpus, capsys):
    marker = tmp_path / "pwned"
    out = tmp_path / "m.safetensors"
    code_running_pickle(tmp_path / "m.ckpt.pt", marker)            # where the checkpoint would be
    code, _, err = run(["text", "train", corpus, "--out", out, "--max-steps", "2", *TINY_TEXT], capsys)
    assert code == 2 and "not a genfast text checkpoint" in err
    evil_out = code_running_pickle(tmp_path / "evil.pth", marker)   # the issue's `--out evil.pth`
    code, _, err = run(["text", "train", corpus, "--out", evil_out, "--max-steps", "2", *TINY_TEXT], capsys)
    assert code == 0, err
    assert not marker.exists()


@pytest.mark.parametrize("where", ["option", "default path"])
def test_train_stylizer_never_resumes_from_a_code_running_file(tmp_path, photo, capsys, where):
    marker = tmp_path / "pwned"
    out = tmp_path / "ts.safetensors"
    evil = code_running_pickle(tmp_path / ("evil.pth" if where == "option" else "ts.ckpt.pt"), marker)
    extra = ["--checkpoint", evil] if where == "option" else []
    code, _, err = run(["train-stylizer", "--content", photo, "--style", photo, "--out", out, "--steps", "1",
                        "--image-size", "32", "--batch-size", "1", "--network", "efficientnet_lite0", "--quiet",
                        *extra], capsys)
    assert code == 2 and "not a genfast stylizer checkpoint" in err, err
    assert "--checkpoint" in err and not marker.exists() and not out.exists()


def test_stylizer_and_weight_files_never_run_code(tmp_path, photo, capsys):
    marker = tmp_path / "pwned"
    evil = code_running_pickle(tmp_path / "evil.pth", marker, wrap=lambda p: {"in1.weight": p})
    for argv in (["stylize", "--model", evil, "--content", photo, "--output", tmp_path / "o.png"],
                 ["style", "apply", "--model", evil, "--content", photo, "--output", tmp_path / "o.png"],
                 ["export-onnx", evil, tmp_path / "o.onnx"],
                 ["style", "transfer", "--content", photo, "--style", photo, "--output", tmp_path / "o.png",
                  "--network", "vgg19", "--weights", evil]):
        code, _, err = run(argv, capsys)
        assert code == 2 and ("cannot be read as tensors" in err or "cannot read" in err), (argv, err)
        assert "Traceback" not in err
    assert not marker.exists()


# ------------------------------------------------------------------------------ lost work

def test_stylize_refuses_to_overwrite_an_input(tmp_path, photo, capsys):
    style = tmp_path / "style.png"
    io.save_image(torch.rand(3, 32, 32), style)
    before = photo.read_bytes()
    for argv in (["stylize", "--content", photo, "--style", style, "--output", photo],
                 ["style", "transfer", "--content", photo, "--style", style, "--output", tmp_path / "." / style.name],
                 ["style", "transfer", "--content", photo, "--style", style, "--init", photo, "--output",
                  os.path.relpath(photo)]):
        code, _, err = run([*argv, "--size", "32", "--iterations", "1", "--network", "efficientnet_lite0",
                            "--quiet"], capsys)
        assert code == 2 and "--output" in err and "never overwrites" in err, (argv, err)
    assert photo.read_bytes() == before


def test_other_commands_refuse_to_overwrite_an_input(tmp_path, photo, capsys):
    model = save_stylizer(TransformerNet(), tmp_path / "m.pth")
    code, _, err = run(["style", "apply", "--model", model, "--content", photo, "--output", photo, "--quiet"], capsys)
    assert code == 2 and "never overwrites" in err
    code, _, err = run(["export-onnx", model, model], capsys)
    assert code == 2 and "never overwrites" in err
    pt_corpus = tmp_path / "corpus.pt"                      # a corpus whose name is a valid --out
    pt_corpus.write_text(text.builtin_corpus()[:3000], encoding="utf-8")
    code, _, err = run(["text", "train", pt_corpus, "--out", pt_corpus, "--max-steps", "1", *TINY_TEXT], capsys)
    assert code == 2 and "never overwrites" in err
    code, _, err = run(["train-stylizer", "--content", photo, "--style", photo, "--out", tmp_path / "x.safetensors",
                        "--checkpoint", photo, "--steps", "1", "--quiet"], capsys)
    assert code == 2 and "never overwrites" in err
    assert pt_corpus.read_text(encoding="utf-8").startswith(text.builtin_corpus()[:100])


def test_text_train_refuses_counts_that_write_nothing(tmp_path, corpus, capsys):
    out = tmp_path / "x.pt"
    for flag, value in (("--epochs", "0"), ("--epochs", "-3"), ("--max-steps", "0")):
        with pytest.raises(SystemExit) as e:
            main(["text", "train", str(corpus), "--out", str(out), flag, value, "--quiet"])
        assert e.value.code == 2 and flag in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(ValueError, match="epochs"):
        text.train(corpus.read_text(), out, text.TrainConfig(epochs=0), progress=False)


def test_text_train_refuses_to_resume_another_run(tmp_path, corpus, capsys):
    out = tmp_path / "A.safetensors"
    code, stdout, err = run(["text", "train", corpus, "--out", out, "--max-steps", "3", *TINY_TEXT], capsys)
    assert code == 0 and f"wrote {out}" in stdout, err
    code, _, err = run(["text", "train", "builtin", "--out", out, "--max-steps", "4", *TINY_TEXT], capsys)
    assert code == 2 and "different configuration" in err and "corpus" in err and "--no-resume" in err
    code, _, err = run(["text", "train", corpus, "--out", out, "--max-steps", "4",
                        *[a if a != "16" else "24" for a in TINY_TEXT]], capsys)
    assert code == 2 and "hidden_size: 16 -> 24" in err and "Traceback" not in err
    code, _, err = run(["text", "train", corpus, "--out", out, "--max-steps", "4", "--no-resume", *TINY_TEXT], capsys)
    assert code == 0, err


# ------------------------------------------------------------------------------ bombs and bad files

def _bomb(path, w, h):
    from PIL import Image

    Image.new("1", (w, h)).save(path)     # a few KB of PNG that decodes to w * h pixels
    return path


def test_decompression_bomb_is_refused_before_decoding(tmp_path, capsys):
    bomb = _bomb(tmp_path / "bomb.png", 12000, 12000)
    assert bomb.stat().st_size < 100_000
    code, _, err = run(["stylize", "--content", bomb, "--style", bomb, "--output", tmp_path / "o.png", "--size", "64",
                        "--quiet"], capsys)
    assert code == 2 and "12000x12000" in err and "bomb.png" in err and "--max-image-pixels" in err
    big = _bomb(tmp_path / "big.png", 2000, 1500)
    with pytest.raises(ValueError, match="2000x1500 pixels"):
        io.load_image(big, 64, max_pixels=1_000_000)
    assert io.load_image(big, 64, max_pixels=4_000_000).shape == (1, 3, 48, 64)


def test_a_large_jpeg_is_decoded_at_reduced_size(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    g = torch.Generator().manual_seed(0)
    small = torch.nn.functional.interpolate(torch.rand(1, 3, 30, 40, generator=g), size=(1200, 1600), mode="bilinear")
    path = tmp_path / "big.jpg"
    io.save_image(small, path)
    drafts = []
    jpeg = JpegImagePlugin.JpegImageFile
    original = jpeg.draft
    monkeypatch.setattr(jpeg, "draft", lambda self, mode, size: drafts.append(size) or original(self, mode, size))
    reduced = io.load_image(path, 200)
    assert drafts == [(200, 150)] and reduced.shape == (1, 3, 150, 200)
    monkeypatch.setattr(jpeg, "draft", original)
    full = io.resize(io.load_image(path), 200)
    assert (reduced - full).abs().mean() < 0.01     # the same picture as a full decode


def test_bad_files_and_devices_are_one_line(tmp_path, photo, capsys):
    junk = tmp_path / "x.safetensors"
    junk.write_bytes(os.urandom(256))
    junk_pth = tmp_path / "random.pth"
    junk_pth.write_bytes(os.urandom(256))
    notes = tmp_path / "notes.pth"
    notes.write_text("not a checkpoint")
    cases = [
        (["style", "apply", "--model", junk, "--content", photo, "--output", tmp_path / "o.png"], "--model"),
        (["text", "sample", junk_pth, "--length", "5"], "not a genfast text checkpoint"),
        (["train-stylizer", "--content", photo, "--style", photo, "--out", tmp_path / "t.safetensors", "--steps", "1",
          "--checkpoint", junk_pth, "--image-size", "32", "--network", "efficientnet_lite0"], "--checkpoint"),
        (["train-stylizer", "--content", photo, "--style", photo, "--out", tmp_path / "t.safetensors", "--steps", "1",
          "--checkpoint", notes, "--image-size", "32", "--network", "efficientnet_lite0"], "--checkpoint"),
        (["stylize", "--content", photo, "--style", photo, "--output", tmp_path / "o.png", "--device", "tpu"],
         "--device"),
        (["train-stylizer", "--content", photo, "--style", photo, "--out", tmp_path / "t.safetensors", "--steps", "1",
          "--device", "tpu"], "--device"),
    ]
    if not torch.cuda.is_available():
        cases += [(["stylize", "--content", photo, "--style", photo, "--output", tmp_path / "o.png", "--device",
                    "cuda"], "no CUDA device"),
                  (["train-stylizer", "--content", photo, "--style", photo, "--out", tmp_path / "t.safetensors",
                    "--steps", "1", "--device", "cuda"], "no CUDA device")]
    for argv, expected in cases:
        code, _, err = run(argv + (["--quiet"] if argv[0] != "text" else []), capsys)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_stylize_size_below_the_network_minimum_is_refused(tmp_path, photo, capsys):
    code, _, err = run(["stylize", "--content", photo, "--style", photo, "--output", tmp_path / "o.png", "--size", "1",
                        "--network", "efficientnet_lite0", "--quiet"], capsys)
    assert code == 2 and "--size" in err and ">= 16" in err
    assert not (tmp_path / "o.png").exists()


def test_text_train_ctrl_c_checkpoints_and_exits_130(tmp_path, corpus, capsys, monkeypatch):
    calls = {"n": 0}
    clip = torch.nn.utils.clip_grad_norm_

    def interrupt_at_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return clip(*a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", interrupt_at_third)
    out = tmp_path / "m.safetensors"
    code, _, err = run(["text", "train", corpus, "--out", out, "--max-steps", "5", *TINY_TEXT], capsys)
    assert code == 130 and "interrupted at step 2" in err and "run the same command again" in err
    assert "Traceback" not in err and not out.exists() and (tmp_path / "m.ckpt.pt").is_file()


def test_safetensors_outputs_get_the_usual_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_stylizer(TransformerNet(), tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_style_loss_target_keeps_float64():
    f = torch.randn(2, 5, 7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss = nn.StyleLoss.from_features(f)
    want = ops.gram_matrix(f).mean(0, keepdim=True)              # the mean in float64, never rounded to float32
    assert loss.target.dtype == torch.float64
    torch.testing.assert_close(loss.target, want, rtol=0, atol=0)


@pytest.mark.parametrize("impl", ["reference", "auto"])
def test_minibatch_stddev_empty_batch_on_both_paths(impl):
    x = torch.randn(0, 8, 5, 6, requires_grad=True)
    y = ops.minibatch_stddev(x, group_size=1, impl=impl)
    assert y.shape == (0, 9, 5, 6)
    y.sum().backward()
    assert x.grad.shape == x.shape
