"""``heatpose score --metric pckh``: predictions files, one-line errors, reports; MPII eval/train."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from heatpose.cli import build_parser, main
from heatpose.config import config_from_dict
from heatpose.data.mpii import read_mpii_h5
from heatpose.data.synthetic import write_synthetic_dataset
from heatpose.engine.evaluate import evaluate, metric_names
from heatpose.engine.train import train
from heatpose.evaluation.pck import PCKH_METRIC_NAMES
from heatpose.evaluation.pckh_score import (
    CURVE_PNG,
    PER_JOINT_PNG,
    PREDICTIONS_NAME,
    REPORT_NAME,
    load_pckh_ground_truth,
    predictions_json,
)
from tests.conftest import shared_path

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def valid_h5() -> Path:
    return shared_path("mpii_valid_split", "valid.h5")


@pytest.fixture(scope="module")
def noisy_preds(valid_h5, tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """GT + noise as a JSON list and as a .npy array."""
    ann = read_mpii_h5(valid_h5)
    rng = np.random.default_rng(3)
    joints = ann.joints + rng.normal(0.0, 5.0, ann.joints.shape)
    folder = tmp_path_factory.mktemp("preds")
    as_json = folder / "preds.json"
    as_json.write_text(json.dumps(predictions_json(ann.image_names, joints, np.ones(joints.shape[:2]))))
    as_npy = folder / "preds.npy"
    np.save(as_npy, joints)
    return as_json, as_npy, joints


def score_json(capsys, *args: str) -> dict:
    assert main(["score", "--metric", "pckh", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_score_json_and_npy_agree_and_gt_scores_100(valid_h5, noisy_preds, capsys, tmp_path):
    as_json, as_npy, _ = noisy_preds
    a = score_json(capsys, "--gt", str(valid_h5), "--preds", str(as_json))
    b = score_json(capsys, "--gt", str(valid_h5), "--preds", str(as_npy))
    assert a == b
    assert {"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", "Mean@0.1"} <= a.keys()
    assert "normalize" in a["normalizer"] and 50 < a["Mean"] < 100
    gt = load_pckh_ground_truth(valid_h5)
    np.save(tmp_path / "gt.npy", gt.joints)
    perfect = score_json(capsys, "--gt", str(valid_h5), "--preds", str(tmp_path / "gt.npy"))
    assert perfect["Mean"] == 100.0 and perfect["Mean@0.1"] == 100.0 and perfect["Head"] == 100.0
    matlab = score_json(capsys, "--gt", str(valid_h5), "--preds", str(as_npy), "--protocol", "matlab")
    assert matlab["Total"] == pytest.approx(a["Mean"], abs=1e-9) and matlab["protocol"] == "matlab"


def test_score_table_names_the_normaliser_and_writes_pictures(valid_h5, noisy_preds, capsys, tmp_path):
    as_json, _, _ = noisy_preds
    assert (
        main(
            [
                "score",
                "--metric",
                "pckh",
                "--gt",
                str(valid_h5),
                "--preds",
                str(as_json),
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "head size: h5 'normalize' field" in out and "Mean@0.11 (official code)" in out
    for name in (REPORT_NAME, CURVE_PNG, PER_JOINT_PNG):
        assert (tmp_path / name).stat().st_size > 0
    report = json.loads((tmp_path / REPORT_NAME).read_text())
    assert len(report["curve"]["thresholds"]) == 51 and report["curve"]["thresholds"][10] == 0.1


def _one_line_error(capsys, args: list[str], fragment: str) -> None:
    assert main(["score", "--metric", "pckh", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("heatpose: error: ") and fragment in err[0], err


def test_bad_predictions_are_one_line_errors(valid_h5, noisy_preds, capsys, tmp_path):
    as_json, _, joints = noisy_preds
    entries = json.loads(as_json.read_text())
    gt = ["--gt", str(valid_h5), "--preds"]

    def write(name: str, data) -> str:
        path = tmp_path / name
        if name.endswith(".npy"):
            np.save(path, data)
        else:
            path.write_text(json.dumps(data))
        return str(path)

    _one_line_error(capsys, [*gt, write("short.json", entries[:-1])], "2957 poses, but")
    _one_line_error(capsys, [*gt, write("short.npy", joints[:10])], "10 poses, but")
    _one_line_error(capsys, [*gt, write("k.npy", joints[:, :15])], "15 joints per pose, expected 16")
    bad = [dict(e) for e in entries]
    bad[4] = {**bad[4], "joints": [*bad[4]["joints"], [1.0, 2.0]]}
    _one_line_error(capsys, [*gt, write("k17.json", bad)], "entry 4 has 17 joints, expected 16")
    nan = joints.copy()
    nan[7, 3, 1] = np.nan
    _one_line_error(capsys, [*gt, write("nan.npy", nan)], "pose 7 joint 3 is NaN")
    bad = [dict(e) for e in entries]
    bad[2] = {**bad[2], "joints": [[float("nan"), 1.0]] * 16}
    _one_line_error(capsys, [*gt, write("nan.json", bad)], "entry 2 joint 0 is NaN")
    bad = [dict(e) for e in entries]
    bad[9] = {**bad[9], "image": "nope.jpg"}
    _one_line_error(capsys, [*gt, write("unknown.json", bad)], "entry 9: unknown image 'nope.jpg'")
    bad = [dict(e) for e in entries]
    bad[0], bad[1] = bad[1], bad[0]
    _one_line_error(capsys, [*gt, write("order.json", bad)], "must follow the annotation order")
    _one_line_error(capsys, [*gt, write("obj.json", {"a": 1})], "must be a JSON list")
    _one_line_error(
        capsys, ["--gt", str(tmp_path / "x.txt"), "--preds", str(as_json)], "unknown ground-truth format"
    )


def test_cli_error_is_one_line_on_stderr(valid_h5, tmp_path):
    preds = tmp_path / "p.npy"
    np.save(preds, np.zeros((3, 16, 2)))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "heatpose",
            "score",
            "--metric",
            "pckh",
            "--gt",
            str(valid_h5),
            "--preds",
            str(preds),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "3 poses, but" in proc.stderr and "Traceback" not in proc.stderr
    score_parser = build_parser()._subparsers._group_actions[0].choices["score"]
    help_text = " ".join(score_parser.format_help().split())
    assert "0-based pixels" in help_text


@pytest.mark.slow
def test_synthetic_mpii_train_validates_by_pckh_and_eval_writes_scoreable_predictions(tmp_path, capsys):
    root = tmp_path / "data"
    for split, n in (("train", 6), ("val", 3)):
        write_synthetic_dataset(
            root, n, seed=0, layout="mpii", image_size=(96, 96), split_name=split, progress=False
        )
    ann = root / "annotations"
    cfg = config_from_dict(
        {
            "model": {
                "backbone_depth": 18,
                "num_joints": 16,
                "num_deconv_layers": 2,
                "num_deconv_filters": 16,
            },
            "data": {
                "dataset": "mpii",
                "schema": "mpii",
                "train_ann": str(ann / "mpii_train.json"),
                "train_images": str(root / "images" / "train"),
                "val_ann": str(ann / "mpii_val.json"),
                "val_images": str(root / "images" / "val"),
                "input_size": [64, 64],
            },
            "train": {"epochs": 1, "batch_size": 8, "lr_steps": [1], "num_workers": 0, "save_metric": "PCKh"},
            "test": {"batch_size": 16},
        }
    )
    assert metric_names(cfg) == PCKH_METRIC_NAMES
    work = tmp_path / "work"
    metrics = train(cfg, work)
    assert "PCKh" in metrics and metrics["best_PCKh"] == metrics["PCKh"] == metrics["Mean"]
    assert (work / "best.pth").is_file()
    capsys.readouterr()
    stats = evaluate(cfg, work / "best.pth", out_dir=tmp_path / "eval")
    out = capsys.readouterr().out
    assert "boxes: annotation centre/scale" in out and "0.6 x head-box diagonal (json 'headbox')" in out
    assert stats["PCKh"] == pytest.approx(metrics["PCKh"])
    preds = tmp_path / "eval" / PREDICTIONS_NAME
    for name in (CURVE_PNG, PER_JOINT_PNG, "eval_meta.json"):
        assert (tmp_path / "eval" / name).is_file()
    rescored = score_json(capsys, "--gt", str(ann / "mpii_val.json"), "--preds", str(preds))
    assert rescored["Mean"] == stats["Mean"] and rescored["Mean@0.1"] == stats["Mean@0.1"]


@pytest.mark.slow
def test_lip_eval_names_the_whole_image_box_and_its_head_size(tmp_path, capsys):
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for i in range(3):
        cv2.imwrite(str(images / f"{i}_1.jpg"), np.full((90, 70, 3), 40 * i, np.uint8))
        joints = np.stack([np.linspace(10, 60, 16), np.linspace(10, 80, 16)], axis=1)
        joints[8], joints[9] = [35.0, 30.0], [35.0, 15.0]
        rows.append(",".join([f"{i}_1.jpg", *(f"{x:g},{y:g},1" for x, y in joints)]))
    csv = tmp_path / "lip_val_set.csv"
    csv.write_text("\n".join(rows) + "\n")
    paths = {
        "train_ann": str(csv),
        "train_images": str(images),
        "val_ann": str(csv),
        "val_images": str(images),
    }
    cfg = config_from_dict(
        {
            "model": {
                "backbone_depth": 18,
                "num_joints": 16,
                "num_deconv_layers": 2,
                "num_deconv_filters": 16,
            },
            "data": {"dataset": "lip", "schema": "lip", "input_size": [64, 64], **paths},
            "train": {"epochs": 1, "batch_size": 4, "lr_steps": [1], "num_workers": 0, "save_metric": "PCKh"},
        }
    )
    train(cfg, tmp_path / "work")
    capsys.readouterr()
    stats = evaluate(cfg, tmp_path / "work" / "best.pth", out_dir=tmp_path / "eval")
    out = capsys.readouterr().out
    assert "boxes: the whole image" in out and "head-top to upper-neck distance" in out
    assert "Mean leaves out: pelvis, spine" in out
    rescored = score_json(capsys, "--gt", str(csv), "--preds", str(tmp_path / "eval" / PREDICTIONS_NAME))
    assert rescored["Mean"] == stats["Mean"]
