"""The one exception type whose message gdrun shows a user as is, and the exit statuses it uses."""

# Exit statuses of every gdrun command; 128 + the signal number when a run was interrupted
# (130 for Ctrl-C, 143 for SIGTERM).
EXIT_COMPLETED = 0
EXIT_FAILED = 1  # an unexpected failure: the traceback is in the run's gdrun.log
EXIT_BAD_INPUT = 2  # said in one or two sentences, no traceback
EXIT_DIVERGED = 3
EXIT_MACHINE = 4  # the machine failed the run: a full disk, an I/O error


class FolderRefused(BaseException):
    """A Hydra callback refusing an output folder (it holds a run, or another process writes it).

    A BaseException because Hydra turns an Exception raised in a callback into a warning and
    goes on; the command and gdrun.run turn this into a GdrunError's sentence and exit status 2.
    """


class MachineError(Exception):
    """The machine, not the input, stopped a run (a full disk, an I/O error): said in a sentence, exit 4."""


class GdrunError(Exception):
    """Bad input or a missing file: the message names the problem and the fix."""
