"""Real-time video stylization with a feed-forward stylizer: `stylize_video` (file to file), `live`
(a camera, through OpenCV), the flow-free temporal smoothing they share, and `flicker`, the measure
the smoothing is judged by.

Decoding and encoding go through PyAV (its wheel bundles FFmpeg): frames are decoded, stylized a
batch at a time under `torch.inference_mode`, and encoded as H.264 (libx264, yuv420p) with the input's
time stamps, so the frame rate and any variable frame timing are kept; audio packets are copied
unchanged (no re-encode) when the output container can hold the codec. The output is written to a
temporary file next to OUT and moved over it at the end (`genfast.io.atomic_path`): a failed run
leaves no torn file, and a Ctrl-C or a corrupt input still leaves a valid video of the frames done.

Sizes: the stylizers give back their input size only for multiples of 4 (two stride-2 convolutions,
two x2 upsamplings), so frames are reflection-padded up to a multiple of 4 and cropped back; H.264 in
4:2:0 needs an even width and height, so an odd last row/column is dropped from the output (the
`width`/`height` of the report are what was written).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["stylize_video", "VideoReport", "VideoDecodeError", "VideoInterrupted", "TemporalSmoother",
           "static_mask", "flicker", "read_frames", "live"]


# ---------------------------------------------------------------------------------------------------
# the measure


def flicker(frames) -> float:
    """Mean absolute difference between consecutive frames, in the frames' own units (0-255 for
    uint8), averaged over pixels, channels and the T-1 pairs: the flicker measure of issue 7.

    `frames`: an array/tensor (T, ...) or an iterable of equally-shaped frames (uint8 or float);
    iterables are consumed one frame at a time, so a whole clip never has to be in memory.
    Fewer than two frames give 0.0.
    """
    total, pairs, prev = 0.0, 0, None
    for f in frames:
        f = torch.as_tensor(np.asarray(f) if not isinstance(f, torch.Tensor) else f).to(torch.float64)
        if prev is not None:
            if f.shape != prev.shape:
                raise ValueError(f"flicker: frames must all have the same shape, got {tuple(prev.shape)} "
                                 f"then {tuple(f.shape)}")
            total += (f - prev).abs().mean().item()
            pairs += 1
        prev = f
    return total / pairs if pairs else 0.0


# ---------------------------------------------------------------------------------------------------
# temporal smoothing


def static_mask(prev: torch.Tensor, cur: torch.Tensor, threshold: float = 20.0, radius: int = 4) -> torch.Tensor:
    """Per-pixel weight in [0, 1]: 1 where the input did not change between `prev` and `cur`
    ((3, H, W), 0-255), falling linearly to 0 where it changed by `threshold` or more.

    The change is the channel mean of |cur - prev|, box-blurred 3x3 (so sensor and compression noise
    of a static camera does not count as motion), then dilated by a (2 radius + 1)^2 max filter: a
    stylizer's output pixel depends on a neighbourhood of input pixels, so the output next to a moving
    edge changes too and must not be held either.
    """
    d = (cur - prev).abs().mean(0, keepdim=True)[None]
    d = F.avg_pool2d(d, 3, stride=1, padding=1, count_include_pad=False)
    if radius > 0:
        d = F.max_pool2d(d, 2 * radius + 1, stride=1, padding=radius)
    return (1.0 - d[0, 0] / threshold).clamp_(0.0, 1.0)


class TemporalSmoother:
    """Flow-free temporal consistency for a static camera.

    Feed-forward stylizers see each frame alone, so tiny input changes (sensor noise, compression)
    move the stylized strokes and the output flickers. Ruder et al. (2016, "Artistic style transfer
    for videos") fix this with a temporal loss: each output frame should equal the previous output
    warped by the optical flow, except where the flow is unreliable (occlusions, motion boundaries).
    Here the camera is assumed static, so the flow is zero and no warp is needed; the "reliable"
    mask becomes "the input pixel did not change" (`static_mask`), and the loss is replaced by its
    cheapest minimiser, a blend with the previous *output*:

        out_t = raw_t + smoothing * mask_t * (out_{t-1} - raw_t)

    Static regions become an exponential moving average of the stylized frames (flicker falls by
    about (1 - smoothing) / sqrt(1 - smoothing^2) for independent noise); where the input changed the
    mask is 0 and the output is the fresh stylized frame exactly, so moving content does not ghost.
    A moving camera makes every pixel "changed": the smoother then does nothing, it never smears.

    What it cannot remove: slow drift. Instance norm is computed over the whole frame, so people
    walking through a static scene shift every channel's statistics and with them the stylized
    background a little each frame; an average damps fast jitter but passes a steady drift through.
    On a trained stylizer and the static-camera test clip (vtest.avi, 60 frames at 384x288) the
    background's flicker fell only from 1.12 to 0.94 at smoothing 0.7, while independent per-frame
    noise falls about 4x (tests/test_video.py).
    """

    def __init__(self, smoothing: float = 0.0, *, threshold: float = 20.0, radius: int = 4):
        if not (isinstance(smoothing, (int, float)) and 0.0 <= smoothing < 1.0):
            raise ValueError(f"smoothing must be a number in [0, 1), got {smoothing!r}")
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        self.smoothing, self.threshold, self.radius = float(smoothing), float(threshold), int(radius)
        self.reset()

    def reset(self) -> None:
        self.prev_in: torch.Tensor | None = None
        self.prev_out: torch.Tensor | None = None

    def __call__(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """inputs, outputs: (N, 3, H, W) consecutive frames (0-255); returns the smoothed outputs."""
        if self.smoothing == 0.0:
            return outputs
        result = torch.empty_like(outputs)
        for i in range(outputs.shape[0]):
            x, y = inputs[i], outputs[i]
            if self.prev_in is not None and self.prev_in.shape == x.shape:
                weight = static_mask(self.prev_in, x, self.threshold, self.radius).mul_(self.smoothing)
                y = y + weight * (self.prev_out - y)
            result[i] = y
            self.prev_in, self.prev_out = x, result[i]
        return result


# ---------------------------------------------------------------------------------------------------
# the frame stylizer shared by files and the camera


def _pad_to_multiple(x: torch.Tensor, m: int = 4) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    return F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x


def _style_argument(model, style):
    from genfast.style.transformer_net import MultiStyleNet

    if not isinstance(model, MultiStyleNet):
        if style is not None:
            raise ValueError(f"style: only a multi-style model takes a style; this is a {type(model).__name__}")
        return None
    if style is None:
        raise ValueError(f"style: the model is a MultiStyleNet with {model.num_styles} styles; "
                         "give a style index or mixing weights")
    if isinstance(style, bool):
        raise TypeError(f"style: expected an int index or mixing weights, got {style!r}")
    if isinstance(style, int):
        if not 0 <= style < model.num_styles:
            raise ValueError(f"style: index must be in [0, {model.num_styles}), got {style}")
        return style
    w = torch.as_tensor(style, dtype=torch.float32).flatten()
    if w.numel() != model.num_styles:
        raise ValueError(f"style: expected {model.num_styles} mixing weights, got {w.numel()}")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"style: mixing weights must be non-negative with a positive sum, got {w.tolist()}")
    return w / w.sum()


class _FrameStylizer:
    """uint8 RGB frames (H, W, 3) in, stylized uint8 frames out, in order, with the smoothing state
    and the flicker sums carried across batches."""

    def __init__(self, model, style, device, smoothing: float, track: bool = True):
        self.model, self.device, self.track = model, device, track
        self.style = _style_argument(model, style)
        if isinstance(self.style, torch.Tensor):
            self.style = self.style.to(device)
        self.smoother = TemporalSmoother(smoothing)
        self.seconds = 0.0
        self.frames = 0
        self._prev = {}          # name -> last frame (float) for the running flicker sums
        self._sums = {}

    def _track(self, name: str, frames: torch.Tensor) -> None:
        prev = self._prev.get(name)
        total, pairs = self._sums.get(name, (0.0, 0))
        for f in frames:
            if prev is not None and prev.shape == f.shape:
                total += (f - prev).abs().mean().item()
                pairs += 1
            prev = f
        self._prev[name], self._sums[name] = prev, (total, pairs)

    def flicker(self, name: str) -> float | None:
        total, pairs = self._sums.get(name, (0.0, 0))
        return total / pairs if pairs else None

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        t0 = time.perf_counter()
        with torch.inference_mode():
            x = torch.from_numpy(np.stack(frames)).to(self.device).permute(0, 3, 1, 2).float()
            h, w = x.shape[-2:]
            xp = _pad_to_multiple(x)
            y = self.model(xp) if self.style is None else self.model(xp, self.style)
            y = y[..., :h, :w].clamp(0, 255)
            smooth = self.smoother(x, y)
            raw_q = y.round()
            out_q = raw_q if smooth is y else smooth.round()
            if self.track:  # the flicker sums (three whole-frame reductions per frame)
                self._track("input", x)
                self._track("raw", raw_q)
                if self.smoother.smoothing:
                    self._track("smoothed", out_q)
            out = out_q.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        self.seconds += time.perf_counter() - t0
        self.frames += len(frames)
        return [np.ascontiguousarray(o) for o in out]


def _resolve_model(model, device):
    from torch import nn

    from genfast.style.fast import _model_device
    from genfast.style.transformer_net import load_stylizer

    if device is None:
        if isinstance(model, nn.Module):
            device = _model_device(model)
        else:
            device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda asked for, but no CUDA device is available")
    if isinstance(model, (str, os.PathLike)):
        model = load_stylizer(model, device=device)
    elif isinstance(model, nn.Module):
        model = model.to(device).eval()
    elif not callable(model):
        raise TypeError(f"model: expected a stylizer module or a checkpoint path, got {type(model).__name__}")
    return model, device


def _scaled_size(w: int, h: int, size: int | None) -> tuple[int, int]:
    if size is None:
        return w, h
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size: expected the longest side in pixels (an int >= 8), got {size!r}")
    s = size / max(w, h)
    return max(8, round(w * s)), max(8, round(h * s))


# ---------------------------------------------------------------------------------------------------
# files


@dataclass
class VideoReport:
    input: str
    output: str | None
    frames: int = 0                     # frames written
    width: int = 0                      # output size (even)
    height: int = 0
    fps: float | None = None            # the clip's frame rate
    duration: float | None = None       # seconds of video written (from the time stamps)
    stylize_fps: float = 0.0            # frames / seconds spent in the network (+ padding, smoothing)
    end_to_end_fps: float = 0.0         # frames / wall-clock seconds of the whole call
    seconds: float = 0.0
    smoothing: float = 0.0
    flicker_input: float | None = None      # mean |frame_t - frame_t-1| of the (resized) input
    flicker_raw: float | None = None        # ... of the stylized frames before smoothing
    flicker_smoothed: float | None = None   # ... after smoothing (None when smoothing is 0)
    audio: str = "none"
    decode_errors: list[str] = field(default_factory=list)
    interrupted: bool = False

    def summary(self) -> str:
        parts = [f"{self.frames} frames {self.width}x{self.height}"
                 + (f" at {self.fps:.3g} fps" if self.fps else ""),
                 f"stylize {self.stylize_fps:.2f} frames/s, end to end {self.end_to_end_fps:.2f} frames/s "
                 f"({self.seconds:.1f} s)"]
        if self.flicker_raw is not None:
            fl = f"flicker {self.flicker_raw:.2f}"
            if self.flicker_smoothed is not None:
                fl = f"flicker {self.flicker_raw:.2f} without smoothing, {self.flicker_smoothed:.2f} with {self.smoothing:g}"
            parts.append(fl + (f" (input {self.flicker_input:.2f})" if self.flicker_input is not None else ""))
        parts.append(f"audio: {self.audio}")
        if self.decode_errors:
            parts.append(f"decode errors: {'; '.join(self.decode_errors)}")
        return "; ".join(parts)


class VideoDecodeError(RuntimeError):
    """The input could not be decoded to its end. The frames that did decode were stylized and
    written (`report.output`, None when no frame decoded); `report` has the details."""

    def __init__(self, message: str, report: VideoReport):
        super().__init__(message)
        self.report = report


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C during stylize_video: the frames done so far were written as a valid video first."""

    def __init__(self, report: VideoReport):
        super().__init__(f"interrupted after {report.frames} frames; wrote them to {report.output}")
        self.report = report


def _av():
    try:
        import av
    except ImportError as e:
        raise ImportError("genfast video needs PyAV: pip install av") from e
    return av


def read_frames(path, *, max_frames: int | None = None):
    """Yield a video file's frames as uint8 RGB arrays (H, W, 3) (for `flicker` and tests)."""
    av = _av()
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if max_frames is not None and i >= max_frames:
                break
            yield frame.to_ndarray(format="rgb24")


def _demux(container, vstream, astreams, errors: list, max_errors: int):
    """Yield decoded video frames and audio packets in file order; decoding errors are appended to
    `errors` (a bad packet is skipped, up to `max_errors`), read errors end the stream."""
    av = _av()
    try:
        for packet in container.demux(vstream, *astreams):
            if packet.stream.type != "video":
                if packet.dts is not None:          # the empty packet at the end is a flush marker
                    yield packet
                continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                errors.append(f"decoding a packet at {_time_of(packet)}: {e}")
                if len(errors) >= max_errors:
                    return
                continue
            yield from frames
    except av.error.FFmpegError as e:
        errors.append(f"reading the file: {e}")


def _time_of(packet) -> str:
    if packet.pts is None or packet.time_base is None:
        return "an unknown time"
    return f"{float(packet.pts * packet.time_base):.3f} s"


OUTPUT_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".ts"}   # containers that hold H.264


