"""How far bf16 inference moves keypoints from fp32, in heatmap pixels, on real people.

Runs :class:`~heatpose.predictor.PoseEstimator` twice (torch backend, fp32 and bf16 autocast,
both BN-folded + channels_last, flip test as the checkpoint's config) on the GT person boxes of
a COCO keypoints file and reports the distance between the two predictions of each keypoint,
converted from image pixels to heatmap pixels of its crop (the unit of the issue's 0.1 px
target)::

    python benchmarks/bf16_delta.py CKPT ../shared/data/coco_mini/annotations/person_keypoints_val2017.json \\
        ../shared/data/coco_mini/images/val2017
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from heatpose.data.transforms import box_to_center_scale
from heatpose.detection import PersonBoxes
from heatpose.engine.optim import cpu_has_native_bf16
from heatpose.io import load_json
from heatpose.media import read_photo
from heatpose.predictor import PoseEstimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("ann")
    parser.add_argument("images")
    parser.add_argument("--config", default=None)
    parser.add_argument("--max-images", type=int, default=40)
    args = parser.parse_args()
    fp32 = PoseEstimator.from_checkpoint(args.checkpoint, config=args.config, detector="whole-image")
    bf16 = PoseEstimator.from_checkpoint(args.checkpoint, config=args.config, precision="bf16")
    gt = load_json(args.ann, "annotation")
    boxes: dict[int, list[list[float]]] = {}
    for ann in gt["annotations"]:
        if not ann.get("iscrowd", 0) and ann.get("num_keypoints", 0) > 0:
            boxes.setdefault(ann["image_id"], []).append(ann["bbox"])
    w, h = fp32.codec.input_size
    hm_w = fp32.codec.heatmap_size[0]
    dists = []
    for img in gt["images"][: args.max_images]:
        if img["id"] not in boxes:
            continue
        image = read_photo(Path(args.images) / img["file_name"])
        person_boxes = PersonBoxes(np.asarray(boxes[img["id"]], float), np.ones(len(boxes[img["id"]])), "gt")
        a = fp32.predict_bgr(image, person_boxes)
        b = bf16.predict_bgr(image, person_boxes)
        for box, pa, pb in zip(person_boxes.boxes, a, b, strict=True):
            _, scale = box_to_center_scale(box, w / h, fp32.cfg.data.box_enlarge)
            image_px_per_heatmap_px = float(scale[0]) * 200.0 / hm_w
            dists.append(
                np.linalg.norm(pa.keypoints[:, :2] - pb.keypoints[:, :2], axis=1) / image_px_per_heatmap_px
            )
    d = np.concatenate(dists)
    print(
        json.dumps(
            {
                "keypoints": int(d.size),
                "people": len(dists),
                "native_bf16": cpu_has_native_bf16(),
                "max_heatmap_px": round(float(d.max()), 4),
                "p99_heatmap_px": round(float(np.percentile(d, 99)), 4),
                "median_heatmap_px": round(float(np.median(d)), 4),
                "within_0.1_px": round(float((d <= 0.1).mean()), 4),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
