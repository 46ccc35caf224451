"""A ground-truth pose "estimator" for tests and benchmarks of the tracker.

For each box it returns the ground-truth pose of the person the box overlaps most (box IoU), with
optional Gaussian noise of ``noise`` x that person's head size on every joint; labelled joints
score N(0.85, 0.05) (exactly 1 without noise), unlabelled ones 0.05 (0 without noise); a box that
overlaps nobody (IoU <= 0.1) gets an all-zero pose. It isolates the association (boxes,
similarity, matching) from the network.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from heatpose.evaluation.nms import box_iou
from heatpose.tracking.tracker import PoseEstimate


def xywh_to_xyxy(box) -> np.ndarray:
    x, y, w, h = (float(v) for v in box)
    return np.array([x, y, x + w, y + h])


def oracle_estimator(
    people_of_frame: Callable[[], list], num_joints: int, noise: float = 0.0, seed: int = 0
) -> PoseEstimate:
    """``people_of_frame()`` gives the current frame's GT people (``keypoints`` (K, 3), ``bbox``
    x, y, w, h and ``head_box`` x, y, w, h, as :class:`~heatpose.data.synthetic.video.ClipPerson`)."""
    rng = np.random.default_rng(seed)

    def estimate(frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        people = people_of_frame()
        kp, sc = np.zeros((len(boxes), num_joints, 2)), np.zeros((len(boxes), num_joints))
        if not people:
            return kp, sc
        gt_boxes = np.stack([xywh_to_xyxy(p.bbox) for p in people])
        for i, box in enumerate(boxes):
            iou = box_iou(box, gt_boxes)
            if iou.max() <= 0.1:
                continue
            p = people[int(iou.argmax())]
            labelled = p.keypoints[:, 2] > 0
            kp[i] = p.keypoints[:, :2]
            sc[i] = labelled
            if noise > 0:
                head = 0.6 * float(np.hypot(p.head_box[2], p.head_box[3]))
                kp[i] += rng.normal(0, noise * head, (num_joints, 2))
                sc[i] = np.where(labelled, np.clip(rng.normal(0.85, 0.05, num_joints), 0, 1), 0.05)
        return kp, sc

    return estimate
