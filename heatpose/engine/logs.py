"""Run logs in the work dir: CSV files, TensorBoard events and a PNG of the training curves.

* ``train_log.csv``: one row per iteration (epoch, iter, step, loss, lr, samples_per_s);
* ``metrics.csv``: one row per epoch (epoch, train_loss, lr, then the validation metrics);
* ``tb/``: the same scalars as TensorBoard events;
* ``curves.png``: loss, learning rate and validation metric against epoch, redrawn after
  every epoch.

On resume, rows past the checkpoint's epoch (the part of an epoch that was cut off) are
dropped and TensorBoard purges its events past the checkpoint's step, so the logs of a
resumed run read like those of an uninterrupted one. Only rank 0 keeps a logger.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from heatpose.io import atomic_write, atomic_write_text

ITER_FIELDS = ("epoch", "iter", "step", "loss", "lr", "samples_per_s")


def read_csv(path: str | Path, max_epoch: float = math.inf) -> list[dict[str, float]]:
    """Rows of a numeric CSV log with ``epoch <= max_epoch``, as dicts of floats (blank -> NaN)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = [{k: float(v) if v else math.nan for k, v in row.items()} for row in csv.DictReader(f)]
    return [r for r in rows if r["epoch"] <= max_epoch]


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # round-trips exactly, so resumed logs can be compared bit for bit
    return str(value)


class TrainLogger:
    """CSV + TensorBoard + curves.png for one run; ``resume_epoch`` > 0 continues old logs.

    ``step`` is the 1-based count of optimiser steps so far; ``step / iters_per_epoch`` puts
    an iteration on the epoch axis of the plot.
    """

    def __init__(
        self,
        work_dir: str | Path,
        iters_per_epoch: int,
        resume_epoch: int = 0,
        resume_step: int = 0,
        history: list[dict[str, Any]] | None = None,
    ):
        self.work_dir = Path(work_dir)
        self.iters_per_epoch = max(1, iters_per_epoch)
        self.iter_path = self.work_dir / "train_log.csv"
        self.epoch_path = self.work_dir / "metrics.csv"
        old_iters = read_csv(self.iter_path, max_epoch=resume_epoch)
        # The checkpoint's per-epoch history, when it has one, wins over metrics.csv (which loses
        # the rows of epochs whose csv write was cut off).
        rows = read_csv(self.epoch_path, max_epoch=resume_epoch) if history is None else history
        self.epoch_rows = [dict(r) for r in rows if r["epoch"] <= resume_epoch]
        self._epoch_fields = list(dict.fromkeys(k for r in self.epoch_rows for k in r))
        _rewrite(self.iter_path, list(ITER_FIELDS), old_iters)
        _rewrite(self.epoch_path, self._epoch_fields, self.epoch_rows)
        # What the plot needs, kept compact: runs can have 10^5-10^6 iterations.
        self._x = [r["step"] / self.iters_per_epoch for r in old_iters]
        self._loss = [r["loss"] for r in old_iters]
        self._lr = [r["lr"] for r in old_iters]
        self._iter_file = self.iter_path.open("a", newline="")
        self._iter_writer = csv.writer(self._iter_file)
        # Iteration scalars are logged at step 1, 2, ...: purge those of the cut-off epoch.
        self.tb = _summary_writer(self.work_dir / "tb", resume_step + 1 if resume_epoch else None)

    def log_iter(self, epoch: int, it: int, step: int, loss: float, lr: float, samples_per_s: float) -> None:
        self._iter_writer.writerow([_format(v) for v in (epoch, it, step, loss, lr, samples_per_s)])
        self._iter_file.flush()
        self._x.append(step / self.iters_per_epoch)
        self._loss.append(loss)
        self._lr.append(lr)
        if self.tb is not None:
            self.tb.add_scalar("train/loss", loss, step)
            self.tb.add_scalar("train/lr", lr, step)
            self.tb.add_scalar("train/samples_per_s", samples_per_s, step)

    def log_epoch(self, epoch: int, values: dict[str, float], metric: str = "AP") -> None:
        """One row of metrics.csv; new metric names widen the table (old rows get blanks)."""
        row = {"epoch": epoch, **values}
        self.epoch_rows.append(row)
        self._epoch_fields += [k for k in row if k not in self._epoch_fields]
        _rewrite(self.epoch_path, self._epoch_fields, self.epoch_rows)
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(("train/" if key in ("train_loss", "lr") else "val/") + key, value, epoch)
            self.tb.flush()
        self.plot_curves(metric)

    def plot_curves(self, metric: str = "AP") -> Path | None:
        """Redraw curves.png: per-iteration loss (and epoch mean), lr, and the val metric."""
        if not self._x:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].plot(self._x, self._loss, lw=0.6, alpha=0.5, label="iteration")
        epochs = [r["epoch"] for r in self.epoch_rows]
        if self.epoch_rows:
            means = [r["train_loss"] for r in self.epoch_rows]
            axes[0].plot([e - 0.5 for e in epochs], means, "o-", label="epoch mean")
        axes[0].set(title="training loss", xlabel="epoch", yscale="log")
        axes[0].legend()
        axes[1].plot(self._x, self._lr)
        axes[1].set(title="learning rate", xlabel="epoch", yscale="log")
        val = [(r["epoch"], r[metric]) for r in self.epoch_rows if not math.isnan(r.get(metric, math.nan))]
        if val:
            axes[2].plot(*zip(*val, strict=True), "o-")
        axes[2].set(title=f"validation {metric}", xlabel="epoch")
        for ax in axes:
            ax.grid(alpha=0.3)
        fig.tight_layout()
        path = atomic_write(self.work_dir / "curves.png", lambda f: fig.savefig(f, format="png", dpi=90))
        plt.close(fig)
        return path

    def close(self) -> None:
        self._iter_file.close()
        if self.tb is not None:
            self.tb.close()


def _summary_writer(log_dir: Path, purge_step: int | None) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but a broken install should not stop training
        return None
    return SummaryWriter(str(log_dir), purge_step=purge_step)


def _rewrite(path: Path, fields: list[str], rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as a CSV atomically (no file at all when there are no fields)."""
    if not fields:
        path.unlink(missing_ok=True)
        return
    lines = [",".join(fields)]
    lines += [",".join(_format(_int_if_whole(r.get(k, ""))) for k in fields) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _int_if_whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value
