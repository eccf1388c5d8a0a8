"""The one place that finds pretrained weight files (ImageNet backbones, LPIPS' AlexNet).

Policy:

* **Where.** A checkpoint named by its URL's basename is looked for in
  ``Path(torch.hub.get_dir()) / "checkpoints" / filename``, the cache every torch user
  shares (``TORCH_HOME`` or ``torch.hub.set_dir`` redirect it; default
  ``~/.cache/torch/hub/checkpoints``).
* **Download.** If the file is absent and ``download=True``, ``torch.hub.download_url_to_file``
  is tried once per process and URL; every failure (offline machine, proxy, disk) is caught
  and turned into :class:`WeightsUnavailable`, whose message names the file, the URL and
  the path where a user can place it by hand.
* **Verification.** torchvision-style names carry the start of the file's SHA-256 after the
  last dash (``alexnet-owt-7be5be79.pth``; the same rule as
  ``torch.hub.load_state_dict_from_url(check_hash=True)``). The file's SHA-256 must start
  with that prefix, else :class:`WeightsUnavailable` says the file is corrupt or mismatched;
  the user's file is never deleted. Names without a hash prefix (some timm or hand-made
  files) are **accepted but recorded as unverified** (``CheckpointInfo.verified is False``,
  logged once), so callers can report it. Hashes are computed once per process per
  (path, size, mtime).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import torch

from datasets.errors import MLRBenchError

__all__ = [
    "WeightsUnavailable",
    "CheckpointInfo",
    "checkpoint_dir",
    "hash_prefix_of",
    "verified_checkpoint",
    "checkpoint_info",
    "torchvision_weights_url",
    "load_torchvision_state_dict",
    "clear_cache",
]

log = logging.getLogger(__name__)

#: torch.hub's rule: the hex digits between the last "-" and the following "."
_HASH_REGEX = re.compile(r"-([a-f0-9]+)\.")


class WeightsUnavailable(MLRBenchError):
    """A pretrained checkpoint cannot be had: missing (and not downloadable) or corrupt.

    Attributes:
        filename: the checkpoint's file name (basename of its URL).
        expected_path: where it was looked for and where a user should place it.
        reason: short explanation (missing / download failed / hash mismatch ...).
        url: the download URL, when known.
    """

    def __init__(self, filename: str, expected_path: Path | str, reason: str, url: str = ""):
        self.filename = filename
        self.expected_path = Path(expected_path)
        self.reason = reason
        self.url = url
        where = f" (download it from {url})" if url else ""
        super().__init__(
            f"pretrained weights {filename!r} unavailable: {reason}. Place the file at "
            f"{self.expected_path}{where}; set TORCH_HOME to use another cache directory."
        )


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    """What :func:`checkpoint_info` found: the file, its hash and how it was verified."""

    filename: str
    path: Path
    sha256: str
    hash_prefix: str | None  # from the file name; None when the name carries none
    verified: bool  # True when sha256 starts with hash_prefix
    downloaded: bool  # fetched by this process


_hash_cache: dict[tuple[str, int, int], str] = {}
_failed_downloads: dict[str, str] = {}
_warned_unverified: set[str] = set()


def clear_cache() -> None:
    """Forget cached hashes and failed downloads (tests; or after placing a file by hand)."""
    _hash_cache.clear()
    _failed_downloads.clear()
    _warned_unverified.clear()


def checkpoint_dir() -> Path:
    """``Path(torch.hub.get_dir()) / "checkpoints"`` (honours TORCH_HOME and set_dir)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hash_prefix_of(filename: str) -> str | None:
    """The SHA-256 prefix embedded in a torchvision-style name, or None."""
    m = _HASH_REGEX.search(filename)
    return m.group(1) if m else None


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _hash_cache[key] = h.hexdigest()
    return _hash_cache[key]


def _filename(url: str) -> str:
    name = os.path.basename(urlparse(url).path)
    if not name:
        raise ValueError(f"cannot take a file name from URL {url!r}")
    return name


def checkpoint_info(url: str, *, download: bool = True) -> CheckpointInfo:
    """Find (or download) and verify the checkpoint of ``url``; see the module docstring.

    Raises:
        WeightsUnavailable: file missing and not downloadable, or hash mismatch.
    """
    filename = _filename(url)
    path = checkpoint_dir() / filename
    prefix = hash_prefix_of(filename)
    downloaded = False
    if not path.is_file():
        if not download:
            raise WeightsUnavailable(filename, path, "file not found (download disabled)", url)
        if url in _failed_downloads:
            raise WeightsUnavailable(filename, path, _failed_downloads[url], url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=False)
            downloaded = True
        except Exception as exc:  # offline, proxy, disk full, hash mismatch: all the same
            reason = f"file not found and download failed ({type(exc).__name__}: {exc})"
            _failed_downloads[url] = reason
            raise WeightsUnavailable(filename, path, reason, url) from exc
        if not path.is_file():
            raise WeightsUnavailable(filename, path, "download produced no file", url)
    digest = _sha256(path)
    if prefix is not None and not digest.startswith(prefix):
        raise WeightsUnavailable(
            filename,
            path,
            f"file is corrupt or mismatched: its SHA-256 starts with {digest[: len(prefix)]}, "
            f"the name says {prefix} (the file was left in place; replace it)",
            url,
        )
    if prefix is None and filename not in _warned_unverified:
        _warned_unverified.add(filename)
        log.warning("checkpoint %s has no hash prefix in its name: accepted unverified", path)
    return CheckpointInfo(filename, path, digest, prefix, prefix is not None, downloaded)


def verified_checkpoint(url: str, *, download: bool = True) -> Path:
    """Path of the verified checkpoint of ``url`` in the torch hub cache.

    See :func:`checkpoint_info` (same behaviour; it also returns the hash and whether the
    name carried a prefix to verify against).
    """
    return checkpoint_info(url, download=download).path


def torchvision_weights_url(arch: str) -> str:
    """URL of torchvision's ``IMAGENET1K_V1`` weights for ``arch`` (e.g. 'resnet50')."""
    from torchvision.models import get_model_weights

    try:
        weights = get_model_weights(arch)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"unknown torchvision architecture {arch!r}") from exc
    try:
        return weights.IMAGENET1K_V1.url
    except AttributeError as exc:
        raise ValueError(f"torchvision has no IMAGENET1K_V1 weights for {arch!r}") from exc


def load_torchvision_state_dict(arch: str, *, download: bool = True) -> dict:
    """The verified ImageNet state dict of torchvision's ``arch`` (CPU tensors).

    Raises:
        WeightsUnavailable: see :func:`verified_checkpoint`.
    """
    path = verified_checkpoint(torchvision_weights_url(arch), download=download)
    return torch.load(path, map_location="cpu", weights_only=True)
