"""AI Challenger person keypoints reader (Wu et al. 2017, "AI Challenger: A Large-scale
Dataset for Going Deeper in Image Understanding") -> PersonSample records in the AIC-14 schema.

Two layouts are read:

* the official release (``keypoint_train_annotations_20170909.json``): a json *list* of
  ``{"image_id": "<sha1>", "keypoint_annotations": {"human1": [x, y, v] * 14, ...},
  "human_annotations": {"human1": [x1, y1, x2, y2], ...}}``, images at
  ``<image_dir>/<image_id>.jpg``. AIC's visibility flags are 1 visible, 2 occluded,
  3 not labelled; they become COCO's 2, 1, 0. Images get integer ids by their position
  in the file (AIC ids are hashes);
* MMPose's COCO conversion (a COCO keypoints json with 14 keypoints), read by the COCO reader.

Only people with at least one labelled joint are kept (training use; AIC has no val protocol here).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from heatpose.data.coco import check_image_files, read_coco_people
from heatpose.data.records import PersonSample
from heatpose.data.transforms import box_to_center_scale
from heatpose.errors import HeatposeError
from heatpose.io import load_json
from heatpose.keypoints import AIC14

# AIC flag -> COCO flag (1 visible -> 2, 2 occluded -> 1, 3 unlabelled -> 0)
_AIC_TO_COCO_FLAG = {1: 2, 2: 1, 3: 0}


def read_aic_people(
    ann_path: str | Path,
    image_dir: str | Path,
    aspect_ratio: float,
    enlarge: float = 1.25,
    check_images: bool = True,
) -> list[PersonSample]:
    """People with GT boxes from an AI Challenger keypoint file (either layout above)."""
    data = load_json(ann_path, "annotation")
    if isinstance(data, dict):  # MMPose's COCO-format conversion
        return read_coco_people(
            ann_path, image_dir, AIC14.num_joints, aspect_ratio, enlarge, check_images=check_images
        )
    if not isinstance(data, list):
        raise HeatposeError(
            f"{ann_path}: expected an AI Challenger list of images, got {type(data).__name__}"
        )
    samples: list[PersonSample] = []
    for position, entry in enumerate(data):
        samples += _image_people(
            entry, position, Path(image_dir), aspect_ratio, enlarge, f"{ann_path}: image {position}"
        )
    if check_images:
        check_image_files(samples)
    return samples


def _image_people(
    entry: Any, position: int, image_dir: Path, aspect_ratio: float, enlarge: float, where: str
) -> list[PersonSample]:
    if (
        not isinstance(entry, dict)
        or not {"image_id", "keypoint_annotations", "human_annotations"} <= entry.keys()
    ):
        raise HeatposeError(f"{where}: needs image_id, keypoint_annotations and human_annotations")
    keypoints, boxes = entry["keypoint_annotations"], entry["human_annotations"]
    if not isinstance(keypoints, dict) or not isinstance(boxes, dict):
        raise HeatposeError(f"{where}: keypoint_annotations and human_annotations must be objects")
    out = []
    for human, raw in keypoints.items():
        if human not in boxes:
            raise HeatposeError(f"{where}: {human} has keypoints but no box in human_annotations")
        if not isinstance(raw, list) or len(raw) != 3 * AIC14.num_joints:
            raise HeatposeError(f"{where}: {human} needs {3 * AIC14.num_joints} keypoint numbers")
        kpts = np.asarray(raw, dtype=np.float32).reshape(AIC14.num_joints, 3)
        flags = kpts[:, 2].astype(int)
        if not set(flags.tolist()) <= _AIC_TO_COCO_FLAG.keys() or not np.isfinite(kpts).all():
            raise HeatposeError(
                f"{where}: {human} has visibility flags other than 1, 2, 3 or non-finite values"
            )
        kpts[:, 2] = [_AIC_TO_COCO_FLAG[f] for f in flags]
        kpts[kpts[:, 2] == 0, :2] = 0
        if kpts[:, 2].max() <= 0:
            continue
        x1, y1, x2, y2 = (float(v) for v in boxes[human])
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
            raise HeatposeError(f"{where}: {human} has an empty box {boxes[human]}")
        box = [x1, y1, x2 - x1, y2 - y1]
        center, scale = box_to_center_scale(box, aspect_ratio, enlarge)
        out.append(
            PersonSample(
                image_path=str(image_dir / f"{entry['image_id']}.jpg"),
                image_id=position,
                center=center,
                scale=scale,
                keypoints=kpts,
                box=np.asarray(box, np.float32),
                area=box[2] * box[3],
                box_source="gt",
            )
        )
    return out