def stylize_video(input, output, model, *, style=None, batch_size: int = 4, smoothing: float = 0.0,
                  size: int | None = None, device=None, progress: bool = True, max_frames: int | None = None,
                  crf: int = 18, preset: str = "veryfast", errors: str = "raise",
                  max_decode_errors: int = 16) -> VideoReport:
    """Stylize every frame of the video `input` with `model` and write H.264 video to `output`.

    model: a TransformerNet / MultiStyleNet (or any module mapping (N, 3, H, W) 0-255 to the same), or
    a checkpoint path for `load_stylizer`. style: a MultiStyleNet's style index or mixing weights
    (normalised to sum 1). batch_size: frames per forward pass. smoothing in [0, 1): temporal
    smoothing of static regions (`TemporalSmoother`). size: resize so the longest side is `size`.
    max_frames: stop after this many frames. crf/preset: libx264 quality and speed.

    The output container is chosen by `output`'s suffix (.mp4, .mkv, .mov ...); audio streams are
    copied when that container holds their codec, else dropped (said in `report.audio`).

    A file that stops decoding part way (truncated, corrupt) still gives a valid `output` with the
    frames that decoded; then `VideoDecodeError` (with `.report`) is raised, or with errors="report"
    the errors are only listed in `report.decode_errors`. Ctrl-C writes the frames done so far and
    raises `VideoInterrupted` (a KeyboardInterrupt, with `.report`).
    """
    av = _av()
    from genfast.io import atomic_path

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        raise ValueError(f"max_frames: expected an int >= 1, got {max_frames!r}")
    if errors not in ("raise", "report"):
        raise ValueError(f"errors: expected 'raise' or 'report', got {errors!r}")
    TemporalSmoother(smoothing)  # validates
    input, output = Path(input), Path(output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"output: expected a video file name ending in one of {', '.join(sorted(OUTPUT_SUFFIXES))}, "
                         f"got {str(output)!r}")
    if not input.is_file():
        raise FileNotFoundError(f"input: no such file: {str(input)!r}")
    if input.resolve() == output.resolve():
        raise ValueError("output: must not be the input file")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"output: cannot create the folder {str(output.parent)!r} ({e.strerror or e})") from None
    t_start = time.perf_counter()
    model, device = _resolve_model(model, device)
    stylizer = _FrameStylizer(model, style, device, smoothing)

    try:
        src = av.open(str(input))
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"input {str(input)!r}: not a readable video ({e})",
                               VideoReport(str(input), None, smoothing=smoothing, decode_errors=[str(e)])) from None
    report = VideoReport(str(input), str(output), smoothing=float(smoothing))
    with src:
        if not src.streams.video:
            raise ValueError(f"input {str(input)!r}: has no video stream")
        vs = src.streams.video[0]
        vs.thread_type = "AUTO"
        astreams = list(src.streams.audio)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate or Fraction(25)
        tb = vs.time_base or 1 / Fraction(rate)
        step = max(1, round(1 / (rate * tb)))   # one frame in time-base units (for missing time stamps)
        report.fps = float(rate)
        total = vs.frames if vs.frames > 0 else None
        if max_frames is not None:
            total = min(total, max_frames) if total else max_frames
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=input.name, unit="frame", disable=not progress, dynamic_ncols=True)
        state = _EncodeState()
        decode_errors: list[str] = []
        interrupted = None
        try:
            with atomic_path(output) as tmp:
                try:
                    batch: list[tuple[np.ndarray, int]] = []
                    for item in _demux(src, vs, astreams, decode_errors, max_decode_errors):
                        if not isinstance(item, av.VideoFrame):
                            state.audio(item)
                            continue
                        if max_frames is not None and state.decoded >= max_frames:
                            break
                        if state.out is None:
                            w, h = _scaled_size(item.width, item.height, size)
                            state.open(av, tmp, w, h, rate, tb, astreams, crf, preset, report)
                        pts = item.pts
                        if pts is None or (state.last_pts is not None and pts <= state.last_pts):
                            pts = state.next_pts(step)   # missing or out-of-order stamp: one frame on
                        state.last_pts = pts
                        state.decoded += 1
                        batch.append((_to_rgb(item, state.w, state.h), pts))
                        if len(batch) == batch_size:
                            state.encode(stylizer([f for f, _ in batch]), batch)
                            bar.update(len(batch))
                            batch = []
                    if batch:
                        state.encode(stylizer([f for f, _ in batch]), batch)
                        bar.update(len(batch))
                except KeyboardInterrupt as e:
                    interrupted = e
                finally:
                    if interrupted is None and not decode_errors:
                        bar.total = state.written    # the declared count can be wrong (AVI: ticks)
                    bar.close()
                if state.out is None:
                    raise _NothingDecoded    # atomic_path removes the empty temporary file
                state.close()
        except _NothingDecoded:
            report.output = None
        if state.out is not None and interrupted is None and not decode_errors and max_frames is None:
            short = _shortfall(src, vs, tb, step, state.last_pts, bool(astreams))
            if short:
                decode_errors.append(short)

    report.frames = state.written
    report.width, report.height = state.w_even, state.h_even
    if state.first_pts is not None:
        report.duration = float((state.last_pts - state.first_pts + step) * tb)
    report.stylize_fps = stylizer.frames / stylizer.seconds if stylizer.seconds else 0.0
    report.seconds = time.perf_counter() - t_start
    report.end_to_end_fps = report.frames / report.seconds if report.seconds else 0.0
    report.flicker_input = stylizer.flicker("input")
    report.flicker_raw = stylizer.flicker("raw")
    report.flicker_smoothed = stylizer.flicker("smoothed")
    report.decode_errors = decode_errors
    report.interrupted = interrupted is not None
    if interrupted is not None:
        raise VideoInterrupted(report) from interrupted
    if state.decoded == 0 and not decode_errors:
        decode_errors.append("no video frame could be decoded")
    if decode_errors and errors == "raise":
        where = (f"the {report.frames} frames that decoded were written to {str(output)!r}" if report.output
                 else "nothing was written")
        raise VideoDecodeError(f"input {str(input)!r}: decoding stopped early ({decode_errors[0]}"
                               + (f"; {len(decode_errors) - 1} more errors" if len(decode_errors) > 1 else "")
                               + f"); {where}", report)
    return report


