"""The read-outs in benchmark.diagnostics import and show their usage (nothing is run)."""

import importlib

import pytest

MODULES = ["cadnet_fg_parts", "cyclegan_translation", "cyclegan_g_identity_optim"]


@pytest.mark.parametrize("name", MODULES)
def test_diagnostic_shows_help(name, capsys):
    mod = importlib.import_module(f"benchmark.diagnostics.{name}")
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"python -m benchmark.diagnostics.{name}" in out
    assert "--data-root" in out and "--out" in out
