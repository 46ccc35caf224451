"""benchmarks/codec_offstyle.py: two tiny checkpoints (official, udp) on a 3-image flat-style split."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from heatpose.config import config_from_dict, config_to_dict
from heatpose.data.dataset import build_dataset
from heatpose.data.synthetic import write_synthetic_dataset
from heatpose.data.transforms import PIXEL_STD
from heatpose.engine.checkpoint import atomic_save, checkpoint_meta
from heatpose.inference import Predictions
from heatpose.models import build_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "codec_offstyle.py"


def _script():
    spec = importlib.util.spec_from_file_location("codec_offstyle", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def flat_split(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("flat")
    write_synthetic_dataset(
        root, 3, seed=1, image_size=(128, 96), split_name="val", progress=False, style="flat"
    )
    return root


def _tiny_checkpoint(path: Path, codec: str) -> Path:
    """An untrained ResNet-18 with a 2 x 16-filter head at 64 x 64 (stride 8): the plumbing only."""
    torch.manual_seed(0)
    cfg = config_from_dict(
        {
            "model": {"backbone_depth": 18, "num_deconv_layers": 2, "num_deconv_filters": 16},
            "data": {"input_size": [64, 64], "codec": codec},
            "test": {"decode": "dark"},
        }
    )
    model = build_model(cfg.model)
    atomic_save(
        {"model": model.state_dict(), "config": config_to_dict(cfg), "meta": checkpoint_meta(cfg)}, path
    )
    return path


def test_signed_crop_errors_are_in_each_codecs_crop_pixels(flat_split, tmp_path):
    script = _script()
    for codec in ("official", "udp"):
        ckpt = _tiny_checkpoint(tmp_path / f"{codec}.pth", codec)
        _, cfg, schema = script.load(str(ckpt), flat_split, "val", None)
        dataset = build_dataset(cfg, "val", boxes="gt", schema=schema)
        n = len(dataset.samples)
        gt = np.stack([s.keypoints[:, :2] for s in dataset.samples])
        moved = gt + np.array([1.0, -0.5])  # image px
        preds = Predictions(
            index=np.arange(n), image_id=np.zeros(n), keypoints=moved, scores=np.ones(gt.shape[:2]),
            box_score=np.ones(n), area=np.ones(n),
        )  # fmt: skip
        errors = script.signed_crop_errors(preds, dataset)
        labelled = sum(int((s.keypoints[:, 2] > 0).sum()) for s in dataset.samples)
        assert errors.shape == (labelled, 2)
        width = 64 - 1 if codec == "udp" else 64
        per_image_px = np.concatenate(
            [
                np.full(int((s.keypoints[:, 2] > 0).sum()), width / (s.scale[0] * PIXEL_STD))
                for s in dataset.samples
            ]
        )
        np.testing.assert_allclose(errors[:, 0], per_image_px, rtol=1e-5)
        summary = script.summarise(errors, near=100.0)
        assert summary["found"] == 1.0 and summary["mean signed x"] > 0 > summary["mean signed y"]


def test_codec_offstyle_prints_one_row_per_flip_setting(flat_split, tmp_path, one_thread):
    official = _tiny_checkpoint(tmp_path / "official.pth", "official")
    udp = _tiny_checkpoint(tmp_path / "udp.pth", "udp")
    out = tmp_path / "table.md"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(official), str(udp), "--data", str(flat_split), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = out.read_text().splitlines()
    rows = [line for line in lines[2:] if line.startswith("| ")]  # after the header and the --- row
    codecs = [row.split(" | ")[1] for row in rows]
    flips = [row.split(" | ")[2] for row in rows]
    assert codecs == ["official"] * 4 + ["udp"] * 2
    assert flips == ["off", "on, shift official (1 hm px)", "on, shift exact (0.875 hm px)",
                     "on, shift none (0 hm px)", "off", "on (unshifted)"]  # fmt: skip
    for row in rows:
        cells = row.strip("| ").split(" | ")
        assert all(np.isfinite(float(c)) or c == "nan" for c in cells[3:])
    assert out.read_text().split("\n\n")[0] in run.stdout
    missing = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "nope.pth"), str(udp), "--data", str(flat_split)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert missing.returncode == 1 and "checkpoint not found" in missing.stderr
