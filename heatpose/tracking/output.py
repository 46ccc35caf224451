"""Tracking results as PoseTrack18 json: what ``heatpose track`` writes and ``score`` reads.

One ``images`` entry per frame (``file_name``, ``frame_id``/``id``, ``is_labeled``) and one
``annotations`` entry per tracked person (``track_id``, ``keypoints`` as x, y, 1 triples,
per-joint ``scores``, ``bbox`` x, y, w, h of the box the pose was estimated in, ``score``).
Joints scoring under ``min_joint_score`` are written as (0, 0, 0) = "not predicted": poseval
counts every written joint as a hypothesis, so a joint nobody believes in would only add false
positives to MOTA (it still lowers recall in AP, which is the usual trade-off of PoseTrack entries).
"""

from __future__ import annotations

from dataclasses import dataclass

from heatpose.keypoints import KeypointSchema
from heatpose.tracking.tracker import TrackedPose


@dataclass
class FrameInfo:
    """Where a frame came from: its name in the output and its PoseTrack frame id."""

    file_name: str
    frame_id: int
    width: int
    height: int


def _r(v: float) -> float:
    return round(float(v), 2)


def tracks_to_posetrack(
    frames: list[FrameInfo],
    tracks: list[list[TrackedPose]],
    schema: KeypointSchema,
    min_joint_score: float = 0.4,
    joint_names: tuple[str, ...] | None = None,
) -> dict:
    """The PoseTrack18 results json of one video (``tracks[t]`` = the people of ``frames[t]``)."""
    images, annotations = [], []
    for frame, people in zip(frames, tracks, strict=True):
        images.append(
            {
                "file_name": frame.file_name,
                "id": frame.frame_id,
                "frame_id": frame.frame_id,
                "is_labeled": True,
                "width": frame.width,
                "height": frame.height,
            }
        )
        for k, p in enumerate(people):
            keypoints = []
            for (x, y), s in zip(p.keypoints, p.scores, strict=True):
                keypoints += [_r(x), _r(y), 1] if s >= min_joint_score else [0, 0, 0]
            x0, y0, x1, y1 = (float(v) for v in p.box)
            annotations.append(
                {
                    "image_id": frame.frame_id,
                    "id": frame.frame_id * 100 + k,
                    "category_id": 1,
                    "track_id": int(p.track_id),
                    "keypoints": keypoints,
                    "scores": [round(float(s), 4) for s in p.scores],
                    "score": round(p.score, 4),
                    "bbox": [_r(x0), _r(y0), _r(x1 - x0), _r(y1 - y0)],
                }
            )
    category = {
        "supercategory": "person",
        "id": 1,
        "name": "person",
        "keypoints": list(joint_names or schema.joint_names),
        "skeleton": [[a + 1, b + 1] for a, b in schema.skeleton],
    }
    return {"categories": [category], "images": images, "annotations": annotations}
