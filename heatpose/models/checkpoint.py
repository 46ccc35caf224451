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
import re
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


def _numpy_safe_globals() -> list[Any]:
    """The numpy reconstruction functions and types that an array, scalar or dtype pickles as.

    MMPose (and many other) checkpoints keep numpy values in ``meta``. Each entry is allowed
    under the name numpy 2 writes and under the ``numpy.core`` name numpy 1 wrote; none of
    them can run anything but numpy's own array/scalar/dtype construction.
    """
    import numpy as np
    from numpy._core import multiarray

    allowed: list[Any] = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    allowed += [(np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    allowed += [
        (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        (multiarray.scalar, "numpy.core.multiarray.scalar"),
    ]
    allowed += [t for t in vars(np.dtypes).values() if isinstance(t, type) and issubclass(t, np.dtype)]
    return allowed


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` to CPU: no file heatpose reads can run code.

    Tensors, plain python values and numpy arrays/scalars/dtypes (MMPose's ``meta``) load; a
    file that needs any other global is refused in one line naming the global and the file,
    never unpickled. Missing, empty, truncated and non-checkpoint files are one line each.
    """
    path = Path(path)
    if not path.exists():
        raise HeatposeError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise HeatposeError(f"checkpoint path is not a file: {path}")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as err:
        raise HeatposeError(f"cannot read checkpoint {path}: {err.strerror}") from None
    if not head:
        raise HeatposeError(f"cannot read checkpoint {path}: the file is empty (0 bytes): a cut-off write?")
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        raise HeatposeError(
            f"cannot read checkpoint {path}: not a PyTorch checkpoint (neither a torch.save zip archive "
            f"nor a pickle; it starts with {head!r})"
        )
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise HeatposeError(_describe_unpickling_error(path, err)) from None
    except Exception as err:
        text = str(err)
        if "zip archive" in text or "central directory" in text or isinstance(err, EOFError):
            raise HeatposeError(
                f"cannot read checkpoint {path}: the file is truncated or corrupt (not a complete archive)"
            ) from None
        first_line = (text.strip().splitlines() or [type(err).__name__])[0]
        raise HeatposeError(f"cannot read checkpoint {path}: {first_line}") from None


def _describe_unpickling_error(path: Path, err: Exception) -> str:
    text = str(err)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        name = found.group(1)
        try:  # the full dotted names ("builtins.exec" where the message says "exec")
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            name = next((g for g in unsafe if g.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]), name)
        except Exception:  # the message's name will do
            pass
        return (
            f"cannot read checkpoint {path}: it needs the global {name}, which could run code; "
            "heatpose loads only tensors, plain values and numpy arrays (torch.load weights_only=True)"
        )
    detail = re.search(r"WeightsUnpickler error: ([^\n]+)", text)
    reason = detail.group(1) if detail else (text.strip().splitlines() or ["unpickling failed"])[0]
    return f"cannot read checkpoint {path}: it cannot be loaded safely (weights_only=True): {reason}"


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
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise HeatposeError(
            f"{what} holds NaN or infinite weights in {_plural(len(bad), 'tensor')} ({_names(bad)}): "
            "it was saved from a diverged run or is corrupt"
        )
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
    what = "pretrained backbone checkpoint"
    if isinstance(obj, (str, Path)):
        what = f"pretrained backbone checkpoint {obj}"
        obj = read_checkpoint(obj)
    state = _strip_module(_unwrap(obj))
    if any(k.startswith("backbone.") for k in state):
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    _check_and_load(backbone, state, strict=True, what=what)


def load_model_weights(
    model: nn.Module,
    path_or_obj: str | Path | Mapping[str, Any],
    strict: bool = True,
    name: str | Path | None = None,
) -> None:
    """Load a full-model checkpoint in any supported layout (see module docstring).

    ``name`` (default: the path) names the file in error messages when an object is passed.
    """
    is_path = isinstance(path_or_obj, (str, Path))
    obj = read_checkpoint(path_or_obj) if is_path else path_or_obj
    name = name if name is not None else (path_or_obj if is_path else None)
    what = f"checkpoint {name}" if name is not None else "checkpoint"
    _check_and_load(model, migrate_state_dict(obj), strict=strict, what=what)
