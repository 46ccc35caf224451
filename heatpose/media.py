"""Users' photos and videos: reading them upright, listing inputs, writing videos atomically.

**EXIF orientation.** A phone stores a portrait photo as a landscape pixel grid plus an EXIF
"Orientation" tag. :func:`read_photo` turns the photo upright by that tag (``cv2.imread``'s
default) and every coordinate heatpose reports for it refers to the upright image, the one a
viewer shows. Dataset readers (``data/dataset.py: read_image``) keep the stored pixel grid
(``cv2.IMREAD_IGNORE_ORIENTATION``, as the official code reads images), because COCO/MPII
annotations were made on it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from heatpose.errors import HeatposeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
MEDIA_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES
_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def read_photo(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 **BGR**, turned upright by the EXIF orientation tag; one-line error if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise HeatposeError(f"image file not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # IMREAD_COLOR applies EXIF orientation
    if image is None:
        raise HeatposeError(f"cannot decode image (corrupt or not an image): {path}")
    return image


def to_color_order(image: np.ndarray, source_order: str, target_order: str) -> np.ndarray:
    """Swap R and B when the two orders differ; checks the array is HxWx3 uint8."""
    source_order = source_order.lower() if isinstance(source_order, str) else source_order
    if source_order not in ("rgb", "bgr"):
        raise HeatposeError(f"the image's color_order must be 'rgb' or 'bgr', got {source_order!r}")
    if target_order not in ("rgb", "bgr"):
        raise HeatposeError(
            f"the model's colour order (data.color_order) must be 'rgb' or 'bgr', got {target_order!r}"
        )
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise HeatposeError(f"image must be an HxWx3 uint8 array, got {image.shape} {image.dtype}")
    return image if source_order == target_order else np.ascontiguousarray(image[..., ::-1])


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given, folders replaced by their images and videos (sorted, not recursive).

    Paths that do not exist are kept so the caller reports them as failed inputs.
    """
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out += sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES
            )
        else:
            out.append(path)
    return out


def frame_time(capture: cv2.VideoCapture, index: int, fps: float, previous: float | None) -> float:
    """Seconds of the frame ``capture`` just read: the container's timestamp
    (``CAP_PROP_POS_MSEC``), or ``index / fps`` when the container has none (a missing,
    negative or non-increasing timestamp after the first frame)."""
    msec = float(capture.get(cv2.CAP_PROP_POS_MSEC))
    seconds = msec / 1000.0
    if not np.isfinite(seconds) or seconds < 0 or (previous is not None and seconds <= previous):
        return index / fps if fps > 0 else float(index)
    return seconds


class VideoReader:
    """Frames of a video file as HxWx3 uint8 BGR arrays, with its fps and frame count.

    ``times`` grows by one entry per frame read: its time in seconds (:func:`frame_time`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise HeatposeError(f"video file not found: {self.path}")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise HeatposeError(f"cannot open video (corrupt or unsupported codec): {self.path}")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 25.0
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.times: list[float] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = self._cap.read()
                if not ok:
                    return
                previous = self.times[-1] if self.times else None
                self.times.append(frame_time(self._cap, len(self.times), self.fps, previous))
                yield frame
        finally:
            self._cap.release()


class AtomicVideoWriter:
    """``cv2.VideoWriter`` into a temporary file beside ``path``, renamed onto it by :meth:`close`.

    ``.mp4`` is written with the ``mp4v`` codec and ``.avi`` with ``MJPG``, both in OpenCV's
    own FFmpeg build. :meth:`discard` (or an exception inside ``with``) leaves no file behind.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC:
            raise HeatposeError(f"video output must end in .mp4 or .avi: {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=suffix, dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*_FOURCC[suffix]), fps, size)
        if not self._writer.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise HeatposeError(f"cannot write video {self.path} (codec {_FOURCC[suffix]} unavailable)")
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> Path:
        self._writer.release()
        os.replace(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        self._writer.release()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicVideoWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()
