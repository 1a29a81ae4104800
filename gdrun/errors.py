"""The one exception type whose message gdrun shows a user as is, without a traceback."""


class GdrunError(Exception):
    """Bad input or a missing file: the message names the problem and the fix."""
