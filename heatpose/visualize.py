"""Skeleton drawings of predicted poses, driven by the keypoint schema (any joint count).

Each joint is coloured by its score (a red -> yellow -> green colour map), joints and limbs
below ``score_thr`` are drawn faded, and each person's box is drawn with its pose score and
box score. Drawing works on the upright BGR image the coordinates refer to, so the output
picture is what a viewer shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import matplotlib
import numpy as np

from heatpose.keypoints import KeypointSchema

_CMAP = matplotlib.colormaps["RdYlGn"]
BOX_COLOR = (255, 160, 0)  # BGR: light blue
OUTLINE = (20, 20, 20)


def score_color(score: float) -> tuple[int, int, int]:
    """BGR colour of a score in [0, 1]: red (0) -> yellow -> green (1)."""
    r, g, b, _ = _CMAP(float(np.clip(score, 0.0, 1.0)))
    return (round(b * 255), round(g * 255), round(r * 255))


def draw_poses(
    image_bgr: np.ndarray,
    poses: Sequence[object],
    schema: KeypointSchema,
    score_thr: float = 0.3,
    draw_boxes: bool = True,
    hide_thr: float = 0.0,
) -> np.ndarray:
    """A copy of ``image_bgr`` with each pose's skeleton, joints and box drawn on it.

    Joints scoring under ``hide_thr`` (``--kpt-thr``) and their limbs are not drawn at all;
    those under ``score_thr`` are drawn faded.

    ``poses`` are :class:`~heatpose.predictor.PersonPose`-like objects: ``keypoints`` (K, 3)
    x, y, score in image pixels; ``box`` (4,) x, y, w, h; ``score`` and ``box_score``.
    Line widths and joint radii grow with the image size.
    """
    canvas = image_bgr.copy()
    faded = image_bgr.copy()
    h, w = canvas.shape[:2]
    unit = max(1, round(max(h, w) / 400))
    labels: list[tuple[str, float, float]] = []
    for pose in poses:
        kpts = np.asarray(pose.keypoints, np.float64)  # type: ignore[attr-defined]
        if len(kpts) != schema.num_joints:
            raise ValueError(
                f"pose has {len(kpts)} keypoints, schema {schema.name!r} has {schema.num_joints}"
            )
        for a, b in schema.skeleton:
            score = min(kpts[a, 2], kpts[b, 2])
            if score < hide_thr:
                continue
            target = canvas if score >= score_thr else faded
            pa, pb = _point(kpts[a]), _point(kpts[b])
            cv2.line(target, pa, pb, OUTLINE, 2 * unit + 2, cv2.LINE_AA)  # dark rim: visible on any scene
            cv2.line(target, pa, pb, score_color(score), 2 * unit, cv2.LINE_AA)
        for j in range(len(kpts)):
            if kpts[j, 2] < hide_thr:
                continue
            target = canvas if kpts[j, 2] >= score_thr else faded
            cv2.circle(target, _point(kpts[j]), 2 * unit + 2, OUTLINE, -1, cv2.LINE_AA)
            cv2.circle(target, _point(kpts[j]), 2 * unit + 1, score_color(kpts[j, 2]), -1, cv2.LINE_AA)
        if draw_boxes:
            x, y, bw, bh = (float(v) for v in pose.box)  # type: ignore[attr-defined]
            cv2.rectangle(canvas, _point((x, y)), _point((x + bw, y + bh)), BOX_COLOR, unit, cv2.LINE_AA)
            labels.append((f"pose {pose.score:.2f}, box {pose.box_score:.2f}", x, y))  # type: ignore[attr-defined]
    # faded = what was drawn below the threshold, at 35 % opacity over the clean image
    low = np.any(faded != image_bgr, axis=2)
    canvas[low] = (0.35 * faded[low] + 0.65 * canvas[low]).astype(np.uint8)
    placed: list[tuple[int, int, int, int]] = []
    for text, x, y in labels:  # last, so no skeleton covers a label
        placed.append(_draw_label(canvas, text, x, y, unit, placed))
    return canvas


def _draw_label(
    canvas: np.ndarray, text: str, x: float, y: float, unit: int, placed: list[tuple[int, int, int, int]]
) -> tuple[int, int, int, int]:
    """``text`` in the box colour with a dark rim (readable on any scene) at the box's top-left
    corner (x, y): above the box where there is room, else just inside it; shifted left where it
    would run off the right edge, down below any label already ``placed`` that it would cover,
    and smaller where the picture is narrower than the text. Returns its (x0, y0, x1, y1)."""
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, max(1, unit // 2)
    scale = 0.4 * unit
    width = cv2.getTextSize(text, font, scale, thickness)[0][0]
    if width > 0.95 * canvas.shape[1]:
        scale *= 0.95 * canvas.shape[1] / width
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    tag_h = th + base + 4
    left = int(min(max(x + 2, 1), max(canvas.shape[1] - tw - 2, 1)))
    top = int(y) - tag_h if y - tag_h >= 0 else int(max(y, 0))
    for x0, y0, x1, y1 in sorted(placed, key=lambda r: r[1]):
        if left < x1 and x0 < left + tw and top < y1 and y0 < top + tag_h:
            top = y1
    top = min(top, max(canvas.shape[0] - tag_h, 0))
    for color, extra in ((OUTLINE, thickness + 2), (BOX_COLOR, 0)):
        cv2.putText(canvas, text, (left, top + 2 + th), font, scale, color, thickness + extra, cv2.LINE_AA)
    return (left, top, left + tw, top + tag_h)


def _point(xy: Sequence[float]) -> tuple[int, int]:
    return (round(float(xy[0])), round(float(xy[1])))
