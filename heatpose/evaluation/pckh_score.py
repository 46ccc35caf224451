"""PCKh predictions files and ``heatpose score --metric pckh``.

Predictions are in **0-based pixel coordinates**, one pose per ground-truth row, in the
annotation order:

* a JSON list ``[{"image": "005808361.jpg", "joints": [[x, y], ...K], "scores": [...K]}, ...]``
  (``scores`` optional; ``image`` is checked against the annotation row), or
* a NumPy ``.npy`` array of shape (N, K, 2).

Ground truth: an MPII json list / pose-hg ``.h5`` / official ``gt_<split>.mat``, or a LIP csv
(see ``data/mpii.py`` and ``data/lip.py``). Any mismatch (count, joints, NaN, an image that is
not in the ground truth) is one error line.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from heatpose.errors import HeatposeError
from heatpose.evaluation.pck import (
    PCKhGroundTruth,
    PCKhResult,
    compute_pckh,
    describe_result,
    format_pckh_table,
)
from heatpose.evaluation.pck_plots import plot_pckh_curve, plot_pckh_per_joint
from heatpose.io import atomic_write_json, load_json

PREDICTIONS_NAME = "pckh_predictions.json"
REPORT_NAME = "pckh.json"
CURVE_PNG = "pckh_curve.png"
PER_JOINT_PNG = "pckh_per_joint.png"


def load_pckh_ground_truth(path: str | Path) -> PCKhGroundTruth:
    """MPII (``.json`` / ``.h5`` / ``.mat``) or LIP (``.csv``) ground truth for PCKh."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        from heatpose.data.lip import read_lip_csv

        return read_lip_csv(path).ground_truth()
    if suffix in (".json", ".h5", ".hdf5", ".mat"):
        from heatpose.data.mpii import read_mpii_annotations

        gt = read_mpii_annotations(path).ground_truth()
        if not np.any(gt.head_size > 0):
            raise HeatposeError(f"{path}: no head sizes for PCKh ({gt.normalizer})")
        return gt
    raise HeatposeError(
        f"{path}: unknown ground-truth format for PCKh (expected MPII .json/.h5/.mat or LIP .csv)"
    )


def _check_pose_array(joints: np.ndarray, gt: PCKhGroundTruth, name: str) -> np.ndarray:
    n, k = len(gt), gt.schema.num_joints
    if joints.ndim != 3 or joints.shape[2] != 2:
        raise HeatposeError(f"{name}: predictions have shape {joints.shape}, expected (N, {k}, 2) x/y pixels")
    if joints.shape[0] != n:
        raise HeatposeError(
            f"{name}: {joints.shape[0]} poses, but {gt.source} has {n} people "
            "(one prediction per annotation row, in order)"
        )
    if joints.shape[1] != k:
        raise HeatposeError(
            f"{name}: {joints.shape[1]} joints per pose, expected {k} ({gt.schema.name} schema)"
        )
    bad = np.argwhere(~np.isfinite(joints))
    if len(bad):
        i, j, _ = bad[0]
        raise HeatposeError(f"{name}: pose {i} joint {j} is NaN or infinite")
    return joints


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _json_entry_joints(entry: Any, i: int, gt: PCKhGroundTruth, name: str, known: set[str]) -> list:
    where = f"{name}: entry {i}"
    if not isinstance(entry, dict) or "joints" not in entry:
        raise HeatposeError(f"{where} must be an object with 'image' and 'joints'")
    image = entry.get("image")
    if known and image is not None:
        if image not in known:
            raise HeatposeError(f"{where}: unknown image {image!r} (not in {gt.source})")
        if image != gt.image_names[i]:
            raise HeatposeError(
                f"{where} is image {image!r} but annotation row {i} is {gt.image_names[i]!r}: "
                "predictions must follow the annotation order"
            )
    joints = entry["joints"]
    k = gt.schema.num_joints
    if not isinstance(joints, list) or len(joints) != k:
        got = len(joints) if isinstance(joints, list) else type(joints).__name__
        raise HeatposeError(f"{where} has {got} joints, expected {k} ({gt.schema.name} schema)")
    for j, xy in enumerate(joints):
        if not isinstance(xy, list) or len(xy) < 2 or not all(_is_number(v) for v in xy[:2]):
            raise HeatposeError(f"{where} joint {j} must be [x, y] numbers, got {xy!r}")
        if not (math.isfinite(xy[0]) and math.isfinite(xy[1])):
            raise HeatposeError(f"{where} joint {j} is NaN or infinite")
    scores = entry.get("scores")
    if scores is not None and (not isinstance(scores, list) or len(scores) != k):
        raise HeatposeError(f"{where}: 'scores' must be a list of {k} numbers")
    return [xy[:2] for xy in joints]


def read_pckh_predictions(path: str | Path, gt: PCKhGroundTruth) -> np.ndarray:
    """(N, K, 2) float64 predictions from a JSON list or ``.npy`` array, checked against ``gt``."""
    path = Path(path)
    name = str(path)
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise HeatposeError(f"predictions file not found: {path}")
        try:
            joints = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise HeatposeError(f"{path}: not a readable .npy array ({err})") from None
        if not np.issubdtype(joints.dtype, np.number):
            raise HeatposeError(f"{path}: array of {joints.dtype}, expected numbers")
        return _check_pose_array(joints.astype(np.float64), gt, name)
    data = load_json(path, "predictions")
    if not isinstance(data, list):
        raise HeatposeError(f"{path}: predictions must be a JSON list (or a .npy array of shape (N, K, 2))")
    if len(data) != len(gt):
        raise HeatposeError(
            f"{path}: {len(data)} poses, but {gt.source} has {len(gt)} people "
            "(one prediction per annotation row, in order)"
        )
    known = {n for n in gt.image_names if n}
    rows = [_json_entry_joints(e, i, gt, name, known) for i, e in enumerate(data)]
    return _check_pose_array(np.asarray(rows, np.float64).reshape(len(gt), -1, 2), gt, name)


