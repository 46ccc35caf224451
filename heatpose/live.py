"""Live input for ``heatpose predict``: a camera, a stream URL (rtsp/http) or a capture device.

Why a reader thread: a camera produces frames at its own rate whether or not the model keeps up.
Reading them one by one when the model is slower would hand it ever older frames (the driver's
buffer) and the poses would lag further and further behind. :class:`LiveFrames` therefore reads
the capture in a background thread and keeps only the newest frame; every frame replaced before
the model took it is counted in ``dropped`` (the command reports it). ``max_fps`` caps the rate
at which frames are handed out (the rest are dropped too), to spare the CPU. With
``drop=False`` frames are read in order, none dropped: what a test with a file-backed capture
needs to get the same poses as the file path.

Times are seconds since the first frame: the capture's timestamps when reading in order
(``media.frame_time``), the clock at grab time when dropping (live sources' timestamps are
often missing or per-driver).

:func:`open_capture` accepts a camera index (``0``), a device path (``/dev/video0``) or any
URL OpenCV's FFmpeg backend reads; a ready ``cv2.VideoCapture``-like object (``read()``,
``get()``, ``release()``) can be passed to :class:`LiveFrames` instead (tests inject one).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from heatpose.errors import HeatposeError
from heatpose.media import frame_time


def open_capture(source: int | str) -> cv2.VideoCapture:
    """A ``cv2.VideoCapture`` of a camera index, device path or URL; one clear error if it fails."""
    src: int | str = int(source) if isinstance(source, str) and source.isdigit() else source
    cap = cv2.VideoCapture(src)
    if not cap.isOpened():
        what = f"camera {src}" if isinstance(src, int) else f"capture source {src!r}"
        raise HeatposeError(f"cannot open {what} (no such device, or OpenCV cannot read it)")
    return cap


def check_display() -> None:
    """``--show`` needs a window system: one clear error line when there is none."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise HeatposeError(
            "--show needs a display, and DISPLAY is not set: drop --show (write --vis instead)"
        )


class LiveFrames:
    """Iterate ``(frame (H, W, 3) uint8 BGR, seconds)`` from a capture; see the module docstring."""

    def __init__(self, capture: Any, max_fps: float | None = None, drop: bool = True) -> None:
        if max_fps is not None and not max_fps > 0:
            raise HeatposeError(f"--max-fps must be > 0, got {max_fps}")
        self.capture = capture
        self.max_fps = max_fps
        self.drop = drop
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
        self.read = 0  # frames read from the capture
        self.dropped = 0  # frames read but not handed out
        self._cond = threading.Condition()
        self._latest: tuple[np.ndarray, float] | None = None
        self._ended = False
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        frames = self._threaded() if self.drop else self._in_order()
        next_time: float | None = None  # --max-fps: the earliest time of the next frame handed out
        try:
            for frame, seconds in frames:
                if self.max_fps is not None:
                    period = 1.0 / self.max_fps
                    if next_time is not None and seconds < next_time - 0.25 * period:  # 25 % slack: jitter
                        with self._cond:
                            self.dropped += 1
                        continue
                    behind = next_time is None or seconds > next_time + period
                    next_time = seconds + period if behind else next_time + period
                yield frame, seconds
        finally:
            self.close()

    def _in_order(self) -> Iterator[tuple[np.ndarray, float]]:
        previous = None
        while not self._stop.is_set():
            ok, frame = self.capture.read()
            if not ok:
                return
            previous = frame_time(self.capture, self.read, self.fps, previous)
            self.read += 1
            yield frame, previous

    def _grab(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            ok, frame = self.capture.read()
            with self._cond:
                if not ok:
                    self._ended = True
                    self._cond.notify_all()
                    return
                self.read += 1
                if self._latest is not None:
                    self.dropped += 1
                self._latest = (frame, time.monotonic() - start)
                self._cond.notify_all()

    def _threaded(self) -> Iterator[tuple[np.ndarray, float]]:
        thread = threading.Thread(target=self._grab, name="heatpose-capture", daemon=True)
        thread.start()
        try:
            while True:
                with self._cond:
                    while self._latest is None and not self._ended:
                        self._cond.wait(0.1)
                    if self._latest is None:
                        return
                    item, self._latest = self._latest, None
                yield item
        finally:
            self._stop.set()
            thread.join(timeout=2.0)

    def close(self) -> None:
        self._stop.set()
        release = getattr(self.capture, "release", None)
        if release is not None:
            release()


class Window:
    """An OpenCV window for ``--show``; closing it (q or Esc) ends the run like Ctrl-C."""

    def __init__(self, title: str) -> None:
        check_display()
        self.title = title

    def show(self, frame: np.ndarray) -> bool:
        """Draw ``frame``; False when the user asked to stop."""
        try:
            cv2.imshow(self.title, frame)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as err:
            raise HeatposeError(
                f"--show: OpenCV cannot open a window ({str(err).strip().splitlines()[-1]})"
            ) from None
        return key not in (ord("q"), 27)

    def close(self) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
