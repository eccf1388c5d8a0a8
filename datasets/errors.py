"""The one base class of every error a user can cause (bad input, flags, missing files).

``run_all.py`` catches :class:`MLRBenchError` and prints its message as one line (exit 2);
anything else is a bug and keeps its traceback. It lives in the lowest layer (``datasets``)
so that readers, the harness and the baselines all derive from it.
"""

from __future__ import annotations


class MLRBenchError(Exception):
    """A user-facing error: the message names the file or argument and what was expected."""


__all__ = ["MLRBenchError"]
