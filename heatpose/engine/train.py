"""The training loop, top to bottom: :func:`train_one_epoch`, :func:`validate`, :func:`train`.

``heatpose train CONFIG.yaml [--set k=v ...] [--work-dir DIR] [--resume]`` calls
:func:`train`; ``torchrun --nproc-per-node N -m heatpose train ...`` runs the same code as N
DDP processes (gloo on CPU, NCCL on CUDA; see docs/training.md).

Exact resume: the shuffle order of epoch e comes from ``DistributedSampler(seed).set_epoch(e)``
and each sample's augmentation from ``(seed, e, index)`` (``PoseDataset.set_epoch``), neither
of which depends on anything that happened before; checkpoints are written at epoch ends with
model, optimiser, scheduler, scaler and the python/numpy/torch RNG states. A run killed in
epoch e+1 and resumed from ``latest.pth`` therefore replays epoch e+1 with the same batches,
the same augmentation and the same weights: the loss sequence is that of an uninterrupted
run (bit for bit on CPU; on CUDA up to the non-determinism of cuDNN kernels).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from heatpose.config import ExperimentConfig
from heatpose.data.dataset import PoseDataset, build_dataset
from heatpose.engine.checkpoint import (
    atomic_save,
    estimated_size,
    load_training_checkpoint,
    make_checkpoint,
    seed_everything,
    set_rng_state,
)
from heatpose.engine.distributed import (
    DistInfo,
    broadcast_buffers,
    broadcast_object,
    distributed_run,
    is_main_process,
    reduce_mean,
    unwrap_model,
)
from heatpose.engine.evaluate import configured_flip_shift, metric_names, predict_dataset, score_predictions
from heatpose.engine.logs import TrainLogger
from heatpose.engine.optim import OptimStep, build_optimizer, build_scheduler
from heatpose.engine.resume import (
    apply_config_to_state,
    check_resume_changes,
    describe_changes,
    extend_history,
    render_config_yaml,
    repair_best,
)
from heatpose.errors import HeatposeError
from heatpose.evaluation.coco import is_defined, undefined_metrics
from heatpose.io import atomic_write_text, check_free_space, remove_orphan_temp_files
from heatpose.losses import JointsMSELoss
from heatpose.models import build_model, load_model_weights
from heatpose.models.cfa import CFA, StageView
from heatpose.models.flops import config_cost
from heatpose.models.growth import grow_from_checkpoint
from heatpose.models.transfer import init_from_checkpoint
from heatpose.schema_io import resolve_num_joints, schema_info_for_config


def _format_time(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optim_step: OptimStep,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DataLoader,
    device: torch.device,
    epoch: int,
    num_epochs: int,
    step: int,
    world_size: int = 1,
    channels_last: bool = False,
    logger: TrainLogger | None = None,
) -> tuple[float, int]:
    """One pass over ``loader``; returns the mean loss and the updated optimiser step count.

    ``epoch`` is 0-based; logs and the progress bar count from 1. The loss logged per
    iteration is averaged over all processes; samples/s counts the global batch.
    """
    model.train()
    losses: list[float] = []
    iters = len(loader)
    seconds_per_iter = None
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{num_epochs}", unit="it", disable=not is_main_process())
    tic = time.perf_counter()
    for it, batch in enumerate(bar, start=1):
        images = batch["image"].to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        target = batch["target"].to(device, non_blocking=True)
        target_weight = batch["target_weight"].to(device, non_blocking=True)

        with optim_step.autocast():
            heatmaps = model(images)
        heatmaps = [h.float() for h in heatmaps] if isinstance(heatmaps, (list, tuple)) else heatmaps.float()
        loss = criterion(heatmaps, target, target_weight)
        lr = optim_step.optimizer.param_groups[0]["lr"]  # the lr this step uses
        optim_step(loss)
        scheduler.step()
        step += 1

        loss_value = reduce_mean(loss.detach()).item()
        if not math.isfinite(loss_value):
            raise HeatposeError(
                f"training diverged: loss is {loss_value} at epoch {epoch + 1}, iteration {it} "
                "(try a lower train.lr, train.grad_clip or train.amp none)"
            )
        losses.append(loss_value)
        toc = time.perf_counter()
        samples_per_s = images.shape[0] * world_size / max(toc - tic, 1e-9)
        seconds_per_iter = (
            toc - tic if seconds_per_iter is None else 0.9 * seconds_per_iter + 0.1 * (toc - tic)
        )
        tic = toc
        if logger is not None:
            logger.log_iter(epoch + 1, it, step, loss_value, lr, samples_per_s)
        remaining = (iters - it) + iters * (num_epochs - epoch - 1)
        bar.set_postfix(
            loss=f"{loss_value:.4g}",
            lr=f"{lr:.3g}",
            samples_s=f"{samples_per_s:.1f}",
            run_eta=_format_time(remaining * seconds_per_iter),
            refresh=False,
        )
    bar.close()
    return sum(losses) / max(1, len(losses)), step


def validate(
    model: nn.Module,
    dataset: PoseDataset,
    cfg: ExperimentConfig,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """COCO AP (MPII/LIP: PCKh) of ``model`` on ``dataset`` with the test settings of ``cfg`` (flip,
    decode, boxes), in the training precision; sharded over DDP ranks, the same numbers on every rank.

    Runs the bare model with rank 0's BatchNorm running statistics (each DDP rank updates its
    own), i.e. exactly the weights that go into the checkpoint.
    """
    model = unwrap_model(model)
    broadcast_buffers(model)
    preds = predict_dataset(
        model,
        dataset,
        device,
        cfg.test.batch_size,
        flip=cfg.test.flip,
        shift=configured_flip_shift(cfg),
        decode=cfg.test.decode,
        num_workers=cfg.train.num_workers,
        amp_dtype=amp_dtype,
        channels_last=cfg.train.channels_last,
    )
    stats = score_predictions(preds, cfg, dataset.schema, dataset.coco_gt) if is_main_process() else {}
    if cfg.train.val_per_stage and isinstance(model, CFA) and model.num_stages > 1:
        # each stage alone, one more inference pass each, so users see the refinement stage by stage
        for s in range(model.num_stages):
            stage_stats = validate(StageView(model, s), dataset, cfg, device, amp_dtype)
            stats.update({f"stage{s + 1}_{k}": v for k, v in stage_stats.items()})
    return broadcast_object(stats)


def train(cfg: ExperimentConfig, work_dir: str | Path, resume: bool = False) -> dict[str, float]:
    """Train per ``cfg`` into ``work_dir``; returns the last epoch's metrics and the best one.

    ``work_dir`` receives ``config.yaml`` (resolved), ``train_log.csv``, ``metrics.csv``,
    ``tb/``, ``curves.png``, ``latest.pth`` and ``best.pth``. ``resume=True`` continues from
    ``latest.pth`` at the next epoch; without it a work dir that already holds a checkpoint
    is refused rather than overwritten.
    """
    return train_model(cfg, work_dir, resume)[1]


def train_model(
    cfg: ExperimentConfig, work_dir: str | Path, resume: bool = False
) -> tuple[nn.Module, dict[str, float]]:
    """:func:`train`, also returning this process's trained (unwrapped) model."""
    with distributed_run() as info:
        return _train(cfg, Path(work_dir), resume, info)


