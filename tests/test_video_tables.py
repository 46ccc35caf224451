"""Per-frame CSV / JSON-lines tables: columns named by the schema, thresholds, streaming."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from heatpose.video_tables import FramePoses, FrameTableWriter, csv_header


def _frame(i: int, tracking: bool = True) -> FramePoses:
    kp = np.array([[[10.0 + i, 20.0, 0.9], [30.0, 40.0 + i, 0.1]], [[5.0, 6.0, 0.5], [7.0, 8.0, 0.05]]])
    return FramePoses(
        frame=i,
        time=i / 25.0,
        keypoints=kp,
        boxes=np.array([[1.0, 2.0, 30.0, 40.0], [3.0, 4.0, 5.0, 6.0]]),
        scores=np.array([0.8, 0.4]),
        track_ids=np.array([1, 2]) if tracking else None,
    )


def test_csv_and_jsonl_agree_and_threshold_blanks_only_the_csv(tmp_path):
    names = ("nose", "left_wrist")
    with FrameTableWriter(names, tmp_path / "p.csv", tmp_path / "p.jsonl", tracking=True, kpt_thr=0.3) as w:
        for i in range(3):
            w.write(_frame(i))
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert list(rows[0]) == csv_header(names, tracking=True)
    assert list(rows[0])[:8] == ["frame", "time_s", "track_id", "score", "box_x", "box_y", "box_w", "box_h"]
    assert len(rows) == 6
    assert rows[2]["frame"] == "1" and float(rows[2]["time_s"]) == pytest.approx(0.04)
    assert float(rows[2]["nose_x"]) == 11.0 and rows[2]["track_id"] == "1"
    assert rows[2]["left_wrist_x"] == rows[2]["left_wrist_y"] == rows[2]["left_wrist_score"] == ""
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [rec["frame"] for rec in lines] == [0, 1, 2]
    raw = lines[1]["people"][0]["keypoints"]
    assert raw[3:6] == [30.0, 41.0, 0.1]  # below the threshold, kept raw in the json
    assert lines[1]["people"][1]["track_id"] == 2


def test_killed_run_keeps_finished_jsonl_frames_and_no_temp_files(tmp_path):
    w = FrameTableWriter(("a", "b"), tmp_path / "p.csv", tmp_path / "p.jsonl")
    w.write(_frame(0, tracking=False))
    w.write(_frame(1, tracking=False))
    # not closed: as after kill -9, the flushed json lines are on disk already
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 2
    w.close(keep_csv=False)
    assert not (tmp_path / "p.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["p.jsonl"]


def test_interrupt_keeps_the_csv(tmp_path):
    with pytest.raises(KeyboardInterrupt), FrameTableWriter(("a", "b"), tmp_path / "p.csv") as w:
        w.write(_frame(0, tracking=False))
        raise KeyboardInterrupt
    assert len(list(csv.DictReader((tmp_path / "p.csv").open()))) == 2
