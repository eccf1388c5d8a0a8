"""The one atomic-write helper: every file the project writes appears whole or not at all.

:func:`atomic_path` yields a temporary path in the target's folder; on success the file is
renamed over the target (an atomic step on POSIX), on any failure (an exception, a full
disk, Ctrl-C) the temporary file is removed, so nothing half-written is left behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """``with atomic_path(p) as tmp: write tmp`` -> ``p`` replaced whole, or left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]
