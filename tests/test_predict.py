"""PoseEstimator and ``heatpose predict``: boxes, EXIF, colour order, foreign checkpoints, video, errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from model_helpers import randomize_batchnorm
from torch import nn

from heatpose.cli import main
from heatpose.config import config_from_dict, config_to_dict
from heatpose.data.dataset import read_image
from heatpose.detection import DetectionFile, HogPersonDetector, PersonBoxes
from heatpose.engine.checkpoint import checkpoint_meta
from heatpose.errors import HeatposeError
from heatpose.inference import InferenceSettings
from heatpose.media import read_photo
from heatpose.models import build_model
from heatpose.predictor import PoseEstimator
from tests.conftest import shared_path

TINY = {
    "model": {"backbone_depth": 18, "num_deconv_filters": 16, "num_deconv_layers": 2},
    "data": {"input_size": [64, 64]},
}


def _tiny_model(cfg, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = randomize_batchnorm(build_model(cfg.model), affine=False)
    nn.init.normal_(model.head.final_layer.weight, std=0.1)  # peaky heatmaps, unambiguous argmax
    return model.eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, nn.Module, object]:
    """A heatpose checkpoint of a tiny random model: (path, model, config)."""
    cfg = config_from_dict(TINY)
    model = _tiny_model(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save(
        {"model": model.state_dict(), "config": config_to_dict(cfg), "meta": checkpoint_meta(cfg)}, path
    )
    return path, model, cfg


def _write_images(folder: Path, n: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        image = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (80, 60))
        path = folder / f"img{i}.jpg"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- Python API


def test_predict_returns_people_in_image_pixels(tiny):
    path, _, _ = tiny
    est = PoseEstimator.from_checkpoint(path, detector="whole-image")
    image = cv2.resize(np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8), (80, 60))
    people = est.predict(image, boxes=[[5, 5, 30, 40, 1.0], [40, 10, 30, 45, 0.7]], color_order="bgr")
    assert len(people) == 2
    assert people[0].keypoints.shape == (17, 3) and people[0].box_source == "user"
    assert people[1].box_score == pytest.approx(0.7)
    assert np.isfinite(people[0].keypoints).all()
    whole = est.predict(image, color_order="rgb")
    assert len(whole) == 1 and whole[0].box_source == "whole-image"
    np.testing.assert_allclose(whole[0].box, [0, 0, 80, 60])
    with pytest.raises(HeatposeError, match="color_order"):
        est.predict(image)
    with pytest.raises(HeatposeError, match="boxes must be"):
        est.predict(image, boxes=[[5, 5, 30], [1, 2, 3, 4]], color_order="rgb")


def test_colour_order_is_honoured(tiny):
    """A BGR-trained network fed an RGB photo sees what an RGB network sees of the swapped photo."""
    path, _, _ = tiny
    rgb_est = PoseEstimator.from_checkpoint(path, detector="whole-image")
    bgr_est = PoseEstimator.from_checkpoint(path, detector="whole-image", overrides=("data.color_order=bgr",))
    assert bgr_est.color_order == "bgr"
    image = cv2.resize(np.random.default_rng(2).integers(0, 256, (6, 8, 3), dtype=np.uint8), (64, 96))
    a = bgr_est.predict(image, color_order="rgb")[0].keypoints
    b = rgb_est.predict(np.ascontiguousarray(image[..., ::-1]), color_order="rgb")[0].keypoints
    np.testing.assert_allclose(a, b, atol=1e-4)
    c = rgb_est.predict(image, color_order="rgb")[0].keypoints
    assert np.abs(a - c).max() > 1e-3
    np.testing.assert_array_equal(bgr_est.predict(image, color_order="RGB")[0].keypoints, a)  # any case
    with pytest.raises(HeatposeError, match="image's color_order must be 'rgb' or 'bgr', got 'rbg'"):
        bgr_est.predict(image, color_order="rbg")


def test_official_release_layout_needs_and_takes_a_config(tiny, tmp_path):
    """pose_resnet_*.pth.tar: a bare state dict, torchvision names, deconv_layers/final_layer."""
    _, model, cfg = tiny
    official = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue  # the release predates PyTorch 0.4.1
        official[key.removeprefix("backbone.").removeprefix("head.")] = value
    assert (
        "conv1.weight" in official and "deconv_layers.0.weight" in official and "final_layer.bias" in official
    )
    path = tmp_path / "pose_resnet_18_64x64.pth.tar"
    torch.save(official, path)
    with pytest.raises(HeatposeError, match=r"foreign checkpoint.*config"):
        PoseEstimator.from_checkpoint(path)
    config = tmp_path / "recipe.yaml"
    config.write_text(json.dumps(config_to_dict(cfg)))
    est = PoseEstimator.from_checkpoint(path, config=config, detector="whole-image")
    ours = PoseEstimator.from_checkpoint(tiny[0], detector="whole-image")
    image = cv2.resize(np.random.default_rng(3).integers(0, 256, (6, 8, 3), dtype=np.uint8), (64, 96))
    np.testing.assert_allclose(
        est.predict(image, color_order="bgr")[0].keypoints,
        ours.predict(image, color_order="bgr")[0].keypoints,
        atol=1e-5,
    )


def _jpeg_with_exif_orientation(image: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose APP1 segment holds a one-entry big-endian EXIF IFD: Orientation (0x0112)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01"
    tiff += b"\x01\x12" + b"\x00\x03" + b"\x00\x00\x00\x01" + orientation.to_bytes(2, "big") + b"\x00\x00"
    tiff += b"\x00\x00\x00\x00"
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    raw = data.tobytes()
    return raw[:2] + app1 + raw[2:]


class _BrightSpot(nn.Module):
    """Every joint's heatmap is the input brightness, pooled to stride 4: joints land on the bright spot."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x.mean(1, keepdim=True), 4).expand(-1, 17, -1, -1)


