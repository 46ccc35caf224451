"""Fine-tuning across keypoint sets (models/transfer.py)."""

from __future__ import annotations

import pytest
import torch

from heatpose.errors import HeatposeError
from heatpose.keypoints import COCO17, KeypointSchema
from heatpose.models import DeconvHead, ResNet, SimpleBaseline
from heatpose.models.transfer import init_from_checkpoint, load_weights_across_schemas, match_joints
from heatpose.schema_io import schema_to_dict

NINE = KeypointSchema(
    name="nine",
    joint_names=(
        "nose",
        "l_shoulder",
        "r_shoulder",
        "LeftElbow",
        "RightElbow",
        "neck",
        "tail",
        "wing",
        "hoof",
    ),
    flip_pairs=((1, 2), (3, 4)),
    skeleton=(),
)


def _model(k: int, filters: int = 8) -> SimpleBaseline:
    backbone = ResNet(18)
    return SimpleBaseline(
        backbone, DeconvHead(backbone.out_channels, k, num_deconv_layers=1, num_deconv_filters=filters)
    )


def _official_layout(model: SimpleBaseline) -> dict[str, torch.Tensor]:
    """The microsoft/human-pose-estimation.pytorch key names (no backbone./head. prefixes)."""
    return {k.removeprefix("backbone.").removeprefix("head."): v for k, v in model.state_dict().items()}


def test_nine_joint_model_from_coco17_loads_all_but_the_final_layer_and_copies_named_rows():
    torch.manual_seed(0)
    source = _model(17)
    for p in source.parameters():  # make every tensor distinguishable from a fresh init
        p.data.normal_()
    ckpt = {"model": source.state_dict(), "meta": {"keypoint_schema": schema_to_dict(COCO17)}}
    target = _model(9)
    fresh_final = target.head.final_layer.weight.detach().clone()
    report = load_weights_across_schemas(target, ckpt, NINE)

    src, tgt = source.state_dict(), target.state_dict()
    per_joint = {"head.final_layer.weight", "head.final_layer.bias"}
    assert set(report.reinitialised) == per_joint
    for key in tgt:
        if key not in per_joint:
            assert torch.equal(tgt[key], src[key]), key
    assert len(report.loaded) == len(tgt) - 2
    expected = {0: 0, 1: 5, 2: 6, 3: 7, 4: 8}  # nose, shoulders, elbows by (canonical) name
    assert [(NINE.joint_names[t], COCO17.joint_names[s]) for t, s in expected.items()] == report.copied
    for t, s in expected.items():
        assert torch.equal(tgt["head.final_layer.weight"][t], src["head.final_layer.weight"][s])
        assert torch.equal(tgt["head.final_layer.bias"][t], src["head.final_layer.bias"][s])
    for t in (5, 6, 7, 8):  # neck, tail, wing, hoof: no COCO joint of that name -> fresh init
        assert torch.equal(tgt["head.final_layer.weight"][t], fresh_final[t])
        assert tgt["head.final_layer.bias"][t] == 0
    assert "copied by name 5 joint(s)" in report.describe()


def test_official_layout_without_schema_is_assumed_coco17(capsys):
    source = _model(17)
    target = _model(9)
    report = init_from_checkpoint(target, _official_layout(source), NINE)
    assert report is not None and "assumed from the joint count" in report.source_schema
    assert len(report.copied) == 5
    assert "re-initialised head.final_layer.weight" in capsys.readouterr().err


def test_same_schema_is_a_plain_load():
    source, target = _model(17), _model(17)
    assert init_from_checkpoint(target, {"model": source.state_dict()}, COCO17) is None
    assert torch.equal(target.head.final_layer.weight, source.head.final_layer.weight)


def test_shape_mismatch_outside_the_per_joint_layers_is_one_error():
    source, target = _model(17, filters=16), _model(9, filters=8)
    with pytest.raises(HeatposeError, match="architectures differ"):
        load_weights_across_schemas(target, {"model": source.state_dict()}, NINE, COCO17)


def test_match_joints_by_exact_then_canonical_name():
    assert match_joints(NINE, COCO17)[:3] == [(0, 0), (1, 5), (2, 6)]
