"""Keypoint schemas as data: COCO category + YAML, flip-pair inference, validation, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from heatpose.config import config_from_dict
from heatpose.errors import HeatposeError
from heatpose.keypoints import COCO17, KeypointSchema
from heatpose.schema_io import (
    default_sigmas,
    infer_flip_pairs,
    resolve_num_joints,
    resolve_schema,
    schema_from_checkpoint,
    schema_from_dict,
    schema_to_dict,
)

NAMES = ["head", "neck", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "pelvis"]


def _coco_file(
    tmp_path, names=NAMES, skeleton=([1, 2], [2, 3], [2, 4], [3, 5], [5, 7], [4, 6], [6, 8], [2, 9])
):
    gt = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
        "annotations": [],
        "categories": [
            {"id": 1, "name": "arm9", "keypoints": list(names), "skeleton": [list(e) for e in skeleton]}
        ],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(gt))
    return path


def test_schema_from_category_and_yaml_equals_hand_written(tmp_path):
    ann = _coco_file(tmp_path)
    yml = tmp_path / "schema.yaml"
    yml.write_text(
        "sigmas: [0.03, 0.05, 0.08, 0.08, 0.07, 0.07, 0.06, 0.06, 0.1]\n"
        "joint_weights: {head: 2.0}\n"
        "upper_body: [head, neck, l_shoulder, r_shoulder]\n"
        "colors: {head: [255, 0, 0]}\n"
    )
    info = resolve_schema(str(yml), ann)
    expected = KeypointSchema(
        name="arm9",
        joint_names=tuple(NAMES),
        flip_pairs=((2, 3), (4, 5), (6, 7)),
        skeleton=((0, 1), (1, 2), (1, 3), (2, 4), (4, 6), (3, 5), (5, 7), (1, 8)),  # 1-based -> 0-based
        sigmas=(0.03, 0.05, 0.08, 0.08, 0.07, 0.07, 0.06, 0.06, 0.1),
        upper_body=(0, 1, 2, 3),
        joint_weights=(2.0, 1, 1, 1, 1, 1, 1, 1, 1),
        colors=((255, 0, 0),) + ((255, 128, 0),) * 8,
    )
    assert info.schema == expected
    assert not info.warnings
    assert "l_shoulder<->r_shoulder" in info.describe()


def test_auto_schema_without_sigmas_uses_the_documented_default_and_warns(tmp_path):
    info = resolve_schema("auto", _coco_file(tmp_path))
    assert info.schema.sigmas == default_sigmas(9) == (1 / 9,) * 9
    assert info.schema.upper_body == tuple(range(8))  # all but pelvis, from the names
    assert any("COCO AP depends on them" in w for w in info.warnings)


@pytest.mark.parametrize(
    "names, pairs",
    [
        (["nose", "left_eye", "right_eye"], ((1, 2),)),
        (["Nose", "LeftEye", "RightEye", "EarRight", "EarLeft"], ((1, 2), (4, 3))),
        (["l_hip", "r_hip", "L-knee", "R-knee", "neck"], ((0, 1), (2, 3))),
        (["LShoulder", "RShoulder", "Neck"], ((0, 1),)),
        (["wrist_r", "wrist_l", "elbow.L", "elbow.R"], ((1, 0), (2, 3))),
        (["shoulderL", "shoulderR", "tail"], ((0, 1),)),
    ],
)
def test_flip_pairs_inferred_from_naming_styles(names, pairs):
    got, unpaired = infer_flip_pairs(names)
    assert sorted(got) == sorted(pairs)
    assert unpaired == []


def test_sided_name_without_partner_is_a_warning(tmp_path):
    ann = _coco_file(tmp_path, names=["head", "left_ear", "tail"], skeleton=())
    info = resolve_schema("auto", ann)
    assert info.schema.flip_pairs == ()
    assert any("left_ear" in w and "no partner" in w for w in info.warnings)


def test_two_left_joints_with_one_stem_is_an_error():
    with pytest.raises(HeatposeError, match="both look like the left side"):
        infer_flip_pairs(["left_eye", "l_eye", "right_eye"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"flip_pairs": ((0, 1), (1, 2))}, "map two joints onto"),  # not its own inverse
        ({"flip_pairs": ((0, 3),)}, "out of range"),
        ({"flip_pairs": ((1, 1),)}, "with itself"),
        ({"joint_names": ("a", "b", "a")}, "duplicate joint name 'a'"),
        ({"sigmas": (0.1, 0.1)}, "2 sigmas for 3 joints"),
        ({"sigmas": (0.1, 0.0, 0.1)}, "sigmas must be finite and > 0"),
        ({"skeleton": ((0, 5),)}, "skeleton edge"),
        ({"joint_weights": (1.0,)}, "1 joint_weights for 3 joints"),
    ],
)
def test_bad_schemas_are_one_clear_error(kwargs, message):
    base = {"name": "t", "joint_names": ("a", "b", "c"), "flip_pairs": (), "skeleton": ()}
    with pytest.raises(HeatposeError, match=message):
        KeypointSchema(**{**base, **kwargs})


def test_schema_file_errors_name_the_file(tmp_path):
    ann = _coco_file(tmp_path)
    yml = tmp_path / "bad.yaml"
    yml.write_text("flip_pairs: [[l_wrist, r_wrist], [r_wrist, l_elbow]]\n")
    with pytest.raises(HeatposeError, match="map two joints onto"):
        resolve_schema(str(yml), ann)
    yml.write_text("flip_pairs: [[l_wrist, nope]]\n")
    with pytest.raises(HeatposeError, match="unknown joint 'nope'"):
        resolve_schema(str(yml), ann)
    yml.write_text("sigma: [1]\n")
    with pytest.raises(HeatposeError, match="unknown schema key 'sigma'"):
        resolve_schema(str(yml), ann)
    bad_skeleton = _coco_file(tmp_path, skeleton=([0, 1],))
    with pytest.raises(HeatposeError, match=r"number joints 1\.\.9"):
        resolve_schema("auto", bad_skeleton)


def test_schema_file_alone_defines_a_schema(tmp_path):
    yml = tmp_path / "hand.yaml"
    yml.write_text("name: hand\nkeypoints: [wrist, thumb, index]\nskeleton: [[0, 1], [wrist, index]]\n")
    schema = resolve_schema(str(yml)).schema
    assert schema.name == "hand" and schema.skeleton == ((0, 1), (0, 2)) and schema.flip_pairs == ()


def test_num_joints_follows_a_data_schema_and_disagreement_is_an_error(tmp_path):
    ann = _coco_file(tmp_path)
    schema = resolve_schema("auto", ann).schema
    cfg = config_from_dict({"data": {"schema": "auto", "train_ann": str(ann)}})
    assert resolve_num_joints(cfg, schema).model.num_joints == 9  # default 17 follows the data
    cfg0 = config_from_dict({"model": {"num_joints": 0}, "data": {"schema": "auto"}})
    assert resolve_num_joints(cfg0, schema).model.num_joints == 9
    cfg5 = config_from_dict({"model": {"num_joints": 5}, "data": {"schema": "auto"}})
    with pytest.raises(HeatposeError, match=r"model\.num_joints=5 but keypoint schema"):
        resolve_num_joints(cfg5, schema)
    with pytest.raises(HeatposeError, match=r"data\.schema"):
        config_from_dict({"data": {"schema": "coco18"}})


def test_schema_round_trips_through_a_checkpoint_dict(tmp_path):
    import io

    import torch

    schema = resolve_schema("auto", _coco_file(tmp_path)).schema
    buf = io.BytesIO()
    torch.save({"meta": {"keypoint_schema": schema_to_dict(schema)}}, buf)
    buf.seek(0)
    obj = torch.load(buf, weights_only=True)
    assert schema_from_checkpoint(obj) == schema
    assert schema_from_dict(schema_to_dict(COCO17)) == COCO17
    assert schema_from_checkpoint({"state_dict": {}}) is None


def test_coco_ap_with_custom_sigmas_equals_pycocotools_by_hand(tmp_path):
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from heatpose.evaluation.coco import evaluate_keypoints

    rng = np.random.default_rng(0)
    k = 5
    sigmas = np.array([0.02, 0.05, 0.08, 0.03, 0.1])
    anns, results = [], []
    for i in range(6):
        xy = rng.uniform(20, 180, size=(k, 2))
        kp = np.concatenate([xy, np.full((k, 1), 2.0)], 1)
        anns.append(
            {"id": i + 1, "image_id": 1 + i % 3, "category_id": 1, "keypoints": kp.ravel().tolist(),
             "num_keypoints": k, "area": 150.0**2, "bbox": [10, 10, 170, 170], "iscrowd": 0}
        )  # fmt: skip
        noisy = xy + rng.normal(0, 4, size=xy.shape)
        results.append(
            {"image_id": 1 + i % 3, "category_id": 1, "score": float(rng.uniform(0.5, 1)),
             "keypoints": np.concatenate([noisy, np.ones((k, 1))], 1).ravel().tolist()}
        )  # fmt: skip
    gt = {
        "images": [{"id": j, "file_name": f"{j}.jpg", "width": 200, "height": 200} for j in (1, 2, 3)],
        "annotations": anns,
        "categories": [{"id": 1, "name": "thing", "keypoints": list("abcde"), "skeleton": []}],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    ours = evaluate_keypoints(path, results, sigmas=sigmas)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
        dt = coco.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco, dt, "keypoints")
        ev.params.kpt_oks_sigmas = sigmas
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ours["AP"] == pytest.approx(ev.stats[0], abs=0)
    assert ours["AR"] == pytest.approx(ev.stats[5], abs=0)
    default = evaluate_keypoints(path, results, sigmas=np.array(default_sigmas(k)))
    assert default["AP"] != ours["AP"]  # the sigmas matter
