"""Label-tool converters: small exports written here -> the expected COCO json (heatpose convert)."""

from __future__ import annotations

import json

import pytest

from heatpose.cli import main
from heatpose.errors import HeatposeError
from heatpose.schema_io import resolve_schema

SCHEMA_YAML = "name: hands\nkeypoints: [head, l_hand, r_hand]\nskeleton: [[head, l_hand], [head, r_hand]]\n"
CATEGORY = {
    "id": 1, "name": "hands", "supercategory": "hands", "keypoints": ["head", "l_hand", "r_hand"],
    "skeleton": [[1, 2], [1, 3]],
}  # fmt: skip


def _ann(i, image_id, kpts, bbox):
    visible = sum(v > 0 for v in kpts[2::3])
    return {"id": i, "image_id": image_id, "category_id": 1, "keypoints": kpts, "num_keypoints": visible,
            "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0}  # fmt: skip


def _convert(tmp_path, tool, src, capsys):
    schema = tmp_path / "schema.yaml"
    schema.write_text(SCHEMA_YAML)
    out = tmp_path / "out.json"
    assert main(["convert", "--from", tool, str(src), "--out", str(out), "--schema", str(schema)]) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def _assert_coco(got, expected):
    assert got["images"] == expected["images"]
    assert got["categories"] == expected["categories"]
    assert len(got["annotations"]) == len(expected["annotations"])
    for g, e in zip(got["annotations"], expected["annotations"], strict=True):
        assert g["keypoints"] == pytest.approx(e["keypoints"]) and g["bbox"] == pytest.approx(e["bbox"])
        assert {k: v for k, v in g.items() if k not in ("keypoints", "bbox", "area")} == {
            k: v for k, v in e.items() if k not in ("keypoints", "bbox", "area")
        }
        assert g["area"] == pytest.approx(e["area"])


def test_labelme_round_trip_with_groups_boxes_and_malformed_rows(tmp_path, capsys):
    shapes = [
        {"label": "head", "points": [[10, 10]], "group_id": 1, "shape_type": "point"},
        {"label": "l_hand", "points": [[20, 30]], "group_id": 1, "shape_type": "point"},
        {"label": "person", "points": [[40, 50], [5, 5]], "group_id": 1, "shape_type": "rectangle"},
        {"label": "head", "points": [[60, 10]], "group_id": 2, "shape_type": "point"},
        {"label": "r_hand", "points": [[70, 40]], "group_id": 2, "shape_type": "point"},
        {"label": "head", "points": [[1, 1]], "group_id": None, "shape_type": "point"},  # no group
        {"label": "arm", "points": [[1, 1], [2, 2], [3, 1]], "group_id": 1, "shape_type": "polygon"},
        {"label": "r_hand", "points": [["x", 3]], "group_id": 1, "shape_type": "point"},  # malformed
    ]
    src = tmp_path / "a.json"
    src.write_text(
        json.dumps({"shapes": shapes, "imagePath": "../imgs/a.jpg", "imageWidth": 100, "imageHeight": 80})
    )
    got, out = _convert(tmp_path, "labelme", src, capsys)
    expected = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "categories": [CATEGORY],
        "annotations": [
            _ann(1, 1, [10, 10, 2, 20, 30, 2, 0, 0, 0], [5, 5, 35, 45]),
            # no box: joints' box x 60..70, y 10..40 -> margin max(0.1 * 30, 4) = 4
            _ann(2, 1, [60, 10, 2, 0, 0, 0, 70, 40, 2], [56, 6, 18, 38]),
        ],
    }
    _assert_coco(got, expected)
    skipped = [line for line in out.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 3
    assert "shape 5" in skipped[0] and "no group_id" in skipped[0]
    assert "shape 6" in skipped[1] and "polygon" in skipped[1]
    assert "shape 7" in skipped[2] and "not [x, y] numbers" in skipped[2]
    # the file is usable as it is: data.schema auto reads the category, flip pairs from the names
    assert resolve_schema("auto", tmp_path / "out.json").schema.flip_pairs == ((1, 2),)


CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="imgs/a.png" width="100" height="80">
    <box label="person" occluded="0" xtl="2" ytl="3" xbr="50" ybr="60"/>
    <skeleton label="person">
      <points label="head" occluded="1" outside="0" points="10,10"/>
      <points label="l_hand" occluded="0" outside="0" points="20.5,30"/>
      <points label="r_hand" occluded="0" outside="1" points="0,0"/>
    </skeleton>
  </image>
  <image id="1" name="b.png" width="64" height="64">
    <points label="head" occluded="0" points="5,5" group_id="1"/>
    <points label="r_hand" occluded="0" points="15,25" group_id="1"/>
    <box label="person" occluded="0" xtl="1" ytl="1" xbr="30" ybr="40" group_id="1"/>
    <points label="head" occluded="0" points="40,5" group_id="2"/>
    <points label="l_hand" occluded="0" points="1,2;3,4" group_id="2"/>
    <polygon label="arm" points="1,1;2,2;3,1"/>
  </image>
</annotations>
"""


def test_cvat_round_trip_with_skeletons_flags_groups_and_malformed_rows(tmp_path, capsys):
    src = tmp_path / "annotations.xml"
    src.write_text(CVAT_XML)
    got, out = _convert(tmp_path, "cvat-xml", src, capsys)
    expected = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 100, "height": 80},
            {"id": 2, "file_name": "b.png", "width": 64, "height": 64},
        ],
        "categories": [CATEGORY],
        "annotations": [
            _ann(1, 1, [10, 10, 1, 20.5, 30, 2, 0, 0, 0], [2, 3, 48, 57]),  # occluded -> 1, outside -> 0
            _ann(2, 2, [5, 5, 2, 0, 0, 0, 15, 25, 2], [1, 1, 29, 39]),
            _ann(3, 2, [40, 5, 2, 0, 0, 0, 0, 0, 0], [36, 1, 8, 8]),  # one joint: margin 4 px
        ],
    }
    _assert_coco(got, expected)
    skipped = [line for line in out.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 2
    assert "'l_hand'" in skipped[0] and "one 'x,y' pair" in skipped[0]
    assert "<polygon>" in skipped[1]


def test_label_studio_round_trip_percent_coordinates_relations_and_malformed_rows(tmp_path, capsys):
    size = {"original_width": 200, "original_height": 100}

    def point(rid, x, y, label):
        return {
            "id": rid,
            "type": "keypointlabels",
            **size,
            "value": {"x": x, "y": y, "keypointlabels": [label]},
        }

    results = [
        {"id": "box", "type": "rectanglelabels", **size,
         "value": {"x": 10, "y": 10, "width": 20, "height": 50, "rectanglelabels": ["person"]}},
        point("p1", 15, 20, "head"),  # (30, 20) px: inside the box
        point("p2", 90, 90, "l_hand"),  # (180, 90) px: in no box, no relation
        point("p3", 95, 50, "r_hand"),  # outside the box, but related to it
        {"type": "relation", "from_id": "p3", "to_id": "box", "direction": "right"},
        {"id": "poly", "type": "polygonlabels", **size, "value": {"points": [[1, 1]], "polygonlabels": []}},
        point("p4", "?", 5, "head"),  # malformed
    ]  # fmt: skip
    tasks = [
        {
            "id": 7,
            "data": {"image": "/data/upload/1/abc-frame.jpg"},
            "annotations": [{"id": 1, "result": results}],
        }
    ]
    src = tmp_path / "export.json"
    src.write_text(json.dumps(tasks))
    got, out = _convert(tmp_path, "label-studio", src, capsys)
    expected = {
        "images": [{"id": 1, "file_name": "abc-frame.jpg", "width": 200, "height": 100}],
        "categories": [CATEGORY],
        "annotations": [_ann(1, 1, [30, 20, 2, 0, 0, 0, 190, 50, 2], [20, 10, 40, 50])],
    }
    _assert_coco(got, expected)
    skipped = [line for line in out.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 3
    assert any("region p2" in line and "0 rectangles" in line for line in skipped)
    assert any("region poly" in line and "polygonlabels" in line for line in skipped)
    assert any("region p4" in line and "numeric x, y" in line for line in skipped)


def test_labels_outside_the_schema_are_named_and_inputs_checked(tmp_path, capsys):
    shapes = [{"label": "tail", "points": [[3, 3]], "shape_type": "point"},
              {"label": "head", "points": [[5, 5]], "shape_type": "point"}]  # fmt: skip
    src = tmp_path / "t.json"
    src.write_text(json.dumps({"shapes": shapes, "imagePath": "t.jpg", "imageWidth": 10, "imageHeight": 10}))
    got, out = _convert(tmp_path, "labelme", src, capsys)
    assert len(got["annotations"]) == 1
    assert "label 'tail' is not a joint of the schema" in out
    with pytest.raises(HeatposeError, match=r"not a 'CVAT for images 1\.1' export"):
        from heatpose.convert import convert

        bad = tmp_path / "bad.xml"
        bad.write_text("<root/>")
        convert("cvat-xml", bad, tmp_path / "o.json")


def test_converted_file_feeds_the_training_dataset(tmp_path, capsys):
    import cv2
    import numpy as np

    from heatpose.config import config_from_dict
    from heatpose.data.dataset import build_dataset

    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((80, 100, 3), 90, np.uint8))
    shapes = [
        {"label": "head", "points": [[50, 10]], "shape_type": "point"},
        {"label": "l_hand", "points": [[70, 50]], "shape_type": "point"},
        {"label": "r_hand", "points": [[30, 50]], "shape_type": "point"},
    ]
    src = tmp_path / "a.json"
    src.write_text(json.dumps({"shapes": shapes, "imagePath": "a.jpg", "imageWidth": 100, "imageHeight": 80}))
    coco, _ = _convert(tmp_path, "labelme", src, capsys)
    assert len(coco["annotations"]) == 1
    cfg = config_from_dict(
        {
            "model": {"num_joints": 0},
            "data": {
                "schema": "auto",
                "train_ann": str(tmp_path / "out.json"),
                "train_images": str(tmp_path),
            },
        }
    )
    dataset = build_dataset(cfg, "train")
    assert dataset.schema.joint_names == ("head", "l_hand", "r_hand") and dataset.flip_index == [0, 2, 1]
    item = dataset[0]
    assert item["target"].shape[0] == 3 and item["target_weight"].tolist() == [1.0, 1.0, 1.0]
