"""One rank of the 2-process DDP test (tests/test_engine_ddp.py), started by torchrun.

Usage: ``torchrun --standalone --nproc-per-node 2 tests/engine_ddp_worker.py CONFIG.yaml WORK_DIR OUT.json``.
Trains, then gathers a hash of every rank's parameters and runs sharded inference over the
validation set; rank 0 writes what the test checks to OUT.json.
"""

from __future__ import annotations

import hashlib
import sys

import torch
import torch.distributed as dist

from heatpose.config import load_config
from heatpose.data.dataset import build_dataset
from heatpose.engine.distributed import shutdown
from heatpose.engine.evaluate import predict_dataset
from heatpose.engine.train import train_model
from heatpose.io import atomic_write_json


def main(config: str, work_dir: str, out: str) -> None:
    dist.init_process_group("gloo")  # train_model reuses this group and leaves it to us
    cfg = load_config(config)
    model, metrics = train_model(cfg, work_dir)
    digest = hashlib.sha256()
    for p in model.parameters():
        digest.update(p.detach().cpu().numpy().tobytes())
    digests = [None] * dist.get_world_size()
    dist.all_gather_object(digests, digest.hexdigest())
    val_set = build_dataset(cfg, "val")
    preds = predict_dataset(model, val_set, torch.device("cpu"), cfg.test.batch_size, progress=False)
    if dist.get_rank() == 0:
        report = {
            "world_size": dist.get_world_size(),
            "param_digests": digests,
            "metrics": metrics,
            "num_val": len(val_set),
            "pred_index": preds.index.tolist(),
        }
        atomic_write_json(out, report)
    shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
