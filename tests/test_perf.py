"""benchmark.perf train / loader / --out plumbing (smoke sizes; no timing assertions)."""

from __future__ import annotations

import csv

import pytest
import torch

from benchmark import perf

# One torch thread inside these tests: they check plumbing, and on a shared 2-core machine
# two OpenMP threads competing with other jobs make tiny steps many times slower.
ONE = ["--threads", "1"]


@pytest.fixture(autouse=True, scope="module")
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _rows(argv):
    args = perf.build_parser().parse_args(argv)
    return {name: (value, unit) for name, value, unit in args.func(args)}


def _csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["name", "value", "unit"]
    return {name: (float(value), unit) for name, value, unit in rows[1:]}


@pytest.fixture(scope="module")
def smoke_train_rows(tmp_path_factory):
    """One smoke-profile CAD-Net measurement (1 warm-up + 1 timed step), via main and --out."""
    out = tmp_path_factory.mktemp("perf")
    assert perf.main(["train", "--profiles", "smoke", "--methods", "cadnet", "--steps", "1",
                      "--matmul-size", "128", "--matmul-repeats", "1", "--in-process",
                      *ONE, "--out", str(out)]) == 0
    return _csv(out / "perf.csv")


def test_matmul_peak_is_positive():
    assert perf.matmul_peak_gflops(n=64, repeats=1) > 0


def test_train_smoke_cadnet_rows(smoke_train_rows):
    r = smoke_train_rows
    n = "train_smoke_cadnet_"
    assert r[n + "images_per_step"] == (32, "images")  # smoke: 4 x 4 HR + 16 LR
    assert r[n + "images_per_s"][1] == "images/s" and r[n + "images_per_s"][0] > 0
    assert r[n + "gflop_per_image"][1] == "GFLOP/image"
    assert r[n + "gflop_per_image"][0] > 0
    assert r[n + "test_feature_gflop_per_image"][0] > 0
    # a whole training step costs more than a forward pass of the test feature per image
    assert r[n + "gflop_per_image"][0] > r[n + "test_feature_gflop_per_image"][0]
    assert 0 < r[n + "peak_fraction"][0] < 1.5
    assert r["train_matmul_peak"][0] > 0
    assert r[n + "peak_rss"][0] > 0


def test_train_unknown_method_is_an_error():
    from benchmark.registry import UnknownMethod

    with pytest.raises(UnknownMethod, match="not an engine-trained method"):
        perf.make_task("smoke", "hist")


def test_loader_on_real_viper(viper_root):
    r = _rows(["loader", "--profile", "smoke", "--data-root", str(viper_root), "--ids", "16",
               "--batches", "3", *ONE])
    assert r["loader_images_per_s"][0] > 0
    assert r["loader_store_images"][0] == 32  # 16 VIPeR identities x 2 cameras
    assert r["loader_decode_images_per_s"][0] > 0
    assert r["loader_store_from_cache_time"][0] > 0


def test_out_writes_perf_csv(tmp_path, viper_root, smoke_train_rows):
    n = "train_smoke_cadnet_"
    assert {"train_matmul_peak", "train_torch_threads", n + "seconds_per_step",
            n + "gflop_per_step", n + "peak_rss_above_pre_task", n + "achieved_gflops",
            n + "load1"} <= set(smoke_train_rows)
    out = tmp_path / "perf"
    assert perf.main(["loader", "--profile", "smoke", "--data-root", str(viper_root),
                      "--ids", "16", "--batches", "2", *ONE, "--out", str(out)]) == 0
    rows = _csv(out / "perf.csv")
    assert {"loader_images_per_s", "loader_decode_time", "loader_store_from_cache_time",
            "loader_seconds_per_batch", "loader_load1"} <= set(rows)
    assert rows["loader_images_per_s"][0] > 0


def test_optim_rows_per_implementation():
    r = _rows(["optim", "--profiles", "smoke", "--repeats", "1", *ONE])
    assert {f"optim_smoke_{k}_ms" for k in ("forloop", "foreach", "fused")} == set(r)
    assert all(v > 0 and u == "ms" for v, u in r.values())


def test_compile_networks_keeps_parameters_and_state_dict_keys():
    """--compile wraps each network in place: checkpoints and the model cache stay shared."""
    task = perf.make_task("smoke", "cadnet", num_classes=6)
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    params = list(task.model.parameters())
    task.compile()
    after = task.model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(a is b for a, b in zip(params, task.model.parameters()))
    assert all(m._compiled_call_impl is not None for m in task.model.children())



def test_eval_small_problem_matches_previous_and_reference():
    """``eval`` at a small size: same-run peak, FLOPs, ratios, and identical results."""
    r = _rows(["eval", "--queries", "200", "--gallery", "600", "--ids", "40", "--dim", "32",
               "--repeats", "1", "--matmul-size", "64", "--matmul-repeats", "1",
               "--reference-queries", "50", *ONE])
    assert r["distance_gflop"] == (pytest.approx(2 * 200 * 600 * 32 / 1e9), "GFLOP")
    assert r["matmul_peak"][0] > 0 and r["distance_peak_fraction"][0] > 0
    assert r["total_time"][0] >= r["distance_time"][0]
    assert r["speedup_previous_over_current_total"][0] > 0
    assert r["previous_distances_bitwise_equal"] == (1.0, "bool")
    assert r["previous_cmc_equal"] == (1.0, "bool")
    assert r["previous_abs_mAP_difference"][0] == 0
    assert r["blockwise_cmc_equal"] == (1.0, "bool")
    assert r["blockwise_abs_mAP_difference"][0] == 0
    assert r["blockwise_over_matmul_bound"][0] > 0
    assert r["reference_multishot_queries_run"][0] == 50
    assert r["max_abs_cmc_difference"][0] < 1e-12 and r["abs_mAP_difference"][0] < 1e-12