def _train(
    cfg: ExperimentConfig, work_dir: Path, resume: bool, info: DistInfo
) -> tuple[nn.Module, dict[str, float]]:
    schema_info = schema_info_for_config(cfg)
    cfg = resolve_num_joints(cfg, schema_info.schema)
    tcfg = cfg.train
    device = info.device
    main = info.is_main
    if tcfg.val_interval > 0 and tcfg.save_metric not in metric_names(cfg):
        choices = ", ".join(metric_names(cfg))
        raise HeatposeError(f"config key 'train.save_metric': {tcfg.save_metric!r} is not one of {choices}")
    latest_path, best_path = work_dir / "latest.pth", work_dir / "best.pth"
    if work_dir.exists() and not work_dir.is_dir():
        raise HeatposeError(f"work dir {work_dir} is a file, not a folder")
    ckpt = None
    changes: dict[str, list] = {}
    if resume:
        if not latest_path.is_file():
            raise HeatposeError(f"--resume: no checkpoint to resume from at {latest_path}")
        ckpt = load_training_checkpoint(latest_path)
        changes = check_resume_changes(ckpt["config"], cfg, latest_path)  # refused: nothing written
    elif latest_path.exists():
        raise HeatposeError(
            f"{work_dir} already holds a checkpoint (latest.pth): pass --resume to continue that run "
            "or choose another --work-dir"
        )

    # Data: the shuffle order depends only on (seed, epoch), augmentation on (seed, epoch, index).
    seed_everything(tcfg.seed)
    train_set = build_dataset(cfg, "train")
    val_set = build_dataset(cfg, "val") if tcfg.val_interval > 0 else None
    if val_set is not None:
        _check_save_metric_defined(val_set, tcfg.save_metric)
    sampler = DistributedSampler(
        train_set, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=tcfg.seed
    )
    # No persistent workers: a worker keeps its own copy of the dataset, and train_set.set_epoch()
    # must reach the workers every epoch.
    loader = DataLoader(
        train_set,
        batch_size=tcfg.batch_size,
        sampler=sampler,
        num_workers=tcfg.num_workers,
        pin_memory=device.type == "cuda",
    )

    # Model, loss, optimiser, schedule, precision.
    # model.weights from another keypoint set loads all but the per-joint layers (models/transfer.py)
    model = build_model(dataclasses.replace(cfg.model, weights=""))
    if cfg.model.weights:
        init_from_checkpoint(model, cfg.model.weights, schema_info.schema)
    if cfg.model.init_from and ckpt is None:  # stage-wise growth of a CFA cascade (models/growth.py)
        report = grow_from_checkpoint(model, cfg.model.init_from)
        if main:
            print(f"init from {cfg.model.init_from}:", *report.lines(), sep="\n  ", file=sys.stderr)
    model = model.to(device)
    if tcfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = JointsMSELoss(use_target_weight=True, stage_weights=tcfg.stage_weights or None)
    optimizer = build_optimizer(tcfg, model)
    scheduler = build_scheduler(tcfg, optimizer, len(loader))
    optim_step = OptimStep(optimizer, device, amp=tcfg.amp, grad_clip=tcfg.grad_clip)
    torch.backends.cudnn.benchmark = True

    start_epoch, step, best_metric, best_epoch = 0, 0, None, None
    history: list[dict] = []  # one dict of metrics per finished epoch, kept in the checkpoint
    config_history: list[dict] = []  # accepted --resume changes (engine/resume.py)
    if ckpt is not None:
        load_model_weights(unwrap_model(model), ckpt["model"], name=latest_path)
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, step, best_metric = int(ckpt["epoch"]), int(ckpt["step"]), ckpt["best_metric"]
        best_epoch = ckpt.get("best_epoch")
        history = list(ckpt.get("history") or [])
        apply_config_to_state(
            cfg, changes, optimizer, scheduler, optim_step, ckpt["scaler"], step, len(loader)
        )
        config_history = extend_history(ckpt.get("config_history") or [], changes, start_epoch + 1)
        set_rng_state(ckpt["rng"])
        if main:
            _report_resume_changes(changes, start_epoch, step, len(loader))
    if info.distributed:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    logger = None
    if main:
        work_dir.mkdir(parents=True, exist_ok=True)
        removed = remove_orphan_temp_files(work_dir)
        if removed:
            print(
                f"removed {len(removed)} temporary file(s) left by an interrupted write in {work_dir}",
                file=sys.stderr,
            )
        if ckpt is not None:
            repair_best(latest_path, best_path, ckpt)
        # Weights + Adam's two moments: refuse now rather than after an epoch of work.
        check_free_space(latest_path, 3 * estimated_size(unwrap_model(model).state_dict()))
        atomic_write_text(work_dir / "config.yaml", render_config_yaml(cfg, config_history))
        logger = TrainLogger(
            work_dir,
            len(loader),
            resume_epoch=start_epoch,
            resume_step=step,
            history=history if ckpt is not None and "history" in ckpt else None,
        )
        print(schema_info.describe(), file=sys.stderr)  # flip pairs etc., for the user to check
        print(
            f"train: {len(train_set)} people, {len(loader)} iterations/epoch, batch {tcfg.batch_size} x "
            f"{info.world_size} process(es), {optim_step.precision}"
            f"{', channels_last' if tcfg.channels_last else ''} on {device}; work dir {work_dir}",
            file=sys.stderr,
        )
        cost = config_cost(cfg.model, (cfg.data.input_size[0], cfg.data.input_size[1]))
        print(f"model: {cfg.model.arch}, {cost.describe()}", file=sys.stderr)
        if start_epoch:
            print(f"resumed from {latest_path} after epoch {start_epoch} (step {step})", file=sys.stderr)

    metrics: dict[str, float] = {}
    try:
        for epoch in range(start_epoch, tcfg.epochs):
            tic = time.perf_counter()
            sampler.set_epoch(epoch)
            train_set.set_epoch(epoch)
            lr = optimizer.param_groups[0]["lr"]
            train_loss, step = train_one_epoch(
                model, criterion, optim_step, scheduler, loader, device, epoch, tcfg.epochs, step,
                world_size=info.world_size, channels_last=tcfg.channels_last, logger=logger,
            )  # fmt: skip
            metrics = {"train_loss": train_loss, "lr": lr}
            val_stats: dict[str, float] = {}
            if val_set is not None and ((epoch + 1) % tcfg.val_interval == 0 or epoch + 1 == tcfg.epochs):
                val_stats = validate(model, val_set, cfg, device, optim_step.dtype)
                metrics.update(val_stats)
            is_best = is_defined(val_stats.get(tcfg.save_metric)) and (
                best_metric is None or val_stats[tcfg.save_metric] > best_metric
            )
            if is_best:
                best_metric, best_epoch = val_stats[tcfg.save_metric], epoch + 1
            history.append({"epoch": epoch + 1, **{k: float(v) for k, v in metrics.items()}})
            if main:
                bare, scaler = unwrap_model(model), optim_step.scaler
                state = make_checkpoint(
                    cfg, bare, optimizer, scheduler, scaler, epoch + 1, step, best_metric,
                    best_epoch=best_epoch, history=history, config_history=config_history,
                )  # fmt: skip
                # latest first: a kill before best.pth is written is repaired on resume
                # (latest.pth says its epoch is the best one; see engine/resume.py: repair_best)
                atomic_save(state, latest_path)
                if is_best:
                    atomic_save(state, best_path)
                logger.log_epoch(epoch + 1, metrics, metric=tcfg.save_metric)
                shown = f", {tcfg.save_metric} {_show(val_stats[tcfg.save_metric])}" if val_stats else ""
                best = f" (best {best_metric:.4f})" if best_metric is not None else ""
                print(
                    f"epoch {epoch + 1}/{tcfg.epochs}: loss {train_loss:.6g}, lr {metrics['lr']:.3g}"
                    f"{shown}{best}, {time.perf_counter() - tic:.1f} s",
                    file=sys.stderr,
                )
    finally:
        if logger is not None:
            logger.close()
    if start_epoch >= tcfg.epochs and main:
        print(
            f"nothing to do: {latest_path} has already trained {start_epoch} of {tcfg.epochs} epochs",
            file=sys.stderr,
        )
    if best_metric is not None:
        metrics[f"best_{tcfg.save_metric}"] = best_metric
    return unwrap_model(model), metrics


def _show(value: float) -> str:
    return f"{value:.4f}" if is_defined(value) else "n/a"


def _check_save_metric_defined(val_set: PoseDataset, metric: str) -> None:
    """``train.save_metric`` must be computable on the validation GT (COCOeval's -1 is no score)."""
    if val_set.coco_gt is None:
        return
    undefined = undefined_metrics(val_set.coco_gt, (metric,))
    if metric in undefined:
        raise HeatposeError(
            f"config key 'train.save_metric': {metric} is undefined on the validation set "
            f"({undefined[metric]}); choose AP or another metric the set defines"
        )


def _report_resume_changes(
    changes: dict[str, list], start_epoch: int, step: int, iters_per_epoch: int
) -> None:
    """Say which config values differ from the checkpoint's run and take effect now."""
    if changes:
        print(describe_changes(changes, start_epoch + 1), file=sys.stderr)
    if step != start_epoch * iters_per_epoch:
        print(
            f"resume: warning: {step} steps in {start_epoch} epochs, but now {iters_per_epoch} iterations"
            " per epoch "
            "(batch size or process count changed): the lr schedule shifts and the resume is not exact",
            file=sys.stderr,
        )
