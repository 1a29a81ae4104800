"""Ctrl-C and SIGTERM: a polite request to stop, for one run and for a whole sweep.

The first SIGINT or SIGTERM asks the work in flight to stop where nothing is lost: a training
loop finishes its step and saves checkpoints/last.pt (`StopRequest`), a sweep starts no new job.
Where there is nothing to save yet (a job starting: torch importing, data loading) it stops at
once (`Interrupted`). A second Ctrl-C stops at once.

Who holds the signals:
- the command's process (`gdrun`, `gdrun -m`), for its whole life (`hold_for_command`). When its
  sweep's jobs run in child processes (joblib's workers, submitit_local's job processes: the
  leaves of its process tree) it passes the first signal on to them, and a second Ctrl-C kills
  them; processes it starts after a stop learn of it from the environment. Jobs on a cluster
  are out of its reach: they go on, and the command stops at once;
- a launcher's worker process, from its first job on (`job_starting`). It takes the first
  signal only: a terminal's Ctrl-C reaches it and its parent passes it on too, and whether to
  stop at once is its parent's decision;
- elsewhere (the Python API, the labs) `StopRequest` holds them while it trains.
No torch here: the command imports this at start-up.
"""

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Literal, Optional

# Set in the command's environment at a stop, so a job process started after it starts no job.
STOP_ENV = "GDRUN_STOP"
SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Where a sweep's jobs run: in the command's process, in its child processes, or out of its reach.
JobsRun = Literal["here", "children", "elsewhere"]


class Interrupted(KeyboardInterrupt):
    """A stop that could not wait: a signal before there was anything to save, or a second Ctrl-C."""

    def __init__(self, signum: int, second: bool = False):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.second = second


@dataclass
class _Process:
    """This process's signals: who holds them, what came, and what a first signal does now."""

    holder: Optional[str] = None  # "command", "worker", "run" (a StopRequest alone), or None
    signum: Optional[int] = None  # the first SIGINT/SIGTERM that came
    second: bool = False  # a second Ctrl-C came: stopped at once
    polite: bool = False  # a first signal is a request (True) or stops at once (nothing to save yet)
    sweep: Optional[Path] = None  # the sweep the command launched
    jobs_run: JobsRun = "here"
    job: bool = False  # a job has started in this process
    training: Optional["StopRequest"] = None  # the training loop running in this process
    previous: Dict[int, Any] = field(default_factory=dict)


_process = _Process()


def _handle(signum: int, _frame: object) -> None:
    state = _process
    if state.signum is None:
        state.signum = signum
        if state.training is not None:
            state.training.signum = signum
        if state.holder == "command" and state.jobs_run == "children":
            os.environ[STOP_ENV] = signal.Signals(signum).name
            signal_job_processes(signum)
        if not state.polite:
            raise Interrupted(signum)
        now = _what_happens_now(state)
        if now and state.holder != "worker":
            print(f"\ngdrun: {signal.Signals(signum).name}: {now}", file=sys.stderr, flush=True)
    elif signum == signal.SIGINT and state.holder != "worker":
        state.second = True
        if state.jobs_run == "children":
            signal_job_processes(signal.SIGKILL)
        raise Interrupted(signum, second=True)


def _what_happens_now(state: _Process) -> Optional[str]:
    """What a polite stop waits for; None before the run's job has begun (it will not begin)."""
    if state.sweep is not None:
        return (
            "stopping the sweep: the jobs in flight finish their step and save a checkpoint, "
            "and no other job starts (Ctrl-C again to stop at once)"
        )
    if state.training is not None:
        return "stopping after this step and saving a checkpoint (Ctrl-C again to stop at once)"
    if state.job:
        return "stopping once the run's last files are written (Ctrl-C again to stop at once)"
    return None


