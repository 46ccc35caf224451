"""PoseTrack evaluation as poseval computes it: per-joint AP, and MOTA / MOTP / precision / recall.

What poseval (github.com/leonid-pishchulin/poseval, ``eval_helpers.assignGTmulti`` and
``evaluateTracking.computeMetrics``) does, reproduced here without its dependencies:

- A predicted joint matches a GT joint when their distance is <= 0.5 x the GT person's head size,
  head size = 0.6 x the diagonal of its ``bbox_head``.
- Points inside an ignore region (a polygon of the GT frame) are dropped from both sides; a person
  left with no point is dropped.
- AP: each prediction keeps the GT person it matches most joints of (PCKh share); each GT person
  then takes the prediction with the highest share. A predicted joint is a true positive when its
  person was assigned and the joint matches; AP per joint is the VOC area under the
  precision/recall curve of all predicted joints of all frames, ranked by joint score.
- MOT, per joint and per sequence, with CLEAR-MOT (py-motmetrics ``MOTAccumulator``) events: matches
  of the previous frame are kept while they still match, the rest is a Hungarian assignment on
  the normalised distances (scipy ``linear_sum_assignment``) among pairs within the threshold; a
  GT track matched to a different predicted track than at its last match is an ID switch.
  Misses, switches, false positives, objects and distances are summed over sequences; per joint
  MOTA = 1 - (misses + switches + FP) / objects, MOTP = 1 - sum(distance) / matches,
  precision = matches / (matches + FP), recall = matches / objects; totals are the means over joints.
- With a PoseTrack18 schema the 15 joints poseval knows are scored (the ears are dropped, as its
  converter does); any other schema (e.g. the COCO-17 synthetic clips) is scored on all joints.

Two behaviours of poseval that published numbers depend on are reproduced with
``poseval_compat=True`` (the default, so numbers compare with papers) and fixed with ``False``:

1. The last evaluated frame of every sequence is left out of the MOT metrics
   (``imgidxs[:-1]`` in ``computeMetrics``).
2. In a frame where the predictions or the GT people (after ignore regions) are empty, every
   joint counts exactly one miss and one false positive, whatever the real numbers are.

Also as poseval: frames without any GT person are not evaluated at all in compat mode (predictions
there cost nothing); the corrected mode evaluates every labelled frame, so predictions in an empty
labelled frame are false positives. Distances are summed over match and switch events only (the
motmetrics 1.1 behaviour poseval was written against).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from scipy.optimize import linear_sum_assignment

from heatpose.data.posetrack import PoseTrackFrame, PoseTrackPerson, PoseTrackVideo, read_posetrack
from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_json
from heatpose.keypoints import POSETRACK18

DIST_THRESH = 0.5  # x head size
HEAD_SIZE_FACTOR = 0.6  # x head box diagonal
_NO_POSEVAL_JOINT = ("left_ear", "right_ear")
_SENTINEL = -1  # the track id of poseval's phantom object / hypothesis in a one-sided frame


def points_in_polygons(points: np.ndarray, polygons: list[np.ndarray]) -> np.ndarray:
    """(N,) bool: the point (N, 2) lies inside any polygon (even-odd rule; edges count as outside)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    inside_any = np.zeros(len(points), bool)
    for poly in polygons:
        x, y = points[:, 0][:, None], points[:, 1][:, None]
        x0, y0 = poly[:, 0][None, :], poly[:, 1][None, :]
        x1, y1 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        on_edge = crosses & (x == x_cross)
        inside = (np.sum(crosses & (x < x_cross), axis=1) % 2 == 1) & ~on_edge.any(axis=1)
        inside_any |= inside
    return inside_any


@dataclass
class _People:
    """The people of one side of one frame, restricted to the evaluated joints."""

    track_ids: list[int]
    points: np.ndarray  # (P, J, 2)
    has: np.ndarray  # (P, J) bool
    scores: np.ndarray  # (P, J) joint scores (predictions) or zeros (GT)
    head_sizes: np.ndarray  # (P,) GT only

    def __len__(self) -> int:
        return len(self.track_ids)


