"""The one record type that flows from dataset readers to transforms."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PersonSample:
    """One person to crop: where the image is, which box, and (when known) its keypoints.

    ``center`` and ``scale`` follow the official Simple Baselines convention: ``scale`` is the
    (padded, enlarged) box size in units of 200 px, so the crop covers ``scale * 200`` pixels.
    ``keypoints`` is (K, 3) of x, y, visibility (COCO flags: 0 unlabeled, 1 labeled but
    occluded, 2 visible); all zero when the box came from a detector and there is no GT.
    """

    image_path: str
    image_id: int
    center: np.ndarray  # (2,) float32, pixels
    scale: np.ndarray  # (2,) float32, box size / 200
    keypoints: np.ndarray  # (K, 3) float32
    box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))  # x, y, w, h before padding
    box_score: float = 1.0
    area: float = 0.0
    ann_id: int = -1
    box_source: str = "gt"  # "gt" or the detection file's path
