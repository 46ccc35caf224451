"""Drawing tracked poses: each track's skeleton in its own colour, with its id above the head."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from heatpose.keypoints import KeypointSchema
from heatpose.tracking.tracker import TrackedPose


def track_color(track_id: int) -> tuple[int, int, int]:
    """A BGR colour per id: golden-ratio hue steps, so neighbouring ids look different."""
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return (round(b * 255), round(g * 255), round(r * 255))


def draw_tracks(
    frame: np.ndarray, people: list[TrackedPose], schema: KeypointSchema, joint_thr: float = 0.4
) -> np.ndarray:
    """A copy of the BGR ``frame`` with skeletons (joints scoring >= ``joint_thr``), boxes and ids."""
    canvas = frame.copy()
    unit = max(1, round(max(frame.shape[:2]) / 480))
    for p in people:
        color = track_color(p.track_id)
        pts = [(round(float(x)), round(float(y))) for x, y in p.keypoints]
        ok = p.scores >= joint_thr
        for a, b in schema.skeleton:
            if ok[a] and ok[b]:
                cv2.line(canvas, pts[a], pts[b], color, 2 * unit, cv2.LINE_AA)
        for j in np.nonzero(ok)[0]:
            cv2.circle(canvas, pts[j], 2 * unit, color, -1, cv2.LINE_AA)
        x0, y0, x1, y1 = (round(float(v)) for v in p.box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, 1, cv2.LINE_AA if not p.propagated else cv2.LINE_4)
        label = str(p.track_id)
        org = (x0 + 2, max(y0 - 4, 12 * unit))
        cv2.putText(
            canvas, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, (0, 0, 0), 3 * unit, cv2.LINE_AA
        )
        cv2.putText(canvas, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, color, unit, cv2.LINE_AA)
    return canvas
