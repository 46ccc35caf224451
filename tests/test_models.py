from __future__ import annotations

import numpy as np
import pytest
import torch

from heatpose.config import ModelConfig
from heatpose.errors import HeatposeError
from heatpose.models import (
    DeconvHead,
    ResNet,
    SimpleBaseline,
    build_model,
    load_model_weights,
    migrate_state_dict,
)
from heatpose.models.checkpoint import load_backbone_weights

BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def torchvision_keys(depth: int) -> set[str]:
    """torchvision's resnet state-dict keys minus ``fc.*``, written out independently."""

    def bn(prefix: str) -> list[str]:
        return [
            f"{prefix}.{n}" for n in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        ]

    keys = ["conv1.weight", *bn("bn1")]
    convs = 2 if depth < 50 else 3
    for stage, n_blocks in enumerate(BLOCKS[depth], start=1):
        for b in range(n_blocks):
            p = f"layer{stage}.{b}"
            for c in range(1, convs + 1):
                keys += [f"{p}.conv{c}.weight", *bn(f"{p}.bn{c}")]
            if b == 0 and (stage > 1 or depth >= 50):
                keys += [f"{p}.downsample.0.weight", *bn(f"{p}.downsample.1")]
    return set(keys)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter and buffer distinct values so a load is observable."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model


def tiny_model(num_joints: int = 5, seed: int | None = 0) -> SimpleBaseline:
    model = SimpleBaseline(ResNet(18), DeconvHead(512, num_joints, num_deconv_filters=16))
    if seed is not None:
        randomize(model, seed)
    return model.eval()


def outputs(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.randn(2, 3, 64, 48, generator=torch.Generator().manual_seed(1)))


def to_official(native: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("backbone.").removeprefix("head."): v for k, v in native.items()}


# ---------------------------------------------------------------- backbone


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_resnet_c5_shape_and_channels(depth: int) -> None:
    net = ResNet(depth).eval()
    expected = 512 if depth < 50 else 2048
    assert net.out_channels == expected
    assert net.feature_channels[-1] == expected
    with torch.no_grad():
        c5 = net(torch.randn(1, 3, 64, 96))
    assert c5.shape == (1, expected, 2, 3)


