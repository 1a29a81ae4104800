"""Kill this process with SIGKILL at the N-th file publication (os.replace), or trace them.

Used by tests/test_crash_consistency.py in forked children, and by sitecustomize.py (next to
this file) in processes started with this folder on PYTHONPATH. gdrun itself knows nothing of it.
"""

import os
import signal
from typing import Optional


def install(kill: Optional[str] = None, trace: Optional[str] = None) -> None:
    """`kill`: "N:before" (the temporary file is whole, not yet renamed) or "N:after"; `trace`: a file
    to which the destination of every rename is appended."""
    replace = os.replace
    count = 0
    at, _, when = (kill or "0:before").partition(":")

    def faulty_replace(src, dst, *args, **kwargs):
        nonlocal count
        count += 1
        if trace:
            with open(trace, "a") as f:
                f.write(f"{os.fspath(dst)}\n")
        if count == int(at) and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = replace(src, dst, *args, **kwargs)
        if count == int(at) and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    os.replace = faulty_replace
