"""End to end on a tiny synthetic dataset: training writes its work dir, a killed run resumes
exactly, ``evaluate`` names its box source and reproduces the validation number."""

from __future__ import annotations

import json
import math
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from heatpose.config import ExperimentConfig, config_from_dict, config_to_dict
from heatpose.data.dataset import build_dataset
from heatpose.data.synthetic import write_synthetic_dataset
from heatpose.engine.checkpoint import load_training_checkpoint
from heatpose.engine.evaluate import META_NAME, RESULTS_NAME, evaluate, predict_dataset, score_coco
from heatpose.engine.logs import TrainLogger, read_csv
from heatpose.engine.train import train
from heatpose.errors import HeatposeError
from heatpose.evaluation.coco import stats_to_json

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # one_thread: tests/conftest.py


def write_tiny_data(root: Path) -> Path:
    """12 training images (about 30 people) and 6 validation images of 128x96 synthetic people."""
    write_synthetic_dataset(root, 12, seed=0, image_size=(128, 96), split_name="train", progress=False)
    write_synthetic_dataset(root, 6, seed=0, image_size=(128, 96), split_name="val", progress=False)
    return root


def tiny_config(data_root: Path, *overrides: str) -> ExperimentConfig:
    """ResNet-18, 64x64 input, 2 deconv layers of 32 filters (8x8 heatmaps), batch 8."""
    data = {
        "model": {"backbone_depth": 18, "num_deconv_layers": 2, "num_deconv_filters": 32},
        "data": {
            "train_ann": str(data_root / "annotations" / "person_keypoints_train.json"),
            "train_images": str(data_root / "images" / "train"),
            "val_ann": str(data_root / "annotations" / "person_keypoints_val.json"),
            "val_images": str(data_root / "images" / "val"),
            "input_size": [64, 64],
        },
        "train": {"epochs": 3, "batch_size": 8, "lr_steps": [2], "num_workers": 0, "seed": 3},
        "test": {"batch_size": 16},
    }
    return config_from_dict(data, list(overrides))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("synthetic"))


class SimulatedKill(Exception):
    pass


def check_work_dir(cfg: ExperimentConfig, work_dir: Path, metrics: dict[str, float]) -> None:
    """What a finished 3-epoch run leaves behind."""
    for name in ("config.yaml", "train_log.csv", "metrics.csv", "curves.png", "latest.pth", "best.pth"):
        assert (work_dir / name).stat().st_size > 0, name
    assert any((work_dir / "tb").iterdir())
    assert config_from_dict(yaml.safe_load((work_dir / "config.yaml").read_text())) == cfg

    iters = read_csv(work_dir / "train_log.csv")
    n = math.ceil(len(build_dataset(cfg, "train")) / cfg.train.batch_size)  # iterations per epoch
    assert [r["step"] for r in iters] == list(range(1, 3 * n + 1))
    assert [r["lr"] for r in iters] == pytest.approx([1e-3] * 2 * n + [1e-4] * n)  # lr_steps [2]
    assert all(r["samples_per_s"] > 0 for r in iters)
    epochs = read_csv(work_dir / "metrics.csv")
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert epochs[-1]["train_loss"] < iters[0]["loss"]
    assert {"train_loss", "lr", "AP", "AP50", "AR"} <= epochs[0].keys()

    latest = load_training_checkpoint(work_dir / "latest.pth")
    best = load_training_checkpoint(work_dir / "best.pth")
    assert latest["epoch"] == 3 and latest["step"] == 3 * n
    assert latest["config"] == config_to_dict(cfg)
    assert latest["meta"]["input_size"] == [64, 64] and latest["meta"]["heatmap_size"] == [8, 8]
    assert not any(k.startswith("module.") for k in latest["model"])
    assert best["best_metric"] == max(r["AP"] for r in epochs) == metrics["best_AP"]
    assert metrics["train_loss"] == pytest.approx(epochs[-1]["train_loss"])


