"""The pictures of docs/video.md: one joint's trajectory from a per-frame csv, raw and smoothed.

A synthetic clip (``heatpose synth --video``'s generator, so the truth is known) is tracked by
:class:`~heatpose.tracking.PoseTracker` with the simulated detector boxes and the oracle pose
estimator (ground truth + ``--noise`` x head size of Gaussian noise per joint, what a network
adds; ``heatpose/tracking/oracle.py``), three times: no smoothing, ``one-euro`` and ``savgol``
with heatpose's defaults (``heatpose/video_outputs.py``). Each run writes the csv that
``heatpose track --csv`` writes; the plot reads the csvs back (pandas when installed, else the
``csv`` module) and draws one joint's y over time for the longest track, with the ground truth.
It also saves one frame of the drawn (one-euro) tracks. Command behind docs/video.md::

    python benchmarks/video_walkthrough.py --out docs/img --noise 0.1
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import cv2
import numpy as np

from heatpose.data.synthetic.video import render_synthetic_clip, simulate_detections
from heatpose.keypoints import POSETRACK18
from heatpose.tracking import PoseTracker, TrackerConfig
from heatpose.tracking.draw import draw_tracks
from heatpose.tracking.oracle import oracle_estimator, xywh_to_xyxy
from heatpose.video_outputs import TrackSmoother, frame_from_tracks
from heatpose.video_tables import FrameTableWriter


def track_to_csv(clip, dets, args, method: str, path: Path) -> list:
    state = {"t": 0}
    estimate = oracle_estimator(lambda: clip.people[state["t"]], POSETRACK18.num_joints, args.noise, seed=1)
    tracker = PoseTracker(estimate, POSETRACK18.oks_sigmas(), TrackerConfig())
    smoother = TrackSmoother(method, fps=args.fps)
    results = []
    with FrameTableWriter(POSETRACK18.joint_names, path if smoother.online or method == "none" else None,
                          tracking=True) as table:  # fmt: skip
        for t, frame in enumerate(clip.frames):
            state["t"] = t
            boxes = np.array([xywh_to_xyxy(b) for b, _ in dets[t]]).reshape(-1, 4)
            scores = np.array([s for _, s in dets[t]])
            results.append(smoother.step(tracker.step(frame, boxes, scores), t / args.fps))
            table.write(frame_from_tracks(results[-1], t, t / args.fps, POSETRACK18.num_joints))
    if method == "savgol":
        results = smoother.finish(results)
        with FrameTableWriter(POSETRACK18.joint_names, path, tracking=True) as table:
            for t, people in enumerate(results):
                table.write(frame_from_tracks(people, t, t / args.fps, POSETRACK18.num_joints))
    return results


def read_track(path: Path, joint: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """track id -> (times (T,), joint y (T,)) from a heatpose csv."""
    try:
        import pandas as pd

        df = pd.read_csv(path)
        return {
            int(tid): (g["time_s"].to_numpy(), g[f"{joint}_y"].to_numpy())
            for tid, g in df.groupby("track_id")
        }
    except ImportError:
        out: dict[int, list] = {}
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                y = float(row[f"{joint}_y"]) if row[f"{joint}_y"] else np.nan
                out.setdefault(int(row["track_id"]), []).append((float(row["time_s"]), y))
        return {k: (np.array([a for a, _ in v]), np.array([b for _, b in v])) for k, v in out.items()}


def gt_joint(clip, results, track_id: int, joint: int) -> tuple[np.ndarray, np.ndarray]:
    """The GT y of ``joint`` of the GT person nearest to track ``track_id`` in every frame it is in."""
    frames, ys = [], []
    for t, people in enumerate(results):
        for p in people:
            if p.track_id != track_id or not clip.people[t]:
                continue
            dist = [
                np.nanmean(np.linalg.norm(g.keypoints[:, :2] - p.keypoints, axis=1)) for g in clip.people[t]
            ]
            g = clip.people[t][int(np.argmin(dist))]
            frames.append(t)
            ys.append(g.keypoints[joint, 1] if g.keypoints[joint, 2] > 0 else np.nan)
    return np.array(frames), np.array(ys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img")
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--clip", type=int, default=0)
    parser.add_argument("--joint", default="left_wrist")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clip = render_synthetic_clip(0, args.clip, args.frames, (320, 256), "val", "posetrack")
    dets = simulate_detections(clip, np.random.default_rng([0, args.clip, 7]))
    work = Path(tempfile.mkdtemp(prefix="heatpose_video_"))
    runs = {m: track_to_csv(clip, dets, args, m, work / f"{m}.csv") for m in ("none", "one-euro", "savgol")}
    tables = {m: read_track(work / f"{m}.csv", args.joint) for m in runs}
    longest = max(tables["none"], key=lambda k: len(tables["none"][k][0]))
    j = list(POSETRACK18.joint_names).index(args.joint)
    gt_t, gt_y = gt_joint(clip, runs["none"], longest, j)
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    ax.plot(gt_t / args.fps, gt_y, color="black", lw=2.5, alpha=0.35, label="ground truth")
    styles = {
        "none": ("tab:gray", "o", "raw (noisy poses)"),
        "one-euro": ("tab:blue", "", "one-euro 2 0.5 1"),
        "savgol": ("tab:red", "", "savgol 9 3"),
    }
    for m, (color, marker, label) in styles.items():
        t, y = tables[m][longest]
        ax.plot(t, y, color=color, marker=marker, ms=3, lw=1.2, label=label)
    ax.invert_yaxis()  # image rows grow downwards
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{args.joint} y (px)")
    ax.set_title(f"track {longest}: {args.joint} from the per-frame csv (noise {args.noise:g} x head size)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "video_trajectory.png")
    t = int(np.argmax([len(p) for p in runs["one-euro"]]))
    cv2.imwrite(
        str(out / "video_tracks_frame.png"), draw_tracks(clip.frames[t], runs["one-euro"][t], POSETRACK18)
    )
    print(f"wrote {out / 'video_trajectory.png'}, {out / 'video_tracks_frame.png'} (frame {t}); csvs: {work}")


if __name__ == "__main__":
    main()
