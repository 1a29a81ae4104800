"""The one exception type whose message gdrun shows a user as is, and the exit statuses it uses."""

# Exit statuses of every gdrun command; 128 + the signal number when a run was interrupted
# (130 for Ctrl-C, 143 for SIGTERM).
EXIT_COMPLETED = 0
EXIT_FAILED = 1  # an unexpected failure: the traceback is in the run's gdrun.log
EXIT_BAD_INPUT = 2  # said in one or two sentences, no traceback
EXIT_DIVERGED = 3


class GdrunError(Exception):
    """Bad input or a missing file: the message names the problem and the fix."""
