"""Person boxes for top-down pose estimation on users' images, always with their source.

Three sources, named in every output (``box_source``):

* a **COCO detection-results json** (``[{"image_id", "bbox": [x, y, w, h], "score",
  "category_id"}]``, e.g. the official ``COCO_val2017_detections_AP_H_56_person.json``),
  filtered by a score threshold. An image is matched to its detections by the entry's
  ``file_name`` when present, else by ``image_id`` == the integer in the image's file name
  (COCO's ``000000000785.jpg`` is id 785);
* **OpenCV's HOG people detector** (Dalal & Triggs 2005, ``cv2.HOGDescriptor`` with
  ``getDefaultPeopleDetector``): nothing to download, but a weak baseline - it finds upright,
  mostly unoccluded people at least ~100 px tall (recall on coco_mini in docs/predict.md);
* the **whole image** as one person.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from heatpose.errors import HeatposeError
from heatpose.evaluation.nms import box_nms
from heatpose.io import load_json

WHOLE_IMAGE = "whole-image"
HOG = "hog"


@dataclass
class PersonBoxes:
    """(N, 4) float64 boxes ``x, y, w, h`` in image pixels, (N,) scores, and where they came from."""

    boxes: np.ndarray
    scores: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, source: str) -> PersonBoxes:
        return cls(np.zeros((0, 4)), np.zeros(0), source)


def whole_image_box(width: int, height: int) -> PersonBoxes:
    """The whole image as one person box, score 1."""
    return PersonBoxes(np.array([[0.0, 0.0, float(width), float(height)]]), np.ones(1), WHOLE_IMAGE)


def as_person_boxes(boxes: Any, scores: Any = None, source: str = "user") -> PersonBoxes:
    """(N, 4) ``x, y, w, h`` (or (N, 5) with a score column) -> :class:`PersonBoxes`; checked."""
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise HeatposeError("boxes must be numbers shaped (N, 4) x, y, w, h or (N, 5) with a score") from None
    if arr.size == 0:
        return PersonBoxes.empty(source)
    arr = arr.reshape(-1, arr.shape[-1]) if arr.ndim > 1 else arr.reshape(1, -1)
    if arr.shape[1] not in (4, 5):
        raise HeatposeError(f"boxes must be (N, 4) x, y, w, h or (N, 5) with a score, got {arr.shape}")
    if scores is None:
        scores = arr[:, 4] if arr.shape[1] == 5 else np.ones(len(arr))
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    arr = arr[:, :4]
    if len(scores) != len(arr):
        raise HeatposeError(f"{len(arr)} boxes but {len(scores)} box scores")
    if not np.isfinite(arr).all() or (arr[:, 2:] <= 0).any():
        raise HeatposeError("boxes must be finite with width and height > 0")
    return PersonBoxes(arr, scores, source)


class DetectionFile:
    """A COCO detection-results json, indexed by image; person detections with score >= ``thr``."""

    def __init__(self, path: str | Path, score_thr: float = 0.5) -> None:
        self.path = Path(path)
        self.score_thr = float(score_thr)
        data = load_json(self.path, "detection")
        if not isinstance(data, list):
            raise HeatposeError(f"{self.path}: expected a list of COCO detection results")
        self._by_id: dict[int, list[tuple[list[float], float]]] = {}
        self._by_name: dict[str, list[tuple[list[float], float]]] = {}
        for i, det in enumerate(data):
            if not isinstance(det, dict) or "bbox" not in det or "score" not in det:
                raise HeatposeError(f"{self.path}: detection {i} needs bbox and score")
            if "image_id" not in det and "file_name" not in det:
                raise HeatposeError(f"{self.path}: detection {i} needs image_id or file_name")
            if int(det.get("category_id", 1)) != 1:
                continue
            score = float(det["score"])
            box = det["bbox"]
            if not (isinstance(box, list) and len(box) == 4 and all(_finite(v) for v in box)):
                raise HeatposeError(f"{self.path}: detection {i}: bbox {box} must be 4 numbers x, y, w, h")
            if not math.isfinite(score):
                raise HeatposeError(f"{self.path}: detection {i} has a non-finite score")
            if score < self.score_thr or float(box[2]) <= 0 or float(box[3]) <= 0:
                continue
            entry = ([float(v) for v in box], score)
            if "file_name" in det:
                self._by_name.setdefault(Path(str(det["file_name"])).name, []).append(entry)
            else:
                self._by_id.setdefault(int(det["image_id"]), []).append(entry)

    @property
    def source(self) -> str:
        return f"{self.path} (score >= {self.score_thr:g})"

    def image_id_of(self, image_path: str | Path) -> int | None:
        """COCO's convention: the image id is the integer file name (``000000000785.jpg`` -> 785)."""
        stem = Path(image_path).stem
        return int(stem) if stem.isdigit() else None

    def boxes_for(self, image_path: str | Path) -> PersonBoxes:
        """The detections of one image (none when the file lists none for it)."""
        entries = self._by_name.get(Path(image_path).name)
        if entries is None:
            image_id = self.image_id_of(image_path)
            entries = self._by_id.get(image_id, []) if image_id is not None else []
        if not entries:
            return PersonBoxes.empty(self.source)
        return PersonBoxes(np.array([e[0] for e in entries]), np.array([e[1] for e in entries]), self.source)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class HogPersonDetector:
    """OpenCV's HOG + linear SVM pedestrian detector: zero downloads, weak recall.

    Images are scaled so their longer side is ``max_side`` px (people smaller than the
    detector's 64x128 window are missed; larger images cost time for little gain). Scores are
    the SVM margins squashed into (0, 1) with a logistic; overlapping windows are merged by
    box NMS at ``nms_iou``.
    """

    def __init__(self, max_side: int = 800, nms_iou: float = 0.5, hit_threshold: float = 0.0) -> None:
        self.max_side = max_side
        self.nms_iou = nms_iou
        self.hit_threshold = hit_threshold
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    @property
    def source(self) -> str:
        return HOG

    def __call__(self, image: np.ndarray) -> PersonBoxes:
        """HxWx3 uint8 (any colour order: HOG uses gradients) -> person boxes in image pixels."""
        h, w = image.shape[:2]
        factor = self.max_side / max(h, w)
        small = cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
        rects, weights = self._hog.detectMultiScale(
            small, hitThreshold=self.hit_threshold, winStride=(8, 8), padding=(16, 16), scale=1.05
        )
        if len(rects) == 0:
            return PersonBoxes.empty(HOG)
        boxes = np.asarray(rects, np.float64).reshape(-1, 4) / factor
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float64).reshape(-1)))
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        keep = box_nms(xyxy, scores, self.nms_iou)
        return PersonBoxes(boxes[keep], scores[keep], HOG)
