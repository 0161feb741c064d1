"""How PoseGen's scripts end on an error: one line saying what failed, where and what to do, no traceback."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable

# What to do about the system errors a long run meets (its files are written atomically, so a run
# stopped by one resumes where it was once the cause is fixed).
_FIXES = {
    errno.EROFS: "the folder is read-only: pass a writable --out (or make it writable) and start again",
    errno.EACCES: "no permission to write there: pass a folder you may write to as --out",
    errno.EPERM: "no permission to write there: pass a folder you may write to as --out",
    errno.ENOSPC: "the disk is full: free some space, then resume with --resume (nothing written so far is lost)",
    errno.EDQUOT: "the disk quota is used up: free some space, then resume with --resume",
    errno.ENOTDIR: "a path that must be a folder names a file: pass a folder as --out",
    errno.EISDIR: "a path that must be a file names a folder: pass a file path",
    errno.EIO: "writing failed: check that the disk is not full or failing, then resume with --resume",
    errno.ENOENT: "the file or folder does not exist: check the path",
}


def describe_os_error(err: OSError) -> str:
    """``err`` as 'what failed (where): what to do'."""
    where = f" ({err.filename})" if err.filename else ""
    what = err.strerror or str(err)
    fix = _FIXES.get(err.errno or -1, "fix the cause and run the command again")
    return f"{what}{where}: {fix}"


def run_script(main: Callable[[], int | None], script: str, errors: tuple[type[Exception], ...]) -> None:
    """Run a script's ``main`` and exit with its code; PoseGen's own errors (``errors``) and system errors
    end it with one line ``<script>: error: ...``."""
    try:
        code = main()
    except errors as err:
        raise SystemExit(f"{script}: error: {err}") from None
    except OSError as err:
        raise SystemExit(f"{script}: error: {describe_os_error(err)}") from None
    sys.exit(code or 0)
