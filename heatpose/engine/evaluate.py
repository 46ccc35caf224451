"""Batched inference over a dataset (flip test, decode, back-projection) and COCO evaluation.

``heatpose eval CONFIG --checkpoint CKPT [--boxes gt|DET.json] [--flip/--no-flip]`` is
:func:`evaluate`; training validates with the same :func:`predict_dataset` and
:func:`score_coco`, so the number that picks ``best.pth`` is computed the way the final one is.

The box source is never implicit: it is printed in the header of the metric table and saved
in ``eval_meta.json`` beside the predictions, because GT boxes score about 2 AP higher than
detector boxes and the official code made that easy to miss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from heatpose.config import ExperimentConfig, config_to_dict
from heatpose.data.coco_gt import CocoGT, load_coco_gt
from heatpose.data.dataset import PoseDataset, build_dataset
from heatpose.engine.distributed import (
    broadcast_object,
    distributed_run,
    is_main_process,
)
from heatpose.errors import HeatposeError
from heatpose.evaluation.coco import (
    STAT_NAMES,
    describe_gt,
    evaluate_keypoints,
    format_table,
    make_coco_results,
    stats_to_json,
    to_original_ids,
)
from heatpose.evaluation.pck import PCKH_METRIC_NAMES
from heatpose.evaluation.pckh_score import describe_single_person_boxes, report_pckh_eval, score_pckh
from heatpose.inference import (
    Predictions,
    configured_flip_shift,
    flip_shift_px,
    predict_dataset,
    predict_heatmaps,  # noqa: F401  (re-exported: tests and other branches import it from here)
)
from heatpose.io import atomic_write_json
from heatpose.keypoints import KeypointSchema
from heatpose.models.checkpoint import read_checkpoint
from heatpose.predictor import network_from_checkpoint
from heatpose.schema_io import schema_for_config

RESULTS_NAME = "keypoints_results.json"
META_NAME = "eval_meta.json"


def _describe_flip_shift(cfg: ExperimentConfig, dataset: PoseDataset) -> str:
    shift = configured_flip_shift(cfg)
    if cfg.data.codec == "udp":
        return " (UDP: flipped heatmaps align exactly, not shifted)"
    if shift == "none":
        return " (flipped heatmaps not shifted)"
    px = flip_shift_px(shift, dataset.codec.input_size[0], dataset.codec.heatmap_size[0])
    return f" (flipped heatmaps shifted {px:g} px right, {shift})"


PCKH_DATASETS = ("mpii", "lip")


def metric_names(cfg: ExperimentConfig) -> tuple[str, ...]:
    """The validation metrics of the config's dataset (what ``train.save_metric`` may name)."""
    if cfg.data.dataset in PCKH_DATASETS:
        return PCKH_METRIC_NAMES
    if cfg.data.dataset != "coco":
        raise HeatposeError(f"evaluation on data.dataset {cfg.data.dataset!r} is not available yet")
    return STAT_NAMES


def score_predictions(
    preds: Predictions, cfg: ExperimentConfig, schema: KeypointSchema | None = None, gt: CocoGT | None = None
) -> dict[str, float]:
    """The validation metrics of ``preds``: PCKh for MPII/LIP, COCO AP otherwise (``gt``: the
    validation set's normalised COCO GT, read again when None)."""
    if cfg.data.dataset in PCKH_DATASETS:
        return score_pckh(preds.keypoints, cfg.data.val_ann)
    return score_coco(preds, cfg, schema, gt)[1]


