"""The one exception type that means "the user gave bad input".

The CLI turns a :class:`HeatposeError` into one line on stderr and exit status 2;
anything else is a bug and keeps its traceback.
"""


class HeatposeError(Exception):
    """Bad user input: a missing file, malformed json, a wrong keypoint count, ..."""
