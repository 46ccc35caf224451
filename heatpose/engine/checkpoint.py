"""Training checkpoints: atomic writes, RNG state capture, and the metadata that makes a
checkpoint usable on its own.

A heatpose checkpoint is a dict::

    {"model": state_dict (no "module." prefix), "optimizer", "scheduler", "scaler",
     "epoch": completed epochs, "step": optimiser steps, "best_metric": float | None,
     "rng": {"python", "numpy", "torch", "cuda"}, "config": resolved config dict,
     "best_epoch": int | None, "history": [{"epoch", "train_loss", "lr", val metrics...}],
     "config_history": [{"epoch", "changes": {key: [old, new]}}]  (see engine/resume.py),
     "meta": {"arch", "backbone_depth", "schema", "num_joints", "input_size",
              "heatmap_size", "color_order", "mean", "std", "sigma", "codec", "keypoint_schema"}}

``meta`` states what a user of the weights must know to feed them (input size, colour
order, mean/std) without the config file. Every file is written to a temporary name in the
same directory and renamed over the target, so a crash never leaves half a file.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heatpose.config import ExperimentConfig, config_to_dict
from heatpose.errors import HeatposeError
from heatpose.io import atomic_write
from heatpose.models.checkpoint import read_checkpoint
from heatpose.schema_io import schema_for_config, schema_to_dict

CHECKPOINT_KEYS = (
    "model", "optimizer", "scheduler", "scaler", "epoch", "step", "best_metric", "rng", "config",
)  # fmt: skip


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through :func:`atomic_write`.

    The disk must have room for the tensors first (:func:`estimated_size`), so a nearly full
    disk fails before anything is written, with the size it needs in the error line.
    """
    return atomic_write(path, lambda f: torch.save(obj, f), size_hint=estimated_size(obj))


def estimated_size(obj: Any) -> int:
    """Bytes ``torch.save(obj)`` will write, about: every distinct tensor storage + 64 KiB."""
    seen: dict[int, int] = {}

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            storage = x.untyped_storage()
            seen[storage.data_ptr() or id(storage)] = storage.nbytes()
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk(obj)
    return sum(seen.values()) + 2**16


# --------------------------------------------------------------------------- RNG state


def rng_state() -> dict[str, Any]:
    """The python, numpy, torch (and CUDA) generator states of this process."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        # numpy's state as plain types + a tensor, so ``weights_only`` loading accepts it
        "numpy": _numpy_state_to_plain(np.random.get_state()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state_to_plain(state: tuple) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return (str(name), torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) from one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- contents


def checkpoint_meta(cfg: ExperimentConfig) -> dict[str, Any]:
    """What a user of the weights needs to know to feed them correctly."""
    return {
        "arch": cfg.model.arch,
        "backbone_depth": cfg.model.backbone_depth,
        "schema": cfg.data.schema,
        "num_joints": cfg.model.num_joints,
        "input_size": list(cfg.data.input_size),
        "heatmap_size": list(cfg.heatmap_size),
        "color_order": cfg.data.color_order,
        "mean": list(cfg.data.mean),
        "std": list(cfg.data.std),
        "sigma": cfg.data.sigma,
        "codec": cfg.data.codec,
        # the whole schema (names, flip pairs, skeleton, sigmas, ...): eval/predict need nothing else
        "keypoint_schema": schema_to_dict(schema_for_config(cfg)),
    }


def meta_mismatches(meta: dict[str, Any], cfg: ExperimentConfig) -> list[str]:
    """``"key: checkpoint X, config Y"`` for each metadata entry where the config disagrees."""
    expected = checkpoint_meta(cfg)
    out = []
    for key, value in meta.items():
        if key in expected and _normalise(value) != _normalise(expected[key]):
            if isinstance(value, dict):  # the keypoint schema: too long to print whole
                diff = sorted(k for k in {**value, **expected[key]} if value.get(k) != expected[key].get(k))
                out.append(f"{key}: checkpoint and config differ in {', '.join(diff)}")
                continue
            out.append(f"{key}: checkpoint {value}, config {expected[key]}")
    return out


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


def make_checkpoint(
    cfg: ExperimentConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    epoch: int,
    step: int,
    best_metric: float | None,
    best_epoch: int | None = None,
    history: list[dict[str, Any]] | None = None,
    config_history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The full training state; ``model`` must be the bare model (no DDP wrapper).

    ``history`` (one dict of metrics per finished epoch) lets a resume rewrite metrics.csv
    whatever happened to the file; ``best_epoch`` lets it repair a missing ``best.pth``.
    """
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": epoch,
        "step": step,
        "best_metric": best_metric,
        "best_epoch": best_epoch,
        "history": list(history or []),
        "config_history": list(config_history or []),
        "rng": rng_state(),
        "config": config_to_dict(cfg),
        "meta": checkpoint_meta(cfg),
    }


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`make_checkpoint`, for ``--resume``.

    A missing or unreadable file is a :class:`HeatposeError`. Everything in it is tensors and
    plain values, so it loads with ``torch.load(weights_only=True)``.
    """
    ckpt = read_checkpoint(path)
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise HeatposeError(f"{path} is not a heatpose training checkpoint (missing {', '.join(missing)})")
    return ckpt
