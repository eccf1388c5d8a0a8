"""Image file checks shared by the readers and the loader."""

from __future__ import annotations

import logging
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
log = logging.getLogger(__name__)


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (deterministic order).

    Hidden files (names starting with ".", e.g. macOS' ``._name.bmp`` metadata) are not
    images of the dataset: they are left out, and a warning names them."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    hidden = [p.name for p in files if p.name.startswith(".")]
    if hidden:
        log.warning("%s: left out %d hidden file(s) named like images: %s", folder, len(hidden),
                    ", ".join(hidden[:5]) + (" ..." if len(hidden) > 5 else ""))
    return [p for p in files if not p.name.startswith(".")]
