"""COCO keypoints reader: official ``person_keypoints_*.json`` + images -> PersonSample records.

People come with GT boxes (the annotation's box, cleaned as the official loader does) or with
boxes from a COCO detection-results json; which one is always recorded in
``PersonSample.box_source`` so no output can hide it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from heatpose.data.records import PersonSample
from heatpose.data.transforms import box_to_center_scale
from heatpose.errors import HeatposeError
from heatpose.io import load_json, resolve_image_path


def check_coco_sections(data: Any, name: str) -> None:
    """A COCO ground-truth file is an object with ``images``, ``annotations`` and ``categories`` lists."""
    if not isinstance(data, dict):
        raise HeatposeError(f"{name}: COCO ground truth must be a JSON object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise HeatposeError(f"{name}: COCO ground truth lacks an {key!r} list")


def load_coco_gt(path: str | Path, num_joints: int) -> dict[str, Any]:
    """Load and check a COCO keypoints GT file: required sections and keypoint counts."""
    data = load_json(path, "annotation")
    check_coco_sections(data, str(path))
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "bbox" not in ann:
            raise HeatposeError(f"{path}: annotation {i} lacks image_id or bbox")
        kpts = ann.get("keypoints")
        if kpts is not None and len(kpts) != 3 * num_joints:
            raise HeatposeError(
                f"{path}: annotation {ann.get('id', i)} has {len(kpts) / 3:g} keypoints, "
                f"expected {num_joints}"
            )
    return data


def clean_box(bbox: list[float], width: int, height: int) -> list[float] | None:
    """Official box cleaning: clip to the image; None when nothing is left."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if x2 >= x1 and y2 >= y1:
        return [x1, y1, x2 - x1, y2 - y1]
    return None


def _check_box(box: list[float], where: str) -> None:
    if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
        raise HeatposeError(f"{where}: box {box} must be 4 finite numbers x, y, w, h")
    if float(box[2]) <= 0 or float(box[3]) <= 0:
        raise HeatposeError(f"{where}: zero-area box {box}")


def read_coco_people(
    ann_path: str | Path,
    image_dir: str | Path,
    num_joints: int,
    aspect_ratio: float,
    enlarge: float = 1.25,
    boxes: str = "gt",
    det_score_thr: float = 0.0,
    check_images: bool = True,
) -> list[PersonSample]:
    """People to crop from a COCO keypoints dataset.

    ``boxes="gt"``: every non-crowd person with at least one labeled keypoint (the official
    loader's set, used for training and GT-box evaluation). Otherwise ``boxes`` is a detection
    results json; each person detection with score >= ``det_score_thr`` becomes a sample with
    empty keypoints (the official ``_load_coco_person_detection_results``).
    """
    gt = load_coco_gt(ann_path, num_joints)
    images = {int(img["id"]): img for img in gt["images"]}
    image_dir = Path(image_dir)
    if boxes == "gt":
        samples = _gt_samples(gt, images, image_dir, num_joints, aspect_ratio, enlarge, str(ann_path))
    else:
        samples = _detection_samples(
            boxes, images, image_dir, num_joints, aspect_ratio, enlarge, det_score_thr
        )
    if check_images:
        check_image_files(samples)
    return samples


def _gt_samples(
    gt: dict[str, Any],
    images: dict[int, dict[str, Any]],
    image_dir: Path,
    num_joints: int,
    aspect_ratio: float,
    enlarge: float,
    where: str,
) -> list[PersonSample]:
    samples = []
    for ann in gt["annotations"]:
        if ann.get("iscrowd", 0) or int(ann.get("category_id", 1)) != 1:
            continue
        kpts = np.asarray(ann.get("keypoints") or [0] * (3 * num_joints), dtype=np.float32).reshape(
            num_joints, 3
        )
        if kpts.max() <= 0:
            continue
        if not np.isfinite(kpts).all():
            raise HeatposeError(f"{where}: annotation {ann.get('id')} has non-finite keypoints")
        image = images.get(int(ann["image_id"]))
        if image is None:
            raise HeatposeError(
                f"{where}: annotation {ann.get('id')} refers to unknown image {ann['image_id']}"
            )
        box = clean_box(ann["bbox"], int(image["width"]), int(image["height"]))
        if box is None or box[2] * box[3] <= 0 or float(ann.get("area", 1.0)) <= 0:
            raise HeatposeError(f"{where}: annotation {ann.get('id')} has a zero-area box {ann['bbox']}")
        center, scale = box_to_center_scale(box, aspect_ratio, enlarge)
        kpts[:, 2] = np.minimum(kpts[:, 2], 2)
        samples.append(
            PersonSample(
                image_path=str(
                    resolve_image_path(image_dir, image["file_name"], f"{where}: image {image['id']}")
                ),
                image_id=int(ann["image_id"]),
                center=center,
                scale=scale,
                keypoints=kpts,
                box=np.asarray(box, np.float32),
                box_score=1.0,
                area=float(ann.get("area", box[2] * box[3])),
                ann_id=int(ann.get("id", -1)),
                box_source="gt",
            )
        )
    return samples


def _detection_samples(
    det_path: str,
    images: dict[int, dict[str, Any]],
    image_dir: Path,
    num_joints: int,
    aspect_ratio: float,
    enlarge: float,
    det_score_thr: float,
) -> list[PersonSample]:
    dets = load_json(det_path, "detection")
    if not isinstance(dets, list):
        raise HeatposeError(f"{det_path}: expected a list of COCO detection results")
    samples = []
    for i, det in enumerate(dets):
        if not isinstance(det, dict) or not {"image_id", "bbox", "score"} <= det.keys():
            raise HeatposeError(f"{det_path}: detection {i} needs image_id, bbox and score")
        if int(det.get("category_id", 1)) != 1:
            continue
        score = float(det["score"])
        if not math.isfinite(score):
            raise HeatposeError(f"{det_path}: detection {i} has a non-finite score")
        if score < det_score_thr:
            continue
        _check_box(det["bbox"], f"{det_path}: detection {i}")
        image = images.get(int(det["image_id"]))
        if image is None:
            raise HeatposeError(
                f"{det_path}: detection {i} refers to image {det['image_id']}, not in the GT file"
            )
        center, scale = box_to_center_scale(det["bbox"], aspect_ratio, enlarge)
        samples.append(
            PersonSample(
                image_path=str(resolve_image_path(image_dir, image["file_name"], f"image {image['id']}")),
                image_id=int(det["image_id"]),
                center=center,
                scale=scale,
                keypoints=np.zeros((num_joints, 3), np.float32),
                box=np.asarray(det["bbox"], np.float32),
                box_score=score,
                area=float(det["bbox"][2]) * float(det["bbox"][3]),
                box_source=str(det_path),
            )
        )
    return samples


def check_image_files(samples: list[PersonSample]) -> None:
    missing = sorted({s.image_path for s in samples if not Path(s.image_path).is_file()})
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise HeatposeError(f"image file not found: {missing[0]}{more}")
