"""Greedy non-maximum suppression over poses (OKS) and boxes (IoU).

The OKS variant reproduces ``lib/nms/nms.py`` of microsoft/human-pose-estimation.pytorch,
so that COCO numbers computed here match the published Simple Baselines protocol: same
formula, same operation order, same visiting order (``argsort()[::-1]``) and the same
threshold rule (a candidate survives while its overlap is ``<= thresh``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_EPS = np.spacing(1)

# The COCO-17 sigmas written the way the official code and pycocotools write them. ``/ 10.0``
# makes a few entries differ from the literals in ``COCO17.sigmas`` by one ulp; keeping the
# official expression keeps OKS bit-identical to theirs.
# fmt: off
_SIGMAS_X10 = [
    0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89,
]
# fmt: on
COCO_OKS_SIGMAS = np.array(_SIGMAS_X10) / 10.0


def _default_sigmas(sigmas: np.ndarray | None) -> np.ndarray:
    return COCO_OKS_SIGMAS if sigmas is None else np.asarray(sigmas, dtype=np.float64)


def oks_iou(
    g: np.ndarray,
    d: np.ndarray,
    area_g: float,
    area_d: np.ndarray,
    sigmas: np.ndarray | None = None,
    vis_thr: float | None = None,
) -> np.ndarray:
    """OKS between one pose ``g`` (K, 3) and poses ``d`` (N, K, 3): returns (N,).

    The scale is the mean of the two areas (not the GT area alone, as in COCOeval) because
    neither pose is ground truth here. With ``vis_thr`` the mean runs only over joints whose
    score is above it in both poses; a pair with no such joint has OKS 0.

    Note: the official code computes the mask as ``list(vg > t) and list(vd > t)``, which in
    Python evaluates to the mask of ``d`` alone. The official COCO path never sets the
    threshold, so this only matters if you pass ``vis_thr``; here "both" means both.
    """
    g = np.asarray(g, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64).reshape(-1, *g.shape)
    area_d = np.asarray(area_d, dtype=np.float64).reshape(-1)
    variances = (_default_sigmas(sigmas) * 2) ** 2
    dx = d[:, :, 0] - g[None, :, 0]
    dy = d[:, :, 1] - g[None, :, 1]
    scale = (area_g + area_d[:, None]) / 2 + _EPS
    e = (dx**2 + dy**2) / variances / scale / 2
    if vis_thr is None:
        return np.sum(np.exp(-e), axis=1) / e.shape[1]
    mask = (g[None, :, 2] > vis_thr) & (d[:, :, 2] > vis_thr)
    count = mask.sum(axis=1)
    total = np.sum(np.where(mask, np.exp(-e), 0.0), axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    thresh: float = 0.9,
    sigmas: np.ndarray | None = None,
    vis_thr: float | None = None,
) -> list[int]:
    """Indices of the poses kept by greedy OKS-NMS, best score first.

    ``keypoints`` is (N, K, 3) with (x, y, score); ``areas`` are the per-pose scale areas.
    A lower-scored pose is suppressed when its OKS with a kept pose is ``> thresh``.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64)
    if keypoints.shape[0] == 0:
        return []
    return _greedy_nms(
        scores,
        lambda i, rest: oks_iou(keypoints[i], keypoints[rest], areas[i], areas[rest], sigmas, vis_thr),
        thresh,
    )


def _greedy_nms(
    scores: np.ndarray, overlap: Callable[[int, np.ndarray], np.ndarray], thresh: float
) -> list[int]:
    """Visit by descending score (official ``argsort()[::-1]`` tie order); drop overlaps ``> thresh``."""
    order = scores.argsort()[::-1]
    keep: list[int] = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[np.where(overlap(i, rest) <= thresh)[0]]
    return keep


def box_iou(box: np.ndarray, boxes: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """IoU of one xyxy box against (N, 4) xyxy boxes.

    ``offset=1.0`` reproduces the py-faster-rcnn "+1 pixel" convention of the official code;
    the default treats coordinates as continuous.
    """
    box = np.asarray(box, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = (box[2] - box[0] + offset) * (box[3] - box[1] + offset)
    areas = (boxes[:, 2] - boxes[:, 0] + offset) * (boxes[:, 3] - boxes[:, 1] + offset)
    w = np.maximum(0.0, np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + offset)
    h = np.maximum(0.0, np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + offset)
    inter = w * h
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float, offset: float = 0.0) -> list[int]:
    """Indices of xyxy boxes kept by greedy NMS, best score first (IoU ``> iou_thr`` is suppressed)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    return _greedy_nms(scores, lambda i, rest: box_iou(boxes[i], boxes[rest], offset), iou_thr)
