"""The ONNX person detector: end2end (MMDeploy) and raw YOLOX signatures, wrong signatures refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from heatpose.errors import HeatposeError
from heatpose.onnx_detector import OnnxPersonDetector

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter's notice


class _End2End(nn.Module):
    """Fixed dets in a 64x64 input: a person, a non-person, a person under the score threshold."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)  # randomly initialised; its output is multiplied by 0
        dets = [[8.0, 4.0, 24.0, 40.0, 0.9], [30.0, 30.0, 60.0, 60.0, 0.95], [0.0, 0.0, 10.0, 10.0, 0.2]]
        self.register_buffer("dets", torch.tensor([dets]))
        self.register_buffer("labels", torch.tensor([[0, 2, 0]]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dets + 0 * self.conv(x).mean(), self.labels


class _RawYolox(nn.Module):
    """Raw YOLOX head output for a 64x64 input: 8x8 + 4x4 + 2x2 = 84 anchor points, 2 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)
        out = torch.zeros(1, 84, 7)
        # anchor (gx=2, gy=3) at stride 8: centre (2 + 0.5) * 8 = 20, (3 + 0.5) * 8 = 28; w = e^1 * 8
        out[0, 3 * 8 + 2] = torch.tensor([0.5, 0.5, 1.0, 1.5, 0.9, 0.8, 0.1])
        out[0, 3 * 8 + 3] = torch.tensor([0.5, 0.5, 1.0, 1.5, 0.85, 0.8, 0.1])  # overlaps: NMS drops it
        self.register_buffer("out", out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out + 0 * self.conv(x).mean()


class _Wrong(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def _export(module: nn.Module, path, names: list[str]) -> None:
    torch.onnx.export(module, (torch.zeros(1, 3, 64, 64),), str(path), input_names=["input"],
                      output_names=names, dynamo=False)  # fmt: skip


def test_end2end_detector_returns_people_in_image_pixels(tmp_path):
    path = tmp_path / "det.onnx"
    _export(_End2End(), path, ["dets", "labels"])
    det = OnnxPersonDetector(path, score_thr=0.5)
    image = np.zeros((128, 96, 3), np.uint8)  # ratio min(64/96, 64/128) = 0.5
    boxes, scores = det(image)
    np.testing.assert_allclose(boxes, [[16.0, 8.0, 32.0, 72.0]])
    np.testing.assert_allclose(scores, [0.9], rtol=1e-6)


def test_raw_yolox_is_decoded_and_suppressed(tmp_path):
    path = tmp_path / "yolox.onnx"
    _export(_RawYolox(), path, ["output"])
    det = OnnxPersonDetector(path, score_thr=0.5)
    boxes, scores = det(np.zeros((64, 64, 3), np.uint8))
    w, h = np.exp(1.0) * 8, np.exp(1.5) * 8
    assert len(boxes) == 1
    np.testing.assert_allclose(boxes[0, :2], [20 - w / 2, 28 - h / 2], atol=1e-4)
    np.testing.assert_allclose(scores, [0.9 * 0.8], rtol=1e-5)


def test_wrong_signature_is_one_clear_error(tmp_path):
    path = tmp_path / "wrong.onnx"
    _export(_Wrong(), path, ["y"])
    with pytest.raises(HeatposeError, match="expected input"):
        OnnxPersonDetector(path)
    with pytest.raises(HeatposeError, match="not found"):
        OnnxPersonDetector(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_text("not a model")
    with pytest.raises(HeatposeError, match="cannot load ONNX detector"):
        OnnxPersonDetector(tmp_path / "junk.onnx")
