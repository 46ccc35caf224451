"""What ``--resume`` may change, and how a resumed run's work dir stays consistent.

A training checkpoint carries state that was built from the config: the optimiser's param
groups (lr, initial_lr, weight_decay), the lr scheduler (base lrs, step count), the fp16
grad scaler, and -- implicitly, through the epoch count -- the sampler's shuffle. Restoring
that state after the user changed the config would silently keep the old values, so every
config key is in exactly one of three groups:

* **applied** (:data:`APPLIED`): carried by saved state, re-applied from the resumed epoch on
  by :func:`apply_config_to_state` (lr and its schedule, weight decay, epochs, gradient
  clipping, precision, memory format);
* **refused** (:data:`REFUSED`, :func:`refused_reason`): a change would make the checkpoint's
  weights, shuffle order or best-metric bookkeeping mean something else (architecture, input
  size, target encoding, normalisation, batch size, seed, ``save_metric``). Resuming is refused
  in one line, before anything in the work dir is touched; start a new run with ``--work-dir``;
* everything else (test settings, augmentation, data paths, ``num_workers``, ...) is read from
  the config each run anyway and simply takes effect.

Every accepted change is logged and recorded, with the first epoch that ran with it, in the
checkpoint's ``config_history`` and in a comment block at the top of ``WORK/config.yaml``
(:func:`render_config_yaml`), so that file always says what actually ran.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from heatpose.config import ExperimentConfig, config_to_dict, dump_config
from heatpose.engine.checkpoint import checkpoint_meta
from heatpose.engine.optim import OptimStep, lr_factor_at
from heatpose.errors import HeatposeError
from heatpose.io import atomic_write
from heatpose.models.checkpoint import read_checkpoint

# Keys whose value lives in saved optimiser/scheduler/scaler state or the epoch loop: re-applied.
SCHEDULE_KEYS = ("train.lr", "train.lr_steps", "train.lr_factor", "train.warmup_iters", "train.warmup_ratio")
APPLIED = (*SCHEDULE_KEYS, "train.weight_decay", "train.epochs", "train.grad_clip", "train.amp",
           "train.channels_last")  # fmt: skip

_MEANING = "the checkpoint's weights were trained for the old value"
REFUSED: dict[str, str] = {
    "train.batch_size": "the lr schedule and the sampler count iterations per epoch",
    "train.seed": "the shuffle order and the augmentation are seeded by it",
    "train.save_metric": "best.pth and best_metric were chosen by the old metric",
    "data.dataset": _MEANING,
    "data.schema": _MEANING,
    "data.input_size": _MEANING,
    "data.sigma": _MEANING,
    "data.subpixel_targets": _MEANING,
    "data.color_order": _MEANING,
    "data.mean": _MEANING,
    "data.std": _MEANING,
}
# model.* is refused as a whole (the architecture), except the two initialisation files,
# which a resumed run does not read (its weights come from latest.pth).
_MODEL_INIT_ONLY = ("model.pretrained", "model.weights", "model.init_from")


def refused_reason(key: str) -> str | None:
    """Why a change of ``key`` cannot be honoured by a resume, or None when it can.

    Besides :data:`REFUSED`, every ``data.*`` key that the checkpoint's ``meta`` records (what
    a user of the weights must feed them: e.g. ``data.codec``) is refused.
    """
    if key.startswith("model.") and key not in _MODEL_INIT_ONLY:
        return "the checkpoint's weights are for the old architecture"
    if key.startswith("data.") and key.removeprefix("data.") in checkpoint_meta(ExperimentConfig()):
        return _MEANING
    return REFUSED.get(key)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def config_changes(old: dict[str, Any], cfg: ExperimentConfig) -> dict[str, list[Any]]:
    """``{"train.lr": [old, new], ...}`` for each key whose value differs from the checkpoint's
    run. A key the checkpoint's config lacks (added to heatpose since) is not a change."""
    before, after = _flatten(old), _flatten(config_to_dict(cfg))
    return {k: [before[k], v] for k, v in after.items() if k in before and before[k] != v}


def check_resume_changes(old: dict[str, Any], cfg: ExperimentConfig, latest: Path) -> dict[str, list[Any]]:
    """The accepted changes; a refused one is a :class:`HeatposeError` (nothing written yet)."""
    changes = config_changes(old, cfg)
    refused = [(k, refused_reason(k)) for k in changes if refused_reason(k)]
    if refused:
        key, reason = refused[0]
        was, now = changes[key]
        more = (
            f" (and {len(refused) - 1} more: {', '.join(k for k, _ in refused[1:])})"
            if len(refused) > 1
            else ""
        )
        raise HeatposeError(
            f"--resume cannot change {key} ({was!r} -> {now!r}): {reason}{more}; keep the old value, "
            f"or start a new run with --work-dir (--set model.weights={latest} to start from these weights)"
        )
    return changes


