"""The zero-download custom keypoint path: synth --keypoints (data/remap.py), browse, and a tiny
train -> eval -> PCK run on a renamed, reordered 8-joint subset of the synthetic people."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from heatpose.browse import browse
from heatpose.cli import main
from heatpose.config import config_from_dict
from heatpose.data.synthetic import write_synthetic_dataset
from heatpose.errors import HeatposeError
from heatpose.keypoints import COCO17
from heatpose.schema_io import resolve_schema

SUBSET = Path(__file__).resolve().parents[1] / "examples" / "custom_keypoints" / "upper8_subset.yaml"
UPPER8 = ["R_Wrist", "RElbow", "shoulder.r", "EyeRight", "EyeLeft", "shoulder.l", "LElbow", "L_Wrist"]
SOURCE = ["right_wrist", "right_elbow", "right_shoulder", "right_eye", "left_eye", "left_shoulder",
          "left_elbow", "left_wrist"]  # fmt: skip


@pytest.fixture(scope="module")
def upper8(tmp_path_factory) -> Path:
    """12 train / 6 val synthetic images (128x96), written with the upper8 subset's joints."""
    root = tmp_path_factory.mktemp("upper8")
    for split, n in (("train", 12), ("val", 6)):
        write_synthetic_dataset(root, n, seed=0, image_size=(128, 96), split_name=split, progress=False)
        full = json.loads((root / "annotations" / f"person_keypoints_{split}.json").read_text())
        (root / f"full_{split}.json").write_text(json.dumps(full))
        from heatpose.data.remap import remap_synthetic_split

        remap_synthetic_split(root, split, SUBSET)
    return root


def _config(root: Path, *overrides: str):
    data = {
        "model": {"backbone_depth": 18, "num_joints": 0, "num_deconv_layers": 2, "num_deconv_filters": 32},
        "data": {
            "schema": str(root / "annotations" / "schema_upper8.yaml"),
            "train_ann": str(root / "annotations" / "person_keypoints_train.json"),
            "train_images": str(root / "images" / "train"),
            "val_ann": str(root / "annotations" / "person_keypoints_val.json"),
            "val_images": str(root / "images" / "val"),
            "input_size": [64, 64],
        },
        "train": {"epochs": 1, "batch_size": 8, "num_workers": 0, "lr_steps": [5]},
        "test": {"batch_size": 16},
    }
    return config_from_dict(data, list(overrides))


def test_remap_reorders_renames_and_carries_sigmas(upper8):
    full = json.loads((upper8 / "full_train.json").read_text())
    new = json.loads((upper8 / "annotations" / "person_keypoints_train.json").read_text())
    cat = new["categories"][0]
    assert cat["keypoints"] == UPPER8 and cat["name"] == "upper8"
    assert cat["skeleton"][0] == [1, 2]  # R_Wrist - RElbow, 1-based
    src = [COCO17.joint_names.index(n) for n in SOURCE]
    for a, b in zip(full["annotations"], new["annotations"], strict=True):
        old = np.asarray(a["keypoints"]).reshape(17, 3)
        assert np.asarray(b["keypoints"]).reshape(8, 3).tolist() == old[src].tolist()
        assert b["num_keypoints"] == int((old[src, 2] > 0).sum())
    schema = resolve_schema(str(upper8 / "annotations" / "schema_upper8.yaml"), upper8 / "annotations" /
                            "person_keypoints_train.json").schema  # fmt: skip
    assert schema.sigmas == tuple(COCO17.sigmas[j] for j in src)
    assert schema.flip_pairs == ((4, 3), (5, 2), (6, 1), (7, 0))  # from four naming styles
    with pytest.raises(HeatposeError, match="remapped before"):
        from heatpose.data.remap import remap_synthetic_split

        remap_synthetic_split(upper8, "train", SUBSET)


