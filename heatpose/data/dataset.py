"""The torch Dataset that ties a reader's records, the affine crop and the heatmap codec.

Augmentation draws from a generator seeded by (seed, epoch, index), so a sample's crop does
not depend on worker count, worker scheduling or whether the run was resumed: that is what
makes an interrupted training run resume exactly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from heatpose.codec import HeatmapCodec
from heatpose.config import ExperimentConfig
from heatpose.data.coco import check_image_files, read_coco_dataset
from heatpose.data.coco_gt import CocoGT, note_line
from heatpose.data.image_files import IMREAD_FLAGS, find_bad_images, refuse_or_skip
from heatpose.data.records import PersonSample
from heatpose.data.transforms import Augmentation, CropParams, sample_crop, transform_keypoints, warp_crop
from heatpose.errors import HeatposeError
from heatpose.keypoints import KeypointSchema
from heatpose.schema_io import resolve_num_joints, schema_for_config


def read_image(path: str | Path, color_order: str = "rgb") -> np.ndarray:
    """HxWx3 uint8 in ``color_order``; a clear error for a missing or corrupt file.

    Pixels in stored order: EXIF orientation is ignored, as the official code reads them
    (COCO annotations refer to the stored pixel grid).
    """
    if not Path(path).is_file():
        raise HeatposeError(f"image file not found: {path}")
    image = cv2.imread(str(path), IMREAD_FLAGS)
    if image is None:
        raise HeatposeError(f"cannot decode image (corrupt or not an image): {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color_order == "rgb" else image


def normalize_image(crop: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32, ``(x / 255 - mean) / std`` per channel as given."""
    out = (crop.astype(np.float32) / 255.0 - mean) / std
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


class PoseDataset(Dataset):
    """Crops of people, with heatmap targets.

    Item: ``image`` (3, H, W) float32, ``target`` (K, h, w), ``target_weight`` (K,),
    ``center``/``scale`` (2,), ``box_score``, ``area``, ``image_id``, ``index``.
    ``mean``/``std`` apply to the channels in ``color_order``, exactly as the network saw them.
    """

    def __init__(
        self,
        samples: list[PersonSample],
        codec: HeatmapCodec,
        schema: KeypointSchema,
        color_order: str = "rgb",
        mean: tuple[float, ...] = (0.485, 0.456, 0.406),
        std: tuple[float, ...] = (0.229, 0.224, 0.225),
        augmentation: Augmentation | None = None,
        seed: int = 0,
        coco_gt: CocoGT | None = None,
    ) -> None:
        self.samples = samples
        self.coco_gt = coco_gt  # the normalised GT the samples came from (ids, category, notes)
        self.codec = codec
        self.schema = schema
        self.flip_index = schema.flip_index()
        # per-joint loss weights multiply the visibility weights (official use_different_joints_weight)
        self.joint_weights = (
            None if schema.joint_weights is None else np.asarray(schema.joint_weights, np.float32)
        )
        self.color_order = color_order
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        crop, joints, visible, _ = self.crop(index)
        sample = self.samples[index]
        target, weight = self.codec.encode(joints, visible)
        if self.joint_weights is not None:
            weight = weight * self.joint_weights
        return {
            "image": normalize_image(crop, self.mean, self.std),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight),
            "center": torch.from_numpy(np.asarray(sample.center, np.float32)),
            "scale": torch.from_numpy(np.asarray(sample.scale, np.float32)),
            "box_score": torch.tensor(sample.box_score, dtype=torch.float32),
            "area": torch.tensor(sample.area, dtype=torch.float32),
            "image_id": torch.tensor(sample.image_id, dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }

    def crop(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, CropParams]:
        """The (H, W, 3) uint8 crop the network sees, (K, 2) joints in it, (K,) visibility and
        the crop parameters (``flipped``, ``rotation``): what ``heatpose browse`` draws."""
        sample = self.samples[index]
        image = read_image(sample.image_path, self.color_order)
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augmentation else None
        params = sample_crop(
            sample.center,
            sample.scale,
            image.shape[1],
            self.codec.input_size,
            self.augmentation,
            rng,
            joints=sample.keypoints[:, :2],
            visible=sample.keypoints[:, 2],
            upper_body=self.schema.upper_body,
            udp=self.codec.udp,
        )
        crop = warp_crop(image, params.matrix, self.codec.input_size)
        joints, visible = transform_keypoints(sample.keypoints, params, self.flip_index)
        return crop, joints, visible, params


def build_codec(cfg: ExperimentConfig) -> HeatmapCodec:
    return HeatmapCodec(
        input_size=tuple(cfg.data.input_size),
        heatmap_size=cfg.heatmap_size,
        sigma=cfg.data.sigma,
        subpixel=cfg.data.subpixel_targets,
        udp=cfg.data.codec == "udp",
    )


def _require_path(value: str, key: str) -> str:
    if not value:
        raise HeatposeError(f"config key {key!r} is empty: set it to the dataset path")
    if not Path(value).exists():
        raise HeatposeError(f"config key {key!r}: path not found: {value}")
    return value


def train_augmentation(cfg: ExperimentConfig) -> Augmentation:
    d = cfg.data
    return Augmentation(
        scale_factor=d.scale_factor,
        rot_factor=d.rot_factor,
        rot_prob=d.rot_prob,
        flip=d.flip,
        half_body_prob=d.half_body_prob,
        half_body_min_joints=d.half_body_min_joints,
        half_body_rule=d.half_body_rule,
        half_body_upper_prob=d.half_body_upper_prob,
        half_body_min_upper=d.half_body_min_upper,
        half_body_min_lower=d.half_body_min_lower,
    )


