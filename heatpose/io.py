"""File I/O that user-facing code shares: json with one-line errors, and atomic writes.

Files that matter (checkpoints, predictions, datasets, logs) go to a temporary name beside
the target and are renamed onto it, so a crash never leaves half a file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from heatpose.errors import HeatposeError


def load_json(path: str | Path, what: str = "JSON") -> Any:
    """Parse a json file; a missing, unreadable or malformed file is one readable error line."""
    p = Path(path)
    if not p.exists():
        raise HeatposeError(f"{what} file not found: {p}")
    if not p.is_file():
        raise HeatposeError(f"{what} path is not a file: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HeatposeError(f"{p}: cannot read {what} file: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise HeatposeError(f"{p}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None], size_hint: int | None = None) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it onto ``path``.

    Readers see the old file or the complete new one, never a partial write; on any error the
    temporary file is removed and the old file is left alone. The file gets the permissions a
    plain ``open(path, "w")`` would give it (``mkstemp`` alone would leave it private, 0600).

    ``size_hint`` (bytes, about what will be written) is checked against the free space first,
    so a nearly full disk fails before anything is written and the error says how much is
    needed. An ``OSError`` (read-only folder, a file where a folder should be, disk full) is a
    :class:`HeatposeError` naming the path and the cause; a Ctrl-C stays a ``KeyboardInterrupt``
    even when it arrives inside a C++ writer that wraps it (``torch.save`` turns it into a
    ``RuntimeError`` from ``inline_container.cc``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if size_hint is not None:
            check_free_space(path, size_hint)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise HeatposeError(describe_os_error(err, path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        cause = _root_cause(err)
        if isinstance(cause, KeyboardInterrupt) and not isinstance(err, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        if isinstance(cause, OSError):
            raise HeatposeError(describe_os_error(cause, path, size_hint)) from None
        raise
    return path


def _root_cause(err: BaseException) -> BaseException:
    """The first KeyboardInterrupt or OSError in ``err``'s chain (``__cause__``/``__context__``),
    else ``err`` itself: C++ writers report a failed Python ``write`` as a ``RuntimeError``."""
    seen: set[int] = set()
    node: BaseException | None = err
    while node is not None and id(node) not in seen:
        if isinstance(node, (KeyboardInterrupt, OSError)):
            return node
        seen.add(id(node))
        node = node.__cause__ or node.__context__
    return err


def describe_os_error(err: OSError, path: str | Path, size_hint: int | None = None) -> str:
    """One line: the path and the cause (read-only folder, not a folder, disk full, ...)."""
    cause = err.strerror or (str(err).splitlines() or [type(err).__name__])[0]
    line = f"cannot write {path}: {cause}"
    if err.filename and str(err.filename) != str(path):
        line += f" ({err.filename})"
    if err.errno == errno.ENOSPC and size_hint is not None:
        line += f" (the file needs about {_mb(size_hint)}, {_mb(_free_bytes(Path(path).parent))} free)"
    return line


def _mb(n: int | float) -> str:
    return f"{n / 2**20:.1f} MB"


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def check_free_space(path: str | Path, size: int) -> None:
    """Refuse to start writing ``size`` bytes beside ``path`` when the disk cannot hold them
    (plus 1 MB of slack): the old file is untouched and the error says how much is needed."""
    path = Path(path)
    free = _free_bytes(path.parent)
    if free < size + 2**20:
        raise HeatposeError(
            f"cannot write {path}: not enough disk space: the file needs about {_mb(size)}, "
            f"{_mb(free)} free in {path.parent}"
        )


_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")  # what atomic_write's mkstemp names look like


def remove_orphan_temp_files(folder: str | Path) -> list[Path]:
    """Delete ``.<name>.<random>.tmp`` files left in ``folder`` by writes that were killed.

    Only :func:`atomic_write`'s own temporary names are touched; returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and _TEMP_NAME.match(p.name):
            try:
                p.unlink()
            except OSError as err:
                raise HeatposeError(
                    f"cannot remove the leftover temporary file {p}: {err.strerror}"
                ) from None
            removed.append(p)
    return removed


def resolve_image_path(image_dir: str | Path, file_name: Any, where: str) -> Path:
    """``image_dir / file_name``, refusing names that leave ``image_dir``.

    An annotation file names images relative to the image folder; an absolute path or one
    whose ``..`` parts climb out of the folder is an error (a json from elsewhere must not make
    heatpose read arbitrary files). The check is lexical, so an image folder that is itself a
    symlink, or holds symlinks, still works. ``where`` names the record in the error line.
    """
    if not isinstance(file_name, str) or not file_name.strip():
        raise HeatposeError(f"{where}: file_name must be a non-empty string, got {file_name!r}")
    if os.path.isabs(file_name) or re.match(r"^[A-Za-z]:", file_name):
        raise HeatposeError(
            f"{where}: file_name {file_name!r} is an absolute path; it must be relative to the image folder"
        )
    norm = os.path.normpath(file_name)
    if norm == os.curdir or norm == os.pardir or norm.startswith(os.pardir + os.sep):
        raise HeatposeError(f"{where}: file_name {file_name!r} resolves outside the image folder {image_dir}")
    return Path(image_dir) / norm


def _current_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = None, compact: bool = False) -> Path:
    separators = (",", ":") if compact else None
    text = json.dumps(obj, indent=indent, separators=separators, default=_json_default)
    return atomic_write_text(path, text + "\n")


def _json_default(value: Any) -> Any:
    """numpy arrays and scalars (e.g. an MMPose checkpoint's ``meta``) as plain json values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
