"""Pictures of a PCKh evaluation: the PCKh-vs-threshold curve and a per-joint bar chart (PNG)."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np

from heatpose.evaluation.pck import MATLAB_COLUMNS, OFFICIAL_COLUMNS, PCKhResult
from heatpose.io import atomic_write_bytes


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _pooled_curve(result: PCKhResult) -> np.ndarray:
    """(T,) the count-weighted mean over the joints kept in the Mean, at every curve threshold."""
    keep = np.array([n not in result.excluded for n in result.joint_names])
    counts = np.where(keep, result.counts, 0.0)
    total = counts.sum()
    if total == 0:
        return np.full(len(result.curve_thresholds), np.nan)
    curve = np.where(counts > 0, result.curve, 0.0)
    return curve @ (counts / total)


def plot_pckh_curve(result: PCKhResult, path: str | Path, title: str = "") -> Path:
    """PCKh (%) against the threshold 0..0.5 for each column and the Mean (thick line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = result.joint_names
    columns = OFFICIAL_COLUMNS if result.protocol == "official" else MATLAB_COLUMNS
    fig, ax = plt.subplots(figsize=(7, 5))
    t = result.curve_thresholds
    for name, joints in columns:
        idx = [names.index(j) for j in joints]
        ax.plot(t, np.mean(result.curve[:, idx], axis=1), label=name, linewidth=1.3)
    mean_label = "Mean" if result.protocol == "official" else "Total"
    ax.plot(t, _pooled_curve(result), label=mean_label, color="black", linewidth=2.6)
    ax.axvline(result.threshold, color="grey", linestyle=":", linewidth=1)
    ax.set(
        xlim=(0, t[-1]),
        ylim=(0, 100),
        xlabel="threshold (fraction of head size)",
        ylabel="PCKh (%)",
        title=title or f"PCKh vs threshold ({result.num_people} people; head size: {result.normalizer})",
    )
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_pckh_per_joint(result: PCKhResult, path: str | Path, title: str = "") -> Path:
    """One bar per joint at the PCKh threshold; joints left out of the Mean drawn hatched grey;
    each label carries the number of annotated joints counted (n)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = result.joint_names
    values = np.nan_to_num(result.per_joint, nan=0.0)
    fig, ax = plt.subplots(figsize=(10, 4.8))
    x = np.arange(len(names))
    colors = ["#bbbbbb" if n in result.excluded else "#3b75af" for n in names]
    bars = ax.bar(x, values, color=colors, edgecolor="black", linewidth=0.5)
    for bar, name in zip(bars, names, strict=True):
        if name in result.excluded:
            bar.set_hatch("//")
    for xi, v, raw in zip(x, values, result.per_joint, strict=True):
        ax.text(xi, v + 1, "n/a" if not np.isfinite(raw) else f"{v:.1f}", ha="center", fontsize=7)
    mean_name = "Mean" if result.protocol == "official" else "Total"
    ax.axhline(
        result.mean, color="black", linestyle="--", linewidth=1, label=f"{mean_name} {result.mean:.2f}"
    )
    ax.legend(loc="upper right", fontsize=8)
    labels = [f"{n.replace('_', ' ')}\nn={int(c)}" for n, c in zip(names, result.counts, strict=True)]
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
    ax.set(
        ylim=(0, 122),  # room for the legend above 100
        ylabel=f"PCKh@{result.threshold:g} (%)",
        title=title or f"PCKh@{result.threshold:g} per joint (grey: left out of the mean)",
    )
    ax.title.set_fontsize(10)
    fig.tight_layout()
    return _save(fig, path)
