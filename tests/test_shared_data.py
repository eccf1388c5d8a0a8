"""Tests that need ../shared skip without it, and MLR_REQUIRE_SHARED turns those skips into
failures (CI sets it). Runs pytest in a subprocess on a tiny test file using conftest."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import tests.conftest as conftest
from tests.conftest import REPO

TINY = '''
from tests.conftest import shared_path


def test_plain():
    assert 1 + 1 == 2


def test_fixture_needs_viper(viper_root):
    assert viper_root.is_dir()


def test_helper_needs_lists():
    assert shared_path("protocols", "authors-lists").is_dir()
'''


def _pytest(tmp_path, shared, require):
    test_file = tmp_path / "test_tiny.py"
    test_file.write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k not in ("MLR_REQUIRE_SHARED", "PYTEST_ADDOPTS")}
    env.update(MLR_SHARED=str(shared), PYTHONPATH=str(REPO))
    if require is not None:
        env["MLR_REQUIRE_SHARED"] = require
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsfE", "-p", "no:cacheprovider",
                        "-p", "tests.conftest", "--rootdir", str(tmp_path), str(test_file)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    summary = p.stdout.strip().splitlines()[-1]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|skipped|failed|errors?)", summary)}
    counts["errors"] = counts.pop("error", 0) + counts.pop("errors", 0)
    return p, counts


def test_missing_shared_folder_skips_with_the_reason(tmp_path):
    empty = tmp_path / "empty-shared"
    empty.mkdir()
    p, counts = _pytest(tmp_path, empty, None)
    assert p.returncode == 0, p.stdout + p.stderr
    assert counts == {"passed": 1, "skipped": 2, "errors": 0}, p.stdout
    for missing in (empty / "data" / "viper" / "VIPeR", empty / "protocols" / "authors-lists"):
        assert f"real test data missing: {missing} is not in the shared folder {empty}" in p.stdout
    assert "MLR_SHARED" in p.stdout


def test_require_shared_turns_the_skips_into_failures(tmp_path):
    absent = tmp_path / "no-such-shared"
    p, counts = _pytest(tmp_path, absent, "1")
    assert p.returncode == 1, p.stdout + p.stderr
    # the fixture's failure is reported as a setup error, the direct call's as a failure
    assert counts == {"passed": 1, "failed": 1, "errors": 1}, p.stdout
    assert f"the shared folder {absent} does not exist" in p.stdout
    assert "MLR_REQUIRE_SHARED is set, so this is a failure, not a skip" in p.stdout


@pytest.mark.parametrize("value, fails", [("", False), ("0", False), ("1", True), ("yes", True)])
def test_require_shared_values(tmp_path, monkeypatch, value, fails):
    monkeypatch.setattr(conftest, "_SHARED", tmp_path)
    (tmp_path / "data").mkdir()
    assert conftest.shared_path("data") == tmp_path / "data"  # present: returned either way
    monkeypatch.setenv("MLR_REQUIRE_SHARED", value)
    expected = pytest.fail.Exception if fails else pytest.skip.Exception
    with pytest.raises(expected, match=re.escape(str(tmp_path / "fixtures"))):
        conftest.shared_path("fixtures")
