"""Bad-input sweep: feed many distinct bad inputs to ``heatpose score | eval | train | synth``.

Each case is one ``python -m heatpose ...`` subprocess, checked for one of two outcomes:

* ``error``: exit status 2, exactly one ``heatpose: error:`` line on stderr containing the
  expected fragment (which names the file or key), and no ``Traceback`` anywhere;
* ``ok``: the input is usable: exit status 0, no ``Traceback``, and (where a warning is due)
  the expected warning fragment on stderr.

Some cases check more: a malicious checkpoint's payload must never create its marker file; a
refused ``--resume`` must leave the work dir byte-identical.

``python tests/bad_input_sweep.py [--full] [--keep DIR] [--jobs N]`` prints one line per
case and exits 1 if any failed. The fast form (the default; ``tests/test_bad_input_sweep.py``
runs it in CI) takes every case that fails before torch is imported (configs, ``score``,
``synth``) and the cases in :data:`FAST_TORCH_CASES`; ``--full`` adds the other cases that
load torch (each one pays for importing it).
Everything is built under a scratch folder: a 4-image synthetic dataset (``heatpose synth``),
a 1-epoch run of the smallest config, and bad files derived from its checkpoint.
"""

from __future__ import annotations

import argparse
import builtins
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The torch-loading cases the fast form keeps: one of each kind of failure.
FAST_TORCH_CASES = frozenset(
    {
        "eval malicious checkpoint",
        "eval MMPose layout with numpy meta",
        "eval checkpoint empty",
        "eval checkpoint NaN weights",
        "eval out-dir is a file",
        "train work dir read-only",
        "train undecodable image in a worker",
        "train malicious model.weights",
        "resume refuses train.batch_size=4",
        "resume refuses model.num_deconv_filters=64",
    }
)
TINY_CONFIG = REPO / "configs" / "synthetic" / "res18_64x64_d32x2_adam_lr1e-3.yaml"


@dataclass
class Case:
    """One bad input: the CLI arguments and what must come back."""

    name: str
    argv: list[str]
    expect: str = "error"  # error | ok
    fragment: str = ""  # must appear in the error line (error) or on stderr (ok)
    check: Callable[[], str | None] | None = None  # extra check after the run: a problem or None
    before: Callable[[], None] | None = None  # runs just before the command
    torch: bool = True  # the command imports torch (the expensive cases)


@dataclass
class Outcome:
    case: Case
    returncode: int
    stderr: str
    seconds: float
    problems: list[str] = field(default_factory=list)


