"""CFA: the contract every model variant passes, fusion, aggregation ablation, stage-wise growth."""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch
from torch import nn

from heatpose.config import ModelConfig
from heatpose.errors import HeatposeError
from heatpose.inference import predict_heatmaps
from heatpose.keypoints import MPII16
from heatpose.losses import JointsMSELoss
from heatpose.models import CFA, build_model, fuse_stages, load_model_weights, make_model
from heatpose.models.cfa import StageView
from heatpose.models.growth import grow_from_checkpoint, grow_state_dict

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

K = MPII16.num_joints
SIZE = 64  # input side; heatmaps 16x16


# (arch, num_stages, stage_type, aggregate, stage_input): every variant of the issue.
CFA_VARIANTS = [
    ("cfa", s, st, agg, "image")
    for st in ("resnet", "hourglass")
    for s in (1, 2, 3, 4)
    for agg in (True, False)
    if s > 1 or agg  # one stage has nothing to aggregate
]
VARIANTS = [
    ("simple_baseline", 1, "resnet", True, "image"),
    *CFA_VARIANTS,
    ("cfa", 2, "resnet", True, "features"),
    ("cfa", 3, "hourglass", True, "features"),
]


def variant_id(v: tuple) -> str:
    arch, s, st, agg, si = v
    return "simple_baseline" if arch != "cfa" else f"{st}-S{s}-{'agg' if agg else 'noagg'}-{si}"


def config(arch: str, num_stages: int = 2, stage_type: str = "resnet", aggregate: bool = True,
           stage_input: str = "image", **kw: object) -> ModelConfig:  # fmt: skip
    return ModelConfig(
        arch=arch, backbone_depth=18, num_joints=K, num_deconv_filters=16, num_stages=num_stages,
        fuse_last_k=min(2, num_stages), aggregate=aggregate, stage_type=stage_type,
        stage_input=stage_input, hourglass_depth=2, **kw,
    )  # fmt: skip


@functools.cache
def _cached(v: tuple) -> nn.Module:
    torch.manual_seed(0)
    return make_model(config(*v))


def model_of(v: tuple) -> nn.Module:
    return _cached(v).eval()


