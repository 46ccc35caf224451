"""File I/O that user-facing code shares: json with one-line errors, and atomic writes.

Files that matter (checkpoints, predictions, datasets, logs) go to a temporary name beside
the target and are renamed onto it, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
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


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it onto ``path``.

    Readers see the old file or the complete new one, never a partial write; on any error the
    temporary file is removed and the old file is left alone. The file gets the permissions a
    plain ``open(path, "w")`` would give it (``mkstemp`` alone would leave it private, 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
    return atomic_write_text(path, json.dumps(obj, indent=indent, separators=separators) + "\n")
