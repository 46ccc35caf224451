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
