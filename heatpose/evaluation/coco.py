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

from heatpose.data.coco_gt import CocoGT, is_number, load_coco_gt, normalize_coco_gt, note_line
from heatpose.errors import HeatposeError
from heatpose.evaluation.nms import COCO_OKS_SIGMAS, oks_nms
from heatpose.io import load_json

# Order of COCOeval.stats for iouType="keypoints".
STAT_NAMES: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


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


def load_gt(gt: str | Path | COCO | CocoGT, category: str | int = "") -> CocoGT:
    """Keypoint ground truth, checked and normalised by the same step the dataset reader uses."""
    if isinstance(gt, CocoGT):
        return gt
    if isinstance(gt, COCO):
        return normalize_coco_gt(gt.dataset, "ground truth", category)
    return load_coco_gt(gt, category)


def _validate_result(r: Any, i: int, name: str, gt: CocoGT) -> dict[str, Any]:
    """A checked copy of result ``r`` with internal image and category ids."""
    if not isinstance(r, dict):
        raise HeatposeError(f"{name}: result {i} is not an object")
    for key in ("image_id", "category_id", "keypoints", "score"):
        if key not in r:
            raise HeatposeError(f"{name}: result {i} has no {key!r}")
    image_id, cat_id, kpts, score = r["image_id"], r["category_id"], r["keypoints"], r["score"]
    try:
        image = gt.images.find(image_id)
        category = gt.categories.find(cat_id)
    except HeatposeError as err:
        raise HeatposeError(f"{name}: result {i}: {err}") from None
    if image is None:
        raise HeatposeError(f"{name}: result {i} has image_id {image_id!r}, which is not in the ground truth")
    if category is None:
        known = sorted(map(repr, gt.categories.original.values()))
        raise HeatposeError(
            f"{name}: result {i} has category_id {cat_id!r}; ground truth categories are {known}"
        )
    if not isinstance(kpts, list) or not all(is_number(v) for v in kpts):
        raise HeatposeError(f"{name}: result {i}: 'keypoints' must be a flat list of numbers [x, y, score]*K")
    if category == gt.category_id and len(kpts) != 3 * gt.num_joints:
        got = f"{len(kpts) // 3} keypoints" if len(kpts) % 3 == 0 else f"{len(kpts)} keypoint numbers"
        raise HeatposeError(f"{name}: result {i} has {got}, GT has {gt.num_joints}")
    if len(kpts) == 0 or len(kpts) % 3:
        raise HeatposeError(f"{name}: result {i} has {len(kpts)} keypoint numbers, not a multiple of 3")
    if not all(math.isfinite(v) for v in kpts):
        raise HeatposeError(f"{name}: result {i} has NaN or infinite keypoint values")
    if not is_number(score) or not math.isfinite(score):
        raise HeatposeError(f"{name}: result {i} has score {score!r}, expected a finite number")
    return {**copy.deepcopy(r), "image_id": image, "category_id": category}


def load_results(results: list[dict] | str | Path, gt: CocoGT) -> list[dict]:
    """Validated copies of the results of ``gt``'s category, with internal ids (pycocotools'
    ``loadRes`` mutates what it gets). Ids may be written as in the GT file, as integral floats
    (``785.0``), or as the int/decimal-string spelling of an integer id."""
    if isinstance(results, (str, Path)):
        name = str(results)
        data = load_json(results, "results")
    else:
        name, data = "results", results
    if not isinstance(data, list):
        raise HeatposeError(f"{name}: results must be a JSON list of objects, got {type(data).__name__}")
    if not data:
        raise HeatposeError(f"{name}: no predictions (the results list is empty)")
    checked = [_validate_result(r, i, name, gt) for i, r in enumerate(data)]
    ours = [r for r in checked if r["category_id"] == gt.category_id]
    if not ours:
        raise HeatposeError(f"{name}: no result has the scored {gt.describe_category()}")
    return ours


# --------------------------------------------------------------------------- scoring


def evaluate_keypoints_with_summary(
    gt: str | Path | COCO | CocoGT,
    results: list[dict] | str | Path,
    sigmas: np.ndarray | None = None,
    category: str | int = "",
) -> tuple[dict[str, float], str]:
    """COCOeval keypoint stats plus pycocotools' own summary text (its prints, captured).

    Scores only the GT's chosen category (``params.catIds``). A stat COCOeval reports as -1
    (no GT in its area range) is NaN here: undefined, never a score.
    """
    coco_gt = load_gt(gt, category)
    dets = load_results(results, coco_gt)
    k = coco_gt.num_joints
    n_sigmas = len(COCO_OKS_SIGMAS if sigmas is None else sigmas)
    if n_sigmas != k:
        raise HeatposeError(
            f"ground truth {coco_gt.describe_category()} has {k} keypoints "
            f"but {n_sigmas} OKS sigmas are in use"
        )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = coco_gt.coco()
        coco_dt = coco.loadRes(dets)
        ev = COCOeval(coco, coco_dt, "keypoints")
        if sigmas is not None:  # else keep pycocotools' own COCO-17 sigmas, bit for bit
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.params.catIds = [coco_gt.category_id]
        ev.evaluate()
        ev.accumulate()
    with contextlib.redirect_stdout(io.StringIO()) as summary:
        ev.summarize()
    stats = {name: (float(v) if v >= 0 else math.nan) for name, v in zip(STAT_NAMES, ev.stats, strict=True)}
    return stats, summary.getvalue()


