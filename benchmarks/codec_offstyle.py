"""Two codecs judged on one split: COCO AP with and without flip test, and the signed error.

The issue's question: does a model trained with ``data.codec: official`` lean sideways on
people drawn differently from its training data, and does ``udp`` remove the lean? Give it one
checkpoint of each codec (trained on the default synthetic style) and a split drawn another way,
e.g. ``heatpose synth DIR --style flat --split val``::

    python benchmarks/codec_offstyle.py work_dirs/official/best.pth work_dirs/udp/best.pth \\
        --data /tmp/flat_val [--split val] [--out docs/img/codec_offstyle.md]

Per checkpoint it runs GT-box inference over the split without flip test, then with it: for the
official codec with each ``test.flip_shift`` (official 1 px, exact (s - 1) / s px, none), for
UDP unshifted (its maps flip exactly). Each row has COCO AP / AP50 / AP75 and the signed error
(predicted - GT) of the labelled joints in crop pixels, x and y: the mean over joints the model
found (within ``--near`` crop px on both axes, so a joint put on the wrong limb does not swamp a
sub-pixel lean), the median over all, and the share that were found. Crop pixels are the
network's input pixels: the image error mapped through the crop's own affine matrix (each
codec's own crop convention). Decoding is each checkpoint's ``test.decode`` unless ``--decode``.
Prints a Markdown table (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from heatpose.config import ExperimentConfig
from heatpose.data.dataset import PoseDataset, build_dataset
from heatpose.data.transforms import get_affine_transform
from heatpose.engine.evaluate import score_coco
from heatpose.errors import HeatposeError
from heatpose.inference import FLIP_SHIFTS, Predictions, flip_shift_px, predict_dataset
from heatpose.io import atomic_write_text
from heatpose.keypoints import KeypointSchema
from heatpose.models.checkpoint import read_checkpoint
from heatpose.predictor import network_from_checkpoint

COLUMNS = (
    "checkpoint", "codec", "flip test", "AP", "AP50", "AP75",
    "mean signed x", "mean signed y", "median x", "median y", "found",
)  # fmt: skip


def signed_crop_errors(preds: Predictions, dataset: PoseDataset) -> np.ndarray:
    """(M, 2) predicted - GT of every labelled joint (flag > 0), in crop pixels of its crop."""
    input_size, udp = dataset.codec.input_size, dataset.codec.udp
    errors = []
    for row, index in enumerate(preds.index):
        sample = dataset.samples[int(index)]
        labelled = sample.keypoints[:, 2] > 0
        if not labelled.any():
            continue
        matrix = get_affine_transform(sample.center, sample.scale, 0.0, input_size, udp=udp)
        diff = preds.keypoints[row, labelled] - sample.keypoints[labelled, :2]
        errors.append(diff @ matrix[:, :2].T)  # a difference: the translation cancels
    return np.concatenate(errors) if errors else np.zeros((0, 2))


def summarise(errors: np.ndarray, near: float) -> dict[str, float]:
    found = (np.abs(errors) < near).all(axis=1)
    mean = errors[found].mean(axis=0) if found.any() else np.full(2, np.nan)
    median = np.median(errors, axis=0) if len(errors) else np.full(2, np.nan)
    return {
        "mean signed x": float(mean[0]),
        "mean signed y": float(mean[1]),
        "median x": float(median[0]),
        "median y": float(median[1]),
        "found": float(found.mean()) if len(errors) else float("nan"),
    }


def load(
    path: str, data: Path, split: str, decode: str | None
) -> tuple[torch.nn.Module, ExperimentConfig, KeypointSchema]:
    """The network and its config, pointed at ``data``'s split (GT boxes)."""
    if not Path(path).is_file():
        raise HeatposeError(f"checkpoint not found: {path}")
    overrides = [
        f"data.val_ann={data / 'annotations' / f'person_keypoints_{split}.json'}",
        f"data.val_images={data / 'images' / split}",
        "data.dataset=coco",
        "test.boxes=gt",
    ]
    model, cfg, schema = network_from_checkpoint(read_checkpoint(path), path, None, tuple(overrides))
    if decode:
        cfg = dataclasses.replace(cfg, test=dataclasses.replace(cfg.test, decode=decode))
    return model, cfg, schema


def evaluate_checkpoint(path: str, args: argparse.Namespace) -> list[dict[str, object]]:
    model, cfg, schema = load(path, Path(args.data), args.split, args.decode)
    dataset = build_dataset(cfg, "val", boxes="gt", schema=schema)
    udp = cfg.data.codec == "udp"
    runs = [(False, "none")] + ([(True, "none")] if udp else [(True, s) for s in FLIP_SHIFTS])
    rows = []
    for flip, shift in runs:
        preds = predict_dataset(
            model,
            dataset,
            torch.device("cpu"),
            args.batch_size,
            flip=flip,
            shift=shift,
            decode=cfg.test.decode,
        )
        stats = score_coco(preds, cfg, schema, dataset.coco_gt)[1]
        if not flip:
            label = "off"
        elif udp:
            label = "on (unshifted)"
        else:
            px = flip_shift_px(shift, dataset.codec.input_size[0], dataset.codec.heatmap_size[0])
            label = f"on, shift {shift} ({px:g} hm px)"
        rows.append(
            {
                "checkpoint": Path(path).as_posix(),
                "codec": cfg.data.codec,
                "flip test": label,
                **{k: stats[k] for k in ("AP", "AP50", "AP75")},
                **summarise(signed_crop_errors(preds, dataset), args.near),
            }
        )
    return rows


SIGNED = ("mean signed x", "mean signed y", "median x", "median y")


def markdown(rows: list[dict[str, object]]) -> str:
    def cell(column: str, v: object) -> str:
        if isinstance(v, float):
            return f"{v:+.3f}" if column in SIGNED else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(c, r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    """The CPU's model name (what ``lscpu`` prints), for the note under the table."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", help="checkpoint trained with data.codec: official")
    parser.add_argument("udp", help="checkpoint trained with data.codec: udp")
    parser.add_argument("--data", required=True, help="a heatpose synth folder (or any COCO-layout folder)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--decode", choices=("argmax", "dark"), default=None, help="default: each config's")
    parser.add_argument("--near", type=float, default=8.0, help="crop px: joints found, for the mean")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=None, help="also write the table to this Markdown file")
    args = parser.parse_args()
    try:
        rows = evaluate_checkpoint(args.official, args) + evaluate_checkpoint(args.udp, args)
    except HeatposeError as err:
        sys.exit(f"codec_offstyle: error: {err}")
    table = markdown(rows)
    note = (
        f"\n\nSigned error in crop px (predicted - GT; mean over joints within {args.near:g} px on both axes,"
        f" median over all labelled). Data: {args.data} ({args.split}). CPU: {cpu_model()}."
    )
    print(table + note)
    if args.out:
        atomic_write_text(Path(args.out), table + note + "\n")


if __name__ == "__main__":
    main()
