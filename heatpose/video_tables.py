"""Per-frame pose tables for downstream use: a CSV (one row per frame and person) and a JSON-lines
stream (one object per frame, flushed as the video runs).

Why two formats: the CSV opens in pandas or a spreadsheet with one column per joint coordinate
(``<joint>_x``, ``<joint>_y``, ``<joint>_score``, named by the keypoint schema); the JSON lines
are written and flushed frame by frame, so a run that is killed keeps every finished frame
(the CSV is written to a temporary file and renamed into place when the run ends).

``kpt_thr`` blanks joints scored below it in the CSV (empty cells, NaN in pandas) without
touching the raw values, which the JSON results keep.

A frame is given as :class:`FramePoses`: the frame index, its time in seconds (from the
container's timestamps), and per person ``keypoints`` (N, K, 3) = x, y, score in image pixels,
``boxes`` (N, 4) = x, y, w, h, ``scores`` (N,) and optional ``track_ids`` (N,).
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np


@dataclass
class FramePoses:
    """The poses of one video frame (see the module docstring for shapes)."""

    frame: int
    time: float
    keypoints: np.ndarray  # (N, K, 3)
    boxes: np.ndarray  # (N, 4) x, y, w, h
    scores: np.ndarray  # (N,)
    track_ids: np.ndarray | None = None  # (N,) ints, when tracking


def csv_header(joint_names: tuple[str, ...] | list[str], tracking: bool) -> list[str]:
    cols = ["frame", "time_s"] + (["track_id"] if tracking else [])
    cols += ["score", "box_x", "box_y", "box_w", "box_h"]
    for name in joint_names:
        cols += [f"{name}_x", f"{name}_y", f"{name}_score"]
    return cols


def _num(v: float) -> str:
    return "" if not math.isfinite(v) else repr(float(v))


def csv_rows(poses: FramePoses, tracking: bool, kpt_thr: float = 0.0) -> list[list[str]]:
    """The CSV rows of one frame; joints with score < ``kpt_thr`` get empty x, y and score."""
    rows = []
    for i in range(len(poses.scores)):
        row = [str(int(poses.frame)), _num(poses.time)]
        if tracking:
            row.append(str(int(poses.track_ids[i])) if poses.track_ids is not None else "")
        row.append(_num(poses.scores[i]))
        row += [_num(v) for v in poses.boxes[i]]
        for x, y, s in poses.keypoints[i]:
            row += ["", "", ""] if s < kpt_thr else [_num(x), _num(y), _num(s)]
        rows.append(row)
    return rows


def jsonl_record(poses: FramePoses) -> dict:
    """One frame as a JSON object: raw values, no threshold applied."""
    people = []
    for i in range(len(poses.scores)):
        person = {
            "score": float(poses.scores[i]),
            "box": [float(v) for v in poses.boxes[i]],
            "keypoints": [float(v) for v in np.asarray(poses.keypoints[i], np.float64).reshape(-1)],
        }
        if poses.track_ids is not None:
            person["track_id"] = int(poses.track_ids[i])
        people.append(person)
    return {"frame": int(poses.frame), "time_s": float(poses.time), "people": people}


class FrameTableWriter:
    """Writes ``--csv`` and/or ``--jsonl`` for a video run; use as a context manager.

    The JSON lines go straight to their file and are flushed after every frame; the CSV goes
    to a hidden temporary file beside its target and is renamed onto it on a clean close (and
    also when the run is interrupted, so Ctrl-C keeps the finished frames; after any other
    error the temporary file is removed).
    """

    def __init__(
        self,
        joint_names: tuple[str, ...] | list[str],
        csv_path: str | Path | None = None,
        jsonl_path: str | Path | None = None,
        tracking: bool = False,
        kpt_thr: float = 0.0,
    ) -> None:
        self.tracking = tracking
        self.kpt_thr = kpt_thr
        self.csv_path = Path(csv_path) if csv_path else None
        self.jsonl_path = Path(jsonl_path) if jsonl_path else None
        self._csv_tmp: str | None = None
        self._csv_file: IO[str] | None = None
        self._csv: csv.writer | None = None
        self._jsonl: IO[str] | None = None
        if self.csv_path is not None:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._csv_tmp = tempfile.mkstemp(
                prefix=f".{self.csv_path.name}.", suffix=".tmp", dir=self.csv_path.parent
            )
            self._csv_file = os.fdopen(fd, "w", newline="", encoding="utf-8")
            self._csv = csv.writer(self._csv_file)
            self._csv.writerow(csv_header(joint_names, tracking))
        if self.jsonl_path is not None:
            self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
            self._jsonl = self.jsonl_path.open("w", encoding="utf-8")

    def write(self, poses: FramePoses) -> None:
        if self._csv is not None:
            self._csv.writerows(csv_rows(poses, self.tracking, self.kpt_thr))
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(jsonl_record(poses)) + "\n")
            self._jsonl.flush()

    def close(self, keep_csv: bool = True) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._csv_file is not None and self._csv_tmp is not None:
            self._csv_file.flush()
            os.fsync(self._csv_file.fileno())
            self._csv_file.close()
            self._csv_file = None
            if keep_csv:
                os.chmod(self._csv_tmp, 0o644)
                os.replace(self._csv_tmp, self.csv_path)
            else:
                Path(self._csv_tmp).unlink(missing_ok=True)
            self._csv_tmp = None

    def __enter__(self) -> FrameTableWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(keep_csv=exc_type is None or issubclass(exc_type, KeyboardInterrupt))
