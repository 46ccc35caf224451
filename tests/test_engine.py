"""Engine pieces on their own: the optimiser step helper, the lr schedule, atomic checkpoint
files, RNG capture, the logs, and flip-tested inference."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from heatpose.config import ExperimentConfig, TrainConfig
from heatpose.engine.checkpoint import (
    atomic_save,
    checkpoint_meta,
    load_training_checkpoint,
    make_checkpoint,
    meta_mismatches,
    rng_state,
    set_rng_state,
)
from heatpose.engine.distributed import init_distributed, shard_indices
from heatpose.engine.evaluate import Predictions, boxes_tag, describe_boxes, predict_heatmaps
from heatpose.engine.logs import TrainLogger, read_csv
from heatpose.engine.optim import (
    OptimStep,
    build_optimizer,
    build_scheduler,
    cpu_has_native_bf16,
    lr_factor_at,
    resolve_amp_dtype,
)
from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_text
from heatpose.keypoints import get_schema

CPU = torch.device("cpu")


def _toy(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    x = torch.randn(2, 3, 8, 8)
    y = torch.randn(2, 2, 8, 8)
    return model, x, y


# --------------------------------------------------------------------------- OptimStep


def test_optim_step_matches_plain_adam_and_steps_once():
    model_a, x, y = _toy()
    model_b, _, _ = _toy()
    opt_a = torch.optim.Adam(model_a.parameters(), lr=1e-2)
    opt_b = torch.optim.Adam(model_b.parameters(), lr=1e-2)
    step = OptimStep(opt_a, CPU, amp="none")
    for _ in range(3):
        assert step(nn.functional.mse_loss(model_a(x), y)) is None  # no clipping -> no norm
        opt_b.zero_grad()
        nn.functional.mse_loss(model_b(x), y).backward()
        opt_b.step()
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(pa, pb)
        assert pa.grad is None  # zeroed after the step, ready for the next batch
        assert int(opt_a.state[pa]["step"]) == 3  # exactly one optimiser step per call


def test_built_optimizer_is_fused_adam_matching_the_reference():
    model_a, x, y = _toy()
    model_b, _, _ = _toy()
    cfg = TrainConfig(lr=1e-2, weight_decay=1e-4)
    opt_a = build_optimizer(cfg, model_a)
    assert isinstance(opt_a, torch.optim.Adam) and opt_a.defaults["fused"]
    opt_b = torch.optim.Adam(model_b.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(3):
        for model, opt in ((model_a, opt_a), (model_b, opt_b)):
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_optim_step_clips_gradients():
    model, x, y = _toy()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    before = [p.detach().clone() for p in model.parameters()]
    norm = OptimStep(opt, CPU, grad_clip=1e-3)(1e3 * nn.functional.mse_loss(model(x), y))
    assert norm is not None and norm > 1e-3
    update = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, model.parameters(), strict=True)])
    assert math.isclose(float(update.norm()), 1e-3, rel_tol=1e-3)  # SGD lr 1: update = clipped gradient


def test_amp_choices_on_cpu():
    assert resolve_amp_dtype("none", CPU) is None
    assert resolve_amp_dtype("bf16", CPU) is torch.bfloat16
    assert resolve_amp_dtype("auto", CPU) is (torch.bfloat16 if cpu_has_native_bf16() else None)
    with pytest.raises(HeatposeError, match="fp16 needs a CUDA GPU"):
        resolve_amp_dtype("fp16", CPU)
    step = OptimStep(torch.optim.Adam(nn.Linear(2, 2).parameters()), CPU, amp="bf16")
    assert step.precision == "bf16" and not step.scaler.is_enabled()
    model, x, _ = _toy()
    with step.autocast():
        assert model(x).dtype == torch.bfloat16


def test_bf16_training_step_reduces_loss():
    model, x, y = _toy()
    step = OptimStep(torch.optim.Adam(model.parameters(), lr=1e-2), CPU, amp="bf16", grad_clip=10.0)
    losses = []
    for _ in range(20):
        with step.autocast():
            out = model(x)
        loss = nn.functional.mse_loss(out.float(), y)
        losses.append(loss.item())
        step(loss)
    assert losses[-1] < losses[0]


# --------------------------------------------------------------------------- schedule


def test_lr_schedule_is_official_multistep_with_warmup():
    cfg = TrainConfig(lr=1e-3, lr_steps=[90, 120], lr_factor=0.1)
    assert lr_factor_at(0, 10, cfg) == 1.0
    assert lr_factor_at(899, 10, cfg) == 1.0  # last iteration of epoch 89
    assert math.isclose(lr_factor_at(900, 10, cfg), 0.1)  # first of epoch 90
    assert math.isclose(lr_factor_at(1200, 10, cfg), 0.01)
    warm = TrainConfig(warmup_iters=100, warmup_ratio=0.001)
    assert math.isclose(lr_factor_at(0, 10, warm), 0.001)
    assert math.isclose(lr_factor_at(50, 10, warm), 0.001 + 0.999 * 0.5)
    assert lr_factor_at(100, 10, warm) == 1.0
    model = nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = build_scheduler(TrainConfig(lr_steps=[1]), opt, iters_per_epoch=2)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4])


# --------------------------------------------------------------------------- checkpoints


def test_atomic_save_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "ckpt.pth"
    atomic_save({"a": torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"a": Unpicklable()}, path)
    assert torch.equal(torch.load(path)["a"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pth"]  # no temp file left behind
    atomic_write_text(tmp_path / "sub" / "x.txt", "hello")
    assert (tmp_path / "sub" / "x.txt").read_text() == "hello"


def test_atomic_write_gives_the_permissions_of_a_plain_write(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "atomic.txt", "x")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    mode = (tmp_path / "atomic.txt").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o640


def test_rng_state_round_trip():
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_training_checkpoint_round_trip(tmp_path):
    cfg = ExperimentConfig()
    model, x, y = _toy()
    opt = torch.optim.Adam(model.parameters())
    step = OptimStep(opt, CPU)
    step(nn.functional.mse_loss(model(x), y))
    sched = build_scheduler(cfg.train, opt, 5)
    state = make_checkpoint(cfg, model, opt, sched, step.scaler, epoch=3, step=15, best_metric=0.5)
    atomic_save(state, tmp_path / "latest.pth")
    loaded = load_training_checkpoint(tmp_path / "latest.pth")  # weights_only load must accept it
    assert loaded["epoch"] == 3 and loaded["step"] == 15 and loaded["best_metric"] == 0.5
    assert loaded["meta"] == checkpoint_meta(cfg)
    assert loaded["meta"]["color_order"] == "rgb" and loaded["meta"]["heatmap_size"] == [48, 64]
    set_rng_state(loaded["rng"])
    with pytest.raises(HeatposeError, match="checkpoint not found"):
        load_training_checkpoint(tmp_path / "missing.pth")
    atomic_save({"model": model.state_dict()}, tmp_path / "weights.pth")
    with pytest.raises(HeatposeError, match="not a heatpose training checkpoint"):
        load_training_checkpoint(tmp_path / "weights.pth")


def test_meta_mismatches_name_the_difference():
    cfg = ExperimentConfig()
    meta = checkpoint_meta(cfg)
    assert meta_mismatches(meta, cfg) == []
    meta["color_order"] = "bgr"
    assert meta_mismatches(meta, cfg) == ["color_order: checkpoint bgr, config rgb"]


# --------------------------------------------------------------------------- logs


def test_logger_truncates_to_resumed_epoch(tmp_path):
    log = TrainLogger(tmp_path, iters_per_epoch=2)
    for epoch in (1, 2):
        for it in (1, 2):
            log.log_iter(epoch, it, 2 * (epoch - 1) + it, 0.5 / epoch, 1e-3, 10.0)
        log.log_epoch(epoch, {"train_loss": 0.5 / epoch, "lr": 1e-3, "AP": 0.1 * epoch})
    log.log_iter(3, 1, 5, 0.1, 1e-3, 10.0)  # then "killed" during epoch 3
    log.close()
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert any((tmp_path / "tb").iterdir())
    resumed = TrainLogger(tmp_path, iters_per_epoch=2, resume_epoch=2, resume_step=4)
    resumed.log_iter(3, 1, 5, 0.125, 1e-3, 10.0)
    resumed.log_epoch(3, {"train_loss": 0.125, "lr": 1e-3})  # no validation this epoch
    resumed.close()
    rows = read_csv(tmp_path / "train_log.csv")
    assert [(r["epoch"], r["iter"]) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1)]
    assert rows[-1]["loss"] == 0.125
    epochs = read_csv(tmp_path / "metrics.csv")
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert epochs[1]["AP"] == pytest.approx(0.2) and math.isnan(epochs[2]["AP"])


# --------------------------------------------------------------------------- inference


class _MeanModel(nn.Module):
    """Flip-equivariant: every joint's heatmap is the channel mean of the input, pooled by 4."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x.mean(1, keepdim=True), 4).expand(-1, 17, -1, -1)


