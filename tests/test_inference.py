"""The shared inference path, the CPU fast path and the native-bf16 probe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_helpers import randomize_batchnorm
from torch import nn

from heatpose.codec import HeatmapCodec
from heatpose.config import config_from_dict
from heatpose.data.dataset import normalize_image
from heatpose.data.transforms import apply_affine, box_to_center_scale, get_affine_transform, warp_crop
from heatpose.engine import optim
from heatpose.engine.evaluate import predict_heatmaps as reexported
from heatpose.fastpath import count_batchnorms, fold_batchnorm, optimize_for_inference
from heatpose.inference import (
    configured_flip_shift,
    crop_batch,
    flip_shift_px,
    predict_heatmaps,
)
from heatpose.models import build_model


def _tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    cfg = config_from_dict(
        {"model": {"backbone_depth": 18, "num_deconv_filters": 16, "num_deconv_layers": 2}}
    )
    return randomize_batchnorm(build_model(cfg.model))  # non-trivial BN, so folding has work to do


def test_evaluate_reexports_the_inference_path():
    assert reexported is predict_heatmaps


def test_flip_shift_spellings():
    assert flip_shift_px("official", 192, 48) == 1.0
    assert flip_shift_px("exact", 192, 48) == pytest.approx(0.75)
    assert flip_shift_px("none", 192, 48) == 0.0
    for old in (True, False, "yes"):
        with pytest.raises(ValueError, match="official, exact, none"):
            flip_shift_px(old, 192, 48)  # type: ignore[arg-type]
    cfg = config_from_dict({"test": {"shift_heatmap": False, "flip_shift": "exact"}})
    assert configured_flip_shift(cfg) == "none"
    assert configured_flip_shift(config_from_dict({"test": {"flip_shift": "exact"}})) == "exact"
    assert configured_flip_shift(config_from_dict({"data": {"codec": "udp"}})) == "none"


@pytest.mark.parametrize("udp", [False, True])
def test_crop_batch_matches_the_dataset_crop(udp):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    mean, std = np.array([0.4, 0.5, 0.6], np.float32), np.array([0.2, 0.25, 0.3], np.float32)
    boxes = [(10, 5, 40, 70), (60, 20, 50, 60)]
    cs = [box_to_center_scale(b, 48 / 64) for b in boxes]
    centers, scales = np.stack([c for c, _ in cs]), np.stack([s for _, s in cs])
    batch = crop_batch(image, centers, scales, (48, 64), mean, std, udp)
    assert batch.shape == (2, 3, 64, 48) and batch.dtype == torch.float32
    for i in range(2):
        matrix = get_affine_transform(centers[i], scales[i], 0.0, (48, 64), udp=udp)
        crop = warp_crop(image, matrix, (48, 64))
        torch.testing.assert_close(batch[i], normalize_image(crop, mean, std), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("udp", [False, True])
def test_vectorised_back_projection_equals_the_affine_inverse(udp):
    codec = HeatmapCodec((192, 256), (48, 64), udp=udp)
    rng = np.random.default_rng(1)
    coords = rng.uniform(0, 48, (5, 17, 2))
    centers = rng.uniform(50, 500, (5, 2))
    scales = rng.uniform(0.3, 2.0, (5, 2))
    out = codec.heatmap_to_image(coords, centers, scales)
    for i in range(5):
        inv = get_affine_transform(centers[i], scales[i], 0.0, (48, 64), inverse=True, udp=udp)
        np.testing.assert_allclose(out[i], apply_affine(coords[i], inv), atol=1e-9)


def test_fold_batchnorm_keeps_the_function_and_removes_every_bn():
    model = _tiny_model()
    folded = fold_batchnorm(model)
    assert count_batchnorms(model) > 0 and count_batchnorms(folded) == 0
    x = torch.randn(2, 3, 64, 48)
    with torch.inference_mode():
        ref = model(x)
        torch.testing.assert_close(folded(x), ref, atol=1e-6, rtol=1e-4)
        fast = optimize_for_inference(model)
        torch.testing.assert_close(
            fast(x.contiguous(memory_format=torch.channels_last)), ref, atol=1e-6, rtol=1e-4
        )
    assert count_batchnorms(model) > 0  # the original is left alone


def test_amp_auto_picks_bf16_on_avx512_bf16_cpus_too(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(optim, "cpu_has_amx", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert optim.resolve_amp_dtype("auto", cpu) is torch.bfloat16  # AMD Zen 4, Cooper Lake
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(optim, "_cpu_flags", lambda: {"avx512f", "avx2"})
    assert optim.resolve_amp_dtype("auto", cpu) is None
    monkeypatch.setattr(optim, "_cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert optim.resolve_amp_dtype("auto", cpu) is torch.bfloat16
    monkeypatch.setattr(optim, "cpu_has_amx", lambda: True)
    monkeypatch.setattr(optim, "_cpu_flags", lambda: set())
    assert optim.cpu_has_native_bf16()
