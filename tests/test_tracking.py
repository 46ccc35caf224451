"""The flow tracker: propagation, greedy matching, and ids kept through a synthetic clip."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from heatpose.data.posetrack import read_posetrack
from heatpose.data.synthetic import render_synthetic_image
from heatpose.data.synthetic.video import render_synthetic_clip
from heatpose.data.synthetic.video_writer import clip_to_posetrack
from heatpose.errors import HeatposeError
from heatpose.evaluation.posetrack import evaluate_posetrack
from heatpose.keypoints import POSETRACK18
from heatpose.tracking import PoseTracker, TrackerConfig
from heatpose.tracking.flow import make_flow
from heatpose.tracking.matching import greedy_match
from heatpose.tracking.oracle import oracle_estimator
from heatpose.tracking.output import FrameInfo, tracks_to_posetrack
from heatpose.tracking.propagate import move_points, pose_boxes
from heatpose.tracking.run import tracker_config


def _xyxy(box) -> np.ndarray:
    x, y, w, h = box
    return np.array([x, y, x + w, y + h], dtype=np.float64)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_propagated_box_covers_a_person_moved_by_a_known_translation(method):
    scene = render_synthetic_image(2, 1, "coco", (256, 192))
    person = max(scene.people, key=lambda p: p.area)
    shift = np.array([6.0, -4.0])
    moved_frame = cv2.warpAffine(
        scene.image,
        np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]),
        (256, 192),
        borderMode=cv2.BORDER_REFLECT,
    )
    flow = make_flow(method)(scene.image, moved_frame)
    seen = person.keypoints[:, 2] > 0
    joints = person.keypoints[:, :2]
    moved = move_points(joints[None], flow)[0]
    truth = joints + shift
    assert np.median(np.linalg.norm(moved[seen] - truth[seen], axis=1)) < 1.5  # the flow found the motion
    boxes, index = pose_boxes(moved[None], seen[None].astype(float), joint_thr=0.4)
    assert index.tolist() == [0]
    x0, y0, x1, y1 = boxes[0]
    inside = (truth[seen, 0] >= x0) & (truth[seen, 0] <= x1) & (truth[seen, 1] >= y0) & (truth[seen, 1] <= y1)
    assert inside.all()
    lo, hi = truth[seen].min(0), truth[seen].max(0)  # the box of the moved joints, enlarged by 15%
    np.testing.assert_allclose([x1 - x0, y1 - y0], (hi - lo) * 1.15, rtol=0.1)


def test_pose_boxes_skip_poses_with_fewer_than_two_confident_joints():
    kp = np.array([[[10, 10], [30, 50], [0, 0]], [[5, 5], [9, 9], [7, 7]]], dtype=float)
    scores = np.array([[0.9, 0.8, 0.1], [0.9, 0.1, 0.2]])
    boxes, index = pose_boxes(kp, scores, joint_thr=0.4, enlarge=0.0)
    assert index.tolist() == [0]
    np.testing.assert_allclose(boxes[0], [10, 10, 30, 50])


def test_greedy_matching_takes_the_best_pair_first_not_the_best_total():
    sim = np.array([[0.9, 0.8, 0.0], [0.85, 0.1, 0.3], [0.2, 0.7, 0.6]])
    # greedy: 0.9 (0, 0), then 0.7 (2, 1), then 0.3 (1, 2); the Hungarian optimum would be
    # (0, 1) + (1, 0) + (2, 2) = 2.25 > 1.9
    assert greedy_match(sim) == [(0, 0), (2, 1), (1, 2)]
    assert greedy_match(sim, min_similarity=0.5) == [(0, 0), (2, 1)]
    assert greedy_match(np.full((2, 2), 0.5)) == [(0, 0), (1, 1)]  # ties: smaller row, then column
    assert greedy_match(np.zeros((2, 3))) == []
    assert greedy_match(np.zeros((0, 4))) == []


def test_gt_poses_through_the_tracker_keep_one_id_per_person(tmp_path):
    # clip 3 of seed 0: four people who cross and hide each other for several frames. Box NMS is
    # off (IoU 1.0) so that this checks identity keeping alone (at NMS IoU 0.5, boxes of crossing
    # people merge). Multi-flow remembers the hidden person for L_Q frames; with flow-OKS or box
    # IoU against the previous frame only, the person hidden longest comes back with a new id.
    similarity = "multi_flow"
    clip = render_synthetic_clip(0, 3, num_frames=24, image_size=(320, 256), layout="posetrack")
    state = {"t": 0}
    config = TrackerConfig(similarity=similarity, box_nms_iou=1.0)
    estimate = oracle_estimator(lambda: clip.people[state["t"]], POSETRACK18.num_joints)
    tracker = PoseTracker(estimate, POSETRACK18.oks_sigmas(), config)
    results = []
    for t, frame in enumerate(clip.frames):
        state["t"] = t
        boxes = np.stack([_xyxy(p.bbox) for p in clip.people[t]]) if clip.people[t] else np.zeros((0, 4))
        results.append(tracker.step(frame, boxes, np.ones(len(boxes))))
    id_of: dict[int, set[int]] = {}
    for t, people in enumerate(results):
        for p in people:
            gt = min(clip.people[t], key=lambda g: np.abs(g.keypoints[:, :2] - p.keypoints).sum())
            id_of.setdefault(gt.track_id, set()).add(p.track_id)
    assert len(id_of) == 4 and all(len(ids) == 1 for ids in id_of.values()), id_of
    gt = clip_to_posetrack(clip, 4, "val", POSETRACK18)
    frames = [FrameInfo(im["file_name"], im["frame_id"], 320, 256) for im in gt["images"]]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(tracks_to_posetrack(frames, results, POSETRACK18)))
    for compat in (True, False):
        stats = evaluate_posetrack(
            read_posetrack(tmp_path / "gt.json"), read_posetrack(tmp_path / "pred.json"), compat
        )
        assert stats["MOTA"] == 100.0 and stats["AP"] == 100.0
        assert stats["num_switches"] == stats["num_misses"] == stats["num_false_positives"] == 0


def test_tracker_rejects_bad_settings():
    for bad in (dict(similarity="iou"), dict(queue_frames=0), dict(det_score_thr=1.5), dict(flow="raft")):
        with pytest.raises(HeatposeError):
            TrackerConfig(**bad).validate()
    config = tracker_config(["similarity=oks", "propagate=false", "queue_frames=3", "det_score_thr=1"])
    assert (config.similarity, config.propagate, config.queue_frames, config.det_score_thr) == (
        "oks",
        False,
        3,
        1.0,
    )
    for text, fragment in [
        ("box_enlarge=abc", "must be a number"),
        ("propagate=maybe", "true or false"),
        ("queue_frames=2.5", "queue_frames"),
        ("queue_frames=true", "must be a number"),
        ("nope=1", "unknown tracker setting"),
    ]:
        with pytest.raises(HeatposeError, match=fragment):
            tracker_config([text])


def test_propagated_boxes_keep_a_track_through_a_missed_detection():
    """Frame 1 has no detection: the propagated box of frame 0's pose keeps the person tracked."""
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    frame = cv2.GaussianBlur(frame, (0, 0), 2)
    pose = np.array([[60.0, 30.0], [70.0, 60.0], [60.0, 90.0], [80.0, 90.0]])
    sigmas = np.full(4, 0.08)

    def estimate(image, boxes):
        return np.repeat(pose[None], len(boxes), 0), np.ones((len(boxes), 4))

    box = np.array([[50.0, 20.0, 90.0, 100.0]])
    for propagate, expected in ((True, [[0], [0], [0]]), (False, [[0], [], [1]])):
        tracker = PoseTracker(estimate, sigmas, TrackerConfig(propagate=propagate, similarity="oks"))
        ids = [[p.track_id for p in tracker.step(frame, b, np.ones(len(b)))] for b in (box, box[:0], box)]
        assert ids == expected


