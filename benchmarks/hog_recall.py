"""Recall of the zero-download HOG person detector on COCO people (the number in docs/predict.md).

A GT person counts as found when some HOG box overlaps its GT box with IoU >= 0.5 (the
detection convention). Reported for every non-crowd person, for people with keypoints, and
for people whose box is at least 128 px tall (the detector's window height)::

    python benchmarks/hog_recall.py ../shared/data/coco_mini/annotations/person_keypoints_val2017.json \\
        ../shared/data/coco_mini/images/val2017
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from heatpose.detection import HogPersonDetector
from heatpose.evaluation.nms import box_iou
from heatpose.io import load_json
from heatpose.media import read_photo


def _xyxy(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ann", nargs="+", help="person_keypoints_*.json, then its image folder; repeatable")
    args = parser.parse_args()
    pairs = list(zip(args.ann[0::2], args.ann[1::2], strict=True))
    detector = HogPersonDetector()
    found = {"all": [0, 0], "with_keypoints": [0, 0], "height>=128": [0, 0]}
    boxes_per_image, seconds, images = 0, 0.0, 0
    for ann_path, image_dir in pairs:
        gt = load_json(ann_path, "annotation")
        by_image: dict[int, list[dict]] = {}
        for ann in gt["annotations"]:
            if not ann.get("iscrowd", 0) and ann.get("category_id", 1) == 1:
                by_image.setdefault(ann["image_id"], []).append(ann)
        for img in gt["images"]:
            image = read_photo(Path(image_dir) / img["file_name"])
            start = time.perf_counter()
            dets = detector(image)
            seconds += time.perf_counter() - start
            images += 1
            boxes_per_image += len(dets)
            det_xyxy = _xyxy(dets.boxes)
            for ann in by_image.get(img["id"], []):
                hit = bool(len(det_xyxy)) and box_iou(_xyxy(ann["bbox"])[0], det_xyxy).max() >= 0.5
                groups = ["all"]
                groups += ["with_keypoints"] if ann.get("num_keypoints", 0) > 0 else []
                groups += ["height>=128"] if ann["bbox"][3] >= 128 else []
                for g in groups:
                    found[g][0] += int(hit)
                    found[g][1] += 1
    report = {
        g: {"recall": round(hit / max(total, 1), 3), "found": hit, "people": total}
        for g, (hit, total) in found.items()
    }
    report["boxes_per_image"] = round(boxes_per_image / max(images, 1), 2)
    report["seconds_per_image"] = round(seconds / max(images, 1), 3)
    report["images"] = images
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
