"""How alike a new pose is to a remembered one: box IoU, OKS, flow-OKS, multi-flow (paper §3.3).

- ``box_iou``: IoU of the person boxes in consecutive frames (no flow).
- ``oks``: object keypoint similarity of the new pose and the previous frame's pose, unmoved.
- ``flow_oks``: OKS of the new pose and the previous frame's pose moved by the optical flow.
- ``multi_flow``: as ``flow_oks``, against every pose of the last L_Q frames, each moved by the
  flows since its frame; a track's similarity is the best over its remembered poses, so someone
  hidden for a few frames can still be matched.

OKS comes from ``evaluation/nms.py: oks_iou`` (one implementation of the maths): joints with a
score under the joint threshold in either pose are left out, and the scale is the mean of the two
poses' box areas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heatpose.evaluation.nms import box_iou, oks_iou

SIMILARITIES = ("box_iou", "oks", "flow_oks", "multi_flow")


@dataclass
class Remembered:
    """A pose of an earlier frame as the tracker keeps it."""

    track_id: int
    age: int  # frames since it was seen: 1 = the previous frame
    keypoints: np.ndarray  # (K, 2) where it was estimated
    moved: np.ndarray  # (K, 2) the same joints moved by the flows into the current frame
    scores: np.ndarray  # (K,)
    box: np.ndarray  # (4,) xyxy, the box the pose was estimated in


def box_area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)


def box_iou_matrix(new_boxes: np.ndarray, old_boxes: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes (N, 4) against (M, 4)."""
    out = np.zeros((len(new_boxes), len(old_boxes)))
    for i, box in enumerate(new_boxes):
        if len(old_boxes):
            out[i] = box_iou(box, old_boxes)
    return out


def oks_matrix(
    new_kp: np.ndarray,
    new_scores: np.ndarray,
    new_areas: np.ndarray,
    old_kp: np.ndarray,
    old_scores: np.ndarray,
    old_areas: np.ndarray,
    sigmas: np.ndarray,
    joint_thr: float,
) -> np.ndarray:
    """(N, M) OKS of new poses (N, K, 2) + scores (N, K) against old ones (M, K, 2) + (M, K).

    Joints scoring ``<= joint_thr`` in either pose are ignored (``oks_iou``'s ``vis_thr``).
    """
    out = np.zeros((len(new_kp), len(old_kp)))
    if len(old_kp) == 0:
        return out
    old = np.concatenate([old_kp, old_scores[..., None]], axis=-1)
    for i in range(len(new_kp)):
        g = np.concatenate([new_kp[i], new_scores[i][:, None]], axis=-1)
        out[i] = oks_iou(g, old, float(new_areas[i]), old_areas, sigmas, vis_thr=joint_thr)
    return out


def track_similarity(
    method: str,
    new_kp: np.ndarray,
    new_scores: np.ndarray,
    new_boxes: np.ndarray,
    memory: list[Remembered],
    sigmas: np.ndarray,
    joint_thr: float,
) -> tuple[np.ndarray, list[int]]:
    """(N, T) similarity of the N new poses to the T tracks in ``memory``, and the T track ids.

    ``box_iou``, ``oks`` and ``flow_oks`` use only poses of the previous frame (age 1);
    ``multi_flow`` uses every remembered pose and keeps each track's best value.
    """
    if method not in SIMILARITIES:
        raise ValueError(f"unknown similarity {method!r}")
    usable = memory if method == "multi_flow" else [m for m in memory if m.age == 1]
    track_ids = sorted({m.track_id for m in usable})
    sim = np.zeros((len(new_kp), len(track_ids)))
    if not usable or len(new_kp) == 0:
        return sim, track_ids
    if method == "box_iou":
        per_pose = box_iou_matrix(new_boxes, np.stack([m.box for m in usable]))
    else:
        old_kp = np.stack([m.keypoints if method == "oks" else m.moved for m in usable])
        old_scores = np.stack([m.scores for m in usable])
        per_pose = oks_matrix(
            new_kp,
            new_scores,
            box_area(new_boxes),
            old_kp,
            old_scores,
            box_area(np.stack([m.box for m in usable])),
            sigmas,
            joint_thr,
        )
    column = {t: j for j, t in enumerate(track_ids)}
    for k, m in enumerate(usable):
        j = column[m.track_id]
        sim[:, j] = np.maximum(sim[:, j], per_pose[:, k])
    return sim, track_ids
