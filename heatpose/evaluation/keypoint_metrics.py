"""PCK, AUC and EPE for any keypoint set, on COCO-format ground truth and COCO results.

Why: COCO AP needs per-joint OKS sigmas that a custom keypoint set rarely has; PCK, AUC and
EPE need nothing but coordinates, and are what MMPose reports for hands, animals and faces.
The definitions follow MMPose (``mmpose/evaluation/functional/keypoint_eval.py``) so numbers
are comparable:

* **PCK@thr** (MMPose ``PCKAccuracy``, ``norm_item='bbox'``): a labelled joint is correct when
  ``||pred - gt|| / norm < thr`` (strictly less), ``norm`` = the larger side of the person's GT
  box, ``max(w, h)``; or, as an option, the distance between two named GT joints (e.g. a
  torso or head length). Per joint: the fraction of that joint's labelled instances that are
  correct; overall: the mean of the per-joint values over joints labelled at least once.
  MMPose's default ``thr`` is 0.05.
* **AUC** (MMPose ``AUC``): the mean of overall PCK at thresholds ``i / steps * norm_px``,
  ``i = 0 .. steps - 1``, with a fixed normaliser in pixels (defaults 30 px, 20 steps, i.e.
  0 to 28.5 px). Its maximum is therefore ``(steps - 1) / steps`` (0.95), not 1: the threshold 0
  counts nothing as correct, as in MMPose.
* **EPE** (MMPose ``EPE``): mean Euclidean distance in image pixels over all labelled joints of
  matched people (overall: pooled over joints, not a mean of per-joint means).

Matching: results carry no annotation id, so each GT person is matched, per image and
category, to at most one result, greedily by the smallest mean normalised distance over the
person's labelled joints. GT people with no result count as wrong for PCK/AUC and are left out
of EPE (the count is reported); results with no GT person do not change these metrics.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from heatpose.data.coco import check_coco_sections
from heatpose.errors import HeatposeError
from heatpose.io import load_json

METRICS = ("pck", "auc", "epe")


@dataclass
class MatchedKeypoints:
    """GT people and their matched predictions: (N, K, 2) ``gt``/``pred`` in image pixels,
    (N, K) bool ``labelled`` (GT visibility flag > 0), (N,) bool ``matched``, (N, 4) ``boxes``
    (x, y, w, h), K ``joint_names``."""

    gt: np.ndarray
    pred: np.ndarray
    labelled: np.ndarray
    matched: np.ndarray
    boxes: np.ndarray
    joint_names: tuple[str, ...]


def _keypoint_counts(gt: dict[str, Any], name: str) -> dict[Any, tuple[str, ...]]:
    names: dict[Any, tuple[str, ...]] = {}
    for cat in gt["categories"]:
        if isinstance(cat, dict) and isinstance(cat.get("keypoints"), list):
            names[cat.get("id")] = tuple(str(n) for n in cat["keypoints"])
    if not names:
        raise HeatposeError(f"{name}: no category has a 'keypoints' list of joint names")
    return names


def match_results(
    gt: dict[str, Any], results: list[dict[str, Any]], gt_name: str, res_name: str
) -> MatchedKeypoints:
    """Pair every non-crowd GT person that has labelled joints with at most one result."""
    check_coco_sections(gt, gt_name)
    names_by_cat = _keypoint_counts(gt, gt_name)
    if len({len(n) for n in names_by_cat.values()}) > 1:
        raise HeatposeError(f"{gt_name}: categories have different keypoint counts; score one at a time")
    joint_names = next(iter(names_by_cat.values()))
    k = len(joint_names)
    if not isinstance(results, list):
        raise HeatposeError(f"{res_name}: results must be a JSON list of objects")
    preds_by_key: dict[tuple, list[np.ndarray]] = {}
    for i, r in enumerate(results):
        if not isinstance(r, dict) or "image_id" not in r or not isinstance(r.get("keypoints"), list):
            raise HeatposeError(f"{res_name}: result {i} needs image_id and a keypoints list")
        if len(r["keypoints"]) != 3 * k:
            raise HeatposeError(
                f"{res_name}: result {i} has {len(r['keypoints']) / 3:g} keypoints, GT has {k}"
            )
        xy = np.asarray(r["keypoints"], dtype=np.float64).reshape(k, 3)[:, :2]
        if not np.isfinite(xy).all():
            raise HeatposeError(f"{res_name}: result {i} has NaN or infinite keypoints")
        preds_by_key.setdefault((r["image_id"], r.get("category_id", 1)), []).append(xy)

    gts, labels, boxes, keys = [], [], [], []
    for i, ann in enumerate(gt["annotations"]):
        if (
            not isinstance(ann, dict)
            or ann.get("iscrowd", 0)
            or ann.get("category_id", 1) not in names_by_cat
        ):
            continue
        kpts = ann.get("keypoints")
        if not isinstance(kpts, list) or len(kpts) != 3 * k:
            raise HeatposeError(f"{gt_name}: annotation {ann.get('id', i)} does not have {k} keypoints")
        arr = np.asarray(kpts, dtype=np.float64).reshape(k, 3)
        if not (arr[:, 2] > 0).any():
            continue
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise HeatposeError(f"{gt_name}: annotation {ann.get('id', i)} has no [x, y, w, h] bbox")
        gts.append(arr[:, :2])
        labels.append(arr[:, 2] > 0)
        boxes.append(np.asarray(bbox, dtype=np.float64))
        keys.append((ann.get("image_id"), ann.get("category_id", 1)))
    if not gts:
        raise HeatposeError(f"{gt_name}: no GT person with labelled keypoints")
    gt_xy, labelled, box_arr = np.stack(gts), np.stack(labels), np.stack(boxes)
    pred = np.zeros_like(gt_xy)
    matched = np.zeros(len(gts), dtype=bool)
    scale = np.maximum(box_arr[:, 2:].max(axis=1), 1e-6)
    by_key: dict[tuple, list[int]] = {}
    for n, key in enumerate(keys):
        by_key.setdefault(key, []).append(n)
    for key, people in by_key.items():
        cands = preds_by_key.get(key, [])
        if not cands:
            continue
        cost = np.array(
            [
                [np.linalg.norm(c - gt_xy[n], axis=1)[labelled[n]].mean() / scale[n] for c in cands]
                for n in people
            ]
        )
        while np.isfinite(cost).any():  # greedy: the closest pair first
            a, b = np.unravel_index(np.argmin(cost), cost.shape)
            pred[people[a]], matched[people[a]] = cands[b], True
            cost[a, :], cost[:, b] = np.inf, np.inf
    return MatchedKeypoints(gt_xy, pred, labelled, matched, box_arr, joint_names)


def normalisers(m: MatchedKeypoints, norm: str) -> np.ndarray:
    """(N,) per-person normaliser: ``"bbox"`` = max(w, h) of the GT box, or ``"A,B"`` = the
    distance between GT joints named A and B (NaN where either is unlabelled)."""
    if norm == "bbox":
        return m.boxes[:, 2:].max(axis=1)
    parts = [p.strip() for p in norm.split(",")]
    if len(parts) != 2 or not all(p in m.joint_names for p in parts):
        raise HeatposeError(
            f"--norm {norm!r}: use 'bbox' or two joint names 'A,B' from: {', '.join(m.joint_names)}"
        )
    a, b = (m.joint_names.index(p) for p in parts)
    dist = np.linalg.norm(m.gt[:, a] - m.gt[:, b], axis=1)
    return np.where(m.labelled[:, a] & m.labelled[:, b], dist, np.nan)


def _distances(m: MatchedKeypoints, norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) normalised distances (inf for unmatched people) and the (N, K) mask of joints
    that count: labelled, with a positive finite normaliser."""
    valid = m.labelled & (np.isfinite(norm) & (norm > 0))[:, None]
    d = np.linalg.norm(m.pred - m.gt, axis=2) / np.where(valid, norm[:, None], 1.0)
    d[~m.matched] = np.inf
    return d, valid