def apply_config_to_state(
    cfg: ExperimentConfig,
    changes: dict[str, list[Any]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    optim_step: OptimStep,
    scaler_state: dict[str, Any],
    step: int,
    iters_per_epoch: int,
) -> None:
    """After the optimiser/scheduler state is loaded: make the config's values win.

    ``optimizer.load_state_dict`` restores the old lr, initial_lr and weight_decay of every
    param group and ``scheduler.load_state_dict`` the old base lrs, so a changed lr or schedule
    would be silently ignored. The scheduler's lambda is already built from ``cfg``; here the
    base lrs, the weight decay and the lr of the next step (``step``, 0-based) are set from it.
    Without changes nothing is touched, which keeps resume bit-exact.
    """
    tcfg = cfg.train
    if any(k in changes for k in (*SCHEDULE_KEYS, "train.weight_decay")):
        scheduler.base_lrs = [tcfg.lr for _ in optimizer.param_groups]
        factor = lr_factor_at(step, iters_per_epoch, tcfg)
        for group in optimizer.param_groups:
            group["initial_lr"] = tcfg.lr
            group["lr"] = tcfg.lr * factor
            group["weight_decay"] = tcfg.weight_decay
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    # grad_clip, amp and channels_last are read from cfg when OptimStep and the model are built.
    # The fp16 scaler's state only means something to an enabled scaler of the same kind.
    if scaler_state and optim_step.scaler.is_enabled():
        optim_step.scaler.load_state_dict(scaler_state)


def describe_changes(changes: dict[str, list[Any]], epoch: int) -> str:
    """One log line: what changed and from which (1-based) epoch it applies."""
    parts = [f"{k}: {was!r} -> {now!r}" for k, (was, now) in changes.items()]
    return f"resume: from epoch {epoch} on, the config differs from the checkpoint's run: " + "; ".join(parts)


def extend_history(history: list[dict[str, Any]], changes: dict[str, list[Any]], epoch: int) -> list[dict]:
    """``history`` plus one entry for ``changes`` (if any), which first ran in ``epoch`` (1-based)."""
    if not changes:
        return list(history)
    return [*history, {"epoch": epoch, "changes": {k: list(v) for k, v in changes.items()}}]


def render_config_yaml(cfg: ExperimentConfig, history: list[dict[str, Any]]) -> str:
    """``WORK/config.yaml``: the config that runs now, headed by the resume history (a comment).

    ``yaml.safe_load`` of the file gives the current config; the comment block says which
    earlier values ran before which epoch, e.g.::

        # resume_history:  (changes made with --resume; the run used the old value before `epoch`)
        # - epoch: 4
        #   changes:
        #     train.lr: [0.001, 0.0001]
    """
    if not history:
        return dump_config(cfg)
    block = yaml.safe_dump(history, sort_keys=False, default_flow_style=None).splitlines()
    head = [
        "# resume_history: changes made with --resume, each as [old, new]; the old value ran",
        "# before `epoch` (1-based), the new one from `epoch` on. The config below is the latest.",
    ]
    return "\n".join(head + [f"#   {line}" for line in block]) + "\n" + dump_config(cfg)


def repair_best(latest_path: Path, best_path: Path, ckpt: dict[str, Any]) -> bool:
    """Make ``best.pth`` agree with ``latest.pth`` after a kill between their writes.

    ``latest.pth`` is written first; when it records that its own epoch is the best one
    (``best_epoch == epoch``) but ``best.pth`` is missing or older, the kill came before
    ``best.pth`` was written, and ``latest.pth`` is copied onto it. Returns whether it did.
    """
    if ckpt.get("best_epoch") is None or ckpt.get("best_epoch") != ckpt.get("epoch"):
        return False
    if best_path.is_file():
        try:
            best = read_checkpoint(best_path)
            if isinstance(best, dict) and best.get("epoch") == ckpt["epoch"]:
                return False
        except HeatposeError:
            pass  # unreadable best.pth: replace it
    with latest_path.open("rb") as src:
        atomic_write(best_path, lambda f: shutil.copyfileobj(src, f), size_hint=latest_path.stat().st_size)
    print(f"resume: {best_path} was missing or stale; rewrote it from {latest_path}", file=sys.stderr)
    return True
