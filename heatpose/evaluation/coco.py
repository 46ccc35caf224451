"""COCO keypoint evaluation following the official Simple Baselines protocol.

Predictions become COCO result dicts the way microsoft/human-pose-estimation.pytorch does it
(``lib/dataset/coco.py``: rescore by mean confident-joint score times box score, then OKS-NMS
per image using the box-scale area), and are scored with pycocotools' ``COCOeval`` so the
numbers are the ones papers report. Inputs are validated first because pycocotools answers
bad input with bare asserts, KeyErrors or broadcasting errors deep inside its loops.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from heatpose.data.coco import check_coco_sections
from heatpose.errors import HeatposeError
from heatpose.evaluation.nms import oks_nms
from heatpose.io import load_json

# Order of COCOeval.stats for iouType="keypoints".
STAT_NAMES: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")

_GT_ANN_KEYS = ("id", "image_id", "category_id", "keypoints", "num_keypoints", "area", "bbox", "iscrowd")


# --------------------------------------------------------------------------- predictions -> results


def rescore(keypoint_scores: np.ndarray, box_scores: np.ndarray, thr: float = 0.2) -> np.ndarray:
    """Pose score = mean of the joint scores above ``thr`` (0 if none) times the box score.

    Joints are summed left to right, as the official loop does, so ties in NMS and in the
    COCOeval ranking break the same way.
    """
    kps = np.asarray(keypoint_scores, dtype=np.float64)
    box = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    if kps.ndim != 2 or kps.shape[0] != box.shape[0]:
        raise ValueError(f"keypoint_scores {kps.shape} and box_scores {box.shape} do not match")
    total = np.zeros(kps.shape[0])
    count = np.zeros(kps.shape[0], dtype=np.int64)
    for j in range(kps.shape[1]):
        valid = kps[:, j] > thr
        total = total + np.where(valid, kps[:, j], 0.0)
        count += valid
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return mean * box


def make_coco_results(
    image_ids: Sequence[int] | np.ndarray,
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray,
    box_scores: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray | None = None,
    nms_thr: float | None = 0.9,
    rescore_thr: float = 0.2,
    category_id: int = 1,
) -> list[dict[str, Any]]:
    """Turn per-detection poses into COCO keypoint result dicts.

    ``keypoints`` is (N, K, 2) in image pixels, ``keypoint_scores`` (N, K) the heatmap maxima,
    ``areas`` (N,) the box-scale areas ``s[0] * s[1] * 200**2`` the official code feeds to
    OKS-NMS. Images keep their first-seen order; within an image results are in NMS order
    (best first), or input order when ``nms_thr`` is None.
    """
    xy = np.asarray(keypoints, dtype=np.float64)
    kps = np.asarray(keypoint_scores, dtype=np.float64)
    ids = np.asarray(image_ids).reshape(-1).tolist()
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    n = len(ids)
    if xy.ndim != 3 or xy.shape[2] != 2 or xy.shape[:2] != kps.shape or xy.shape[0] != n:
        raise ValueError(f"shapes do not match: keypoints {xy.shape}, scores {kps.shape}, {n} image ids")
    if areas.shape[0] != n:
        raise ValueError(f"{areas.shape[0]} areas for {n} poses")
    poses = np.concatenate([xy, kps[:, :, None]], axis=2)
    scores = rescore(kps, box_scores, rescore_thr)

    by_image: dict[Any, list[int]] = {}
    for i, image_id in enumerate(ids):
        by_image.setdefault(image_id, []).append(i)

    results: list[dict[str, Any]] = []
    for image_id, members in by_image.items():
        idx = np.asarray(members)
        if nms_thr is None:
            keep = list(range(len(idx)))
        else:
            keep = oks_nms(poses[idx], scores[idx], areas[idx], nms_thr, sigmas)
        for k in keep:
            i = int(idx[k])
            results.append(
                {
                    "image_id": image_id,
                    "category_id": category_id,
                    "keypoints": [float(v) for v in poses[i].reshape(-1)],
                    "score": float(scores[i]),
                }
            )
    return results


# --------------------------------------------------------------------------- loading and validation


def _validate_gt(data: Any, name: str) -> None:
    check_coco_sections(data, name)
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise HeatposeError(f"{name}: images[{i}] has no 'id'")
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat:
            raise HeatposeError(f"{name}: categories[{i}] has no 'id'")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise HeatposeError(f"{name}: annotations[{i}] is not an object")
        missing = [k for k in _GT_ANN_KEYS if k not in ann]
        if missing:
            raise HeatposeError(
                f"{name}: annotations[{i}] lacks {', '.join(map(repr, missing))} (not keypoint ground truth?)"
            )


def load_gt(gt: str | Path | COCO) -> COCO:
    """A pycocotools ``COCO`` for keypoint ground truth, validated, without pycocotools' prints."""
    if isinstance(gt, COCO):
        return gt
    data = load_json(gt, "ground truth")
    _validate_gt(data, str(gt))
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _num_keypoints_per_category(coco: COCO) -> dict[Any, int]:
    """K for each GT category: its ``keypoints`` name list, else the length of its GT keypoints."""
    counts: dict[Any, int] = {}
    for cat_id, cat in coco.cats.items():
        if isinstance(cat.get("keypoints"), list):
            counts[cat_id] = len(cat["keypoints"])
    for ann in coco.dataset["annotations"]:
        cat_id = ann.get("category_id")
        if cat_id not in counts and isinstance(ann.get("keypoints"), list):
            counts[cat_id] = len(ann["keypoints"]) // 3
    return counts


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _validate_result(r: Any, i: int, name: str, coco: COCO, counts: dict[Any, int]) -> None:
    if not isinstance(r, dict):
        raise HeatposeError(f"{name}: result {i} is not an object")
    for key in ("image_id", "category_id", "keypoints", "score"):
        if key not in r:
            raise HeatposeError(f"{name}: result {i} has no {key!r}")
    image_id, cat_id, kpts, score = r["image_id"], r["category_id"], r["keypoints"], r["score"]
    if not isinstance(image_id, (int, str)) or isinstance(image_id, bool) or image_id not in coco.imgs:
        raise HeatposeError(f"{name}: result {i} has image_id {image_id!r}, which is not in the ground truth")
    if not isinstance(cat_id, (int, str)) or isinstance(cat_id, bool) or cat_id not in coco.cats:
        raise HeatposeError(
            f"{name}: result {i} has category_id {cat_id!r}; ground truth categories are {sorted(coco.cats)}"
        )
    if not isinstance(kpts, list) or not all(_is_number(v) for v in kpts):
        raise HeatposeError(f"{name}: result {i}: 'keypoints' must be a flat list of numbers [x, y, score]*K")
    expected = counts.get(cat_id)
    if expected is not None and len(kpts) != 3 * expected:
        got = f"{len(kpts) // 3} keypoints" if len(kpts) % 3 == 0 else f"{len(kpts)} keypoint numbers"
        raise HeatposeError(f"{name}: result {i} has {got}, GT has {expected}")
    if len(kpts) == 0 or len(kpts) % 3:
        raise HeatposeError(f"{name}: result {i} has {len(kpts)} keypoint numbers, not a multiple of 3")
    if not all(math.isfinite(v) for v in kpts):
        raise HeatposeError(f"{name}: result {i} has NaN or infinite keypoint values")
    if not _is_number(score) or not math.isfinite(score):
        raise HeatposeError(f"{name}: result {i} has score {score!r}, expected a finite number")