def score_coco(
    preds: Predictions,
    cfg: ExperimentConfig,
    schema: KeypointSchema | None = None,
    gt: CocoGT | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """COCO results (rescored, OKS-NMS) and COCOeval keypoint stats against ``data.val_ann``,
    both with the OKS sigmas of ``schema`` (default: the one ``data.schema`` names).

    ``gt``: the validation set's normalised GT (``PoseDataset.coco_gt``; read again when None).
    The results carry the GT file's own image and category ids; undefined stats are NaN.
    """
    metric_names(cfg)
    sigmas = (schema or schema_for_config(cfg)).oks_sigmas()
    if gt is None:
        gt = load_coco_gt(cfg.data.val_ann, cfg.data.category, len(sigmas))
    results = make_coco_results(
        preds.image_id,
        preds.keypoints,
        preds.scores,
        preds.box_score,
        preds.area,
        sigmas=sigmas,
        nms_thr=cfg.test.oks_nms_thr,
        rescore_thr=cfg.test.rescore_thr,
        category_id=gt.category_id,
    )
    results = to_original_ids(results, gt)
    return results, evaluate_keypoints(gt, results, sigmas=sigmas)


def describe_boxes(boxes: str, det_score_thr: float) -> str:
    """The header line that names the box source."""
    if boxes == "gt":
        return "boxes: GT annotations"
    return f"boxes: detections from {boxes} (score >= {det_score_thr:g})"


def boxes_tag(boxes: str) -> str:
    return "gt" if boxes == "gt" else "det_" + Path(boxes).stem


def _run_meta(cfg: ExperimentConfig, flip: bool, checkpoint: str | Path, meta: Any, crops: int) -> dict:
    """What ``eval_meta.json`` records about how the predictions were made (every dataset)."""
    return {
        "flip": flip,
        "shift_heatmap": cfg.test.shift_heatmap,
        "flip_shift": cfg.test.flip_shift,
        "decode": cfg.test.decode,
        "checkpoint": str(checkpoint),
        "checkpoint_meta": meta,
        "num_crops": crops,
        "config": config_to_dict(cfg),
    }


def evaluate(
    cfg: ExperimentConfig,
    checkpoint: str | Path,
    boxes: str | None = None,
    flip: bool | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, float]:
    """Evaluate ``checkpoint`` on the config's validation set; print and save the results.

    ``boxes``/``flip`` default to ``cfg.test.boxes``/``cfg.test.flip``. Predictions go to
    ``out_dir`` (default ``<checkpoint dir>/eval_<boxes tag>[_noflip]/``) as
    ``keypoints_results.json`` (COCO results format) and ``eval_meta.json`` (box source,
    flip, decode, checkpoint, config, metrics). Runs under torchrun too (sharded inference).
    """
    boxes = boxes or cfg.test.boxes
    flip = cfg.test.flip if flip is None else flip
    with distributed_run() as info:
        if not Path(checkpoint).exists():
            raise HeatposeError(f"checkpoint not found: {checkpoint}")
        if cfg.data.dataset == "coco" and cfg.data.val_ann and Path(cfg.data.val_ann).is_file():
            load_coco_gt(cfg.data.val_ann, cfg.data.category)  # a bad GT fails before the checkpoint is read
        obj = read_checkpoint(checkpoint)
        # the same loading as predict: the checkpoint's own schema (flip pairs, sigmas, number of
        # heatmaps) when it has one, else the config's; a warning per metadata entry that differs
        model, cfg, schema = network_from_checkpoint(obj, checkpoint, cfg)
        meta = obj.get("meta") if isinstance(obj, dict) else None
        dataset = build_dataset(cfg, "val", boxes=boxes, schema=schema)  # images checked before inference
        model.to(info.device)
        preds = predict_dataset(
            model,
            dataset,
            info.device,
            cfg.test.batch_size,
            flip=flip,
            shift=configured_flip_shift(cfg),
            decode=cfg.test.decode,
            num_workers=cfg.train.num_workers,
        )
        stats: dict[str, float] = {}
        if is_main_process() and cfg.data.dataset in PCKH_DATASETS:
            if out_dir is None:
                out_dir = Path(checkpoint).parent / f"eval_gt{'' if flip else '_noflip'}"
            header = [
                f"checkpoint: {checkpoint}",
                describe_single_person_boxes(cfg.data.dataset),
                f"flip test: {'on' if flip else 'off'}"
                + (_describe_flip_shift(cfg, dataset) if flip else ""),
                f"decode: {cfg.test.decode}",
            ]
            meta_out = {
                "box_source": "gt",
                "boxes": header[1],
                **_run_meta(cfg, flip, checkpoint, meta, len(preds)),
            }
            stats = report_pckh_eval(
                cfg.data.val_ann, preds.keypoints, preds.scores, header, out_dir, meta_out
            )
        elif is_main_process():
            results, stats = score_coco(preds, cfg, schema, dataset.coco_gt)
            if out_dir is None:
                out_dir = Path(checkpoint).parent / f"eval_{boxes_tag(boxes)}{'' if flip else '_noflip'}"
            header = [
                f"checkpoint: {checkpoint}",
                describe_boxes(boxes, cfg.test.det_score_thr),
                f"flip test: {'on' if flip else 'off'}"
                + (_describe_flip_shift(cfg, dataset) if flip else ""),
                f"decode: {cfg.test.decode}",
                f"people: {len(preds)} crops in {len(np.unique(preds.image_id))} images",
                *describe_gt(dataset.coco_gt),
            ]
            print("\n".join(header))
            print(format_table(stats))
            out_dir = Path(out_dir)
            atomic_write_json(out_dir / RESULTS_NAME, results)
            atomic_write_json(
                out_dir / META_NAME,
                {
                    "box_source": "gt" if boxes == "gt" else str(boxes),
                    "boxes": describe_boxes(boxes, cfg.test.det_score_thr),
                    "det_score_thr": cfg.test.det_score_thr,
                    **_run_meta(cfg, flip, checkpoint, meta, len(preds)),
                    "category": dataset.coco_gt.describe_category(),
                    "gt_notes": dataset.coco_gt.notes,
                    "metrics": stats_to_json(stats),
                },
                indent=2,
            )
            print(f"predictions: {out_dir / RESULTS_NAME}")
        return broadcast_object(stats)
