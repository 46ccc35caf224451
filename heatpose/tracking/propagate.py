"""Moving poses by optical flow, and the person boxes propagated from them (paper §3.2).

The paper's box propagation: each joint of a pose from the previous frame is moved by the flow
at that joint; the box of the moved joints, enlarged by 15%, is a person box in the current frame,
so a person the detector misses (motion blur, occlusion) still gets a pose estimated.
"""

from __future__ import annotations

import numpy as np


def move_points(points: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Points (..., 2) moved by ``flow`` (H, W, 2), sampled bilinearly at each point.

    Points outside the frame take the flow of the nearest border pixel.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.size == 0:
        return points.copy()
    h, w = flow.shape[:2]
    x = np.clip(points[..., 0], 0, w - 1)
    y = np.clip(points[..., 1], 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    f = (
        flow[y0, x0] * (1 - fx) * (1 - fy)
        + flow[y0, x1] * fx * (1 - fy)
        + flow[y1, x0] * (1 - fx) * fy
        + flow[y1, x1] * fx * fy
    )
    return points + f


def pose_boxes(
    keypoints: np.ndarray, scores: np.ndarray, joint_thr: float, enlarge: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """xyxy boxes (M, 4) of the joints scoring >= ``joint_thr``, width and height scaled by 1 + ``enlarge``.

    ``keypoints`` (N, K, 2), ``scores`` (N, K). Returns the boxes and the indices (M,) of the poses
    they came from: poses with fewer than two such joints give no box.
    """
    boxes, index = [], []
    for i, (kp, sc) in enumerate(zip(keypoints, scores, strict=True)):
        pts = kp[sc >= joint_thr]
        if len(pts) < 2:
            continue
        lo, hi = pts.min(0), pts.max(0)
        center, half = (lo + hi) / 2, (hi - lo) / 2 * (1.0 + enlarge)
        boxes.append(np.concatenate([center - half, center + half]))
        index.append(i)
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(index, dtype=np.int64)


def clip_boxes(
    boxes: np.ndarray, width: int, height: int, min_size: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) clipped to the frame, and a mask of those at least ``min_size`` px wide and high."""
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width - 1)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height - 1)
    keep = (out[:, 2] - out[:, 0] >= min_size) & (out[:, 3] - out[:, 1] >= min_size)
    return out, keep