def pck(dist: np.ndarray, valid: np.ndarray, thr: float) -> tuple[np.ndarray, float]:
    """Per-joint PCK (NaN for a joint never labelled) and their mean over labelled joints."""
    counts = valid.sum(axis=0)
    correct = ((dist < thr) & valid).sum(axis=0)
    per_joint = np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)
    overall = float(np.nanmean(per_joint)) if (counts > 0).any() else float("nan")
    return per_joint, overall


def compute_metric(
    m: MatchedKeypoints,
    metric: str,
    thr: float = 0.05,
    norm: str = "bbox",
    auc_px: float = 30.0,
    auc_steps: int = 20,
) -> dict[str, Any]:
    """One metric as a dict: ``metric``, ``overall``, ``per_joint`` (name -> value), and
    ``definition`` (the normaliser and thresholds in words), plus people counts."""
    out: dict[str, Any] = {
        "metric": metric,
        "people": len(m.gt),
        "matched_people": int(m.matched.sum()),
        "labelled_joints": int(m.labelled.sum()),
    }
    if metric == "pck":
        if not thr > 0:
            raise HeatposeError(f"--thr {thr}: must be > 0")
        dist, valid = _distances(m, normalisers(m, norm))
        per_joint, overall = pck(dist, valid, thr)
        what = "max(w, h) of the GT box" if norm == "bbox" else f"the GT distance {norm.replace(',', ' - ')}"
        out["definition"] = f"PCK@{thr:g}: correct when distance / ({what}) < {thr:g} (MMPose PCKAccuracy)"
        out["excluded_joints"] = int((m.labelled & ~valid).sum())
    elif metric == "auc":
        if not (auc_px > 0 and auc_steps >= 1):
            raise HeatposeError("--auc-norm must be > 0 px and --auc-steps >= 1")
        dist, valid = _distances(m, np.full(len(m.gt), float(auc_px)))
        curves = [pck(dist, valid, i / auc_steps) for i in range(auc_steps)]
        per_joint = np.mean([c[0] for c in curves], axis=0)
        overall = float(np.mean([c[1] for c in curves]))
        top = (auc_steps - 1) / auc_steps * auc_px
        out["definition"] = (
            f"AUC of PCK over {auc_steps} thresholds 0 .. {top:g} px (i / {auc_steps} x {auc_px:g} px), "
            f"mean of overall PCK (MMPose AUC; maximum {(auc_steps - 1) / auc_steps:g})"
        )
    elif metric == "epe":
        d = np.linalg.norm(m.pred - m.gt, axis=2)
        valid = m.labelled & m.matched[:, None]
        counts = valid.sum(axis=0)
        per_joint = np.where(counts > 0, (d * valid).sum(axis=0) / np.maximum(counts, 1), np.nan)
        overall = float(d[valid].mean()) if valid.any() else float("nan")
        out["definition"] = (
            "EPE: mean distance in image pixels over labelled joints of matched people (MMPose EPE)"
        )
    else:
        raise HeatposeError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    out["overall"] = overall
    out["per_joint"] = {
        n: (None if np.isnan(v) else float(v)) for n, v in zip(m.joint_names, per_joint, strict=True)
    }
    return out


