"""Heatmap pictures: the overlay lands where the heatmap peak maps back to in the image."""

from __future__ import annotations

import numpy as np
import pytest

from heatpose.codec import HeatmapCodec
from heatpose.data.transforms import apply_affine, get_affine_transform
from heatpose.errors import HeatposeError
from heatpose.heatmap_vis import crop_heatmap_picture, overlay_heatmaps


@pytest.mark.parametrize("udp", [False, True])
def test_overlay_peak_is_at_the_decoded_keypoint(udp):
    codec = HeatmapCodec((48, 64), (12, 16), sigma=1.5, subpixel=True, udp=udp)
    center, scale = np.array([60.0, 50.0]), np.array([0.3, 0.4])
    image_pt = np.array([[66.0, 40.0]])
    crop_pt = apply_affine(image_pt, get_affine_transform(center, scale, 0.0, (48, 64), udp=udp))
    target, _ = codec.encode(np.repeat(crop_pt, 2, axis=0), np.array([1, 0]))
    image = np.full((120, 140, 3), 128, np.uint8)
    out = overlay_heatmaps(image, target[None], center[None], scale[None], udp=udp)
    changed = np.abs(out.astype(int) - image).sum(axis=2)
    y, x = np.unravel_index(changed.argmax(), changed.shape)
    assert abs(x - 66) <= 2 and abs(y - 40) <= 2
    assert changed[0, 0] == 0  # far from the person nothing is drawn
    one = overlay_heatmaps(image, target[None], center[None], scale[None], joint=1, udp=udp)
    np.testing.assert_array_equal(one, image)  # joint 1 has an empty map
    with pytest.raises(HeatposeError, match="out of range"):
        overlay_heatmaps(image, target[None], center[None], scale[None], joint=5)


def test_crop_picture_shows_crop_and_overlay_side_by_side():
    crop = np.zeros((64, 48, 3), np.uint8)
    hm = np.zeros((3, 16, 12), np.float32)
    hm[2, 8, 6] = 1.0
    pic = crop_heatmap_picture(crop, hm)
    assert pic.shape == (64, 96, 3)
    np.testing.assert_array_equal(pic[:, :48], crop)
    assert pic[:, 48:].max() > 0
