"""A full disk stops a run with a sentence, exit status 4, `failed` in its summary, no temporary files,
and the runs already on that disk untouched. The disk is a real 1 MiB tmpfs (root only)."""

import hashlib
import os
import subprocess

import pytest

from helpers import gdrun_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def digests(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def fill(disk, leave: int) -> None:
    """Fill the disk but `leave` bytes."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    (disk / "ballast").write_bytes(b"\0" * max(0, free - leave))


def test_a_full_disk_is_said_plainly_and_costs_no_other_run(small_disk):
    earlier = small_disk / "earlier"
    assert gdrun_cli("data=line", "optim.epochs=2", "plots=false", f"hydra.run.dir={earlier}").returncode == 0
    before = digests(earlier)
    fill(small_disk, leave=48 * 1024)

    folder = small_disk / "new"
    result = gdrun_cli("data=digits", "model=mlp", "optim.batch_size=1", "optim.epochs=1", "checkpoint_min_seconds=0",
                       "plots=false", f"hydra.run.dir={folder}")  # fmt: skip
    assert result.returncode == 4, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 2 and "No space left on device" in lines[-1] and str(folder) in lines[-1], lines
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    assert not list(folder.rglob(".*.tmp"))
    assert '"failed"' in (folder / "summary.json").read_text()  # over the old one: it needs no new space
    assert digests(earlier) == before
