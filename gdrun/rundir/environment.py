"""What produced a run: summary.json's `environment`.

    {"gdrun": "0.1.0", "python": "3.11.2", "torch": "2.4.1", "torchvision": "0.19.1", "hydra-core": "1.3.2",
     "numpy": "2.1.0", "device": "cpu (Intel(R) Xeon(R) ...)", "host": "node07", "command": "gdrun -m ...",
     "git": {"commit": "3f2a...", "dirty": false}}

Versions from the installed packages' metadata (importing torchvision for its version would cost
~1.5 s); `git` when gdrun was started inside a git working tree (the commit of the folder it runs
in, and whether tracked files had uncommitted changes), else null. No torch here: the device's
name comes from the training layer.
"""

import functools
import os
import platform
import shlex
import socket
import subprocess
import sys
from typing import Any, Dict, Optional

# The `gdrun` command puts its own command line here, so that jobs run in worker processes
# (joblib, submitit) record the command, not the worker's.
COMMAND_VARIABLE = "GDRUN_COMMAND"
PACKAGES = ("gdrun", "torch", "torchvision", "hydra-core", "numpy")
GIT_SECONDS = 5.0


def environment(device: str) -> Dict[str, Any]:
    """The record of what produced a run on `device` (its name: `cuda:0 (NVIDIA A100 ...)`, `cpu (...)`)."""
    return {**software(), "device": device, "command": command_line(), "git": git_state(os.getcwd())}


@functools.lru_cache(maxsize=1)
def software() -> Dict[str, Any]:
    """The packages' versions, Python's and the host's name: the same for every run of a process."""
    from importlib.metadata import PackageNotFoundError, version  # here: ~10 ms, off the way to the first line

    found: Dict[str, Any] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return {**found, "python": platform.python_version(), "host": socket.gethostname()}


def command_line() -> str:
    return os.environ.get(COMMAND_VARIABLE) or shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])


@functools.lru_cache(maxsize=8)
def git_state(folder: str) -> Optional[Dict[str, Any]]:
    """{"commit": ..., "dirty": ...} of the git working tree `folder` is in; None outside one (or without git).

    Once per folder and process: a sweep's jobs share their command's. Untracked files do not count
    as changes (outputs/ would always be one).
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=GIT_SECONDS
        )
        if head.returncode != 0:  # not a working tree, or one without a commit
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_SECONDS,
        )
    except (OSError, subprocess.SubprocessError):  # no git on this machine, or it hung
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}
