"""A zero-download keypoint dataset: procedurally drawn articulated people in COCO format.

Why: tests, tutorials, ablations and benchmarks need a pose dataset that exists without a
download, is byte-for-byte reproducible from a seed, and is hard enough that a heatmap network
has to learn body parts (clutter, distractor sticks, occlusion, truncation, rotation) while
staying learnable by a small network in minutes.

What is drawn
    Each image has a cluttered background (gradient, low-frequency noise, rectangles, circles,
    lines, polygons, noise blobs, striped patches and limb-like distractor sticks) and 1-3 people
    drawn back to front (smaller people first, mostly). A person is a torso, neck, head, ears,
    upper/lower arms, hands, thighs, shins and feet; limbs are shaded, anti-aliased capsules
    with a dark rim (the contour that keeps an arm visible over a shirt of its own colour).
    Proportions, limb thickness, clothing colours and textures (solid / stripes / noise), pose
    (standing, walking, arms raised, waving, crouching, seated), facing, head tilt/yaw and a
    global rotation (mostly within +-30 degrees) are random. Sometimes a foreground occluder
    (box, pole, blob) is drawn over the people. Mild colour jitter, blur and noise, then JPEG
    quality 95.

Left/right cue (decidable from pixels, and consistent with horizontal flips)
    Left and right follow from which way a person faces, as in real photos. 80% face the camera:
    a face (eyes, nose, mouth) under a hair cap, a V-neck and a row of buttons, and their left
    side on the image right. The rest are seen from behind: hair over the whole head, no face,
    a dark collar, and their left side on the image left. Every marking is left/right symmetric
    on purpose: a one-sided marking (say, bands on the left limbs only) turns into a right-side
    marking under flip augmentation and flip testing, so a network could not learn it and flip
    testing would swap joints. Limb textures (solid, noise, stripes) are per person and the same
    on both sides.

Drawing styles (``style=`` / ``heatpose synth --style``)
    ``default`` is everything above, and what the synthetic configs train on. ``flat``
    (:mod:`~heatpose.data.synthetic.flat`) draws the same bodies with another look and another
    rasteriser: flat cel-shaded cartoon colours with ink outlines, spindle limbs with ball
    joints, rounded-square heads, textured backgrounds, supersampled anti-aliasing. Geometry,
    keypoints, flags, boxes and files follow the same rules, so a model trained on ``default``
    can be scored on ``flat`` people it was not drawn for (judging codecs: docs/training.md).

Keypoints and visibility flags (COCO convention)
    Coordinates are float pixels, pixel (i, j) centred at (i, j) (the cv2 / Simple Baselines
    convention). Body joints sit on the limb axes at the joint centres, ``head_top`` just inside
    the top of the head, ``upper_neck`` at the chin end of the neck, ``thorax`` between the
    shoulders, ``pelvis`` between the hips; eyes, nose and ears sit at the drawn features.
    - 0: the joint is outside the image; then x = y = 0.
    - 1: inside the image but its pixel is covered by a person drawn later or by an occluder. The
      nose and eyes of a person seen from behind are also 1, labelled where they would be, because
      COCO labels occluded-but-inferable points.
    - 2: otherwise. A person's own parts never hide its joints (arms are drawn over the torso).

Files written by :func:`write_synthetic_dataset`
    ``images/<split>/000000000001.jpg``..., ``annotations/person_keypoints_<split>.json`` (official
    COCO keypoint format: ``bbox`` is the box of the person's whole drawn silhouette inside the
    image, ``area`` and the RLE ``segmentation`` are its visible part) and, for ``layout="mpii"``,
    ``annotations/mpii_<split>.json``: the official Simple Baselines MPII list format. Like the
    official file it is 1-based (MATLAB): ``joints``, ``center`` and ``headbox`` are the COCO
    coordinates + 1, and the official reader subtracts 1. ``scale`` is the larger side of the
    person's whole (unclipped) extent / 200, ``center`` that extent's centre, ``joints_vis`` is 1
    for every joint inside the image (visible or occluded, as MPII's "annotated"), and joints
    outside the image are ``[-1, -1]``.

Image ``i`` of a split comes from ``np.random.default_rng([seed, crc32(split_name), i])``, so
any image can be regenerated on its own (:func:`render_synthetic_image`), splits written with
the same seed never share images, and the ``coco`` and ``mpii`` layouts of one seed draw the
same pixels. Same seed, same machine: byte-identical files (other CPUs / OpenCV builds may
round a few pixels differently). How hard the data is is set by the constants in ``knobs.py``.

Modules: ``knobs`` (difficulty constants), ``draw`` (capsules, ellipses, polygons into a layer),
``figure`` (body proportions, pose and draw calls of one person), ``flat`` (the ``flat``
style's rasteriser, people and backgrounds), ``scene`` (background, placement,
occluders, flags: :func:`render_synthetic_image`), ``writer`` (:func:`write_synthetic_dataset`),
``output`` (refusing to mix with an existing split), ``video`` (moving people, camera,
detections: :func:`render_synthetic_clip`) and ``video_writer`` (PoseTrack18 files:
:func:`write_synthetic_videos`).
"""

from heatpose.data.synthetic.figure import BODY_JOINTS
from heatpose.data.synthetic.scene import (
    LAYOUTS,
    STYLES,
    SyntheticImage,
    SyntheticPerson,
    render_synthetic_image,
)
from heatpose.data.synthetic.video import SyntheticClip, render_synthetic_clip
from heatpose.data.synthetic.video_writer import write_synthetic_videos
from heatpose.data.synthetic.writer import write_synthetic_dataset

__all__ = [
    "BODY_JOINTS",
    "LAYOUTS",
    "STYLES",
    "SyntheticClip",
    "SyntheticImage",
    "SyntheticPerson",
    "render_synthetic_clip",
    "render_synthetic_image",
    "write_synthetic_dataset",
    "write_synthetic_videos",
]