def predictions_json(image_names: list[str], joints: np.ndarray, scores: np.ndarray | None) -> list[dict]:
    """The predictions list: one entry per row, coordinates at full precision (rounding could move
    a joint across the threshold, so re-scoring the file gives exactly the printed numbers)."""
    out = []
    for i, name in enumerate(image_names):
        entry: dict[str, Any] = {"image": name, "joints": np.asarray(joints[i], np.float64).tolist()}
        if scores is not None:
            entry["scores"] = np.asarray(scores[i], np.float64).tolist()
        out.append(entry)
    return out


def save_pckh_report(
    result: PCKhResult, out_dir: str | Path, extra: dict[str, Any] | None = None
) -> list[Path]:
    """``pckh.json`` (columns, per joint, curve), ``pckh_curve.png`` and ``pckh_per_joint.png``."""
    out_dir = Path(out_dir)
    report = result.as_dict()
    report["curve"] = {
        "thresholds": [round(float(t), 2) for t in result.curve_thresholds],
        "per_joint": {
            n: [None if not np.isfinite(v) else float(v) for v in result.curve[:, j]]
            for j, n in enumerate(result.joint_names)
        },
    }
    if extra:
        report.update(extra)
    return [
        atomic_write_json(out_dir / REPORT_NAME, report, indent=2),
        plot_pckh_curve(result, out_dir / CURVE_PNG),
        plot_pckh_per_joint(result, out_dir / PER_JOINT_PNG),
    ]


def score_pckh_command(
    gt_path: str,
    preds_path: str,
    as_json: bool = False,
    out_dir: str | None = None,
    protocol: str = "official",
    out: TextIO | None = None,
) -> int:
    """``heatpose score --metric pckh --gt GT --preds PREDS [--json] [--out DIR] [--protocol P]``."""
    out = sys.stdout if out is None else out
    gt = load_pckh_ground_truth(gt_path)
    pred = read_pckh_predictions(preds_path, gt)
    result = compute_pckh(pred, gt, protocol=protocol)
    written = []
    if out_dir:
        written = save_pckh_report(result, out_dir, {"gt": str(gt_path), "preds": str(preds_path)})
    if as_json:
        out.write(json.dumps(result.as_dict()) + "\n")
        return 0
    out.write(f"PCKh of {preds_path} against {gt_path}\n")
    out.write("\n".join(describe_result(result)) + "\n")
    out.write(format_pckh_table(result) + "\n")
    for path in written:
        out.write(f"wrote {path}\n")
    return 0


def describe_single_person_boxes(dataset: str) -> str:
    """The header line naming the box source of an MPII/LIP evaluation."""
    if dataset == "lip":
        return "boxes: the whole image (LIP single-person crops, grown to any joint outside it)"
    return "boxes: annotation centre/scale (official: centre y + 15 x scale, scale x 1.25, 0-based)"


def report_pckh_eval(
    gt_path: str | Path,
    joints: np.ndarray,
    scores: np.ndarray | None,
    header: list[str],
    out_dir: str | Path,
    meta: dict[str, Any],
    out: TextIO | None = None,
) -> dict[str, float]:
    """Score ``heatpose eval`` predictions (N, K, 2) by PCKh; print the table, write the files.

    Writes ``pckh_predictions.json`` (the ``score --metric pckh`` format), ``pckh.json``, the
    two PNGs and ``eval_meta.json`` (``meta`` plus the metrics) into ``out_dir``.
    """
    out = sys.stdout if out is None else out
    gt = load_pckh_ground_truth(gt_path)
    pred = _check_pose_array(np.asarray(joints, np.float64), gt, "eval predictions")
    result = compute_pckh(pred, gt)
    out_dir = Path(out_dir)
    preds_file = atomic_write_json(out_dir / PREDICTIONS_NAME, predictions_json(gt.image_names, pred, scores))
    save_pckh_report(result, out_dir, {"gt": str(gt_path), "preds": str(preds_file)})
    metrics = result.metrics()
    atomic_write_json(out_dir / "eval_meta.json", {**meta, "metrics": metrics}, indent=2)
    out.write("\n".join([*header, *describe_result(result)]) + "\n")
    out.write(format_pckh_table(result) + "\n")
    out.write(f"predictions: {preds_file}\n")
    out.write(f"curve and per-joint chart: {out_dir / CURVE_PNG}, {out_dir / PER_JOINT_PNG}\n")
    return metrics


def score_pckh(joints: np.ndarray, gt_path: str | Path) -> dict[str, float]:
    """PCKh metrics (``PCKH_METRIC_NAMES``) of (N, K, 2) predictions against ``gt_path``."""
    gt = load_pckh_ground_truth(gt_path)
    pred = _check_pose_array(np.asarray(joints, np.float64), gt, "validation predictions")
    return compute_pckh(pred, gt).metrics()
