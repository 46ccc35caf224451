"""Affine crops: official construction, exact inverse, flips, seeded augmentation, real images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from heatpose.data.coco import read_coco_people
from heatpose.data.dataset import read_image
from heatpose.data.transforms import (
    Augmentation,
    apply_affine,
    box_to_center_scale,
    compose_affine,
    get_affine_transform,
    horizontal_flip_matrix,
    invert_affine,
    sample_crop,
    transform_keypoints,
    warp_crop,
)
from heatpose.keypoints import COCO17
from tests.conftest import shared_path


def official_affine(center, scale, rot, output_size, inv=False):
    """A literal port of the official three-point ``get_affine_transform`` (shift 0)."""
    scale_tmp = np.asarray(scale) * 200.0
    src_w = scale_tmp[0]
    dst_w, dst_h = output_size
    rot_rad = np.pi * rot / 180
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    src_dir = np.array([0 * cs - (src_w * -0.5) * sn, 0 * sn + (src_w * -0.5) * cs])
    dst_dir = np.array([0, dst_w * -0.5], np.float32)
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0, :] = center
    src[1, :] = center + src_dir
    dst[0, :] = [dst_w * 0.5, dst_h * 0.5]
    dst[1, :] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir

    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]], np.float32)

    src[2:, :] = third(src[0, :], src[1, :])
    dst[2:, :] = third(dst[0, :], dst[1, :])
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("rot", [0.0, 17.5, -63.0, 180.0])
def test_affine_matches_official_construction(rot):
    center, scale = np.array([320.5, 211.0]), np.array([1.3, 1.7333])
    for inv in (False, True):
        ours = get_affine_transform(center, scale, rot, (192, 256), inverse=inv)
        np.testing.assert_allclose(ours, official_affine(center, scale, rot, (192, 256), inv), atol=2e-3)


def test_inverse_is_exact():
    rng = np.random.default_rng(0)
    for _ in range(20):
        center = rng.uniform(0, 600, 2)
        scale = rng.uniform(0.2, 3, 2)
        m = get_affine_transform(center, scale, rng.uniform(-90, 90), (192, 256))
        pts = rng.uniform(-100, 700, (30, 2))
        back = apply_affine(apply_affine(pts, m), invert_affine(m))
        np.testing.assert_allclose(back, pts, atol=1e-9)


def test_box_to_center_scale_pads_and_enlarges():
    center, scale = box_to_center_scale([10, 20, 30, 80], aspect_ratio=0.75)  # tall: w padded to 60
    np.testing.assert_allclose(center, [25, 60])
    np.testing.assert_allclose(scale, [60 / 200 * 1.25, 80 / 200 * 1.25])
    _, scale = box_to_center_scale([0, 0, 300, 100], aspect_ratio=0.75)  # wide: h padded to 400
    np.testing.assert_allclose(scale, [300 / 200 * 1.25, 400 / 200 * 1.25])


def test_flipping_twice_is_identity():
    f = horizontal_flip_matrix(641)
    np.testing.assert_allclose(compose_affine(f, f), [[1, 0, 0], [0, 1, 0]])


def test_folded_flip_equals_official_flip_then_warp():
    """Our one-warp flip == official: mirror image and joints, mirror centre, then warp."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    kpts = np.concatenate(
        [rng.uniform(20, 140, (17, 1)), rng.uniform(10, 110, (17, 1)), np.full((17, 1), 2)], 1
    )
    center, scale = np.array([80.0, 60.0], np.float32), np.array([0.6, 0.8], np.float32)
    aug = Augmentation(scale_factor=0.0, rot_factor=0.0, rot_prob=0.0, flip=True)
    # find a seed whose draw flips
    for seed in range(50):
        params = sample_crop(center, scale, 160, (48, 64), aug, np.random.default_rng(seed))
        if params.flipped:
            break
    assert params.flipped
    ours_img = warp_crop(image, params.matrix, (48, 64))
    ours_kpts, _ = transform_keypoints(kpts, params, COCO17.flip_index())
    # official path
    mirrored = image[:, ::-1, :].copy()
    joints = kpts[:, :2].copy()
    joints[:, 0] = 160 - joints[:, 0] - 1
    joints = joints[COCO17.flip_index()]
    c = center.copy()
    c[0] = 160 - c[0] - 1
    m = get_affine_transform(c, scale, 0.0, (48, 64))
    np.testing.assert_allclose(ours_kpts, apply_affine(joints, m), atol=1e-4)
    diff = np.abs(ours_img.astype(int) - warp_crop(mirrored, m, (48, 64)).astype(int))
    assert diff.max() <= 1


