"""LIP pose csv: nan joints, malformed rows named in one line, head-top to upper-neck PCKh, boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from heatpose.data.lip import NORMALIZER, lip_people, read_lip_csv
from heatpose.errors import HeatposeError
from heatpose.evaluation.pck import compute_pckh
from heatpose.keypoints import LIP16


def lip_row(name: str, joints: np.ndarray, flags: list[str] | None = None) -> str:
    """One csv line: name, then 16 x (x, y, v); NaN coordinates are written as the literal nan."""
    cells = [name]
    for j, (x, y) in enumerate(joints):
        v = flags[j] if flags else "1"
        cells += ["nan", "nan", "nan"] if np.isnan(x) else [f"{x:g}", f"{y:g}", v]
    return ",".join(cells)


def person(offset: float = 0.0) -> np.ndarray:
    joints = np.stack([np.arange(16) * 3.0 + 10 + offset, np.arange(16) * 2.0 + 20], axis=1)
    joints[8] = [40.0 + offset, 30.0]  # upper neck
    joints[9] = [40.0 + offset, 18.0]  # head top: head size 12
    return joints


def test_nan_joints_head_sizes_and_flags(tmp_path):
    a, b, c = person(), person(5.0), person()
    b[3] = np.nan  # a missing hip
    c[8] = np.nan  # no upper neck: no head size
    path = tmp_path / "lip_val_set.csv"
    flags = ["0"] * 16
    path.write_text(
        "\n".join([lip_row("1_1.jpg", a), lip_row("2_1.jpg", b, flags), lip_row("3_1.jpg", c)]) + "\n"
    )
    ann = read_lip_csv(path)
    assert ann.image_names == ["1_1.jpg", "2_1.jpg", "3_1.jpg"]
    assert not ann.annotated[1, 3] and ann.annotated[1].sum() == 15 and np.all(ann.joints[1, 3] == 0)
    assert ann.head_size.tolist() == [12.0, 12.0, 0.0]  # head top to upper neck, no 0.6 factor
    assert ann.flags[1, 0] == 0 and ann.flags[0, 0] == 1 and np.isnan(ann.flags[1, 3])  # kept as given
    gt = ann.ground_truth()
    assert gt.schema is LIP16 and gt.normalizer == NORMALIZER
    # 6 px = 0.5 x 12 is correct (inclusive); the person without a head size is not counted
    pred = gt.joints + np.array([6.0, 0.0])
    pred[2] += 100.0
    result = compute_pckh(pred, gt)
    assert result.columns["Mean"] == 100.0 and result.people_without_head_size == 1
    assert result.counts[3] == 1  # one hip: row 0 only (row 1 has it missing, row 2 is not counted)
    assert compute_pckh(gt.joints + np.array([6.01, 0.0]), gt).columns["Mean"] == 0.0


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("3_1.jpg,1,2,1", "line 2: 4 comma-separated fields, expected 49"),
        ("3_1.jpg," + ",".join(["abc"] * 48), "line 2, field 2: 'abc' is not a number"),
        ("3_1.jpg," + ",".join(["1"] * 47 + ["inf"]), "line 2, field 49: 'inf'"),
        (",".join([""] + ["1"] * 48), "line 2: empty image name"),
        ("3_1.jpg,nan,5,1," + ",".join(["1"] * 45), "line 2: joint 0 has one coordinate nan"),
    ],
)
def test_malformed_rows_are_one_error_naming_the_line(tmp_path, line, fragment):
    path = tmp_path / "lip.csv"
    path.write_text(lip_row("1_1.jpg", person()) + "\n" + line + "\n")
    with pytest.raises(HeatposeError, match=fragment) as err:
        read_lip_csv(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_empty_and_missing_files(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("\n\n")
    with pytest.raises(HeatposeError, match="no rows"):
        read_lip_csv(path)
    with pytest.raises(HeatposeError, match="not found"):
        read_lip_csv(tmp_path / "missing.csv")


def test_people_box_is_the_whole_image_grown_to_outside_joints(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "1_1.jpg"), np.zeros((80, 60, 3), np.uint8))  # 60 wide, 80 high
    cv2.imwrite(str(images / "2_1.jpg"), np.zeros((80, 60, 3), np.uint8))
    inside, outside = person(), person()
    outside[0] = [100.0, 40.0]  # beyond the right edge
    path = tmp_path / "lip.csv"
    path.write_text(lip_row("1_1.jpg", inside) + "\n" + lip_row("2_1.jpg", outside) + "\n")
    samples = lip_people(read_lip_csv(path), images, aspect_ratio=0.75, enlarge=1.0)
    assert samples[0].box.tolist() == [0.0, 0.0, 59.0, 79.0]
    assert samples[0].center.tolist() == pytest.approx([29.5, 39.5])
    assert samples[0].scale.tolist() == pytest.approx([59.25 / 200, 79.0 / 200])  # padded to 3:4
    assert samples[1].box.tolist() == [0.0, 0.0, 100.0, 79.0]
    assert samples[0].keypoints[:, 2].tolist() == [2.0] * 16
    with pytest.raises(HeatposeError, match="image file not found"):
        lip_people(read_lip_csv(path), tmp_path, aspect_ratio=1.0)


def test_lip_config_builds_a_dataset_and_refuses_detector_boxes(tmp_path):
    from heatpose.config import config_from_dict
    from heatpose.data.dataset import build_dataset

    images = tmp_path / "images"
    images.mkdir()
    for name in ("1_1.jpg", "2_1.jpg"):
        cv2.imwrite(str(images / name), np.full((80, 60, 3), 128, np.uint8))
    path = tmp_path / "lip_val_set.csv"
    path.write_text(lip_row("1_1.jpg", person()) + "\n" + lip_row("2_1.jpg", person(2.0)) + "\n")
    paths = {
        "train_ann": str(path),
        "train_images": str(images),
        "val_ann": str(path),
        "val_images": str(images),
    }
    cfg = config_from_dict(
        {
            "model": {"num_joints": 16},
            "data": {"dataset": "lip", "schema": "lip", "input_size": [64, 64], **paths},
        }
    )
    dataset = build_dataset(cfg, "val")
    assert len(dataset) == 2 and dataset.schema is LIP16
    item = dataset[0]
    assert item["image"].shape == (3, 64, 64) and item["target_weight"].sum() == 16
    with pytest.raises(HeatposeError, match="boxes must be 'gt'"):
        build_dataset(cfg, "val", boxes="dets.json")