def evaluate_keypoints(
    gt: str | Path | COCO | CocoGT,
    results: list[dict] | str | Path,
    sigmas: np.ndarray | None = None,
    category: str | int = "",
) -> dict[str, float]:
    """COCO keypoint AP/AR (keys ``STAT_NAMES``); NaN means undefined (no GT in that area range)."""
    return evaluate_keypoints_with_summary(gt, results, sigmas, category)[0]


def is_defined(value: float | None) -> bool:
    """False for a metric COCOeval could not compute (NaN here, -1 in pycocotools, None in json)."""
    return value is not None and math.isfinite(value) and value >= 0


def stats_to_json(stats: dict[str, float]) -> dict[str, float | None]:
    """Undefined stats as null: json has no NaN."""
    return {k: (v if is_defined(v) else None) for k, v in stats.items()}


def format_table(stats: dict[str, float]) -> str:
    """Two-row AP/AR table; undefined (NaN or -1) entries show as n/a."""
    cols = (("", "0.50:0.95"), ("50", "0.50"), ("75", "0.75"), ("m", "medium"), ("l", "large"))
    lines = ["      " + "".join(f"{label:>11}" for _, label in cols)]
    for kind in ("AP", "AR"):
        cells = []
        for suffix, _ in cols:
            v = stats.get(kind + suffix)
            cells.append(f"{f'{v:.3f}' if is_defined(v) else 'n/a':>11}")
        lines.append(f"{kind:<6}" + "".join(cells))
    return "\n".join(lines)


# Area ranges of COCOeval's keypoint summary: which stats need GT in which range.
AREA_RANGES: dict[str, tuple[float, float]] = {"m": (32.0**2, 96.0**2), "l": (96.0**2, 1e10)}


def undefined_metrics(gt: CocoGT, names: tuple[str, ...]) -> dict[str, str]:
    """Metrics among ``names`` that COCOeval reports as -1 on this GT, with the reason.

    A stat is undefined when no non-crowd person with a labelled keypoint falls in its area
    range (COCOeval: no GT to compute precision/recall against).
    """
    areas = [a["area"] for a in gt.dataset["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0]
    out = {}
    for metric in names:
        lo, hi = AREA_RANGES.get(metric[-1], (0.0, 1e10))
        if not any(lo <= a <= hi for a in areas):
            rng = f"area in [{lo:g}, {hi:g}]" if metric[-1] in "ml" else "any area"
            largest = f"; largest person area {max(areas):g}" if areas else ""
            out[metric] = f"no non-crowd person with labelled keypoints and {rng} in {gt.path}{largest}"
    return out


def to_original_ids(results: list[dict[str, Any]], gt: CocoGT) -> list[dict[str, Any]]:
    """Results with internal image/category ids -> the ids the GT file itself uses."""
    return [
        {
            **r,
            "image_id": gt.original_image_id(r["image_id"]),
            "category_id": gt.categories.original[r["category_id"]],
        }
        for r in results
    ]


def describe_gt(gt: CocoGT) -> list[str]:
    """Header lines: which category was scored, and what the normaliser derived."""
    notes = [n.removeprefix(f"{gt.path}: ") for n in gt.notes]
    notes = [n if n.startswith("warning: ") else f"note: {n}" for n in notes]
    return [f"ground truth: {gt.path}, {gt.describe_category()}, {gt.num_joints} keypoints", *notes]


def score_command(
    gt_path: str,
    preds_path: str,
    as_json: bool = False,
    out: TextIO | None = None,
    sigmas: np.ndarray | None = None,
    category: str | int = "",
) -> int:
    """``heatpose score --gt GT.json --preds RESULTS.json [--json]``: print the stats, return 0.

    ``sigmas``: OKS sigmas of a custom keypoint set (None: pycocotools' COCO-17 ones);
    ``category``: the GT category to score (docs/coco_json.md). With ``--json`` the notes about
    the GT go to stderr and undefined stats are null.
    """
    out = sys.stdout if out is None else out
    gt = load_gt(gt_path, category)
    stats = evaluate_keypoints(gt, preds_path, sigmas=sigmas)
    if as_json:
        for line in gt.notes:
            print(note_line(line), file=sys.stderr)
        out.write(json.dumps(stats_to_json(stats)) + "\n")
    else:
        out.write(f"COCO keypoint evaluation of {preds_path} against {gt_path}\n")
        out.write("\n".join(describe_gt(gt)) + "\n")
        out.write(format_table(stats) + "\n")
    return 0
