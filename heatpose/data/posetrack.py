"""PoseTrack 2018 files: per-video ground truth / tracking results, and person detections.

A PoseTrack18 json (one per video in the official release, or several videos in one file as in
MMPose's test data) holds ``images`` (``file_name``, ``frame_id`` or ``id``, ``is_labeled``,
``ignore_regions_x/y``: one list of x and one of y per polygon), ``annotations`` (``image_id``,
``track_id``, ``keypoints`` as x, y, v triples, ``bbox_head`` x, y, w, h, optional per-joint
``scores`` in results files) and one ``categories`` entry naming the keypoints. Videos are grouped
by the folder part of ``file_name`` (``images/val/003418_mpii_test/000000.jpg`` -> video
``003418_mpii_test``); frames are sorted by frame id.

A joint stored as (0, 0, 0) is "not annotated" (GT) or "not predicted" (results), as poseval's
converter reads it; every other triple is a point, whatever its flag.

Detections (``*_human_detections.json``) are COCO results: a list of ``image_id``, ``bbox``
(x, y, w, h) and ``score``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from heatpose.errors import HeatposeError
from heatpose.io import load_json


@dataclass
class PoseTrackPerson:
    """One person in one frame."""

    track_id: int
    keypoints: np.ndarray  # (K, 3) x, y, flag (or score) as stored
    scores: np.ndarray | None  # (K,) per-joint scores of a results file, else None
    head_box: np.ndarray | None  # (4,) x1, y1, x2, y2 from ``bbox_head``
    score: float | None = None  # the person's score, when a results file gives one

    @property
    def has_joint(self) -> np.ndarray:
        """(K,) bool: the joint is a point (not stored as (0, 0, 0))."""
        k = self.keypoints
        return ~((k[:, 0] == 0) & (k[:, 1] == 0) & (k[:, 2] == 0))


@dataclass
class PoseTrackFrame:
    """One image of a video."""

    key: str  # "<video folder>/<image file>": how results are matched to ground truth
    frame_id: int
    file_name: str
    is_labeled: bool
    ignore_regions: list[np.ndarray] = field(default_factory=list)  # polygons, each (P, 2)
    people: list[PoseTrackPerson] = field(default_factory=list)


@dataclass
class PoseTrackVideo:
    name: str
    joint_names: tuple[str, ...]
    frames: list[PoseTrackFrame]
    source: str  # the json it came from


def frame_key(file_name: str) -> str:
    """``images/val/003418_mpii_test/000000.jpg`` -> ``003418_mpii_test/000000.jpg``."""
    parts = PurePosixPath(str(file_name).replace("\\", "/")).parts
    return "/".join(parts[-2:])


def _numbers(value: Any, where: str, count: int | None = None) -> np.ndarray:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise HeatposeError(f"{where} must be a list of numbers")
    arr = np.asarray(value, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise HeatposeError(f"{where} has a non-finite value")
    if count is not None and arr.size != count:
        raise HeatposeError(f"{where} must have {count} numbers, got {arr.size}")
    return arr


def _regions(image: dict, where: str) -> list[np.ndarray]:
    xs, ys = image.get("ignore_regions_x", []) or [], image.get("ignore_regions_y", []) or []
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        raise HeatposeError(f"{where}: ignore_regions_x and ignore_regions_y must be lists of equal length")
    out = []
    for r, (x, y) in enumerate(zip(xs, ys, strict=True)):
        px = _numbers(x, f"{where}: ignore_regions_x[{r}]")
        py = _numbers(y, f"{where}: ignore_regions_y[{r}]", px.size)
        if px.size >= 3:  # fewer points enclose nothing
            out.append(np.stack([px, py], 1))
    return out


def _person(ann: dict, num_joints: int, where: str) -> PoseTrackPerson:
    track_id = ann.get("track_id")
    if not isinstance(track_id, int) or isinstance(track_id, bool) or track_id < 0:
        raise HeatposeError(f"{where}: track_id must be a non-negative integer, got {track_id!r}")
    kps = _numbers(ann.get("keypoints"), f"{where}: keypoints", 3 * num_joints).reshape(num_joints, 3)
    scores = ann.get("scores")
    score_arr = _numbers(scores, f"{where}: scores", num_joints) if scores else None
    head = ann.get("bbox_head")
    head_box = None
    if head is not None:
        x, y, w, h = _numbers(head, f"{where}: bbox_head", 4)
        if w < 0 or h < 0:
            raise HeatposeError(f"{where}: bbox_head {head} has a negative width or height")
        head_box = np.array([x, y, x + w, y + h])
    score = ann.get("score")
    if score is not None and (not isinstance(score, (int, float)) or not math.isfinite(score)):
        raise HeatposeError(f"{where}: score must be a finite number, got {score!r}")
    return PoseTrackPerson(track_id, kps, score_arr, head_box, None if score is None else float(score))


def read_posetrack_json(path: str | Path) -> list[PoseTrackVideo]:
    """The videos of one PoseTrack18 json (usually one), each with its frames in frame-id order."""
    path = Path(path)
    data = load_json(path, "PoseTrack")
    if not isinstance(data, dict):
        raise HeatposeError(f"{path}: a PoseTrack18 json must be an object with images and annotations")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise HeatposeError(f"{path}: lacks an {key!r} list (is this a PoseTrack18 json?)")
    cats = data.get("categories")
    if not isinstance(cats, list) or len(cats) != 1 or not isinstance(cats[0], dict):
        raise HeatposeError(f"{path}: needs exactly one entry in 'categories' naming the keypoints")
    names = cats[0].get("keypoints")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise HeatposeError(f"{path}: categories[0].keypoints must be a list of joint names")
    frames: dict[int, PoseTrackFrame] = {}
    video_of: dict[int, str] = {}
    for i, image in enumerate(data["images"]):
        where = f"{path}: images[{i}]"
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str):
            raise HeatposeError(f"{where} needs a file_name")
        image_id = image.get("frame_id", image.get("id"))
        if not isinstance(image_id, int) or isinstance(image_id, bool):
            raise HeatposeError(f"{where} needs an integer frame_id or id")
        if image_id in frames:
            raise HeatposeError(f"{where}: duplicate frame id {image_id}")
        labeled = image.get("is_labeled", True)
        frames[image_id] = PoseTrackFrame(
            key=frame_key(image["file_name"]),
            frame_id=image_id,
            file_name=image["file_name"],
            is_labeled=bool(labeled),
            ignore_regions=_regions(image, where),
        )
        if "id" in image and image["id"] != image_id:
            frames[image["id"]] = frames[image_id]  # annotations may refer to either
        video_of[image_id] = str(
            PurePosixPath(image["file_name"].replace("\\", "/")).parent.name or path.stem
        )
    for i, ann in enumerate(data["annotations"]):
        where = f"{path}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise HeatposeError(f"{where} must be an object")
        frame = frames.get(ann.get("image_id"))
        if frame is None:
            raise HeatposeError(f"{where}: image_id {ann.get('image_id')!r} is not among the images")
        frame.people.append(_person(ann, len(names), where))
    for frame in {id(f): f for f in frames.values()}.values():
        ids = [p.track_id for p in frame.people]
        if len(ids) != len(set(ids)):
            raise HeatposeError(f"{path}: frame {frame.file_name} has a track_id twice")
    videos: dict[str, list[PoseTrackFrame]] = {}
    for image_id, name in video_of.items():
        videos.setdefault(name, []).append(frames[image_id])
    return [
        PoseTrackVideo(name, tuple(names), sorted(fr, key=lambda f: f.frame_id), str(path))
        for name, fr in sorted(videos.items())
    ]


def read_posetrack(path: str | Path) -> list[PoseTrackVideo]:
    """Every video in a PoseTrack18 json, or in all ``*.json`` files of a folder (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise HeatposeError(f"{path}: no .json files in this folder")
    elif path.exists():
        files = [path]
    else:
        raise HeatposeError(f"PoseTrack file or folder not found: {path}")
    videos = [v for f in files for v in read_posetrack_json(f)]
    names = [v.name for v in videos]
    if len(names) != len(set(names)):
        dup = next(n for n in names if names.count(n) > 1)
        raise HeatposeError(f"{path}: video {dup!r} appears in more than one file")
    return videos


def read_detections(path: str | Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """COCO detection results -> ``{image_id: (boxes (N, 4) xyxy, scores (N,))}``."""
    path = Path(path)
    data = load_json(path, "detections")
    if not isinstance(data, list):
        raise HeatposeError(f"{path}: expected a list of detections with image_id, bbox and score")
    grouped: dict[int, tuple[list, list]] = {}
    for i, det in enumerate(data):
        where = f"{path}: detection {i}"
        if not isinstance(det, dict) or not {"image_id", "bbox", "score"} <= det.keys():
            raise HeatposeError(f"{where} needs image_id, bbox and score")
        if det.get("category_id", 1) != 1:
            continue
        x, y, w, h = _numbers(det["bbox"], f"{where}: bbox", 4)
        if w <= 0 or h <= 0:
            raise HeatposeError(f"{where}: bbox {det['bbox']} has no area")
        score = _numbers([det["score"]], f"{where}: score", 1)[0]
        boxes, scores = grouped.setdefault(int(det["image_id"]), ([], []))
        boxes.append([x, y, x + w, y + h])
        scores.append(score)
    return {
        k: (np.asarray(b, dtype=np.float64).reshape(-1, 4), np.asarray(s, dtype=np.float64))
        for k, (b, s) in grouped.items()
    }
