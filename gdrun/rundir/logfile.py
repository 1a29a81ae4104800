"""The run's log, gdrun.log: its line format (defined here once), how it is attached, how it is read.

conf/hydra/job_logging/gdrun.yaml builds both formatters from this module, the Python API
and `resume=` attach the same file handler, and `last_error` reads the lines back.
"""

import logging
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
# The first line of a record in that format.
LOG_RECORD = re.compile(r"^\[[^]]*\]\[[^]]*\]\[(?P<level>[A-Z]+)\] - (?P<message>.*)$")
TRACEBACK = "Traceback (most recent call last):"


class FileFormatter(logging.Formatter):
    """gdrun.log's lines: time, logger, level, message (and any traceback)."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)


class ConsoleFormatter(logging.Formatter):
    """Log lines on the console in one plain sentence; tracebacks go to the run's gdrun.log only."""

    def format(self, record: logging.LogRecord) -> str:
        return f"gdrun: {record.levelname.lower()}: {record.getMessage()}"


class FileHandler(logging.FileHandler):
    """gdrun.log's handler: a record that cannot be written (a full disk) is dropped without a word.

    logging's own handler prints a traceback per lost record ("--- Logging error ---"), which
    would bury the one sentence gdrun says about the full disk.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        pass


@contextmanager
def attached(path: Path) -> Iterator[None]:
    """Append INFO and above to the log file `path` while the block runs, beside the caller's own logging."""
    handler = FileHandler(path)
    handler.setFormatter(FileFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def last_error(log_text: str) -> Optional[str]:
    """The last exception in a log (the last line of its last traceback), else its last error or warning."""
    lines = log_text.splitlines()
    if TRACEBACK in log_text:
        start = max(i for i, line in enumerate(lines) if line.startswith(TRACEBACK))
        tail = [line for line in lines[start + 1 :] if line.strip() and not LOG_RECORD.match(line)]
        body = [line for line in tail if not line.startswith(" ")]
        if body:
            return body[-1].strip()
    for line in reversed(lines):
        record = LOG_RECORD.match(line)
        if record and record["level"] in ("ERROR", "CRITICAL", "WARNING"):
            return record["message"].strip()
    return None
