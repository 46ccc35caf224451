"""`heatpose synth` into a folder that holds a dataset: refuse unless asked, never mix old and new."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import heatpose.data.synthetic.writer as writer
from heatpose.data.synthetic import write_synthetic_dataset
from heatpose.errors import HeatposeError
from tests.test_cli import assert_one_line_error, run_cli

SIZE = (96, 80)


def _write(root: Path, n: int = 3, seed: int = 1, **kwargs) -> dict:
    return write_synthetic_dataset(root, n, seed, image_size=SIZE, progress=False, **kwargs)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_second_synth_into_the_same_split_refuses_and_changes_nothing(tmp_path):
    _write(tmp_path)
    before = _files(tmp_path)
    with pytest.raises(HeatposeError, match="--overwrite") as err:
        _write(tmp_path, seed=2)
    assert "person_keypoints_train.json" in str(err.value)
    assert _files(tmp_path) == before
    _write(tmp_path, split_name="val")  # another split beside it is fine
    assert (tmp_path / "annotations" / "person_keypoints_val.json").is_file()


def test_overwrite_replaces_the_split_without_stale_files(tmp_path):
    _write(tmp_path, n=5, layout="mpii")
    summary = _write(tmp_path, n=2, seed=7, overwrite=True)
    images = sorted(p.name for p in (tmp_path / "images" / "train").iterdir())
    coco = json.loads(Path(summary["annotation_file"]).read_text())
    assert (
        images == sorted(im["file_name"] for im in coco["images"]) == ["000000000001.jpg", "000000000002.jpg"]
    )
    assert "seed=7" in coco["info"]["description"]
    assert not (tmp_path / "annotations" / "mpii_train.json").exists()  # the old layout's list is gone


def test_interrupted_overwrite_leaves_no_old_json_beside_new_images(tmp_path, monkeypatch):
    _write(tmp_path, n=3)
    old_image = (tmp_path / "images" / "train" / "000000000001.jpg").read_bytes()
    real_render = writer.render_synthetic_image
    calls = []

    def render_then_die(*args, **kwargs):
        if len(calls) == 1:
            raise KeyboardInterrupt
        calls.append(args)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(writer, "render_synthetic_image", render_then_die)
    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path, n=3, seed=9, overwrite=True)
    assert not (tmp_path / "annotations" / "person_keypoints_train.json").exists()
    new_image = (tmp_path / "images" / "train" / "000000000001.jpg").read_bytes()
    assert new_image != old_image
    assert not (tmp_path / "images" / "train" / "000000000002.jpg").exists()  # old images removed too
    monkeypatch.undo()
    with pytest.raises(HeatposeError, match="images"):  # the half-written split still counts
        _write(tmp_path)
    _write(tmp_path, overwrite=True)


def test_a_file_where_the_output_folder_should_be_is_one_error(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(HeatposeError, match="is a file"):
        _write(tmp_path / "out")


def test_cli_synth_twice_exits_2_and_overwrite_succeeds(tmp_path):
    args = ("synth", str(tmp_path / "s"), "--num-images", "1", "--width", "96", "--height", "80", "--quiet")
    assert run_cli(*args).returncode == 0
    assert_one_line_error(run_cli(*args), "--overwrite")
    proc = run_cli(*args, "--overwrite")
    assert proc.returncode == 0, proc.stderr
