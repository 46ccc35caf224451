"""UDP (Huang et al., CVPR 2020): pixel-index crops and heatmaps, exact flips, unbiased round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from heatpose.codec import HeatmapCodec, flip_back
from heatpose.data.transforms import (
    apply_affine,
    box_to_center_scale,
    compose_affine,
    get_affine_transform,
    horizontal_flip_matrix,
    sample_crop,
)
from heatpose.keypoints import COCO17

INPUT, HEATMAP = (96, 128), (24, 32)
UDP = HeatmapCodec(INPUT, HEATMAP, sigma=2.0, udp=True)


def test_udp_crop_maps_box_edges_to_first_and_last_pixel_index():
    center, scale = np.array([100.0, 80.0]), np.array([0.6, 0.8])  # 120 x 160 px box
    m = get_affine_transform(center, scale, 0.0, INPUT, udp=True)
    np.testing.assert_allclose(apply_affine(center, m), [47.5, 63.5])
    np.testing.assert_allclose(
        apply_affine([[40.0, 0.0], [160.0, 160.0]], m), [[0.0, 0.0], [95.0, 127.0]], atol=1e-12
    )
    inv = get_affine_transform(center, scale, 0.0, INPUT, udp=True, inverse=True)
    np.testing.assert_allclose(apply_affine(apply_affine([[3.3, 7.1]], m), inv), [[3.3, 7.1]], atol=1e-12)


@pytest.mark.parametrize("rotation", [0.0, 17.0])
def test_udp_training_flip_is_exactly_the_mirrored_crop(rotation):
    """Mirror the image and crop about the mirrored centre == crop, then mirror the crop."""
    width, center, scale = 300, np.array([120.3, 90.7]), np.array([0.55, 0.73])
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 200, (20, 2))
    mirrored_center = np.array([width - 1 - center[0], center[1]])
    flipped_path = compose_affine(
        get_affine_transform(mirrored_center, scale, rotation, INPUT, udp=True), horizontal_flip_matrix(width)
    )
    crop = get_affine_transform(center, scale, -rotation, INPUT, udp=True)
    mirror_crop = horizontal_flip_matrix(INPUT[0])
    np.testing.assert_allclose(
        apply_affine(pts, flipped_path), apply_affine(apply_affine(pts, crop), mirror_crop), atol=1e-9
    )
    # the official crop is off by one crop pixel in x under the same identity
    official = compose_affine(
        get_affine_transform(mirrored_center, scale, 0.0, INPUT), horizontal_flip_matrix(width)
    )
    off = apply_affine(pts, official) - apply_affine(
        apply_affine(pts, get_affine_transform(center, scale, 0.0, INPUT)), mirror_crop
    )
    np.testing.assert_allclose(off[:, 0], 1.0, atol=1e-9)


def test_udp_heatmap_flip_needs_no_shift():
    """Targets of the mirrored crop == flip_back(targets of the crop) with shift 0, to float precision."""
    rng = np.random.default_rng(1)
    joints = rng.uniform(10, 85, (17, 2))
    joints[:, 1] *= 1.3
    visible = np.ones(17)
    target, _ = UDP.encode(joints, visible)
    mirrored = joints.copy()
    mirrored[:, 0] = INPUT[0] - 1 - mirrored[:, 0]
    flip_index = COCO17.flip_index()
    target_of_mirror, _ = UDP.encode(mirrored[flip_index], visible)
    back = flip_back(torch.from_numpy(target_of_mirror)[None], flip_index, shift=0.0)[0].numpy()
    np.testing.assert_allclose(back, target, atol=1e-6)
    official = HeatmapCodec(INPUT, HEATMAP, sigma=2.0, subpixel=True)
    t_off, _ = official.encode(joints, visible)
    mirrored_off = joints.copy()
    mirrored_off[:, 0] = INPUT[0] - 1 - mirrored_off[:, 0]
    t_mirror_off, _ = official.encode(mirrored_off[flip_index], visible)
    back_off = flip_back(torch.from_numpy(t_mirror_off)[None], flip_index, shift=0.0)[0].numpy()
    assert np.abs(back_off - t_off).max() > 0.1  # the official convention does need a shift


def test_udp_round_trip_image_to_heatmap_to_image_is_unbiased():
    rng = np.random.default_rng(2)
    box = [50.0, 40.0, 90.0, 150.0]
    center, scale = box_to_center_scale(box, INPUT[0] / INPUT[1], 1.25)
    params = sample_crop(center, scale, 400, INPUT, None, None, udp=True)
    image_pts = np.stack([rng.uniform(60, 130, 17), rng.uniform(60, 170, 17)], axis=1)
    crop_pts = apply_affine(image_pts, params.matrix)
    target, weight = UDP.encode(crop_pts, np.ones(17))
    assert weight.all()
    back, _ = UDP.decode_to_image(target[None], center[None], scale[None], method="dark")
    err = back[0] - image_pts
    assert np.abs(err).max() < 0.05  # pixels of a ~190 px box, through a 32x24 heatmap
    assert abs(err[:, 0].mean()) < 0.01 and abs(err[:, 1].mean()) < 0.01


# ------------------------------------------------------------------ no bias after training
#
# Why dots, not people: a few seconds of CPU training cannot make a network locate people's
# joints to a fraction of a pixel, so any codec bias would drown in its error. A bright disc at a
# random sub-pixel position on a noisy background is learnt to ~0.08 crop px in 150 steps, which
# makes a mean signed error of a tenth of a pixel measurable. Everything between the pixels and
# the number is heatpose's own: the training crop with scale / rotation / flip augmentation
# (``sample_crop``, ``warp_crop``, ``transform_keypoints``), the codec's targets, the loss, a
# ``DeconvHead`` on a small stride-8 conv stack (the same misaligned-by-design stride-2 convs and
# transposed conv as a Simple Baseline), and at test time ``crop_batch``, ``predict_heatmaps``
# (no flip) and ``decode_to_image`` (DARK). The error is measured in crop pixels: the image
# error mapped through the crop's own affine matrix. The lr drops x0.1 for the last third, as in
# real schedules: without it the last steps' noise moved the mean by up to 0.26 px (seed 3).
#
# Measured with this code (1 thread; mean signed error x / y in crop px):
#   seed      0            1            2            3            4
#   udp       -0.001/+0.022 -0.001/+0.007 -0.038/-0.024 -0.010/+0.032 +0.011/+0.039
#   official  +0.031/-0.007 -0.004/+0.013 +0.000/+0.018 +0.026/+0.005 +0.012/+0.015
#   seed      5            6            7            8            9
#   udp       -0.034/+0.021 +0.003/+0.001 -0.019/+0.002 -0.015/+0.011 -0.022/+0.002
#   official  -0.028/-0.002 -0.007/-0.009 +0.028/+0.008 -0.015/-0.002 -0.050/-0.031
# (mean |error| 0.063-0.093 crop px). So the bound is 0.1 crop px: twice the largest of these 20
# means, well below what the bugs it guards against give here (seed 0, udp, the code broken by
# hand): flipped samples' labels 1 crop px off in x: +0.55 px; a UDP heatmap decoded on the
# official grid: -1.96 / -1.93 px. The official codec shows no half-pixel lean in x either on
# data drawn like its training data (the sign changes with the seed), so the same bound holds
# for it and no lean is asserted. The lean the issue reports is on people drawn differently:
# benchmarks/codec_offstyle.py measures that on ``heatpose synth --style flat``.

DOT_INPUT, DOT_HEATMAP, DOT_IMAGE = (48, 48), (12, 12), 64
DOT_SCALE = np.array([32 / 200, 32 / 200], np.float32)  # a 32 x 32 px box around each dot


def _dot_images(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    """n (64, 64, 3) uint8 images, each one anti-aliased bright disc at a sub-pixel (x, y)."""
    ys, xs = np.mgrid[0:DOT_IMAGE, 0:DOT_IMAGE].astype(np.float64)
    images, points = [], rng.uniform(20, 44, (n, 2))
    for x, y in points:
        background = rng.uniform(40, 120) + rng.normal(0, 8, (DOT_IMAGE, DOT_IMAGE))
        cover = np.clip(rng.uniform(2.0, 3.5) - np.hypot(xs - x, ys - y) + 0.5, 0, 1)
        gray = np.clip(background * (1 - cover) + 230 * cover, 0, 255).astype(np.uint8)
        images.append(np.repeat(gray[..., None], 3, axis=2))
    return images, points


def _dot_network() -> torch.nn.Module:
    """(N, 3, 48, 48) -> (N, 1, 12, 12): four conv-BN-ReLU blocks (stride 8) + a 1-deconv head."""
    from torch import nn

    from heatpose.models.simple_baseline import DeconvHead

    layers: list[nn.Module] = []
    for cin, cout, stride in ((3, 16, 1), (16, 16, 2), (16, 32, 2), (32, 32, 2), (32, 32, 1)):
        layers += [
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(
        nn.Sequential(*layers), DeconvHead(32, 1, num_deconv_layers=1, num_deconv_filters=32)
    )


def _signed_error_after_training(
    codec_name: str, seed: int = 0, steps: int = 150
) -> tuple[np.ndarray, float]:
    """Train on dots with flip augmentation, then (2,) mean signed and mean |error| in crop px."""
    from heatpose.data.transforms import Augmentation, transform_keypoints, warp_crop
    from heatpose.inference import crop_batch, predict_heatmaps
    from heatpose.losses import JointsMSELoss

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    codec = HeatmapCodec(DOT_INPUT, DOT_HEATMAP, sigma=1.5, subpixel=True, udp=codec_name == "udp")
    images, points = _dot_images(rng, 256)
    aug = Augmentation(scale_factor=0.2, rot_factor=30.0, rot_prob=0.5, flip=True)
    model, loss_fn = _dot_network(), JointsMSELoss()
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, [steps * 2 // 3], 0.1)  # settle the last third
    for _ in range(steps):
        crops, targets, weights = [], [], []
        for i in rng.integers(len(images), size=32):
            center = points[i] + rng.uniform(-4, 4, 2)
            params = sample_crop(center, DOT_SCALE, DOT_IMAGE, DOT_INPUT, aug, rng, udp=codec.udp)
            crops.append(warp_crop(images[i], params.matrix, DOT_INPUT))
            joints, visible = transform_keypoints(np.array([[*points[i], 2.0]]), params, [0])
            target, weight = codec.encode(joints, visible)
            targets.append(target)
            weights.append(weight)
        x = (torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.25
        target_weight = torch.from_numpy(np.stack(weights))[..., None]
        loss = loss_fn(model(x), torch.from_numpy(np.stack(targets)), target_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    test_images, test_points = _dot_images(np.random.default_rng(1000 + seed), 300)
    centers = test_points + np.random.default_rng(7).uniform(-4, 4, test_points.shape)
    mean, std = np.full(3, 0.5, np.float32), np.full(3, 0.25, np.float32)
    errors = []
    with torch.no_grad():
        for image, point, center in zip(test_images, test_points, centers, strict=True):
            crop = crop_batch(image, center[None], DOT_SCALE[None], DOT_INPUT, mean, std, codec.udp)
            heatmaps = predict_heatmaps(model, crop, flip=False)
            pred, _ = codec.decode_to_image(heatmaps, center[None], DOT_SCALE[None], "dark")
            to_crop = get_affine_transform(center, DOT_SCALE, 0.0, DOT_INPUT, udp=codec.udp)
            errors.append(apply_affine(pred[0, 0], to_crop) - apply_affine(point, to_crop))
    errors = np.array(errors)
    return errors.mean(axis=0), float(np.abs(errors).mean())


@pytest.mark.parametrize("codec_name", ["udp", "official"])
def test_trained_tiny_model_has_no_signed_bias(codec_name, one_thread):
    """Mean signed error (predicted - GT) of a freshly trained model, no flip test, x and y."""
    signed, absolute = _signed_error_after_training(codec_name)
    assert absolute < 0.2, (
        f"the model did not learn the dots well enough to measure a bias ({absolute:.3f} px)"
    )
    assert np.abs(signed).max() < 0.25, f"{codec_name}: mean signed error {signed} crop px"