def heatpose(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "heatpose", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


# --------------------------------------------------------------------------- fixtures


class _Payload:
    """Unpickling runs ``exec``: the marker file appears only if heatpose ran the payload."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def make_fixtures(root: Path) -> dict[str, Path]:
    """The tiny dataset, a trained 1-epoch run, and the files the cases point at."""
    import numpy as np
    import torch

    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    for split, seed in (("train", "0"), ("val", "1")):
        proc = heatpose(
            "synth",
            str(data),
            "--num-images",
            "4",
            "--width",
            "96",
            "--height",
            "96",
            "--seed",
            seed,
            "--split",
            split,
            "--quiet",
        )
        if proc.returncode != 0:
            raise RuntimeError(f"heatpose synth failed: {proc.stderr}")
    overrides = [
        f"data.train_ann={data / 'annotations' / 'person_keypoints_train.json'}",
        f"data.train_images={data / 'images' / 'train'}",
        f"data.val_ann={data / 'annotations' / 'person_keypoints_val.json'}",
        f"data.val_images={data / 'images' / 'val'}",
        "train.epochs=1",
        "train.num_workers=0",
        "train.val_interval=0",
        "test.batch_size=8",
    ]
    cfg_text = TINY_CONFIG.read_text()
    tiny = root / "tiny.yaml"
    tiny.write_text(_with_overrides(cfg_text, overrides))
    run = root / "run"
    proc = heatpose("train", str(tiny), "--work-dir", str(run))
    if proc.returncode != 0:
        raise RuntimeError(f"heatpose train failed: {proc.stderr}")

    f: dict[str, Path] = {"root": root, "data": data, "tiny": tiny, "run": run, "latest": run / "latest.pth"}
    ckpt = torch.load(run / "latest.pth", weights_only=True)
    model = ckpt["model"]

    def save(name: str, obj) -> Path:
        torch.save(obj, root / name)
        return root / name

    f["weights"] = save("weights.pth", {"model": model})
    nan = {k: v.clone() for k, v in model.items()}
    nan["head.final_layer.weight"].fill_(float("nan"))
    f["nan"] = save("nan.pth", {"model": nan})
    f["marker"] = root / "pwned.txt"
    f["evil"] = save("evil.pth", {"state_dict": model, "meta": {"x": _Payload(f["marker"])}})
    f["mmpose"] = save(
        "mmpose.pth",
        {
            "meta": {"epoch": 210, "seed": np.int64(3), "dataset_meta": {"sigmas": np.ones(17, np.float32)}},
            "state_dict": model,
        },
    )
    f["no_state"] = save("no_state.pth", {"epoch": 3, "note": "no weights here"})
    small = {k: v[..., :1].clone() if v.ndim == 4 else v for k, v in model.items()}
    f["other_arch"] = save("other_arch.pth", {"model": small})
    f["empty"] = root / "empty.pth"
    f["empty"].write_bytes(b"")
    f["text"] = root / "notes.pth"
    f["text"].write_text("epoch 3, AP 0.71, remember to copy the weights\n")
    blob = (run / "latest.pth").read_bytes()
    f["truncated"] = root / "truncated.pth"
    f["truncated"].write_bytes(blob[: len(blob) // 3])
    f["file"] = root / "a_file"
    f["file"].write_text("a file where a folder should be\n")
    f["readonly"] = _readonly_dir(root)

    # score inputs
    gt_path = data / "annotations" / "person_keypoints_val.json"
    f["gt"] = gt_path
    gt = json.loads(gt_path.read_text())
    good = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
        if a.get("num_keypoints", 0) > 0
    ]
    f["good_preds"] = _json(root / "good_preds.json", good)
    first = good[0]
    f["preds_16"] = _json(root / "preds_16.json", [{**first, "keypoints": first["keypoints"][:48]}])
    f["preds_dict"] = _json(root / "preds_dict.json", {"results": good})
    f["preds_str_score"] = _json(root / "preds_str_score.json", [{**first, "score": "high"}])
    f["preds_no_image"] = _json(
        root / "preds_no_image.json", [{k: v for k, v in first.items() if k != "image_id"}]
    )
    f["preds_str_kpts"] = _json(root / "preds_str_kpts.json", [{**first, "keypoints": "1,2,3"}])
    f["preds_nan"] = root / "preds_nan.json"
    f["preds_nan"].write_text(json.dumps([{**first, "keypoints": [float("nan")] * 51}]))
    f["preds_inf_score"] = root / "preds_inf_score.json"
    f["preds_inf_score"].write_text(json.dumps([{**first, "score": float("inf")}]))
    f["preds_float_id"] = _json(
        root / "preds_float_id.json", [{**first, "image_id": first["image_id"] + 0.5}]
    )
    f["bad_json"] = root / "bad.json"
    f["bad_json"].write_text('[{"image_id": 1,')
    f["binary"] = root / "binary.json"
    f["binary"].write_bytes(bytes(range(256)))
    f["empty_json"] = root / "empty.json"
    f["empty_json"].write_text("")
    f["gt_list"] = _json(root / "gt_list.json", [1, 2, 3])
    f["gt_no_images"] = _json(root / "gt_no_images.json", {"annotations": [], "categories": []})

    # detection files for eval --boxes
    f["dets_bad"] = root / "dets_bad.json"
    f["dets_bad"].write_text("{not json")
    f["dets_dict"] = _json(root / "dets_dict.json", {"image_id": 1})
    img_id = gt["images"][0]["id"]
    f["dets_unknown"] = _json(
        root / "dets_unknown.json", [{"image_id": 987654, "bbox": [1, 1, 20, 20], "score": 1}]
    )
    f["dets_no_score"] = _json(root / "dets_no_score.json", [{"image_id": img_id, "bbox": [1, 1, 20, 20]}])
    f["dets_nan"] = root / "dets_nan.json"
    f["dets_nan"].write_text(
        json.dumps([{"image_id": img_id, "bbox": [1, 1, 20, 20], "score": float("nan")}])
    )

    # GT whose image file_name leaves the image folder
    escape = json.loads(gt_path.read_text())
    escape["images"][0]["file_name"] = "../../../../etc/hostname"
    f["gt_escape"] = _json(root / "gt_escape.json", escape)
    absolute = json.loads(gt_path.read_text())
    absolute["images"][0]["file_name"] = "/etc/hostname"
    f["gt_absolute"] = _json(root / "gt_absolute.json", absolute)

    # configs
    f["cfg_empty"] = _text(root / "cfg_empty.yaml", "")
    f["cfg_comments"] = _text(root / "cfg_comments.yaml", "# nothing but a comment\n")
    f["cfg_dup_section"] = _text(root / "cfg_dup.yaml", cfg_text + "\ntrain:\n  epochs: 1\n")
    f["cfg_dup_key"] = _text(root / "cfg_dup_key.yaml", "train:\n  lr: 0.001\n  lr: 0.01\n")
    f["cfg_syntax"] = _text(root / "cfg_syntax.yaml", "model: [1, 2\n")
    f["cfg_list"] = _text(root / "cfg_list.yaml", "- model\n- data\n")
    f["cfg_unknown"] = _text(root / "cfg_unknown.yaml", "model:\n  backbone_depht: 50\n")
    f["cfg_type"] = _text(root / "cfg_type.yaml", "train:\n  lr: fast\n")
    f["cfg_section_scalar"] = _text(root / "cfg_section_scalar.yaml", "train: 3\n")
    f["cfg_binary"] = root / "cfg_binary.yaml"
    f["cfg_binary"].write_bytes(b"\xff\xfe\x00model")

    # a training set with an undecodable image, read by a DataLoader worker
    broken = root / "broken_images"
    broken.mkdir(exist_ok=True)
    for p in (data / "images" / "train").iterdir():
        (broken / p.name).write_bytes(p.read_bytes())
    first_image = sorted(broken.iterdir())[0]
    first_image.write_bytes(b"\xff\xd8 this is not a jpeg")
    f["broken_images"] = broken
    # a run whose resume must be refused, and its fingerprint
    f["refuse_run"] = root / "refuse_run"
    proc = subprocess.run(["cp", "-r", str(run), str(f["refuse_run"])], capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    f["resume_text"] = root / "resume_text"
    f["resume_text"].mkdir(exist_ok=True)
    (f["resume_text"] / "latest.pth").write_text("not a checkpoint\n")
    f["resume_weights"] = root / "resume_weights"
    f["resume_weights"].mkdir(exist_ok=True)
    (f["resume_weights"] / "latest.pth").write_bytes(f["weights"].read_bytes())
    return f


def _with_overrides(text: str, overrides: list[str]) -> str:
    import yaml

    tree = yaml.safe_load(text)
    for item in overrides:
        key, _, value = item.partition("=")
        section, name = key.split(".")
        tree[section][name] = yaml.safe_load(value)
    return yaml.safe_dump(tree, sort_keys=False)


def _json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _readonly_dir(root: Path) -> Path:
    """A folder this process cannot write into (root ignores permission bits: use /sys)."""
    if os.geteuid() != 0:
        folder = root / "readonly"
        folder.mkdir(exist_ok=True)
        folder.chmod(0o555)
        return folder / "out"
    return Path("/sys/heatpose-sweep-readonly")


def _fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- cases


def build_cases(f: dict[str, Path]) -> list[Case]:
    tiny, gt, root = str(f["tiny"]), str(f["gt"]), f["root"]
    cases: list[Case] = []

    def add(name: str, *argv: str, expect: str = "error", fragment: str = "", **kw) -> None:
        kw.setdefault("torch", argv[0] not in ("score", "synth"))
        cases.append(Case(name, [str(a) for a in argv], expect, fragment, **kw))

    # ---- score
    good = f["good_preds"]
    add("score ok", "score", "--gt", gt, "--preds", good, "--json", expect="ok")
    add("score preds missing", "score", "--gt", gt, "--preds", root / "nope.json", fragment="nope.json")
    add("score preds not json", "score", "--gt", gt, "--preds", f["bad_json"], fragment="not valid JSON")
    add("score preds binary", "score", "--gt", gt, "--preds", f["binary"], fragment="binary.json")
    add("score preds empty file", "score", "--gt", gt, "--preds", f["empty_json"], fragment="empty.json")
    add("score preds a dict", "score", "--gt", gt, "--preds", f["preds_dict"], fragment="preds_dict.json")
    add("score preds 16 keypoints", "score", "--gt", gt, "--preds", f["preds_16"], fragment="16 keypoints")
    add("score preds string score", "score", "--gt", gt, "--preds", f["preds_str_score"], fragment="score")
    add("score preds no image_id", "score", "--gt", gt, "--preds", f["preds_no_image"], fragment="image_id")
    add(
        "score preds string keypoints",
        "score",
        "--gt",
        gt,
        "--preds",
        f["preds_str_kpts"],
        fragment="keypoints",
    )
    add(
        "score preds NaN keypoints", "score", "--gt", gt, "--preds", f["preds_nan"], fragment="preds_nan.json"
    )
    add("score preds inf score", "score", "--gt", gt, "--preds", f["preds_inf_score"], fragment="score")
    add(
        "score preds fractional image_id",
        "score",
        "--gt",
        gt,
        "--preds",
        f["preds_float_id"],
        fragment="image_id",
    )
    add("score preds a folder", "score", "--gt", gt, "--preds", root, fragment=str(root))
    add("score gt missing", "score", "--gt", root / "no_gt.json", "--preds", good, fragment="no_gt.json")
    add("score gt not json", "score", "--gt", f["bad_json"], "--preds", good, fragment="not valid JSON")
    add("score gt a list", "score", "--gt", f["gt_list"], "--preds", good, fragment="gt_list.json")
    add("score gt without images", "score", "--gt", f["gt_no_images"], "--preds", good, fragment="images")

    # ---- eval: checkpoints
    def ev(name: str, ckpt, fragment: str, *extra: str, expect: str = "error", **kw) -> None:
        add(
            name,
            "eval",
            tiny,
            "--checkpoint",
            ckpt,
            "--no-flip",
            *extra,
            expect=expect,
            fragment=fragment,
            **kw,
        )

    out = root / "eval_out"
    ev("eval checkpoint ok", f["latest"], "", "--out-dir", out, expect="ok")
    ev("eval MMPose layout with numpy meta", f["mmpose"], "", "--out-dir", out, expect="ok")
    ev("eval checkpoint missing", root / "none.pth", "none.pth")
    ev("eval checkpoint empty", f["empty"], "empty (0 bytes)")
    ev("eval checkpoint text file", f["text"], "not a PyTorch checkpoint")
    ev("eval checkpoint truncated", f["truncated"], "truncated or corrupt")
    ev("eval checkpoint a folder", root, "not a file")
    ev("eval checkpoint NaN weights", f["nan"], "NaN or infinite weights")
    ev("eval checkpoint without weights", f["no_state"], "unrecognised checkpoint layout")
    ev("eval checkpoint other architecture", f["other_arch"], "does not match the model")
    ev(
        "eval malicious checkpoint",
        f["evil"],
        "builtins.exec",
        check=lambda: "the payload ran" if f["marker"].exists() else None,
    )
    ev("eval out-dir is a file", f["latest"], "a_file", "--out-dir", f["file"] / "sub")
    ev("eval out-dir read-only", f["latest"], str(f["readonly"]), "--out-dir", f["readonly"])
    ev("eval detections not json", f["latest"], "dets_bad.json", "--boxes", f["dets_bad"])
    ev("eval detections a dict", f["latest"], "dets_dict.json", "--boxes", f["dets_dict"])
    ev("eval detections unknown image", f["latest"], "987654", "--boxes", f["dets_unknown"])
    ev("eval detections without score", f["latest"], "score", "--boxes", f["dets_no_score"])
    ev("eval detections NaN score", f["latest"], "non-finite score", "--boxes", f["dets_nan"])
    ev("eval detections missing", f["latest"], "no_dets.json", "--boxes", root / "no_dets.json")
    ev(
        "eval GT file_name with ../",
        f["latest"],
        "outside the image folder",
        "--set",
        f"data.val_ann={f['gt_escape']}",
    )
    ev(
        "eval GT absolute file_name",
        f["latest"],
        "absolute path",
        "--set",
        f"data.val_ann={f['gt_absolute']}",
    )
    add(
        "eval bad override",
        "eval",
        tiny,
        "--checkpoint",
        f["latest"],
        "--set",
        "train.lr",
        fragment="train.lr",
        torch=False,
    )
    add(
        "eval config missing",
        "eval",
        root / "no.yaml",
        "--checkpoint",
        f["latest"],
        fragment="no.yaml",
        torch=False,
    )

    # ---- train: configs (fail at load time, before torch is imported)
    w = str(root / "w_unused")

    def tr(name: str, config, fragment: str, *extra: str, **kw) -> None:
        kw.setdefault("torch", False)  # these fail while the config loads
        add(name, "train", config, "--work-dir", w, *extra, fragment=fragment, **kw)

    tr("train config missing", root / "no.yaml", "config file not found")
    tr("train config empty", f["cfg_empty"], "config file is empty")
    tr("train config only comments", f["cfg_comments"], "config file is empty")
    tr("train duplicate section", f["cfg_dup_section"], "duplicate key 'train'")
    tr("train duplicate key", f["cfg_dup_key"], "duplicate key 'lr' at line 3")
    tr("train YAML syntax", f["cfg_syntax"], "not valid YAML")
    tr("train top level a list", f["cfg_list"], "top level must be a mapping")
    tr("train unknown key", f["cfg_unknown"], "model.backbone_depht")
    tr("train wrong type", f["cfg_type"], "train.lr")
    tr("train section not a mapping", f["cfg_section_scalar"], "train")
    tr("train config not utf-8", f["cfg_binary"], "cfg_binary.yaml")
    for override, key in (
        ("train.lr=0", "train.lr"),
        ("train.lr=.nan", "train.lr"),
        ("train.lr=-1e-3", "train.lr"),
        ("train.lr_factor=2", "train.lr_factor"),
        ("data.rot_prob=1.5", "data.rot_prob"),
        ("data.half_body_prob=-0.5", "data.half_body_prob"),
        ("data.scale_factor=-1", "data.scale_factor"),
        ("data.rot_factor=-10", "data.rot_factor"),
        ("data.box_enlarge=0", "data.box_enlarge"),
        ("train.batch_size=0", "train.batch_size"),
        ("test.batch_size=0", "test.batch_size"),
        ("train.num_workers=-1", "train.num_workers"),
        ("train.seed=4294967296", "train.seed"),
        ("train.seed=-1", "train.seed"),
        ("data.input_size=[100, 64]", "data.input_size"),
        ("data.sigma=0", "data.sigma"),
        ("train.weight_decay=-0.1", "train.weight_decay"),
        ("train.lr_steps=[-1]", "train.lr_steps"),
        ("train.amp=fp8", "train.amp"),
        ("foo.bar=1", "foo"),
    ):
        tr(f"train --set {override}", tiny, key, "--set", override)
    tr("train override without =", tiny, "train.lr", "--set", "train.lr")
    tr(
        "train annotations missing",
        tiny,
        "/nowhere/ann.json",
        "--set",
        "data.train_ann=/nowhere/ann.json",
        torch=True,
    )
    tr("train backbone depth 19", tiny, "backbone_depth", "--set", "model.backbone_depth=19", torch=True)
    tr(
        "train save_metric unknown",
        tiny,
        "train.save_metric",
        "--set",
        "train.save_metric=PCK",
        "--set",
        "train.val_interval=1",
        torch=True,
    )

    # ---- train: the environment and files it reads
    add("train work dir is a file", "train", tiny, "--work-dir", f["file"], fragment="a_file")
    add("train work dir read-only", "train", tiny, "--work-dir", f["readonly"], fragment=str(f["readonly"]))
    add("train fp16 on CPU", "train", tiny, "--work-dir", w, "--set", "train.amp=fp16", fragment="fp16")
    add(
        "train malicious model.weights",
        "train",
        tiny,
        "--work-dir",
        w,
        "--set",
        f"model.weights={f['evil']}",
        fragment="builtins.exec",
        check=lambda: "the payload ran" if f["marker"].exists() else None,
    )
    add(
        "train empty model.pretrained",
        "train",
        tiny,
        "--work-dir",
        w,
        "--set",
        f"model.pretrained={f['empty']}",
        fragment="empty (0 bytes)",
    )
    add(
        "train NaN model.weights",
        "train",
        tiny,
        "--work-dir",
        w,
        "--set",
        f"model.weights={f['nan']}",
        fragment="NaN or infinite weights",
    )
    add(
        "train GT file_name with ../",
        "train",
        tiny,
        "--work-dir",
        w,
        "--set",
        f"data.train_ann={f['gt_escape']}",
        "--set",
        f"data.train_images={f['data'] / 'images' / 'val'}",
        fragment="outside the image folder",
    )
    add(
        "train undecodable image in a worker",
        "train",
        tiny,
        "--work-dir",
        root / "w_broken",
        "--set",
        f"data.train_images={f['broken_images']}",
        "--set",
        "train.num_workers=1",
        fragment="image",
    )

    # ---- train --resume
    add(
        "resume without checkpoint",
        "train",
        tiny,
        "--work-dir",
        root / "w_none",
        "--resume",
        fragment="no checkpoint to resume from",
    )
    add(
        "resume from a text file",
        "train",
        tiny,
        "--work-dir",
        f["resume_text"],
        "--resume",
        fragment="not a PyTorch checkpoint",
    )
    add(
        "resume from bare weights",
        "train",
        tiny,
        "--work-dir",
        f["resume_weights"],
        "--resume",
        fragment="not a heatpose training checkpoint",
    )
    refused = f["refuse_run"]
    fingerprint: dict[str, dict[str, str]] = {}

    def remember() -> None:
        fingerprint.setdefault("before", _fingerprint(refused))

    def unchanged() -> str | None:
        return (
            None
            if _fingerprint(refused) == fingerprint["before"]
            else "the refused resume changed the work dir"
        )

    for override, key in (
        ("train.batch_size=4", "train.batch_size"),
        ("model.num_deconv_filters=64", "model.num_deconv_filters"),
        ("model.backbone_depth=34", "model.backbone_depth"),
        ("data.input_size=[64, 96]", "data.input_size"),
        ("train.seed=5", "train.seed"),
    ):
        add(
            f"resume refuses {override}",
            "train",
            tiny,
            "--work-dir",
            refused,
            "--resume",
            "--set",
            "train.epochs=2",
            "--set",
            override,
            fragment=f"--resume cannot change {key}",
            before=remember,
            check=unchanged,
        )
    add(
        "fresh run onto a checkpoint",
        "train",
        tiny,
        "--work-dir",
        refused,
        fragment="already holds a checkpoint",
        before=remember,
        check=unchanged,
    )

    # ---- synth
    add("synth zero images", "synth", root / "s0", "--num-images", "0", fragment="num_images")
    add("synth negative images", "synth", root / "s1", "--num-images", "-3", fragment="num_images")
    add("synth into a file", "synth", f["file"] / "sub", "--num-images", "1", "--quiet", fragment="a_file")
    add(
        "synth read-only", "synth", f["readonly"], "--num-images", "1", "--quiet", fragment=str(f["readonly"])
    )
    return cases


# --------------------------------------------------------------------------- running


def run_case(case: Case, timeout: float = 300) -> Outcome:
    if case.before is not None:
        case.before()
    tic = time.perf_counter()
    try:
        proc = heatpose(*case.argv, timeout=timeout)
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, stderr = -1, f"timed out after {timeout} s"
    outcome = Outcome(case, code, stderr, time.perf_counter() - tic)
    errors = [line for line in stderr.splitlines() if line.startswith("heatpose: error:")]
    if "Traceback" in stderr:
        outcome.problems.append("traceback on stderr")
    if case.expect == "error":
        if code != 2:
            outcome.problems.append(f"exit {code}, expected 2")
        if len(errors) != 1:
            outcome.problems.append(f"{len(errors)} 'heatpose: error:' lines, expected 1")
        elif case.fragment not in errors[0]:
            outcome.problems.append(f"error line lacks {case.fragment!r}")
    else:
        if code != 0:
            outcome.problems.append(f"exit {code}, expected 0")
        if case.fragment and case.fragment not in stderr:
            outcome.problems.append(f"stderr lacks the warning {case.fragment!r}")
    if case.check is not None:
        problem = case.check()
        if problem:
            outcome.problems.append(problem)
    return outcome


def select_cases(cases: list[Case], full: bool) -> list[Case]:
    """All cases (``full``) or the fast form: no torch import, or one of FAST_TORCH_CASES."""
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "case names must be distinct"
    assert set(names) >= FAST_TORCH_CASES, FAST_TORCH_CASES - set(names)
    return [c for c in cases if full or not c.torch or c.name in FAST_TORCH_CASES]


def run_sweep(root: Path, jobs: int = 2, full: bool = False) -> list[Outcome]:
    """Build the fixtures under ``root``, run the cases (``jobs`` at a time), return outcomes."""
    cases = select_cases(build_cases(make_fixtures(root)), full)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run_case, cases))


def describe(outcome: Outcome) -> str:
    status = "FAIL" if outcome.problems else "ok  "
    lines = [f"{status} {outcome.case.name} ({outcome.seconds:.1f} s)"]
    if outcome.problems:
        lines.append("     problems: " + "; ".join(outcome.problems))
        lines.append("     stderr tail: " + " | ".join(outcome.stderr.strip().splitlines()[-3:]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", default=None, help="build the fixtures here and keep them")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="every case, not just the fast form")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="heatpose-sweep-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        tic = time.perf_counter()
        outcomes = run_sweep(root, args.jobs, args.full)
        for outcome in outcomes:
            print(describe(outcome))
        failed = [o for o in outcomes if o.problems]
        print(f"{len(outcomes)} cases, {len(failed)} failed, {time.perf_counter() - tic:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
