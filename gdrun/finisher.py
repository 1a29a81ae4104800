"""A second process that does a run's end-of-run work (its pictures, ...) from the run folder's files.

Started when a job starts, it imports what that work needs (matplotlib ~0.5 s, torch) on the
second core while the main process imports torch and trains; at the run's end the main process
hands it tasks and waits for their answers. A task is any function named `module:function` whose
arguments are plain values (paths as strings) and which reads and writes files only: drawing a
run's pictures (`gdrun.jobs:draw_pictures`), and any other end-of-run product that is computed
from the folder (a table of per-class metrics with scikit-learn, say): `Finisher.submit` it
and `wait`. When the process cannot be started, or dies, or no core is free for it
(`spare_core`), a task runs in this process instead: the worker only makes things sooner, never
different.

Protocol: one JSON line per task on the worker's stdin ({"task", "args", "trust", "log", "path"}),
one JSON line per answer on its own pipe ({"ok": true} or {"ok": false, "error": "..."}). Its
stdout is its stderr, so anything a task prints reaches the user and never the answers.
"""

import atexit
import contextlib
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence

from gdrun.config.targets import trusting
from gdrun.rundir.logfile import ConsoleFormatter, attached

log = logging.getLogger("gdrun")

# What the worker imports at once, while the main process imports torch: the pictures' needs.
PRELOAD = ("matplotlib", "matplotlib.figure", "gdrun.plots.draw", "torch", "gdrun.training.build")


def call(task: str, args: Sequence[Any], trust: Sequence[str] = (), log_path: Optional[str] = None) -> None:
    """Run `module:function`(*args), trusting `trust`'s targets, its log lines also in `log_path`."""
    module, _, name = task.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    with trusting(list(trust)), attached(Path(log_path)) if log_path else contextlib.nullcontext():
        function(*args)


@dataclass
class Pending:
    """A task handed to the worker, until its answer is read."""

    task: str
    args: List[Any]
    trust: List[str] = field(default_factory=list)
    log_path: Optional[str] = None


class Finisher:
    """The worker process, seen from the main process: submit tasks, wait for them, close."""

    def __init__(self, preload: Sequence[str] = PRELOAD, start: bool = True):
        """`start` False: no process, every task runs in this one when waited for."""
        self.pending: List[Pending] = []
        self.process: Optional[subprocess.Popen] = None
        self.answers: Optional[IO[str]] = None
        if not start:
            return
        try:
            read, write = os.pipe()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gdrun.finisher", str(write), *preload],
                stdin=subprocess.PIPE,
                stdout=sys.stderr.fileno() if _has_fileno(sys.stderr) else None,
                pass_fds=(write,),
                text=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)},
            )
            os.close(write)
            self.answers = os.fdopen(read, "r")
        except OSError as error:  # no process to be had (limits): every task runs here
            log.info("no finishing worker (%s): end-of-run work runs in this process", error)
            self.process = None

    def submit(self, task: str, *args: Any, trust: Sequence[str] = (), log_path: Optional[Path] = None) -> None:
        """Hand `task`(*args) to the worker (or keep it to run here, when there is no worker)."""
        pending = Pending(task, list(args), list(trust), str(log_path) if log_path else None)
        if self.alive():
            assert self.process is not None and self.process.stdin is not None
            try:
                line = {"task": task, "args": pending.args, "trust": pending.trust, "log": pending.log_path}
                self.process.stdin.write(json.dumps(line) + "\n")
                self.process.stdin.flush()
            except OSError:  # it died: the task runs here when waited for
                self.close()
        self.pending.append(pending)

    def wait(self) -> None:
        """Every submitted task done: its answer read, or the task run here when the worker did not answer."""
        pending, self.pending = self.pending, []
        try:
            for task in pending:
                answer = self._answer() if self.alive() else None
                if answer is None:
                    call(task.task, task.args, task.trust, task.log_path)
                elif not answer.get("ok"):
                    log.warning("end-of-run task %s failed in the worker: %s", task.task, answer.get("error"))
        except BaseException:  # Ctrl-C while waiting: the worker's half-done work is not waited for
            self.close(at_once=True)
            raise

    def _answer(self) -> Optional[dict]:
        assert self.answers is not None
        line = self.answers.readline()
        if not line:  # the worker ended without answering
            self.close()
            return None
        return json.loads(line)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def end(self) -> None:
        """At exit: a worker with nothing left to do (every task waited for, or a job refused before any) is
        stopped at once rather than waited for while it still imports."""
        self.close(at_once=not self.pending)

    def close(self, at_once: bool = False) -> None:
        """End the worker: after its tasks (EOF on its stdin), or `at_once` (a stopped command)."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if at_once:
                process.kill()
            assert process.stdin is not None
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        if self.answers is not None:
            with contextlib.suppress(OSError):
                self.answers.close()


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):  # pytest's captured stderr, a StringIO
        return False


_shared: Optional[Finisher] = None
_started_in: Any = None


def spare_core() -> bool:
    """Whether a second process would run beside this one: a core the machine's load leaves free.

    On a busy machine (or one core) the worker's imports would only take turns with ours, and its
    second import of torch would cost more than it saves: the tasks then run in this process.
    GDRUN_FINISHER=0 or 1 decides it instead.
    """
    told = os.environ.get("GDRUN_FINISHER")
    if told in ("0", "1"):
        return told == "1"
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average (Windows): count the cores alone
        load = 0.0
    return cores > 1 and load <= cores - 1


def surroundings() -> Any:
    """What a worker inherits when it starts and a task may depend on: the folder, import path, environment."""
    return os.getcwd(), tuple(sys.path), tuple(sorted(os.environ.items()))


def shared() -> Finisher:
    """This process's worker, started on first use (a job's start) and kept for the next jobs of the same
    surroundings (a process that changes folder or environment between jobs, as tests do, gets a new one)."""
    global _shared, _started_in
    now = surroundings()
    if _shared is not None and (now != _started_in or (_shared.process is not None and not _shared.alive())):
        _shared.close()
        _shared = None
    if _shared is None:
        _shared, _started_in = Finisher(start=spare_core()), now
        atexit.register(_shared.end)
    return _shared


def serve(answers_fd: int, preload: Sequence[str]) -> None:
    """The worker: import `preload`, then run tasks from stdin until it closes, answering each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle; it ends us
    answers = os.fdopen(answers_fd, "w")
    os.dup2(2, 1)  # a task's prints go to stderr, never into the answers
    console = logging.StreamHandler(sys.stderr)  # warnings as the main process's console says them
    console.setFormatter(ConsoleFormatter())
    console.setLevel(logging.WARNING)
    logging.getLogger().addHandler(console)
    for name in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            call(request["task"], request["args"], request.get("trust", ()), request.get("log"))
            answer: Dict[str, Any] = {"ok": True}
        except Exception as error:  # noqa: BLE001 - told to the main process, which says it
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    # Every answer is written and every task's file closed: skip tearing down torch and matplotlib (~1 s).
    answers.close()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2:])