def test_augmentation_is_seeded_and_within_official_ranges():
    aug = Augmentation()
    draws = [
        sample_crop([100, 100], [1, 1], 200, (192, 256), aug, np.random.default_rng(s)) for s in range(400)
    ]
    again = sample_crop([100, 100], [1, 1], 200, (192, 256), aug, np.random.default_rng(7))
    np.testing.assert_array_equal(again.matrix, draws[7].matrix)
    scales = np.array([d.scale[0] for d in draws])
    rots = np.array([d.rotation for d in draws])
    assert scales.min() >= 0.7 - 1e-6 and scales.max() <= 1.3 + 1e-6
    assert np.abs(rots).max() <= 80
    assert 0.3 < (rots == 0).mean() < 0.5  # rotation applied with p = 0.6
    assert 0.4 < np.mean([d.flipped for d in draws]) < 0.6


def test_half_body_crops_around_part_of_the_body():
    joints = np.stack([np.full(17, 100.0), np.linspace(20, 300, 17)], 1)
    aug = Augmentation(scale_factor=0.0, rot_factor=0.0, rot_prob=0.0, flip=False, half_body_prob=1.0)
    params = sample_crop(
        [100, 160],
        [1.5, 2.0],
        300,
        (192, 256),
        aug,
        np.random.default_rng(0),
        joints=joints,
        visible=np.full(17, 2.0),
        upper_body=COCO17.upper_body,
    )
    assert params.scale[1] < 2.0  # a smaller crop than the whole person
    assert params.center[1] != 160


def test_real_coco_image_crops_to_the_right_person():
    root = shared_path("coco_mini")
    people = read_coco_people(
        root / "annotations/person_keypoints_val2017.json",
        root / "images/val2017",
        17,
        aspect_ratio=192 / 256,
    )
    person = max(people, key=lambda p: ((p.keypoints[:, 2] > 0).sum(), p.area))
    image = read_image(person.image_path)
    params = sample_crop(person.center, person.scale, image.shape[1], (192, 256), None, None)
    crop = warp_crop(image, params.matrix, (192, 256))
    joints, visible = transform_keypoints(person.keypoints, params, COCO17.flip_index())
    pts = joints[visible > 0]
    assert len(pts) >= 5
    # every labeled joint lands in the crop, and the person fills the middle of it
    assert (
        (pts[:, 0] >= 0).all()
        and (pts[:, 0] < 192).all()
        and (pts[:, 1] >= 0).all()
        and (pts[:, 1] < 256).all()
    )
    box_center = apply_affine(person.box[:2] + person.box[2:] / 2, params.matrix)
    np.testing.assert_allclose(box_center, [96, 128], atol=1.0)
    # pixels: the crop of the box region equals a plain resize of that region (rotation 0)
    x, y, w, h = person.box
    tl = apply_affine(np.array([x, y]), params.matrix).round().astype(int)
    br = apply_affine(np.array([x + w, y + h]), params.matrix).round().astype(int)
    inner = crop[tl[1] + 2 : br[1] - 2, tl[0] + 2 : br[0] - 2].astype(np.float32)
    region = image[int(y) : int(y + h), int(x) : int(x + w)]
    resized = cv2.resize(region, (br[0] - tl[0], br[1] - tl[1]))[2:-2, 2:-2].astype(np.float32)
    corr = np.corrcoef(inner.ravel(), resized.ravel())[0, 1]
    assert corr > 0.9, corr
