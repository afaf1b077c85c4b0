"""Stylizing a video file with a feed-forward stylizer: `stylize_video` (file to file). The camera is
genfast.style.live, the temporal smoothing genfast.style.smoothing, the flicker measure
genfast.style.metrics; frames go through genfast.style.apply.FrameStylizer.

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

from genfast.checks import ArgumentError, check_int, check_optional_int, named
from genfast.style.apply import FrameStylizer, resolve_model
from genfast.style.smoothing import TemporalSmoother
from genfast.training.progress import progress_bar

__all__ = ["stylize_video", "VideoReport", "VideoDecodeError", "VideoInterrupted", "VideoEncodeError", "read_frames", "scaled_size"]


def scaled_size(w: int, h: int, size: int | None) -> tuple[int, int]:
    """The (width, height) of a w x h frame whose longest side becomes `size` (None: unchanged)."""
    if size is None:
        return w, h
    check_int(size, "size", 8)
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


class VideoDecodeError(ArgumentError):
    """The input could not be decoded to its end (a bad input: exit 2 on the command line). The
    frames that did decode were stylized and written (`report.output`, None when no frame decoded);
    `report` has the details."""

    def __init__(self, detail: str, report: VideoReport):
        super().__init__("input", detail)
        self.report = report


class VideoEncodeError(OSError):
    """The encoder or the output container failed (a full disk, an unwritable folder, a codec the
    container refuses); the temporary output was removed."""


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C during stylize_video: the frames done so far were written as a valid video first."""

    def __init__(self, report: VideoReport):
        if report.output:
            super().__init__(f"interrupted after {report.frames} frames; wrote them to {report.output}")
        else:
            super().__init__("interrupted before the first frame was stylized; nothing was written")
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
                  crf: int = 18, preset: str = "veryfast", allow_partial: bool = False,
                  max_decode_errors: int = 16) -> VideoReport:
    """Stylize every frame of the video `input` with `model` and write H.264 video to `output`.

    model: a TransformerNet / MultiStyleNet (or any module mapping (N, 3, H, W) 0-255 to the same), or
    a checkpoint path for `load_stylizer`. style: a MultiStyleNet's style index or mixing weights
    (normalised to sum 1). batch_size: frames per forward pass. smoothing in [0, 1): temporal
    smoothing of static regions (`TemporalSmoother`). size: resize so the longest side is `size`.
    max_frames: stop after this many frames. crf/preset: libx264 quality and speed.

    The output container is chosen by `output`'s suffix (.mp4, .mkv, .mov ...); audio streams are
    copied when that container holds their codec, else dropped (said in `report.audio`).

    A file that stops part way (truncated, corrupt: a decoding error, or fewer frames or seconds than
    the container declares) still gives a valid `output` with the frames that decoded; then
    `VideoDecodeError` (with `.report`) is raised, or with allow_partial=True the problems are listed
    in `report.decode_errors` and the report is returned. Ctrl-C writes the frames done so far and
    raises `VideoInterrupted` (a KeyboardInterrupt, with `.report`); before the first frame is
    done it writes nothing.
    """
    av = _av()
    from genfast.io import atomic_path, check_output

    check_int(batch_size, "batch_size", 1)
    check_optional_int(max_frames, "max_frames", 1)
    TemporalSmoother(smoothing)  # validates
    input, output = Path(input), Path(output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ArgumentError("output", f"expected a video file name ending in one of "
                                      f"{', '.join(sorted(OUTPUT_SUFFIXES))}, got {str(output)!r}")
    if not input.is_file():
        raise named(FileNotFoundError, "input", f"no such file: {str(input)!r}")
    check_output(output, {"input": input}, name="output")
    if isinstance(model, (str, os.PathLike)):
        check_output(output, {"model": model}, name="output")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArgumentError("output", f"cannot create the folder {str(output.parent)!r} ({e.strerror or e})") from None
    t_start = time.perf_counter()
    model, device = resolve_model(model, device)
    stylizer = FrameStylizer(model, style, device, smoothing)

    try:
        src = av.open(str(input))
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"{str(input)!r} is not a readable video ({e})",
                               VideoReport(str(input), None, smoothing=smoothing, decode_errors=[str(e)])) from None
    report = VideoReport(str(input), str(output), smoothing=float(smoothing))
    with src:
        if not src.streams.video:
            raise ArgumentError("input", f"{str(input)!r} has no video stream")
        vs = src.streams.video[0]
        vs.thread_type = "AUTO"
        astreams = list(src.streams.audio)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate or Fraction(25)
        tb = vs.time_base or 1 / Fraction(rate)
        step = max(1, round(1 / (rate * tb)))   # one frame in time-base units (for missing time stamps)
        report.fps = float(rate)
        declared = _declared_frames(src, vs)
        total = min(declared, max_frames) if declared and max_frames else (declared or max_frames)
        bar = progress_bar(total, desc=input.name, unit="frame", enabled=progress)
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
                            w, h = scaled_size(item.width, item.height, size)
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
                    bar.close()
                if state.out is not None:
                    state.close()
                if state.written == 0:
                    raise _NothingWritten    # atomic_path removes the temporary file: no empty video
        except _NothingWritten:
            report.output = None
        except av.error.FFmpegError as e:   # decoding errors are caught in _demux: this is the encoder
            raise VideoEncodeError(f"output {str(output)!r}: encoding failed ({e}); nothing was written") from None
        if state.written and interrupted is None and not decode_errors and max_frames is None:
            short = _shortfall(src, vs, tb, step, state.last_pts, state.decoded, declared, bool(astreams))
            if short:
                decode_errors.append(short)

    report.frames = state.written
    report.width, report.height = state.w_even, state.h_even
    if state.first_pts is not None:
        report.duration = float((state.last_pts - state.first_pts + step) * tb)
    report.stylize_fps = stylizer.frames / stylizer.seconds if stylizer.seconds else 0.0
    report.seconds = time.perf_counter() - t_start
    report.end_to_end_fps = report.frames / report.seconds if report.seconds else 0.0
    report.flicker_input = stylizer.flicker["input"].value()
    report.flicker_raw = stylizer.flicker["raw"].value()
    report.flicker_smoothed = stylizer.flicker["smoothed"].value()
    report.decode_errors = decode_errors
    report.interrupted = interrupted is not None
    if interrupted is not None:
        raise VideoInterrupted(report) from interrupted
    if state.decoded == 0 and not decode_errors:
        decode_errors.append("no video frame could be decoded")
    if decode_errors and not allow_partial:
        where = (f"the {report.frames} frames that decoded were written to {str(output)!r} (pass "
                 f"allow_partial=True, --allow-partial, to accept a partial video)" if report.output
                 else "nothing was written")
        raise VideoDecodeError(f"{str(input)!r}: decoding stopped early ({decode_errors[0]}"
                               + (f"; {len(decode_errors) - 1} more errors" if len(decode_errors) > 1 else "")
                               + f"); {where}", report)
    return report


