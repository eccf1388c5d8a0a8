"""Shared test fixtures: the real data in ../shared (VIPeR, Market-1501 and CAVIAR samples).

Every test that reads the shared folder gets its paths from :func:`shared_path` (directly or
through the fixtures below). Without the folder those tests skip and say what is missing;
with ``MLR_REQUIRE_SHARED=1`` (set by CI) they fail instead, so a machine that should have
the data cannot pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Idle OpenMP threads sleep instead of spinning: on a 2-core machine shared with subprocesses
# (the CLI tests, the 2-process DDP test) spinning threads slow torch down many times over.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Tests never fetch weight files: a model needing an absent pinned file fails with
# WeightsUnavailable instead of running pip (benchmark.weights.pinned_checkpoint).
os.environ.setdefault("MLR_BENCH_NO_FETCH", "1")
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
_SHARED = Path(os.environ.get("MLR_SHARED") or REPO.parent / "shared")
REQUIRE_SHARED_VAR = "MLR_REQUIRE_SHARED"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def shared_path(*parts: str) -> Path:
    """``<shared folder>/<parts>``, the one way tests reach the real data.

    Skips the calling test when the path does not exist, naming it; fails instead when
    ``MLR_REQUIRE_SHARED`` is set to anything but ``""`` or ``"0"``.
    """
    path = _SHARED.joinpath(*parts)
    if path.exists():
        return path
    if not _SHARED.is_dir():
        reason = (f"real test data missing: the shared folder {_SHARED} does not exist "
                  f"(needed: {path}); set MLR_SHARED to the folder holding data/, fixtures/ "
                  "and protocols/ (default: ../shared beside the repository)")
    else:
        reason = (f"real test data missing: {path} is not in the shared folder {_SHARED} "
                  "(set MLR_SHARED to a complete copy)")
    if os.environ.get(REQUIRE_SHARED_VAR, "") not in ("", "0"):
        pytest.fail(f"{reason}; {REQUIRE_SHARED_VAR} is set, so this is a failure, not a skip",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def viper_root() -> Path:
    """Data root holding the complete real VIPeR (viper/VIPeR/cam_a|cam_b)."""
    return shared_path("data", "viper", "VIPeR").parents[1]


@pytest.fixture
def market_root(tmp_path: Path) -> Path:
    """A data root with the real Market-1501 sample in the released folder layout."""
    root = tmp_path / "data"
    shutil.copytree(shared_path("fixtures", "market1501-mini"), root / "market1501" / "Market-1501-v15.09.15")
    return root


@pytest.fixture
def caviar_root(tmp_path: Path, caviar_samples: Path) -> Path:
    """A data root with the real CAVIAR4REID samples (all from the close camera)."""
    root = tmp_path / "data"
    shutil.copytree(caviar_samples, root / "caviar4reid" / "CAVIAR4REID")
    return root


@pytest.fixture(scope="session")
def caviar_samples() -> Path:
    """The folder of 8 real CAVIAR4REID images (read only: copy before changing anything)."""
    return shared_path("fixtures", "caviar4reid-samples")


@pytest.fixture(scope="session")
def authors_lists() -> Path:
    """The authors' split lists (one subfolder per dataset)."""
    return shared_path("protocols", "authors-lists")


@pytest.fixture(scope="module")
def small_viper(viper_root, tmp_path_factory):
    """Training data of 8 real VIPeR identities (16 HR images) at the smoke input size."""
    from benchmark.engine import TrainData
    from datasets import load_dataset
    from datasets.loader import ImageStore
    from datasets.protocol import ProtocolOptions, get_manifest

    ds = load_dataset("viper", viper_root)
    ds.images = [r for r in ds.images if r.pid < 16]
    m = get_manifest(ds, trial=0, seed=0, manifest_dir=tmp_path_factory.mktemp("m"),
                     options=ProtocolOptions())
    store = ImageStore(m.abspaths(m.frame.drop_duplicates("path")), (64, 32))
    return TrainData.from_manifest(m, store)
