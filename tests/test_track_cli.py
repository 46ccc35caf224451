"""``heatpose track`` end to end with a tiny random-init checkpoint: real frames and synthetic clips."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from heatpose.cli import main
from heatpose.config import config_from_dict, config_to_dict
from heatpose.data.posetrack import read_posetrack
from heatpose.models import build_model
from tests.conftest import shared_path

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# a random network scores every joint low: count every joint as confident so that poses survive
EVERY_JOINT = ("--tracker", "joint_score_thr=0.0")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cfg = config_from_dict(
        {
            "model": {"backbone_depth": 18, "num_deconv_layers": 1, "num_deconv_filters": 16},
            "data": {"input_size": [64, 64]},
            "test": {"flip": False},
        }
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save({"model": build_model(cfg.model).state_dict(), "config": config_to_dict(cfg)}, path)
    return path


def test_track_runs_over_the_shared_posetrack_sequence(tmp_path, checkpoint, capsys):
    video = shared_path("mmpose_testdata", "posetrack18", "videos", "000001_mpiinew_test")
    frame_ids = [10_000_010_000 + t for t in range(5)]  # PoseTrack ids of video 000001
    dets = [{"image_id": i, "category_id": 1, "bbox": [500, 150, 200, 400], "score": 0.9} for i in frame_ids]
    dets.append({"image_id": frame_ids[2], "category_id": 1, "bbox": [100, 100, 150, 300], "score": 0.3})
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    out, vis = tmp_path / "tracks.json", tmp_path / "tracks.mp4"
    args = ["track", str(video), "--checkpoint", str(checkpoint), "--boxes", str(tmp_path / "dets.json")]
    assert main([*args, "--out", str(out), "--vis", str(vis), "--quiet", *EVERY_JOINT]) == 0
    stdout = capsys.readouterr().out
    for stage in ("decode", "flow", "boxes", "pose", "matching"):
        assert stage in stdout
    result = json.loads(out.read_text())
    assert [im["frame_id"] for im in result["images"]] == frame_ids
    assert result["images"][0]["file_name"] == "000001_mpiinew_test/000000.jpg"
    assert {a["image_id"] for a in result["annotations"]} == set(frame_ids)  # a person in every frame
    assert all(len(a["keypoints"]) == 51 and len(a["scores"]) == 17 for a in result["annotations"])
    capture = cv2.VideoCapture(str(vis))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    capture.release()
    (videos,) = read_posetrack(out)  # the output reads back as PoseTrack18
    assert len(videos.frames) == 5


def test_track_a_synthetic_clip_and_score_it(tmp_path, checkpoint, capsys):
    root = tmp_path / "clips"
    synth = ["synth", str(root), "--video", "--num-videos", "1", "--frames", "5", "--layout", "coco"]
    assert main([*synth, "--width", "128", "--height", "96", "--split", "val", "--quiet", "--mp4"]) == 0
    out = tmp_path / "tracks.json"
    dets = root / "annotations" / "val_human_detections.json"
    frames = root / "images" / "val" / "000001_synthetic"
    args = ["track", str(frames), "--checkpoint", str(checkpoint), "--boxes", str(dets), "--out", str(out)]
    assert main([*args, "--quiet", *EVERY_JOINT]) == 0
    capsys.readouterr()
    gt = root / "annotations" / "val"
    assert main(["score", "--metric", "posetrack", "--gt", str(gt), "--preds", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["num_frames"] == 5 and stats["num_objects"] > 0 and len(stats["joints"]) == 17
    # the same clip as a video file: same frame names and PoseTrack frame ids
    mp4 = root / "videos" / "val" / "000001_synthetic.mp4"
    args = [
        "track",
        str(mp4),
        "--checkpoint",
        str(checkpoint),
        "--boxes",
        str(dets),
        "--out",
        str(tmp_path / "v.json"),
    ]
    assert main([*args, "--quiet", *EVERY_JOINT]) == 0
    from_video = json.loads((tmp_path / "v.json").read_text())["images"]
    from_folder = json.loads(out.read_text())["images"]
    assert [(i["file_name"], i["frame_id"]) for i in from_video] == [
        (i["file_name"], i["frame_id"]) for i in from_folder
    ]


def test_track_bad_inputs_are_one_line_errors(tmp_path, checkpoint, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "000000.jpg"), (torch.rand(48, 64, 3) * 255).byte().numpy())
    (tmp_path / "dets.json").write_text(json.dumps([{"image_id": 99, "bbox": [1, 1, 10, 10], "score": 1}]))
    base = ["track", str(frames), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "t.json")]
    cases = [
        ([*base, "--boxes", str(tmp_path / "dets.json")], "no detection has an image_id"),
        (
            [*base, "--boxes", str(tmp_path / "dets.json"), "--tracker", "similarity=iou"],
            "tracker.similarity",
        ),
        ([*base, "--boxes", str(tmp_path / "dets.json"), "--tracker", "nope=1"], "unknown tracker setting"),
        (["track", str(tmp_path / "missing"), *base[2:], "--detector", "hog"], "not found"),
    ]
    for argv, fragment in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("heatpose: error: ") and fragment in err[0], err


@pytest.mark.parametrize("codec", ["official", "udp"])
def test_estimator_adapter_gives_what_heatpose_eval_gives(tmp_path, codec):
    """The tracker's pose callable and ``heatpose eval``'s inference agree on the same boxes."""
    from heatpose.data.dataset import build_dataset, read_image
    from heatpose.data.synthetic import write_synthetic_dataset
    from heatpose.engine.evaluate import configured_flip_shift, predict_dataset
    from heatpose.models import load_model_weights
    from heatpose.tracking.estimator import load_pose_estimator

    root = tmp_path / "data"
    write_synthetic_dataset(root, 2, seed=0, image_size=(128, 96), split_name="val", progress=False)
    cfg = config_from_dict(
        {
            "model": {"backbone_depth": 18, "num_deconv_layers": 1, "num_deconv_filters": 16},
            "data": {
                "val_ann": str(root / "annotations" / "person_keypoints_val.json"),
                "val_images": str(root / "images" / "val"),
                "input_size": [64, 64],
                "codec": codec,
            },
            "test": {"flip": True, "boxes": "gt"},
        }
    )
    torch.manual_seed(1)
    ckpt = tmp_path / "m.pth"
    torch.save({"model": build_model(cfg.model).state_dict(), "config": config_to_dict(cfg)}, ckpt)
    model = build_model(cfg.model)
    load_model_weights(model, str(ckpt))
    dataset = build_dataset(cfg, "val")
    preds = predict_dataset(
        model,
        dataset,
        torch.device("cpu"),
        8,
        True,
        configured_flip_shift(cfg),
        cfg.test.decode,
        progress=False,
    )
    estimate, _, _ = load_pose_estimator(ckpt)
    for path in sorted({s.image_path for s in dataset.samples}):
        rows = [i for i, s in enumerate(dataset.samples) if s.image_path == path]
        boxes = np.array(
            [
                [*dataset.samples[i].box[:2], *(dataset.samples[i].box[:2] + dataset.samples[i].box[2:])]
                for i in rows
            ]
        )
        keypoints, scores = estimate(read_image(path, "bgr"), boxes)
        np.testing.assert_allclose(keypoints, preds.keypoints[rows], atol=1e-3)
        np.testing.assert_allclose(scores, preds.scores[rows], atol=1e-5)


def test_track_several_clips_into_a_folder_as_one_by_one(tmp_path, checkpoint, capsys):
    """Several inputs share one model load and write ``--out/<video>.json`` each, equal to one-by-one."""
    root = tmp_path / "clips"
    synth = ["synth", str(root), "--video", "--num-videos", "2", "--frames", "3", "--layout", "coco"]
    assert main([*synth, "--width", "96", "--height", "80", "--split", "val", "--quiet"]) == 0
    dets = str(root / "annotations" / "val_human_detections.json")
    clips = [str(root / "images" / "val" / f"00000{i}_synthetic") for i in (1, 2)]
    common = ["--checkpoint", str(checkpoint), "--boxes", dets, "--quiet", *EVERY_JOINT]
    assert main(["track", *clips, "--out", str(tmp_path / "all"), *common]) == 0
    for clip in clips:
        name = clip.rsplit("/", 1)[1]
        assert main(["track", clip, "--out", str(tmp_path / f"{name}.json"), *common]) == 0
        together = json.loads((tmp_path / "all" / f"{name}.json").read_text())
        assert together == json.loads((tmp_path / f"{name}.json").read_text())
        assert together["images"][0]["file_name"].startswith(name + "/")
    capsys.readouterr()
    several = ["track", *clips, *common]
    cases = [
        ([*several, "--out", str(tmp_path / "t.json")], "--out is a folder"),
        ([*several, "--out", str(tmp_path / "d"), "--vis", str(tmp_path / "v.mp4")], "take one input"),
        (["track", clips[0], clips[0], *common, "--out", str(tmp_path / "d")], "overwrite each other"),
    ]
    for argv, fragment in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("heatpose: error: ") and fragment in err[0], err
