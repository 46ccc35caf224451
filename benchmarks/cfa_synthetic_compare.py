"""CFA's synthetic comparison: SimpleBaseline, CFA S = 2, 3 with and without aggregation,
each trained for the same wall-clock budget on synthetic MPII-layout data, scored by PCKh@0.5
(fused and per stage). Prints a markdown table and writes it to OUT/table.md.

Epochs per model come from :mod:`heatpose.budget`'s probe (timed training steps of that
model), so every run gets about the same minutes; the measured minutes are reported too.
Example (the command behind docs/results.md's CFA table)::

    heatpose synth data/synthetic_mpii --layout mpii --num-images 200 --seed 0 --split train \\
        --width 128 --height 128
    heatpose synth data/synthetic_mpii --layout mpii --num-images 60 --seed 1 --split val \\
        --width 128 --height 128
    python benchmarks/cfa_synthetic_compare.py data/synthetic_mpii work_dirs/cfa_compare --minutes 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from heatpose.budget import epochs_for_budget, people_in, probe_samples_per_s
from heatpose.config import load_config
from heatpose.engine.train import train
from heatpose.io import atomic_write_text

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "cfa"
TAGS = ("sb", "s2", "s3", "s2_noagg", "s3_noagg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="heatpose synth --layout mpii output folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget per model")
    parser.add_argument("--tags", nargs="+", default=list(TAGS))
    parser.add_argument("--plot-only", action="store_true", help="redraw OUT/loss.png from finished runs")
    args = parser.parse_args()
    if args.plot_only:
        plot_losses(args.out, args.tags)
        return
    torch.set_num_threads(1)
    ann = args.data / "annotations"
    paths = [
        f"data.train_ann={ann / 'mpii_train.json'}",
        f"data.train_images={args.data / 'images' / 'train'}",
        f"data.val_ann={ann / 'mpii_val.json'}",
        f"data.val_images={args.data / 'images' / 'val'}",
        "train.num_workers=0",
    ]
    rows = []
    for tag in args.tags:
        path = CONFIGS / f"res18_64x64_d32x3_adam_lr1e-3_synthetic_{tag}.yaml"
        cfg = load_config(path, paths)
        people = people_in(ann / "person_keypoints_train.json")  # the same people as the MPII list
        epochs = epochs_for_budget(args.minutes, people, probe_samples_per_s(cfg))
        steps = [max(1, round(0.8 * epochs))]
        cfg = load_config(path, [*paths, f"train.epochs={epochs}", f"train.lr_steps={steps}",
                                 f"train.val_interval={epochs}"])  # fmt: skip
        tic = time.perf_counter()
        metrics = train(cfg, args.out / tag)
        minutes = (time.perf_counter() - tic) / 60
        stages = [metrics[k] for k in sorted(metrics) if k.startswith("stage") and k.endswith("_PCKh")]
        rows.append((tag, cfg.model.arch, epochs, minutes, metrics["PCKh"], stages))
        print(f"{tag}: {epochs} epochs, {minutes:.1f} min, PCKh {metrics['PCKh']:.4f}, stages {stages}")
    lines = [
        "| model | epochs | minutes | PCKh@0.5 (fused) | per stage |",
        "| --- | --- | --- | --- | --- |",
    ]
    for tag, arch, epochs, minutes, pckh, stages in rows:
        per_stage = ", ".join(f"{v:.3f}" for v in stages) or "-"
        lines.append(f"| {tag} ({arch}) | {epochs} | {minutes:.1f} | {pckh:.3f} | {per_stage} |")
    table = "\n".join(lines) + "\n"
    atomic_write_text(args.out / "table.md", table)
    plot_losses(args.out, args.tags)
    print(table)


def plot_losses(out: Path, tags: list[str]) -> None:
    """OUT/loss.png: each run's training loss per stage (epoch means / stages) against epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from heatpose.engine.logs import read_csv

    fig, ax = plt.subplots(figsize=(7, 4))
    for tag in tags:
        rows = read_csv(out / tag / "train_log.csv")
        if not rows:
            continue
        run = load_config(out / tag / "config.yaml").model
        stages = run.num_stages if run.arch == "cfa" else 1
        epochs = sorted({int(r["epoch"]) for r in rows})
        per_epoch = [[r["loss"] for r in rows if r["epoch"] == e] for e in epochs]
        loss = [sum(v) / len(v) / stages for v in per_epoch]
        ax.plot(epochs, loss, marker=".", label=tag)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss per stage (loss / stages)")
    ax.set_yscale("log")
    ax.set_title("synthetic MPII layout, equal wall-clock budget")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
