"""The environment fails, heatpose says so in one line; configs are checked for values and
duplicate keys; image paths stay inside the image folder (docs/trust.md)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import heatpose.io as hio
from heatpose import cli
from heatpose.config import load_config
from heatpose.data.coco import read_coco_people
from heatpose.engine.checkpoint import atomic_save
from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_text, remove_orphan_temp_files, resolve_image_path

# --------------------------------------------------------------------------- config


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_duplicate_yaml_key_names_key_and_line(tmp_path):
    cfg = write(
        tmp_path / "dup.yaml", "train:\n  lr: 0.001\nmodel:\n  backbone_depth: 18\ntrain:\n  epochs: 3\n"
    )
    with pytest.raises(
        HeatposeError, match=r"dup\.yaml: duplicate key 'train' at line 5 \(first given at line 1\)"
    ):
        load_config(cfg)
    nested = write(tmp_path / "nested.yaml", "train:\n  lr: 0.001\n  epochs: 2\n  lr: 0.01\n")
    with pytest.raises(HeatposeError, match="duplicate key 'lr' at line 4"):
        load_config(nested)


def test_empty_yaml_says_empty(tmp_path):
    for text in ("", "# only a comment\n"):
        with pytest.raises(HeatposeError, match=r"empty\.yaml: config file is empty"):
            load_config(write(tmp_path / "empty.yaml", text))


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.lr=0", "train.lr"),
        ("train.lr=-1e-3", "train.lr"),
        ("train.lr=.nan", "train.lr"),
        ("train.lr=.inf", "train.lr"),
        ("train.lr_factor=0", "train.lr_factor"),
        ("train.lr_factor=1.5", "train.lr_factor"),
        ("data.rot_prob=1.2", "data.rot_prob"),
        ("data.half_body_prob=-0.1", "data.half_body_prob"),
        ("data.scale_factor=-0.3", "data.scale_factor"),
        ("data.rot_factor=-40", "data.rot_factor"),
        ("data.box_enlarge=0", "data.box_enlarge"),
        ("train.batch_size=0", "train.batch_size"),
        ("test.batch_size=0", "test.batch_size"),
        ("train.num_workers=-1", "train.num_workers"),
        ("train.seed=-1", "train.seed"),
        ("train.seed=4294967296", "train.seed"),
        ("train.weight_decay=-1", "train.weight_decay"),
        ("train.grad_clip=-1", "train.grad_clip"),
        ("train.lr_steps=[-1]", "train.lr_steps"),
        ("test.oks_nms_thr=2", "test.oks_nms_thr"),
    ],
)
def test_out_of_range_values_name_the_key(tmp_path, override, key):
    cfg = write(tmp_path / "c.yaml", "train:\n  epochs: 2\n")
    with pytest.raises(HeatposeError, match=key.replace(".", r"\.")) as err:
        load_config(cfg, [override])
    assert "\n" not in str(err.value)


def test_in_range_edges_are_accepted(tmp_path):
    cfg = write(tmp_path / "c.yaml", "train:\n  epochs: 2\n")
    ok = load_config(
        cfg, ["train.lr_factor=1", "data.rot_prob=0", "train.seed=4294967295", "train.num_workers=0"]
    )
    assert ok.train.seed == 2**32 - 1


# --------------------------------------------------------------------------- image paths


@pytest.mark.parametrize("name", ["../secret.jpg", "a/../../secret.jpg", "/etc/passwd", "..", "", 7])
def test_image_names_outside_the_folder_are_refused(tmp_path, name):
    with pytest.raises(HeatposeError, match="image 3"):
        resolve_image_path(tmp_path / "images", name, "ann.json: image 3")


def test_image_names_inside_the_folder_resolve(tmp_path):
    assert resolve_image_path(tmp_path, "a/./b.jpg", "x") == tmp_path / "a" / "b.jpg"
    assert resolve_image_path(tmp_path, "a/../b.jpg", "x") == tmp_path / "b.jpg"


def test_coco_reader_refuses_traversal(tmp_path):
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"not read")
    images = tmp_path / "images"
    images.mkdir()
    gt = {
        "images": [{"id": 1, "file_name": "../outside.jpg", "width": 64, "height": 64}],
        "annotations": [
            {"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [4, 4, 30, 40], "area": 1200,
             "num_keypoints": 1, "keypoints": [10, 10, 2] + [0, 0, 0] * 16}
        ],
        "categories": [{"id": 1, "name": "person"}],
    }  # fmt: skip
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(gt))
    with pytest.raises(HeatposeError, match="outside the image folder"):
        read_coco_people(ann, images, 17, aspect_ratio=0.75)


# --------------------------------------------------------------------------- writes


def readonly_dir(tmp_path: Path) -> Path:
    """A folder this process cannot write into (root ignores permission bits: use /sys)."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    folder = Path("/sys/heatpose-readonly-test")
    if not Path("/sys").is_dir():
        pytest.skip("no read-only folder available to root on this machine")
    return folder


