"""CFA through the engine and out of it: ONNX export, training with per-stage validation, and
``heatpose train --init-from`` growing a cascade."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from heatpose.cli import main
from heatpose.config import ModelConfig, config_from_dict
from heatpose.data.synthetic import write_synthetic_dataset
from heatpose.engine.checkpoint import load_training_checkpoint
from heatpose.engine.logs import read_csv
from heatpose.engine.train import train
from heatpose.models import make_model
from heatpose.models.cfa import FusedOutput

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # one_thread: tests/conftest.py


# ---------------------------------------------------------------- ONNX


@pytest.mark.parametrize(
    "stage_type, aggregate, stage_input",
    [("resnet", True, "image"), ("resnet", True, "features"), ("hourglass", False, "image")],
)
def test_onnx_export_and_runtime_parity(stage_type: str, aggregate: bool, stage_input: str) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    cfg = ModelConfig(
        arch="cfa", backbone_depth=18, num_joints=16, num_deconv_filters=16, num_stages=2,
        aggregate=aggregate, stage_type=stage_type, stage_input=stage_input, hourglass_depth=2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = make_model(cfg).eval()
    assert not FusedOutput(model).training  # the wrapper keeps the cascade's mode
    x = torch.randn(1, 3, 64, 64)
    # the raw forward exports with one output per stage
    raw = io.BytesIO()
    torch.onnx.export(model, (x,), raw, dynamo=False)
    assert len(onnx.load_from_string(raw.getvalue()).graph.output) == 2
    # the fused prediction as a single-output graph, checked against onnxruntime
    fused = io.BytesIO()
    torch.onnx.export(FusedOutput(model), (x,), fused, dynamo=False, input_names=["image"])
    proto = onnx.load_from_string(fused.getvalue())
    onnx.checker.check_model(proto)
    session = ort.InferenceSession(fused.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        expected = model.fuse(model(x)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-4, rtol=1e-3)


# ---------------------------------------------------------------- training


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, 4, seed=0, image_size=(96, 96), split_name="train", progress=False)
    write_synthetic_dataset(root, 2, seed=1, image_size=(96, 96), split_name="val", progress=False)
    return root


def cfa_config(root: Path, num_stages: int = 2):
    return config_from_dict(
        {
            "model": {"arch": "cfa", "backbone_depth": 18, "num_deconv_filters": 16,
                      "num_stages": num_stages, "fuse_last_k": 2},
            "data": {
                "train_ann": str(root / "annotations" / "person_keypoints_train.json"),
                "train_images": str(root / "images" / "train"),
                "val_ann": str(root / "annotations" / "person_keypoints_val.json"),
                "val_images": str(root / "images" / "val"),
                "input_size": [64, 64],
            },
            "train": {"epochs": 1, "batch_size": 4, "num_workers": 0, "stage_weights": [0.5] * num_stages},
            "test": {"batch_size": 8},
        }
    )  # fmt: skip


def test_training_logs_every_stage_and_the_cost(tiny_data, tmp_path, capsys) -> None:
    cfg = cfa_config(tiny_data)
    metrics = train(cfg, tmp_path / "run")
    err = capsys.readouterr().err
    assert "model: cfa, " in err and "GFLOPs (multiply-adds) at 64x64" in err
    for key in ("AP", "stage1_AP", "stage2_AP"):
        assert np.isfinite(metrics[key]), key
    row = read_csv(tmp_path / "run" / "metrics.csv")[-1]
    assert {"stage1_AP", "stage2_AP"} <= row.keys()


def test_cli_init_from_grows_the_cascade(tiny_data, tmp_path, capsys) -> None:
    cfg = cfa_config(tiny_data)
    small_dir = tmp_path / "s2"
    train(cfg, small_dir)
    config_file = tmp_path / "cfa.yaml"
    import yaml

    from heatpose.config import config_to_dict

    config_file.write_text(yaml.safe_dump(config_to_dict(cfg)))
    capsys.readouterr()
    grow = ["--init-from", str(small_dir / "latest.pth"), "--set", "model.num_stages=3"]
    sets = ["--set", "train.stage_weights=[1,1,1]", "--set", "train.val_interval=0"]
    code = main(["train", str(config_file), "--work-dir", str(tmp_path / "s3"), *grow, *sets])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "loaded: " in err and "new: " in err and "skipped: 0 tensors" in err
    assert "stages.2.* " in err and "aggregations.1.* " in err
    grown = load_training_checkpoint(tmp_path / "s3" / "latest.pth")
    assert grown["config"]["model"]["init_from"] == str(small_dir / "latest.pth")
    assert any(k.startswith("stages.2.") for k in grown["model"])
    # resuming the grown run needs no --init-from (the run's own checkpoint wins) and loads nothing else
    more = ["--set", "train.epochs=2", "--resume"]
    code = main(["train", str(config_file), "--work-dir", str(tmp_path / "s3"), *grow[2:], *sets, *more])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "init from" not in err and "resumed from" in err


def test_heatpose_export_writes_the_fused_prediction() -> None:
    pytest.importorskip("onnxruntime")
    from heatpose.config import config_from_dict
    from heatpose.data.dataset import build_codec
    from heatpose.export import OnnxRunner, onnx_bytes, parity_check

    cfg = config_from_dict(
        {
            "model": {"arch": "cfa", "backbone_depth": 18, "num_joints": 16, "num_deconv_filters": 16},
            "data": {"schema": "mpii", "input_size": [64, 64]},
        }
    )
    torch.manual_seed(0)
    model = make_model(cfg.model).eval()
    runner = OnnxRunner(onnx_bytes(model, cfg))  # one output: the fused map
    parity = parity_check(model, runner, build_codec(cfg))
    assert parity.max_heatmap_diff < 1e-4 and parity.max_keypoint_diff_px == 0
