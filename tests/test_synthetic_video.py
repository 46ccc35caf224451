"""Synthetic tracking clips: reproducible, annotations consistent with the pixels and the format."""

from __future__ import annotations

import numpy as np

from heatpose.data.synthetic import render_synthetic_clip
from heatpose.data.synthetic.video import simulate_detections
from heatpose.data.synthetic.video_writer import clip_to_posetrack, frame_id
from heatpose.keypoints import COCO17, POSETRACK18

SIZE = (160, 128)


def test_same_key_same_clip_other_index_differs():
    a, b = render_synthetic_clip(0, 1, 6, SIZE), render_synthetic_clip(0, 1, 6, SIZE)
    c = render_synthetic_clip(0, 2, 6, SIZE)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    assert not np.array_equal(a.frames[0], c.frames[0])
    coco = render_synthetic_clip(0, 1, 6, SIZE, layout="coco")  # layouts draw the same pixels
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, coco.frames, strict=True))


def test_annotations_are_consistent():
    for index in range(4):
        clip = render_synthetic_clip(3, index, 12, SIZE, layout="posetrack")
        h, w = clip.frames[0].shape[:2]
        for people in clip.people:
            ids = [p.track_id for p in people]
            assert len(ids) == len(set(ids))
            for p in people:
                labelled = p.keypoints[:, 2] > 0
                assert labelled.sum() >= 2 and set(np.unique(p.keypoints[:, 2])) <= {0, 1}
                xy = p.keypoints[labelled, :2]
                assert (xy >= 0).all() and (xy[:, 0] <= w - 1).all() and (xy[:, 1] <= h - 1).all()
                assert (p.keypoints[~labelled] == 0).all()
                x, y, bw, bh = p.bbox
                assert bw > 0 and bh > 0 and 0.15 <= p.visible_share <= 1.0
                hx, hy, hw, hh = p.head_box
                assert hw > 0 and hh > 0
                if (
                    hx >= 0 and hy >= 0 and hx + hw <= w and hy + hh <= h
                ):  # a head in the frame is on the person
                    assert x <= hx + hw / 2 <= x + bw and y <= hy + hh / 2 <= y + bh


def test_people_move_hide_and_come_back_with_their_id():
    clip = render_synthetic_clip(0, 3, 24, (320, 256))
    present = {t: {p.track_id for p in people} for t, people in enumerate(clip.people)}
    ids = set().union(*present.values())
    seen = {i: [t for t in present if i in present[t]] for i in ids}
    gaps = [i for i, ts in seen.items() if len(ts) < ts[-1] - ts[0] + 1]
    assert len(ids) == 4 and gaps  # someone is hidden, then seen again
    first = {p.track_id: p.bbox for p in clip.people[0]}
    last = {p.track_id: p.bbox for p in clip.people[-1]}
    moved = [abs(first[i][0] - last[i][0]) for i in first.keys() & last.keys()]
    assert moved and max(moved) > 10


def test_posetrack_json_and_detections():
    clip = render_synthetic_clip(0, 0, 5, SIZE, layout="coco")
    gt = clip_to_posetrack(clip, 7, "val", COCO17)
    assert (
        [im["frame_id"] for im in gt["images"]]
        == [frame_id(7, t) for t in range(5)]
        == [10_000_070_000 + t for t in range(5)]
    )
    assert gt["images"][0]["file_name"] == "images/val/000007_synthetic/000000.jpg"
    assert gt["categories"][0]["keypoints"] == list(COCO17.joint_names)
    assert len(gt["annotations"]) == sum(len(p) for p in clip.people)
    ann = gt["annotations"][0]
    assert {"bbox_head", "keypoints", "track_id", "image_id", "bbox", "id"} <= ann.keys()
    pt = clip_to_posetrack(render_synthetic_clip(0, 0, 5, SIZE), 7, "val", POSETRACK18)
    assert pt["categories"][0]["keypoints"][:3] == ["nose", "head_bottom", "head_top"]
    many = render_synthetic_clip(1, 0, 40, SIZE)
    dets = simulate_detections(many, np.random.default_rng(0), miss_rate=0.2, false_rate=1.0)
    found = sum(len(d) for d in dets)
    people = sum(len(p) for p in many.people)
    assert all(0 <= s <= 1 for d in dets for _, s in d)
    assert found != people  # misses and false positives both happen at these rates
    assert sum(s < 0.5 for d in dets for _, s in d) > 0
