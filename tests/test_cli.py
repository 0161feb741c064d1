"""System errors end a script with one line saying what failed, where and what to do; nothing is lost."""

import errno
import os
import subprocess
import uuid

import pytest
import run_agent
import torch

from posegen_env.cli import describe_os_error, run_script
from posegen_env.files import atomic_write

RUN_ERRORS = (ValueError,)
QUICK = ["--quick", "--policy", "random", "--avatar", "avatar", "--estimator", "baseline", "--background-mix", "plain"]


@pytest.fixture
def mounted(tmp_path):
    """Mount a small tmpfs (``mount(options)``) where the machine allows it (root on Linux), else skip."""
    points = []

    def mount(options: str):
        point = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
        point.mkdir()
        if os.name != "posix" or os.geteuid() != 0 or subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True).returncode:
            pytest.skip("mounting a small filesystem needs root")
        points.append(point)
        return point

    yield mount
    for point in points:
        subprocess.run(["umount", "-l", str(point)], check=False)  # lazy: a log writer may still hold a file


@pytest.mark.parametrize("code, fix", [(errno.EROFS, "read-only"), (errno.ENOSPC, "disk is full"),
                                       (errno.ENOTDIR, "names a file"), (errno.EACCES, "no permission")])
def test_each_system_error_says_what_to_do(code, fix):
    message = describe_os_error(OSError(code, os.strerror(code), "/runs/x/results.json"))
    assert "/runs/x/results.json" in message and fix in message


def test_a_run_on_a_read_only_folder_fails_in_one_line(mounted, capsys):
    out = mounted("ro,size=1m") / "run"
    with pytest.raises(SystemExit) as exit_:
        run_script(lambda: run_agent.main([*QUICK, "--out", str(out)]), "run_agent.py", RUN_ERRORS)
    assert str(exit_.value).startswith("run_agent.py: error: Read-only file system") and "writable --out" in str(
        exit_.value)


def test_a_full_disk_fails_in_one_line_and_leaves_no_half_file(mounted):
    disk = mounted("size=64k")
    with pytest.raises(OSError) as err:  # torch's writer says "file write failed": the same OSError
        atomic_write(disk / "estimator.pt", lambda t: torch.save({"w": torch.zeros(100_000)}, t))
    assert "disk" in describe_os_error(err.value) and list(disk.iterdir()) == []
    with pytest.raises(SystemExit, match="run_agent.py: error: .*resume with --resume"):
        run_script(lambda: run_agent.main([*QUICK, "--out", str(disk / "run")]), "run_agent.py", RUN_ERRORS)