def test_exif_rotated_photo_gets_upright_coordinates(tmp_path):
    stored = np.zeros((40, 80, 3), np.uint8)  # a landscape pixel grid, W=80, H=40
    cv2.circle(stored, (60, 10), 5, (255, 255, 255), -1)
    path = tmp_path / "portrait.jpg"
    path.write_bytes(_jpeg_with_exif_orientation(stored, 6))  # 6: rotate 90 degrees clockwise to view
    upright = read_photo(path)
    assert upright.shape == (80, 40, 3)
    assert read_image(path, "bgr").shape == (40, 80, 3)  # dataset readers keep the stored grid
    assert np.abs(upright.astype(int) - np.rot90(stored, k=-1).astype(int)).max() < 40  # JPEG noise only
    cfg = config_from_dict(TINY, ["model.num_deconv_layers=3"])  # 16x16 heatmaps at stride 4
    est = PoseEstimator(
        _BrightSpot(), cfg, torch.device("cpu"), InferenceSettings(flip=False), detector="whole-image"
    )
    person = est.predict(path)[0]
    np.testing.assert_allclose(person.box, [0, 0, 40, 80])
    x, y = person.keypoints[0, :2]
    assert abs(x - 29) < 5 and abs(y - 60) < 5, (x, y)  # the spot: stored (60, 10) -> upright (29, 60)


def test_hog_detector_returns_boxes_in_image_pixels():
    image = read_photo(shared_path("mmpose_testdata", "coco", "000000196141.jpg"))
    boxes = HogPersonDetector()(image)
    assert isinstance(boxes, PersonBoxes) and boxes.source == "hog"
    if len(boxes):
        assert (boxes.boxes[:, 2:] > 0).all() and ((boxes.scores > 0) & (boxes.scores < 1)).all()
        assert (boxes.boxes[:, 0] + boxes.boxes[:, 2] <= image.shape[1] * 1.2).all()


# --------------------------------------------------------------------------- the command


