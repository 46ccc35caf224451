"""Dataset writing: JPEGs plus the COCO keypoint json (and the official MPII list for ``layout="mpii"``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from heatpose.data.synthetic.output import claim_output
from heatpose.data.synthetic.scene import SyntheticPerson, check_synth_args, render_synthetic_image
from heatpose.io import atomic_write_bytes, atomic_write_json
from heatpose.keypoints import KeypointSchema


def _category(schema: KeypointSchema) -> dict:
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(schema.joint_names),
        "skeleton": [[a + 1, b + 1] for a, b in schema.skeleton],
    }


def _description(layout: str, seed: int, style: str) -> str:
    """The json's ``info.description``; the default style's text is what it always was."""
    extra = "" if style == "default" else f", style={style}"
    return f"heatpose synthetic people, layout={layout}, seed={seed}{extra}"


def _r(v: float) -> float:
    return round(float(v), 3)


def _coco_annotation(person: SyntheticPerson, ann_id: int, image_id: int, h: int, w: int) -> dict:
    rle = mask_utils.encode(np.asfortranarray(person.visible_mask.astype(np.uint8)))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": [_r(v) for v in person.bbox],
        "area": float(person.area),
        "iscrowd": 0,
        "num_keypoints": int((person.keypoints[:, 2] > 0).sum()),
        "keypoints": [_r(v) if i % 3 < 2 else int(v) for i, v in enumerate(person.keypoints.ravel())],
        "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
    }


def _mpii_record(person: SyntheticPerson, file_name: str) -> dict:
    """The official Simple Baselines MPII list entry; 1-based coordinates like the official file."""
    x0, y0, x1, y1 = person.extent
    vis = person.keypoints[:, 2] > 0
    joints = [
        [_r(x + 1), _r(y + 1)] if v else [-1.0, -1.0]
        for (x, y, _), v in zip(person.keypoints, vis, strict=True)
    ]
    return {
        "image": file_name,
        "center": [_r((x0 + x1) / 2 + 1), _r((y0 + y1) / 2 + 1)],
        "scale": _r(max(x1 - x0, y1 - y0) / 200.0),
        "joints": joints,
        "joints_vis": [int(v) for v in vis],
        "headbox": [_r(v + 1) for v in person.headbox],
    }


def write_synthetic_dataset(
    out_dir: str | Path,
    num_images: int,
    seed: int,
    layout: str = "coco",
    image_size: tuple[int, int] = (320, 256),
    split_name: str = "train",
    progress: bool = True,
    overwrite: bool = False,
    style: str = "default",
) -> dict:
    """Write a COCO-format keypoint split of drawn people (and the MPII list for ``layout="mpii"``).

    ``image_size`` is (width, height). Returns the paths written and the image / person counts.
    A split that already exists in ``out_dir`` (its json, or images of an interrupted run) is an
    error unless ``overwrite``; other splits in the same folder are left alone. The json files are
    written last, after every image, so a killed run leaves no json that describes other images.
    ``style`` (``scene.STYLES``) chooses how the people are drawn; the files are the same kind.
    """
    schema = check_synth_args(num_images, layout, image_size, seed, split_name, style)
    out = Path(out_dir)
    image_dir, ann_dir = out / "images" / split_name, out / "annotations"
    ann_file = ann_dir / f"person_keypoints_{split_name}.json"
    mpii_file = ann_dir / f"mpii_{split_name}.json"
    claim_output([ann_file, mpii_file], [image_dir], "*.jpg", overwrite)
    w, h = image_size
    images: list[dict] = []
    annotations: list[dict] = []
    mpii: list[dict] = []
    for index in tqdm(range(num_images), disable=not progress, desc=f"synthetic {split_name}", unit="img"):
        scene = render_synthetic_image(seed, index, layout, image_size, split_name, style)
        image_id, file_name = index + 1, f"{index + 1:012d}.jpg"
        ok, buf = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {file_name}")
        atomic_write_bytes(image_dir / file_name, buf.tobytes())
        images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})
        for person in scene.people:
            annotations.append(_coco_annotation(person, len(annotations) + 1, image_id, h, w))
            if layout == "mpii":
                mpii.append(_mpii_record(person, file_name))
    coco = {
        "info": {"description": _description(layout, seed, style), "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [_category(schema)],
    }
    if layout == "mpii":
        atomic_write_json(mpii_file, mpii, compact=True)
    atomic_write_json(ann_file, coco, compact=True)
    summary = {
        "root": str(out),
        "image_dir": str(image_dir),
        "annotation_file": str(ann_file),
        "mpii_file": str(mpii_file) if layout == "mpii" else None,
        "layout": layout,
        "style": style,
        "num_images": num_images,
        "num_people": len(annotations),
    }
    return summary
