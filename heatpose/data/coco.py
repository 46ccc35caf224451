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

from heatpose.data.coco_gt import CocoGT, check_coco_sections  # noqa: F401 (re-exported)
from heatpose.data.coco_gt import load_coco_gt as normalize_gt_file
from heatpose.data.image_files import image_size
from heatpose.data.records import PersonSample
from heatpose.data.transforms import box_to_center_scale
from heatpose.errors import HeatposeError
from heatpose.io import load_json, resolve_image_path


def load_coco_gt(path: str | Path, num_joints: int, category: str | int = "") -> dict[str, Any]:
    """The normalised GT dataset dict (internal int ids; see ``data/coco_gt.py``)."""
    return normalize_gt_file(path, category, num_joints).dataset


def clean_box(bbox: list[float], width: int, height: int) -> list[float] | None:
    """Official box cleaning: clip to the image; None when nothing is left."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if x2 >= x1 and y2 >= y1:
        return [x1, y1, x2 - x1, y2 - y1]
    return None


def _check_box(box: Any, where: str) -> None:
    numbers = isinstance(box, list) and len(box) == 4 and set(map(type, box)) <= {int, float}
    if not numbers or not all(math.isfinite(v) for v in box):
        raise HeatposeError(f"{where}: box {box!r} must be 4 finite numbers x, y, w, h")
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
    category: str | int = "",
) -> list[PersonSample]:
    """People to crop from a COCO keypoints dataset (:func:`read_coco_dataset` without the GT)."""
    return read_coco_dataset(
        ann_path, image_dir, num_joints, aspect_ratio, enlarge, boxes, det_score_thr, check_images, category
    )[1]


def read_coco_dataset(
    ann_path: str | Path,
    image_dir: str | Path,
    num_joints: int,
    aspect_ratio: float,
    enlarge: float = 1.25,
    boxes: str = "gt",
    det_score_thr: float = 0.0,
    check_images: bool = True,
    category: str | int = "",
) -> tuple[CocoGT, list[PersonSample]]:
    """The normalised GT and the people to crop from it.

    ``boxes="gt"``: every non-crowd person of the GT category with at least one labeled
    keypoint whose box survives the official ``clean_bbox`` (the official loader's set, used
    for training and GT-box evaluation); people it drops are counted in ``gt.notes``.
    Otherwise ``boxes`` is a detection results json; each detection of the GT category with
    score >= ``det_score_thr`` becomes a sample with empty keypoints (the official
    ``_load_coco_person_detection_results``). ``PersonSample.image_id`` is the internal image
    id; ``gt.original_image_id`` gives the file's own.
    """
    gt = normalize_gt_file(ann_path, category, num_joints)
    image_dir = Path(image_dir)
    images = {img["id"]: img for img in gt.dataset["images"]}
    for img in images.values():
        if not isinstance(img.get("file_name"), str) or not img["file_name"]:
            raise HeatposeError(f"{ann_path}: image {gt.original_image_id(img['id'])!r} has no 'file_name'")
    if boxes == "gt":
        samples = _gt_samples(gt, images, image_dir, num_joints, aspect_ratio, enlarge, str(ann_path))
    else:
        samples = _detection_samples(
            boxes, gt, images, image_dir, num_joints, aspect_ratio, enlarge, det_score_thr
        )
    if check_images:
        check_image_files(samples)
    return gt, samples


def _image_size(image: dict[str, Any], image_dir: Path, gt: CocoGT) -> tuple[int, int]:
    """(width, height) from the json, else from the image file's header (stored back into ``image``)."""
    if image.get("width") is not None and image.get("height") is not None:
        return int(image["width"]), int(image["height"])
    where = f"{gt.path}: image {gt.original_image_id(image['id'])!r}"
    path = resolve_image_path(image_dir, image["file_name"], where)
    size = image_size(path)
    if size is None:
        raise HeatposeError(f"{where} lacks width/height and {path} cannot be read to take them from it")
    image["width"], image["height"] = size
    return size


def _gt_samples(
    gt: CocoGT,
    images: dict[int, dict[str, Any]],
    image_dir: Path,
    num_joints: int,
    aspect_ratio: float,
    enlarge: float,
    where: str,
) -> list[PersonSample]:
    samples = []
    dropped: list[Any] = []
    for ann in gt.dataset["annotations"]:
        if ann["iscrowd"] or ann["num_keypoints"] == 0:
            continue
        kpts = np.asarray(ann["keypoints"], dtype=np.float32).reshape(num_joints, 3)
        image = images[ann["image_id"]]
        width, height = _image_size(image, image_dir, gt)
        box = clean_box(ann["bbox"], width, height)
        # Official clean_bbox drops area <= 0 and boxes empty after clipping; a box that is a
        # single pixel both ways (w = h = 0 after clipping) would give a zero-size crop.
        if box is None or ann["area"] <= 0 or (box[2] <= 0 and box[3] <= 0):
            dropped.append(ann["id"])
            continue
        center, scale = box_to_center_scale(box, aspect_ratio, enlarge)
        samples.append(
            PersonSample(
                image_path=str(
                    resolve_image_path(
                        image_dir, image["file_name"], f"{where}: image {gt.original_image_id(image['id'])!r}"
                    )
                ),
                image_id=int(ann["image_id"]),
                center=center,
                scale=scale,
                keypoints=kpts,
                box=np.asarray(box, np.float32),
                box_score=1.0,
                area=float(ann["area"]),
                ann_id=int(ann["id"]),
                box_source="gt",
            )
        )
    if dropped:
        gt.notes.append(
            f"{where}: dropped {len(dropped)} people whose box is empty after clipping to the image or "
            f"whose area is 0 (official clean_bbox; first: annotation {dropped[0]})"
        )
    return samples


def _detection_samples(
    det_path: str,
    gt: CocoGT,
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
        try:
            category = gt.categories.find(det.get("category_id", gt.category_original_id))
            image_id = gt.images.find(det["image_id"])
        except HeatposeError as err:
            raise HeatposeError(f"{det_path}: detection {i}: {err}") from None
        if category != gt.category_id:
            continue
        score = det["score"]
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
            raise HeatposeError(f"{det_path}: detection {i} has score {score!r}, expected a finite number")
        if score < det_score_thr:
            continue
        _check_box(det["bbox"], f"{det_path}: detection {i}")
        image = images.get(image_id) if image_id is not None else None
        if image is None:
            raise HeatposeError(
                f"{det_path}: detection {i} refers to image {det['image_id']}, not in the GT file"
            )
        center, scale = box_to_center_scale(det["bbox"], aspect_ratio, enlarge)
        samples.append(
            PersonSample(
                image_path=str(
                    resolve_image_path(
                        image_dir, image["file_name"], f"image {gt.original_image_id(image_id)!r}"
                    )
                ),
                image_id=int(image_id),
                center=center,
                scale=scale,
                keypoints=np.zeros((num_joints, 3), np.float32),
                box=np.asarray(det["bbox"], np.float32),
                box_score=float(score),
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
