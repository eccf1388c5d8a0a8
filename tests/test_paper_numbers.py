"""results/paper: the numbers CAD-Net's paper reports, checked cell by cell against the text.

Every expected value below was typed by hand from Tables 1-3 of Li et al., ICCV 2019
(``shared/paper/cadnet-iccv2019.md``), independently of the CSVs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

PAPER = Path(__file__).resolve().parents[1] / "results" / "paper"
DATASETS = {"cuhk03", "viper", "caviar", "market1501", "dukemtmcreid"}


def _load(n: int) -> pd.DataFrame:
    return pd.read_csv(PAPER / f"table{n}.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def t1():
    return _load(1)


@pytest.fixture(scope="module")
def t2():
    return _load(2)


@pytest.fixture(scope="module")
def t3():
    return _load(3)


def _cell(frame, method, metric, dataset="cuhk03", testset=None):
    sel = (frame.method == method) & (frame.metric == metric) & (frame.dataset == dataset)
    if testset is not None:
        sel &= frame.testset == testset
    hit = frame[sel]
    assert len(hit) <= 1, hit
    return None if hit.empty else float(hit.value.iloc[0])


def test_columns_sources_and_no_missing_values(t1, t2, t3):
    assert list(t1.columns) == ["table", "method", "method_key", "dataset", "metric", "value",
                                "source"]
    for n, t in ((2, t2), (3, t3)):
        assert list(t.columns) == ["table", "method", "method_key", "dataset", "testset",
                                   "metric", "value", "source"]
        assert (t.table == n).all() and (t.dataset == "cuhk03").all()
    for n, t in ((1, t1), (2, t2), (3, t3)):
        assert (t.source == f"Li et al. ICCV 2019, Table {n}").all()
        assert pd.to_numeric(t.value, errors="raise").notna().all()  # no '-' or NaN rows
        keys = [c for c in t.columns if c not in ("value", "source", "method_key")]
        assert not t.duplicated(keys).any()
    assert set(t1.dataset) == DATASETS and set(t1.metric) == {"rank1", "rank5", "rank10"}
    assert set(t2.metric) == set(t3.metric) == {"ssim", "psnr", "lpips", "rank1"}


def test_table1_row_count_is_the_number_of_filled_cells(t1):
    # 10 methods x 5 datasets x 3 ranks = 150 cells; '-' cells: JUDEA 6 (Market, Duke),
    # SLD2L 9 (CUHK03, Market, Duke), SDF 6 (Market, Duke) -> 150 - 21 = 129
    assert len(t1) == 129
    counts = t1.groupby("method").size().to_dict()
    assert counts == {"JUDEA": 9, "SLD2L": 6, "SDF": 9, "SING": 15, "CSR-GAN": 15,
                      "CamStyle": 15, "FD-GAN": 15, "Ours (f only)": 15, "Ours (g only)": 15,
                      "Ours": 15}


def test_table1_cells(t1):
    expected = [
        ("Ours", "cuhk03", "rank1", 82.1), ("Ours", "cuhk03", "rank5", 97.4),
        ("Ours", "dukemtmcreid", "rank10", 89.6), ("Ours", "caviar", "rank1", 42.8),
        ("Ours (f only)", "caviar", "rank1", 41.5), ("Ours (g only)", "market1501", "rank1", 82.2),
        ("FD-GAN", "market1501", "rank5", 91.6), ("FD-GAN", "viper", "rank1", 39.1),
        ("SLD2L", "viper", "rank10", 62.0), ("SLD2L", "caviar", "rank1", 18.4),
        ("JUDEA", "cuhk03", "rank1", 26.2), ("JUDEA", "caviar", "rank10", 80.8),
        ("SDF", "viper", "rank1", 9.3), ("SING", "dukemtmcreid", "rank5", 80.1),
        ("CSR-GAN", "cuhk03", "rank10", 97.4), ("CamStyle", "market1501", "rank10", 93.0),
    ]
    for method, dataset, metric, value in expected:
        assert _cell(t1, method, metric, dataset) == value, (method, dataset, metric)
    # '-' cells are absent, not NaN rows
    assert _cell(t1, "JUDEA", "rank1", "market1501") is None
    assert _cell(t1, "SLD2L", "rank1", "cuhk03") is None
    assert _cell(t1, "SDF", "rank10", "dukemtmcreid") is None


def test_table1_method_keys(t1):
    keys = t1.drop_duplicates("method").set_index("method").method_key.to_dict()
    assert keys == {"JUDEA": "", "SLD2L": "", "SDF": "", "SING": "sing", "CSR-GAN": "csrgan",
                    "CamStyle": "", "FD-GAN": "", "Ours (f only)": "cadnet-f",
                    "Ours (g only)": "cadnet-g", "Ours": "cadnet"}


def test_table2_cells(t2):
    assert len(t2) == 4 * 2 * 4
    expected = [
        ("CSR-GAN", "seen", "ssim", 0.76), ("CSR-GAN", "seen", "psnr", 21.5),
        ("Ours", "unseen", "rank1", 78.6), ("Ours", "seen", "lpips", 0.07),
        ("CycleGAN", "unseen", "psnr", 12.7), ("SING", "unseen", "rank1", 54.2),
        ("SING", "seen", "lpips", 0.18), ("CSR-GAN", "unseen", "lpips", 0.25),
    ]
    for method, testset, metric, value in expected:
        assert _cell(t2, method, metric, testset=testset) == value, (method, testset, metric)
    keys = t2.drop_duplicates("method").set_index("method").method_key.to_dict()
    assert keys == {"CycleGAN": "cyclegan", "SING": "sing", "CSR-GAN": "csrgan", "Ours": "cadnet"}


def test_table3_cells(t3):
    assert len(t3) == 5 * 4 and (t3.testset == "seen").all()
    expected = [
        ("Ours w/o L_cls", "rank1", 1.7), ("Ours w/o L_cls", "psnr", 21.4),
        ("Ours w/o L_adv^D_I", "rank1", 79.8), ("Ours w/o L_adv^D_F", "lpips", 0.34),
        ("Ours w/o L_rec", "ssim", 0.45), ("Ours", "rank1", 82.1),
    ]
    for method, metric, value in expected:
        assert _cell(t3, method, metric) == value, (method, metric)
    keys = t3.drop_duplicates("method").method_key.tolist()
    assert keys == ["cadnet", "cadnet-no-adv-di", "cadnet-no-adv-df", "cadnet-no-rec",
                    "cadnet-no-cls"]


def test_the_papers_tables_agree_with_each_other(t1, t2, t3):
    # Table 2's seen rank-1 is Table 1's MLR-CUHK03 rank-1; Table 3's "Ours" is Table 2's seen
    for method in ("SING", "CSR-GAN", "Ours"):
        assert _cell(t2, method, "rank1", testset="seen") == _cell(t1, method, "rank1")
    for metric in ("ssim", "psnr", "lpips", "rank1"):
        assert _cell(t3, "Ours", metric) == _cell(t2, "Ours", metric, testset="seen")
