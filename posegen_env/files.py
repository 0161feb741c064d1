"""Atomic writes and checked reads: nothing PoseGen writes is ever left half-written."""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

if TYPE_CHECKING:
    from PIL import Image


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a hidden sibling file and rename it over ``path`` (the suffix is kept)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        try:
            write(tmp)
        except RuntimeError as err:  # torch's writer reports a full disk or a failed write as RuntimeError
            full = shutil.disk_usage(path.parent).free < 1 << 20
            if not full and not any(w in str(err) for w in ("inline_container", "iostream", "write")):
                raise
            detail = " ".join(str(err).split())[:160]
            raise OSError(errno.ENOSPC if full else errno.EIO, "No space left on device" if full else
                          f"writing failed ({detail})", str(path)) from err
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


def require_directory(root: Path, kind: str, error: type[Exception]) -> None:
    """Raise ``error`` if ``root`` is not a directory, pointing at the backup an interrupted
    :func:`install_directory` may have left behind."""
    if root.is_dir():
        return
    backups = sorted(root.parent.glob(f".{root.name}.old-*")) if root.parent.is_dir() else []
    hint = f"; {backups[0]} is the previous {kind} left by an interrupted overwrite, rename it back" if backups else ""
    raise error(f"{root}: {kind} directory does not exist{hint}")


class StagedDirectoryWriter:
    """A directory written in a hidden staging sibling and installed whole on a clean exit.

    The life cycle every PoseGen writer of a directory shares: ``__enter__`` makes the staging
    directory and lets ``_prepare`` lay it out; a clean ``__exit__`` calls ``_commit``, which writes
    the index files and then ``_install``; the staging copy is removed whatever happens.
    Subclasses set ``out_dir`` and ``overwrite`` and name what they write (``_kind``, its ``_marker``
    file, its ``_error``), so that :func:`check_replaceable` refuses to replace anything else, both
    when the writer is made and again just before install.
    """

    out_dir: Path
    overwrite: bool = False
    _kind: ClassVar[str]
    _marker: ClassVar[str]
    _error: ClassVar[type[Exception]]
    _tmp: Path | None = None

    def __enter__(self):
        self._tmp = staging_directory(self.out_dir)
        self._prepare(self._tmp)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    def _prepare(self, tmp: Path) -> None:
        """Create the staging directory's sub-folders."""

    def _commit(self) -> None:
        raise NotImplementedError

    def _check_target(self, out_dir: Path) -> None:
        check_replaceable(out_dir, self.overwrite, self._marker, self._error, self._kind)

    def _install(self) -> None:
        assert self._tmp is not None
        # The target may have appeared since the writer was created: check again before replacing it.
        install_directory(self._tmp, self.out_dir, self._check_target)
        self._tmp = None