def read_single_person_samples(
    cfg: ExperimentConfig, ann: str, images: str, box_source: str, schema: KeypointSchema
) -> list[PersonSample]:
    """MPII (json list / pose-hg h5) or LIP (csv) people, one per annotation row, in order.

    Both datasets are evaluated on the annotated person (MPII: the annotation's centre/scale;
    LIP: the whole single-person image), so detector boxes are refused.
    """
    if box_source != "gt":
        raise HeatposeError(
            f"{cfg.data.dataset} is evaluated on the annotated people: boxes must be 'gt', not {box_source!r}"
        )
    w, h = cfg.data.input_size
    if cfg.data.dataset == "lip":
        from heatpose.data.lip import lip_people, read_lip_csv

        return lip_people(read_lip_csv(ann, schema), images, w / h, cfg.data.box_enlarge)
    from heatpose.data.mpii import mpii_people, read_mpii_annotations

    samples = mpii_people(read_mpii_annotations(ann, schema), images, w / h)
    check_image_files(samples)
    return samples


def build_dataset(
    cfg: ExperimentConfig, split: str, boxes: str | None = None, schema: KeypointSchema | None = None
) -> PoseDataset:
    """The train split (augmented, GT boxes) or the val split (boxes from ``boxes`` or cfg.test).

    ``schema`` defaults to the one ``data.schema`` names (see :mod:`heatpose.schema_io`);
    evaluation passes the checkpoint's own.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be train or val, not {split!r}")
    schema = schema or schema_for_config(cfg)
    resolve_num_joints(cfg, schema)  # an error when model.num_joints disagrees with the schema
    if split == "train" and cfg.data.train_sets:  # several datasets mapped onto one schema
        from heatpose.data.mixed import build_mixed_dataset

        return build_mixed_dataset(cfg, schema)  # type: ignore[return-value]
    ann = _require_path(getattr(cfg.data, f"{split}_ann"), f"data.{split}_ann")
    images = _require_path(getattr(cfg.data, f"{split}_images"), f"data.{split}_images")
    box_source = "gt" if split == "train" else (boxes or cfg.test.boxes)
    w, h = cfg.data.input_size
    gt: CocoGT | None = None
    if cfg.data.dataset in ("mpii", "lip"):
        samples = read_single_person_samples(cfg, ann, images, box_source, schema)
        if split == "val":  # fail now, not after an epoch of training, when PCKh cannot be scored
            from heatpose.evaluation.pckh_score import load_pckh_ground_truth

            load_pckh_ground_truth(ann)
    else:
        gt, samples = read_coco_dataset(
            ann,
            images,
            schema.num_joints,
            aspect_ratio=w / h,
            enlarge=cfg.data.box_enlarge,
            boxes=box_source,
            det_score_thr=cfg.test.det_score_thr,
            category=cfg.data.category,
        )
    notes = gt.notes if gt is not None else []
    max_share = cfg.data.max_bad_image_share if split == "train" else None
    samples = _drop_bad_images(samples, gt, max_share, ann, notes)
    if os.environ.get("RANK", "0") == "0":
        for line in notes:
            print(note_line(line), file=sys.stderr)
    if not samples:
        raise HeatposeError(f"no people to use in {ann} ({split} split, boxes: {box_source})")
    augmentation = train_augmentation(cfg) if split == "train" else None
    return dataset_from_config(cfg, samples, build_codec(cfg), schema, augmentation, coco_gt=gt)


def dataset_from_config(
    cfg: ExperimentConfig,
    samples: list[PersonSample],
    codec: HeatmapCodec,
    schema: KeypointSchema,
    augmentation: Augmentation | None,
    coco_gt: CocoGT | None = None,
) -> PoseDataset:
    """A :class:`PoseDataset` of ``samples`` with the config's colour order, mean/std and seed: the one
    place the ``data``/``train`` keys become dataset arguments (single and mixed training sets)."""
    return PoseDataset(
        samples,
        codec,
        schema,
        color_order=cfg.data.color_order,
        mean=tuple(cfg.data.mean),
        std=tuple(cfg.data.std),
        augmentation=augmentation,
        seed=cfg.train.seed,
        coco_gt=coco_gt,
    )


def _drop_bad_images(
    samples: list[PersonSample], gt: CocoGT | None, max_share: float | None, where: str, notes: list[str]
) -> list[PersonSample]:
    """Check every image the samples use (truncated file; size unlike the json's, when the GT
    gives one); see image_files.py.

    ``max_share=None`` (evaluation): any bad image is an error naming it. Training: people on
    bad images are skipped with a counted warning in ``notes``, unless more than ``max_share``
    of the images are bad. Sample order is kept (MPII/LIP PCKh scores in annotation order).
    """
    sizes = {img["id"]: (img.get("width"), img.get("height")) for img in gt.dataset["images"]} if gt else {}
    files = {s.image_path: sizes.get(s.image_id, (None, None)) for s in samples}
    bad = find_bad_images((path, w, h) for path, (w, h) in files.items())
    skip = refuse_or_skip(bad, len(files), max_share, where)
    if not skip:
        return samples
    kept = [s for s in samples if s.image_path not in skip]
    notes.append(
        f"{where}: warning: skipped {len(skip)} of {len(files)} images ({len(samples) - len(kept)} people) "
        f"that are truncated or do not match their width/height: {bad[0].path}: {bad[0].problem}"
    )
    return kept