def _people(
    people: list[PoseTrackPerson], joints: list[int], regions: list[np.ndarray], is_gt: bool, where: str
) -> _People:
    ids, pts, has, scores, heads = [], [], [], [], []
    for p in people:
        h = p.has_joint[joints]
        xy = p.keypoints[joints, :2]
        if regions and h.any():
            h = h & ~points_in_polygons(xy, regions)
        if not h.any():
            continue
        ids.append(p.track_id)
        pts.append(xy)
        has.append(h)
        if is_gt:
            scores.append(np.zeros(len(joints)))
            if p.head_box is None:
                raise HeatposeError(f"{where}: GT person with track_id {p.track_id} has no bbox_head")
            x1, y1, x2, y2 = p.head_box
            heads.append(HEAD_SIZE_FACTOR * float(np.hypot(x2 - x1, y2 - y1)))
        else:
            s = p.scores if p.scores is not None else p.keypoints[:, 2]
            scores.append(s[joints])
    j = len(joints)
    return _People(
        ids,
        np.asarray(pts, dtype=np.float64).reshape(-1, j, 2),
        np.asarray(has, dtype=bool).reshape(-1, j),
        np.asarray(scores, dtype=np.float64).reshape(-1, j),
        np.asarray(heads, dtype=np.float64),
    )


def _distances(gt: _People, pr: _People) -> np.ndarray:
    """(P_pred, P_gt, J) joint distance / GT head size; inf where either side lacks the joint."""
    d = np.linalg.norm(pr.points[:, None] - gt.points[None], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = d / gt.head_sizes[None, :, None]
    both = pr.has[:, None, :] & gt.has[None, :, :]
    return np.where(both, d, np.inf)


class MotAccumulator:
    """CLEAR-MOT events of one joint over one sequence, as py-motmetrics' ``MOTAccumulator``."""

    def __init__(self) -> None:
        self.last_match: dict[int, int] = {}  # GT track -> predicted track of its last match
        self.matches = self.switches = self.misses = self.false_positives = self.objects = 0
        self.distance_sum = 0.0

    def update(self, gt_ids: list[int], pr_ids: list[int], dist: np.ndarray) -> None:
        """``dist`` (len(gt_ids), len(pr_ids)) with NaN for pairs that may not match."""
        dist = np.asarray(dist, dtype=np.float64).reshape(len(gt_ids), len(pr_ids)).copy()
        gt_done = np.zeros(len(gt_ids), bool)
        pr_done = np.zeros(len(pr_ids), bool)
        self.objects += len(gt_ids)
        if len(gt_ids) and len(pr_ids):
            for i, o in enumerate(gt_ids):  # 1. keep the previous pairings that still match
                if o not in self.last_match:
                    continue
                js = [j for j, h in enumerate(pr_ids) if h == self.last_match[o] and not pr_done[j]]
                if js and np.isfinite(dist[i, js[0]]):
                    gt_done[i] = pr_done[js[0]] = True
                    self.matches += 1
                    self.distance_sum += dist[i, js[0]]
            rest = dist.copy()  # 2. Hungarian assignment of the rest
            rest[gt_done, :] = np.nan
            rest[:, pr_done] = np.nan
            finite = np.isfinite(rest)
            if finite.any():
                big = 1.0 + 2.0 * np.nanmax(np.abs(rest)) * rest.size
                rows, cols = linear_sum_assignment(np.where(finite, rest, big))
                for i, j in zip(rows, cols, strict=True):
                    if not finite[i, j]:
                        continue
                    o, h = gt_ids[i], pr_ids[j]
                    if o in self.last_match and self.last_match[o] != h:
                        self.switches += 1
                    else:
                        self.matches += 1
                    self.distance_sum += rest[i, j]
                    self.last_match[o] = h
                    gt_done[i] = pr_done[j] = True
        self.misses += int((~gt_done).sum())  # 3. and 4.
        self.false_positives += int((~pr_done).sum())


def _frames_to_score(video: PoseTrackVideo, compat: bool) -> list[PoseTrackFrame]:
    if compat:  # poseval's cleanupData: only frames with a GT person that has a point
        return [f for f in video.frames if any(p.has_joint.any() for p in f.people)]
    return [f for f in video.frames if f.is_labeled or f.people]


def _eval_joints(names: tuple[str, ...]) -> list[int]:
    if names == POSETRACK18.joint_names:
        return [i for i, n in enumerate(names) if n not in _NO_POSEVAL_JOINT]
    return list(range(len(names)))


def _voc_ap(scores: np.ndarray, labels: np.ndarray, num_gt: float) -> float:
    """VOC area under the precision/recall curve (poseval's computeRPC + VOCap)."""
    if num_gt <= 0:
        return float("nan")
    if scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(labels[order])
    recall = tp / num_gt
    precision = tp / np.arange(1, len(tp) + 1)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))


