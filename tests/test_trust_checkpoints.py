"""No code runs from a checkpoint; every unusable checkpoint is one line naming the file and
the problem (docs/trust.md)."""

from __future__ import annotations

import builtins
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from heatpose.config import ModelConfig
from heatpose.errors import HeatposeError
from heatpose.models import SimpleBaseline, build_model, load_model_weights
from heatpose.models.checkpoint import read_checkpoint


def tiny_model() -> SimpleBaseline:
    return build_model(ModelConfig(backbone_depth=18, num_deconv_layers=2, num_deconv_filters=32))


class Payload:
    """Unpickling this runs ``exec`` on a line that creates ``marker``: what an attacker ships."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    state = tiny_model().state_dict()
    torch.save({"state_dict": state, "meta": {"note": Payload(marker)}}, path)
    return path


def test_malicious_pickle_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "pwned.txt"
    path = malicious_checkpoint(tmp_path / "evil.pth", marker)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    with pytest.raises(HeatposeError) as err:
        load_model_weights(tiny_model(), path)
    message = str(err.value)
    assert "builtins.exec" in message and str(path) in message and "\n" not in message
    assert not marker.exists(), "the checkpoint's payload ran"
    assert calls and all(c is True for c in calls), calls  # never a full unpickle


def test_mmpose_layout_with_numpy_meta_loads(tmp_path, monkeypatch):
    """MMPose 1.x keeps numpy arrays/scalars in ``meta``: they load under weights_only=True."""
    model = tiny_model()
    meta = {
        "mmpose_version": "1.3.1",
        "epoch": 210,
        "seed": np.int64(21),
        "dataset_meta": {
            "sigmas": np.linspace(0.025, 0.107, 17).astype(np.float32),
            "flip_indices": list(range(17)),
            "dataset_keypoint_weights": np.ones(17, dtype=np.float64),
        },
        "hook_msgs": {"best_score": np.float64(0.7245), "last_ckpt": "epoch_210.pth"},
        "dtype": np.dtype("float32"),
    }
    torch.save(
        {"meta": meta, "state_dict": model.state_dict(), "message_hub": {"x": np.arange(3)}},
        tmp_path / "m.pth",
    )
    monkeypatch.setattr(torch, "load", _only_weights_only(torch.load))
    obj = read_checkpoint(tmp_path / "m.pth")
    assert isinstance(obj["meta"]["dataset_meta"]["sigmas"], np.ndarray)
    assert obj["meta"]["hook_msgs"]["best_score"] == pytest.approx(0.7245)
    other = tiny_model()
    load_model_weights(other, tmp_path / "m.pth")
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


def _only_weights_only(real_load):
    def load(*args, **kwargs):
        assert kwargs.get("weights_only") is True, "a checkpoint was loaded with weights_only=False"
        return real_load(*args, **kwargs)

    return load


def test_empty_checkpoint_says_empty(tmp_path):
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    with pytest.raises(HeatposeError, match=r"empty\.pth: the file is empty \(0 bytes\)"):
        read_checkpoint(path)


def test_text_file_checkpoint_says_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are my notes, not weights\n")
    with pytest.raises(HeatposeError, match=r"notes\.pth: not a PyTorch checkpoint"):
        read_checkpoint(path)


def test_truncated_checkpoint_says_truncated(tmp_path):
    path = tmp_path / "cut.pth"
    torch.save({"model": tiny_model().state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert not zipfile.is_zipfile(path)
    with pytest.raises(HeatposeError, match=r"cut\.pth: the file is truncated or corrupt"):
        read_checkpoint(path)


def test_nan_weights_name_the_file_and_tensor(tmp_path):
    state = tiny_model().state_dict()
    state["head.final_layer.weight"][0, 0] = float("nan")
    path = tmp_path / "diverged.pth"
    torch.save({"model": state}, path)
    with pytest.raises(HeatposeError, match=r"diverged\.pth holds NaN or infinite weights.*final_layer"):
        load_model_weights(tiny_model(), path)


def test_folder_as_checkpoint(tmp_path):
    with pytest.raises(HeatposeError, match="not a file"):
        read_checkpoint(tmp_path)
