"""Writing synthetic clips as a PoseTrack 2018 split: frames, per-video json, detections, mp4.

Layout under ``out_dir`` (as the official PoseTrack 2018 release and MMPose's copy of it)::

    images/<split>/<vid>_synthetic/000000.jpg ...   frames (JPEG quality 95)
    annotations/<split>/<vid>_synthetic.json        one PoseTrack18 json per video
    annotations/<split>_human_detections.json       detector boxes for every frame (COCO results)
    videos/<split>/<vid>_synthetic.mp4              the clip as a video (``write_mp4=True``)

Ids follow PoseTrack: ``frame_id = image id = 10000000000 + vid * 10000 + t``, annotation id
``frame_id * 100 + k``; ``vid_id`` is the 6-digit video number.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from heatpose.data.synthetic.output import claim_output
from heatpose.data.synthetic.scene import check_synth_args
from heatpose.data.synthetic.video import (
    SyntheticClip,
    check_video_args,
    render_synthetic_clip,
    simulate_detections,
)
from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_bytes, atomic_write_json
from heatpose.keypoints import KeypointSchema


def _r(v: float) -> float:
    return round(float(v), 2)


def frame_id(video_number: int, t: int) -> int:
    """PoseTrack's frame id: 1, the 6-digit video number, the 4-digit frame index."""
    return 10_000_000_000 + video_number * 10_000 + t


def _polygons(regions: list[np.ndarray]) -> tuple[list[list[float]], list[list[float]]]:
    return [[_r(v) for v in poly[:, 0]] for poly in regions], [
        [_r(v) for v in poly[:, 1]] for poly in regions
    ]


def clip_to_posetrack(
    clip: SyntheticClip, video_number: int, split_name: str, schema: KeypointSchema
) -> dict:
    """The PoseTrack18 json of one clip (``file_name`` relative to the dataset root)."""
    h, w = clip.frames[0].shape[:2]
    name = f"{video_number:06d}_synthetic"
    images, annotations = [], []
    for t, (people, regions) in enumerate(zip(clip.people, clip.ignore_regions, strict=True)):
        fid = frame_id(video_number, t)
        xs, ys = _polygons(regions)
        images.append(
            {
                "has_no_densepose": True,
                "is_labeled": True,
                "file_name": f"images/{split_name}/{name}/{t:06d}.jpg",
                "nframes": len(clip.frames),
                "frame_id": fid,
                "vid_id": f"{video_number:06d}",
                "ignore_regions_x": xs,
                "ignore_regions_y": ys,
                "id": fid,
                "width": w,
                "height": h,
            }
        )
        for k, p in enumerate(people):
            kps = [_r(v) if i % 3 < 2 else int(v) for i, v in enumerate(p.keypoints.ravel())]
            annotations.append(
                {
                    "bbox_head": [_r(v) for v in p.head_box],
                    "keypoints": kps,
                    "track_id": p.track_id,
                    "image_id": fid,
                    "bbox": [_r(v) for v in p.bbox],
                    "scores": [],
                    "category_id": 1,
                    "id": fid * 100 + k,
                    "iscrowd": False,
                    "num_keypoints": int((p.keypoints[:, 2] > 0).sum()),
                }
            )
    category = {
        "supercategory": "person",
        "id": 1,
        "name": "person",
        "keypoints": list(schema.joint_names),
        "skeleton": [[a + 1, b + 1] for a, b in schema.skeleton],
    }
    return {"categories": [category], "images": images, "annotations": annotations}


def write_mp4(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> None:
    """Frames (H, W, 3) uint8 BGR as an mp4 (OpenCV's ``mp4v``), written beside and renamed."""
    h, w = frames[0].shape[:2]
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise HeatposeError(f"{path}: OpenCV cannot write mp4 video here")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    tmp.replace(path)


def write_synthetic_videos(
    out_dir: str | Path,
    num_videos: int,
    seed: int,
    num_frames: int = 24,
    image_size: tuple[int, int] = (320, 256),
    split_name: str = "val",
    layout: str = "posetrack",
    progress: bool = True,
    overwrite: bool = False,
    mp4: bool = False,
) -> dict:
    """Write ``num_videos`` clips as a PoseTrack18 split (see the module docstring for the files).

    The detection json and the per-video jsons are written after all frames; an existing split
    (its jsons, or frames of an interrupted run) is an error unless ``overwrite``.
    """
    check_synth_args(num_videos, "coco", image_size, seed, split_name)
    schema = check_video_args(num_frames, layout, image_size)
    out = Path(out_dir)
    image_dir, ann_dir, video_dir = (
        out / "images" / split_name,
        out / "annotations" / split_name,
        out / "videos",
    )
    det_file = out / "annotations" / f"{split_name}_human_detections.json"
    old_jsons = sorted(ann_dir.glob("*_synthetic.json")) if ann_dir.is_dir() else []
    claim_output([det_file, *old_jsons], [image_dir], "*_synthetic/*.jpg", overwrite)
    ann_dir.mkdir(parents=True, exist_ok=True)
    detections: list[dict] = []
    pending: list[tuple[Path, dict]] = []
    num_people = 0
    for index in tqdm(
        range(num_videos), disable=not progress, desc=f"synthetic clips {split_name}", unit="clip"
    ):
        clip = render_synthetic_clip(seed, index, num_frames, image_size, split_name, layout)
        number = index + 1
        name = f"{number:06d}_synthetic"
        for t, frame in enumerate(clip.frames):
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise RuntimeError(f"JPEG encoding failed for {name}/{t:06d}.jpg")
            atomic_write_bytes(image_dir / name / f"{t:06d}.jpg", buf.tobytes())
        if mp4:
            (video_dir / split_name).mkdir(parents=True, exist_ok=True)
            write_mp4(video_dir / split_name / f"{name}.mp4", clip.frames)
        det_rng = np.random.default_rng([seed, number, 7])
        for t, dets in enumerate(simulate_detections(clip, det_rng)):
            for box, score in dets:
                entry = {"bbox": [_r(v) for v in box], "category_id": 1, "image_id": frame_id(number, t)}
                detections.append({**entry, "score": round(score, 4)})
        pending.append((ann_dir / f"{name}.json", clip_to_posetrack(clip, number, split_name, schema)))
        num_people += sum(len(p) for p in clip.people)
    for path, gt in pending:
        atomic_write_json(path, gt, compact=True)
    atomic_write_json(det_file, detections, compact=True)
    return {
        "root": str(out),
        "image_dir": str(image_dir),
        "annotation_dir": str(ann_dir),
        "detection_file": str(det_file),
        "num_videos": num_videos,
        "num_frames": num_videos * num_frames,
        "num_people": num_people,
    }