def test_flip_test_of_a_symmetric_model_changes_nothing():
    images = torch.randn(3, 3, 32, 24)
    model = _MeanModel()
    flip_index = get_schema("coco").flip_index()
    plain = predict_heatmaps(model, images)
    flipped = predict_heatmaps(model, images, flip=True, flip_index=flip_index, shift="none")
    assert plain.shape == (3, 17, 8, 6) and plain.dtype == torch.float32
    torch.testing.assert_close(flipped, plain)
    shifted = predict_heatmaps(model, images, flip=True, flip_index=flip_index, shift="official")
    torch.testing.assert_close(shifted[..., 1:], (plain[..., 1:] + plain[..., :-1]) / 2)


def test_predictions_gather_sorts_and_dedupes():
    def part(index):
        n = len(index)
        return Predictions(
            np.asarray(index),
            np.asarray(index) + 100,
            np.zeros((n, 17, 2)),
            np.zeros((n, 17)),
            np.ones(n),
            np.ones(n),
        )

    joined = Predictions.concatenate([part([0, 2, 4]), part([1, 3, 0])])
    assert joined.index.tolist() == [0, 1, 2, 3, 4] and joined.image_id.tolist() == [100, 101, 102, 103, 104]
    assert shard_indices(5, rank=0, world_size=2) == [0, 2, 4]
    assert shard_indices(5, rank=1, world_size=2) == [1, 3]


def test_box_source_is_named():
    assert describe_boxes("gt", 0.0) == "boxes: GT annotations"
    assert describe_boxes("dets/person.json", 0.5) == "boxes: detections from dets/person.json (score >= 0.5)"
    assert boxes_tag("gt") == "gt" and boxes_tag("dets/person.json") == "det_person"


def test_single_process_distributed_info(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed()
    assert (info.rank, info.world_size, info.distributed, info.owns_group) == (0, 1, False, False)
