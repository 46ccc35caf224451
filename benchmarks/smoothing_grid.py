"""Jitter and keypoint error of One-Euro and Savitzky-Golay smoothing on synthetic clips with GT.

Why: ``heatpose track --smooth`` needs defaults, and they should come from a measurement. The
clips are ``heatpose synth --video``'s generator (people walking, crossing, swinging their limbs,
a panning camera). Each ground-truth track gets what a pose network adds: Gaussian noise of
``--noise`` x the person's head size on every labelled joint and frame (the tracking oracle's
model, ``heatpose/tracking/oracle.py``), plus, with probability ``--outliers``, a joint thrown
``--outlier-size`` head sizes away (a peak on the wrong limb). Tracks come from the GT ids, so
the table measures the smoothing, not the association.

Per setting: **jitter** = mean acceleration magnitude |x[t+1] - 2 x[t] + x[t-1]| (px/frame^2)
and **error** = mean distance to GT (px), over all labelled joints of all tracks
(``heatpose/smoothing.py``). Frames are ``1 / --fps`` seconds apart (``synth --video --mp4``
writes 10 fps); a One-Euro filter restarts when a track skips a frame, as in ``heatpose track``.
The command behind docs/results.md::

    python benchmarks/smoothing_grid.py --clips 8 --frames 40 --noise 0.05 0.1 --fps 10

The defaults are the settings with the lowest error summed over the noise levels.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from heatpose.data.synthetic.video import render_synthetic_clip
from heatpose.smoothing import one_euro_smooth, savgol_smooth

ONE_EURO_GRID = {
    "min_cutoff": (0.5, 1.0, 2.0, 4.0, 8.0),
    "beta": (0.0, 0.05, 0.2, 0.5, 1.0, 2.0),
    "d_cutoff": (1.0,),
}
SAVGOL_GRID = {"window": (5, 7, 9, 11, 15), "polyorder": (1, 2, 3)}


def gt_tracks(args: argparse.Namespace) -> list[tuple[np.ndarray, float]]:
    """Per GT track: (T, K, 2) keypoints over its first..last frame (NaN where unlabelled/absent),
    and its head size (px, mean over frames)."""
    tracks = []
    for i in range(args.clips):
        clip = render_synthetic_clip(args.seed, i, args.frames, (320, 256), "val", "posetrack")
        by_id: dict[int, dict[int, tuple[np.ndarray, float]]] = {}
        for t, people in enumerate(clip.people):
            for p in people:
                kp = p.keypoints[:, :2].astype(np.float64).copy()
                kp[p.keypoints[:, 2] <= 0] = np.nan
                head = 0.6 * float(np.hypot(p.head_box[2], p.head_box[3]))
                by_id.setdefault(p.track_id, {})[t] = (kp, head)
        for frames in by_id.values():
            first, last = min(frames), max(frames)
            k = next(iter(frames.values()))[0].shape[0]
            arr = np.full((last - first + 1, k, 2), np.nan)
            for t, (kp, _) in frames.items():
                arr[t - first] = kp
            if last - first + 1 >= 3:
                tracks.append((arr, float(np.mean([h for _, h in frames.values()]))))
    return tracks


def add_noise(tracks: list, args: argparse.Namespace) -> list[np.ndarray]:
    rng = np.random.default_rng(args.seed + 1)
    noisy = []
    for gt, head in tracks:
        x = gt + rng.normal(0.0, args.noise * head, gt.shape)
        jump = rng.random(gt.shape[:2]) < args.outliers
        direction = rng.normal(size=gt.shape)
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        x[jump] += (args.outlier_size * head * direction)[jump]
        noisy.append(x)
    return noisy


def _acc(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).ravel()


def score(pred: list[np.ndarray], tracks: list) -> tuple[float, float]:
    acc = np.concatenate([_acc(p) for p in pred])
    err = np.concatenate(
        [np.linalg.norm(p - gt, axis=-1).ravel() for p, (gt, _) in zip(pred, tracks, strict=True)]
    )
    return float(np.nanmean(acc)), float(np.nanmean(err))


def run(args: argparse.Namespace) -> list[dict]:
    tracks = gt_tracks(args)
    noisy = add_noise(tracks, args)
    rows = [
        {
            "method": "ground truth",
            "params": "",
            **dict(zip(("jitter", "error"), score([g for g, _ in tracks], tracks), strict=True)),
        }
    ]
    rows.append(
        {
            "method": "none (noisy)",
            "params": "",
            **dict(zip(("jitter", "error"), score(noisy, tracks), strict=True)),
        }
    )
    dt = 1.0 / args.fps
    for mc, beta, dc in itertools.product(*ONE_EURO_GRID.values()):
        out = [one_euro_smooth(x, np.arange(len(x)) * dt, mc, beta, dc, max_gap=1.5 * dt) for x in noisy]
        j, e = score(out, tracks)
        rows.append({"method": "one-euro", "params": f"{mc:g} {beta:g} {dc:g}", "jitter": j, "error": e})
    for window, order in itertools.product(*SAVGOL_GRID.values()):
        if order >= window:
            continue
        out = [savgol_smooth(x, np.arange(len(x)), window, order) for x in noisy]
        j, e = score(out, tracks)
        rows.append({"method": "savgol", "params": f"{window} {order}", "jitter": j, "error": e})
    return rows


def table(rows: list[dict], top: int, chosen: tuple[str, ...] = ()) -> str:
    """Markdown: GT, no smoothing, the ``top`` settings per method by error, and the ``chosen`` ones."""
    base = rows[1]
    lines = ["| method | parameters | jitter px/frame² | error px |", "|---|---|---:|---:|"]
    keep = rows[:2]
    for method in ("one-euro", "savgol"):
        ranked = sorted((r for r in rows if r["method"] == method), key=lambda r: r["error"])
        keep += [r for i, r in enumerate(ranked) if i < top or f"{method} {r['params']}" in chosen]
    for r in keep:
        rel = "" if r is base or r is rows[0] else f" ({100 * (r['error'] / base['error'] - 1):+.0f}%)"
        lines.append(f"| {r['method']} | {r['params']} | {r['jitter']:.2f} | {r['error']:.2f}{rel} |")
    return "\n".join(lines)


def choose(results: dict[float, list[dict]], method: str) -> str:
    """The setting of ``method`` with the lowest summed relative error over all noise levels."""
    total: dict[str, float] = {}
    for rows in results.values():
        base = rows[1]["error"]
        for r in rows:
            if r["method"] == method:
                total[r["params"]] = total.get(r["params"], 0.0) + r["error"] / base - 1
    return min(total, key=total.get)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument(
        "--noise", type=float, nargs="+", default=[0.05, 0.1], help="joint noise, x head size"
    )
    parser.add_argument("--outliers", type=float, default=0.02, help="share of joints thrown far")
    parser.add_argument("--outlier-size", type=float, default=0.5, help="outlier distance, x head size")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=5, help="best settings per method in the table")
    args = parser.parse_args()
    start = time.perf_counter()
    results = {}
    for noise in args.noise:
        results[noise] = run(argparse.Namespace(**{**vars(args), "noise": noise}))
    chosen = tuple(f"{m} {choose(results, m)}" for m in ("one-euro", "savgol"))
    for noise, rows in results.items():
        print(f"\nnoise {noise:g} x head size:\n{table(rows, args.top, chosen)}")
    print(f"\nchosen (lowest error summed over the noise levels): {', '.join(chosen)}")
    print(f"{args.clips} clips x {args.frames} frames, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
