"""The shared GT check-and-normalise step (issue 13 items 1 and 3, issue 6 items 2, 3 and 5).

Each real-world example from the issues: string ids, no area (PoseTrack18), several keypoint
categories, float ids in results, crowded images, duplicate ids, unknown images, bad GT values,
images that do not match their annotations, EXIF orientation, and undefined metrics.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from heatpose.config import config_from_dict
from heatpose.data.coco import read_coco_dataset
from heatpose.data.coco_gt import load_coco_gt, normalize_coco_gt
from heatpose.data.dataset import build_dataset, read_image
from heatpose.data.image_files import inspect_image
from heatpose.data.synthetic import write_synthetic_dataset
from heatpose.engine.train import train
from heatpose.errors import HeatposeError
from heatpose.evaluation.coco import evaluate_keypoints, format_table, score_command, undefined_metrics
from tests.conftest import shared_path


def _perfect(gt: dict, category_id=1) -> list[dict]:
    return [
        {"image_id": a["image_id"], "category_id": category_id, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
        if not a.get("iscrowd") and max(a["keypoints"]) > 0
    ]


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """4 synthetic 96x96 images (small people only: no GT is 'large')."""
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_dataset(
        root, num_images=4, seed=0, image_size=(96, 96), split_name="train", progress=False
    )
    return root


def _cfg(synth: Path, ann: Path, images: Path | None = None, **data):
    images = images or synth / "images" / "train"
    raw = {
        "model": {"backbone_depth": 18, "num_deconv_layers": 2, "num_deconv_filters": 32},
        "data": {
            "train_ann": str(ann),
            "val_ann": str(ann),
            "train_images": str(images),
            "val_images": str(images),
            "input_size": [64, 64],
            **data,
        },
        "train": {"epochs": 1, "batch_size": 8, "num_workers": 0},
    }
    return config_from_dict(raw)


# ------------------------------------------------ issue 13 item 1 examples


def test_posetrack18_without_area_loads_and_scores():
    root = shared_path("mmpose_testdata", "posetrack18")
    ann = root / "annotations" / "test_posetrack18_val.json"
    gt, people = read_coco_dataset(ann, root, 17, 0.75)
    assert len(people) == 14
    assert any("lack 'area'" in n and "w*h" in n for n in gt.notes)
    areas = {a["id"]: a["area"] for a in gt.dataset["annotations"]}
    raw = json.loads(ann.read_text())
    for a in raw["annotations"]:
        assert areas[a["id"]] == pytest.approx(a["bbox"][2] * a["bbox"][3])
    stats = evaluate_keypoints(ann, _perfect(raw))
    assert stats["AP"] == 1.0


@pytest.mark.parametrize("spell", [str, lambda i: f"img_{i:04d}", float])
def test_string_and_float_image_ids_read_and_score(synth, tmp_path, spell):
    data = json.loads((synth / "annotations" / "person_keypoints_train.json").read_text())
    for img in data["images"]:
        img["id"] = spell(img["id"])
    for a in data["annotations"]:
        a["image_id"] = spell(a["image_id"])
    ann = _write(tmp_path / "ann.json", data)
    gt, people = read_coco_dataset(ann, synth / "images" / "train", 17, 1.0)
    assert len(people) == sum(a["num_keypoints"] > 0 for a in data["annotations"])
    assert {gt.original_image_id(p.image_id) for p in people} <= {img["id"] for img in data["images"]}
    assert evaluate_keypoints(ann, _perfect(data))["AP"] == 1.0


def test_two_keypoint_categories_score_only_the_chosen_one(tmp_path):
    """Issue 13: predictions for 'person' scored against every category averaged halves AP."""
    mini = json.loads(shared_path("coco_mini", "annotations", "person_keypoints_val2017.json").read_text())
    two = copy.deepcopy(mini)
    two["categories"].append(dict(two["categories"][0], id=2, name="mannequin"))
    top = max(a["id"] for a in mini["annotations"])
    two["annotations"] += [dict(a, id=top + 1 + i, category_id=2) for i, a in enumerate(mini["annotations"])]
    gt_path = _write(tmp_path / "two.json", two)
    preds = _perfect(mini)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(preds)), "keypoints")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    assert ev.stats[0] == pytest.approx(0.5)  # pycocotools' default: both categories averaged
    out = io.StringIO()
    score_command(str(gt_path), _write(tmp_path / "p.json", preds), out=out)
    assert "category 1 ('person')" in out.getvalue() and "2 categories" in out.getvalue()
    assert evaluate_keypoints(gt_path, preds)["AP"] == 1.0
    assert (
        evaluate_keypoints(gt_path, [dict(p, category_id=2) for p in preds], category="mannequin")["AP"]
        == 1.0
    )
    with pytest.raises(HeatposeError, match=r"category 'dog' .* is not one of"):
        load_coco_gt(gt_path, category="dog")


def test_several_categories_without_a_rule_are_refused(tmp_path):
    data = json.loads(shared_path("mmpose_testdata", "ap10k", "test_ap10k.json").read_text())
    with pytest.raises(HeatposeError, match=r"choose one with data\.category"):
        normalize_coco_gt(data, "ap10k.json")
    gt = normalize_coco_gt(data, "ap10k.json", category="jaguar")
    assert len(gt.dataset["annotations"]) == 1 and gt.category_name == "jaguar"


def test_float_result_ids_are_accepted_nonintegral_refused(tmp_path):
    root = shared_path("mmpose_testdata", "coco")
    raw = json.loads((root / "test_coco.json").read_text())
    preds = _perfect(raw)
    as_float = [dict(p, image_id=float(p["image_id"]), category_id=1.0) for p in preds]
    assert evaluate_keypoints(root / "test_coco.json", as_float) == evaluate_keypoints(
        root / "test_coco.json", preds
    )
    as_float[2]["image_id"] = 785.5
    with pytest.raises(HeatposeError, match=r"result 2: image_id 785.5 is not an integer"):
        evaluate_keypoints(root / "test_coco.json", as_float)


def test_more_people_than_max_dets_warns_once_with_counts(synth, tmp_path):
    data = json.loads((synth / "annotations" / "person_keypoints_train.json").read_text())
    first = next(a for a in data["annotations"] if a["num_keypoints"] > 0)
    data["annotations"] += [dict(first, id=1000 + i) for i in range(22)]
    gt = normalize_coco_gt(data, "crowded.json")
    warnings = [n for n in gt.notes if "more than 20 people" in n]
    assert len(warnings) == 1 and "1 image hold" in warnings[0] and "never scored" in warnings[0]


# ------------------------------------------------ issue 6 item 2: GT as carefully as results


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"]), "duplicate annotation id"),
        (lambda d: d["annotations"][1].update(image_id=424242), "unknown image 424242"),
        (lambda d: d["annotations"][1]["keypoints"].__setitem__(0, float("nan")), "NaN or infinite"),
        (
            lambda d: d["annotations"][1].update(
                keypoints=[str(v) for v in d["annotations"][1]["keypoints"]]
            ),
            "flat list",
        ),
        (
            lambda d: d["annotations"][1].update(keypoints=d["annotations"][1]["keypoints"][:48]),
            "16 keypoints",
        ),
        (lambda d: d["annotations"][1].update(area="1234.5"), "area '1234.5'"),
    ],
)
def test_bad_gt_is_one_line_naming_the_annotation(tmp_path, change, message):
    mini = json.loads(shared_path("coco_mini", "annotations", "person_keypoints_val2017.json").read_text())
    bad = copy.deepcopy(mini)
    change(bad)
    path = tmp_path / "GT.json"
    path.write_text(json.dumps(bad))  # NaN is written as NaN, as Python tools do
    with pytest.raises(HeatposeError) as info:
        evaluate_keypoints(path, _perfect(mini))
    text = str(info.value)
    assert message in text and "annotations[1]" in text and "\n" not in text


# ------------------------------------------------ issue 6 item 3: images vs annotations


def _image_set(tmp_path: Path, synth: Path) -> tuple[Path, Path]:
    images = tmp_path / "images"
    images.mkdir()
    for f in (synth / "images" / "train").iterdir():
        (images / f.name).write_bytes(f.read_bytes())
    return images, synth / "annotations" / "person_keypoints_train.json"


def test_truncated_jpeg_and_wrong_size_are_found(tmp_path, synth):
    images, ann = _image_set(tmp_path, synth)
    files = sorted(images.iterdir())
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) * 2 // 3])
    assert inspect_image(files[0])[1].startswith("truncated JPEG")
    assert inspect_image(files[1]) == ((96, 96), "")
    cv2.imwrite(str(files[1]), np.zeros((80, 96, 3), np.uint8))
    assert inspect_image(files[1]) == ((96, 80), "")

    # evaluation: an error naming the file, before any model runs
    with pytest.raises(HeatposeError, match=r"image does not match its annotation: .*\.jpg"):
        build_dataset(_cfg(synth, ann, images), "val")
    # training: skipped and counted while the share is small enough ...
    dataset = build_dataset(_cfg(synth, ann, images, max_bad_image_share=0.5), "train")
    assert all(Path(s.image_path).name not in (files[0].name, files[1].name) for s in dataset.samples)
    assert any("skipped 2 of 4 images" in n for n in dataset.coco_gt.notes)
    # ... and a stop when more than data.max_bad_image_share of the images are bad
    with pytest.raises(HeatposeError, match=r"2 of 4 images are unusable .*max_bad_image_share 0.25"):
        build_dataset(_cfg(synth, ann, images, max_bad_image_share=0.25), "train")


def test_truncation_check_on_a_real_jpeg(tmp_path):
    """A real COCO photo cut anywhere is found; a camera trailer after the end marker is not an error."""
    data = shared_path("mmpose_testdata", "coco", "000000000785.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    for frac in (0.2, 0.5, 0.9, 0.995):
        path.write_bytes(data[: int(len(data) * frac)])
        assert inspect_image(path) == ((640, 425), "truncated JPEG (no end-of-image marker)")
    path.write_bytes(data + b"SEFH" * 40)
    assert inspect_image(path) == ((640, 425), "")


def test_exif_orientation_is_ignored(tmp_path):
    """Annotations refer to the stored pixel grid: a rotate-90 EXIF tag must not turn the image."""
    from PIL import Image

    path = tmp_path / "tall.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    Image.fromarray(np.full((40, 100, 3), 128, np.uint8)).save(path, exif=exif.tobytes())
    assert read_image(path).shape == (40, 100, 3)
    assert cv2.imread(str(path)).shape == (100, 40, 3)  # what a plain cv2.imread would have used
    assert inspect_image(path) == ((100, 40), "")


# ------------------------------------------------ issue 13 item 3: undefined metrics


def test_undefined_metrics_are_nan_null_and_na(synth, tmp_path):
    ann = synth / "annotations" / "person_keypoints_train.json"
    data = json.loads(ann.read_text())
    stats = evaluate_keypoints(ann, _perfect(data))
    assert math.isnan(stats["APl"]) and math.isnan(stats["ARl"]) and stats["AP"] == 1.0
    out = io.StringIO()
    score_command(str(ann), _write(tmp_path / "p.json", _perfect(data)), as_json=True, out=out)
    assert json.loads(out.getvalue())["APl"] is None  # valid JSON: null, not NaN
    assert format_table(stats).splitlines()[1].split()[-1] == "n/a"
    assert set(undefined_metrics(load_coco_gt(ann), ("AP", "APm", "APl"))) == {"APl"}


def test_undefined_save_metric_is_an_error_before_training(synth, tmp_path):
    ann = synth / "annotations" / "person_keypoints_train.json"
    cfg = _cfg(synth, ann)
    cfg.train.save_metric = "APl"
    work = tmp_path / "work"
    with pytest.raises(HeatposeError, match=r"'train.save_metric': APl is undefined on the validation set"):
        train(cfg, work)
    assert not (work / "latest.pth").exists()
