"""Video outputs end to end: per-frame tables of predict/track, a killed run, smoothing in track,
live (file-backed) input, heatmap pictures and the ONNX detector in ``track``."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from heatpose.cli import main
from heatpose.config import config_from_dict, config_to_dict
from heatpose.engine.checkpoint import checkpoint_meta
from heatpose.live import LiveFrames
from heatpose.models import build_model
from heatpose.predict import DrawOptions, run_live, run_predict
from heatpose.predictor import PoseEstimator
from heatpose.smoothing import jitter, keypoint_error
from heatpose.tracking.tracker import TrackedPose
from heatpose.video_outputs import TrackSmoother

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
FPS = 12.5


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    cfg = config_from_dict(
        {
            "model": {"backbone_depth": 18, "num_deconv_layers": 1, "num_deconv_filters": 16},
            "data": {"input_size": [64, 64]},
            "test": {"flip": False},
        }
    )
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    nn.init.normal_(model.head.final_layer.weight, std=0.1)  # peaky heatmaps, spread joint scores
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save(
        {"model": model.state_dict(), "config": config_to_dict(cfg), "meta": checkpoint_meta(cfg)}, path
    )
    return path


def _video(path: Path, frames: int = 6) -> Path:
    rng = np.random.default_rng(1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (96, 96))
    base = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (96, 96))
    for t in range(frames):
        writer.write(np.roll(base, 3 * t, axis=1))
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return _video(tmp_path_factory.mktemp("video") / "clip.mp4")


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


# --------------------------------------------------------------------------- tables


def test_predict_csv_and_jsonl_equal_the_json(tmp_path, checkpoint, video, capsys):
    out, table, lines, vis = tmp_path / "p.json", tmp_path / "p.csv", tmp_path / "p.jsonl", tmp_path / "vis"
    args = ["predict", str(video), "--checkpoint", str(checkpoint), "--whole-image", "--out", str(out)]
    args += ["--csv", str(table), "--jsonl", str(lines), "--kpt-thr", "0.024", "--vis", str(vis), "--quiet"]
    assert main(args) == 0
    results = json.loads(out.read_text())
    header, rows = _read_csv(table)
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(results) == len(rows) == len(records) == 6  # one whole-image person per frame
    from heatpose.keypoints import COCO17

    assert header[:7] == ["frame", "time_s", "score", "box_x", "box_y", "box_w", "box_h"]
    assert header[7:10] == [f"{COCO17.joint_names[0]}_x", f"{COCO17.joint_names[0]}_y", "nose_score"]
    blanks = kept = 0
    for entry, row, rec in zip(results, rows, records, strict=True):
        assert int(row["frame"]) == entry["frame"] == rec["frame"]
        assert float(row["time_s"]) == pytest.approx(entry["frame"] / FPS)  # container timestamps
        assert float(row["score"]) == pytest.approx(entry["score"])
        raw = np.asarray(rec["people"][0]["keypoints"]).reshape(-1, 3)  # full precision, no threshold
        np.testing.assert_allclose(
            np.asarray(entry["keypoints"]).reshape(-1, 3), raw, atol=6e-4
        )  # json rounds
        for name, (x, _y, s) in zip(COCO17.joint_names, raw, strict=True):
            if s < 0.024:
                assert row[f"{name}_x"] == row[f"{name}_y"] == row[f"{name}_score"] == ""
                blanks += 1
            else:
                assert float(row[f"{name}_x"]) == x
                assert float(row[f"{name}_score"]) == s
                kept += 1
    assert blanks > 0 and kept > 0  # the threshold split the joints, so both branches were tested
    assert (vis / "clip.mp4").is_file()


def test_tables_need_one_video(tmp_path, checkpoint, video, capsys):
    args = ["predict", str(video), str(video), "--checkpoint", str(checkpoint), "--whole-image"]
    assert main([*args, "--csv", str(tmp_path / "x.csv"), "--quiet"]) == 2
    assert "--csv/--jsonl need exactly one video" in capsys.readouterr().err


def test_a_run_that_fails_mid_video_keeps_the_finished_frames_in_the_jsonl(tmp_path, checkpoint, video):
    est = PoseEstimator.from_checkpoint(checkpoint, detector="whole-image")
    real, calls = est.predict_bgr, []

    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("boom")
        return real(*a, **k)

    est.predict_bgr = failing
    table, lines = tmp_path / "p.csv", tmp_path / "p.jsonl"
    with pytest.raises(RuntimeError):
        run_predict([str(video)], est, progress=False, csv_path=table, jsonl_path=lines)
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert not table.exists() and not list(tmp_path.glob(".p.csv*"))  # no half csv left behind


def test_ctrl_c_closes_every_output_with_the_finished_frames(tmp_path, checkpoint, video):
    est = PoseEstimator.from_checkpoint(checkpoint, detector="whole-image")
    real, calls = est.predict_bgr, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    est.predict_bgr = interrupted
    out, table, lines = tmp_path / "p.json", tmp_path / "p.csv", tmp_path / "p.jsonl"
    report = run_predict(
        [str(video)], est, out, tmp_path / "vis", progress=False, csv_path=table, jsonl_path=lines
    )
    assert report.interrupted and report.frames == 3
    assert [e["frame"] for e in json.loads(out.read_text())] == [0, 1, 2]
    assert [int(r["frame"]) for r in _read_csv(table)[1]] == [0, 1, 2]  # renamed into place
    assert len(lines.read_text().splitlines()) == 3
    capture = cv2.VideoCapture(str(tmp_path / "vis" / "clip.mp4"))  # the writer was released
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    capture.release()


def test_ctrl_c_on_a_video_file_exits_130_and_keeps_the_outputs(
    tmp_path, checkpoint, video, monkeypatch, capsys
):
    real, calls = PoseEstimator.predict_bgr, []

    def interrupted(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(PoseEstimator, "predict_bgr", interrupted)
    out = tmp_path / "p.json"
    argv = ["predict", str(video), "--checkpoint", str(checkpoint), "--whole-image", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("heatpose: interrupted")
    assert [e["frame"] for e in json.loads(out.read_text())] == [0, 1]


def test_a_killed_process_keeps_every_finished_frame(tmp_path, checkpoint):
    clip = _video(tmp_path / "long.mp4", frames=400)
    lines = tmp_path / "k.jsonl"
    cmd = [sys.executable, "-m", "heatpose", "predict", str(clip), "--checkpoint", str(checkpoint)]
    cmd += ["--whole-image", "--jsonl", str(lines), "--csv", str(tmp_path / "k.csv"), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if lines.exists() and lines.read_text().count("\n") >= 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    text = lines.read_text()
    records = [json.loads(line) for line in text.splitlines()]  # every line is a whole frame
    assert len(records) >= 3 and text.endswith("\n")
    assert [r["frame"] for r in records] == list(range(len(records)))
    assert not (tmp_path / "k.csv").exists()  # the csv appears only when a run ends


def test_track_tables_carry_track_ids_and_match_the_json(tmp_path, checkpoint, capsys):
    root = tmp_path / "clips"
    synth = ["synth", str(root), "--video", "--num-videos", "1", "--frames", "5", "--layout", "coco"]
    assert main([*synth, "--width", "96", "--height", "96", "--split", "val", "--quiet", "--mp4"]) == 0
    (clip,) = (root / "videos" / "val").glob("*.mp4")
    dets = root / "annotations" / "val_human_detections.json"
    out, table, lines = tmp_path / "t.json", tmp_path / "t.csv", tmp_path / "t.jsonl"
    args = ["track", str(clip), "--checkpoint", str(checkpoint), "--boxes", str(dets), "--out", str(out)]
    args += ["--csv", str(table), "--jsonl", str(lines), "--kpt-thr", "0.3", "--quiet"]
    assert main([*args, "--tracker", "joint_score_thr=0.0"]) == 0
    result = json.loads(out.read_text())
    _, rows = _read_csv(table)
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(records) == len(result["images"]) == 5
    assert len(rows) == len(result["annotations"]) > 0
    ids = {im["id"]: t for t, im in enumerate(result["images"])}
    names = result["categories"][0]["keypoints"]
    for ann, row in zip(result["annotations"], rows, strict=True):
        assert int(row["frame"]) == ids[ann["image_id"]]
        assert int(row["track_id"]) == ann["track_id"]
        for j, name in enumerate(names):
            s = ann["scores"][j]
            assert (row[f"{name}_x"] == "") == (s < 0.3)
            if s >= 0.3:
                assert float(row[f"{name}_x"]) == pytest.approx(ann["keypoints"][3 * j], abs=0.01)
    assert [p["track_id"] for r in records for p in r["people"]] == [
        a["track_id"] for a in result["annotations"]
    ]


def test_track_smoothing_changes_keypoints_not_ids(tmp_path, checkpoint, capsys):
    root = tmp_path / "clips"
    synth = ["synth", str(root), "--video", "--num-videos", "1", "--frames", "6", "--layout", "coco"]
    assert main([*synth, "--width", "96", "--height", "96", "--split", "val", "--quiet"]) == 0
    frames = root / "images" / "val" / "000001_synthetic"
    dets = root / "annotations" / "val_human_detections.json"
    base = ["track", str(frames), "--checkpoint", str(checkpoint), "--boxes", str(dets), "--quiet"]
    base += ["--tracker", "joint_score_thr=0.0"]
    outs = {}
    for smooth in ("none", "one-euro", "savgol"):
        out = tmp_path / f"{smooth}.json"
        extra = ["--savgol", "3", "1"] if smooth == "savgol" else []
        assert main([*base, "--out", str(out), "--smooth", smooth, *extra]) == 0
        outs[smooth] = json.loads(out.read_text())["annotations"]
    raw = np.array([a["keypoints"] for a in outs["none"]])
    for smooth in ("one-euro", "savgol"):
        assert [a["track_id"] for a in outs[smooth]] == [a["track_id"] for a in outs["none"]]
        assert not np.allclose(np.array([a["keypoints"] for a in outs[smooth]]), raw)
    assert main([*base, "--out", str(tmp_path / "x.json"), "--smooth", "savgol", "--savgol", "4", "2"]) == 2
    assert "odd window" in capsys.readouterr().err


def test_track_smoother_reduces_jitter_of_a_noisy_track():
    rng = np.random.default_rng(0)
    t = np.arange(60) / 25.0
    truth = np.stack([np.stack([50 + 20 * np.sin(t), 40 + 10 * t], axis=-1)] * 3, axis=1)  # (T, 3, 2)
    noisy = truth + rng.normal(0, 1.5, truth.shape)
    scores = np.ones(3)
    people = [[TrackedPose(7, noisy[i], scores, np.zeros(4), False)] for i in range(len(t))]
    for method, most in (("one-euro", 0.7), ("savgol", 0.3)):  # defaults; measured 0.54 and 0.16
        smoother = TrackSmoother(method, fps=25.0)
        out = [smoother.step(p, float(ti)) for p, ti in zip(people, t, strict=True)]
        out = smoother.finish(out)
        smooth = np.stack([p[0].keypoints for p in out])
        assert jitter(smooth) < most * jitter(noisy)
        assert keypoint_error(smooth, truth) < 0.8 * keypoint_error(noisy, truth)
    # a track that skipped frames restarts its One-Euro filter: the first frame back is passed as is
    smoother = TrackSmoother("one-euro", fps=25.0)
    for i in range(5):
        smoother.step(people[i], float(t[i]))
    back = smoother.step(people[9], float(t[9]))
    np.testing.assert_array_equal(back[0].keypoints, noisy[9])
    assert not np.allclose(smoother.step(people[10], float(t[10]))[0].keypoints, noisy[10])


# --------------------------------------------------------------------------- live input


def test_file_backed_capture_gives_the_file_paths_poses(tmp_path, checkpoint, video):
    est = PoseEstimator.from_checkpoint(checkpoint, detector="whole-image")
    from_file = run_predict([str(video)], est, progress=False, jsonl_path=tmp_path / "f.jsonl")
    frames = LiveFrames(cv2.VideoCapture(str(video)), drop=False)
    live = run_live(frames, "clip.mp4", est, progress=False, jsonl_path=tmp_path / "l.jsonl")
    assert len(live.results) == len(from_file.results) == 6 and live.dropped == 0
    for a, b in zip(from_file.results, live.results, strict=True):
        assert a["frame"] == b["frame"] and a["keypoints"] == b["keypoints"]
    assert (tmp_path / "f.jsonl").read_text() == (tmp_path / "l.jsonl").read_text()  # same times too


def test_live_frames_drop_what_a_slow_model_cannot_take(video):
    frames = LiveFrames(cv2.VideoCapture(str(video)), drop=True)
    taken = 0
    for _ in frames:
        taken += 1
        time.sleep(0.05)  # a slow model: the reader thread decodes faster
    assert frames.read == 6 and taken + frames.dropped == 6 and taken >= 1


def test_max_fps_drops_frames_by_timestamp(video):
    frames = LiveFrames(cv2.VideoCapture(str(video)), drop=False, max_fps=FPS / 2)
    times = [t for _, t in frames]
    assert len(times) == 3 and frames.dropped == 3
    np.testing.assert_allclose(times, [0.0, 2 / FPS, 4 / FPS])


def test_show_without_a_display_is_one_clear_error(checkpoint, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY check is for Linux")
    assert main(["predict", "--camera", "0", "--checkpoint", str(checkpoint), "--show"]) == 2
    err = capsys.readouterr().err
    assert "DISPLAY is not set" in err and "Traceback" not in err


def test_a_camera_that_cannot_open_is_one_clear_error(checkpoint, capsys):
    assert main(["predict", "--source", "/nonexistent/video9", "--checkpoint", str(checkpoint)]) == 2
    assert "cannot open capture source" in capsys.readouterr().err


# --------------------------------------------------------------------------- heatmap pictures


def test_heatmap_pictures_differ_from_the_plain_drawing(tmp_path, checkpoint):
    image = cv2.resize(np.random.default_rng(3).integers(0, 256, (6, 6, 3), dtype=np.uint8), (96, 96))
    cv2.imwrite(str(tmp_path / "a.png"), image)
    base = ["predict", str(tmp_path / "a.png"), "--checkpoint", str(checkpoint), "--whole-image", "--quiet"]
    assert main([*base, "--vis", str(tmp_path / "plain")]) == 0
    assert main([*base, "--vis", str(tmp_path / "maps"), "--draw-heatmaps"]) == 0
    assert main([*base, "--vis", str(tmp_path / "nose"), "--draw-heatmaps", "--heatmap-joint", "nose"]) == 0
    plain, maps, nose = (cv2.imread(str(tmp_path / d / "a.png")) for d in ("plain", "maps", "nose"))
    assert plain.shape == maps.shape == nose.shape == (96, 96, 3)
    assert np.abs(plain.astype(int) - maps).mean() > 1.0
    assert np.abs(maps.astype(int) - nose).mean() > 0.1
    assert main([*base, "--vis", str(tmp_path / "x"), "--draw-heatmaps", "--heatmap-joint", "tail"]) == 2


def test_heatmap_picture_of_one_crop_from_python(checkpoint):
    est = PoseEstimator.from_checkpoint(checkpoint, detector="whole-image")
    image = cv2.resize(np.random.default_rng(3).integers(0, 256, (6, 6, 3), dtype=np.uint8), (96, 96))
    picture = est.heatmap_picture(image, [10, 10, 60, 70], joint="left_wrist")
    assert picture.shape == (64, 128, 3)
    assert not np.array_equal(picture[:, :64], picture[:, 64:])
    poses, maps = est.predict_bgr(image, est.person_boxes(image), with_heatmaps=True)
    assert maps.heatmaps.shape[:2] == (1, 17) and len(poses) == 1


def test_kpt_thr_hides_joints_in_drawings(tmp_path, checkpoint):
    est = PoseEstimator.from_checkpoint(checkpoint, detector="whole-image")
    image = np.full((96, 96, 3), 128, np.uint8)
    poses, maps = est.predict_bgr(image, est.person_boxes(image), with_heatmaps=True)
    from heatpose.predict import draw_picture

    shown = draw_picture(est, image, poses, maps, DrawOptions(score_thr=0.0, kpt_thr=0.0))
    hidden = draw_picture(est, image, poses, maps, DrawOptions(score_thr=0.0, kpt_thr=1.01))
    assert (shown != image).any()
    box_only = draw_picture(est, image, [], None, DrawOptions())
    assert np.count_nonzero((hidden != image).any(axis=2)) < np.count_nonzero((shown != image).any(axis=2))
    assert box_only.shape == image.shape


# --------------------------------------------------------------------------- ONNX detector in track


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter's notice
def test_track_runs_with_an_onnx_detector(tmp_path, checkpoint, video, capsys):
    pytest.importorskip("onnxruntime")
    from tests.test_onnx_detector import _End2End, _export

    det = tmp_path / "det.onnx"
    _export(_End2End(), det, ["dets", "labels"])
    out = tmp_path / "t.json"
    args = ["track", str(video), "--checkpoint", str(checkpoint), "--detector", str(det), "--out", str(out)]
    assert main([*args, "--quiet", "--tracker", "joint_score_thr=0.0"]) == 0
    result = json.loads(out.read_text())
    assert len(result["images"]) == 6 and result["annotations"]
    bad = ["track", str(video), "--checkpoint", str(checkpoint), "--detector", "yolo.pt", "--out", str(out)]
    assert main(bad) == 2
    assert "--detector must be 'hog' or a .onnx" in capsys.readouterr().err
