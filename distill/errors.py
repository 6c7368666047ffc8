"""The one exception type for mistakes a user can fix (bad input, missing package, wrong setting)."""


class DistillError(Exception):
    """A user-facing error: the message names the bad value and what to do. The CLI prints it and exits with 2."""
