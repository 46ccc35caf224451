"""``heatpose`` command line: synth | train | eval | score | track | demo | reproduce | predict | ...

Subcommands also: export, bench, convert, browse.

Each subcommand is a thin layer over a library function; a :class:`HeatposeError` becomes one
line on stderr and exit status 2, so users never see a traceback for their own mistakes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from heatpose.allocator import keep_freed_memory
from heatpose.errors import HeatposeError


def _synth(args: argparse.Namespace) -> int:
    from heatpose.data.synthetic import write_synthetic_dataset, write_synthetic_videos

    if args.keypoints and (args.video or (args.layout or "coco") != "coco"):
        raise HeatposeError(
            "synth --keypoints remaps COCO-layout still images (not --video or --layout mpii)"
        )
    if args.video and args.style != "default":
        raise HeatposeError("synth --style draws still images only (not --video)")
    if args.video:
        summary = write_synthetic_videos(
            args.out_dir,
            num_videos=args.num_videos,
            seed=args.seed,
            num_frames=args.frames,
            image_size=(args.width, args.height),
            split_name=args.split,
            layout=args.layout or "posetrack",
            progress=not args.quiet,
            overwrite=args.overwrite,
            mp4=args.mp4,
        )
        print(
            f"wrote {summary['num_videos']} clips, {summary['num_frames']} frames, "
            f"{summary['num_people']} person-frames to {args.out_dir}"
        )
        return 0
    summary = write_synthetic_dataset(
        args.out_dir,
        num_images=args.num_images,
        seed=args.seed,
        layout=args.layout or "coco",
        image_size=(args.width, args.height),
        split_name=args.split,
        progress=not args.quiet,
        overwrite=args.overwrite,
        style=args.style,
    )
    print(f"wrote {summary.get('num_images')} images, {summary.get('num_people')} people to {args.out_dir}")
    if args.keypoints:  # a custom keypoint set: subset / rename / reorder the joints (data/remap.py)
        from heatpose.data.remap import remap_synthetic_split

        ann, schema = remap_synthetic_split(args.out_dir, args.split, args.keypoints)
        print(f"remapped {ann} to the joints of {args.keypoints}; schema file for data.schema: {schema}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from heatpose.config import load_config

    overrides = [*args.set, f"model.init_from={args.init_from}"] if args.init_from else args.set
    cfg = load_config(args.config, overrides)  # before importing torch: a bad config fails fast
    from heatpose.engine.train import train

    work_dir = args.work_dir or str(Path("work_dirs") / Path(args.config).stem)
    train(cfg, work_dir, resume=args.resume)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from heatpose.config import load_config

    cfg = load_config(args.config, args.set)
    from heatpose.engine.evaluate import evaluate

    evaluate(cfg, args.checkpoint, boxes=args.boxes, flip=args.flip, out_dir=args.out_dir)
    return 0


def _score(args: argparse.Namespace) -> int:
    if args.metric == "pckh":
        from heatpose.evaluation.pckh_score import score_pckh_command

        return score_pckh_command(
            args.gt, args.preds, as_json=args.json, out_dir=args.out, protocol=args.protocol
        )
    if args.metric == "posetrack":
        from heatpose.evaluation.posetrack import score_posetrack_command

        return score_posetrack_command(
            args.gt, args.preds, args.poseval_compat, as_json=args.json, out_dir=args.out
        )
    if args.metric != "coco":
        from heatpose.evaluation.keypoint_metrics import keypoint_metric_command

        return keypoint_metric_command(
            args.gt, args.preds, args.metric, thr=args.thr, norm=args.norm, auc_px=args.auc_norm,
            auc_steps=args.auc_steps, as_json=args.json, plot=args.plot,
        )  # fmt: skip
    from heatpose.evaluation.coco import score_command
    from heatpose.schema_io import sigmas_for_ground_truth

    sigmas, info = sigmas_for_ground_truth(args.gt, args.schema)
    if info is not None:  # a custom keypoint set: say which sigmas AP uses
        print(info.describe(), file=sys.stderr)
    return score_command(args.gt, args.preds, as_json=args.json, sigmas=sigmas, category=args.category)


def _convert(args: argparse.Namespace) -> int:
    from heatpose.convert import convert_command

    return convert_command(args.tool, args.input, args.out, args.schema)


def _browse(args: argparse.Namespace) -> int:
    from heatpose.browse import browse_command

    browse_command(args.config, args.set, args.split, args.num, args.out)
    return 0


def _track(args: argparse.Namespace) -> int:
    from heatpose.tracking.run import track_command

    return track_command(args)


def _predict(args: argparse.Namespace) -> int:
    from heatpose.predict import predict_command

    return predict_command(
        args.inputs,
        args.checkpoint,
        config=args.config,
        overrides=tuple(args.set),
        boxes=args.boxes,
        detector=args.detector,
        whole_image=args.whole_image,
        det_score_thr=args.det_score_thr,
        out=args.out,
        vis_dir=args.vis,
        backend=args.backend,
        precision=args.precision,
        flip=args.flip,
        score_thr=args.score_thr,
        progress=not args.quiet,
        csv_path=args.csv,
        jsonl_path=args.jsonl,
        kpt_thr=args.kpt_thr,
        draw_heatmaps=args.draw_heatmaps,
        heatmap_joint=args.heatmap_joint,
        camera=args.camera,
        max_fps=args.max_fps,
        show=args.show,
    )


def _export(args: argparse.Namespace) -> int:
    from heatpose.export import export_command

    size = tuple(args.input_size) if args.input_size else None
    return export_command(args.checkpoint, args.out, args.config, tuple(args.set), size, args.opset)


def _bench(args: argparse.Namespace) -> int:
    from heatpose.bench import bench_command

    return bench_command(
        checkpoint=args.checkpoint,
        config=args.config,
        overrides=tuple(args.set),
        batches=args.batch,
        backends=args.backends,
        iters=args.iters,
        device=args.device,
        out=args.out,
    )


def _add_table_args(p: argparse.ArgumentParser) -> None:
    """``--csv``, ``--jsonl``, ``--kpt-thr`` of predict and track (heatpose/video_tables.py)."""
    p.add_argument("--csv", default=None, metavar="OUT.csv", help="per-frame table: one row per frame+person")
    p.add_argument("--jsonl", default=None, metavar="OUT.jsonl", help="one json object per frame, streamed")
    p.add_argument(
        "--kpt-thr",
        type=float,
        default=None,
        metavar="T",
        help="joints scoring below T: blank in the csv, hidden in drawings (the json keeps them)",
    )


def _add_predict_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="poses in images, folders and videos (COCO results json, pictures)")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders, videos (mp4/avi)")
    live = p.add_mutually_exclusive_group()
    live.add_argument(
        "--camera", default=None, metavar="N", help="live input from camera N (instead of INPUT)"
    )
    live.add_argument(
        "--source",
        dest="camera",
        default=None,
        metavar="URL",
        help="live input from an OpenCV capture URL/device",
    )
    p.add_argument(
        "--max-fps", type=float, default=None, help="live input: process at most this many frames/s"
    )
    p.add_argument("--show", action="store_true", help="live input: show the drawn frames in a window")
    p.add_argument(
        "--checkpoint", required=True, help="heatpose .pth, foreign .pth(.tar) with --config, or .onnx"
    )
    p.add_argument("--config", default=None, help="recipe config; required for foreign checkpoints")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    boxes = p.add_mutually_exclusive_group()
    boxes.add_argument("--boxes", default=None, metavar="DETS.json", help="COCO detection-results json")
    boxes.add_argument(
        "--detector",
        default=None,
        metavar="hog|MODEL.onnx",
        help="OpenCV HOG people detector (the default) or a YOLOX/RTMDet ONNX detector",
    )
    boxes.add_argument("--whole-image", action="store_true", help="the whole image is one person")
    p.add_argument("--det-score-thr", type=float, default=0.5, help="detection score threshold (--boxes)")
    p.add_argument("--out", default=None, help="COCO keypoint results json")
    p.add_argument("--vis", default=None, metavar="OUT_DIR", help="draw skeletons into pictures/videos here")
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None, help="flip test")
    p.add_argument("--score-thr", type=float, default=0.3, help="joints below this are drawn faded")
    _add_table_args(p)
    p.add_argument("--draw-heatmaps", action="store_true", help="--vis: blend each person's heatmaps in")
    p.add_argument("--heatmap-joint", default=None, metavar="NAME", help="one joint's heatmap (default: max)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_predict)

    p = sub.add_parser("export", help="export a checkpoint to ONNX (BN folded, metadata, parity check)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="model.onnx")
    p.add_argument("--config", default=None, help="recipe config; required for foreign checkpoints")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("W", "H"), default=None)
    p.add_argument("--opset", type=int, default=17)
    p.set_defaults(func=_export)

    p = sub.add_parser("bench", help="inference speed against this machine's matmul peak")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--config", default=None, help="model from a config (random weights)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8, 16])
    p.add_argument(
        "--backends",
        nargs="+",
        default=None,
        help="paths to time (default: all available; what each is: docs/benchmarks.md)",
    )
    p.add_argument("--iters", type=int, default=5, help="timed forward passes per path and batch size")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", default=None, help="also write the measurements as json")
    p.set_defaults(func=_bench)


def _demo(args: argparse.Namespace) -> int:
    from heatpose.demo import run_demo

    run_demo(args.out, preset_name=args.preset, minutes=args.minutes, checkpoint=args.checkpoint)
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from heatpose.reproduce import reproduce

    reproduce(
        args.table,
        args.out or f"reproduce_{args.table}",
        args.minutes_per_row,
        only=args.rows,
        size=args.size,
        checkpoint=args.checkpoint,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heatpose", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a procedural synthetic-people dataset in COCO format")
    p.add_argument("out_dir")
    p.add_argument("--num-images", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--layout",
        choices=("coco", "mpii", "posetrack"),
        default=None,
        help="joints written: coco (default for images) | mpii (images) | posetrack (default for --video)",
    )
    p.add_argument("--split", default="train", help="split name used in file names (train, val, ...)")
    p.add_argument(
        "--style", choices=("default", "flat"), default="default",
        help="how people are drawn: default (the training look) | flat (cartoon people, another rasteriser; "
        "same keypoint rules): to judge models on people not drawn like their training data",
    )  # fmt: skip
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace a split that already exists in OUT_DIR")
    p.add_argument(
        "--video", action="store_true", help="write tracking clips in PoseTrack18 format instead of stills"
    )
    p.add_argument("--num-videos", type=int, default=4, help="clips to write with --video")
    p.add_argument("--frames", type=int, default=24, help="frames per clip with --video")
    p.add_argument("--mp4", action="store_true", help="with --video: also write videos/<split>/<clip>.mp4")
    p.add_argument(
        "--keypoints", default=None, metavar="SUBSET.yaml",
        help="write the people with a subset/renaming of the joints (new name: source joint; layout coco)",
    )  # fmt: skip
    p.set_defaults(func=_synth)

    p = sub.add_parser("train", help="train a model from a YAML experiment config")
    p.add_argument("config")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.lr=1e-4"
    )
    p.add_argument("--work-dir", default=None, help="default: work_dirs/<config name>")
    p.add_argument("--resume", action="store_true", help="continue from WORK_DIR/latest.pth")
    p.add_argument(
        "--init-from",
        default=None,
        metavar="CKPT",
        help="start from a trained CFA (fewer stages) or SimpleBaseline checkpoint (model.init_from)",
    )
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on the config's validation set")
    p.add_argument("config")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--boxes", default=None, help="'gt' or a COCO detection-results json (default: test.boxes)"
    )
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None, help="flip test")
    p.add_argument("--out-dir", default=None)
    p.set_defaults(func=_eval)

    p = sub.add_parser(
        "score",
        help="score predictions against GT: COCO keypoint AP/AR, PCKh (MPII, LIP), PCK/AUC/EPE or PoseTrack",
        description="Score a predictions file against ground truth. All coordinates are 0-based pixels "
        "(pixel (i, j) centred at (i, j)); MPII's 1-based files are converted on reading.",
    )
    p.add_argument(
        "--metric",
        choices=("coco", "pckh", "pck", "auc", "epe", "posetrack"),
        default="coco",
        help="coco: keypoint AP/AR; pckh: MPII/LIP PCKh as the official evaluation; pck/auc/epe: MMPose's "
        "definitions, for any keypoint set; posetrack: poseval's per-joint AP and MOTA (GT/preds: json or "
        "folder)",
    )
    p.add_argument(
        "--gt",
        required=True,
        help="coco: person_keypoints_*.json; pckh: MPII valid.h5 | annot json list | gt_valid.mat, "
        "or LIP lip_val_set.csv; posetrack: a GT json or folder of them",
    )
    p.add_argument(
        "--preds",
        required=True,
        help="coco: keypoint results json; pckh: JSON list [{image, joints: [[x, y]...], scores}] in "
        "annotation order, or .npy (N, K, 2), 0-based pixels; posetrack: tracks json or folder",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--category",
        default="",
        help="coco: GT keypoint category to score (name or id; default: the only one, or person)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="pckh: write pckh.json and the curve / per-joint PNGs here; posetrack: posetrack.json here",
    )
    p.add_argument(
        "--protocol",
        choices=("official", "matlab"),
        default="official",
        help="pckh columns: official (Simple Baselines/HRNet) or matlab (MPII toolkit: Head = neck and "
        "head top, Total pooled)",
    )
    p.add_argument(
        "--poseval-compat",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="posetrack: reproduce poseval's two quirks (default; see docs/tracking.md)",
    )
    p.add_argument("--thr", type=float, default=0.05, help="PCK threshold (MMPose default 0.05)")
    p.add_argument("--norm", default="bbox", help="PCK normaliser: bbox (max(w, h)) or two joint names A,B")
    p.add_argument("--auc-norm", type=float, default=30.0, help="AUC normaliser in pixels (MMPose: 30)")
    p.add_argument("--auc-steps", type=int, default=20, help="AUC thresholds (MMPose: 20)")
    p.add_argument("--plot", default=None, metavar="PNG", help="pck/auc/epe: write a per-joint bar chart")
    p.add_argument(
        "--schema", default=None,
        help="coco: OKS sigmas of this schema (name or file); default: COCO-17's or the GT category's",
    )  # fmt: skip
    p.set_defaults(func=_score)
    _add_predict_parsers(sub)

    p = sub.add_parser("convert", help="convert a labelme / CVAT / Label Studio export to COCO keypoints")
    p.add_argument("--from", dest="tool", required=True, choices=("labelme", "cvat-xml", "label-studio"))
    p.add_argument(
        "input", help="labelme json or directory of them; CVAT for images 1.1 xml; Label Studio json"
    )
    p.add_argument("--out", required=True, help="COCO keypoints json to write")
    p.add_argument("--schema", default=None, help="schema yaml/json: joint order (keypoints), skeleton, name")
    p.set_defaults(func=_convert)

    p = sub.add_parser("browse", help="draw augmented training samples and a data summary, with warnings")
    p.add_argument("config")
    p.add_argument("--split", choices=("train", "val"), default="train")
    p.add_argument("--num", type=int, default=8, help="samples to draw")
    p.add_argument("--out", default=None, help="default: browse_<config name>_<split>/")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_browse)

    p = sub.add_parser("track", help="track people's poses through a video (PoseTrack18 json out)")
    p.add_argument("input", nargs="+", help="a video file or a folder of frames (several: --out is a folder)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--config", default=None, help="recipe config (needed for non-heatpose checkpoints)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    boxes = p.add_mutually_exclusive_group(required=True)
    boxes.add_argument(
        "--boxes", default=None, help="person detections json (COCO results, image_id = frame id)"
    )
    boxes.add_argument(
        "--detector",
        default=None,
        metavar="hog|MODEL.onnx",
        help="detect people with OpenCV's HOG or a YOLOX/RTMDet ONNX detector",
    )
    p.add_argument(
        "--out", required=True, help="tracking results json (PoseTrack18); a folder for several inputs"
    )
    p.add_argument("--vis", default=None, help="also write the tracks drawn on the frames to this .mp4")
    _add_table_args(p)
    p.add_argument(
        "--smooth",
        choices=("none", "one-euro", "savgol"),
        default="none",
        help="smooth keypoints per track: one-euro (online) or savgol (offline); see docs/video.md",
    )
    p.add_argument(
        "--one-euro",
        type=float,
        nargs=3,
        default=None,
        metavar=("MIN_CUTOFF", "BETA", "D_CUTOFF"),
        help="One-Euro parameters (default: the measured 2 0.5 1)",
    )
    p.add_argument(
        "--savgol",
        type=int,
        nargs=2,
        default=None,
        metavar=("WINDOW", "POLYORDER"),
        help="Savitzky-Golay window (odd, frames) and polynomial order (default: the measured 9 3)",
    )
    p.add_argument(
        "--tracker",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tracker setting, e.g. similarity=oks",
    )
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None, help="flip test")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_track)

    p = sub.add_parser(
        "demo", help="synthetic data -> train -> evaluate -> predict -> track, with an index.html report"
    )
    p.add_argument("--out", default="heatpose_demo", help="report folder (default: heatpose_demo)")
    p.add_argument("--minutes", type=float, default=None, help="training budget (default: the preset's)")
    p.add_argument("--checkpoint", default=None, help="skip training and use this checkpoint")
    p.add_argument(
        "--preset", choices=("standard", "tiny"), default="standard", help="tiny: seconds, for tests"
    )
    p.set_defaults(func=_demo)

    p = sub.add_parser("reproduce", help="re-run a seed paper's ablation table on synthetic data")
    p.add_argument("table", choices=("sb-table1", "sb-tracking", "cfa-stages"))
    p.add_argument("--out", default=None, help="default: reproduce_<table>")
    p.add_argument(
        "--minutes-per-row",
        type=float,
        default=2.0,
        help="training budget of each row (sb-tracking: of the one model every row uses)",
    )
    p.add_argument("--rows", nargs="+", default=None, help="run only these rows (names in table.md)")
    p.add_argument(
        "--checkpoint", default=None, help="sb-tracking: track with this model instead of training one"
    )
    p.add_argument(
        "--size", choices=("standard", "tiny"), default="standard", help="tiny: seconds, for tests"
    )
    p.set_defaults(func=_reproduce)
    return parser


def one_line(err: BaseException) -> str:
    """The user-facing line of an error, also when a DataLoader worker raised it.

    PyTorch re-raises a worker's exception in the main process as the same type whose message
    is ``"Caught X in DataLoader worker process N.\nOriginal Traceback ...\nX: message"``;
    the line the user needs is the original message at the end.
    """
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        head, sep, message = last.partition(": ")
        text = message if sep and " " not in head else last
    if isinstance(err, OSError) and err.strerror:
        text = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
    lines = text.splitlines()
    return lines[0] if lines else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    if args.command != "bench":  # bench times the eager baseline under glibc's defaults first
        keep_freed_memory()
    try:
        return func(args)
    except HeatposeError as err:
        print(f"heatpose: error: {one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # the environment: read-only folder, a file where a folder should be, disk full
        print(f"heatpose: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("heatpose: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
