"""Experiment configs: every shipped file loads, its name states its recipe, and bad configs
fail with one clear message naming the key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from heatpose.config import ExperimentConfig, config_from_dict, config_to_dict, dump_config, load_config
from heatpose.data.dataset import build_dataset
from heatpose.errors import HeatposeError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ALL_CONFIGS = sorted(CONFIGS.rglob("*.yaml"))
# res50_256x192_d256x3_adam_lr1e-3.yaml: depth, input HxW, deconv filters x layers, optimiser, lr
NAME = re.compile(r"res(\d+)_(\d+)x(\d+)_d(\d+)x(\d+)_adam_lr([0-9.e-]+)(_[a-z0-9]+)*\.yaml")
# The official recipe rows, written out key by key (no hidden defaults).
FULL = ("coco", "mpii", "lip", "synthetic")


def test_configs_exist():
    names = {p.relative_to(CONFIGS).as_posix() for p in ALL_CONFIGS}
    for depth in (50, 101, 152):
        assert f"coco/res{depth}_256x192_d256x3_adam_lr1e-3.yaml" in names
        assert f"coco/res{depth}_384x288_d256x3_adam_lr1e-3.yaml" in names
        assert f"mpii/res{depth}_256x256_d256x3_adam_lr1e-3.yaml" in names
    assert "synthetic/res18_128x96_d256x3_adam_lr1e-3.yaml" in names


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_config_name_matches_contents(path):
    cfg = load_config(path)
    match = NAME.fullmatch(path.name)
    assert match, f"{path.name} does not carry its recipe"
    depth, height, width, filters, layers, lr, _ = match.groups()
    assert cfg.model.backbone_depth == int(depth)
    assert cfg.data.input_size == [int(width), int(height)]
    assert (cfg.model.num_deconv_filters, cfg.model.num_deconv_layers) == (int(filters), int(layers))
    assert cfg.train.lr == float(lr)
    if path.parent.name == "custom":  # a schema read from the data: a schema file or 'auto'
        assert cfg.data.schema == "auto" or cfg.data.schema.endswith((".yaml", ".json"))
    elif path.parent.name == "cfa":  # CFA is an MPII/LIP model (16 joints)
        assert cfg.data.schema == ("lip" if "_lip" in path.name else "mpii")
    else:
        expected = path.parent.name if path.parent.name in ("mpii", "lip") else "coco"
        assert cfg.data.schema == ("mpii" if path.stem.endswith("_mpii") else expected)
    # Each file is one row of a results table and says what number that row should reach.
    assert re.search(r"^# .*(AP|PCKh)", path.read_text(), re.MULTILINE), "no reference number comment"
    if path.parent.name not in FULL:
        return
    raw = yaml.safe_load(path.read_text())
    assert {section: set(values) for section, values in raw.items()} == {
        section: set(values) for section, values in config_to_dict(cfg).items()
    }


def test_official_recipes():
    r50 = load_config(CONFIGS / "coco" / "res50_256x192_d256x3_adam_lr1e-3.yaml")
    assert r50.heatmap_size == (48, 64) and r50.data.sigma == 2.0
    assert (r50.data.scale_factor, r50.data.rot_factor) == (0.3, 40.0)
    assert (r50.train.epochs, r50.train.lr_steps, r50.train.lr_factor) == (140, [90, 120], 0.1)
    assert r50.test.boxes != "gt" and r50.test.flip  # detector boxes, as the paper reports
    big = load_config(CONFIGS / "coco" / "res152_384x288_d256x3_adam_lr1e-3.yaml")
    assert big.heatmap_size == (72, 96) and big.data.sigma == 3.0
    mpii = load_config(CONFIGS / "mpii" / "res101_256x256_d256x3_adam_lr1e-3.yaml")
    assert (mpii.data.dataset, mpii.data.schema, mpii.model.num_joints) == ("mpii", "mpii", 16)
    assert (mpii.data.scale_factor, mpii.data.rot_factor) == (0.25, 30.0)
    assert mpii.data.train_ann.startswith("data/mpii/")


def test_synthetic_config_points_at_heatpose_synth_output():
    cfg = load_config(CONFIGS / "synthetic" / "res18_128x96_d256x3_adam_lr1e-3.yaml")
    assert cfg.data.train_ann == "data/synthetic/annotations/person_keypoints_train.json"
    assert cfg.data.val_images == "data/synthetic/images/val"
    assert cfg.model.pretrained == "" and cfg.test.boxes == "gt"


def test_raised_synthetic_recipe_differs_only_where_docs_results_says():
    """docs/results.md's 15-minute raised run: 3 x 128 head, UDP, sigma 1.5, 19 epochs, lr steps 13/17;
    everything else is the 3 x 256 recipe."""
    base = load_config(CONFIGS / "synthetic" / "res18_128x96_d256x3_adam_lr1e-3.yaml")
    raised = load_config(CONFIGS / "synthetic" / "res18_128x96_d128x3_adam_lr1e-3_udp.yaml")
    assert (raised.model.num_deconv_filters, raised.data.codec, raised.data.sigma) == (128, "udp", 1.5)
    assert (raised.train.epochs, raised.train.lr_steps) == (19, [13, 17])
    expected = dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, num_deconv_filters=128),
        data=dataclasses.replace(base.data, codec="udp", sigma=1.5),
        train=dataclasses.replace(base.train, epochs=19, lr_steps=[13, 17]),
    )
    assert raised == expected


def test_088_recipe_differs_from_the_raised_one_only_in_head_schedule_and_loading():
    """docs/results.md's AP >= 0.88 run: the raised recipe with a 3 x 64 head, 18 epochs, lr steps
    15/17, one validation at the end and data loading in the training process."""
    raised = load_config(CONFIGS / "synthetic" / "res18_128x96_d128x3_adam_lr1e-3_udp.yaml")
    final = load_config(CONFIGS / "synthetic" / "res18_128x96_d64x3_adam_lr1e-3_udp.yaml")
    expected = dataclasses.replace(
        raised,
        model=dataclasses.replace(raised.model, num_deconv_filters=64),
        train=dataclasses.replace(raised.train, epochs=18, lr_steps=[15, 17], val_interval=18, num_workers=0),
    )
    assert final == expected


def test_overrides_and_round_trip(tmp_path):
    path = CONFIGS / "synthetic" / "res18_128x96_d256x3_adam_lr1e-3.yaml"
    cfg = load_config(path, ["train.lr=1e-4", "train.lr_steps=[3, 4]", "data.input_size=[192, 256]"])
    assert cfg.train.lr == 1e-4 and cfg.train.lr_steps == [3, 4] and cfg.heatmap_size == (48, 64)
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_config(cfg))
    assert load_config(saved) == cfg


@pytest.mark.parametrize(
    ("data", "overrides", "fragment"),
    [
        ({"model": {"backbone_depht": 50}}, [], "unknown config key 'model.backbone_depht'"),
        ({"trian": {}}, [], "unknown config key 'trian'"),
        ({}, ["train.lr=fast"], "'train.lr': expected float"),
        ({"train": {"epochs": 1.5}}, [], "'train.epochs': expected int"),
        ({"train": {"amp": "fp8"}}, [], "'train.amp': 'fp8' is not one of"),
        ({"data": {"input_size": [100, 256]}}, [], "multiples of 32"),
        ({}, ["train.nope=1"], "unknown config key 'train.nope'"),
    ],
)
def test_bad_configs_name_the_key(data, overrides, fragment):
    with pytest.raises(HeatposeError) as err:
        config_from_dict(data, overrides)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_bad_config_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  depth: 50\n")
    with pytest.raises(HeatposeError, match=r"bad\.yaml: unknown config key 'model\.depth'"):
        load_config(path)
    with pytest.raises(HeatposeError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_missing_dataset_path_is_a_clear_error(tmp_path):
    data = {"train_ann": str(tmp_path / "none.json"), "train_images": str(tmp_path)}
    cfg = config_from_dict({"data": data})
    with pytest.raises(HeatposeError, match=r"'data\.train_ann': path not found"):
        build_dataset(cfg, "train")
    with pytest.raises(HeatposeError, match=r"'data\.val_ann' is empty"):
        build_dataset(ExperimentConfig(), "val")
