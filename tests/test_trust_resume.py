"""``--resume`` obeys the config or refuses; a kill between writes loses nothing and leaves
nothing behind (docs/trust.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import yaml

import heatpose.engine.train as train_module
from heatpose.engine.checkpoint import load_training_checkpoint
from heatpose.engine.logs import read_csv
from heatpose.engine.train import train
from heatpose.errors import HeatposeError
from tests.test_engine_train import tiny_config, write_tiny_data

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # one_thread: tests/conftest.py


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("synthetic"))


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (recursively) with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_lr_and_schedule_changes_on_resume_take_effect(tiny_data, tmp_path):
    """1 epoch at lr 1e-3 (no step), then resume to 3 epochs with lr 5e-4, a step at epoch
    index 2 and weight decay: epoch 2 runs at 5e-4, epoch 3 at 5e-5, and the logs say so."""
    work = tmp_path / "w"
    base = ("train.epochs=1", "train.lr_steps=[10]", "train.val_interval=0")
    train(tiny_config(tiny_data, *base), work)
    changed = tiny_config(
        tiny_data, *base, "train.epochs=3", "train.lr=5e-4", "train.lr_steps=[2]", "train.weight_decay=1e-4"
    )
    train(changed, work, resume=True)

    rows = read_csv(work / "train_log.csv")
    for epoch, lr in ((1, 1e-3), (2, 5e-4), (3, 5e-5)):
        lrs = [r["lr"] for r in rows if r["epoch"] == epoch]
        assert lrs and lrs == pytest.approx([lr] * len(lrs)), (epoch, lrs)
    assert [r["lr"] for r in read_csv(work / "metrics.csv")] == pytest.approx([1e-3, 5e-4, 5e-5])

    ckpt = load_training_checkpoint(work / "latest.pth")
    groups = ckpt["optimizer"]["param_groups"]
    assert all(g["weight_decay"] == 1e-4 and g["initial_lr"] == 5e-4 for g in groups)
    assert ckpt["config_history"] == [
        {
            "epoch": 2,
            "changes": {
                "train.epochs": [1, 3],
                "train.lr": [0.001, 0.0005],
                "train.weight_decay": [0.0, 0.0001],
                "train.lr_steps": [[10], [2]],
            },
        }
    ]
    text = (work / "config.yaml").read_text()
    assert text.startswith("# resume_history:") and "train.lr: [0.001, 0.0005]" in text
    assert yaml.safe_load(text)["train"]["lr"] == 5e-4  # the body is the config running now


REFUSED = [
    ("train.batch_size=4", "train.batch_size"),
    ("model.num_deconv_filters=16", "model.num_deconv_filters"),  # another architecture
    ("data.input_size=[64, 96]", "data.input_size"),
    ("train.seed=7", "train.seed"),
]


def test_refused_changes_leave_the_work_dir_byte_identical(tiny_data, tmp_path):
    work = tmp_path / "w"
    cfg = ("train.epochs=1", "train.val_interval=0")
    train(tiny_config(tiny_data, *cfg), work)
    before = snapshot(work)
    for override, key in REFUSED:
        pattern = rf"--resume cannot change {key.replace('.', chr(92) + '.')} .*--work-dir"
        with pytest.raises(HeatposeError, match=pattern) as err:
            train(tiny_config(tiny_data, *cfg, "train.epochs=2", override), work, resume=True)
        assert "\n" not in str(err.value)
        assert snapshot(work) == before, override


class SimulatedKill(Exception):
    pass


def test_kill_between_latest_and_best_then_resume_repairs_everything(tiny_data, tmp_path, monkeypatch):
    """Killed after latest.pth and before best.pth and metrics.csv were written, with an orphan
    temp file of the write that was cut: resume removes the orphan, rewrites best.pth from
    latest.pth and metrics.csv from the checkpoint's history."""
    work = tmp_path / "w"
    cfg = tiny_config(tiny_data, "train.epochs=1")
    real_save = train_module.atomic_save

    def save_then_die_at_best(state, path):
        if Path(path).name == "best.pth":
            (Path(path).parent / ".best.pth.q8w7e6r5.tmp").write_bytes(b"\0" * 1000)  # the cut-off write
            raise SimulatedKill
        return real_save(state, path)

    monkeypatch.setattr(train_module, "atomic_save", save_then_die_at_best)
    with pytest.raises(SimulatedKill):
        train(cfg, work)
    monkeypatch.undo()
    assert not (work / "best.pth").exists() and not read_csv(work / "metrics.csv")
    assert torch.load(work / "latest.pth", weights_only=True)["history"]  # plain values: no numpy
    latest = load_training_checkpoint(work / "latest.pth")
    assert latest["best_epoch"] == 1 and [r["epoch"] for r in latest["history"]] == [1]

    train(cfg, work, resume=True)  # nothing left to train; the work dir is repaired
    best = load_training_checkpoint(work / "best.pth")
    assert best["epoch"] == 1 and best["best_metric"] == latest["best_metric"]
    assert not list(work.glob(".*.tmp"))
    rows = read_csv(work / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1] and rows[0]["AP"] == pytest.approx(latest["best_metric"])


def test_full_disk_is_refused_before_the_first_epoch(tiny_data, tmp_path, monkeypatch):
    """Today the first checkpoint write failed after a whole epoch of work."""
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**5, 10**5))
    with pytest.raises(HeatposeError, match=r"latest\.pth: not enough disk space: the file needs about"):
        train(tiny_config(tiny_data, "train.epochs=1"), tmp_path / "w")
    assert not (tmp_path / "w" / "train_log.csv").exists()  # no epoch started


def test_resume_policy_refuses_what_the_weights_depend_on():
    from heatpose.config import ExperimentConfig, config_to_dict
    from heatpose.engine.checkpoint import checkpoint_meta
    from heatpose.engine.resume import APPLIED, refused_reason

    keys = [f"{s}.{k}" for s, values in config_to_dict(ExperimentConfig()).items() for k in values]
    assert not [k for k in APPLIED if refused_reason(k)]
    meta_data_keys = [f"data.{k}" for k in checkpoint_meta(ExperimentConfig()) if f"data.{k}" in keys]
    assert {"data.codec", "data.input_size", "data.sigma"} <= set(meta_data_keys)
    assert all(refused_reason(k) for k in meta_data_keys)
    assert all(
        refused_reason(k)
        for k in keys
        if k.startswith("model.") and k not in ("model.weights", "model.pretrained", "model.init_from")
    )
    assert refused_reason("train.batch_size") and refused_reason("train.seed")