def test_resume_after_kill_is_exact(tiny_data, tmp_path, monkeypatch):
    """Three epochs straight vs. killed in epoch 3 and resumed: the same losses, bit for bit.

    With a DataLoader worker, so the per-epoch augmentation seed must reach the workers.
    """
    cfg = tiny_config(tiny_data, "train.num_workers=1")
    straight_dir, work_dir = tmp_path / "straight", tmp_path / "killed"
    check_work_dir(cfg, straight_dir, train(cfg, straight_dir))

    log_iter = TrainLogger.log_iter

    def killed_in_epoch_3(self, epoch, it, *args):
        log_iter(self, epoch, it, *args)
        if epoch == 3 and it == 2:
            raise SimulatedKill

    monkeypatch.setattr(TrainLogger, "log_iter", killed_in_epoch_3)
    with pytest.raises(SimulatedKill):
        train(cfg, work_dir)
    monkeypatch.undo()
    assert load_training_checkpoint(work_dir / "latest.pth")["epoch"] == 2
    assert read_csv(work_dir / "train_log.csv")[-1]["epoch"] == 3  # part of epoch 3 was logged

    with pytest.raises(HeatposeError, match="already holds a checkpoint"):
        train(cfg, work_dir)  # a fresh run must not overwrite it
    train(cfg, work_dir, resume=True)

    # Same per-iteration losses and learning rates, bit for bit (the log stores repr(float)).
    def columns(rows):
        return [(r["epoch"], r["iter"], r["step"], r["loss"], r["lr"]) for r in rows]

    assert columns(read_csv(work_dir / "train_log.csv")) == columns(read_csv(straight_dir / "train_log.csv"))
    resumed = load_training_checkpoint(work_dir / "latest.pth")
    straight = load_training_checkpoint(straight_dir / "latest.pth")
    for key, value in straight["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    for key in ("epoch", "step", "best_metric", "scheduler"):
        assert resumed[key] == straight[key], key
    epochs_a, epochs_b = read_csv(straight_dir / "metrics.csv"), read_csv(work_dir / "metrics.csv")
    assert [(r["epoch"], r["train_loss"], r["AP"]) for r in epochs_a] == [
        (r["epoch"], r["train_loss"], r["AP"]) for r in epochs_b
    ]

    # Resuming a finished run has nothing to do.
    assert train(cfg, work_dir, resume=True) == {"best_AP": straight["best_metric"]}


def test_bf16_channels_last_warmup_clip_smoke(tiny_data, tmp_path):
    cfg = tiny_config(
        tiny_data,
        "train.epochs=1",
        "train.amp=bf16",
        "train.channels_last=true",
        "train.grad_clip=1.0",
        "train.warmup_iters=3",
        "train.val_interval=0",
        "train.batch_size=4",  # enough iterations to see the whole warm-up, whatever the people count
    )
    metrics = train(cfg, tmp_path)
    assert np.isfinite(metrics["train_loss"]) and "AP" not in metrics
    lrs = [r["lr"] for r in read_csv(tmp_path / "train_log.csv")]
    assert len(lrs) >= 4, f"the fixture gave only {len(lrs)} iterations"
    assert lrs[0] == pytest.approx(1e-6) and lrs[0] < lrs[1] < lrs[2] < lrs[3] == pytest.approx(1e-3)
    assert not (tmp_path / "best.pth").exists()  # no validation, no best


def test_train_errors(tiny_data, tmp_path):
    with pytest.raises(HeatposeError, match="no checkpoint to resume from"):
        train(tiny_config(tiny_data), tmp_path / "empty", resume=True)
    with pytest.raises(HeatposeError, match=r"train\.save_metric"):
        train(tiny_config(tiny_data, "train.save_metric=PCKh"), tmp_path / "w")
    with pytest.raises(HeatposeError, match="path not found"):
        train(tiny_config(tiny_data, "data.train_ann=/nowhere/ann.json"), tmp_path / "w")
    with pytest.raises(HeatposeError, match="fp16 needs a CUDA GPU"):
        train(tiny_config(tiny_data, "train.amp=fp16"), tmp_path / "w")


def test_evaluate_reports_box_source_and_matches_validation(tiny_data, tmp_path, capsys):
    cfg = tiny_config(tiny_data, "train.epochs=1")
    train(cfg, tmp_path)
    capsys.readouterr()
    stats = evaluate(cfg, tmp_path / "best.pth")
    out = capsys.readouterr().out
    assert "boxes: GT annotations" in out and "decode: argmax" in out
    assert "flip test: on (flipped heatmaps shifted 1 px right, official)" in out
    assert "AP" in out and "0.50:0.95" in out
    meta = json.loads((tmp_path / "eval_gt" / META_NAME).read_text())
    # undefined stats (COCOeval's -1, NaN in Python) are null in json
    assert meta["box_source"] == "gt" and meta["flip"] is True and meta["metrics"] == stats_to_json(stats)
    assert meta["flip_shift"] == "official"
    assert meta["checkpoint_meta"]["color_order"] == "rgb"
    results = json.loads((tmp_path / "eval_gt" / RESULTS_NAME).read_text())
    assert results and len(results[0]["keypoints"]) == 17 * 3
    # Validation during training ran the same code (fp32 here): the same AP.
    assert stats["AP"] == load_training_checkpoint(tmp_path / "best.pth")["best_metric"]

    gt = json.loads(Path(cfg.data.val_ann).read_text())
    dets = [
        {"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.3 + 0.1 * (i % 5)}
        for i, a in enumerate(gt["annotations"])
    ]
    det_path = tmp_path / "person_dets.json"
    det_path.write_text(json.dumps(dets))
    cfg = config_from_dict(config_to_dict(cfg), ["test.det_score_thr=0.5"])
    evaluate(cfg, tmp_path / "latest.pth", boxes=str(det_path), flip=False)
    out = capsys.readouterr().out
    assert f"boxes: detections from {det_path} (score >= 0.5)" in out and "flip test: off" in out
    meta = json.loads((tmp_path / "eval_det_person_dets_noflip" / META_NAME).read_text())
    assert meta["box_source"] == str(det_path) and meta["flip"] is False
    assert meta["num_crops"] == sum(d["score"] >= 0.5 for d in dets)
    with pytest.raises(HeatposeError, match="checkpoint not found"):
        evaluate(cfg, tmp_path / "missing.pth")

    # The exact flip realignment: 64 px crops, 8 px heatmaps (stride 8) -> 7/8 px.
    exact = config_from_dict(config_to_dict(cfg), ["test.flip_shift=exact"])
    evaluate(exact, tmp_path / "latest.pth", boxes="gt", out_dir=tmp_path / "exact")
    assert "flip test: on (flipped heatmaps shifted 0.875 px right, exact)" in capsys.readouterr().out
    assert json.loads((tmp_path / "exact" / META_NAME).read_text())["flip_shift"] == "exact"


class _Oracle(nn.Module):
    """Returns the dataset's own target heatmaps, batch by batch, whatever the input."""

    def __init__(self, batches: list[torch.Tensor]):
        super().__init__()
        self.batches = deque(batches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.batches.popleft()


def test_target_heatmaps_decode_to_near_perfect_ap(tiny_data):
    """predict_dataset -> decode -> back-projection -> OKS-NMS -> COCOeval, with perfect heatmaps."""
    cfg = tiny_config(tiny_data, "data.input_size=[192, 256]", "model.num_deconv_layers=3")
    dataset = build_dataset(cfg, "val")
    targets = [b["target"] for b in DataLoader(dataset, batch_size=4)]
    preds = predict_dataset(_Oracle(targets), dataset, torch.device("cpu"), 4, flip=False, progress=False)
    assert len(preds) == len(dataset) and preds.index.tolist() == list(range(len(dataset)))
    _, stats = score_coco(preds, cfg)
    assert stats["AP"] > 0.9, stats