def format_metric(result: dict[str, Any]) -> str:
    unit = " px" if result["metric"] == "epe" else ""
    width = max(len(n) for n in [*result["per_joint"], "overall"]) + 2
    lines = [
        result["definition"],
        f"people: {result['people']} GT, {result['matched_people']} matched to a result; "
        f"{result['labelled_joints']} labelled joints",
    ]
    for name, v in result["per_joint"].items():
        lines.append(f"  {name:<{width}}{'n/a (never labelled)' if v is None else f'{v:.4f}{unit}'}")
    lines.append(f"  {'overall':<{width}}{result['overall']:.4f}{unit}")
    return "\n".join(lines)


def plot_per_joint(result: dict[str, Any], path: str | Path) -> Path:
    """A horizontal bar per joint (and the overall value as a line), saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from heatpose.io import atomic_write

    names = list(result["per_joint"])
    values = [np.nan if v is None else v for v in result["per_joint"].values()]
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(names) + 1.6))
    y = np.arange(len(names))
    bars = ax.barh(y, np.nan_to_num(values), color="#4c72b0")
    ax.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.3f}" for v in values], fontsize=7, padding=2)
    ax.axvline(result["overall"], color="#c44e52", linestyle="--", label=f"overall {result['overall']:.3f}")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("pixels" if result["metric"] == "epe" else result["metric"].upper())
    if result["metric"] != "epe":
        ax.set_xlim(0, 1)
    ax.set_title(result["definition"], fontsize=7, wrap=True)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return out


def keypoint_metric_command(
    gt_path: str,
    preds_path: str,
    metric: str,
    thr: float = 0.05,
    norm: str = "bbox",
    auc_px: float = 30.0,
    auc_steps: int = 20,
    as_json: bool = False,
    plot: str | None = None,
    out: TextIO | None = None,
) -> int:
    """``heatpose score --metric pck|auc|epe``: print the metric, optionally plot it; return 0."""
    out = sys.stdout if out is None else out
    gt = load_json(gt_path, "ground truth")
    if not isinstance(gt, dict):
        raise HeatposeError(f"{gt_path}: COCO ground truth must be a JSON object")
    matched = match_results(gt, load_json(preds_path, "results"), gt_path, preds_path)
    result = compute_metric(matched, metric, thr, norm, auc_px, auc_steps)
    if plot:
        plot_per_joint(result, plot)
    if as_json:
        out.write(json.dumps(result) + "\n")
    else:
        out.write(f"{metric.upper()} of {preds_path} against {gt_path}\n{format_metric(result)}\n")
        if plot:
            out.write(f"per-joint chart: {plot}\n")
    return 0
