"""The paper's tracking ablation (similarity x box propagation) on synthetic clips, oracle poses.

Runs :class:`~heatpose.tracking.PoseTracker` over ``--clips`` synthetic clips (``heatpose synth
--video``'s generator: crossing, occluding, entering/leaving people, camera motion) with the
simulated detector boxes of the generator (noise, misses, false positives), and scores every
setting with the poseval-style evaluation (compat mode, as published numbers; corrected MOTA too).

The pose "estimator" is ``heatpose.tracking.oracle``: for each box the ground-truth pose of the
person the box overlaps most, with Gaussian noise of ``--noise`` x the head size on every joint,
scores N(0.85, 0.05) for labelled joints and 0.05 for the others; a box on no one gives a
zero-score pose. So the table measures the association (boxes, similarity, matching), not a network: read
it beside, not against, the paper's numbers. The same ablation with a trained network (the pose
inference of ``heatpose track``) is ``heatpose reproduce sb-tracking`` (heatpose/reproduce_tracking.py).
Example (the command behind docs/results.md)::

    python benchmarks/tracking_ablation.py --clips 8 --frames 24 --noise 0.1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from heatpose.data.posetrack import read_posetrack
from heatpose.data.synthetic.video import render_synthetic_clip, simulate_detections
from heatpose.data.synthetic.video_writer import clip_to_posetrack
from heatpose.evaluation.posetrack import evaluate_posetrack
from heatpose.keypoints import POSETRACK18
from heatpose.tracking import PoseTracker, TrackerConfig
from heatpose.tracking.oracle import oracle_estimator, xywh_to_xyxy
from heatpose.tracking.output import FrameInfo, tracks_to_posetrack

SETTINGS = [  # (label, propagate, similarity), in the paper's table order
    ("no propagation, box IoU", False, "box_iou"),
    ("no propagation, OKS", False, "oks"),
    ("propagation, box IoU", True, "box_iou"),
    ("propagation, OKS", True, "oks"),
    ("propagation, flow-OKS", True, "flow_oks"),
    ("propagation, multi-flow", True, "multi_flow"),
]
PAPER = {  # PoseTrack 2017 val, R-50 (Xiao et al. 2018, tracking ablation): (mAP, MOTA)
    "no propagation, box IoU": (69.3, 59.8),
    "no propagation, OKS": (69.3, 59.7),
    "propagation, box IoU": (72.4, 62.1),
    "propagation, OKS": (72.4, 61.8),
    "propagation, flow-OKS": (72.4, 62.4),
    "propagation, multi-flow": (72.4, 62.9),
}


def run(args: argparse.Namespace) -> list[dict]:
    clips = [
        render_synthetic_clip(args.seed, i, args.frames, args.size, "val", "posetrack")
        for i in range(args.clips)
    ]
    dets = [simulate_detections(c, np.random.default_rng([args.seed, i, 7])) for i, c in enumerate(clips)]
    work = Path(tempfile.mkdtemp(prefix="heatpose_ablation_"))
    (work / "gt").mkdir()
    for i, clip in enumerate(clips):
        (work / "gt" / f"{i + 1:06d}.json").write_text(
            json.dumps(clip_to_posetrack(clip, i + 1, "val", POSETRACK18))
        )
    gt = read_posetrack(work / "gt")
    rows = []
    for label, propagate, similarity in SETTINGS:
        config = TrackerConfig(similarity=similarity, propagate=propagate, box_nms_iou=args.box_nms_iou)
        out = work / label.replace(" ", "_").replace(",", "")
        out.mkdir()
        start = time.perf_counter()
        for i, clip in enumerate(clips):
            state = {"t": 0}
            estimate = oracle_estimator(
                lambda clip=clip, state=state: clip.people[state["t"]],
                POSETRACK18.num_joints,
                args.noise,
                seed=i,
            )
            tracker = PoseTracker(estimate, POSETRACK18.oks_sigmas(), config)
            results = []
            for t, frame in enumerate(clip.frames):
                state["t"] = t
                boxes = np.array([xywh_to_xyxy(b) for b, _ in dets[i][t]]).reshape(-1, 4)
                scores = np.array([s for _, s in dets[i][t]])
                results.append(tracker.step(frame, boxes, scores))
            gt_json = clip_to_posetrack(clip, i + 1, "val", POSETRACK18)
            frames = [FrameInfo(im["file_name"], im["frame_id"], *args.size) for im in gt_json["images"]]
            pred = tracks_to_posetrack(frames, results, POSETRACK18, config.joint_score_thr)
            (out / f"{i + 1:06d}.json").write_text(json.dumps(pred))
        seconds = time.perf_counter() - start
        pred = read_posetrack(out)
        compat, fixed = evaluate_posetrack(gt, pred, True), evaluate_posetrack(gt, pred, False)
        rows.append(
            {
                "setting": label,
                "AP": compat["AP"],
                "MOTA": compat["MOTA"],
                "MOTA_corrected": fixed["MOTA"],
                "switches": compat["num_switches"],
                "misses": compat["num_misses"],
                "false_positives": compat["num_false_positives"],
                "seconds": round(seconds, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=lambda s: tuple(int(v) for v in s.split("x")), default=(320, 256))
    parser.add_argument("--seed", type=int, default=100, help="clip seed (tests use seed 0)")
    parser.add_argument("--noise", type=float, default=0.1, help="joint noise, x head size")
    parser.add_argument("--box-nms-iou", type=float, default=TrackerConfig().box_nms_iou)
    args = parser.parse_args()
    rows = run(args)
    print(
        "\n| setting | AP | MOTA (compat) | MOTA (corrected) | ID switches | misses | FP | paper mAP / MOTA |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        paper = "{} / {}".format(*PAPER[r["setting"]])
        print(
            f"| {r['setting']} | {r['AP']:.1f} | {r['MOTA']:.1f} | {r['MOTA_corrected']:.1f} "
            f"| {r['switches']} | {r['misses']} | {r['false_positives']} | {paper} |"
        )


if __name__ == "__main__":
    main()