def _ap_labels(gt: _People, pr: _People, match: np.ndarray, pck_ok: bool) -> np.ndarray:
    """(P_pred, J) true-positive labels of predicted joints after poseval's person assignment."""
    labels = np.zeros(pr.has.shape, bool)
    if not pck_ok:
        return labels
    n_gt = gt.has.sum(axis=1)
    pck = match.sum(axis=2) / np.maximum(n_gt, 1)[None, :]  # (P_pred, P_gt)
    best = np.argmax(pck, axis=1)
    keep = np.zeros_like(pck)
    keep[np.arange(len(best)), best] = pck[np.arange(len(best)), best]
    pr_of_gt = np.argmax(keep, axis=0)
    pr_of_gt[keep.max(axis=0) == 0] = -1
    for g, p in enumerate(pr_of_gt):
        if p >= 0:
            labels[p] = match[p, g]
    return labels


def evaluate_posetrack(
    gt_videos: list[PoseTrackVideo], pred_videos: list[PoseTrackVideo], poseval_compat: bool = True
) -> dict:
    """Per-joint AP and MOT metrics of tracking results against PoseTrack ground truth (in %)."""
    if not gt_videos:
        raise HeatposeError("the ground truth holds no video")
    names = gt_videos[0].joint_names
    for v in [*gt_videos, *pred_videos]:
        if v.joint_names != names:
            raise HeatposeError(
                f"{v.source}: keypoints {list(v.joint_names)} differ from the ground truth's {list(names)}"
            )
    joints = _eval_joints(names)
    nj = len(joints)
    predictions: dict[str, PoseTrackFrame] = {}
    for v in pred_videos:
        for f in v.frames:
            predictions[f.key] = f
    ap_scores: list[list[np.ndarray]] = [[] for _ in range(nj)]
    ap_labels: list[list[np.ndarray]] = [[] for _ in range(nj)]
    num_gt = np.zeros(nj)
    totals = {k: np.zeros(nj) for k in ("matches", "switches", "misses", "false_positives", "objects")}
    dist_sum = np.zeros(nj)
    num_frames = 0
    for video in gt_videos:
        if not any(f.key in predictions for f in video.frames):
            raise HeatposeError(
                f"no predictions for video {video.name} of {video.source} (results are matched by "
                f"'<video folder>/<image file>', e.g. {video.frames[0].key}); poseval needs one per video"
            )
        frames = _frames_to_score(video, poseval_compat)
        accs = [MotAccumulator() for _ in range(nj)]
        for t, frame in enumerate(frames):
            where = f"{video.source}: {frame.file_name}"
            gt = _people(frame.people, joints, frame.ignore_regions, True, where)
            pred_frame = predictions.get(frame.key)
            pr = _people(pred_frame.people if pred_frame else [], joints, frame.ignore_regions, False, where)
            num_frames += 1
            num_gt += gt.has.sum(axis=0)
            both = len(gt) > 0 and len(pr) > 0
            dist = _distances(gt, pr) if both else np.full((len(pr), len(gt), nj), np.inf)
            match = dist <= DIST_THRESH
            labels = _ap_labels(gt, pr, match, both)
            for j in range(nj):
                ap_scores[j].append(pr.scores[pr.has[:, j], j])
                ap_labels[j].append(labels[pr.has[:, j], j])
            if poseval_compat and t == len(frames) - 1:
                continue  # quirk 1: the last frame of a sequence is not scored for MOT
            for j in range(nj):
                if poseval_compat and not both:  # quirk 2: one miss and one FP per joint
                    accs[j].update([_SENTINEL], [_SENTINEL], np.full((1, 1), np.nan))
                    continue
                g_idx, p_idx = np.nonzero(gt.has[:, j])[0], np.nonzero(pr.has[:, j])[0]
                d = np.full((len(g_idx), len(p_idx)), np.nan)
                if both:
                    sub = dist[np.ix_(p_idx, g_idx, [j])][..., 0].T
                    d = np.where(sub <= DIST_THRESH, sub, np.nan)
                accs[j].update([gt.track_ids[i] for i in g_idx], [pr.track_ids[i] for i in p_idx], d)
        for j, acc in enumerate(accs):
            for key in totals:
                totals[key][j] += getattr(acc, key)
            dist_sum[j] += acc.distance_sum
    return _summarise(
        names, joints, ap_scores, ap_labels, num_gt, totals, dist_sum, poseval_compat, num_frames
    )