def test_a_propagated_pose_near_a_detected_one_is_dropped_but_two_detected_people_stay():
    """The network's pose in an offset propagated box differs from the detected box's pose of the
    same person (OKS 0.58 here): ``propagated_pose_oks`` drops it, where the all-pose OKS-NMS at 0.7
    would keep both and the duplicate would propagate itself on. Two *detected* people that close
    stay two (only the propagated side is checked at the looser threshold)."""
    frame = np.zeros((120, 160, 3), np.uint8)
    sigmas = np.full(4, 0.08)
    base = np.array([[60.0, 30.0], [70.0, 60.0], [60.0, 90.0], [80.0, 90.0]])
    shifted = base + np.array([8.0, 5.0])  # the same person from an offset box: OKS 0.58

    def estimate(image, boxes):
        # the first box of each frame gets ``base``, any other box the shifted pose
        poses = [base if i == 0 else shifted for i in range(len(boxes))]
        return np.stack(poses), np.array([[1.0] * 4] + [[0.9] * 4] * (len(boxes) - 1))

    box = np.array([[50.0, 20.0, 90.0, 100.0]])
    cfg = TrackerConfig(similarity="oks", propagate=True, box_nms_iou=0.99)
    tracker = PoseTracker(estimate, sigmas, cfg)
    tracker.step(frame, box, np.ones(1))
    # frame 1: the detector's box, and frame 0's pose propagated (offset box -> shifted pose)
    out = tracker.step(frame, box + np.array([0.0, 0.0, 8.0, 8.0]), np.ones(1))
    assert [p.propagated for p in out] == [False]
    loose = PoseTracker(estimate, sigmas, TrackerConfig(**{**cfg.__dict__, "propagated_pose_oks": 1.0}))
    loose.step(frame, box, np.ones(1))
    assert len(loose.step(frame, box + np.array([0.0, 0.0, 8.0, 8.0]), np.ones(1))) == 2
    # two detected boxes with the same two poses: both kept
    both = PoseTracker(estimate, sigmas, TrackerConfig(similarity="oks", propagate=False))
    far = box + np.array([60.0, 0.0, 60.0, 0.0])  # no box overlap: only the poses are close
    assert len(both.step(frame, np.concatenate([box, far]), np.ones(2))) == 2
