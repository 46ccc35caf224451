"""``heatpose track`` speed: frames per second and the per-stage breakdown on a synthetic clip.

Draws one synthetic clip (``heatpose synth --video``'s generator) with 3-4 people, builds the
model of ``--config`` with random weights (speed does not depend on the weights; the number of
boxes does, and the clip's detection file fixes it), and runs the same ``track_video`` as the CLI,
drawing the output video too unless ``--no-vis``. Example (the command behind docs/benchmarks.md)::

    python benchmarks/track_speed.py --config configs/synthetic/res18_128x96_d256x3_adam_lr1e-3.yaml \\
        --size 640x360 --frames 60
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import torch

from heatpose.config import config_to_dict, load_config
from heatpose.data.synthetic.video import render_synthetic_clip
from heatpose.data.synthetic.video_writer import write_synthetic_videos
from heatpose.models import build_model
from heatpose.tracking import TrackerConfig
from heatpose.tracking.estimator import load_pose_estimator
from heatpose.tracking.run import format_breakdown, open_frames, track_video


def _clip_with_people(seed: int, frames: int, size: tuple[int, int], lo: int, hi: int) -> int:
    """Index of the first clip whose first frame shows between ``lo`` and ``hi`` people."""
    for index in range(50):
        clip = render_synthetic_clip(seed, index, 2, size, "val", "coco")
        if lo <= len(clip.people[0]) <= hi:
            return index
    raise SystemExit("no clip with that many people in the first 50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/synthetic/res18_128x96_d256x3_adam_lr1e-3.yaml")
    parser.add_argument("--size", type=lambda s: tuple(int(v) for v in s.split("x")), default=(640, 360))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--vis", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--flow-scale", type=float, default=TrackerConfig().flow_scale)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="heatpose_track_speed_"))
    index = _clip_with_people(args.seed, args.frames, args.size, 3, 4)
    # write clips 0..index and keep the chosen one (clip i depends only on seed and i)
    write_synthetic_videos(
        work, index + 1, args.seed, args.frames, args.size, "val", "coco", progress=False, overwrite=False
    )
    cfg = load_config(args.config)
    ckpt = work / "random.pth"
    torch.manual_seed(0)
    torch.save({"model": build_model(cfg.model).state_dict(), "config": config_to_dict(cfg)}, ckpt)
    estimate, schema, _ = load_pose_estimator(ckpt, flip=args.flip)
    source = open_frames(work / "images" / "val" / f"{index + 1:06d}_synthetic")
    summary = track_video(
        source,
        estimate,
        schema,
        TrackerConfig(flow_scale=args.flow_scale),
        work / "tracks.json",
        detections=work / "annotations" / "val_human_detections.json",
        vis_path=work / "tracks.mp4" if args.vis else None,
        progress=False,
    )
    print(f"clip {index + 1:06d}_synthetic, {args.size[0]}x{args.size[1]}, {summary['frames']} frames, "
          f"model {Path(args.config).name}, flip {args.flip}, torch threads {torch.get_num_threads()}, "
          f"{platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(format_breakdown(summary))
    print(json.dumps({k: round(v, 3) for k, v in summary["stages"].items()}))


if __name__ == "__main__":
    main()