def images(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def stages_of(out: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


# ---------------------------------------------------------------- the contract, every variant


@pytest.mark.parametrize("v", VARIANTS, ids=variant_id)
def test_output_shapes_and_backward(v: tuple) -> None:
    model = model_of(v).train()
    out = stages_of(model(images()))
    assert len(out) == v[1]
    assert all(o.shape == (2, K, SIZE // 4, SIZE // 4) for o in out)
    target = torch.rand(2, K, SIZE // 4, SIZE // 4)
    loss = JointsMSELoss()(out, target, torch.ones(2, K))
    model.zero_grad()
    loss.backward()
    # every parameter takes part in the forward pass (DDP would fail otherwise)
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    model.eval()


@pytest.mark.parametrize("v", VARIANTS, ids=variant_id)
def test_flip_test_uses_fused_output(v: tuple) -> None:
    model, x, flip_index = model_of(v), images(), MPII16.flip_index()
    with torch.no_grad():
        plain = predict_heatmaps(model, x, flip=False)
        flipped = predict_heatmaps(model, x, flip=True, flip_index=flip_index, shift="none")
        raw = stages_of(model(x))
        raw_flip = stages_of(model(x.flip(-1)))
    k = model.fuse_last_k if isinstance(model, CFA) else 1
    expected = torch.stack(raw[-k:]).mean(0)
    assert torch.allclose(plain, expected, atol=1e-6)
    back = torch.stack(raw_flip[-k:]).mean(0).flip(-1)[:, flip_index]
    assert torch.allclose(flipped, (expected + back) / 2, atol=1e-5)


@pytest.mark.parametrize("v", VARIANTS, ids=variant_id)
def test_checkpoint_round_trip(v: tuple, tmp_path) -> None:
    model = model_of(v)
    path = tmp_path / "model.pth"
    torch.save({"model": model.state_dict()}, path)
    cfg = dataclasses.replace(config(*v), weights=str(path))
    torch.manual_seed(123)
    loaded = build_model(cfg).eval()
    x = images(1)
    with torch.no_grad():
        for a, b in zip(stages_of(model(x)), stages_of(loaded(x)), strict=True):
            assert torch.equal(a, b)


# ---------------------------------------------------------------- fusion and aggregation


def test_fused_output_is_mean_of_last_k() -> None:
    model = model_of(("cfa", 4, "hourglass", True, "image"))
    with torch.no_grad():
        out = model(images())
    for k in (1, 2, 3, 4):
        assert torch.allclose(fuse_stages(out, k), sum(out[-k:]) / k, atol=1e-7)
    assert torch.equal(model.fuse(out), fuse_stages(out, model.fuse_last_k))
    with pytest.raises(ValueError, match="last 5 of 4"):
        fuse_stages(out, 5)


@pytest.mark.parametrize("stage_type", ["resnet", "hourglass"])
def test_no_aggregation_means_no_cross_stage_parameters(stage_type: str) -> None:
    on = model_of(("cfa", 3, stage_type, True, "image"))
    off = model_of(("cfa", 3, stage_type, False, "image"))
    assert len(on.aggregations) == 2 and len(off.aggregations) == 0
    assert not any(n.startswith("aggregations.") for n in off.state_dict())
    # the only parameters aggregation adds are the aggregations'
    n_on = sum(p.numel() for n, p in on.named_parameters() if not n.startswith("aggregations."))
    assert n_on == sum(p.numel() for p in off.parameters())


@pytest.mark.parametrize("stage_type", ["resnet", "hourglass"])
def test_stages_are_independent_without_aggregation(stage_type: str) -> None:
    model = model_of(("cfa", 2, stage_type, False, "image")).train()
    model.zero_grad()
    out = model(images())
    out[1].pow(2).mean().backward()  # stage 2's loss alone
    for name, p in model.named_parameters():
        touched = p.grad is not None and p.grad.abs().sum() > 0
        assert touched == name.startswith("stages.1."), name
    model.eval()


def test_aggregation_links_stage_two_to_stage_one() -> None:
    model = model_of(("cfa", 2, "resnet", True, "image")).train()
    model.zero_grad()
    model(images())[1].pow(2).mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["stages.0.backbone.layer4.1.conv2.weight"].abs().sum() > 0
    assert grads["aggregations.0.heatmap_embed.0.weight"].abs().sum() > 0
    assert grads["aggregations.0.decoder.stride4.0.weight"].abs().sum() > 0
    model.eval()


def test_features_input_drops_later_stems() -> None:
    model = model_of(("cfa", 2, "resnet", True, "features"))
    keys = set(model.state_dict())
    assert "stages.0.backbone.conv1.weight" in keys and "stages.1.backbone.conv1.weight" not in keys
    assert "aggregations.0.input_proj.0.weight" in keys


def test_stage_view_is_one_stage() -> None:
    model = model_of(("cfa", 3, "hourglass", True, "image"))
    x = images(1)
    with torch.no_grad():
        out = model(x)
        view = StageView(model, 1)
        assert not view.training  # keeps the cascade's mode (a new Module starts in training mode)
        assert torch.equal(view(x), out[1])
    with pytest.raises(ValueError):
        StageView(model, 3)


def test_stage_one_loads_imagenet_backbone(tmp_path) -> None:
    from heatpose.models.resnet import ResNet

    torch.manual_seed(5)
    imagenet = ResNet(18).state_dict()
    imagenet["fc.weight"], imagenet["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(imagenet, path)
    model = build_model(config("cfa", 2, pretrained=str(path)))
    assert torch.equal(model.stages[0].backbone.conv1.weight, imagenet["conv1.weight"])
    assert not torch.equal(model.stages[1].backbone.conv1.weight, imagenet["conv1.weight"])


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"num_stages": 0}, "num_stages"),
        ({"fuse_last_k": 3}, "fuse_last_k"),
        ({"stage_type": "hrnet"}, "stage_type"),
        ({"stage_input": "video"}, "stage_input"),
        ({"aggregate": False, "stage_input": "features"}, "aggregate"),
        ({"num_deconv_layers": 2}, "num_deconv_layers"),
        ({"stage_type": "hourglass", "pretrained": "x.pth"}, "pretrained"),
    ],
)
def test_build_model_rejects_bad_cfa_config(changes: dict, match: str) -> None:
    cfg = dataclasses.replace(config("cfa", 2), **changes)
    with pytest.raises(HeatposeError, match=match):
        build_model(cfg)


# ---------------------------------------------------------------- stage-wise growth


def test_growing_two_stages_to_four_loads_exactly_the_first_two(tmp_path) -> None:
    torch.manual_seed(1)
    small = make_model(config("cfa", 2))
    path = tmp_path / "cfa2.pth"
    torch.save({"model": small.state_dict(), "epoch": 3}, path)
    torch.manual_seed(2)
    big = make_model(config("cfa", 4))
    before = {k: v.clone() for k, v in big.state_dict().items()}
    report = grow_from_checkpoint(big, path)

    first_two = {k for k in big.state_dict() if k.startswith(("stages.0.", "stages.1.", "aggregations.0."))}
    assert set(report.loaded) == first_two == set(small.state_dict())
    assert set(report.new) == set(big.state_dict()) - first_two
    assert report.skipped == []
    after = big.state_dict()
    for k in first_two:
        assert torch.equal(after[k], small.state_dict()[k]), k
    for k in report.new:
        assert torch.equal(after[k], before[k]), k
    text = "\n".join(report.lines())
    assert "loaded: " in text and "stages.2.* " in text and "aggregations.2.* " in text


def test_simple_baseline_seeds_stage_one() -> None:
    torch.manual_seed(3)
    sb = make_model(config("simple_baseline"))
    cascade = make_model(config("cfa", 3))
    report = grow_state_dict(cascade, {"state_dict": sb.state_dict()})
    assert set(report.loaded) == {f"stages.0.{k}" for k in sb.state_dict()}
    assert all(".skip_layers." in k for k in report.new if k.startswith("stages.0."))
    assert torch.equal(cascade.stages[0].head.final_layer.weight, sb.head.final_layer.weight)


def test_growth_skips_mismatched_tensors_and_says_so() -> None:
    torch.manual_seed(4)
    other = make_model(dataclasses.replace(config("cfa", 2), num_joints=K - 1))
    report = grow_state_dict(make_model(config("cfa", 2)), other.state_dict())
    assert any(s.startswith("stages.0.head.final_layer.weight: shape differs") for s in report.skipped)
    assert any("skipped" in line and "shape differs" not in line for line in report.lines())
    with pytest.raises(HeatposeError, match="no tensor"):
        grow_state_dict(make_model(config("cfa", 1)), {"unrelated.weight": torch.zeros(3)})


def test_full_checkpoint_of_a_grown_model_loads_strictly(tmp_path) -> None:
    grown = make_model(config("cfa", 3, "hourglass"))
    grow_state_dict(grown, make_model(config("cfa", 2, "hourglass")).state_dict())
    fresh = make_model(config("cfa", 3, "hourglass"))
    load_model_weights(fresh, {"model": grown.state_dict()})


def test_stage_weights_weight_each_stage_loss() -> None:
    target = torch.zeros(1, 2, 4, 4)
    stages = [torch.ones(1, 2, 4, 4), 2 * torch.ones(1, 2, 4, 4)]
    weight = torch.ones(1, 2)
    plain = [JointsMSELoss()(s, target, weight) for s in stages]  # 0.5 and 2.0
    weighted = JointsMSELoss(stage_weights=[0.0, 3.0])(stages, target, weight)
    assert weighted.item() == pytest.approx(3.0 * plain[1].item())
    assert JointsMSELoss()(stages, target, weight).item() == pytest.approx(sum(p.item() for p in plain))
    with pytest.raises(ValueError, match="2 predicted stages but 3 stage weights"):
        JointsMSELoss(stage_weights=[1, 1, 1])(stages, target, weight)


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0]])
def test_config_rejects_bad_stage_weights(weights: list[float]) -> None:
    from heatpose.config import config_from_dict

    with pytest.raises(HeatposeError, match=r"train\.stage_weights"):
        config_from_dict({"model": {"arch": "cfa", "num_stages": 2}, "train": {"stage_weights": weights}})


def test_config_rejects_input_sizes_an_hourglass_cannot_pool() -> None:
    from heatpose.config import config_from_dict

    model = {"arch": "cfa", "stage_type": "hourglass", "hourglass_depth": 4}
    with pytest.raises(HeatposeError, match="multiples of 64 for hourglass stages of depth 4"):
        config_from_dict({"model": model, "data": {"input_size": [96, 128]}})
    config_from_dict({"model": {**model, "hourglass_depth": 3}, "data": {"input_size": [96, 128]}})