def test_browse_draws_samples_and_counts(upper8, tmp_path):
    summary = browse(_config(upper8), "train", num=2, out_dir=tmp_path)
    new = json.loads((upper8 / "annotations" / "person_keypoints_train.json").read_text())
    labelled = np.asarray([a["keypoints"][2::3] for a in new["annotations"] if max(a["keypoints"][2::3]) > 0])
    assert summary.labelled.tolist() == (labelled > 0).sum(axis=0).tolist()
    assert summary.people == len(labelled)
    assert summary.warnings == []
    for name in ("sample_000.png", "sample_001.png", "summary.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert "| R_Wrist |" in (tmp_path / "summary.md").read_text()


def _crafted(tmp_path: Path, schema_yaml: str, box_enlarge: float):
    """One 64x64 image, two people (one with all-zero keypoints), joints a..d; a config on it."""
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    cv2.imwrite(str(images / "a.jpg"), np.full((64, 64, 3), 128, np.uint8))
    anns = [
        # joint c far outside the box (box x 10..30); joint d never labelled
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 400.0, "bbox": [10, 10, 20, 20],
         "keypoints": [15, 15, 2, 20, 20, 2, 60, 60, 2, 0, 0, 0], "num_keypoints": 3},
        {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 400.0, "bbox": [30, 30, 20, 20],
         "keypoints": [0] * 12, "num_keypoints": 0},  # all zero
    ]  # fmt: skip
    category = {"id": 1, "name": "t", "keypoints": ["a", "b", "c", "d"], "skeleton": []}
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}], "annotations": anns,
          "categories": [category]}  # fmt: skip
    (tmp_path / "ann.json").write_text(json.dumps(gt))
    (tmp_path / "schema.yaml").write_text(schema_yaml)
    return config_from_dict(
        {
            "model": {"backbone_depth": 18, "num_joints": 0, "num_deconv_layers": 2, "num_deconv_filters": 8},
            "data": {
                "schema": str(tmp_path / "schema.yaml"),
                "train_ann": str(tmp_path / "ann.json"),
                "train_images": str(images),
                "input_size": [64, 64],
                "box_enlarge": box_enlarge,
            },
        }
    )


def test_per_joint_loss_weights_multiply_the_target_weights(tmp_path):
    from heatpose.data.dataset import build_dataset

    cfg = _crafted(tmp_path, "joint_weights: {a: 0, b: 2.5}\nsigmas: [0.1, 0.1, 0.1, 0.1]\n", 1.25)
    dataset = build_dataset(cfg, "train")
    item = dataset[0]
    _, joints, visible, _ = dataset.crop(0)
    _, plain = dataset.codec.encode(joints, visible)
    assert plain[:2].tolist() == [1.0, 1.0]  # a and b get targets
    assert item["target_weight"].tolist()[:2] == [0.0, 2.5]
    assert item["target_weight"][3] == 0  # d is not labelled


def test_browse_warns_about_silent_killers(tmp_path):
    # box_enlarge 0.1: a crop of 0.1 x the box leaves 2 of the 3 labelled joints outside
    cfg = _crafted(tmp_path, "joint_weights: {a: 0}\nsigmas: [0.1, 0.1, 0.1, 0.1]\n", 0.1)
    warnings = "\n".join(browse(cfg, "train", num=1, out_dir=tmp_path / "out").warnings)
    assert "1 annotation(s) have keypoints that are all zero" in warnings
    assert "never labelled in the train split: d" in warnings
    assert "outside their box: c (1)" in warnings
    assert "loss weight 0 for a" in warnings
    assert "fall off the" in warnings  # a crop of 0.1 x the box leaves 2 of 3 joints outside


def test_custom_schema_trains_evaluates_and_scores_end_to_end(upper8, tmp_path, capsys):
    torch.set_num_threads(1)
    cfg = _config(upper8)
    from heatpose.engine.evaluate import evaluate
    from heatpose.engine.train import train

    train(cfg, tmp_path / "run")
    err = capsys.readouterr().err
    assert "keypoint schema 'upper8' (8 joints" in err and "EyeLeft<->EyeRight" in err
    ckpt = torch.load(tmp_path / "run" / "latest.pth", weights_only=True)
    assert ckpt["meta"]["keypoint_schema"]["joint_names"] == UPPER8
    assert ckpt["model"]["head.final_layer.weight"].shape[0] == 8
    # eval needs nothing but the checkpoint's schema: even a config naming COCO-17 works (and says so)
    cfg_coco = _config(upper8, "data.schema=coco", "model.num_joints=17")
    stats = evaluate(cfg_coco, tmp_path / "run" / "latest.pth", out_dir=tmp_path / "ev")
    assert set(stats) >= {"AP", "AR"}
    assert "keypoint_schema: checkpoint and config differ in" in capsys.readouterr().err
    results = tmp_path / "ev" / "keypoints_results.json"
    assert len(json.loads(results.read_text())[0]["keypoints"]) == 24
    val = str(upper8 / "annotations" / "person_keypoints_val.json")
    assert main(["score", "--gt", val, "--preds", str(results), "--metric", "pck", "--json"]) == 0
    pck = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(pck["per_joint"]) == UPPER8 and 0 <= pck["overall"] <= 1
