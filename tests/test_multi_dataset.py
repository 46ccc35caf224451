"""Multi-dataset training: schema maps, the AI Challenger reader, ratio mixing, zero weights."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from heatpose.config import config_from_dict
from heatpose.data.aic import read_aic_people
from heatpose.data.dataset import build_dataset
from heatpose.data.mixed import MixedPoseDataset, map_samples, mix_plan
from heatpose.data.synthetic import write_synthetic_dataset
from heatpose.errors import HeatposeError
from heatpose.keypoints import AIC14, AIC_TO_MPII, COCO17, COCO_TO_MPII, MPII16, get_schema, schema_mapping
from heatpose.losses import JointsMSELoss
from heatpose.models import make_model
from tests.conftest import shared_path

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# MPII joints that COCO does not annotate: pelvis, thorax, upper_neck, head_top
MPII_NOT_IN_COCO = [6, 7, 8, 9]


# ---------------------------------------------------------------- schema maps


@pytest.mark.parametrize(
    "source, mapping", [(COCO17, COCO_TO_MPII), (AIC14, AIC_TO_MPII)], ids=["coco", "aic"]
)
def test_maps_join_joints_of_the_same_name(source, mapping) -> None:
    for src, dst in mapping.items():
        assert source.joint_names[src] == MPII16.joint_names[dst]
    assert len(set(mapping.values())) == len(mapping)


def test_aic_to_mpii_leaves_out_only_the_neck() -> None:
    assert set(range(AIC14.num_joints)) - set(AIC_TO_MPII) == {AIC14.joint_names.index("neck")}
    # flip pairs survive the map: a mirrored AIC pair is a mirrored MPII pair
    mpii_pairs = {frozenset(p) for p in MPII16.flip_pairs}
    for a, b in AIC14.flip_pairs:
        assert frozenset((AIC_TO_MPII[a], AIC_TO_MPII[b])) in mpii_pairs


def test_every_mapping_joins_joints_of_the_same_name() -> None:
    from heatpose.keypoints import SCHEMA_MAPPINGS

    for (src, dst), mapping in SCHEMA_MAPPINGS.items():
        a, b = get_schema(src), get_schema(dst)
        assert all(a.joint_names[i] == b.joint_names[j] for i, j in mapping.items()), (src, dst)
    # LIP's joint 7 is the spine, MPII's the thorax: not the same point, not mapped
    assert 7 not in schema_mapping("mpii", "lip")


def test_schema_mapping_lookup() -> None:
    assert schema_mapping("mpii", "mpii") == {i: i for i in range(16)}
    assert schema_mapping("aic", "lip") == AIC_TO_MPII
    assert get_schema("aic") is AIC14
    with pytest.raises(HeatposeError, match="no keypoint mapping from schema 'mpii' to 'coco'"):
        schema_mapping("mpii", "coco")


# ---------------------------------------------------------------- AI Challenger reader


def write_aic(root: Path) -> Path:
    """Two images in the official AI Challenger layout: 3 people, one without labelled joints."""
    (root / "images").mkdir(parents=True)
    for name in ("aaa", "bbb"):
        cv2.imwrite(str(root / "images" / f"{name}.jpg"), np.full((60, 80, 3), 128, np.uint8))
    person = []
    for j in range(14):
        person += [10 + j, 20 + j, 1 if j % 3 == 0 else 2 if j % 3 == 1 else 3]
    entries = [
        {
            "image_id": "aaa",
            "keypoint_annotations": {"human1": person, "human2": [0, 0, 3] * 14},
            "human_annotations": {"human1": [5, 10, 45, 50], "human2": [0, 0, 10, 10]},
        },
        {
            "image_id": "bbb",
            "keypoint_annotations": {"human1": person},
            "human_annotations": {"human1": [1, 2, 21, 42]},
        },
    ]
    path = root / "keypoint_train_annotations.json"
    path.write_text(json.dumps(entries))
    return path


def test_aic_official_layout(tmp_path) -> None:
    path = write_aic(tmp_path)
    people = read_aic_people(path, tmp_path / "images", aspect_ratio=1.0)
    assert len(people) == 2  # human2 has no labelled joint
    first = people[0]
    assert first.image_path.endswith("aaa.jpg") and first.image_id == 0
    assert first.keypoints.shape == (14, 3)
    # AIC flags 1 / 2 / 3 -> COCO 2 / 1 / 0, unlabelled coordinates zeroed
    assert first.keypoints[:3, 2].tolist() == [2, 1, 0]
    assert first.keypoints[2, :2].tolist() == [0, 0]
    assert first.keypoints[0, :2].tolist() == [10, 20]
    np.testing.assert_allclose(first.box, [5, 10, 40, 40])
    np.testing.assert_allclose(first.center, [25, 30])


def test_aic_bad_flags_are_one_clear_error(tmp_path) -> None:
    path = write_aic(tmp_path)
    data = json.loads(path.read_text())
    data[1]["keypoint_annotations"]["human1"][2] = 7
    path.write_text(json.dumps(data))
    with pytest.raises(HeatposeError, match=r"image 1: human1 has visibility flags"):
        read_aic_people(path, tmp_path / "images", aspect_ratio=1.0)


def test_aic_mmpose_coco_conversion() -> None:
    ann = shared_path("mmpose_testdata", "aic", "test_aic.json")
    people = read_aic_people(ann, ann.parent, aspect_ratio=0.75)
    n_labelled = sum(1 for a in json.loads(ann.read_text())["annotations"] if max(a["keypoints"][2::3]) > 0)
    assert len(people) == n_labelled > 0
    assert all(p.keypoints.shape == (14, 3) for p in people)
    mpii = map_samples(people, "aic", "mpii")
    head_top = MPII16.joint_names.index("head_top")
    assert mpii[0].keypoints.shape == (16, 3)
    np.testing.assert_array_equal(mpii[0].keypoints[head_top], people[0].keypoints[12])


# ---------------------------------------------------------------- mixing


def test_mix_plan_follows_ratios_and_is_seeded() -> None:
    plan = mix_plan([10, 3], [1.0, 3.0], length=13, seed=0, epoch=0)
    assert plan.shape == (13, 2)
    counts = np.bincount(plan[:, 0], minlength=2)
    assert counts.tolist() == [3, 10]  # 13 * 1/4 = 3.25, 13 * 3/4 = 9.75 (largest remainder)
    small = plan[plan[:, 0] == 1, 1]
    assert set(small.tolist()) == {0, 1, 2}  # cycled: every sample of the small set is used
    assert np.bincount(small).max() - np.bincount(small).min() <= 1
    assert np.array_equal(plan, mix_plan([10, 3], [1.0, 3.0], 13, seed=0, epoch=0))
    assert not np.array_equal(plan, mix_plan([10, 3], [1.0, 3.0], 13, seed=0, epoch=1))
    with pytest.raises(ValueError):
        mix_plan([10, 0], [1.0, 1.0], 10, 0, 0)


@pytest.fixture(scope="module")
def coco_and_mpii(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    write_synthetic_dataset(root / "coco", 3, seed=0, image_size=(96, 96), progress=False)
    write_synthetic_dataset(root / "mpii", 3, seed=1, layout="mpii", image_size=(96, 96), progress=False)
    return root


def mixed_config(root: Path, ratios: tuple[float, float] = (1.0, 1.0)):
    sets = [
        {
            "dataset": "coco",
            "schema": schema,
            "ratio": ratio,
            "ann": str(root / name / "annotations" / "person_keypoints_train.json"),
            "images": str(root / name / "images" / "train"),
        }
        for name, schema, ratio in (("coco", "coco", ratios[0]), ("mpii", "mpii", ratios[1]))
    ]
    return config_from_dict(
        {
            "model": {"backbone_depth": 18, "num_joints": 16, "num_deconv_filters": 16},
            "data": {"dataset": "coco", "schema": "mpii", "input_size": [64, 64], "train_sets": sets},
            "train": {"val_interval": 0, "num_workers": 0},
        }
    )


def test_train_sets_config_round_trips_and_validates(coco_and_mpii) -> None:
    from heatpose.config import config_to_dict

    cfg = mixed_config(coco_and_mpii)
    assert cfg.data.train_sets[1].schema == "mpii"
    assert config_from_dict(config_to_dict(cfg)) == cfg
    with pytest.raises(HeatposeError, match=r"data.train_sets\[0\].ratio"):
        mixed_config(coco_and_mpii, ratios=(0.0, 1.0))
    with pytest.raises(HeatposeError, match=r"unknown config key 'data.train_sets\[0\].weight'"):
        config_from_dict({"data": {"train_sets": [{"weight": 1}]}})


def test_mapped_coco_samples_train_an_mpii_model_with_missing_joints_at_weight_zero(coco_and_mpii) -> None:
    cfg = mixed_config(coco_and_mpii)
    dataset = build_dataset(cfg, "train")
    assert isinstance(dataset, MixedPoseDataset) and dataset.schema.name == "mpii"
    items = [dataset[i] for i in range(len(dataset))]
    from_coco = [it for it in items if it["source"] == 0]
    from_mpii = [it for it in items if it["source"] == 1]
    assert from_coco and from_mpii
    for it in from_coco:
        assert it["target"].shape[0] == 16
        assert it["target_weight"].reshape(-1)[MPII_NOT_IN_COCO].eq(0).all()
        assert it["target"][MPII_NOT_IN_COCO].eq(0).all()
    coco_weights = torch.stack([it["target_weight"].reshape(-1) for it in from_coco])
    assert coco_weights.sum(0)[[0, 5, 10, 15]].gt(0).all()  # ankles and wrists do come through
    mpii_weights = torch.stack([it["target_weight"].reshape(-1) for it in from_mpii])
    assert mpii_weights.sum(0)[MPII_NOT_IN_COCO].gt(0).all()  # the MPII set supervises them

    # one step on COCO-sourced crops leaves the heads of the missing joints untouched
    torch.manual_seed(0)
    model = make_model(cfg.model).train()
    batch = from_coco[:4]
    images = torch.stack([it["image"] for it in batch])
    loss = JointsMSELoss()(
        model(images),
        torch.stack([it["target"] for it in batch]),
        torch.stack([it["target_weight"] for it in batch]),
    )
    loss.backward()
    grad = model.head.final_layer.weight.grad.reshape(16, -1).abs().sum(1)
    assert grad[MPII_NOT_IN_COCO].eq(0).all()
    assert grad[[0, 5, 10, 15]].gt(0).all()


def test_mpii_list_train_set(coco_and_mpii) -> None:
    from heatpose.config import TrainSetConfig
    from heatpose.data.mixed import read_train_set

    ts = TrainSetConfig(
        dataset="mpii",
        schema="mpii",
        ann=str(coco_and_mpii / "mpii" / "annotations" / "mpii_train.json"),
        images=str(coco_and_mpii / "mpii" / "images" / "train"),
    )
    people = read_train_set(ts, aspect_ratio=1.0, enlarge=1.25)
    assert people and all(p.keypoints.shape == (16, 3) for p in people)
    lip = map_samples(people, "mpii", "lip")
    assert all(p.keypoints[7].sum() == 0 for p in lip)  # MPII's thorax is not LIP's spine
