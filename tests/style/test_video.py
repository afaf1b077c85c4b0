"""genfast video: round trips on tiny synthetic clips (12 frames of 64x48), odd sizes, audio pass-through,
temporal smoothing (reduces flicker, does not ghost), truncated files, the command line, the camera
mode's missing-dependency error, and the shared test clip (skipped when absent)."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from genfast.cli import main  # noqa: E402
from genfast.style import TransformerNet, save_stylizer  # noqa: E402
from genfast.style import live, smoothing  # noqa: E402
from genfast.style.metrics import flicker  # noqa: E402
from genfast.style.smoothing import TemporalSmoother  # noqa: E402
from genfast.style.video import VideoDecodeError, VideoInterrupted, read_frames, stylize_video  # noqa: E402

from helpers import SHARED_DATA  # noqa: E402

SHARED = SHARED_DATA / "video"


def scene(i: int, w: int, h: int, moving: bool = True) -> np.ndarray:
    """A textured background with a white square moving 4 px a frame (or standing still)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 4) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
    x0 = (4 * i) % max(1, w - 12) if moving else 8
    img[10:22, x0:x0 + 12] = 255
    return img


def make_clip(path, n=12, w=64, h=48, fps=12, audio=None, codec="libx264", pix_fmt="yuv420p", moving=True,
              options=None):
    with av.open(str(path), "w", options=options or {}) as c:
        vs = c.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            vs.options = {"crf": "10"}
        ast = None
        if audio:
            ast = c.add_stream(audio, rate=8000)
            ast.layout = "mono"
        for i in range(n):
            for p in vs.encode(av.VideoFrame.from_ndarray(scene(i, w, h, moving), format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if ast is not None:
            fmt = ast.codec_context.format.name
            fs = ast.codec_context.frame_size or 512
            for t in range(0, 8000 * n // fps, fs):
                a = (0.3 * np.sin(np.arange(t, t + fs) / 8000 * 2 * np.pi * 440)).astype(np.float32)[None]
                if fmt.startswith("s16"):
                    a = (a * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(a, format=fmt, layout="mono")
                frame.sample_rate, frame.pts = 8000, t
                for p in ast.encode(frame):
                    c.mux(p)
            for p in ast.encode():
                c.mux(p)
    return Path(path)


def probe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(v))
        return {"frames": n, "size": (v.width, v.height), "rate": v.average_rate,
                "audio": [a.codec_context.name for a in c.streams.audio]}


class Noisy(torch.nn.Module):
    """A 'stylizer' whose output is its input plus fresh noise each call: the worst case of flicker."""

    def __init__(self, sigma=20.0, seed=0):
        super().__init__()
        self.sigma = sigma
        self.gen = torch.Generator().manual_seed(seed)

    def forward(self, x):
        return x + self.sigma * torch.randn(x.shape, generator=self.gen)


class Identity(torch.nn.Module):
    def forward(self, x):
        return x.clone()


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return TransformerNet().eval()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "in.mp4", audio="aac")


def test_round_trip_keeps_frames_size_rate_and_audio(tmp_path, clip, net):
    out = tmp_path / "out.mp4"
    report = stylize_video(clip, out, net, batch_size=5, progress=False)
    got, want = probe(out), probe(clip)
    assert got["frames"] == want["frames"] == report.frames == 12
    assert got["size"] == (64, 48) == (report.width, report.height)
    assert got["rate"] == want["rate"] == 12 and report.fps == 12
    assert got["audio"] == ["aac"] and report.audio == "copied aac"
    assert report.duration == pytest.approx(1.0)
    assert report.stylize_fps > 0 and report.end_to_end_fps > 0
    assert not report.decode_errors
    assert not any(p.name.startswith(".out.mp4") for p in tmp_path.iterdir())   # no temp file left behind


def test_mkv_pcm_audio_and_max_frames(tmp_path, net):
    src = make_clip(tmp_path / "in.mkv", audio="pcm_s16le")
    out = tmp_path / "out.mkv"
    report = stylize_video(src, out, net, progress=False, max_frames=5)
    assert probe(out)["frames"] == 5 == report.frames
    assert probe(out)["audio"] == ["pcm_s16le"]


def test_output_matches_network_on_identity_model(tmp_path):
    src = make_clip(tmp_path / "in.mkv", codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "out.mkv"
    stylize_video(src, out, Identity(), progress=False)
    for a, b in zip(read_frames(src), read_frames(out)):
        # H.264 at crf 18 in yuv420p: close, not exact
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 6


@pytest.mark.parametrize("w,h", [(63, 47), (66, 50), (9, 9)])
def test_odd_and_non_multiple_of_4_sizes(tmp_path, net, w, h):
    src = make_clip(tmp_path / "in.mkv", n=3, w=w, h=h, codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "out.mp4"
    report = stylize_video(src, out, net, progress=False)
    assert probe(out)["size"] == (w - w % 2, h - h % 2) == (report.width, report.height)
    assert probe(out)["frames"] == 3


def test_resize_longest_side(tmp_path, clip, net):
    report = stylize_video(clip, tmp_path / "o.mp4", net, size=32, progress=False, max_frames=2)
    assert (report.width, report.height) == (32, 24) == probe(tmp_path / "o.mp4")["size"]


def test_flicker_measure():
    frames = np.zeros((3, 4, 4, 3), np.uint8)
    frames[1] += 10
    assert flicker(frames) == pytest.approx(10.0)
    assert flicker([torch.zeros(2, 2)]) == 0.0
    assert flicker(iter([np.zeros(4), np.full(4, 2.0), np.full(4, 5.0)])) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="same shape"):
        flicker([np.zeros(3), np.zeros(4)])


def test_smoothing_reduces_flicker_on_a_static_scene(tmp_path):
    src = make_clip(tmp_path / "static.mkv", codec="ffv1", pix_fmt="yuv444p", moving=False)
    plain = stylize_video(src, tmp_path / "a.mkv", Noisy(seed=1), progress=False)
    smooth = stylize_video(src, tmp_path / "b.mkv", Noisy(seed=1), smoothing=0.7, progress=False)
    assert plain.flicker_input == 0.0
    assert plain.flicker_raw > 15                       # 2 sigma / sqrt(pi) ~ 22.6 before clamping
    assert smooth.flicker_raw == pytest.approx(plain.flicker_raw)
    # independent noise through an EMA of weight 0.7: consecutive differences shrink ~4x
    assert smooth.flicker_smoothed < 0.45 * smooth.flicker_raw
    # and it shows in the encoded files too
    assert flicker(read_frames(tmp_path / "b.mkv")) < 0.6 * flicker(read_frames(tmp_path / "a.mkv"))


def test_smoothing_does_not_ghost_moving_content():
    smoother = TemporalSmoother(0.9)
    frames = torch.stack([torch.from_numpy(scene(i, 64, 48)).permute(2, 0, 1).float() for i in range(6)])
    out = smoother(frames, frames.clone())      # identity "stylizer": the right answer is the input
    for i in range(1, 6):
        changed = (frames[i] - frames[i - 1]).abs().amax(0) > 0
        assert changed.any()
        # where the square was or now is, the output is the fresh frame exactly: no trail
        torch.testing.assert_close(out[i][:, changed], frames[i][:, changed], rtol=0, atol=0)
    # and the static background stays where it was (an identity model gives it exactly)
    torch.testing.assert_close(out, frames)


def test_smoothing_mask_holds_static_pixels_under_noise():
    prev = torch.full((3, 16, 16), 100.0)
    cur = prev + torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2
    assert smoothing.static_mask(prev, cur).min() > 0.7          # sensor-like noise still counts as static
    cur[:, 6:10, 6:10] = 250
    m = smoothing.static_mask(prev, cur)
    assert m[6:10, 6:10].max() == 0 and m[0, 0] > 0.7
    assert m[6, 2] == 0                                      # dilated: next to the change is not held


@pytest.mark.parametrize("bad", [-0.1, 1.0, "x"])
def test_smoothing_range(bad, tmp_path, clip, net):
    with pytest.raises(ValueError, match="smoothing"):
        stylize_video(clip, tmp_path / "o.mp4", net, smoothing=bad, progress=False)


def test_truncated_mp4_writes_decoded_frames_and_raises(tmp_path, net):
    src = make_clip(tmp_path / "full.mp4", n=24, options={"movflags": "faststart"})    # index first
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 8 // 10])
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoDecodeError, match="decoding stopped early") as e:
        stylize_video(cut, out, net, progress=False)
    r = e.value.report
    assert 0 < r.frames < 24 and r.decode_errors
    assert probe(out)["frames"] == r.frames                 # a valid file of the frames that decoded
    # allow_partial=True: the same, without raising
    r2 = stylize_video(cut, tmp_path / "out2.mp4", net, progress=False, allow_partial=True)
    assert r2.frames == r.frames and r2.decode_errors
    # cut inside the first frames: a decoding error, nothing to write, no file left
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match="Invalid data|no video frame") as e:
        stylize_video(cut, tmp_path / "out3.mp4", net, progress=False)
    assert e.value.report.output is None and not (tmp_path / "out3.mp4").exists()
    assert not list(tmp_path.glob(".out3*"))


def test_truncated_mkv_is_detected_from_its_declared_length(tmp_path, net):
    src = make_clip(tmp_path / "full.mkv", n=24, options={"cluster_time_limit": "250"})   # small clusters
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 8 // 10])   # Matroska just ends early: no decoding error
    with pytest.raises(VideoDecodeError, match="truncated") as e:
        stylize_video(cut, tmp_path / "out.mkv", net, progress=False)
    assert 0 < e.value.report.frames < 24
    assert probe(tmp_path / "out.mkv")["frames"] == e.value.report.frames


def test_truncated_avi_is_an_error_unless_partial_is_allowed(tmp_path, capsys):
    """Issue 15: `head -c` of an AVI decoded 36 of 68 frames with exit 0 and no word. The AVI header
    declares the stream's length; a file that ends before it is reported, exit 2, and --allow-partial
    keeps the frames (a valid file) with a warning and exit 0."""
    torch.manual_seed(0)
    model = save_stylizer(TransformerNet(), tmp_path / "m.pth")
    src = make_clip(tmp_path / "full.avi", n=24, w=128, h=96, codec="mjpeg", pix_fmt="yuvj420p")  # intra only
    data = src.read_bytes()
    cut = tmp_path / "half.avi"
    cut.write_bytes(data[: len(data) // 2])
    assert main(["video", str(src), str(tmp_path / "whole.mp4"), "--model", str(model), "--quiet"]) == 0
    assert probe(tmp_path / "whole.mp4")["frames"] == 24          # the whole file is not flagged
    capsys.readouterr()
    out = tmp_path / "out.mp4"
    assert main(["video", str(cut), str(out), "--model", str(model), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and "--allow-partial" in err and "decoded" in err
    frames = probe(out)["frames"]
    assert 0 < frames < 24                                        # the partial output stays valid
    out.unlink()
    assert main(["video", str(cut), str(out), "--model", str(model), "--quiet", "--allow-partial"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and f"wrote {out}" in captured.out and probe(out)["frames"] == frames


def test_ctrl_c_before_the_first_frame_writes_nothing(tmp_path, clip, capsys, monkeypatch):
    model = save_stylizer(TransformerNet(), tmp_path / "m.pth")
    monkeypatch.setattr("genfast.style.networks.load_stylizer", lambda *a, **k: InterruptAfter(0))
    out = tmp_path / "c.mp4"
    assert main(["video", str(clip), str(out), "--model", str(model), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "nothing was written" in err and "wrote" not in err
    assert not out.exists() and not list(tmp_path.glob(".c.mp4*"))


def test_garbage_input_writes_nothing(tmp_path, net):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 2000)
    with pytest.raises(VideoDecodeError, match="not a readable video"):
        stylize_video(bad, tmp_path / "o.mp4", net, progress=False)
    assert not (tmp_path / "o.mp4").exists()


class InterruptAfter(torch.nn.Module):
    def __init__(self, calls):
        super().__init__()
        self.calls = calls

    def forward(self, x):
        self.calls -= 1
        if self.calls < 0:
            raise KeyboardInterrupt
        return x.clone()


def test_ctrl_c_keeps_the_frames_done(tmp_path, clip):
    out = tmp_path / "o.mp4"
    with pytest.raises(VideoInterrupted) as e:
        stylize_video(clip, out, InterruptAfter(2), batch_size=4, progress=False)
    assert e.value.report.frames == 8 and e.value.report.interrupted
    assert probe(out)["frames"] == 8


def test_cli_end_to_end(tmp_path, clip, capsys):
    torch.manual_seed(0)
    model = save_stylizer(TransformerNet(), tmp_path / "m.pth")
    out = tmp_path / "sub" / "o.mp4"
    rc = main(["video", str(clip), str(out), "--model", str(model), "--batch-size", "3", "--smoothing", "0.5",
               "--quiet"])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    assert probe(out)["frames"] == 12 and probe(out)["audio"] == ["aac"]
    # errors name the argument, exit code 2
    for argv, name in [([str(tmp_path / "none.mp4"), str(out)], "IN"),
                       ([str(clip), str(tmp_path / "o.webm")], "OUT"),
                       ([str(clip), str(out), "--style-index", "1"], "--style-index")]:
        assert main(["video", *argv, "--model", str(model), "--quiet"]) == 2
        assert f"genfast video: {name}" in capsys.readouterr().err
    assert main(["video", str(clip), str(out), "--model", str(tmp_path / "none.pth")]) == 2
    assert "--model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["video", str(clip), str(out), "--model", str(model), "--smoothing", "1.5"])
    assert e.value.code == 2
    assert "--smoothing" in capsys.readouterr().err


def test_cli_multi_style_and_ctrl_c(tmp_path, clip, capsys, monkeypatch):
    from genfast.style import MultiStyleNet
    torch.manual_seed(0)
    model = save_stylizer(MultiStyleNet(2), tmp_path / "multi.safetensors")
    out = tmp_path / "o.mkv"
    assert main(["video", str(clip), str(out), "--model", str(model), "--quiet", "--max-frames", "2"]) == 2
    assert "--style-index" in capsys.readouterr().err
    assert main(["video", str(clip), str(out), "--model", str(model), "--mix", "1", "3", "--quiet",
                 "--max-frames", "2"]) == 0
    assert main(["video", str(clip), str(out), "--model", str(model), "--mix", "1", "--quiet"]) == 2
    assert "--mix" in capsys.readouterr().err
    # Ctrl-C part way: exit 130, the frames done are in a valid file
    monkeypatch.setattr("genfast.style.networks.load_stylizer", lambda *a, **k: InterruptAfter(1))
    rc = main(["video", str(clip), str(tmp_path / "c.mp4"), "--model", str(model), "--quiet", "--batch-size", "4"])
    assert rc == 130
    assert "interrupted after 4 frames" in capsys.readouterr().err
    assert probe(tmp_path / "c.mp4")["frames"] == 4


def test_live_without_opencv_names_the_package(monkeypatch, net, capsys, clip):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match="opencv-python"):
        live.live(net, 0)
    assert main(["video", "0", "--live", "--model", str(save_stylizer(net, clip.parent / "m.pth"))]) == 2
    err = capsys.readouterr().err
    assert "--live" in err and "opencv-python" in err


def test_live_on_a_file_when_opencv_is_installed(net, clip):
    pytest.importorskip("cv2")
    result = live.live(net, str(clip), window=None, max_frames=3, size=None)
    assert result["frames"] == 3


@pytest.mark.skipif(not (SHARED / "vtest.avi").exists(), reason="shared test clips absent")
def test_shared_static_camera_clip(tmp_path):
    src = SHARED / "vtest.avi"
    report = stylize_video(src, tmp_path / "v.mp4", Noisy(sigma=10), size=96, max_frames=6, smoothing=0.7,
                           progress=False)
    assert report.frames == 6 and (report.width, report.height) == (96, 72)
    assert report.fps == 10
    assert report.flicker_smoothed < report.flicker_raw
    assert probe(tmp_path / "v.mp4")["frames"] == 6
    assert Fraction(probe(tmp_path / "v.mp4")["rate"]) == 10