def test_predict_with_a_detection_file_writes_scoreable_coco_results(tiny, tmp_path, capsys):
    coco = shared_path("mmpose_testdata", "coco")
    dets_path = coco / "test_coco_det_AP_H_56.json"
    dets = json.loads(dets_path.read_text())
    expected = sum(d["score"] >= 0.5 and d["category_id"] == 1 for d in dets)
    out = tmp_path / "preds.json"
    images = sorted(str(p) for p in coco.glob("*.jpg"))
    argv = ["predict", *images, "--checkpoint", str(tiny[0]), "--boxes", str(dets_path), "--out", str(out)]
    assert main([*argv, "--det-score-thr", "0.5", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"boxes: {dets_path} (score >= 0.5)" in printed
    results = json.loads(out.read_text())
    assert len(results) == expected > 0
    assert {r["box_source"] for r in results} == {f"{dets_path} (score >= 0.5)"}
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in results)
    per_image = {}
    for d in dets:
        if d["score"] >= 0.5:
            per_image[d["image_id"]] = per_image.get(d["image_id"], 0) + 1
    assert {i: sum(r["image_id"] == i for r in results) for i in per_image} == per_image
    assert main(["score", "--gt", str(coco / "test_coco.json"), "--preds", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= stats["AP"] <= 1.0


def test_a_corrupt_image_is_named_skipped_and_fails_the_exit_status(tiny, tmp_path, capsys):
    good = _write_images(tmp_path / "in", 2)
    bad = tmp_path / "in" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "preds.json"
    vis = tmp_path / "vis"
    code = main(["predict", str(tmp_path / "in"), "--checkpoint", str(tiny[0]), "--whole-image",
                 "--out", str(out), "--vis", str(vis), "--quiet"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "skipped" in captured.err and "broken.jpg" in captured.err
    results = json.loads(out.read_text())
    assert sorted(r["file_name"] for r in results) == sorted(p.name for p in good)
    assert sorted(p.name for p in vis.iterdir()) == sorted(p.name for p in good)
    assert "failed: 1 input (" in captured.out


def test_images_without_a_person_box_are_named_in_the_summary(tiny, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "empty_wall.jpg"), np.full((300, 200, 3), 127, np.uint8))
    assert main(["predict", str(tmp_path / "in"), "--checkpoint", str(tiny[0]), "--detector", "hog"]) == 0
    out = capsys.readouterr().out
    assert "1 image, 0 video frames, 0 people" in out
    assert "no person found in 1 image: empty_wall.jpg" in out


def test_video_through_predict_vis_keeps_its_frame_count(tiny, tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))
    rng = np.random.default_rng(0)
    for _ in range(7):
        writer.write(cv2.resize(rng.integers(0, 256, (4, 6, 3), dtype=np.uint8), (96, 64)))
    writer.release()
    out, vis = tmp_path / "preds.json", tmp_path / "vis"
    assert main(["predict", str(video), "--checkpoint", str(tiny[0]), "--whole-image", "--out", str(out),
                 "--vis", str(vis), "--quiet"]) == 0  # fmt: skip
    drawn = cv2.VideoCapture(str(vis / "clip.avi"))
    frames = 0
    while drawn.read()[0]:
        frames += 1
    assert frames == 7
    results = json.loads(out.read_text())
    assert [r["frame"] for r in results] == list(range(7)) and results[0]["file_name"] == "clip.avi"


def test_predict_cli_errors_are_one_line(tiny, tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--checkpoint", str(tiny[0]), "--whole-image"]) == 2
    assert "no images or videos" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(tiny[0]), "--whole-image"]) == 2
    assert "nothing to predict on: give images, folders or videos" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--checkpoint", str(tmp_path / "missing.pth")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    bad = tmp_path / "dets.json"
    bad.write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, "x", 4], "score": 1}]))
    with pytest.raises(HeatposeError, match="bbox"):
        DetectionFile(bad)


def test_a_checkpoint_with_only_meta_builds_its_network(tiny, tmp_path):
    _, model, cfg = tiny
    path = tmp_path / "meta_only.pth"
    torch.save({"model": model.state_dict(), "meta": checkpoint_meta(cfg)}, path)
    est = PoseEstimator.from_checkpoint(path, detector="whole-image", overrides=("data.color_order=bgr",))
    assert est.cfg.data.input_size == [64, 64] and est.cfg.model.num_deconv_layers == 2
    assert est.color_order == "bgr"
