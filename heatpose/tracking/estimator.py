"""The pose estimator and person detector the tracker calls, as plain callables.

The tracker needs ``estimate(frame_bgr, boxes_xyxy) -> (keypoints (N, K, 2), scores (N, K))``
and ``detect(frame_bgr) -> (boxes_xyxy (N, 4), scores (N,))``. Both wrap what ``heatpose
predict`` runs (:class:`heatpose.predictor.PoseEstimator`, :mod:`heatpose.detection`), so a
tracked video gets exactly the poses that ``predict`` and ``eval`` compute for the same boxes:
one inference path (crop batching, flip test, decode, back-projection in ``heatpose.inference``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from heatpose.config import ExperimentConfig
from heatpose.detection import WHOLE_IMAGE, PersonBoxes
from heatpose.keypoints import KeypointSchema
from heatpose.predictor import PoseEstimator
from heatpose.tracking.tracker import PoseEstimate


def _xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def pose_estimate_fn(estimator: PoseEstimator) -> PoseEstimate:
    """The tracker's ``estimate`` over a loaded :class:`PoseEstimator`."""
    k = estimator.schema.num_joints

    def estimate(frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xywh = _xyxy_to_xywh(boxes)
        poses = estimator.predict_bgr(frame, PersonBoxes(xywh, np.ones(len(xywh)), "tracker"))
        if not poses:
            return np.zeros((0, k, 2)), np.zeros((0, k))
        kp = np.stack([p.keypoints for p in poses])
        return kp[..., :2], kp[..., 2]

    return estimate


def load_pose_estimator(
    checkpoint: str | Path,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    flip: bool | None = None,
    batch_size: int = 32,
    backend: str = "torch",
    precision: str = "fp32",
) -> tuple[PoseEstimate, KeypointSchema, ExperimentConfig]:
    """``estimate(frame_bgr, boxes_xyxy)``, its keypoint schema and config, from any checkpoint
    :meth:`PoseEstimator.from_checkpoint` reads (a foreign one needs ``config``)."""
    est = PoseEstimator.from_checkpoint(
        checkpoint,
        config=config,
        backend=backend,
        precision=precision,
        detector=WHOLE_IMAGE,
        flip=flip,
        batch_size=batch_size,
        overrides=tuple(overrides),
    )
    return pose_estimate_fn(est), est.schema, est.cfg


class XyxyDetector:
    """Any person detector of heatpose (``image -> PersonBoxes`` or ``(boxes x, y, w, h, scores)``)
    as the tracker's ``frame -> (boxes xyxy, scores)``; OpenCV's HOG detector by default."""

    def __init__(self, detector: Callable[[np.ndarray], Any] | None = None) -> None:
        from heatpose.detection import HogPersonDetector

        self._detector = detector or HogPersonDetector()

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = self._detector(frame)
        boxes, scores = (found.boxes, found.scores) if isinstance(found, PersonBoxes) else found
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1), np.asarray(scores, np.float64)
