"""Distributed training on CPU: a 2-process gloo job launched by torchrun, as a user would."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_engine_train import tiny_config, write_tiny_data

from heatpose.config import config_to_dict
from heatpose.data.dataset import build_dataset
from heatpose.engine.checkpoint import load_training_checkpoint
from heatpose.engine.logs import read_csv

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("engine_ddp_worker.py")


def test_two_process_gloo_training(tmp_path):
    data = write_tiny_data(tmp_path / "data")
    # Validate on 5 detector boxes in batches of 2: rank 0 gets 3 crops (2 batches), rank 1 gets
    # 2 (1 batch), so sharded inference must not run collectives per batch.
    gt = json.loads((data / "annotations" / "person_keypoints_val.json").read_text())
    dets = [{"image_id": a["image_id"], "bbox": a["bbox"], "score": 0.9} for a in gt["annotations"][:5]]
    det_path = tmp_path / "dets.json"
    det_path.write_text(json.dumps(dets))
    overrides = ["train.epochs=3", "train.batch_size=4", "train.lr_steps=[100]", "train.val_interval=3"]
    cfg = tiny_config(data, *overrides, f"test.boxes={det_path}", "test.batch_size=2")
    config_path = tmp_path / "ddp.yaml"
    config_path.write_text(yaml.safe_dump(config_to_dict(cfg)))
    work_dir, out = tmp_path / "work", tmp_path / "out.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    proc = subprocess.run(
        [*cmd, str(WORKER), str(config_path), str(work_dir), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["world_size"] == 2
    digests = report["param_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # DDP kept the replicas identical
    # Sharded inference gathered every validation crop exactly once.
    assert report["num_val"] == 5 and report["pred_index"] == list(range(5))

    rows = read_csv(work_dir / "train_log.csv")
    per_epoch = {}
    for r in rows:
        per_epoch.setdefault(r["epoch"], []).append(r["loss"])
    means = [sum(v) / len(v) for _, v in sorted(per_epoch.items())]
    assert means[-1] < means[0], means  # the loss goes down
    # Each rank takes half of the data per epoch, in batches of 4.
    assert len(per_epoch[1]) == math.ceil(math.ceil(len(build_dataset(cfg, "train")) / 2) / 4)
    ckpt = load_training_checkpoint(work_dir / "latest.pth")  # rank 0 wrote it, without "module."
    assert ckpt["epoch"] == 3 and not any(k.startswith("module.") for k in ckpt["model"])
    assert "AP" in report["metrics"] and (work_dir / "best.pth").is_file()
