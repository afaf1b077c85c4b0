"""Live stylization of a camera (or any source OpenCV opens) in a window, through OpenCV, an
optional dependency (opencv-python)."""

from __future__ import annotations

import time

import numpy as np

from genfast.checks import named
from genfast.style.apply import FrameStylizer, resolve_model
from genfast.style.video import scaled_size


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise named(ImportError, "live", "live mode needs OpenCV (the optional dependency opencv-python): "
                                         "pip install opencv-python") from e
    return cv2


def live(model, camera=0, *, style=None, size: int | None = 480, smoothing: float = 0.5, device=None,
         window: str | None = "genfast live", max_frames: int | None = None) -> dict:
    """Stylize a camera (an OpenCV device index, or a file/URL OpenCV can open) frame by frame and
    show it in a window; q or Esc quits. window=None runs without a display (for tests and
    benchmarks). Returns {"frames", "fps"}. Needs OpenCV (opencv-python), an optional dependency."""
    cv2 = _cv2()
    model, device = resolve_model(model, device)
    stylizer = FrameStylizer(model, style, device, smoothing, track=False)  # live reports no flicker
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
            tw, th = scaled_size(w, h, size) if size and max(w, h) > size else (w, h)
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
