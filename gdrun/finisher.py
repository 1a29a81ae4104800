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

Tasks run side by side: on Linux the worker forks a child for each task it is handed (the imports
are done once, in the worker, and shared with the children), so a run's pictures, handed over in two
shares (gdrun.plots.SHARES), are drawn on both cores while the main process waits. Elsewhere the
worker runs them one after the other. The worker itself never runs a task in fork mode: a process
that has run torch's parallel operations cannot safely fork (its thread pool does not survive).

Protocol: one JSON line per task on the worker's stdin ({"id", "task", "args", "trust", "log"}),
one JSON line per answer on its own pipe ({"id": n, "ok": true} or {"id": n, "ok": false, "error":
"..."}, each written whole in one write, so answers of children never interleave). Its stdout is
its stderr, so anything a task prints reaches the user and never the answers.
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


def call(task: str, args: Sequence[Any], trust: Sequence[str] = (), log_path: Optional[str] = None) -> Any:
    """Run `module:function`(*args), trusting `trust`'s targets, its log lines also in `log_path`; its result."""
    module, _, name = task.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    with trusting(list(trust)), attached(Path(log_path)) if log_path else contextlib.nullcontext():
        return function(*args)


@dataclass
class Pending:
    """A task handed to the worker (or kept to run here), until its answer is read."""

    id: int
    task: str
    args: List[Any]
    trust: List[str] = field(default_factory=list)
    log_path: Optional[str] = None
    sent: bool = False  # handed to the worker, whose answer is awaited


class Finisher:
    """The worker process, seen from the main process: submit tasks, wait for them, close."""

    def __init__(self, preload: Sequence[str] = PRELOAD, start: bool = True):
        """`start` False: no process, every task runs in this one when waited for."""
        self.pending: List[Pending] = []
        self.submitted = 0
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
                start_new_session=True,  # a group of its own, which close(at_once) stops whole
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)},
            )
            os.close(write)
            self.answers = os.fdopen(read, "r")
        except OSError as error:  # no process to be had (limits): every task runs here
            log.info("no finishing worker (%s): end-of-run work runs in this process", error)
            self.process = None

    def submit(self, task: str, *args: Any, trust: Sequence[str] = (), log_path: Optional[Path] = None) -> None:
        """Hand `task`(*args) to the worker (or keep it to run here, when there is no worker)."""
        self.submitted += 1
        pending = Pending(self.submitted, task, list(args), list(trust), str(log_path) if log_path else None)
        if self.alive():
            assert self.process is not None and self.process.stdin is not None
            try:
                request = {"id": pending.id, "task": task, "args": pending.args, "trust": pending.trust}
                request["log"] = pending.log_path
                self.process.stdin.write(json.dumps(request) + "\n")
                self.process.stdin.flush()
                pending.sent = True
            except OSError:  # it died: the task runs here when waited for
                self.close()
        self.pending.append(pending)

    def wait(self) -> List[Any]:
        """Every submitted task done: its answer read, or the task run here when the worker did not answer.
        Returns the tasks' results in the order they were submitted (None for a task that failed)."""
        pending, self.pending = self.pending, []
        awaited = {task.id: task for task in pending if task.sent}
        results: Dict[int, Any] = {}
        try:
            while awaited and self.answers is not None:
                answer = self._answer()  # None once the worker (and any child of it) has ended
                if answer is None:
                    break
                task = awaited.pop(int(answer.get("id", -1)), None)
                if task is not None and not answer.get("ok"):
                    log.warning("end-of-run task %s failed in the worker: %s", task.task, answer.get("error"))
                elif task is not None:
                    results[task.id] = answer.get("result")
            for task in pending:
                if task.id in awaited or not task.sent:
                    results[task.id] = call(task.task, task.args, task.trust, task.log_path)
        except BaseException:  # Ctrl-C while waiting: the worker's half-done work is not waited for
            self.close(at_once=True)
            raise
        return [results.get(task.id) for task in pending]

    def _answer(self) -> Optional[dict]:
        assert self.answers is not None
        try:
            line = self.answers.readline()
        except (OSError, ValueError):
            line = ""
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
            if at_once:  # the worker and the children drawing for it (its own process group)
                os.killpg(process.pid, signal.SIGKILL)
            assert process.stdin is not None
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        answers, self.answers = self.answers, None
        if answers is not None:
            with contextlib.suppress(OSError):
                answers.close()


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):  # pytest's captured stderr, a StringIO
        return False


_shared: Optional[Finisher] = None
_started_in: Any = None


def spare_core() -> bool:
    """Whether a second process would run beside this one: a core left idle by everything else.

    On a busy machine (or one core) the worker's imports would only take turns with ours, and its
    second import of torch would cost more than it saves: the tasks then run in this process.
    Measured as the cores idle since this module was imported (at the command's start: Hydra's
    composition is the window), else the load average, which also counts runs that just ended.
    GDRUN_FINISHER=0 or 1 decides it instead.
    """
    told = os.environ.get("GDRUN_FINISHER")
    if told in ("0", "1"):
        return told == "1"
    cores = os.cpu_count() or 1
    if cores < 2:
        return False
    idle = idle_cores(_STAT_AT_START, cpu_times())
    if idle is not None:
        return idle >= 0.5
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average (Windows): count the cores alone
        load = 0.0
    return load <= cores - 1


