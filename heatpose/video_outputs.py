"""Glue between the video commands and their per-frame outputs: tables and temporal smoothing.

``heatpose predict`` (a video, a camera) and ``heatpose track`` produce people per frame in two
shapes (:class:`~heatpose.predictor.PersonPose` and :class:`~heatpose.tracking.tracker.TrackedPose`);
:func:`frame_from_poses` and :func:`frame_from_tracks` turn either into the
:class:`~heatpose.video_tables.FramePoses` that :class:`~heatpose.video_tables.FrameTableWriter`
writes as CSV / JSON lines.

:class:`TrackSmoother` smooths tracked keypoints per track and joint (``heatpose/smoothing.py``
has the maths): ``one-euro`` online, frame by frame, with time from the frames' timestamps and a
restart whenever a track skipped a frame; ``savgol`` offline, over each finished track (runs of
consecutive frames). Smoothing only changes the reported keypoints: the tracker associates on
the raw poses, and joint scores are kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from heatpose.errors import HeatposeError
from heatpose.smoothing import OneEuroFilter, check_one_euro_params, savgol_smooth
from heatpose.video_tables import FramePoses

SMOOTHERS = ("none", "one-euro", "savgol")
# Chosen by benchmarks/smoothing_grid.py on synthetic clips (docs/results.md, "Temporal smoothing").
DEFAULT_ONE_EURO = (2.0, 0.5, 1.0)  # min_cutoff Hz, beta, d_cutoff Hz
DEFAULT_SAVGOL = (9, 3)  # window frames, polynomial order


def frame_from_poses(poses: Sequence, frame: int, time: float, num_joints: int) -> FramePoses:
    """``PersonPose`` list (keypoints (K, 3), box x, y, w, h, score) -> one :class:`FramePoses`."""
    if not poses:
        return FramePoses(frame, time, np.zeros((0, num_joints, 3)), np.zeros((0, 4)), np.zeros(0))
    return FramePoses(
        frame,
        time,
        np.stack([np.asarray(p.keypoints, np.float64) for p in poses]),
        np.stack([np.asarray(p.box, np.float64) for p in poses]),
        np.array([float(p.score) for p in poses]),
    )


def frame_from_tracks(people: Sequence, frame: int, time: float, num_joints: int) -> FramePoses:
    """``TrackedPose`` list (keypoints (K, 2), scores (K,), box xyxy) -> one :class:`FramePoses`."""
    if not people:
        empty = FramePoses(frame, time, np.zeros((0, num_joints, 3)), np.zeros((0, 4)), np.zeros(0))
        empty.track_ids = np.zeros(0, np.int64)
        return empty
    kp = np.stack([np.concatenate([p.keypoints, p.scores[:, None]], axis=1) for p in people])
    xyxy = np.stack([np.asarray(p.box, np.float64) for p in people])
    boxes = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    return FramePoses(
        frame,
        time,
        kp,
        boxes,
        np.array([p.score for p in people]),
        np.array([p.track_id for p in people], np.int64),
    )


class TrackSmoother:
    """Per-track, per-joint smoothing of :class:`TrackedPose` keypoints (see the module docstring).

    ``method``: ``none`` | ``one-euro`` | ``savgol``; ``params``: (min_cutoff, beta, d_cutoff) or
    (window, polyorder); ``fps`` sets the gap that restarts a One-Euro filter (1.5 frame periods).
    """

    def __init__(self, method: str = "none", params: Sequence[float] | None = None, fps: float = 25.0):
        if method not in SMOOTHERS:
            raise HeatposeError(f"--smooth must be one of {', '.join(SMOOTHERS)}, got {method!r}")
        self.method = method
        if method == "one-euro":
            p = tuple(float(v) for v in (params or DEFAULT_ONE_EURO))
            if len(p) != 3:
                raise HeatposeError(f"--one-euro takes MIN_CUTOFF BETA D_CUTOFF, got {len(p)} values")
            check_one_euro_params(p[0], p[1], p[2])
        elif method == "savgol":
            p = tuple(params or DEFAULT_SAVGOL)
            if len(p) != 2 or any(float(v) != int(v) for v in p):
                raise HeatposeError(f"--savgol takes two integers WINDOW POLYORDER, got {p}")
            p = (int(p[0]), int(p[1]))
            savgol_smooth(np.zeros((1, 1, 2)), [0], *p)  # validates the window
        else:
            p = ()
        self.params = p
        self.max_gap = 1.5 / fps if fps > 0 else 0.5
        self._filters: dict[int, OneEuroFilter] = {}

    @property
    def online(self) -> bool:
        return self.method == "one-euro"

    def step(self, people: list, time: float) -> list:
        """One frame's tracked people with One-Euro-smoothed keypoints (others: unchanged)."""
        if self.method != "one-euro":
            return people
        out = []
        for p in people:
            f = self._filters.get(p.track_id)
            if f is None:
                f = self._filters[p.track_id] = OneEuroFilter(*self.params, max_gap=self.max_gap)
            out.append(dataclasses.replace(p, keypoints=f(p.keypoints, time)))
        return out

    def finish(self, results: list[list]) -> list[list]:
        """All frames' tracked people with Savitzky-Golay-smoothed keypoints (others: unchanged)."""
        if self.method != "savgol":
            return results
        where: dict[int, list[tuple[int, int]]] = {}
        for t, people in enumerate(results):
            for i, p in enumerate(people):
                where.setdefault(p.track_id, []).append((t, i))
        out = [list(people) for people in results]
        for places in where.values():
            frames = np.array([t for t, _ in places])
            track = np.stack([results[t][i].keypoints for t, i in places])
            smooth = savgol_smooth(track, frames, *self.params)
            for (t, i), kp in zip(places, smooth, strict=True):
                out[t][i] = dataclasses.replace(results[t][i], keypoints=kp)
        return out
