"""Difficulty knobs of the synthetic data: what a network trained on it has to cope with.

Calibrated so that the laptop config (configs/synthetic/res18_128x96_*) is neither at its ceiling
nor hopeless after 15 minutes of CPU training; docs/results.md records what each setting measured.
Changing any value changes every generated image.
"""

from __future__ import annotations

import numpy as np

PEOPLE_PER_IMAGE = {1: 0.5, 2: 0.3, 3: 0.2}
HEIGHT_RANGE = (0.4, 0.9)  # person standing height / image height
P_FRONT = 0.8  # faces the camera; else seen from behind
P_UPRIGHT = 0.97  # rotated N(0, 10) deg clipped to +-30; else uniform in +-90
P_OCCLUDER = 0.1  # images with 1-2 foreground occluders
CLUTTER_SHAPES = (4, 12)  # [low, high) background shapes per image
DISTRACTOR_STICKS = (0, 3)  # [low, high) limb-like sticks per image
MIN_VISIBLE_AREA = 0.5  # each person keeps this fraction of its in-image silhouette visible
MIN_VISIBLE_JOINTS = 0.7  # ... and this fraction of its in-image joints visible
MIN_JOINTS_IN_FRAME = 0.6  # fraction of a person's joints inside the image
RIM_PX = 1.5  # width of the dark contour drawn along every limb
SKIN_TONES = np.array(
    [[0.71, 0.82, 0.96], [0.55, 0.69, 0.87], [0.42, 0.57, 0.76], [0.30, 0.42, 0.60], [0.20, 0.29, 0.43]],
    np.float32,
)  # BGR
