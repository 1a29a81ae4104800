"""Ctrl-C and SIGTERM as a polite request: finish the current step, save, then stop.

A second Ctrl-C stops at once (Python's own KeyboardInterrupt), for a user who will not wait.
"""

import signal
import sys
import threading
from typing import Literal, Optional


class StopRequest:
    """While active, SIGINT/SIGTERM set `signum` instead of killing the process."""

    def __init__(self):
        self.signum: Optional[int] = None
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> Optional[str]:
        return signal.Signals(self.signum).name if self.signum is not None else None

    def __enter__(self) -> "StopRequest":
        # Signal handlers can only be set from the main thread (not in a launcher's worker thread).
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False

    def _handle(self, signum, _frame) -> None:
        self.signum = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the next Ctrl-C stops at once
        name = signal.Signals(signum).name
        print(
            f"\ngdrun: {name}: stopping after this step and saving a checkpoint (Ctrl-C again to stop at once)",
            file=sys.stderr,
            flush=True,
        )
