"""Cheap checks that an image file is whole and matches its annotation, before any pixels are used.

Two faults would otherwise pass silently: a truncated JPEG (OpenCV decodes the missing part as
grey and only libjpeg's stderr says so) and an image whose stored size differs from the json's
``width``/``height`` (people land off the image). Both are found from a few kilobytes at the
start and the end of each file: the size from the JPEG SOF or PNG IHDR header, the truncation
from the missing JPEG end-of-image marker (``FF D9``). Sizes are those of the stored pixel grid,
which is what heatpose decodes (``cv2.IMREAD_IGNORE_ORIENTATION``: EXIF orientation is ignored,
as in the official code; COCO annotations refer to the stored grid). Other formats are decoded
once with OpenCV to learn their size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from heatpose.errors import HeatposeError

# Pixels exactly as stored: EXIF orientation ignored, as the official loaders read them.
IMREAD_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TAIL = 4096  # bytes read from the end of each file
_HEAD = 1 << 16  # bytes read from the start (JPEG headers; an EXIF thumbnail lives within these)


def _jpeg_complete(tail: bytes, size_bytes: int) -> bool:
    """True when the JPEG's end-of-image marker is there.

    It ends the file (after optional zero/whitespace padding), or, for a file larger than the
    header region (where an EXIF thumbnail's own marker could sit), appears in its last 4 KB
    followed by a trailer some cameras append. Entropy-coded data cannot contain ``FF D9``
    (0xFF is always stuffed), so a truncated scan never shows it.
    """
    if tail.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        return True
    return size_bytes > _HEAD + _TAIL and b"\xff\xd9" in tail


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first SOF segment of a JPEG, None when not found in ``head``."""
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", head[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", head[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def inspect_image(path: str | Path) -> tuple[tuple[int, int] | None, str]:
    """((width, height) or None, problem) of an image file; problem is "" for a sound file."""
    path = Path(path)
    try:
        size_bytes = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(_HEAD)
            f.seek(max(0, size_bytes - _TAIL))
            tail = f.read()
    except OSError as err:
        return None, f"cannot read: {err.strerror or err}"
    if head[:2] == b"\xff\xd8":
        size = _jpeg_size(head)
        if size is None:
            size = _decoded_size(path)
        if not _jpeg_complete(tail, size_bytes):
            return size, "truncated JPEG (no end-of-image marker)"
        return size, ""
    if head[:8] == _PNG_MAGIC and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        if not tail.endswith(b"IEND\xaeB`\x82"):
            return (width, height), "truncated PNG (no IEND chunk)"
        return (width, height), ""
    size = _decoded_size(path)
    return size, "" if size else "cannot decode (corrupt or not an image)"


def _decoded_size(path: Path) -> tuple[int, int] | None:
    image = cv2.imread(str(path), IMREAD_FLAGS)
    return None if image is None else (image.shape[1], image.shape[0])


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) of the stored pixel grid, None when the file cannot be read."""
    return inspect_image(path)[0]


@dataclass
class BadImage:
    path: str
    problem: str


def find_bad_images(images: Iterable[tuple[str, int | None, int | None]]) -> list[BadImage]:
    """Files among ``(path, json width, json height)`` that are truncated, unreadable, or of another size.

    Reads a few kilobytes per file, on a few threads (COCO train: 118k files); a progress bar
    shows for large sets.
    """
    items = list(images)

    def check(item: tuple[str, int | None, int | None]) -> BadImage | None:
        path, width, height = item
        size, problem = inspect_image(path)
        known = size is not None and width is not None and height is not None
        if not problem and known and size != (width, height):
            problem = f"decoded size {size[0]}x{size[1]} differs from the json's {width}x{height}"
        return BadImage(str(path), problem) if problem else None

    with ThreadPoolExecutor(max_workers=8) as pool:
        found = tqdm(
            pool.map(check, items),
            total=len(items),
            desc="checking images",
            unit="img",
            disable=len(items) < 5000,
            leave=False,
        )
        return [b for b in found if b is not None]


def refuse_or_skip(bad: list[BadImage], num_images: int, max_share: float | None, where: str) -> set[str]:
    """Evaluation (``max_share=None``): one error naming the first bad file. Training: the bad files
    to skip, unless their share of ``num_images`` exceeds ``max_share`` (then an error)."""
    if not bad:
        return set()
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    first = f"{bad[0].path}: {bad[0].problem}{more}"
    if max_share is None:
        raise HeatposeError(f"{where}: image does not match its annotation: {first}")
    share = len(bad) / max(1, num_images)
    if share > max_share:
        raise HeatposeError(
            f"{where}: {len(bad)} of {num_images} images are unusable ({share:.1%} > "
            f"data.max_bad_image_share {max_share:g}): {first}"
        )
    return {b.path for b in bad}


def decode_image(path: str | Path) -> np.ndarray | None:
    """HxWx3 uint8 BGR in stored pixel order (EXIF orientation ignored), None when undecodable."""
    return cv2.imread(str(path), IMREAD_FLAGS)