def _install(holder: str, polite: bool) -> bool:
    """Hold SIGINT and SIGTERM in this process; False where that is impossible (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    global _process
    _process = _Process(holder=holder, polite=polite)
    _process.previous = {signum: signal.signal(signum, _handle) for signum in SIGNALS}
    return True


def _uninstall() -> None:
    global _process
    for signum, handler in _process.previous.items():
        signal.signal(signum, handler)
    if _process.holder == "command" and _process.signum is not None:
        os.environ.pop(STOP_ENV, None)
    _process = _Process()


# ---------------------------------------------------------------- the command and its jobs
def hold_for_command() -> None:
    """The command's process: SIGINT and SIGTERM are gdrun's until `release`."""
    _install("command", polite=False)


def release() -> None:
    """Give the signals back (the command ended; a test may call it again in the same process)."""
    if _process.holder is not None:
        _uninstall()


def launched(sweep_dir: Optional[Path] = None, jobs_run: JobsRun = "here") -> None:
    """Hydra launches the command's run, or its sweep (`sweep_dir`), whose jobs run `jobs_run`.

    From now on a first signal is a request: a job not yet begun does not begin, the jobs in
    flight, here or in child processes, stop after their step. Jobs elsewhere (on a cluster) are
    out of reach: they go on, and the command stops at once.
    """
    if _process.holder == "command":
        _process.sweep = Path(sweep_dir) if sweep_dir is not None else None
        _process.jobs_run = jobs_run
        _process.polite = jobs_run != "elsewhere"


def launched_sweep() -> Optional[Path]:
    """The sweep this command launched, if any."""
    return _process.sweep


def jobs_out_of_reach() -> bool:
    """The command's sweep runs its jobs where its signals do not reach (they go on after it stops)."""
    return _process.jobs_run == "elsewhere"


@contextmanager
def job_starting() -> Iterator[None]:
    """A job is starting: until its training begins, a signal stops it at once (there is nothing to save).

    In a process nobody holds the signals of (a launcher's worker), the job takes them for the
    process's life: between jobs a signal is noted, and the next job does not start.
    """
    if _process.holder is None:
        _install("worker", polite=True)
    _process.job = True
    polite, _process.polite = _process.polite, False
    try:
        yield
    finally:
        _process.polite = polite


def requested() -> Optional[int]:
    """The signal that asked this process (or, in a job process, the command that started it) to stop."""
    if _process.signum is not None:
        return _process.signum
    name = os.environ.get(STOP_ENV, "") if _process.holder != "command" else ""
    return signal.Signals[name].value if name in signal.Signals.__members__ else None


def stopped_at_once() -> bool:
    """A second Ctrl-C came."""
    return _process.second


def command_stopping() -> bool:
    """The command's own process was asked to stop (a job running in it ends the sweep after it)."""
    return _process.holder == "command" and _process.signum is not None


# ---------------------------------------------------------------- the processes that run the jobs
def job_processes() -> List[int]:
    """The processes running this command's jobs: the leaves of its process tree that take SIGINT.

    joblib's workers are its children, submitit's job processes its grandchildren (under a
    controller each); the resource trackers both start ignore SIGINT and SIGTERM.
    """
    children = _children()
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        if children.get(pid):
            todo += children[pid]
        elif not _ignores_sigint(pid):
            found.append(pid)
    return found


def signal_job_processes(signum: int) -> None:
    for pid in job_processes():
        try:
            os.kill(pid, signum)
        except OSError:  # it ended meanwhile
            pass


def end_job_processes(wait_seconds: float = 10.0) -> None:
    """Give the sweep's job processes `wait_seconds` to finish what they are saving, then kill the rest."""
    if _process.jobs_run != "children":
        return
    deadline = time.monotonic() + wait_seconds
    while job_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    signal_job_processes(signal.SIGKILL)


def _children() -> Dict[int, List[int]]:
    """Every process's children: from /proc on Linux, else from psutil if installed, else none known."""
    children: Dict[int, List[int]] = {}
    if Path("/proc/self/stat").exists():
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:  # it ended meanwhile
                continue
            state, ppid = stat.rpartition(")")[2].split()[:2]  # after the name, which may hold spaces
            if state != "Z":  # a zombie has ended: only its parent's wait is missing
                children.setdefault(int(ppid), []).append(int(entry.name))
        return children
    try:
        import psutil
    except ImportError:
        return children
    for process in psutil.process_iter(["pid", "ppid", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE:
            children.setdefault(process.info["ppid"], []).append(process.info["pid"])
    return children


def _ignores_sigint(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ignored = next((line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), "0")
    return bool(int(ignored, 16) & (1 << (signal.SIGINT - 1)))


# ---------------------------------------------------------------- the training loop's view
class StopRequest:
    """While active, SIGINT/SIGTERM set `signum` instead of stopping the process: the loop saves, then stops."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._own = False  # the signals were nobody's: this request holds them while it trains

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> Optional[str]:
        return signal.Signals(self.signum).name if self.signum is not None else None

    def __enter__(self) -> "StopRequest":
        if _process.holder is None:
            self._own = _install("run", polite=True)
            if not self._own:  # not the main thread: signals are not this loop's to take
                return self
        self.signum = _process.signum  # a signal noted before training began
        _process.training = self
        _process.polite = True  # the job's end stays polite too: its last files are written whole
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        if _process.training is self:
            _process.training = None
        if self._own:
            _uninstall()
            self._own = False
        return False
