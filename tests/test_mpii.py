"""MPII readers: the official json list (adjustment, 0-based), pose-hg h5, gt_<split>.mat, samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.io import savemat

from heatpose.data.mpii import (
    mpii_people,
    read_mpii_annotations,
    read_mpii_h5,
    read_mpii_json,
)
from heatpose.errors import HeatposeError
from heatpose.evaluation.pck import compute_pckh
from heatpose.evaluation.pckh_score import load_pckh_ground_truth
from tests.conftest import shared_path


def test_json_reader_applies_the_official_adjustment_and_0_based_shift():
    path = shared_path("mmpose_testdata", "mpii", "test_mpii.json")
    raw = json.loads(path.read_text())
    ann = read_mpii_json(path)
    assert len(ann) == len(raw) == 5
    for i, e in enumerate(raw):
        s = e["scale"]
        # official: center.y += 15 * scale, scale *= 1.25, then center - 1 (MATLAB -> 0-based)
        expected_center = np.array([e["center"][0] - 1, e["center"][1] + 15 * s - 1])
        np.testing.assert_allclose(ann.center[i], expected_center, rtol=0, atol=1e-9)
        assert ann.scale[i] == pytest.approx(1.25 * s, abs=1e-12)
        vis = np.asarray(e["joints_vis"]) > 0
        np.testing.assert_array_equal(ann.annotated[i], vis)
        np.testing.assert_allclose(ann.joints[i][vis], np.asarray(e["joints"])[vis] - 1, atol=1e-12)
        assert np.all(ann.joints[i][~vis] == 0)
    assert ann.image_names[0] == "005808361.jpg"
    assert ann.joints[0, 0].tolist() == [803.0, 710.0]


def test_json_adjusted_boxes_are_the_valid_h5_boxes():
    """pose-hg's h5 stores the adjusted centre/scale: the two readers agree row for row."""
    ann = read_mpii_json(shared_path("mmpose_testdata", "mpii", "test_mpii.json"))
    h5 = read_mpii_h5(shared_path("mpii_valid_split", "valid.h5"))
    rows = {name: i for i, name in reversed(list(enumerate(h5.image_names)))}
    for i, name in enumerate(ann.image_names):
        j = rows[name]
        np.testing.assert_allclose(ann.center[i], h5.center[j], atol=1e-4)
        assert ann.scale[i] == pytest.approx(h5.scale[j], abs=1e-5)
        np.testing.assert_array_equal(ann.annotated[i], h5.annotated[j])
        # the h5 truncates the fractional head top / upper neck to whole pixels
        assert np.abs(ann.joints[i] - h5.joints[j]).max() < 1.0


def test_h5_reader():
    h5 = read_mpii_h5(shared_path("mpii_valid_split", "valid.h5"))
    assert len(h5) == 2958 and h5.joints.shape == (2958, 16, 2)
    assert h5.joints[0, 0].tolist() == [803.0, 710.0]  # part[0][0] = (804, 711), 1-based
    assert h5.annotated.sum() == 2958 * 16 - 3088
    # occluded joints are annotated but not visible; every visible joint is annotated
    assert (h5.annotated & ~h5.visible).sum() > 0 and not (h5.visible & ~h5.annotated).any()
    assert h5.head_size[0] == pytest.approx(117.96219733)
    assert "normalize" in h5.normalizer


def test_people_from_the_json_list_crop_the_official_box(tmp_path):
    ann = read_mpii_json(shared_path("mmpose_testdata", "mpii", "test_mpii.json"))
    samples = mpii_people(ann, "images")
    assert len(samples) == 5 and samples[0].image_path.endswith("005808361.jpg")
    np.testing.assert_allclose(samples[0].center, ann.center[0], rtol=1e-6)
    assert samples[0].scale.tolist() == pytest.approx([ann.scale[0]] * 2)
    assert samples[2].keypoints[0, 2] == 0 and samples[2].keypoints[1, 2] == 2
    wide = mpii_people(ann, "images", aspect_ratio=0.75)  # 192x256 input: the box grows in height
    assert wide[0].scale[0] == pytest.approx(ann.scale[0]) and wide[0].scale[1] == pytest.approx(
        ann.scale[0] / 0.75
    )
    h5_samples = mpii_people(read_mpii_h5(shared_path("mpii_valid_split", "valid.h5")), "images")
    flags = np.stack([s.keypoints[:, 2] for s in h5_samples])
    assert set(np.unique(flags)) == {0.0, 1.0, 2.0}