def _summarise(names, joints, ap_scores, ap_labels, num_gt, totals, dist_sum, compat, num_frames) -> dict:
    detected = totals["matches"] + totals["switches"]
    with np.errstate(divide="ignore", invalid="ignore"):
        objects = np.where(totals["objects"] > 0, totals["objects"], np.nan)
        errors = totals["misses"] + totals["switches"] + totals["false_positives"]
        mota = 100 * (1 - errors / objects)
        motp = np.where(detected > 0, 100 * (1 - dist_sum / np.maximum(detected, 1)), 0.0)
        fp_det = detected + totals["false_positives"]
        precision = 100 * detected / np.where(fp_det > 0, fp_det, np.nan)
        recall = 100 * detected / objects
    ap = np.array(
        [
            100 * _voc_ap(np.concatenate(s), np.concatenate(lab).astype(float), n)
            for s, lab, n in zip(ap_scores, ap_labels, num_gt, strict=True)
        ]
    )
    jn = [names[j] for j in joints]

    def per_joint(values: np.ndarray) -> dict[str, float | None]:
        return {n: (None if np.isnan(v) else round(float(v), 4)) for n, v in zip(jn, values, strict=True)}

    def mean(values: np.ndarray) -> float | None:
        ok = values[~np.isnan(values)]
        return round(float(ok.mean()), 4) if ok.size else None

    return {
        "mode": "poseval-compat" if compat else "corrected",
        "joints": jn,
        "AP": mean(ap),
        "MOTA": mean(mota),
        "MOTP": mean(motp),
        "precision": mean(precision),
        "recall": mean(recall),
        "ap": per_joint(ap),
        "mota": per_joint(mota),
        "motp": per_joint(motp),
        "pre": per_joint(precision),
        "rec": per_joint(recall),
        "num_switches": int(totals["switches"].sum()),
        "num_misses": int(totals["misses"].sum()),
        "num_false_positives": int(totals["false_positives"].sum()),
        "num_objects": int(totals["objects"].sum()),
        "num_matches": int(totals["matches"].sum()),
        "num_frames": num_frames,
    }


def format_posetrack_table(stats: dict) -> str:
    def cell(v: float | None) -> str:
        return "  n/a" if v is None else f"{v:5.1f}"

    lines = [f"{'joint':<16} {'AP':>5} {'MOTA':>5} {'MOTP':>5} {'Prec':>5} {'Rec':>5}"]
    for n in stats["joints"]:
        row = [stats[k][n] for k in ("ap", "mota", "motp", "pre", "rec")]
        lines.append(f"{n:<16} " + " ".join(cell(v) for v in row))
    total = [stats[k] for k in ("AP", "MOTA", "MOTP", "precision", "recall")]
    lines.append(f"{'total':<16} " + " ".join(cell(v) for v in total))
    lines.append(
        f"({stats['mode']}; {stats['num_frames']} frames; switches {stats['num_switches']}, "
        f"misses {stats['num_misses']}, false positives {stats['num_false_positives']}, "
        f"objects {stats['num_objects']}, summed over joints)"
    )
    return "\n".join(lines)


def score_posetrack_command(
    gt_path: str,
    preds_path: str,
    poseval_compat: bool = True,
    as_json: bool = False,
    out: TextIO | None = None,
    out_dir: str | None = None,
) -> int:
    """``heatpose score --metric posetrack --gt GT --preds TRACKS [--out DIR]``: print the table (and
    write the metrics to ``DIR/posetrack.json``), return 0."""
    out = sys.stdout if out is None else out
    stats = evaluate_posetrack(read_posetrack(gt_path), read_posetrack(preds_path), poseval_compat)
    if out_dir is not None:
        atomic_write_json(Path(out_dir) / "posetrack.json", stats, indent=2)
    if as_json:
        out.write(json.dumps(stats) + "\n")
    else:
        out.write(f"PoseTrack evaluation of {preds_path} against {gt_path}\n")
        out.write(format_posetrack_table(stats) + "\n")
    return 0
