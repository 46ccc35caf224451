"""ONNX export (metadata, dynamic batch, parity), the onnx backend, and ``heatpose bench``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from model_helpers import randomize_batchnorm
from torch import nn

from heatpose import allocator
from heatpose.bench import format_report, model_flops, run_bench
from heatpose.cli import main
from heatpose.config import config_from_dict, config_to_dict
from heatpose.engine.checkpoint import checkpoint_meta
from heatpose.errors import HeatposeError
from heatpose.export import OnnxRunner
from heatpose.models import build_model
from heatpose.predictor import PoseEstimator
from tests.conftest import shared_path

TINY = {
    "model": {"backbone_depth": 18, "num_deconv_filters": 16, "num_deconv_layers": 2},
    "data": {"input_size": [64, 96], "color_order": "bgr"},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = config_from_dict(TINY)
    torch.manual_seed(0)
    model = randomize_batchnorm(build_model(cfg.model), affine=False)
    nn.init.normal_(model.head.final_layer.weight, std=0.1)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save(
        {"model": model.state_dict(), "config": config_to_dict(cfg), "meta": checkpoint_meta(cfg)}, path
    )
    return path, model.eval(), cfg


def test_export_writes_metadata_a_dynamic_batch_and_prints_parity(tiny, tmp_path, capsys):
    path, model, cfg = tiny
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(path), "--out", str(out), "--opset", "17"]) == 0
    printed = capsys.readouterr().out
    assert "max heatmap difference" in printed and "max keypoint difference" in printed
    heatmap_diff = float(printed.split("max heatmap difference ")[1].split(",")[0])
    assert heatmap_diff < 1e-4
    runner = OnnxRunner(out)
    meta = runner.metadata
    assert meta["schema"] == "coco" and meta["color_order"] == "bgr"
    assert json.loads(meta["input_size"]) == [64, 96] and json.loads(meta["mean"]) == cfg.data.mean
    assert len(json.loads(meta["joint_names"])) == 17 and json.loads(meta["std"]) == cfg.data.std
    assert runner.config().data.input_size == [64, 96]
    assert runner.schema() is not None and runner.schema().flip_index() == json.loads(meta["flip_index"])
    x = torch.randn(3, 3, 96, 64)
    with torch.inference_mode():
        torch.testing.assert_close(runner(x), model(x), atol=1e-4, rtol=1e-3)  # batch 3: dynamic axis
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary file
    import onnx

    graph = onnx.load(str(out)).graph
    assert not [n for n in graph.node if n.op_type == "BatchNormalization"]  # BN folded
    # the file alone is enough for PoseEstimator: config from its metadata
    from_file = PoseEstimator.from_checkpoint(out, backend="onnx", detector="whole-image", flip=False)
    torch_est = PoseEstimator.from_checkpoint(path, detector="whole-image", flip=False)
    image = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    a = from_file.predict(image, color_order="bgr")[0].keypoints
    b = torch_est.predict(image, color_order="bgr")[0].keypoints
    assert np.abs(a[:, :2] - b[:, :2]).max() < 1e-3
    with pytest.raises(HeatposeError, match="backend='onnx'"):
        PoseEstimator.from_checkpoint(out)


def test_onnx_and_torch_backends_agree(tiny):
    path = tiny[0]
    image = cv2.imread(str(shared_path("mmpose_testdata", "coco", "000000000785.jpg")))
    boxes = [[277, 45, 225, 333, 1.0], [100, 50, 150, 300, 0.8], [10, 10, 600, 400, 0.5]]
    torch_est = PoseEstimator.from_checkpoint(path, detector="whole-image")
    onnx_est = PoseEstimator.from_checkpoint(path, backend="onnx", detector="whole-image")
    a = torch_est.predict(image, boxes=boxes, color_order="bgr")
    b = onnx_est.predict(image, boxes=boxes, color_order="bgr")
    for pa, pb in zip(a, b, strict=True):
        assert np.abs(pa.keypoints[:, :2] - pb.keypoints[:, :2]).max() < 1e-3
        assert np.abs(pa.keypoints[:, 2] - pb.keypoints[:, 2]).max() < 1e-4
    with pytest.raises(HeatposeError, match="fp32 on CPU"):
        PoseEstimator.from_checkpoint(path, backend="onnx", precision="bf16")


def test_model_flops_counts_conv_and_deconv_by_hand():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1))
    # conv: 2 * 3*3*3 * 4 * 8*8; deconv: 2 * 4 * 8*8 (input pixels) * 4*4 * 2
    assert model_flops(net, (2, 3, 8, 8)) == 2 * 27 * 4 * 64 + 2 * 4 * 64 * 16 * 2


def test_bench_reports_every_path_against_the_eager_baseline(tiny):
    _, model, cfg = tiny
    report = run_bench(model, cfg, [2], ["eager-fp32", "torch-fp32"], iters=1, matmul_size=128)
    rows = {r["path"]: r for r in report["rows"]}
    assert set(rows) == {"eager-fp32", "torch-fp32"}
    assert rows["eager-fp32"]["speedup_vs_eager"] == 1.0
    assert all(r["images_per_s"] > 0 and r["persons_per_s_end_to_end"] > 0 for r in rows.values())
    assert report["gflops_per_image"] == pytest.approx(model_flops(model, (1, 3, 96, 64)) / 1e9)
    text = format_report(report)
    assert "eager-fp32" in text and "share of ceiling" in text and "GFLOP per image" in text
    assert (
        "input 96x64 (HxW)" in text
        and "| images/s | median |" in text
        and "best and median of 1 rounds" in text
    )
    no_baseline = run_bench(model, cfg, [1], ["torch-fp32", "torch-bf16"], iters=1, matmul_size=64)
    assert no_baseline["rows"][0]["speedup_vs_eager"] is None
    text = format_report(no_baseline)
    assert "no eager baseline timed" in text
    if no_baseline["native_bf16"]:  # the bf16 row's share is of the bf16 ceiling, and says so
        bf16_row = next(line for line in text.splitlines() if line.startswith("| torch-bf16"))
        assert "of bf16" in bf16_row


def test_bench_ceiling_is_the_best_matmul_library_and_eager_runs_first_under_default_malloc(tiny):
    _, model, cfg = tiny
    allocator.glibc_default_policy()
    paths = ["torch-fp32", "eager-fp32-reuse", "eager-fp32"]  # any order: the baseline is timed first
    report = run_bench(model, cfg, [1], paths, iters=1, matmul_size=128)
    assert [r["path"] for r in report["rows"]] == ["eager-fp32", "eager-fp32-reuse", "torch-fp32"]
    by_library = report["fp32_matmul_peak_by_library"]
    assert "torch.mm" in by_library
    if torch.backends.mkldnn.is_available():
        assert "oneDNN" in by_library  # the library the CPU convolutions use is measured too
    assert report["fp32_matmul_peak_gflops"] == max(by_library.values())
    assert report["fp32_matmul_peak_gflops"] == max(report["fp32_matmul_peaks_seen"])
    ceiling = report["fp32_matmul_peak_gflops"] * 1e9 / (report["gflops_per_image"] * 1e9)
    assert report["fp32_ceiling_images_per_s"] == pytest.approx(ceiling)
    if allocator._glibc() is not None:
        assert report["allocator"] == {"eager-fp32": "glibc defaults", "other paths": "freed memory kept"}
    assert "allocator: eager-fp32 with glibc defaults" in format_report(report)


def test_export_and_bench_refuse_bad_arguments_in_one_line(tiny, tmp_path, capsys):
    path = str(tiny[0])
    assert main(["export", "--checkpoint", path, "--out", str(tmp_path / "m.onnx"), "--opset", "5"]) == 2
    assert "--opset 5" in capsys.readouterr().err
    out = str(tmp_path / "m.onnx")
    assert main(["export", "--checkpoint", path, "--out", out, "--input-size", "50", "64"]) == 2
    assert "multiples of 32" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
    assert main(["bench", "--checkpoint", path, "--backends", "tensorrt", "--batch", "1"]) == 2
    assert "unknown bench path" in capsys.readouterr().err
    assert main(["bench"]) == 2
