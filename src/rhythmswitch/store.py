"""Crash-safe files: atomic writes (temp file + fsync + rename) and a checksum manifest.

Every artefact of a run directory is written through these helpers, so a process killed at any
moment (SIGKILL included) leaves either the old file or the new one, never a torn one.  The
manifest ``DIR/manifest.json`` records a SHA-256 per file; :func:`verify` checks a file against it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

MANIFEST = "manifest.json"


def format_cell(v: Any, digits: int = 9) -> str:
    """One CSV cell: "" for None, true/false, integers as such, floats to ``digits``
    significant digits ("NaN" for non-finite), anything else as ``str``."""
    if v is None:
        return ""
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return "NaN" if not np.isfinite(v) else f"{float(v):.{digits}g}"
    return str(v)


def csv_text(columns: list[str], rows: list[dict], digits: int = 9) -> str:
    """A CSV table (header + one line per row dict; a missing key is an empty cell)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([format_cell(row.get(c), digits) for c in columns])
    return buf.getvalue()


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def npz_bytes(arrays: dict[str, Any]) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(run_dir: str | Path) -> dict[str, str]:
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in data.get("files", {}).items()}


def record(run_dir: str | Path, *paths: str | Path) -> None:
    """Add (or refresh) the checksums of ``paths`` in the run's manifest, atomically."""
    run_dir = Path(run_dir)
    files = read_manifest(run_dir)
    for p in paths:
        p = Path(p)
        files[str(p.resolve().relative_to(run_dir.resolve()))] = sha256_file(p)
    atomic_write_text(run_dir / MANIFEST, json.dumps({"files": files}, indent=1, sort_keys=True))


def verify(run_dir: str | Path, path: str | Path) -> bool | None:
    """True if ``path`` matches its manifest checksum, False if not, None if not recorded."""
    run_dir = Path(run_dir)
    rel = str(Path(path).resolve().relative_to(run_dir.resolve()))
    expected = read_manifest(run_dir).get(rel)
    if expected is None:
        return None
    return sha256_file(path) == expected