def _to_rgb(frame, w: int, h: int) -> np.ndarray:
    if (frame.width, frame.height) == (w, h):
        return frame.to_ndarray(format="rgb24")
    shrink = w * h < frame.width * frame.height
    return frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA" if shrink else "BICUBIC")


def _shortfall(src, vs, tb, step, last_pts, has_audio: bool) -> str | None:
    """A file cut short without a decoding error (Matroska, AVI) is seen from its declared length."""
    if last_pts is None:
        return None
    end = float((last_pts + step) * tb)
    start = float((vs.start_time or 0) * tb)
    if vs.duration:
        declared, slack = float(vs.duration * tb) + start, 2 * float(step * tb)
    elif src.duration:
        # the container's duration covers every stream; audio may run a little past the video
        declared, slack = src.duration / 1e6, 2 * float(step * tb) + (0.5 if has_audio else 0.0)
    else:
        return None
    if end < declared - slack:
        return (f"the video stream should last {declared:.2f} s but decoding ended at {end:.2f} s "
                "(truncated file?)")
    return None


class _NothingDecoded(Exception):
    pass


class _EncodeState:
    def __init__(self):
        self.out = None
        self.vstream = None
        self.amap = {}
        self.pending_audio = []
        self.decoded = self.written = 0
        self.w = self.h = self.w_even = self.h_even = 0
        self.first_pts = self.last_pts = None

    def next_pts(self, step: int) -> int:
        return 0 if self.last_pts is None else self.last_pts + step

    def open(self, av, tmp, w, h, rate, tb, astreams, crf, preset, report, dropped=()):
        self.w, self.h = w, h
        self.w_even, self.h_even = w - w % 2, h - h % 2
        if self.w_even < 2 or self.h_even < 2:
            raise ValueError(f"input: frames of {w}x{h} are too small to encode")
        out = av.open(str(tmp), "w")
        vstream = out.add_stream("libx264", rate=Fraction(rate).limit_denominator(1_000_000))
        vstream.width, vstream.height, vstream.pix_fmt = self.w_even, self.h_even, "yuv420p"
        vstream.codec_context.time_base = Fraction(tb)
        vstream.time_base = Fraction(tb)
        vstream.options = {"crf": str(crf), "preset": preset}
        copied, dropped = [], list(dropped)
        for a in astreams:
            try:
                self.amap[a.index] = out.add_stream_from_template(a)
                copied.append(a.codec_context.name)
            except (ValueError, av.error.FFmpegError) as e:
                dropped.append(f"{a.codec_context.name} ({e})")
        try:
            out.start_encoding()
        except av.error.FFmpegError as e:
            if not self.amap:
                out.close()
                raise
            # the container refused the audio at header time: retry with video only
            out.close()
            self.amap.clear()
            dropped += [f"{c} (header: {e})" for c in copied]
            copied = []
            return self.open(av, tmp, w, h, rate, tb, [], crf, preset, report, dropped)
        report.audio = ", ".join([f"copied {c}" for c in copied] + [f"dropped {d}" for d in dropped]) or "none"
        self.out, self.vstream = out, vstream
        for p in self.pending_audio:
            self.audio(p)
        self.pending_audio = []

    def audio(self, packet):
        if self.out is None:
            self.pending_audio.append(packet)   # the output opens at the first video frame
            return
        ostream = self.amap.get(packet.stream.index)
        if ostream is not None:
            packet.stream = ostream
            self.out.mux(packet)

    def encode(self, frames, batch):
        av = _av()
        for arr, (_, pts) in zip(frames, batch):
            if arr.shape[0] != self.h_even or arr.shape[1] != self.w_even:
                arr = np.ascontiguousarray(arr[:self.h_even, :self.w_even])
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts, frame.time_base = pts, self.vstream.codec_context.time_base
            self.out.mux(self.vstream.encode(frame))
            if self.first_pts is None:
                self.first_pts = pts
            self.written += 1

    def close(self):
        self.out.mux(self.vstream.encode(None))
        self.out.close()


