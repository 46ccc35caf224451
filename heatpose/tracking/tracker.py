"""The Simple Baselines pose tracker (Xiao et al., ECCV 2018, §3): flow-propagated boxes,
flow-based pose similarity, greedy matching.

Per frame:

1. Person boxes: the detector's boxes scoring >= ``det_score_thr`` plus, with ``propagate``, the
   boxes of the previous frame's poses moved by the optical flow (``propagate.pose_boxes``,
   enlarged 15%), scored ``propagated_box_score``; merged by box NMS at ``box_nms_iou``.
2. A pose in every box from the ``estimate(frame, boxes)`` callable (so the tracker does not care
   how poses are computed: a network, or ground truth in tests). Poses whose mean joint score is
   fewer than ``min_pose_joints`` joints scoring >= ``joint_score_thr`` are dropped (what a box on
   background gives, and what keeps a propagated box from outliving its person), and duplicates
   (two boxes on one person) removed by OKS-NMS at ``pose_nms_oks``, and a propagated box's pose
   dropped when it is within OKS ``propagated_pose_oks`` of a detected box's pose.
3. Similarity of each new pose to each track remembered from the last ``queue_frames`` (L_Q)
   frames (``similarity.py``); joints scoring under ``joint_score_thr`` are ignored.
4. Greedy matching (``matching.py``) above ``min_similarity``; unmatched poses start new tracks.

Values the paper does not publish, chosen here (all in :class:`TrackerConfig`): L_Q = 5 frames,
box NMS IoU 0.7, propagated boxes scored 0.45 (under the detector threshold, so a detected box wins
the NMS against the propagated box of the same person), minimum similarity 0.2, at least 2 joints
per pose, pose OKS-NMS 0.7 and propagated-duplicate OKS 0.5. docs/tracking.md says how they were chosen.

Flow is computed once per frame pair and used at once: every remembered pose is moved by the
newest flow as soon as it exists (its ``moved`` joints), so no flow outlives its frame, however
long L_Q is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from heatpose.errors import HeatposeError
from heatpose.evaluation.nms import box_nms, oks_nms
from heatpose.tracking.flow import FLOW_METHODS, make_flow
from heatpose.tracking.matching import greedy_match
from heatpose.tracking.propagate import clip_boxes, move_points, pose_boxes
from heatpose.tracking.similarity import SIMILARITIES, Remembered, box_area, oks_matrix, track_similarity

# estimate(frame (H, W, 3) uint8 BGR, boxes (N, 4) xyxy) -> keypoints (N, K, 2), scores (N, K)
PoseEstimate = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
STAGES = ("flow", "boxes", "pose", "matching")


@dataclass
class TrackerConfig:
    """The tracker's thresholds; the paper's where it gives them, documented choices otherwise."""

    similarity: str = "multi_flow"  # box_iou | oks | flow_oks | multi_flow
    propagate: bool = True  # add flow-propagated boxes to the detector's
    queue_frames: int = 5  # L_Q: frames a track is remembered for matching
    det_score_thr: float = 0.5  # paper: detector boxes scoring >= 0.5
    joint_score_thr: float = 0.4  # paper: joints scoring < 0.4 are ignored for matching
    box_enlarge: float = 0.15  # paper: propagated boxes enlarged by 15%
    box_nms_iou: float = 0.7
    propagated_box_score: float = 0.45
    min_similarity: float = 0.2
    min_pose_joints: int = 2  # a pose needs this many joints scoring >= joint_score_thr
    pose_nms_oks: float = 0.7
    propagated_pose_oks: float = 0.5  # a propagated box's pose this close to a detected box's pose is dropped
    flow: str = "dis"  # dis | farneback
    flow_scale: float = 1.0  # compute the flow on frames resized by this factor

    def validate(self) -> TrackerConfig:
        if self.similarity not in SIMILARITIES:
            raise HeatposeError(
                f"tracker.similarity must be one of {', '.join(SIMILARITIES)}, got {self.similarity!r}"
            )
        if self.flow not in FLOW_METHODS:
            raise HeatposeError(f"tracker.flow must be one of {', '.join(FLOW_METHODS)}, got {self.flow!r}")
        if (
            isinstance(self.min_pose_joints, bool)
            or not isinstance(self.min_pose_joints, int)
            or self.min_pose_joints < 1
        ):
            raise HeatposeError(
                f"tracker.min_pose_joints must be an integer >= 1, got {self.min_pose_joints!r}"
            )
        if (
            isinstance(self.queue_frames, bool)
            or not isinstance(self.queue_frames, int)
            or self.queue_frames < 1
        ):
            raise HeatposeError(f"tracker.queue_frames must be an integer >= 1, got {self.queue_frames!r}")
        for name in (
            "det_score_thr",
            "joint_score_thr",
            "box_nms_iou",
            "propagated_box_score",
            "min_similarity",
            "pose_nms_oks",
            "propagated_pose_oks",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise HeatposeError(f"tracker.{name} must be in [0, 1], got {value!r}")
        for name in ("box_enlarge", "flow_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise HeatposeError(f"tracker.{name} must be a number, got {value!r}")
        if not isinstance(self.propagate, bool):
            raise HeatposeError(f"tracker.propagate must be true or false, got {self.propagate!r}")
        if not 0.0 <= self.box_enlarge <= 2.0:
            raise HeatposeError(f"tracker.box_enlarge must be in [0, 2], got {self.box_enlarge!r}")
        if not 0.05 <= self.flow_scale <= 1.0:
            raise HeatposeError(f"tracker.flow_scale must be in [0.05, 1], got {self.flow_scale!r}")
        return self

    @property
    def needs_flow(self) -> bool:
        return self.propagate or self.similarity in ("flow_oks", "multi_flow")


@dataclass
class TrackedPose:
    """One person in one frame with its track id."""

    track_id: int
    keypoints: np.ndarray  # (K, 2) frame pixels
    scores: np.ndarray  # (K,) joint scores
    box: np.ndarray  # (4,) xyxy box the pose was estimated in
    propagated: bool  # the box came from flow propagation, not the detector

    @property
    def score(self) -> float:
        return float(self.scores.mean()) if self.scores.size else 0.0


@dataclass
class PoseTracker:
    """Feed frames in order with :meth:`step`; ``timings`` sums seconds per stage."""

    estimate: PoseEstimate
    sigmas: np.ndarray  # (K,) OKS sigmas of the estimator's keypoint schema
    config: TrackerConfig = field(default_factory=TrackerConfig)
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def __post_init__(self) -> None:
        self.config.validate()
        self.sigmas = np.asarray(self.sigmas, dtype=np.float64)
        self._flow = make_flow(self.config.flow, self.config.flow_scale)
        self._prev_frame: np.ndarray | None = None
        self._memory: list[Remembered] = []
        self._next_id = 0

    def step(self, frame: np.ndarray, det_boxes: np.ndarray, det_scores: np.ndarray) -> list[TrackedPose]:
        """Track one frame. ``det_boxes`` (N, 4) xyxy detector boxes, ``det_scores`` (N,)."""
        cfg = self.config
        h, w = frame.shape[:2]
        tick = time.perf_counter()
        for m in self._memory:
            m.age += 1
        self._memory = [m for m in self._memory if m.age <= cfg.queue_frames]
        if cfg.needs_flow and self._prev_frame is not None and self._memory:
            flow = self._flow(self._prev_frame, frame)
            for m in self._memory:
                m.moved = move_points(m.moved, flow)
        self._prev_frame = frame
        tick = self._lap("flow", tick)

        boxes, propagated = self._person_boxes(det_boxes, det_scores, w, h)
        tick = self._lap("boxes", tick)

        k = len(self.sigmas)
        if len(boxes):
            keypoints, scores = self.estimate(frame, boxes)
            keypoints = np.asarray(keypoints, dtype=np.float64).reshape(len(boxes), -1, 2)
            scores = np.asarray(scores, dtype=np.float64).reshape(len(boxes), -1)
            if keypoints.shape[1] != k:
                raise HeatposeError(
                    f"the pose estimator gave {keypoints.shape[1]} joints, the tracker expects {k}"
                )
        else:
            keypoints, scores = np.zeros((0, k, 2)), np.zeros((0, k))
        keep = self._keep_poses(keypoints, scores, boxes, propagated)
        keypoints, scores, boxes, propagated = keypoints[keep], scores[keep], boxes[keep], propagated[keep]
        tick = self._lap("pose", tick)

        sim, track_ids = track_similarity(
            cfg.similarity, keypoints, scores, boxes, self._memory, self.sigmas, cfg.joint_score_thr
        )
        ids = [-1] * len(keypoints)
        for row, col in greedy_match(sim, cfg.min_similarity):
            ids[row] = track_ids[col]
        for i in range(len(ids)):
            if ids[i] < 0:
                ids[i] = self._next_id
                self._next_id += 1
        out = [
            TrackedPose(ids[i], keypoints[i], scores[i], boxes[i], bool(propagated[i]))
            for i in range(len(ids))
        ]
        self._memory += [
            Remembered(p.track_id, 0, p.keypoints, p.keypoints.copy(), p.scores, p.box) for p in out
        ]
        self._lap("matching", tick)
        return out

    def _lap(self, stage: str, tick: float) -> float:
        now = time.perf_counter()
        self.timings[stage] += now - tick
        return now

    def _person_boxes(
        self, det_boxes: np.ndarray, det_scores: np.ndarray, w: int, h: int
    ) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
        det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
        strong = det_scores >= cfg.det_score_thr
        boxes, scores = [det_boxes[strong]], [det_scores[strong]]
        is_prop = [np.zeros(int(strong.sum()), bool)]
        last = [m for m in self._memory if m.age == 1]
        if cfg.propagate and last:
            moved, index = pose_boxes(
                np.stack([m.moved for m in last]),
                np.stack([m.scores for m in last]),
                cfg.joint_score_thr,
                cfg.box_enlarge,
            )
            boxes.append(moved)
            scores.append(np.full(len(index), cfg.propagated_box_score))
            is_prop.append(np.ones(len(index), bool))
        all_boxes, valid = clip_boxes(np.concatenate(boxes), w, h)
        all_scores, all_prop = np.concatenate(scores)[valid], np.concatenate(is_prop)[valid]
        all_boxes = all_boxes[valid]
        keep = box_nms(all_boxes, all_scores, cfg.box_nms_iou) if len(all_boxes) else []
        keep = np.asarray(keep, dtype=np.int64)
        return all_boxes[keep], all_prop[keep]

    def _keep_poses(
        self, keypoints: np.ndarray, scores: np.ndarray, boxes: np.ndarray, propagated: np.ndarray
    ) -> np.ndarray:
        """Indices of poses that are confident enough and not duplicates of a better one.

        Two rules remove duplicates: OKS-NMS at ``pose_nms_oks`` over all poses (ranked by mean joint
        score: ranking detected boxes' poses first cost 2.3 MOTA on the tuning clips of
        docs/tracking.md, a propagated box is often the better fit), then a pose from a
        propagated box is dropped when its OKS with a kept pose from a detected box reaches
        ``propagated_pose_oks``. The second rule is looser because a propagated box that is offset
        from its person (half a body, a sliver at the frame edge) makes the network give a pose that
        differs from the detected box's pose of the same person: at OKS 0.7 alone such duplicates
        survive and propagate themselves frame after frame (docs/tracking.md). Lowering
        ``pose_nms_oks`` itself instead would also merge two detected people standing close.
        """
        if len(keypoints) == 0:
            return np.zeros(0, np.int64)
        cfg = self.config
        mean = scores.mean(axis=1)
        strong = (scores >= cfg.joint_score_thr).sum(axis=1)
        good = np.nonzero(strong >= cfg.min_pose_joints)[0]
        if len(good) == 0:
            return good
        poses = np.concatenate([keypoints[good], scores[good][..., None]], axis=-1)
        areas = box_area(boxes[good])
        keep = oks_nms(poses, mean[good], areas, cfg.pose_nms_oks, self.sigmas, vis_thr=cfg.joint_score_thr)
        kept = good[np.asarray(keep, dtype=np.int64)]
        detected = kept[~propagated[kept]]
        if len(detected) and propagated[kept].any():
            sim = oks_matrix(
                keypoints[kept],
                scores[kept],
                box_area(boxes[kept]),
                keypoints[detected],
                scores[detected],
                box_area(boxes[detected]),
                self.sigmas,
                cfg.joint_score_thr,
            )
            kept = kept[~(propagated[kept] & (sim.max(axis=1) >= cfg.propagated_pose_oks))]
        return np.sort(kept)