def test_unwritable_targets_are_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HeatposeError, match=r"cannot write .*file/out\.json: .*(directory|exists)"):
        atomic_write_text(blocker / "out.json", "{}")
    with pytest.raises(HeatposeError, match=r"cannot write .*heatpose-readonly-test|cannot write .*ro/"):
        atomic_write_text(readonly_dir(tmp_path) / "out.json", "{}")


def test_disk_full_during_write_keeps_old_file_and_names_size(tmp_path, monkeypatch):
    path = tmp_path / "latest.pth"
    atomic_save({"w": torch.ones(3)}, path)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    monkeypatch.setattr(hio.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(
        HeatposeError, match=r"cannot write .*latest\.pth: No space left on device \(the file needs about"
    ):
        atomic_save({"w": torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pth"]


def test_nearly_full_disk_refuses_before_writing(tmp_path, monkeypatch):
    path = tmp_path / "latest.pth"
    atomic_save({"w": torch.ones(3)}, path)
    before = path.read_bytes()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 100_000, 100_000))
    with pytest.raises(
        HeatposeError, match=r"not enough disk space: the file needs about 4\.1 MB, 0\.1 MB free"
    ):
        atomic_save({"w": torch.zeros(2**20)}, path)  # 4 MiB of float32
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


def test_ctrl_c_inside_torch_save_stays_an_interrupt(tmp_path, monkeypatch):
    """torch.save's C++ writer turns a KeyboardInterrupt in a write into a RuntimeError."""
    real_fdopen = os.fdopen
    calls = []

    class Interrupted:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            calls.append(len(data))
            if len(calls) == 2:
                raise KeyboardInterrupt
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    monkeypatch.setattr(hio.os, "fdopen", lambda fd, mode: Interrupted(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"a": torch.zeros(10000), "b": torch.ones(10)}, tmp_path / "latest.pth")
    assert list(tmp_path.iterdir()) == []

    def train_interrupted(args):
        atomic_save({"a": torch.zeros(10000), "b": torch.ones(10)}, tmp_path / "latest.pth")
        return 0

    calls.clear()
    monkeypatch.setattr(cli, "_train", train_interrupted)
    assert cli.main(["train", "unused.yaml"]) == 130


def test_orphan_temp_files_are_removed(tmp_path):
    names = [".latest.pth.k2j4_x9a.tmp", ".best.pth.abcdefgh.tmp", "keep.tmp", ".hidden", "latest.pth"]
    for name in names:
        (tmp_path / name).write_text("x")
    removed = remove_orphan_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == [".best.pth.abcdefgh.tmp", ".latest.pth.k2j4_x9a.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "keep.tmp", "latest.pth"]


# --------------------------------------------------------------------------- errors in workers


class _BadImages(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        raise HeatposeError(f"cannot decode image (corrupt or not an image): img_{index}.jpg")


def test_worker_error_reaches_the_user_as_one_line(monkeypatch, capsys):
    def train_with_worker(args):
        for _ in DataLoader(_BadImages(), num_workers=1):
            pass
        return 0

    monkeypatch.setattr(cli, "_train", train_with_worker)
    assert cli.main(["train", "unused.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "heatpose: error: cannot decode image (corrupt or not an image): img_0.jpg"
    ]


def test_os_error_reaches_the_user_as_one_line(monkeypatch, capsys, tmp_path):
    def train_into_a_file(args):
        (tmp_path / "f").write_text("x")
        (tmp_path / "f" / "work").mkdir(parents=True)
        return 0

    monkeypatch.setattr(cli, "_train", train_into_a_file)
    assert cli.main(["train", "unused.yaml"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("heatpose: error: ") and "Not a directory" in lines[0]


def test_json_writer_accepts_numpy_values(tmp_path):
    """eval_meta.json carries a checkpoint's meta, which MMPose fills with numpy values."""
    import numpy as np

    hio.atomic_write_json(tmp_path / "m.json", {"sigmas": np.ones(2, np.float32), "seed": np.int64(3)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"sigmas": [1.0, 1.0], "seed": 3}