# ---------------------------------------------------------------------------------------------------
# camera


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError("live mode needs OpenCV (the optional dependency opencv-python): "
                          "pip install opencv-python") from e
    return cv2


def live(model, camera=0, *, style=None, size: int | None = 480, smoothing: float = 0.5, device=None,
         window: str | None = "genfast live", max_frames: int | None = None) -> dict:
    """Stylize a camera (an OpenCV device index, or a file/URL OpenCV can open) frame by frame and
    show it in a window; q or Esc quits. window=None runs without a display (for tests and
    benchmarks). Returns {"frames", "fps"}. Needs OpenCV (opencv-python), an optional dependency."""
    cv2 = _cv2()
    model, device = _resolve_model(model, device)
    stylizer = _FrameStylizer(model, style, device, smoothing, track=False)  # live reports no flicker
    cap = cv2.VideoCapture(camera)
    if not cap.isOpened():
        raise ValueError(f"camera: OpenCV could not open {camera!r}")
    frames, t0 = 0, time.perf_counter()
    try:
        while max_frames is None or frames < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            tw, th = _scaled_size(w, h, size) if size and max(w, h) > size else (w, h)
            if (tw, th) != (w, h):
                bgr = cv2.resize(bgr, (tw, th), interpolation=cv2.INTER_AREA)
            rgb = np.ascontiguousarray(bgr[..., ::-1])
            out = stylizer([rgb])[0]
            frames += 1
            if window is not None:
                cv2.imshow(window, np.ascontiguousarray(out[..., ::-1]))
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
    finally:
        cap.release()
        if window is not None:
            cv2.destroyAllWindows()
    seconds = time.perf_counter() - t0
    return {"frames": frames, "fps": frames / seconds if seconds else 0.0,
            "stylize_fps": stylizer.frames / stylizer.seconds if stylizer.seconds else 0.0}
