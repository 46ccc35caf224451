"""A person detector you bring: a YOLOX- or RTMDet-style ONNX model run through onnxruntime.

Why: top-down pose is only as good as its person boxes, and OpenCV's HOG detector (the
zero-download default) misses most people who are not upright pedestrians. Detectors exported
by MMDeploy or the YOLOX repository, as rtmlib ships them, plug in here.

Accepted signatures (one image in, ``(1, 3, H, W)`` float32, static or dynamic H/W):

* ``end2end`` (MMDeploy's export with NMS inside, rtmlib's YOLOX/RTMDet files): two outputs,
  ``dets`` (1, N, 5) = x1, y1, x2, y2, score in input pixels and ``labels`` (1, N) class ids;
* ``yolox`` (the YOLOX repository's ``export_onnx.py``): one output (1, N, 5 + C) per anchor
  point = cx, cy, w, h, objectness, C class scores. By default the raw head output
  (``decode_in_inference=False``, the repository default) is decoded here on strides 8, 16, 32;
  ``decoded=True`` takes outputs already in input pixels. heatpose then applies its own box NMS
  (:func:`heatpose.evaluation.nms.box_nms`).

Preprocessing follows those exporters: the image (BGR, as OpenCV reads it) is resized keeping
its aspect ratio into the top-left corner of an ``input_size`` canvas filled with 114, then
``(pixel - mean) / std`` per channel (YOLOX: mean 0, std 1; RTMDet: mean 103.53, 116.28,
123.675 and std 57.375, 57.12, 58.395, BGR). ``input_size``, ``mean``, ``std`` and ``layout``
are read from the model's metadata properties (``input_size`` as "W,H", ``mean``/``std`` as three
comma-separated numbers, ``layout``) when present, else from the arguments.
A model with any other signature is refused with one line saying what was expected.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from heatpose.errors import HeatposeError
from heatpose.evaluation.nms import box_nms

YOLOX_STRIDES = (8, 16, 32)
LAYOUTS = ("end2end", "yolox", "yolox-decoded")
EXPECTED = (
    "expected input (1, 3, H, W) and outputs either dets (1, N, 5) + labels (1, N) (end2end, MMDeploy) "
    "or one (1, N, 5 + classes) tensor (yolox)"
)


def _parse_floats(text: str, n: int, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise HeatposeError(f"detector metadata {what!r}: expected {n} comma-separated numbers, got {text!r}")
    return values


class OnnxPersonDetector:
    """``detector(image_bgr) -> (boxes (N, 4) x, y, w, h in image pixels, scores (N,))``, people only."""

    def __init__(
        self,
        path: str | Path,
        input_size: tuple[int, int] | None = None,
        mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
        std: tuple[float, float, float] = (1.0, 1.0, 1.0),
        layout: str | None = None,
        score_thr: float = 0.5,
        nms_iou: float = 0.45,
        person_class: int = 0,
    ) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise HeatposeError(f"detector model not found: {path}")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for bad files
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise HeatposeError(f"{path}: cannot load ONNX detector: {first}") from None
        self.path = path
        meta = self.session.get_modelmeta().custom_metadata_map
        if "input_size" in meta:
            w, h = _parse_floats(meta["input_size"], 2, "input_size")
            input_size = (int(w), int(h))
        self.mean = np.asarray(_parse_floats(meta["mean"], 3, "mean") if "mean" in meta else mean, np.float32)
        self.std = np.asarray(_parse_floats(meta["std"], 3, "std") if "std" in meta else std, np.float32)
        self.layout = meta.get("layout", layout)
        self.score_thr, self.nms_iou, self.person_class = score_thr, nms_iou, person_class
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[1] not in (3, "3"):
            raise HeatposeError(f"{path}: unsupported detector signature: {EXPECTED}")
        self.input_name = inputs[0].name
        static = [d if isinstance(d, int) else None for d in inputs[0].shape[2:]]
        if input_size is None:
            if None in static:
                raise HeatposeError(f"{path}: the model's input size is dynamic: give --detector-size W H")
            input_size = (static[1], static[0])
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if self.layout is None:
            self.layout = "end2end" if len(outputs) == 2 else "yolox"
        if self.layout not in LAYOUTS:
            raise HeatposeError(f"{path}: unknown detector layout {self.layout!r}; expected one of {LAYOUTS}")
        ranks = [len(o.shape) for o in outputs]
        if (self.layout == "end2end" and ranks != [3, 2]) or (self.layout != "end2end" and ranks != [3]):
            raise HeatposeError(f"{path}: unsupported detector signature {ranks}-d outputs: {EXPECTED}")

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """BGR HxWx3 uint8 -> (1, 3, H_in, W_in) float32 letterboxed input and the resize ratio."""
        w_in, h_in = self.input_size
        h, w = image.shape[:2]
        ratio = min(w_in / w, h_in / h)
        canvas = np.full((h_in, w_in, 3), 114, np.uint8)
        nw, nh = max(1, round(w * ratio)), max(1, round(h * ratio))
        canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = (canvas.astype(np.float32) - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), ratio

    def _yolox_boxes(self, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 5 + C) -> xyxy boxes (N, 4) and person scores (N,) in input pixels."""
        if out.shape[-1] < 6 or out.shape[-1] - 5 <= self.person_class:
            raise HeatposeError(f"{self.path}: yolox output has {out.shape[-1]} values per row: {EXPECTED}")
        out = out.astype(np.float64).copy()
        if self.layout == "yolox":
            w_in, h_in = self.input_size
            grids, strides = [], []
            for s in YOLOX_STRIDES:
                gy, gx = np.meshgrid(np.arange(h_in // s), np.arange(w_in // s), indexing="ij")
                grids.append(np.stack([gx, gy], -1).reshape(-1, 2))
                strides.append(np.full((grids[-1].shape[0], 1), s))
            grid, stride = np.concatenate(grids), np.concatenate(strides)
            if len(grid) != len(out):
                raise HeatposeError(
                    f"{self.path}: {len(out)} yolox predictions, but {len(grid)} anchor points at strides "
                    f"{YOLOX_STRIDES} for input {w_in}x{h_in} (is the output already decoded? "
                    "use layout yolox-decoded)"
                )
            out[:, :2] = (out[:, :2] + grid) * stride
            out[:, 2:4] = np.exp(out[:, 2:4]) * stride
        cx, cy, bw, bh = out[:, 0], out[:, 1], out[:, 2], out[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        return boxes, out[:, 4] * out[:, 5 + self.person_class]

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, ratio = self.preprocess(image)
        outputs = self.session.run(None, {self.input_name: x})
        if self.layout == "end2end":
            dets, labels = outputs[0][0], outputs[1][0]
            if dets.ndim != 2 or dets.shape[-1] != 5 or labels.shape[0] != dets.shape[0]:
                raise HeatposeError(f"{self.path}: end2end outputs {dets.shape}, {labels.shape}: {EXPECTED}")
            keep = (labels == self.person_class) & (dets[:, 4] >= self.score_thr)
            boxes, scores = dets[keep, :4].astype(np.float64), dets[keep, 4].astype(np.float64)
        else:
            boxes, scores = self._yolox_boxes(outputs[0][0])
            keep = scores >= self.score_thr
            boxes, scores = boxes[keep], scores[keep]
            order = box_nms(boxes, scores, self.nms_iou)
            boxes, scores = boxes[order], scores[order]
        h, w = image.shape[:2]
        boxes = boxes / ratio
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w - 1)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h - 1)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        ok = (xywh[:, 2] > 0) & (xywh[:, 3] > 0)
        return xywh[ok], scores[ok]
