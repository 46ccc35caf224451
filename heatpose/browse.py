"""``heatpose browse CONFIG``: look at the data the way the model will, before training on it.

Why: custom keypoint training fails silently far more often than it crashes: keypoints that
are all zero, joints outside their boxes, a joint that is never labelled, loss weights of
zero, left/right never swapped, targets that fall off the heatmap because the input size,
sigma or box margin is wrong. Each of these shows in a picture or a count in seconds.

Writes to ``--out`` (default ``browse_<config name>/``):

* ``sample_000.png`` ...: N crops exactly as the dataset returns them (train: augmented, same
  seed, epoch 0; val: the GT-box crops of evaluation), joints with their names and the skeleton
  on the left, the target heatmaps (max over joints) over the crop on the right; flipped
  samples are marked;
* ``summary.png`` and ``summary.md``: people, images, labelled/visible joints per joint, box
  sizes, annotations dropped and why, and the warnings below.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from heatpose.config import ExperimentConfig
from heatpose.data.dataset import PoseDataset, build_dataset
from heatpose.io import atomic_write, atomic_write_text, load_json
from heatpose.keypoints import KeypointSchema
from heatpose.schema_io import SchemaInfo, resolve_num_joints, schema_info_for_config

# Thresholds of the warnings (fractions of labelled joints / of sampled people).
FAR_OUTSIDE_BOX = 0.5  # a joint further outside its box than this x the box's larger side
OFF_MAP_WARN = 0.5  # more than this fraction of labelled joints get no target (weight 0)
OFF_MAP_SAMPLES = 200  # crops drawn to measure it


@dataclasses.dataclass
class DataSummary:
    """Counts over one split (see :func:`summarise`)."""

    split: str
    people: int
    images: int
    labelled: np.ndarray  # (K,) joints labelled (flag > 0)
    visible: np.ndarray  # (K,) joints with flag 2
    box_sizes: np.ndarray  # (people,) sqrt(w * h) of the boxes in pixels
    dropped: dict[str, int]  # reason -> annotations not used
    far_outside: np.ndarray  # (K,) labelled joints far outside their box
    off_map_fraction: float  # of labelled joints in sampled crops, target weight 0
    warnings: list[str]


def _colour(schema: KeypointSchema, j: int) -> tuple[float, float, float]:
    if schema.colors is not None:
        return tuple(v / 255 for v in schema.colors[j])
    import matplotlib

    return matplotlib.colormaps["tab20"](j % 20)[:3]


def _dropped_annotations(ann_path: str, kept: int) -> dict[str, int]:
    """Why annotations of the file are not people of the split (the reader's rules, counted)."""
    gt = load_json(ann_path, "annotation")
    reasons: Counter[str] = Counter()
    for ann in gt.get("annotations", []):
        if ann.get("iscrowd", 0):
            reasons["crowd region"] += 1
        elif int(ann.get("category_id", 1)) != 1:
            reasons["category other than 1"] += 1
        elif not any(v > 0 for v in (ann.get("keypoints") or [])[2::3]):
            reasons["keypoints all zero (nothing labelled)"] += 1
    other = len(gt.get("annotations", [])) - kept - sum(reasons.values())
    if other > 0:
        reasons["other (see the reader's messages)"] += other
    return dict(reasons)


def summarise(dataset: PoseDataset, split: str, ann_path: str, cfg: ExperimentConfig) -> DataSummary:
    schema = dataset.schema
    kpts = np.stack([s.keypoints for s in dataset.samples])  # (N, K, 3)
    boxes = np.stack([s.box for s in dataset.samples])  # (N, 4) x, y, w, h
    labelled = kpts[:, :, 2] > 0
    side = boxes[:, 2:].max(axis=1, keepdims=True)
    outside_x = np.maximum(
        boxes[:, None, 0] - kpts[:, :, 0], kpts[:, :, 0] - (boxes[:, None, 0] + boxes[:, None, 2])
    )
    outside_y = np.maximum(
        boxes[:, None, 1] - kpts[:, :, 1], kpts[:, :, 1] - (boxes[:, None, 1] + boxes[:, None, 3])
    )
    far = labelled & (np.maximum(outside_x, outside_y) > FAR_OUTSIDE_BOX * side)
    # targets off the map: encode a sample of crops as training does
    rng = np.random.default_rng(0)
    picks = rng.choice(len(dataset), size=min(OFF_MAP_SAMPLES, len(dataset)), replace=False)
    lab = off = 0
    for i in picks:
        _, joints, visible, _ = dataset.crop(int(i))
        _, weight = dataset.codec.encode(joints, visible)
        lab += int((visible > 0).sum())
        off += int(((visible > 0) & (weight == 0)).sum())
    off_frac = off / max(lab, 1)
    summary = DataSummary(
        split=split,
        people=len(dataset),
        images=len({s.image_id for s in dataset.samples}),
        labelled=labelled.sum(axis=0),
        visible=(kpts[:, :, 2] >= 2).sum(axis=0),
        box_sizes=np.sqrt(boxes[:, 2] * boxes[:, 3]),
        dropped=_dropped_annotations(ann_path, len(dataset)),
        far_outside=far.sum(axis=0),
        off_map_fraction=off_frac,
        warnings=[],
    )
    summary.warnings = _warnings(summary, schema, cfg)
    return summary


def _warnings(s: DataSummary, schema: KeypointSchema, cfg: ExperimentConfig) -> list[str]:
    names = schema.joint_names
    out = []
    zero = s.dropped.get("keypoints all zero (nothing labelled)", 0)
    if zero:
        out.append(f"{zero} annotation(s) have keypoints that are all zero: they are not trained on")
    never = [names[j] for j in range(len(names)) if s.labelled[j] == 0]
    if never:
        out.append(
            f"joint(s) never labelled in the {s.split} split: {', '.join(never)} "
            "(their heatmaps learn nothing)"
        )
    far = [f"{names[j]} ({s.far_outside[j]})" for j in range(len(names)) if s.far_outside[j] > 0]
    if far:
        out.append(
            f"labelled joints more than {FAR_OUTSIDE_BOX:g} x the box size outside their box: "
            f"{', '.join(far)} "
            "(wrong box format x,y,w,h vs x1,y1,x2,y2, or joints of another person?)"
        )
    if schema.joint_weights is not None:
        if not any(schema.joint_weights):
            out.append("every joint loss weight is 0: the loss is always 0 and nothing trains")
        else:
            zero_w = [names[j] for j, w in enumerate(schema.joint_weights) if w == 0]
            if zero_w:
                out.append(f"loss weight 0 for {', '.join(zero_w)}: those joints are not trained")
    if s.off_map_fraction > OFF_MAP_WARN:
        out.append(
            f"{100 * s.off_map_fraction:.0f}% of labelled joints get no target (they fall off the "
            f"{cfg.heatmap_size[0]}x{cfg.heatmap_size[1]} heatmap): "
            "check data.input_size, data.sigma and data.box_enlarge"
        )
    if cfg.data.half_body_prob > 0 and not schema.upper_body:
        out.append(
            "data.half_body_prob > 0 but the schema names no upper_body joints: "
            "half-body crops use all joints"
        )
    return out


# --------------------------------------------------------------------------- pictures


def draw_sample(dataset: PoseDataset, index: int, path: Path, color_order: str) -> Path:
    """Two panels: the crop with named joints and skeleton; the same crop with the targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schema = dataset.schema
    crop, joints, visible, params = dataset.crop(index)
    target, weight = dataset.codec.encode(joints, visible)
    if color_order == "bgr":
        crop = crop[:, :, ::-1]
    h, w = crop.shape[:2]
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.6 * h / w + 0.6))
    sample = dataset.samples[index]
    for ax in axes:
        ax.imshow(crop)
        ax.set_xticks([])
        ax.set_yticks([])
    for a, b in schema.skeleton:
        if visible[a] > 0 and visible[b] > 0:
            axes[0].plot(*zip(joints[a], joints[b], strict=True), color="white", lw=1.2, alpha=0.8)
    for j, name in enumerate(schema.joint_names):
        if visible[j] <= 0:
            continue
        colour = _colour(schema, j)
        axes[0].scatter(*joints[j], s=14, color=colour, edgecolors="black", linewidths=0.5, zorder=3)
        off = weight[j] == 0
        axes[0].annotate(
            name + (" (off map)" if off else ""), joints[j], fontsize=5, color="red" if off else "white",
            xytext=(3, 2), textcoords="offset points",
        )  # fmt: skip
    heat = target.max(axis=0) if len(target) else np.zeros(dataset.codec.heatmap_size[::-1])
    sx, sy = dataset.codec.stride  # heatmap pixel i is crop pixel i * stride (the codec's convention)
    hh, hw = heat.shape
    extent = (-0.5 * sx, (hw - 0.5) * sx, (hh - 0.5) * sy, -0.5 * sy)
    axes[1].imshow(heat, cmap="jet", alpha=0.55, extent=extent, vmin=0, vmax=1)
    for ax in axes:  # joints outside the crop must not stretch the axes
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
    flip = "FLIPPED (left/right swapped)" if params.flipped else "not flipped"
    axes[0].set_title(
        f"#{index} image {sample.image_id}: {flip}, rot {params.rotation:.0f} deg",
        fontsize=7, color="red" if params.flipped else "black",
    )  # fmt: skip
    axes[1].set_title(
        f"targets (max over {len(target)} joints), {int((weight > 0).sum())} with weight > 0", fontsize=7
    )
    fig.tight_layout()
    out = atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)
    return out


def draw_summary(s: DataSummary, schema: KeypointSchema, path: Path, info: SchemaInfo) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = schema.num_joints
    fig = plt.figure(figsize=(8.27, 11.0))
    grid = fig.add_gridspec(3, 2, height_ratios=[1.6, 1.0, 1.1])
    ax = fig.add_subplot(grid[0, :])
    y = np.arange(k)
    ax.barh(y, s.labelled, color="#9ecae1", label="labelled (flag 1 or 2)")
    ax.barh(y, s.visible, color="#3182bd", label="visible (flag 2)")
    ax.set_yticks(y, schema.joint_names, fontsize=max(4, min(8, 200 // k)))
    ax.invert_yaxis()
    ax.set_xlabel(f"people (of {s.people})")
    ax.set_title(f"joints per joint, {s.split} split", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax = fig.add_subplot(grid[1, 0])
    ax.hist(s.box_sizes, bins=30, color="#756bb1")
    ax.set_xlabel("box size sqrt(w*h), px")
    ax.set_ylabel("people")
    ax.set_title("box sizes", fontsize=9)
    ax = fig.add_subplot(grid[1, 1])
    ax.axis("off")
    dropped = "\n".join(f"  {n}  {r}" for r, n in s.dropped.items()) or "  none"
    ax.text(
        0, 1, f"{s.people} people in {s.images} images\n\nannotations dropped:\n{dropped}\n\n"
        f"labelled joints off the heatmap\n(in {min(OFF_MAP_SAMPLES, s.people)} augmented crops): "
        f"{100 * s.off_map_fraction:.1f}%",
        va="top", fontsize=8, family="monospace",
    )  # fmt: skip
    ax = fig.add_subplot(grid[2, :])
    ax.axis("off")
    lines = info.describe().splitlines() + [""] + ([f"WARNING: {w}" for w in s.warnings] or ["no warnings"])
    wrapped = []
    for line in lines:
        while len(line) > 110:
            wrapped.append(line[:110])
            line = "    " + line[110:]
        wrapped.append(line)
    ax.text(0, 1, "\n".join(wrapped[:40]), va="top", fontsize=6.5, family="monospace",
            color="darkred" if s.warnings else "black")  # fmt: skip
    fig.suptitle(f"heatpose browse: {s.split} split", fontsize=11)
    fig.tight_layout()
    out = atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return out


def summary_markdown(s: DataSummary, schema: KeypointSchema, info: SchemaInfo, samples: list[str]) -> str:
    lines = [
        f"# Data summary: {s.split} split",
        "",
        f"{s.people} people in {s.images} images. "
        f"Box size sqrt(w*h): median {np.median(s.box_sizes):.0f} px, "
        f"5-95% {np.percentile(s.box_sizes, 5):.0f}-{np.percentile(s.box_sizes, 95):.0f} px.",
        "",
        "```",
        info.describe(),
        "```",
        "",
        "| joint | labelled | visible | far outside box |",
        "| --- | ---: | ---: | ---: |",
    ]
    for j, name in enumerate(schema.joint_names):
        lines.append(f"| {name} | {s.labelled[j]} | {s.visible[j]} | {s.far_outside[j]} |")
    lines += [
        "",
        "Annotations dropped: " + (", ".join(f"{n} {r}" for r, n in s.dropped.items()) or "none") + ".",
    ]
    lines += [
        f"Labelled joints that fall off the heatmap in {min(OFF_MAP_SAMPLES, s.people)} augmented crops: "
        f"{100 * s.off_map_fraction:.1f}%.",
        "",
        "## Warnings",
        "",
    ]
    lines += [f"- {w}" for w in s.warnings] or ["none"]
    lines += ["", "## Samples", ""] + [f"![{p}]({p})" for p in samples] + [""]
    return "\n".join(lines)


def browse(
    cfg: ExperimentConfig, split: str = "train", num: int = 8, out_dir: str | Path = "browse", seed: int = 0
) -> DataSummary:
    """Draw ``num`` augmented samples of ``split`` and the split's summary into ``out_dir``."""
    from tqdm import tqdm

    info = schema_info_for_config(cfg)
    cfg = resolve_num_joints(cfg, info.schema)
    # train: augmented crops (seeded as training, epoch 0); val: the plain GT-box crops of evaluation
    dataset = build_dataset(cfg, split, boxes="gt")
    out_dir = Path(out_dir)
    ann_path = getattr(cfg.data, f"{split}_ann")
    summary = summarise(dataset, split, ann_path, cfg)
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(dataset), size=min(num, len(dataset)), replace=False).tolist())
    names = []
    for n, index in enumerate(tqdm(picks, desc="browse", unit="sample")):
        name = f"sample_{n:03d}.png"
        draw_sample(dataset, index, out_dir / name, cfg.data.color_order)
        names.append(name)
    draw_summary(summary, info.schema, out_dir / "summary.png", info)
    atomic_write_text(out_dir / "summary.md", summary_markdown(summary, info.schema, info, names))
    print(info.describe(), file=sys.stderr)
    for w in summary.warnings:
        print(f"heatpose: warning: {w}", file=sys.stderr)
    print(
        f"{summary.people} people in {summary.images} images; "
        f"wrote {len(names)} samples, summary.png, summary.md to {out_dir}"
    )
    return summary


def browse_command(config: str, overrides: list[str], split: str, num: int, out: str | None) -> Any:
    from heatpose.config import load_config

    cfg = load_config(config, overrides)
    return browse(cfg, split, num, out or f"browse_{Path(config).stem}_{split}")