def read_torch_file(path: str | os.PathLike, error: type[Exception], missing_hint: str) -> object:
    """What a torch file holds (tensors and plain containers only), or ``error`` saying why not."""
    path = Path(path)
    if not path.is_file():
        raise error(f"file not found: {path}. {missing_hint}")
    changed = zip_checksum_failure(path)
    if changed:
        raise error(f"{path}: corrupt: {changed}; restore the file or write it again")
    with open(path, "rb") as f:
        head = f.read(4)
    if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):  # torch.save writes a zip; old torch a pickle
        raise error(f"{path}: not a torch checkpoint file (it begins with {head!r}, neither a zip archive nor a "
                    f"pickle). {missing_hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign files raise many exception types
        # torch's first line says what failed; the rest is advice on weights_only that does not apply here
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise error(f"{path}: corrupt or not a torch checkpoint file ({type(err).__name__}: {reason})") from err


def zip_checksum_failure(path: Path) -> str | None:
    """Why a zip-based file (torch checkpoints, .npz, SB3 policies) no longer matches the CRC-32 checksums
    recorded when it was written, or None. numpy and SB3 read through ``zipfile``, which checks them;
    ``torch.load`` does not, and a checkpoint with flipped bits would load with wrong weights."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile:
        return None  # not a zip (a legacy torch file): the reader decides what it is
    except (OSError, EOFError, zlib.error) as err:
        return f"unreadable ({type(err).__name__}: {err})"
    return None if bad is None else f"its part {bad!r} does not match the checksum recorded when it was written"


def read_checkpoint(path: str | os.PathLike, fmt: str | tuple[str, ...], error: type[Exception],
                    missing_hint: str) -> dict:
    """A torch checkpoint dict of format ``fmt`` (or of one of several), or ``error`` saying what is
    wrong with the file."""
    state = read_torch_file(path, error, missing_hint)
    formats = (fmt,) if isinstance(fmt, str) else fmt
    if not isinstance(state, dict) or state.get("format") not in formats:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        kinds = " or ".join(f.split("-")[1] for f in formats)
        if isinstance(found, str) and any(found.rsplit("-", 1)[0] == f.rsplit("-", 1)[0] for f in formats):
            raise error(f"{path}: a PoseGen {kinds} file of format {found!r}, which this version does not read (it "
                        f"reads {' or '.join(repr(f) for f in formats)}); make it again with this version. "
                        f"{missing_hint}")
        raise error(f"{path}: not a PoseGen {kinds} file "
                    f"(format {found!r}, expected {' or '.join(repr(f) for f in formats)})")
    return state


def listing(items: list, limit: int = 5) -> str:
    """The first few items of a list for an error message, with the total when it is longer."""
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def read_json_header(path: Path, fmt: str, version: int, keys: tuple[str, ...], optional: tuple[str, ...],
                     error: type[Exception], kind: str, writer: str) -> dict:
    """A format's JSON header file, checked for syntax, format name, version and keys.

    ``kind`` names the format for messages ("capture", "dataset") and ``writer`` what writes it.
    """
    if not path.is_file():
        raise error(f"{path}: file is missing; a {kind} directory must contain {path.name} (write {kind}s "
                    f"with {writer})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: invalid JSON ({e}); fix the syntax or rewrite the {kind}") from None
    if not isinstance(doc, dict):
        raise error(f"{path}: must hold a JSON object, got {type(doc).__name__}")
    if doc.get("format") != fmt:
        raise error(f"{path}: format is {doc.get('format')!r}, expected {fmt!r}; this is not a PoseGen {kind} "
                    f"(convert other data with {writer})")
    if doc.get("version") != version:
        raise error(f"{path}: version is {doc.get('version')!r}, this PoseGen reads version {version}; rewrite "
                    f"the {kind} or use a matching PoseGen")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise error(f"{path}: missing key(s) {', '.join(missing)}")
    unknown = [k for k in doc if k not in keys + optional]
    if unknown:
        raise error(f"{path}: unknown key(s) {', '.join(unknown)}; put free-form data under \"meta\"")
    return doc


@dataclass(frozen=True)
class PngRules:
    """What a format asks of one kind of PNG file, and what its messages add when a file breaks it,
    so that every format checks its pictures the same way but speaks of its own layout."""

    error: type[Exception]
    kind: str  # "image", "mask": what messages call the file
    modes: tuple[str, ...]  # PIL modes accepted
    size_wh: tuple[int, int]
    missing_hint: str  # after "... file is missing; "
    size_hint: str  # after "... size is WxH (W x H) but "


def open_png(path: Path, rules: PngRules) -> Image.Image:
    """Open a PNG and check its header (format, mode, size) without decoding the pixels."""
    from PIL import Image

    error, kind = rules.error, rules.kind
    try:
        im = Image.open(path)
    except FileNotFoundError:
        raise error(f"{path}: {kind} file is missing; {rules.missing_hint}") from None
    except (OSError, SyntaxError) as e:
        raise error(f"{path}: cannot be read as an image ({e}); re-export it as PNG") from None
    if im.format != "PNG":
        problem = f"is {im.format}, not PNG; store {kind}s as lossless PNG"
    elif im.mode not in rules.modes:
        problem = (f"has PIL mode {im.mode}, expected {' or '.join(rules.modes)}; save "
                   + ("RGB images without alpha" if kind == "image" else f"{kind}s as 8-bit greyscale"))
    elif im.size != tuple(rules.size_wh):
        problem = f"{kind} size is {im.size[0]}x{im.size[1]} (W x H) but {rules.size_hint}"
    else:
        return im
    im.close()
    raise error(f"{path}: {problem}")


def read_png(path: Path, rules: PngRules, mode: str | None = None) -> np.ndarray:
    """The pixels of a PNG checked by :func:`open_png`, converted to PIL ``mode`` if given; a file
    whose header is fine but whose data is not is reported as corrupt, not as a PIL traceback."""
    im = open_png(path, rules)
    try:
        with im:
            return np.array(im.convert(mode) if mode else im)
    except OSError as e:
        raise rules.error(f"{path}: {rules.kind} file is corrupt ({e}); re-export it") from None


def check_replaceable(out_dir: Path, overwrite: bool, marker: str, error: type[Exception], kind: str) -> None:
    """Refuse to replace ``out_dir`` unless ``overwrite`` is set and it is empty or a ``kind``
    (holds ``marker``): a wrong path must never wipe unrelated files."""
    if not (out_dir.exists() or out_dir.is_symlink()):
        return
    if not overwrite:
        raise error(f"{out_dir}: already exists; pass overwrite=True (--overwrite in the scripts) to replace it, "
                    "or choose another out_dir")
    if not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / marker).is_file()):
        raise error(f"{out_dir}: refusing to replace it: it is not a {kind} (no {marker}) nor an empty directory; "
                    "remove it yourself or choose another out_dir")


def check_meta(meta, error: type[Exception], where: str) -> dict:
    """A writer's free-form ``meta``: a JSON-serialisable dict (None means empty)."""
    meta = {} if meta is None else meta
    try:
        if not isinstance(meta, dict):
            raise TypeError(f"got {type(meta).__name__}")
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise error(f"{where}: meta must be a JSON-serialisable dict ({e})") from None
    return meta


def dump_json(doc: dict, depth: int | None = None) -> str:
    """``doc`` indented as by ``json.dumps(indent=2)``, but with every list that holds no list or
    object on one line, so that a matrix reads as its rows and a frame list as one line; values
    nested ``depth`` levels deep (None: no limit) stay on one line whatever they hold."""
    def dump(value, pad: str, level: int) -> str:
        inner = pad + "  "
        if depth is not None and level >= depth:
            return json.dumps(value)
        if isinstance(value, dict) and value:
            items = (f"{inner}{json.dumps(key)}: {dump(v, inner, level + 1)}" for key, v in value.items())
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            return "[\n" + ",\n".join(inner + dump(v, inner, level + 1) for v in value) + f"\n{pad}]"
        return json.dumps(value)

    # through JSON once first: keys become strings and tuples lists, as json.dumps itself would make them
    return dump(json.loads(json.dumps(doc, allow_nan=False)), "", 0) + "\n"