# Fewer clock ticks than this between two readings of /proc/stat (a tick is 10 ms per core) say too
# little about idleness: the load average decides instead.
MIN_TICKS = 20


def cpu_times() -> Optional[List[int]]:
    """The machine's cumulative CPU times (Linux /proc/stat, in clock ticks over all cores), None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    return [int(value) for value in fields[1:]]


def idle_cores(before: Optional[List[int]], after: Optional[List[int]]) -> Optional[float]:
    """How many cores were idle on average between two cpu_times() readings; None when unknown or too soon.

    Idle and waiting for I/O count as idle; time stolen by a virtual machine's host does not.
    """
    if before is None or after is None or len(before) < 4 or len(after) != len(before):
        return None
    spent = [b - a for a, b in zip(before, after)]
    total = sum(spent)
    if total < MIN_TICKS:
        return None
    idle = spent[3] + (spent[4] if len(spent) > 4 else 0)
    return (os.cpu_count() or 1) * idle / total


_STAT_AT_START = cpu_times()


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
    os.dup2(2, 1)  # a task's prints go to stderr, never into the answers
    console = logging.StreamHandler(sys.stderr)  # warnings as the main process's console says them
    console.setFormatter(ConsoleFormatter())
    console.setLevel(logging.WARNING)
    logging.getLogger().addHandler(console)
    for name in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    children = Children(answers_fd) if FORK else None
    for line in sys.stdin:
        request = json.loads(line)
        if children is not None:
            children.start(request)
        else:
            answer(answers_fd, request["id"], *attempt(request))
    if children is not None:
        children.wait_all()
    # Every answer is written and every task's file closed: skip tearing down torch and matplotlib (~1 s).
    sys.stderr.flush()
    os._exit(0)


# Tasks run in forked children where fork is safe for what the worker imports (Linux); elsewhere
# (macOS, where forking a process with such libraries loaded can crash) one after the other.
FORK = sys.platform == "linux"


def attempt(request: Dict[str, Any]) -> "tuple[bool, Optional[str], Any]":
    """Run a task as asked; whether it went well, the error if not, and its result."""
    try:
        result = call(request["task"], request["args"], request.get("trust", ()), request.get("log"))
        return True, None, result
    except Exception as error:  # noqa: BLE001 - told to the main process, which says it
        return False, f"{type(error).__name__}: {error}", None


# An answer written in one write of at most this many bytes reaches the pipe whole (POSIX's PIPE_BUF).
ANSWER_BYTES = 4096


def answer(answers_fd: int, task_id: int, ok: bool, error: Optional[str] = None, result: Any = None) -> None:
    """One answer line, written whole in one write (at most PIPE_BUF bytes: never interleaved with another's).

    A task's result goes with it when it is plain data (a few file names); a result too long for one
    write, or not JSON, is an error of the task's."""
    said: Dict[str, Any] = {"id": task_id, "ok": ok}
    if error is not None:
        said["error"] = error[:1000]
    try:
        line = json.dumps({**said, "result": result} if result is not None else said) + "\n"
    except (TypeError, ValueError):
        line = ""
    if not line or len(line.encode()) > ANSWER_BYTES:
        line = json.dumps({"id": task_id, "ok": False, "error": "its result is not a short list of plain values"})
        line += "\n"
    os.write(answers_fd, line.encode())


class Children:
    """The worker's forked children, one per task, each answering for itself; one that dies without
    answering (killed, crashed) is answered for when it is reaped, so the main process never waits forever."""

    def __init__(self, answers_fd: int):
        self.answers_fd = answers_fd
        self.running: Dict[int, int] = {}  # pid: task id
        signal.signal(signal.SIGCHLD, lambda signum, frame: self.reap(block=False))

    def start(self, request: Dict[str, Any]) -> None:
        # SIGCHLD held until the child is recorded, so a quick child's end is never reaped unrecorded.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = os.fork()
            if pid == 0:  # the child: the task, its answer, and out (never back into the worker's loop)
                status = 1  # a task that raised past `attempt` (SystemExit): the worker answers for it
                try:
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                    answer(self.answers_fd, request["id"], *attempt(request))
                    status = 0
                finally:
                    for stream in (sys.stdout, sys.stderr):
                        with contextlib.suppress(OSError, ValueError):
                            stream.flush()
                    os._exit(status)
            self.running[pid] = request["id"]
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})

    def reap(self, block: bool) -> None:
        """Collect ended children (all of them, waiting, when `block`)."""
        while self.running:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            task_id = self.running.pop(pid, None)
            if task_id is not None and status != 0:  # it did not get to its answer
                code = os.waitstatus_to_exitcode(status)
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                answer(self.answers_fd, task_id, False, f"the task's process {how} before answering")

    def wait_all(self) -> None:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.reap(block=True)


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2:])
