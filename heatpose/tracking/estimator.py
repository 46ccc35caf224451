"""The pose-estimator callable the tracker calls: a checkpoint -> ``estimate(frame, boxes)``.

Stop-gap adapter: when this was written, ``heatpose.inference`` / ``heatpose.predictor.PoseEstimator``
(the predict issue) were not on main, so this one small function builds the callable from the
existing pieces (``models.build_model`` + ``load_model_weights``, ``data/transforms.py`` crops,
``engine/evaluate.predict_heatmaps`` with the config's flip test, ``codec.decode_to_image``).
Replace :func:`load_pose_estimator` by a wrapper around ``PoseEstimator`` once it lands; the
tracker only needs the ``PoseEstimate`` signature.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from heatpose.config import ExperimentConfig, config_from_dict, load_config
from heatpose.data.dataset import build_codec, normalize_image
from heatpose.data.transforms import box_to_center_scale, get_affine_transform, warp_crop
from heatpose.engine.evaluate import configured_flip_shift, predict_heatmaps
from heatpose.errors import HeatposeError
from heatpose.keypoints import KeypointSchema
from heatpose.models import build_model, load_model_weights
from heatpose.models.checkpoint import read_checkpoint
from heatpose.schema_io import schema_for_config, schema_from_checkpoint
from heatpose.tracking.tracker import PoseEstimate


def load_pose_estimator(
    checkpoint: str | Path,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    flip: bool | None = None,
    batch_size: int = 32,
) -> tuple[PoseEstimate, KeypointSchema, ExperimentConfig]:
    """``estimate(frame_bgr, boxes_xyxy) -> (keypoints (N, K, 2), scores (N, K))``, its schema and config.

    A heatpose checkpoint carries its config; any other layout needs ``config``. ``flip``
    defaults to the config's ``test.flip``. Runs on the CPU.
    """
    obj = read_checkpoint(checkpoint)
    if config is not None:
        cfg = load_config(config, list(overrides))
    elif isinstance(obj, dict) and isinstance(obj.get("config"), dict):
        cfg = config_from_dict(obj["config"], list(overrides))
    else:
        raise HeatposeError(
            f"{checkpoint} carries no heatpose config: pass --config with the recipe it was trained with"
        )
    model = build_model(dataclasses.replace(cfg.model, pretrained="", weights=""))
    load_model_weights(model, obj)
    model.eval()
    schema = schema_from_checkpoint(obj) or schema_for_config(cfg)  # any keypoint set (schema_io)
    codec = build_codec(cfg)
    in_w, in_h = (int(v) for v in cfg.data.input_size)
    mean, std = np.asarray(cfg.data.mean, np.float32), np.asarray(cfg.data.std, np.float32)
    use_flip = cfg.test.flip if flip is None else flip
    shift = configured_flip_shift(cfg)
    flip_index = schema.flip_index()

    @torch.inference_mode()
    def estimate(frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        image = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if cfg.data.color_order == "rgb" else frame
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        keypoints = np.zeros((len(boxes), schema.num_joints, 2))
        scores = np.zeros((len(boxes), schema.num_joints))
        for start in range(0, len(boxes), batch_size):
            part = boxes[start : start + batch_size]
            centers, scales, crops = [], [], []
            for x0, y0, x1, y1 in part:
                center, scale = box_to_center_scale(
                    [x0, y0, x1 - x0, y1 - y0], in_w / in_h, cfg.data.box_enlarge
                )
                matrix = get_affine_transform(center, scale, 0.0, (in_w, in_h), udp=codec.udp)
                crops.append(normalize_image(warp_crop(image, matrix, (in_w, in_h)), mean, std))
                centers.append(center)
                scales.append(scale)
            heatmaps = predict_heatmaps(model, torch.stack(crops), use_flip, flip_index, shift)
            kp, sc = codec.decode_to_image(heatmaps, np.stack(centers), np.stack(scales), cfg.test.decode)
            keypoints[start : start + len(part)] = kp
            scores[start : start + len(part)] = sc
        return keypoints, scores

    return estimate, schema, cfg


class HogDetector:
    """OpenCV's HOG pedestrian detector as a ``frame -> (boxes xyxy, scores)`` callable.

    Stop-gap like :func:`load_pose_estimator` (the predict issue brings ``heatpose.detection``);
    scores are the SVM margins through a logistic, so a margin of 0 scores 0.5.
    """

    def __init__(self, max_side: int = 800) -> None:
        self.max_side = max_side
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = frame.shape[:2]
        factor = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(frame, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_LINEAR)
        rects, weights = self._hog.detectMultiScale(small, winStride=(8, 8), padding=(16, 16), scale=1.05)
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        b = np.asarray(rects, np.float64).reshape(-1, 4) / factor
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float64).reshape(-1)))
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1), scores