def _declared_frames(src, vs) -> int | None:
    """The frame count the container declares, where it declares one. AVI's header counts ticks of
    its time base (a variable-rate AVI declares more "frames" than it has), so not for AVI."""
    if vs.frames > 0 and "avi" not in (src.format.name or ""):
        return int(vs.frames)
    return None


def _to_rgb(frame, w: int, h: int) -> np.ndarray:
    if (frame.width, frame.height) == (w, h):
        return frame.to_ndarray(format="rgb24")
    shrink = w * h < frame.width * frame.height
    return frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA" if shrink else "BICUBIC")


def _shortfall(src, vs, tb, step, last_pts, decoded: int, declared: int | None, has_audio: bool) -> str | None:
    """A file cut short without a decoding error, seen from what the container declares: fewer frames
    than its frame count, or a stream that ends before its declared length (AVI: the header's length
    in ticks; Matroska: the duration)."""
    if last_pts is None:
        return None
    if declared and decoded < declared:
        return f"decoded {decoded} of the {declared} frames the file declares (truncated file?)"
    end = float((last_pts + step) * tb)
    start = float((vs.start_time or 0) * tb)
    if "avi" in (src.format.name or "") and vs.frames > 0:
        declared_s, slack = float(vs.frames * tb) + start, 2 * float(step * tb)
    elif vs.duration:
        declared_s, slack = float(vs.duration * tb) + start, 2 * float(step * tb)
    elif src.duration:
        # the container's duration covers every stream; audio may run a little past the video
        declared_s, slack = src.duration / 1e6, 2 * float(step * tb) + (0.5 if has_audio else 0.0)
    else:
        return None
    if end < declared_s - slack:
        return (f"decoded {decoded} frames: the video stream should last {declared_s:.2f} s but decoding ended "
                f"at {end:.2f} s (truncated file?)")
    return None


class _NothingWritten(Exception):
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


