"""Heatmap codec: official target maths, round trips, DARK, flip-back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from heatpose.codec import HeatmapCodec, exact_flip_shift, flip_back, get_max_preds
from heatpose.keypoints import COCO17

CODEC = HeatmapCodec(input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0)


def official_generate_target(joints, joints_vis, image_size, heatmap_size, sigma):
    """A literal port of the official ``JointsDataset.generate_target`` (gaussian branch)."""
    num_joints = len(joints)
    target_weight = np.ones((num_joints, 1), dtype=np.float32)
    target_weight[:, 0] = joints_vis
    target = np.zeros((num_joints, heatmap_size[1], heatmap_size[0]), dtype=np.float32)
    tmp_size = sigma * 3
    for joint_id in range(num_joints):
        feat_stride = np.asarray(image_size) / np.asarray(heatmap_size)
        mu_x = int(joints[joint_id][0] / feat_stride[0] + 0.5)
        mu_y = int(joints[joint_id][1] / feat_stride[1] + 0.5)
        ul = [int(mu_x - tmp_size), int(mu_y - tmp_size)]
        br = [int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1)]
        if ul[0] >= heatmap_size[0] or ul[1] >= heatmap_size[1] or br[0] < 0 or br[1] < 0:
            target_weight[joint_id] = 0
            continue
        size = 2 * tmp_size + 1
        x = np.arange(0, size, 1, np.float32)
        y = x[:, np.newaxis]
        x0 = y0 = size // 2
        g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))
        g_x = max(0, -ul[0]), min(br[0], heatmap_size[0]) - ul[0]
        g_y = max(0, -ul[1]), min(br[1], heatmap_size[1]) - ul[1]
        img_x = max(0, ul[0]), min(br[0], heatmap_size[0])
        img_y = max(0, ul[1]), min(br[1], heatmap_size[1])
        if target_weight[joint_id] > 0.5:
            target[joint_id][img_y[0] : img_y[1], img_x[0] : img_x[1]] = g[g_y[0] : g_y[1], g_x[0] : g_x[1]]
    return target, target_weight[:, 0]


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_encode_matches_official_code(sigma):
    rng = np.random.default_rng(0)
    joints = rng.uniform(-40, 230, size=(200, 2))  # includes joints off the crop on every side
    visible = (rng.random(200) > 0.2).astype(np.float32)
    ours, w_ours = CODEC.__class__((192, 256), (48, 64), sigma).encode(joints, visible)
    ref, w_ref = official_generate_target(joints, visible, (192, 256), (48, 64), sigma)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    np.testing.assert_array_equal(w_ours, w_ref)
    assert (w_ours == 0).sum() > (visible == 0).sum()  # some Gaussians fell off the map


def test_integer_centres_decode_exactly():
    rng = np.random.default_rng(1)
    joints = rng.integers(3, 44, size=(50, 2)) * 4.0  # on the heatmap grid
    target, _ = CODEC.encode(joints, np.ones(50))
    coords, maxvals = CODEC.decode(target[None])
    np.testing.assert_array_equal(coords[0], joints / 4.0)
    np.testing.assert_allclose(maxvals, 1.0)


def _random_subpixel_joints(n, rng):
    # At least 4 heatmap pixels from every edge of the 48x64 map: closer in, the map cuts the
    # Gaussian and DARK's blur sees zero padding (see dark_refine's docstring).
    return np.stack([rng.uniform(4, 43, n), rng.uniform(4, 59, n)], axis=1) * 4.0


def test_subpixel_round_trip_dark_and_quarter():
    rng = np.random.default_rng(2)
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0, subpixel=True)
    joints = _random_subpixel_joints(300, rng)
    target, weight = codec.encode(joints, np.ones(len(joints)))
    assert weight.all()
    truth = joints / 4.0
    dark, _ = codec.decode(target[None], method="dark")
    quarter, _ = codec.decode(target[None], method="argmax")
    dark_err = np.abs(dark[0] - truth).max()
    quarter_err = np.abs(quarter[0] - truth).max()
    assert dark_err < 0.05, dark_err
    assert quarter_err < 0.35, quarter_err
    assert np.abs(dark[0] - truth).mean() < np.abs(quarter[0] - truth).mean() / 5


def test_decode_to_image_inverts_the_crop():
    from heatpose.data.transforms import apply_affine, box_to_center_scale, get_affine_transform

    rng = np.random.default_rng(3)
    center, scale = box_to_center_scale([100, 50, 120, 260], 192 / 256)
    image_pts = np.stack([rng.uniform(110, 210, 17), rng.uniform(70, 300, 17)], axis=1)
    crop_pts = apply_affine(image_pts, get_affine_transform(center, scale, 0.0, (192, 256)))
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0, subpixel=True)
    target, _ = codec.encode(crop_pts, np.ones(17))
    back, scores = codec.decode_to_image(target[None], center[None], scale[None], method="dark")
    pixel = scale[0] * 200 / 48  # one heatmap pixel in image pixels
    assert np.abs(back[0] - image_pts).max() < 0.05 * pixel
    assert scores.shape == (1, 17)


def test_non_positive_peaks_are_zeroed():
    heatmaps = -np.ones((1, 2, 8, 8), np.float32)
    heatmaps[0, 1, 3, 5] = 0.5
    coords, maxvals = get_max_preds(heatmaps)
    np.testing.assert_array_equal(coords[0, 0], [0, 0])
    np.testing.assert_array_equal(coords[0, 1], [5, 3])
    assert maxvals[0, 1] == pytest.approx(0.5)


def test_flip_back_twice_is_identity_and_swaps_pairs():
    flip_index = COCO17.flip_index()
    x = torch.randn(2, 17, 8, 6)
    twice = flip_back(flip_back(x, flip_index, shift=False), flip_index, shift=False)
    torch.testing.assert_close(twice, x)
    once = flip_back(x, flip_index, shift=False)
    torch.testing.assert_close(once[:, 1], x[:, 2].flip(-1))  # left_eye <- mirrored right_eye
    torch.testing.assert_close(once[:, 0], x[:, 0].flip(-1))  # nose stays nose


def test_flip_back_shift_is_official_one_pixel_right():
    flip_index = list(range(3))
    x = torch.arange(3 * 4 * 5, dtype=torch.float32).reshape(1, 3, 4, 5)
    ref = x.flip(-1).clone()
    ref[..., 1:] = ref.clone()[..., :-1]
    torch.testing.assert_close(flip_back(x, flip_index, shift=True), ref)


def test_flipped_crop_prediction_lands_on_the_same_joint():
    """A joint seen in a mirrored crop, flipped back with the shift, decodes near the original."""
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0)
    joints = np.array([[100.0, 120.0]] * 17)
    mirrored = joints.copy()
    mirrored[:, 0] = 192 - 1 - mirrored[:, 0]
    target, _ = codec.encode(mirrored, np.ones(17))
    back = flip_back(torch.from_numpy(target[None]), COCO17.flip_index(), shift=True)
    coords, _ = codec.decode(back.numpy())
    assert np.abs(coords[0] - joints / 4.0).max() <= 0.5


def test_exact_flip_shift_is_three_quarters_of_a_pixel_at_stride_4():
    assert exact_flip_shift(96, 24) == pytest.approx(0.75)
    assert exact_flip_shift(192, 48) == pytest.approx(0.75)
    assert exact_flip_shift(64, 8) == pytest.approx(0.875)  # stride 8
    with pytest.raises(ValueError, match="within"):
        flip_back(torch.zeros(1, 17, 4, 4), COCO17.flip_index(), shift=1.5)


def test_exact_flip_shift_removes_the_official_quarter_pixel_bias():
    """Sub-pixel targets of mirrored joints, flipped back: the exact shift lands on the joint,
    the official one-pixel shift 0.25 heatmap px to its right (the bias UDP describes)."""
    codec = HeatmapCodec((96, 128), (24, 32), sigma=2.0, subpixel=True)
    rng = np.random.default_rng(0)
    joints = np.stack([rng.uniform(24, 72, 17), rng.uniform(30, 98, 17)], 1)
    mirrored = joints.copy()
    mirrored[:, 0] = 96 - 1 - mirrored[:, 0]
    flip_index = COCO17.flip_index()
    target, _ = codec.encode(mirrored[flip_index], np.ones(17))  # the mirrored person's labels
    errors = {}
    for name, shift in (("exact", exact_flip_shift(96, 24)), ("official", 1.0)):
        back = flip_back(torch.from_numpy(target[None]), flip_index, shift=shift)
        coords, _ = codec.decode(back.numpy(), "dark")
        errors[name] = coords[0] - joints / codec.stride
    assert np.abs(errors["exact"]).max() < 0.05
    np.testing.assert_allclose(errors["official"][:, 0], 0.25, atol=0.05)
    assert np.abs(errors["official"][:, 1]).max() < 0.05
