"""COCO reader: the official person set, detection boxes, and clear errors on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from heatpose.data.coco import read_coco_people
from heatpose.errors import HeatposeError
from tests.conftest import shared_path


def test_reads_coco_mini_val_like_the_official_loader():
    root = shared_path("coco_mini")
    ann = root / "annotations/person_keypoints_val2017.json"
    people = read_coco_people(ann, root / "images/val2017", 17, aspect_ratio=0.75)
    gt = json.loads(ann.read_text())
    expected = [a for a in gt["annotations"] if not a["iscrowd"] and max(a["keypoints"]) > 0]
    assert len(people) == len(expected) == 68
    for person in people:
        assert person.box_source == "gt"
        assert person.keypoints.shape == (17, 3)
        np.testing.assert_allclose(person.scale[0] / person.scale[1], 0.75, rtol=1e-5)
        assert (person.box[2:] > 0).all()


def test_detection_boxes_are_explicit_and_thresholded():
    root = shared_path("mmpose_testdata", "coco")
    det = root / "test_coco_det_AP_H_56.json"
    all_people = read_coco_people(root / "test_coco.json", root, 17, 0.75, boxes=str(det))
    strong = read_coco_people(root / "test_coco.json", root, 17, 0.75, boxes=str(det), det_score_thr=0.5)
    dets = [d for d in json.loads(det.read_text()) if d["category_id"] == 1]
    assert len(all_people) == len(dets)
    assert len(strong) == sum(d["score"] >= 0.5 for d in dets) < len(dets)
    assert all(p.box_source == str(det) and p.keypoints.max() == 0 for p in strong)


def _tiny_coco(tmp_path, **ann_overrides):
    ann = {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "iscrowd": 0,
        "area": 100.0,
        "bbox": [2, 2, 10, 20],
        "num_keypoints": 1,
        "keypoints": [5, 5, 2] + [0] * 48,
    }
    ann.update(ann_overrides)
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 32, "height": 32}],
        "annotations": [ann],
        "categories": [{"id": 1, "name": "person"}],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    (tmp_path / "a.jpg").write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"keypoints": [5, 5, 2] * 16}, "has 16 keypoints, expected 17"),
        ({"image_id": 9}, "unknown image 9"),
        ({"keypoints": [float("nan")] * 51}, "NaN or infinite keypoint"),
        ({"keypoints": ["5"] * 51}, "flat list of numbers"),
        ({"area": "100"}, "area '100'"),
    ],
)
def test_bad_annotations_name_the_problem(tmp_path, overrides, message):
    with pytest.raises(HeatposeError, match=message):
        read_coco_people(_tiny_coco(tmp_path, **overrides), tmp_path, 17, 0.75)


def test_malformed_json_and_missing_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [1, 2,')
    with pytest.raises(HeatposeError, match=r"not valid JSON: .* at line 1"):
        read_coco_people(bad, tmp_path, 17, 0.75)
    with pytest.raises(HeatposeError, match="file not found"):
        read_coco_people(tmp_path / "nope.json", tmp_path, 17, 0.75)
    ann = _tiny_coco(tmp_path)
    (tmp_path / "a.jpg").unlink()
    with pytest.raises(HeatposeError, match=r"image file not found: .*a\.jpg"):
        read_coco_people(ann, tmp_path, 17, 0.75)


def test_zero_area_detection_is_an_error(tmp_path):
    ann = _tiny_coco(tmp_path)
    det = tmp_path / "det.json"
    det.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 5], "score": 0.9}]))
    with pytest.raises(HeatposeError, match="zero-area box"):
        read_coco_people(ann, tmp_path, 17, 0.75, boxes=str(det))


@pytest.mark.parametrize("box_area", [([2, 2, 0, 0], 0.0), ([2, 2, 0.5, 0.5], 0.25), ([40, 40, 5, 5], 25.0)])
def test_tiny_and_off_image_gt_boxes_are_dropped_and_counted(tmp_path, box_area):
    """Issue 6 item 5: the official clean_bbox drops such people; one zero-area box used to abort."""
    from heatpose.data.coco import read_coco_dataset

    box, area = box_area
    gt, people = read_coco_dataset(_tiny_coco(tmp_path, bbox=box, area=area), tmp_path, 17, 0.75)
    assert people == []
    assert any("dropped 1 people" in line and "clean_bbox" in line for line in gt.notes), gt.notes
