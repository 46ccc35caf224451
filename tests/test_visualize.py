"""Pose drawings: box labels stay inside the picture, readable, and off each other."""

from __future__ import annotations

import numpy as np

from heatpose.visualize import _draw_label


def test_labels_stay_inside_the_picture_and_do_not_cover_each_other():
    canvas = np.zeros((200, 300, 3), np.uint8)
    placed: list[tuple[int, int, int, int]] = []
    # three people whose boxes start at nearly the same corner near the right edge
    for x, y in ((260.0, 60.0), (262.0, 62.0), (258.0, 58.0)):
        placed.append(_draw_label(canvas, "pose 0.45, box 0.99", x, y, 1, placed))
    for x0, y0, x1, y1 in placed:
        assert 0 <= x0 < x1 <= 300 and 0 <= y0 < y1 <= 200  # shifted left and kept inside
    for i, a in enumerate(placed):
        for b in placed[i + 1 :]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, (a, b)
    assert canvas.any()


def test_a_label_wider_than_a_small_picture_is_shrunk_to_fit():
    canvas = np.zeros((96, 96, 3), np.uint8)
    x0, y0, x1, y1 = _draw_label(canvas, "pose 0.39, box 1.00", 0.0, 0.0, 1, [])
    assert x1 - x0 <= 0.95 * 96  # about 130 px wide at the normal size
    assert x0 >= 0 and x1 <= 96 and y0 >= 0 and y1 <= 96  # inside the top of a box at the edge
    assert canvas[: y1 + 1].any() and not canvas[y1 + 2 :].any()
