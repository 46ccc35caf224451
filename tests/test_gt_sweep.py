"""GT-json sweep: omitted, renamed and retyped fields of a COCO keypoints file (issue 13 item 1).

Every variant is either normalised with a note or refused with one line, identically by the
training reader, the evaluation reader and the scorer, and before any training step: the
readers run when datasets are built, the scorer before COCOeval. A subset goes through the
real CLI (`train`, `eval`, `score`) on a 4-image synthetic dataset.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from heatpose.config import config_from_dict
from heatpose.data.dataset import build_dataset
from heatpose.data.synthetic import write_synthetic_dataset
from heatpose.errors import HeatposeError
from heatpose.evaluation.coco import evaluate_keypoints, load_gt

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "synthetic" / "res18_64x64_d32x2_adam_lr1e-3.yaml"


def _ann(d: dict, i: int = 0) -> dict:
    """The i-th annotation with labelled keypoints."""
    return [a for a in d["annotations"] if a["num_keypoints"] > 0][i]


def _all(d: dict, fn: Callable[[dict], None], section: str = "annotations") -> None:
    for item in d[section]:
        fn(item)


def _ids(d: dict, spell: Callable) -> None:
    for img in d["images"]:
        img["id"] = spell(img["id"])
    for a in d["annotations"]:
        a["image_id"] = spell(a["image_id"])


def _second_category(d: dict) -> None:
    d["categories"].append(dict(d["categories"][0], id=2, name="mannequin"))
    d["annotations"] += [dict(a, id=a["id"] + 1000, category_id=2) for a in list(d["annotations"])]


def _crowded(d: dict) -> None:
    d["annotations"] += [dict(_ann(d), id=2000 + i) for i in range(21)]


def _no_person(d: dict) -> None:
    d["categories"][0]["name"] = "human"
    d["categories"].append(dict(d["categories"][0], id=2, name="robot"))
    d["annotations"].append(dict(_ann(d), id=999, category_id=2))


# name -> (change to the synthetic GT, "note" | "error", fragment of the one line, perfect preds score AP 1)
VARIANTS: dict[str, tuple[Callable[[dict], None], str, str, bool]] = {
    # ---- normalised, with a note
    "image_ids_numeric_strings": (lambda d: _ids(d, str), "note", "image ids are not plain integers", True),
    "image_ids_names": (lambda d: _ids(d, lambda i: f"img_{i:04d}"), "note", "not plain integers", True),
    "image_ids_floats": (lambda d: _ids(d, float), "note", "not plain integers", True),
    "ann_image_id_float": (
        lambda d: _all(d, lambda a: a.update(image_id=float(a["image_id"]))),
        "note",
        "spell image_id unlike 'images'",
        True,
    ),
    "ann_ids_strings": (
        lambda d: _all(d, lambda a: a.update(id=f"a{a['id']}")),
        "note",
        "non-integer or 0 'id'",
        True,
    ),
    "ann_id_zero": (lambda d: _ann(d).update(id=0), "note", "0 'id'", True),
    "ann_ids_missing": (lambda d: _all(d, lambda a: a.pop("id")), "note", "lack 'id'", True),
    "no_area": (lambda d: _all(d, lambda a: a.pop("area")), "note", "the box area w*h is used", True),
    "no_iscrowd": (lambda d: _all(d, lambda a: a.pop("iscrowd")), "note", "lack 'iscrowd'", True),
    "iscrowd_bool": (
        lambda d: _all(d, lambda a: a.update(iscrowd=False)),
        "note",
        "iscrowd as true/false",
        True,
    ),
    "iscrowd_float": (
        lambda d: _all(d, lambda a: a.update(iscrowd=0.0)),
        "note",
        "iscrowd as true/false",
        True,
    ),
    "no_num_keypoints": (
        lambda d: _all(d, lambda a: a.pop("num_keypoints")),
        "note",
        "lack 'num_keypoints'",
        True,
    ),
    "wrong_num_keypoints": (
        lambda d: _ann(d).update(num_keypoints=3),
        "note",
        "disagrees with the keypoints",
        True,
    ),
    "no_category_id": (lambda d: _all(d, lambda a: a.pop("category_id")), "note", "lack 'category_id'", True),
    "category_id_string": (
        lambda d: _all(d, lambda a: a.update(category_id="1")),
        "note",
        "category_id as a string",
        True,
    ),
    "category_ids_strings": (
        lambda d: d["categories"][0].update(id="1"),
        "note",
        "category ids are not plain integers",
        True,
    ),
    "bbox_as_object": (
        lambda d: _ann(d).update(bbox=dict(zip("xywh", _ann(d)["bbox"], strict=True))),
        "note",
        "bbox as an object",
        True,
    ),
    "bbox_nested": (lambda d: _ann(d).update(bbox=[_ann(d)["bbox"]]), "note", "nest bbox", True),
    "no_width_height": (
        lambda d: _all(d, lambda img: (img.pop("width"), img.pop("height")), "images"),
        "note",
        "lack width/height",
        True,
    ),
    "second_keypoint_category": (
        _second_category,
        "note",
        "2 categories: reading and scoring category 1",
        True,
    ),
    "non_keypoint_category": (
        lambda d: d["categories"].append({"id": 7, "name": "ball"}),
        "note",
        "2 categories",
        True,
    ),
    "empty_keypoints_list": (
        lambda d: d["annotations"].append(dict(_ann(d), id=77, keypoints=[])),
        "note",
        "empty 'keypoints'",
        True,
    ),
    "nested_keypoints": (
        lambda d: _all(d, lambda a: a.update(keypoints=[a["keypoints"][i : i + 3] for i in range(0, 51, 3)])),
        "note",
        "flattened",
        True,
    ),
    "more_than_20_people": (_crowded, "note", "hold more than 20 people", False),
    # ---- refused, one line naming the field and the annotation
    "duplicate_ann_id": (
        lambda d: _ann(d, 1).update(id=_ann(d)["id"]),
        "error",
        "duplicate annotation id",
        False,
    ),
    "duplicate_image_id": (
        lambda d: d["images"][1].update(id=d["images"][0]["id"]),
        "error",
        "duplicate image id",
        False,
    ),
    "unknown_image": (lambda d: _ann(d).update(image_id=4242), "error", "unknown image 4242", False),
    "nan_keypoint": (
        lambda d: _ann(d)["keypoints"].__setitem__(3, float("nan")),
        "error",
        "NaN or infinite",
        False,
    ),
    "string_keypoints": (
        lambda d: _ann(d).update(keypoints=[str(v) for v in _ann(d)["keypoints"]]),
        "error",
        "'keypoints' must be a flat list of numbers",
        False,
    ),
    "keypoint_count": (
        lambda d: _ann(d).update(keypoints=_ann(d)["keypoints"][:48]),
        "error",
        "16 keypoints",
        False,
    ),
    "visibility_3": (
        lambda d: _ann(d)["keypoints"].__setitem__(2, 3),
        "error",
        "keypoint visibility 3",
        False,
    ),
    "no_keypoints": (lambda d: _ann(d).pop("keypoints"), "error", "lacks 'keypoints'", False),
    "no_image_id": (lambda d: _ann(d).pop("image_id"), "error", "lacks 'image_id'", False),
    "no_bbox": (lambda d: _ann(d).pop("bbox"), "error", "lacks 'bbox'", False),
    "bbox_three_numbers": (lambda d: _ann(d).update(bbox=[1, 2, 3]), "error", "expected 4 numbers", False),
    "bbox_strings": (
        lambda d: _ann(d).update(bbox=["1", "2", "3", "4"]),
        "error",
        "expected 4 numbers",
        False,
    ),
    "bbox_negative": (
        lambda d: _ann(d).update(bbox=[1, 2, -3, 4]),
        "error",
        "negative width or height",
        False,
    ),
    "area_string": (lambda d: _ann(d).update(area="863"), "error", "area '863'", False),
    "area_negative": (lambda d: _ann(d).update(area=-5), "error", "area -5", False),
    "iscrowd_2": (lambda d: _ann(d).update(iscrowd=2), "error", "iscrowd 2", False),
    "image_id_fraction": (
        lambda d: d["images"][0].update(id=1.5),
        "error",
        "id 1.5, which is not an integer",
        False,
    ),
    "image_id_null": (
        lambda d: d["images"][0].update(id=None),
        "error",
        "ids must be numbers or strings",
        False,
    ),
    "width_string": (
        lambda d: d["images"][0].update(width="96"),
        "error",
        "width '96', not a positive integer",
        False,
    ),
    "unknown_category": (
        lambda d: _ann(d).update(category_id=5),
        "error",
        "category_id 5, not in 'categories'",
        False,
    ),
    "no_categories": (lambda d: d.update(categories=[]), "error", "'categories' is empty", False),
    "no_annotations_list": (lambda d: d.pop("annotations"), "error", "lacks an 'annotations' list", False),
    "two_categories_no_person": (_no_person, "error", "choose one with data.category", False),
}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    write_synthetic_dataset(
        root, num_images=4, seed=0, image_size=(96, 96), split_name="train", progress=False
    )
    return root


def _variant(synth: Path, out_dir: Path, name: str) -> tuple[Path, dict]:
    data = json.loads((synth / "annotations" / "person_keypoints_train.json").read_text())
    changed = copy.deepcopy(data)
    VARIANTS[name][0](changed)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(changed))
    return path, changed


def _flat(kpts: object) -> list:
    if isinstance(kpts, list) and kpts and all(isinstance(p, list) for p in kpts):
        return [v for p in kpts for v in p]
    return kpts if isinstance(kpts, list) else []


def _perfect_preds(d: dict) -> list[dict]:
    """One exact result per labelled person of the person category, with the ids as the file writes them."""
    cats = d.get("categories") or [{"id": 1}]
    person = cats[0]["id"]
    return [
        {
            "image_id": a["image_id"],
            "category_id": a.get("category_id", person),
            "keypoints": _flat(a.get("keypoints")),
            "score": 1.0,
        }
        for a in d.get("annotations", [])
        if str(a.get("category_id", person)) == str(person)
        and max(_flat(a.get("keypoints"))[2::3], default=0) > 0
    ]


def _overrides(ann: Path, images: Path) -> list[str]:
    return [
        f"data.train_ann={ann}",
        f"data.val_ann={ann}",
        f"data.train_images={images}",
        f"data.val_images={images}",
        "train.epochs=1",
        "train.batch_size=8",
        "train.num_workers=0",
        "test.batch_size=16",
    ]


def _outcome(fn: Callable[[], list[str]]) -> tuple[str, list[str]]:
    try:
        return "note", fn()
    except HeatposeError as err:
        return "error", [str(err)]


def test_the_sweep_has_at_least_25_variants_of_each_kind_in_all():
    kinds = [v[1] for v in VARIANTS.values()]
    assert len(VARIANTS) >= 25 and kinds.count("note") >= 12 and kinds.count("error") >= 12


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_is_treated_identically_by_train_eval_and_score(synth, tmp_path, name):
    _, kind, fragment, perfect = VARIANTS[name]
    ann, data = _variant(synth, tmp_path, name)
    cfg = config_from_dict(
        {"model": {"backbone_depth": 18, "num_deconv_layers": 2, "num_deconv_filters": 32}},
        [*_overrides(ann, synth / "images" / "train"), "data.input_size=[64, 64]"],
    )
    stats: dict[str, float] = {}

    def score() -> list[str]:
        gt = load_gt(ann)
        stats.update(evaluate_keypoints(gt, _perfect_preds(data)))
        return gt.notes

    outcomes = {
        "train": _outcome(lambda: build_dataset(cfg, "train").coco_gt.notes),
        "eval": _outcome(lambda: build_dataset(cfg, "val").coco_gt.notes),
        "score": _outcome(score),
    }
    for command, (got_kind, lines) in outcomes.items():
        assert got_kind == kind, (command, lines)
        assert any(fragment in line for line in lines), (command, lines)
        assert all("\n" not in line for line in lines)
    if kind == "error":  # the same one line from all three
        assert outcomes["train"][1] == outcomes["eval"][1] == outcomes["score"][1]
        assert str(ann) in outcomes["score"][1][0]
    elif perfect:
        assert stats["AP"] == 1.0, stats


# --------------------------------------------------------------------------- through the CLI


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heatpose", *args], capture_output=True, text=True, cwd=ROOT)


def _sets(overrides: list[str]) -> list[str]:
    return [x for o in overrides for x in ("--set", o)]


def test_cli_refuses_before_training_and_before_the_model(synth, tmp_path):
    ann, data = _variant(synth, tmp_path, "duplicate_ann_id")
    sets = _sets(_overrides(ann, synth / "images" / "train"))
    work = tmp_path / "work"
    lines = []
    train = run_cli("train", str(CONFIG), "--work-dir", str(work), *sets)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")  # eval must fail on the GT, before it reads the model
    evaluate = run_cli("eval", str(CONFIG), "--checkpoint", str(junk), *sets)
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(_perfect_preds(data)))
    score = run_cli("score", "--gt", str(ann), "--preds", str(preds))
    for proc in (train, evaluate, score):
        assert proc.returncode == 2, proc.stderr
        err = [line for line in proc.stderr.splitlines() if line.startswith("heatpose: ")]
        assert len(err) == 1 and "Traceback" not in proc.stderr, proc.stderr
        lines.append(err[0])
    assert lines[0] == lines[1] == lines[2] and "duplicate annotation id" in lines[0]
    assert not (work / "latest.pth").exists() and "epoch 1" not in train.stderr


def test_cli_trains_evaluates_and_scores_with_string_ids_and_no_area(synth, tmp_path):
    data = json.loads((synth / "annotations" / "person_keypoints_train.json").read_text())
    _ids(data, lambda i: f"frame_{i:03d}")
    for a in data["annotations"]:
        a.pop("area")
    ann = tmp_path / "named.json"
    ann.write_text(json.dumps(data))
    sets = _sets(_overrides(ann, synth / "images" / "train"))
    work = tmp_path / "work"
    train = run_cli("train", str(CONFIG), "--work-dir", str(work), *sets)
    assert train.returncode == 0, train.stderr
    notes = [line for line in train.stderr.splitlines() if line.startswith("heatpose: note:")]
    assert any("lack 'area'" in n for n in notes) and any("not plain integers" in n for n in notes)
    assert train.stderr.index("lack 'area'") < train.stderr.index("epoch 1/1")  # said before training
    assert (work / "latest.pth").is_file()

    out = tmp_path / "eval"
    evaluate = run_cli(
        "eval", str(CONFIG), "--checkpoint", str(work / "latest.pth"), "--out-dir", str(out), *sets
    )
    assert evaluate.returncode == 0, evaluate.stderr
    assert "category 1 ('person')" in evaluate.stdout and "lack 'area'" in evaluate.stdout
    results = json.loads((out / "keypoints_results.json").read_text())
    assert results and {r["image_id"] for r in results} <= {img["id"] for img in data["images"]}
    meta = json.loads((out / "eval_meta.json").read_text())
    assert meta["metrics"]["APl"] is None  # no large people: undefined, null in json

    score = run_cli("score", "--gt", str(ann), "--preds", str(out / "keypoints_results.json"), "--json")
    assert score.returncode == 0, score.stderr
    assert json.loads(score.stdout) == meta["metrics"]
    assert "lack 'area'" in score.stderr
