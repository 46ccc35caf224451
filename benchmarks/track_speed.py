"""``heatpose track`` speed: frames per second and the per-stage breakdown on a synthetic clip.

Writes one synthetic clip (``heatpose synth --video``'s generator, COCO layout; by default clip 19
of seed 0, 2-4 people, 3.4 per frame at 640x360 and 60 frames) and its detection file, builds the
model of ``--config`` with random weights, and tracks the clip frame by frame as ``heatpose track``
does: JPEG decoding, detection lookup, flow, box merge, the pose
network on every box, matching, drawing. A random network's poses are noise, and noise would make
the tracker ask for a different number of boxes than a trained model does; so the network runs on
every box the tracker asks for (its cost is measured) while the poses handed to the tracker come
from ``heatpose.tracking.oracle`` (ground truth + noise of 0.1 head size), which makes the box
count, the flow and the matching those of a working model. Example (the command behind
docs/benchmarks.md)::

    python benchmarks/track_speed.py --config configs/synthetic/res18_128x96_d256x3_adam_lr1e-3.yaml \\
        --size 640x360 --frames 60 --threads 1 --figure track.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from heatpose.config import config_to_dict, load_config
from heatpose.data.posetrack import read_detections
from heatpose.data.synthetic.video import render_synthetic_clip
from heatpose.data.synthetic.video_writer import write_synthetic_videos
from heatpose.keypoints import COCO17
from heatpose.models import build_model
from heatpose.tracking import PoseTracker, TrackerConfig
from heatpose.tracking.draw import draw_tracks
from heatpose.tracking.estimator import load_pose_estimator
from heatpose.tracking.oracle import oracle_estimator
from heatpose.tracking.run import format_breakdown, open_frames
from heatpose.tracking.tracker import STAGES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/synthetic/res18_128x96_d256x3_adam_lr1e-3.yaml")
    parser.add_argument("--size", type=lambda s: tuple(int(v) for v in s.split("x")), default=(640, 360))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--clip-index",
        type=int,
        default=19,
        help="which clip of the seed (19 of seed 0: 3.4 people/frame at 640x360)",
    )
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--vis", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--flow-scale", type=float, default=TrackerConfig().flow_scale)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--figure", default=None, help="save 4 drawn frames (2x2 PNG) here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="heatpose_track_speed_"))
    index = args.clip_index
    write_synthetic_videos(work, index + 1, args.seed, args.frames, args.size, "val", "coco", progress=False)
    clip = render_synthetic_clip(args.seed, index, args.frames, args.size, "val", "coco")
    cfg = load_config(args.config)
    ckpt = work / "random.pth"
    torch.manual_seed(0)
    torch.save({"model": build_model(cfg.model).state_dict(), "config": config_to_dict(cfg)}, ckpt)
    network, schema, _ = load_pose_estimator(ckpt, flip=args.flip)
    state = {"t": 0, "crops": 0}
    oracle = oracle_estimator(lambda: clip.people[state["t"]], COCO17.num_joints, noise=0.1)

    def estimate(frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        network(frame, boxes)  # the cost being measured
        state["crops"] += len(boxes)
        return oracle(frame, boxes)

    source = open_frames(work / "images" / "val" / f"{index + 1:06d}_synthetic")
    dets = read_detections(work / "annotations" / "val_human_detections.json")
    tracker = PoseTracker(estimate, schema.oks_sigmas(), TrackerConfig(flow_scale=args.flow_scale))
    times = dict.fromkeys(("decode", "detect", *STAGES, "draw"), 0.0)
    tracks: set[int] = set()
    shown = {0, args.frames // 3, 2 * args.frames // 3, args.frames - 1}
    drawn: list[np.ndarray] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    frames = source.frames()
    for t, info in enumerate(source.infos):
        tick = time.perf_counter()
        frame = next(frames)
        times["decode"] += time.perf_counter() - tick
        tick = time.perf_counter()
        boxes, scores = dets.get(info.frame_id, (np.zeros((0, 4)), np.zeros(0)))
        times["detect"] += time.perf_counter() - tick
        state["t"] = t
        people = tracker.step(frame, boxes, scores)
        tracks |= {p.track_id for p in people}
        if args.vis:
            tick = time.perf_counter()
            canvas = draw_tracks(frame, people, schema)
            times["draw"] += time.perf_counter() - tick
            if t in shown:
                cv2.putText(canvas, f"frame {t}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
                drawn.append(canvas)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    times.update({k: tracker.timings[k] for k in STAGES})
    summary = {"frames": len(source.infos), "tracks": len(tracks), "seconds": wall, "stages": times}
    summary["fps"] = summary["frames"] / wall
    people = sum(len(p) for p in clip.people) / len(clip.people)
    print(f"clip {index + 1:06d}_synthetic, {args.size[0]}x{args.size[1]}, {summary['frames']} frames, "
          f"{people:.1f} GT people and {state['crops'] / summary['frames']:.1f} crops per frame, "
          f"model {Path(args.config).name} (random weights), flip {args.flip}, "
          f"torch threads {torch.get_num_threads()}, {platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(format_breakdown(summary))
    print(f"CPU time of this process: {cpu:.2f} s = {1000 * cpu / summary['frames']:.1f} ms/frame -> "
          f"{summary['frames'] / cpu:.1f} frames/s if the cores were not shared")  # fmt: skip
    print(json.dumps({k: round(v, 3) for k, v in summary["stages"].items()}))
    if args.figure and len(drawn) == 4:
        grid = np.concatenate([np.concatenate(drawn[:2], 1), np.concatenate(drawn[2:], 1)], 0)
        cv2.imwrite(args.figure, grid)


if __name__ == "__main__":
    main()
