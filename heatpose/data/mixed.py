"""Multi-dataset training: several annotated sets, one keypoint schema, mixed by ratios.

``data.train_sets`` lists datasets with their own annotation format and keypoint schema
(e.g. MPII + AI Challenger, as CFA trains its best model). Each set's people are read in
their own schema and carried onto the model's schema (``data.schema``) through
:func:`heatpose.keypoints.schema_mapping`; joints the source does not annotate come out
with visibility 0 and therefore target weight 0, so they add nothing to the loss.

Mixing: an epoch has as many samples as all sets together; set i contributes
``round(ratio_i / sum(ratios) * epoch length)`` of them (largest remainders), drawn as
successive random permutations of that set (cycled when it is smaller than its share).
The draw depends only on (seed, epoch), like the augmentation, so resumed runs see the
same samples; the training loop's sampler then shuffles and shards the epoch as usual.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils.data import Dataset

from heatpose.config import ExperimentConfig, TrainSetConfig
from heatpose.data.aic import read_aic_people
from heatpose.data.coco import read_coco_people
from heatpose.data.dataset import PoseDataset, build_codec, dataset_from_config, train_augmentation
from heatpose.data.records import PersonSample
from heatpose.errors import HeatposeError
from heatpose.keypoints import KeypointSchema, get_schema, map_keypoints, schema_mapping


def read_train_set(ts: TrainSetConfig, aspect_ratio: float, enlarge: float) -> list[PersonSample]:
    """People of one ``data.train_sets`` entry, in that set's own schema (``enlarge`` applies to
    box-annotated sets; MPII keeps its official annotated centre and scale)."""
    schema = get_schema(ts.schema)
    if ts.dataset == "aic":
        if schema.num_joints != get_schema("aic").num_joints:
            raise HeatposeError(f"train set {ts.ann}: dataset aic needs schema aic, got {ts.schema!r}")
        return read_aic_people(ts.ann, ts.images, aspect_ratio, enlarge)
    if ts.dataset == "coco":
        return read_coco_people(ts.ann, ts.images, schema.num_joints, aspect_ratio, enlarge)
    if ts.dataset == "mpii":  # the official json list (or pose-hg h5 / .mat), MPII's own crop
        from heatpose.data.mpii import mpii_people, read_mpii_annotations

        return mpii_people(read_mpii_annotations(ts.ann, schema), ts.images, aspect_ratio)
    raise HeatposeError(f"train set {ts.ann}: unknown dataset {ts.dataset!r} (coco, mpii or aic)")


def map_samples(samples: list[PersonSample], source: str, target: str) -> list[PersonSample]:
    """The same people with keypoints carried from schema ``source`` to ``target``."""
    if source == target:
        return samples
    mapping = schema_mapping(source, target)
    k = get_schema(target).num_joints
    return [dataclasses.replace(s, keypoints=map_keypoints(s.keypoints, mapping, k)) for s in samples]


def mix_plan(sizes: list[int], ratios: list[float], length: int, seed: int, epoch: int) -> np.ndarray:
    """(length, 2) rows of (set, index in set) for one epoch; see the module docstring."""
    if len(sizes) != len(ratios) or not sizes or min(sizes) < 1 or min(ratios) <= 0:
        raise ValueError(f"need one ratio > 0 per non-empty set, got sizes {sizes} and ratios {ratios}")
    share = np.asarray(ratios, np.float64) / float(sum(ratios)) * length
    counts = np.floor(share).astype(np.int64)
    for i in np.argsort(-(share - counts), kind="stable")[: length - int(counts.sum())]:
        counts[i] += 1
    rng = np.random.default_rng([seed, epoch])
    rows = []
    for d, (size, count) in enumerate(zip(sizes, counts, strict=True)):
        cycles = -(-int(count) // size)
        idx = np.concatenate([rng.permutation(size) for _ in range(cycles)])[:count] if count else []
        rows.append(np.stack([np.full(len(idx), d), np.asarray(idx, np.int64)], axis=1))
    return np.concatenate(rows).astype(np.int64)


class MixedPoseDataset(Dataset):
    """Several :class:`PoseDataset`\\ s of one schema, mixed by ``ratios`` per epoch.

    Items are those of the member datasets plus ``source`` (the set's position in the list).
    """

    def __init__(self, datasets: list[PoseDataset], ratios: list[float], seed: int = 0):
        self.datasets = datasets
        self.ratios = list(ratios)
        self.seed = seed
        self.length = sum(len(d) for d in datasets)
        first = datasets[0]
        self.codec, self.schema, self.flip_index = first.codec, first.schema, first.flip_index
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for d in self.datasets:
            d.set_epoch(epoch)
        self.plan = mix_plan([len(d) for d in self.datasets], self.ratios, self.length, self.seed, epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        source, local = (int(v) for v in self.plan[index])
        item = self.datasets[source][local]
        item["source"] = torch.tensor(source, dtype=torch.int64)
        return item


def build_mixed_dataset(cfg: ExperimentConfig, target: KeypointSchema | None = None) -> MixedPoseDataset:
    """The training set of ``cfg.data.train_sets``, every set mapped onto ``target`` (default: the
    built-in schema ``data.schema`` names)."""
    target = target or get_schema(cfg.data.schema)
    w, h = cfg.data.input_size
    codec, augmentation = build_codec(cfg), train_augmentation(cfg)
    datasets = []
    for ts in cfg.data.train_sets:
        samples = map_samples(read_train_set(ts, w / h, cfg.data.box_enlarge), ts.schema, target.name)
        samples = [s for s in samples if s.keypoints[:, 2].max() > 0]  # nothing left to learn from
        if not samples:
            raise HeatposeError(f"train set {ts.ann}: no person with a joint of schema {target.name!r}")
        datasets.append(dataset_from_config(cfg, samples, codec, target, augmentation))
    return MixedPoseDataset(datasets, [ts.ratio for ts in cfg.data.train_sets], seed=cfg.train.seed)