def _entry(**changes):
    entry = {
        "image": "a.jpg",
        "center": [50.0, 60.0],
        "scale": 0.5,
        "joints": [[10.0 + j, 20.0] for j in range(16)],
        "joints_vis": [1] * 16,
        "headbox": [1.0, 1.0, 11.0, 11.0],
    }
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"scale": -1}, "entry 1: 'scale'"),
        ({"center": [1.0]}, "entry 1: 'center'"),
        ({"joints": [[1.0, 2.0]] * 15}, "entry 1: 'joints' has 15 joints"),
        ({"joints_vis": [1] * 3}, "entry 1: 'joints_vis'"),
        ({"image": 5}, "entry 1: 'image'"),
        ({"headbox": [1, 2]}, "entry 1: 'headbox'"),
    ],
)
def test_json_errors_name_the_entry(tmp_path, change, fragment):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps([_entry(), _entry(**change)]))
    with pytest.raises(HeatposeError, match=fragment):
        read_mpii_json(path)


def test_json_head_sizes_from_headbox_or_gt_mat(tmp_path):
    path = tmp_path / "valid.json"
    path.write_text(json.dumps([_entry(), _entry()]))
    ann = read_mpii_json(path)
    assert ann.head_size.tolist() == pytest.approx([0.6 * np.hypot(10, 10)] * 2)
    assert "headbox" in ann.normalizer
    # without head boxes: the official gt_<split>.mat beside the json gives them
    plain = [{k: v for k, v in _entry().items() if k != "headbox"} for _ in range(2)]
    path.write_text(json.dumps(plain))
    assert "none" in read_mpii_json(path).normalizer
    with pytest.raises(HeatposeError, match="no head sizes"):
        load_pckh_ground_truth(path)
    joints = np.asarray(plain[0]["joints"], np.float64)  # 1-based, like the json
    savemat(
        tmp_path / "gt_valid.mat",
        {
            "pos_gt_src": np.repeat(joints[:, :, None], 2, axis=2),  # (16, 2, N)
            "jnt_missing": np.zeros((16, 2), np.uint8),
            # (corner, xy, person): person 0 (1, 1)-(21, 21), person 1 (1, 1)-(11, 11)
            "headboxes_src": np.stack([np.full((2, 2), 1.0), np.array([[21.0, 11.0], [21.0, 11.0]])]),
            "dataset_joints": np.array([["rank"]] * 16, dtype=object),
        },
    )
    ann = read_mpii_json(path)
    assert "gt_valid.mat" in ann.normalizer
    assert ann.head_size.tolist() == pytest.approx([0.6 * np.hypot(20, 20), 0.6 * np.hypot(10, 10)])
    mat = read_mpii_annotations(tmp_path / "gt_valid.mat")
    np.testing.assert_allclose(mat.joints, ann.joints)  # both 0-based
    gt = load_pckh_ground_truth(path)
    assert compute_pckh(gt.joints, gt).columns["Mean"] == 100.0


def test_unknown_formats_and_broken_files(tmp_path):
    with pytest.raises(HeatposeError, match="unknown MPII annotation format"):
        read_mpii_annotations(tmp_path / "a.txt")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(HeatposeError, match="not a readable HDF5"):
        read_mpii_h5(bad)
    with pytest.raises(HeatposeError, match="not found"):
        read_mpii_h5(tmp_path / "missing.h5")
