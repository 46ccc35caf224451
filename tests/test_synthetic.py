"""The synthetic dataset: reproducible, valid COCO/MPII files, flags that match the pixels."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from heatpose.data.synthetic import BODY_JOINTS, render_synthetic_image, write_synthetic_dataset
from heatpose.errors import HeatposeError
from heatpose.keypoints import COCO17, MPII16

# pycocotools' mask decoding warns under numpy 2; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SIZE = (160, 128)  # (width, height): small images keep the tests fast


def _write(root: Path, layout: str = "coco", seed: int = 3, n: int = 8, split: str = "train") -> dict:
    return write_synthetic_dataset(
        root, n, seed, layout=layout, image_size=SIZE, split_name=split, progress=False
    )


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory) -> dict:
    return _write(tmp_path_factory.mktemp("coco"), n=12)


@pytest.fixture(scope="module")
def mpii_set(tmp_path_factory) -> dict:
    return _write(tmp_path_factory.mktemp("mpii"), layout="mpii", n=12)


def _quiet_coco(path: str) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(path)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    _write(tmp_path / "a", n=4)
    _write(tmp_path / "b", n=4)
    _write(tmp_path / "c", seed=4, n=4)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert len(a) == 5 and a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a)


def test_layouts_draw_the_same_pixels_and_splits_differ():
    coco, mpii = render_synthetic_image(5, 0, "coco", SIZE), render_synthetic_image(5, 0, "mpii", SIZE)
    assert np.array_equal(coco.image, mpii.image)
    val = render_synthetic_image(5, 0, "coco", SIZE, split_name="val")
    assert not np.array_equal(coco.image, val.image)


def test_summary_and_files(coco_set, mpii_set):
    assert coco_set["num_images"] == 12 and coco_set["num_people"] >= 12 and coco_set["mpii_file"] is None
    assert len(list(Path(coco_set["image_dir"]).glob("*.jpg"))) == 12
    assert (Path(coco_set["image_dir"]) / "000000000001.jpg").is_file()
    assert Path(mpii_set["mpii_file"]).name == "mpii_train.json"
    assert not list(Path(coco_set["root"]).rglob("*.tmp"))


@pytest.mark.parametrize("layout", ["coco", "mpii"])
def test_coco_json_is_valid(layout, coco_set, mpii_set):
    summary = coco_set if layout == "coco" else mpii_set
    schema = COCO17 if layout == "coco" else MPII16
    gt = _quiet_coco(summary["annotation_file"])
    (cat,) = gt.loadCats(gt.getCatIds())
    assert cat["name"] == "person" and cat["keypoints"] == list(schema.joint_names)
    assert cat["skeleton"] == [[a + 1, b + 1] for a, b in schema.skeleton]
    for ann in gt.loadAnns(gt.getAnnIds()):
        img = gt.imgs[ann["image_id"]]
        w, h = img["width"], img["height"]
        assert (w, h) == SIZE and ann["category_id"] == 1 and ann["iscrowd"] == 0
        k = np.array(ann["keypoints"], float).reshape(-1, 3)
        assert len(ann["keypoints"]) == 3 * schema.num_joints
        assert ann["num_keypoints"] == int((k[:, 2] > 0).sum()) > 0
        assert set(k[:, 2]) <= {0, 1, 2}
        x, y, bw, bh = ann["bbox"]
        assert bw > 0 and bh > 0 and x >= 0 and y >= 0 and x + bw <= w and y + bh <= h
        assert ann["area"] > 0 and ann["area"] == gt.annToMask(ann).sum()
        seen, unseen = k[k[:, 2] > 0], k[k[:, 2] == 0]
        assert np.all((seen[:, 0] >= 0) & (seen[:, 0] <= w - 1) & (seen[:, 1] >= 0) & (seen[:, 1] <= h - 1))
        assert np.all(seen[:, 0] >= x - 0.5) and np.all(seen[:, 0] <= x + bw + 0.5)
        assert np.all(unseen[:, :2] == 0)


def test_ground_truth_scores_ap_one(coco_set):
    gt = _quiet_coco(coco_set["annotation_file"])
    results = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt.loadAnns(gt.getAnnIds())
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP
    assert ev.stats[5] == pytest.approx(1.0)  # AR


@pytest.mark.parametrize("index", range(12))
def test_flags_match_the_drawing(index):
    scene = render_synthetic_image(11, index, "coco", SIZE)
    h, w = scene.image.shape[:2]
    assert scene.image.dtype == np.uint8 and (w, h) == SIZE and 1 <= len(scene.people) <= 4
    face = [BODY_JOINTS.index(n) for n in ("nose", "left_eye", "right_eye")]
    for i, person in enumerate(scene.people):
        cover = scene.occluder_mask.copy()
        for later in scene.people[i + 1 :]:
            cover |= later.mask
        assert np.array_equal(person.visible_mask, person.mask & ~cover)
        for j, (x, y, v) in enumerate(person.body_keypoints):
            if v == 0:
                assert x == y == 0
                continue
            px, py = round(x), round(y)
            assert person.mask[py, px], "every labelled joint lies on its own drawn body"
            if v == 2:
                assert not cover[py, px]
            elif person.front or j not in face:
                assert cover[py, px]
        if not person.front:  # seen from behind: no face drawn, nose and eyes labelled occluded
            assert all(person.body_keypoints[j, 2] in (0, 1) for j in face)


def test_left_right_follows_facing():
    """Facing the camera: the person's left is on the image right (in the body's own frame)."""
    j = {name: BODY_JOINTS.index(name) for name in BODY_JOINTS}
    checked = 0
    for index in range(20):
        for person in render_synthetic_image(4, index, "coco", SIZE).people:
            k = person.body_keypoints
            names = ("thorax", "pelvis", "left_shoulder", "right_shoulder")
            if any(k[j[n], 2] == 0 for n in names):
                continue
            down = k[j["pelvis"], :2] - k[j["thorax"], :2]
            lateral = k[j["left_shoulder"], :2] - k[j["right_shoulder"], :2]
            cross = down[0] * lateral[1] - down[1] * lateral[0]  # < 0: left is on the image right
            assert (cross < 0) == person.front
            checked += 1
    assert checked >= 20


def test_mpii_list_matches_coco_json(mpii_set):
    records = json.loads(Path(mpii_set["mpii_file"]).read_text())
    anns = json.loads(Path(mpii_set["annotation_file"]).read_text())
    names = {im["id"]: im["file_name"] for im in anns["images"]}
    assert len(records) == len(anns["annotations"]) == mpii_set["num_people"]
    for rec, ann in zip(records, anns["annotations"], strict=True):
        assert set(rec) == {"image", "center", "scale", "joints", "joints_vis", "headbox"}
        assert rec["image"] == names[ann["image_id"]]
        k = np.array(ann["keypoints"], float).reshape(16, 3)
        joints, vis = np.array(rec["joints"], float), np.array(rec["joints_vis"])
        assert joints.shape == (16, 2) and vis.tolist() == (k[:, 2] > 0).astype(int).tolist()
        # 1-based (MATLAB) like the official file: the official reader subtracts 1
        assert np.allclose(joints[vis == 1] - 1, k[vis == 1, :2], atol=1e-3)
        assert np.all(joints[vis == 0] == -1)
        x1, y1, x2, y2 = rec["headbox"]
        assert x2 > x1 and y2 > y1 and rec["scale"] > 0
        # the official reader's crop (center moved down 15*s, scale x1.25) holds every joint
        c = np.array(rec["center"]) - 1 + [0, 15 * rec["scale"]]
        half = rec["scale"] * 1.25 * 200 / 2
        assert np.all(np.abs(k[vis == 1, :2] - c) <= half)


def test_mpii_head_top_is_inside_its_headbox():
    scene = render_synthetic_image(2, 0, "mpii", SIZE)
    for person in scene.people:
        x, y, v = person.keypoints[MPII16.joint_names.index("head_top")]
        x1, y1, x2, y2 = person.headbox
        if v > 0:
            assert x1 <= x <= x2 and y1 <= y <= y2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_images": 0}, "num_images"),
        ({"layout": "lsp"}, "layout"),
        ({"image_size": (32, 256)}, "image_size"),
        ({"image_size": (320.0, 256)}, "image_size"),
        ({"seed": -1}, "seed"),
        ({"split_name": "../x"}, "split_name"),
    ],
)
def test_bad_arguments_are_user_errors(tmp_path, kwargs, message):
    args = {"num_images": 1, "seed": 0, "layout": "coco", **kwargs}
    with pytest.raises(HeatposeError, match=message):
        write_synthetic_dataset(tmp_path, args.pop("num_images"), args.pop("seed"), progress=False, **args)
    assert not list(tmp_path.iterdir())
