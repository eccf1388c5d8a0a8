"""Shared test fixtures: the real data in ../shared (VIPeR, Market-1501 and CAVIAR samples)."""

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
SHARED = Path(os.environ.get("MLR_SHARED", REPO.parent / "shared"))
DATA_ROOT = SHARED / "data"
FIXTURES = SHARED / "fixtures"
AUTHORS_LISTS = SHARED / "protocols" / "authors-lists"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"test data missing: {path} (the repo expects ../shared beside it; "
                    "set MLR_SHARED to its location)")
    return path


@pytest.fixture(scope="session")
def viper_root() -> Path:
    """Data root holding the complete real VIPeR (viper/VIPeR/cam_a|cam_b)."""
    return _need(DATA_ROOT / "viper" / "VIPeR").parents[1]


@pytest.fixture
def market_root(tmp_path: Path) -> Path:
    """A data root with the real Market-1501 sample in the released folder layout."""
    root = tmp_path / "data"
    shutil.copytree(_need(FIXTURES / "market1501-mini"), root / "market1501" / "Market-1501-v15.09.15")
    return root


@pytest.fixture
def caviar_root(tmp_path: Path) -> Path:
    """A data root with the real CAVIAR4REID samples (all from the close camera)."""
    root = tmp_path / "data"
    shutil.copytree(_need(FIXTURES / "caviar4reid-samples"), root / "caviar4reid" / "CAVIAR4REID")
    return root


@pytest.fixture(scope="session")
def authors_lists() -> Path:
    return _need(AUTHORS_LISTS)


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
