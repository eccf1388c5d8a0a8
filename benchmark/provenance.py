"""How every output was made (git commit, device, versions), and atomic file writes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from datasets.atomic import atomic_path
from datasets.errors import MLRBenchError


def git_commit(here: Path | None = None) -> str:
    """The commit of the code that runs, with ``-dirty`` if tracked files outside ``results/``
    have uncommitted changes (outputs this harness rewrites there do not change the code)."""
    here = here or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ":/", ":(top,exclude)results"], cwd=here,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def device_description(device: str | torch.device = "cpu") -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
           f"{torch.get_num_threads()} torch threads"


def base_provenance(device: str | torch.device = "cpu") -> dict:
    return {
        "git_commit": git_commit(),
        "device": device_description(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def is_main_process() -> bool:
    """False on the non-zero ranks of a torchrun job: only rank 0 writes outputs."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename: no reader sees half a file.
    Only the main process writes (see ``is_main_process``)."""
    if not is_main_process():
        return
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


def check_writable(folder: Path) -> Path:
    """Create ``folder`` and prove it is writable, before any work starts."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise MLRBenchError(f"--out {folder}: cannot write there ({e.strerror or e})") from e
    return folder
