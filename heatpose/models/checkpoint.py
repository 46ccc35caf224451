"""Reading checkpoints from other code bases into heatpose models.

heatpose's native layout is ``backbone.*`` + ``head.deconv_layers.*`` + ``head.final_layer.*``
(the same as MMPose 1.x). :func:`migrate_state_dict` maps every supported layout onto it:

* official microsoft/human-pose-estimation.pytorch: bare ``conv1.weight``, ``layer1.0...``,
  ``deconv_layers.*``, ``final_layer.*``; possibly ``module.``-prefixed (DataParallel) and/or
  wrapped as ``{"state_dict": ...}`` (their ``checkpoint.pth.tar`` also has ``"model": str``);
* MMPose 1.x: ``{"state_dict": {"backbone.*", "head.*"}, "meta": ...}``;
* MMPose 0.x: as 1.x with ``keypoint_head.`` instead of ``head.``;
* heatpose: ``{"model": state_dict, ...}`` (or ``{"state_dict": ...}``).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from heatpose.errors import HeatposeError

_WRAPPER_KEYS = ("state_dict", "model")
_BACKBONE_ROOTS = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
_HEAD_ROOTS = ("deconv_layers.", "final_layer.")
_MAX_NAMED = 3  # keys quoted per category in error messages


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load`` to CPU; a missing or unreadable file is a :class:`HeatposeError`.

    Tries ``weights_only=True`` first. MMPose checkpoints keep numpy arrays in ``meta``,
    which the safe unpickler refuses; those fall back to a full unpickle, so only load
    checkpoints from sources you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise HeatposeError(f"checkpoint not found: {path}")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if "weights_only" not in str(err).lower():
                raise
            return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise HeatposeError(f"cannot read checkpoint {path}: {first_line}") from err


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    )


def _unwrap(obj: Any) -> dict[str, Tensor]:
    """Find the parameter dict: the object itself or its ``state_dict``/``model`` entry."""
    if _is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if _is_state_dict(obj.get(key)):
                return dict(obj[key])
        keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
        raise HeatposeError(
            f"unrecognised checkpoint layout: no state dict of tensors at the top level or under "
            f"'state_dict'/'model' (top-level keys: {keys})"
        )
    raise HeatposeError(f"unrecognised checkpoint layout: expected a dict, got {type(obj).__name__}")


def _strip_module(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop the ``module.`` prefix that DataParallel/DistributedDataParallel adds."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def _native_key(key: str) -> str:
    if key.startswith("keypoint_head."):  # MMPose 0.x
        return "head." + key.removeprefix("keypoint_head.")
    if key.startswith(_HEAD_ROOTS):  # official
        return "head." + key
    if key.startswith(_BACKBONE_ROOTS):  # official
        return "backbone." + key
    return key  # heatpose / MMPose 1.x, or an unknown key left for the strict load to report


def migrate_state_dict(obj: Any) -> dict[str, Tensor]:
    """Return the state dict of any supported checkpoint object in heatpose's layout."""
    state = _strip_module(_unwrap(obj))
    return {_native_key(k): v for k, v in state.items()}


def _fill_num_batches_tracked(state: dict[str, Tensor], module: nn.Module) -> None:
    """Checkpoints from PyTorch < 0.4.1 (the official release, old torchvision files) have
    no ``num_batches_tracked``; it only counts steps, so add zeros instead of failing."""
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            running_mean = key.removesuffix("num_batches_tracked") + "running_mean"
            if running_mean in state:
                state[key] = torch.zeros_like(value)


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_NAMED])
    return shown + (", ..." if len(keys) > _MAX_NAMED else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "es" if word.endswith("ch") else "s")


def _check_and_load(module: nn.Module, state: dict[str, Tensor], strict: bool, what: str) -> None:
    """``load_state_dict`` with one readable :class:`HeatposeError` line on any mismatch.

    With ``strict=False`` missing/unexpected keys are allowed but shape mismatches are not.
    """
    _fill_num_batches_tracked(state, module)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    problems = []
    if strict and missing:
        problems.append(f"{_plural(len(missing), 'missing key')} ({_names(missing)})")
    if strict and unexpected:
        problems.append(f"{_plural(len(unexpected), 'unexpected key')} ({_names(unexpected)})")
    if shapes:
        problems.append(f"{_plural(len(shapes), 'shape mismatch')} ({_names(shapes)})")
    if problems:
        raise HeatposeError(f"{what} does not match the model: " + ", ".join(problems))
    module.load_state_dict(state, strict=strict)


def load_backbone_weights(backbone: nn.Module, path_or_state_dict: str | Path | Mapping[str, Any]) -> None:
    """Load ImageNet weights (a torchvision ``resnet50-*.pth`` file) into a backbone.

    The classifier (``fc.*``) is dropped; everything else must match exactly. A ``module.``
    or ``backbone.`` prefix is tolerated so heatpose/MMPose backbones can be reused too.
    """
    obj = path_or_state_dict
    if isinstance(obj, (str, Path)):
        obj = read_checkpoint(obj)
    state = _strip_module(_unwrap(obj))
    if any(k.startswith("backbone.") for k in state):
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    _check_and_load(backbone, state, strict=True, what="pretrained backbone checkpoint")


def load_model_weights(
    model: nn.Module, path_or_obj: str | Path | Mapping[str, Any], strict: bool = True
) -> None:
    """Load a full-model checkpoint in any supported layout (see module docstring)."""
    obj = read_checkpoint(path_or_obj) if isinstance(path_or_obj, (str, Path)) else path_or_obj
    _check_and_load(model, migrate_state_dict(obj), strict=strict, what="checkpoint")
