"""The one inference path: crop batching, the network call, flip test, decoding, back-projection.

``heatpose eval`` (through :func:`predict_dataset`) and ``heatpose predict`` / :class:`~heatpose.
predictor.PoseEstimator` (through :func:`estimate_poses`) both run :func:`predict_heatmaps` and
:meth:`HeatmapCodec.decode_to_image <heatpose.codec.HeatmapCodec.decode_to_image>`, and crop with
the same affine warp and normalisation the dataset uses, so the number ``eval`` reports measures
exactly what users run.

The network is any callable ``(N, 3, H, W) float32 -> (N, K, h, w)`` heatmaps (or a list of
them, the last of which is used): a torch module, or the ONNX runtime wrapper of
:mod:`heatpose.export`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from heatpose.codec import HeatmapCodec, exact_flip_shift, flip_back
from heatpose.config import ExperimentConfig
from heatpose.data.dataset import PoseDataset
from heatpose.data.transforms import get_affine_transform, warp_crop
from heatpose.engine.distributed import all_gather_object, is_main_process, shard_indices

HeatmapFn = Callable[[torch.Tensor], "torch.Tensor | Sequence[torch.Tensor]"]

FLIP_SHIFTS: tuple[str, ...] = ("official", "exact", "none")


def flip_shift_px(shift: str, input_width: int, heatmap_width: int) -> float:
    """Heatmap pixels to shift flipped-back maps right by, for one ``shift`` setting.

    ``"official"``: one pixel (``SHIFT_HEATMAP``); ``"exact"``: ``(s - 1) / s`` for stride s
    (:func:`~heatpose.codec.exact_flip_shift`); ``"none"``: no shift.
    """
    if shift == "official":
        return 1.0
    if shift == "exact":
        return exact_flip_shift(input_width, heatmap_width)
    if shift == "none":
        return 0.0
    raise ValueError(f"unknown flip shift {shift!r}: use one of {', '.join(FLIP_SHIFTS)}")


def configured_flip_shift(cfg: ExperimentConfig) -> str:
    """The ``shift`` setting of :func:`predict_heatmaps` that ``cfg.test`` asks for.

    UDP heatmaps flip exactly (pixel-index coordinates), so they are never shifted."""
    if cfg.data.codec == "udp":
        return "none"
    return cfg.test.flip_shift if cfg.test.shift_heatmap else "none"


def predict_heatmaps(
    model: HeatmapFn,
    images: torch.Tensor,
    flip: bool = False,
    flip_index: list[int] | None = None,
    shift: str = "official",
) -> torch.Tensor:
    """(N, 3, H, W) crops -> (N, K, h, w) float32 heatmaps, optionally flip-tested.

    Flip test (official): the mirrored crops go through the network in the same batch, their
    heatmaps are mirrored back with left/right joints swapped, shifted right by
    :func:`flip_shift_px` of ``shift``, then averaged with the plain ones. A multi-stage
    model's outputs go through its ``fuse`` (CFA: the mean of the last k stages), or its last
    output is used.
    """
    n = images.shape[0]
    batch = torch.cat([images, images.flip(-1)]) if flip else images
    heatmaps = model(batch)
    if isinstance(heatmaps, (list, tuple)):
        heatmaps = model.fuse(heatmaps) if hasattr(model, "fuse") else heatmaps[-1]
    heatmaps = heatmaps.float()
    if not flip:
        return heatmaps
    if flip_index is None:
        raise ValueError("flip test needs the schema's flip_index")
    shift_px = flip_shift_px(shift, images.shape[-1], heatmaps.shape[-1])
    return (heatmaps[:n] + flip_back(heatmaps[n:], flip_index, shift_px)) * 0.5


def autocast_context(
    device: torch.device, amp_dtype: torch.dtype | None
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp_dtype`` on ``device``; a no-op for full precision (None)."""
    return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()


# --------------------------------------------------------------------------- a dataset (eval)


@dataclass
class Predictions:
    """Decoded poses, one row per crop: (N,) index, image_id, box_score, area; (N, K, 2)
    keypoints in image pixels; (N, K) keypoint scores. ``area`` is the box-scale area
    ``scale[0] * scale[1] * 200**2`` that the official OKS-NMS uses."""

    index: np.ndarray
    image_id: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    box_score: np.ndarray
    area: np.ndarray

    @classmethod
    def concatenate(cls, parts: list[Predictions]) -> Predictions:
        """Join shards and sort by dataset index (dropping any index seen twice)."""
        joined = {
            f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls)
        }
        _, first = np.unique(joined["index"], return_index=True)
        return cls(**{k: v[first] for k, v in joined.items()})

    def __len__(self) -> int:
        return len(self.index)


