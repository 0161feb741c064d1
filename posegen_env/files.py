"""Atomic writes and checked reads: nothing PoseGen writes is ever left half-written."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import torch


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a hidden sibling file and rename it over ``path`` (the suffix is kept)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def staging_directory(out_dir: Path) -> Path:
    """A new hidden sibling directory to build ``out_dir`` in before :func:`install_directory`."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    return tmp


def install_directory(staged: Path, out_dir: Path, check_replaceable: Callable[[Path], None]) -> None:
    """Move a complete ``staged`` directory to ``out_dir``.

    An existing ``out_dir`` (after ``check_replaceable(out_dir)`` allows it) is renamed to a backup,
    the new one renamed in, then the backup deleted: at every moment one complete copy exists.
    """
    if not (out_dir.exists() or out_dir.is_symlink()):
        os.rename(staged, out_dir)
        return
    check_replaceable(out_dir)
    backup = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(out_dir, backup)
    try:
        os.rename(staged, out_dir)
    except BaseException:
        os.rename(backup, out_dir)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def read_checkpoint(path: str | os.PathLike, fmt: str, error: type[Exception], missing_hint: str) -> dict:
    """A torch checkpoint dict of format ``fmt``, or ``error`` saying what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"file not found: {path}. {missing_hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign files raise many exception types
        raise error(f"{path}: corrupt or not a PoseGen file ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or state.get("format") != fmt:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise error(f"{path}: not a PoseGen {fmt.split('-')[1]} file "
                    f"(format {found!r}, expected {fmt!r})")
    return state