@pytest.mark.parametrize("depth", [18, 50])
def test_forward_features_strides(depth: int) -> None:
    net = ResNet(depth).eval()
    with torch.no_grad():
        feats = net.forward_features(torch.randn(1, 3, 128, 96))
    assert len(feats) == 4
    for f, ch, stride in zip(feats, net.feature_channels, net.feature_strides, strict=True):
        assert f.shape == (1, ch, 128 // stride, 96 // stride)
    e = 1 if depth < 50 else 4
    assert net.feature_channels == (64 * e, 128 * e, 256 * e, 512 * e)
    assert net.feature_strides == (4, 8, 16, 32)


def test_resnet_rejects_unknown_depth() -> None:
    with pytest.raises(ValueError, match="42"):
        ResNet(42)


@pytest.mark.parametrize("depth, n_keys", [(18, 120), (50, 318)])
def test_resnet_parameter_names_match_torchvision(depth: int, n_keys: int) -> None:
    keys = set(ResNet(depth).state_dict())
    assert keys == torchvision_keys(depth)
    assert len(keys) == n_keys  # torchvision: 122 / 320 including fc.weight and fc.bias
    assert "fc.weight" not in keys and "fc.bias" not in keys


def test_resnet50_representative_keys_and_layout() -> None:
    net = ResNet(50)
    sd = net.state_dict()
    for key in (
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.downsample.0.weight",
        "layer4.2.bn3.running_var",
    ):
        assert key in sd
    assert [len(getattr(net, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    # v1.5: the stride sits on the 3x3 conv, as in torchvision.
    assert net.layer2[0].conv1.stride == (1, 1)
    assert net.layer2[0].conv2.stride == (2, 2)
    assert sd["layer1.0.conv3.weight"].shape == (256, 64, 1, 1)


def test_resnet_init_like_torchvision() -> None:
    net = ResNet(18)
    w = net.conv1.weight
    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
    assert w.std().item() == pytest.approx((2.0 / fan_out) ** 0.5, rel=0.1)
    assert torch.all(net.bn1.weight == 1) and torch.all(net.bn1.bias == 0)


# ---------------------------------------------------------------- head


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("kernel", [2, 3, 4])
def test_head_variants_double_resolution(layers: int, kernel: int) -> None:
    head = DeconvHead(32, 5, num_deconv_layers=layers, num_deconv_filters=8, deconv_kernel=kernel).eval()
    with torch.no_grad():
        out = head(torch.randn(2, 32, 2, 3))
    assert out.shape == (2, 5, 2 * 2**layers, 3 * 2**layers)
    assert len(head.deconv_layers) == 3 * layers


def test_head_module_indices_match_official() -> None:
    head = DeconvHead(2048, 17)
    keys = set(head.state_dict())
    for i in (0, 3, 6):
        assert f"deconv_layers.{i}.weight" in keys and f"deconv_layers.{i}.bias" not in keys
    for i in (1, 4, 7):
        assert f"deconv_layers.{i}.running_var" in keys
    assert head.deconv_layers[0].weight.shape == (2048, 256, 4, 4)
    assert head.final_layer.weight.shape == (17, 256, 1, 1)
    assert "final_layer.bias" in keys


def test_final_conv_kernel_3_keeps_size() -> None:
    head = DeconvHead(16, 4, num_deconv_layers=1, num_deconv_filters=8, final_conv_kernel=3).eval()
    assert head(torch.randn(1, 16, 3, 2)).shape == (1, 4, 6, 4)


@pytest.mark.parametrize(
    "kwargs",
    [{"num_deconv_layers": 0}, {"num_deconv_layers": 4}, {"deconv_kernel": 5}, {"final_conv_kernel": 2}],
)
def test_head_rejects_bad_config(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        DeconvHead(16, 4, **kwargs)


def test_head_paper_init() -> None:
    torch.manual_seed(0)
    head = DeconvHead(512, 17)
    for i in (0, 3, 6):
        w = head.deconv_layers[i].weight
        assert w.std().item() == pytest.approx(0.001, rel=0.05)
        assert abs(w.mean().item()) < 1e-4
        bn = head.deconv_layers[i + 1]
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert head.final_layer.weight.std().item() == pytest.approx(0.001, rel=0.1)
    assert torch.all(head.final_layer.bias == 0)


def test_simple_baseline_heatmap_shape() -> None:
    model = SimpleBaseline(ResNet(18), DeconvHead(512, 17, num_deconv_filters=16)).eval()
    assert model.stride == 4 and model.num_joints == 17
    with torch.no_grad():
        out = model(torch.randn(1, 3, 128, 96))
    assert out.shape == (1, 17, 32, 24)
    assert set(model.state_dict()) >= {"backbone.conv1.weight", "head.deconv_layers.0.weight"}


# ---------------------------------------------------------------- build_model


def test_build_model_default_layout() -> None:
    model = build_model(ModelConfig(backbone_depth=18, num_joints=16, num_deconv_filters=32))
    assert isinstance(model, SimpleBaseline)
    assert model.backbone.depth == 18
    assert model.head.final_layer.out_channels == 16
    assert model.head.deconv_layers[0].in_channels == 512


@pytest.mark.parametrize(
    "field, value",
    [
        ("arch", "hrnet"),
        ("backbone_depth", 42),
        ("num_joints", 0),
        ("num_deconv_layers", 5),
        ("deconv_kernel", 7),
        ("final_conv_kernel", 2),
    ],
)
def test_build_model_rejects_bad_config(field: str, value: object) -> None:
    cfg = ModelConfig(backbone_depth=18)
    setattr(cfg, field, value)
    with pytest.raises(HeatposeError, match=str(value)):
        build_model(cfg)


def test_build_model_loads_pretrained_and_weights(tmp_path) -> None:
    src = tiny_model(num_joints=5)
    backbone_file = tmp_path / "resnet18-imagenet.pth"
    torch.save(src.backbone.state_dict(), backbone_file)
    cfg = ModelConfig(backbone_depth=18, num_joints=5, num_deconv_filters=16, pretrained=str(backbone_file))
    model = build_model(cfg).eval()
    assert torch.equal(model.backbone.conv1.weight, src.backbone.conv1.weight)

    full_file = tmp_path / "model.pth"
    torch.save({"model": src.state_dict(), "epoch": 3}, full_file)
    cfg.pretrained, cfg.weights = "", str(full_file)
    assert torch.equal(outputs(build_model(cfg).eval()), outputs(src))


# ---------------------------------------------------------------- checkpoints


def test_official_layout_loads_strictly(tmp_path) -> None:
    src = tiny_model()
    official = {"module." + k: v for k, v in to_official(src.state_dict()).items()}
    assert "module.deconv_layers.6.weight" in official and "module.final_layer.bias" in official
    path = tmp_path / "pose_resnet_18.pth.tar"
    # the official checkpoint.pth.tar layout: "model" holds the model *name*
    torch.save({"epoch": 140, "model": "pose_resnet_18", "state_dict": official, "perf": 0.7}, path)
    dst = tiny_model(seed=1)
    assert not torch.equal(outputs(dst), outputs(src))
    load_model_weights(dst, path)
    assert torch.equal(outputs(dst), outputs(src))


def test_official_bare_state_dict_without_num_batches_tracked() -> None:
    # the released official models predate PyTorch 0.4.1's num_batches_tracked buffers
    src = tiny_model()
    bare = {k: v for k, v in to_official(src.state_dict()).items() if "num_batches_tracked" not in k}
    dst = tiny_model(seed=1)
    load_model_weights(dst, bare)
    assert torch.equal(outputs(dst), outputs(src))
    assert dst.backbone.bn1.num_batches_tracked.item() == 0


def test_mmpose_1x_layout(tmp_path) -> None:
    src = tiny_model()
    path = tmp_path / "td-hm_res18.pth"
    # numpy in meta (as MMPose writes) forces the non-weights_only fallback
    meta = {"dataset_meta": {"sigmas": np.ones(5, dtype=np.float32)}, "mmpose_version": "1.3.0"}
    torch.save({"meta": meta, "state_dict": src.state_dict()}, path)
    dst = tiny_model(seed=1)
    load_model_weights(dst, path)
    assert torch.equal(outputs(dst), outputs(src))


def test_mmpose_0x_layout() -> None:
    src = tiny_model()
    ckpt = {
        "meta": {},
        "state_dict": {k.replace("head.", "keypoint_head.", 1): v for k, v in src.state_dict().items()},
    }
    assert "keypoint_head.final_layer.weight" in ckpt["state_dict"]
    migrated = migrate_state_dict(ckpt)
    assert set(migrated) == set(src.state_dict())
    dst = tiny_model(seed=1)
    load_model_weights(dst, ckpt)
    assert torch.equal(outputs(dst), outputs(src))


def test_heatpose_layout_passes_through() -> None:
    src = tiny_model()
    ckpt = {"model": src.state_dict(), "optimizer": {"state": {}}, "epoch": 3}
    assert migrate_state_dict(ckpt).keys() == src.state_dict().keys()
    assert migrate_state_dict({"state_dict": src.state_dict()}).keys() == src.state_dict().keys()


def test_torchvision_backbone_file_drops_fc(tmp_path) -> None:
    src = randomize(ResNet(18))
    sd = dict(src.state_dict())
    sd["fc.weight"], sd["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(sd, path)
    dst = ResNet(18)
    load_backbone_weights(dst, path)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_backbone_file_of_wrong_depth_is_readable_error() -> None:
    with pytest.raises(HeatposeError, match=r"pretrained backbone checkpoint does not match.*layer"):
        load_backbone_weights(ResNet(18), ResNet(34).state_dict())


def test_wrong_num_joints_names_shape_mismatch() -> None:
    ckpt = {"state_dict": tiny_model(num_joints=16).state_dict()}
    with pytest.raises(HeatposeError) as info:
        load_model_weights(tiny_model(num_joints=17), ckpt)
    msg = str(info.value)
    assert "\n" not in msg
    assert "2 shape mismatches" in msg
    assert "head.final_layer.weight: checkpoint (16, 16, 1, 1) vs model (17, 16, 1, 1)" in msg


def test_extra_and_missing_keys_are_named() -> None:
    sd = dict(tiny_model().state_dict())
    sd["head.extra_conv.weight"] = torch.zeros(1)
    del sd["head.final_layer.bias"]
    with pytest.raises(HeatposeError) as info:
        load_model_weights(tiny_model(), sd)
    msg = str(info.value)
    assert "1 missing key (head.final_layer.bias)" in msg
    assert "1 unexpected key (head.extra_conv.weight)" in msg


def test_non_strict_allows_missing_but_not_shapes() -> None:
    src = tiny_model()
    sd = {k: v for k, v in src.state_dict().items() if k.startswith("backbone.")}
    dst = tiny_model(seed=1)
    load_model_weights(dst, sd, strict=False)
    assert torch.equal(dst.backbone.conv1.weight, src.backbone.conv1.weight)
    with pytest.raises(HeatposeError, match="shape mismatch"):
        load_model_weights(tiny_model(num_joints=3), tiny_model(num_joints=4).state_dict(), strict=False)


def test_missing_and_unreadable_files(tmp_path) -> None:
    with pytest.raises(HeatposeError, match="not found"):
        load_model_weights(tiny_model(seed=None), tmp_path / "nope.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(HeatposeError, match="cannot read checkpoint"):
        load_model_weights(tiny_model(seed=None), garbage)


def test_unrecognised_layout() -> None:
    with pytest.raises(HeatposeError, match="unrecognised checkpoint layout"):
        migrate_state_dict({"epoch": 3, "weights": [1, 2]})
    with pytest.raises(HeatposeError, match="unrecognised checkpoint layout"):
        migrate_state_dict([1, 2, 3])