@torch.inference_mode()
def predict_dataset(
    model: HeatmapFn,
    dataset: PoseDataset,
    device: torch.device,
    batch_size: int,
    flip: bool = True,
    shift: str = "official",
    decode: str = "argmax",
    num_workers: int = 0,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    progress: bool = True,
) -> Predictions:
    """Run the model over every crop of ``dataset`` and decode poses in image coordinates.

    Under DDP every rank takes a disjoint shard and the shards are gathered, so every rank
    returns the predictions for the whole dataset. ``amp_dtype`` (e.g. the training precision
    during validation) runs the forward passes under autocast.
    """
    codec: HeatmapCodec = dataset.codec
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=shard_indices(len(dataset)),
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    if isinstance(model, torch.nn.Module):
        model.eval()
    parts: dict[str, list[np.ndarray]] = {f.name: [] for f in dataclasses.fields(Predictions)}
    bar = tqdm(
        loader, desc="inference", unit="batch", disable=not (progress and is_main_process()), leave=False
    )
    for batch in bar:
        images = batch["image"].to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast_context(device, amp_dtype):
            heatmaps = predict_heatmaps(model, images, flip, dataset.flip_index, shift)
        centers, scales = batch["center"].numpy(), batch["scale"].numpy()
        keypoints, scores = codec.decode_to_image(heatmaps, centers, scales, decode)
        parts["index"].append(batch["index"].numpy())
        parts["image_id"].append(batch["image_id"].numpy())
        parts["keypoints"].append(keypoints)
        parts["scores"].append(scores)
        parts["box_score"].append(batch["box_score"].numpy())
        parts["area"].append(np.prod(scales.astype(np.float64), axis=1) * 200.0**2)
    local = Predictions(**{k: np.concatenate(v) if v else _empty(k, dataset) for k, v in parts.items()})
    return Predictions.concatenate(all_gather_object(local))


def _empty(name: str, dataset: PoseDataset) -> np.ndarray:
    k = dataset.schema.num_joints
    return {"keypoints": np.zeros((0, k, 2)), "scores": np.zeros((0, k))}.get(name, np.zeros(0))


# --------------------------------------------------------------------------- one image (predict)


def crop_batch(
    image: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    input_size: tuple[int, int],
    mean: np.ndarray,
    std: np.ndarray,
    udp: bool = False,
) -> torch.Tensor:
    """One image, N people -> (N, 3, H, W) float32 normalised crops (as :class:`PoseDataset`).

    ``image`` is HxWx3 uint8 already in the network's colour order; ``centers``/``scales`` are
    (N, 2) in the official box units; ``udp`` selects the pixel-index crop of the UDP codec.
    The warps are cv2 calls (one per person, each fast); normalisation runs once over the
    whole uint8 batch.
    """
    w, h = input_size
    crops = np.empty((len(centers), h, w, 3), np.uint8)
    for i in range(len(centers)):
        matrix = get_affine_transform(centers[i], scales[i], 0.0, input_size, udp=udp)
        crops[i] = warp_crop(image, matrix, input_size)
    batch = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    scale = torch.from_numpy((1.0 / (255.0 * np.asarray(std, np.float32))).reshape(1, 3, 1, 1))
    offset = torch.from_numpy(
        (np.asarray(mean, np.float32) / np.asarray(std, np.float32)).reshape(1, 3, 1, 1)
    )
    return (batch * scale - offset).contiguous()


@dataclass(frozen=True)
class InferenceSettings:
    """How a :func:`estimate_poses` call runs: flip test, shift, decoder, precision, batch size."""

    flip: bool = True
    shift: str = "official"
    decode: str = "argmax"
    batch_size: int = 32
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False


@torch.inference_mode()
def estimate_poses(
    model: HeatmapFn,
    image: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    codec: HeatmapCodec,
    flip_index: list[int],
    mean: np.ndarray,
    std: np.ndarray,
    settings: InferenceSettings,
    device: torch.device,
    return_heatmaps: bool = False,
) -> tuple[np.ndarray, ...]:
    """Poses of N people in one image: (N, K, 2) keypoints in image pixels, (N, K) scores.

    Crops ``settings.batch_size`` people per network call; same flip test and decoder as
    :func:`predict_dataset`. ``return_heatmaps`` adds a third array, the (N, K, h, w) float32
    heatmaps that were decoded (for pictures: ``heatpose/heatmap_vis.py``).
    """
    k = len(flip_index)
    if len(centers) == 0:
        empty = (np.zeros((0, k, 2)), np.zeros((0, k), np.float32))
        h, w = codec.heatmap_size[1], codec.heatmap_size[0]
        return (*empty, np.zeros((0, k, h, w), np.float32)) if return_heatmaps else empty
    keypoints, scores, maps = [], [], []
    for start in range(0, len(centers), settings.batch_size):
        sl = slice(start, start + settings.batch_size)
        crops = crop_batch(image, centers[sl], scales[sl], codec.input_size, mean, std, codec.udp)
        crops = crops.to(device)
        if settings.channels_last:
            crops = crops.contiguous(memory_format=torch.channels_last)
        with autocast_context(device, settings.amp_dtype):
            heatmaps = predict_heatmaps(model, crops, settings.flip, flip_index, settings.shift)
        kp, sc = codec.decode_to_image(heatmaps, centers[sl], scales[sl], settings.decode)
        keypoints.append(kp)
        scores.append(sc)
        if return_heatmaps:
            maps.append(heatmaps.float().cpu().numpy())
    if return_heatmaps:
        return np.concatenate(keypoints), np.concatenate(scores), np.concatenate(maps)
    return np.concatenate(keypoints), np.concatenate(scores)