def load_results(results: list[dict] | str | Path, coco_gt: COCO) -> list[dict]:
    """Validated deep copy of keypoint results (pycocotools' ``loadRes`` mutates what it gets)."""
    if isinstance(results, (str, Path)):
        name = str(results)
        data = load_json(results, "results")
    else:
        name, data = "results", results
    if not isinstance(data, list):
        raise HeatposeError(f"{name}: results must be a JSON list of objects, got {type(data).__name__}")
    if not data:
        raise HeatposeError(f"{name}: no predictions (the results list is empty)")
    counts = _num_keypoints_per_category(coco_gt)
    for i, r in enumerate(data):
        _validate_result(r, i, name, coco_gt, counts)
    return copy.deepcopy(data)


# --------------------------------------------------------------------------- scoring


def _check_sigmas(coco: COCO, sigmas: np.ndarray) -> None:
    for cat_id, k in _num_keypoints_per_category(coco).items():
        if k != len(sigmas):
            raise HeatposeError(
                f"ground truth category {cat_id} has {k} keypoints but {len(sigmas)} OKS sigmas are in use"
            )


def evaluate_keypoints_with_summary(
    gt: str | Path | COCO, results: list[dict] | str | Path, sigmas: np.ndarray | None = None
) -> tuple[dict[str, float], str]:
    """COCOeval keypoint stats plus pycocotools' own summary text (its prints, captured)."""
    coco_gt = load_gt(gt)
    dets = load_results(results, coco_gt)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        if sigmas is not None:  # else keep pycocotools' own COCO-17 sigmas, bit for bit
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        _check_sigmas(coco_gt, ev.params.kpt_oks_sigmas)
        ev.evaluate()
        ev.accumulate()
    with contextlib.redirect_stdout(io.StringIO()) as summary:
        ev.summarize()
    stats = {name: float(v) for name, v in zip(STAT_NAMES, ev.stats, strict=True)}
    return stats, summary.getvalue()


def evaluate_keypoints(
    gt: str | Path | COCO, results: list[dict] | str | Path, sigmas: np.ndarray | None = None
) -> dict[str, float]:
    """COCO keypoint AP/AR (keys ``STAT_NAMES``); -1.0 means undefined (no GT in that area range)."""
    return evaluate_keypoints_with_summary(gt, results, sigmas)[0]


def format_table(stats: dict[str, float]) -> str:
    """Two-row AP/AR table; undefined (-1) entries show as n/a."""
    cols = (("", "0.50:0.95"), ("50", "0.50"), ("75", "0.75"), ("m", "medium"), ("l", "large"))
    lines = ["      " + "".join(f"{label:>11}" for _, label in cols)]
    for kind in ("AP", "AR"):
        cells = []
        for suffix, _ in cols:
            v = stats.get(kind + suffix)
            cells.append(f"{'n/a' if v is None or v < 0 else f'{v:.3f}':>11}")
        lines.append(f"{kind:<6}" + "".join(cells))
    return "\n".join(lines)


def score_command(
    gt_path: str,
    preds_path: str,
    as_json: bool = False,
    out: TextIO | None = None,
    sigmas: np.ndarray | None = None,
) -> int:
    """``heatpose score --gt GT.json --preds RESULTS.json [--json]``: print the stats, return 0.

    ``sigmas``: OKS sigmas of a custom keypoint set (None: pycocotools' COCO-17 ones)."""
    out = sys.stdout if out is None else out
    stats = evaluate_keypoints(gt_path, preds_path, sigmas=sigmas)
    if as_json:
        out.write(json.dumps(stats) + "\n")
    else:
        out.write(f"COCO keypoint evaluation of {preds_path} against {gt_path}\n")
        out.write(format_table(stats) + "\n")
    return 0
