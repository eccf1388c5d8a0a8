"""``loader``: the data path alone on the real VIPeR images (``--data-root``).

Manifest (``get_manifest`` into a temp dir), ``ImageStore`` built twice (first decode, which
also writes the .npy cache, then from that cache), then ``--batches`` steps of batch
assembly exactly as the engine does it (``TrainData`` + ``IdentitySampler`` per epoch +
``make_batch`` with LR synthesis and flips). ``--compare-train`` also measures a few CAD-Net
training steps of the same profile in the same run and reports the ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .common import (
    REPO,
    Row,
    add_out_argument,
    add_threads_argument,
    load_check,
    mib,
    print_rows,
    set_threads,
    timed,
)

NAME = "loader"
HELP = "images/s of the data path (real VIPeR) alone"


def default_data_root() -> Path:
    shared = os.environ.get("MLR_SHARED")
    return Path(shared) / "data" if shared else REPO.parent / "shared" / "data"


def add_arguments(ld: argparse.ArgumentParser) -> None:
    ld.add_argument("--profile", default="cpu", help="input size and batch of this profile")
    ld.add_argument("--batches", type=int, default=100, help="batches to assemble (timed)")
    ld.add_argument("--data-root", type=Path, default=default_data_root(),
                    help="data root holding viper/VIPeR (default: ../shared/data beside the "
                         "repository, or $MLR_SHARED/data)")
    ld.add_argument("--ids", type=int, default=0,
                    help="keep VIPeR identities with pid < N only (0: all; for quick checks)")
    ld.add_argument("--seed", type=int, default=0)
    ld.add_argument("--compare-train", action="store_true",
                    help="also time CAD-Net training steps of the profile; report the ratio")
    ld.add_argument("--train-steps", type=int, default=3, help="timed steps for --compare-train")
    add_threads_argument(ld)
    add_out_argument(ld)


def _stores(args, tmp: Path, size) -> tuple[object, object, list[Row], dict]:
    """Manifest and ImageStore (decoded, then from its .npy cache): (manifest, store, rows,
    figures for the summary)."""
    from datasets import load_dataset
    from datasets.loader import ImageStore
    from datasets.protocol import ProtocolOptions, get_manifest

    ds = load_dataset("viper", args.data_root, cache_dir=tmp / "cache")
    if args.ids:
        ds.images = [r for r in ds.images if r.pid < args.ids]
    manifest = get_manifest(ds, trial=0, seed=args.seed, manifest_dir=tmp / "manifests",
                            options=ProtocolOptions())
    paths = manifest.abspaths(manifest.frame.drop_duplicates("path"))
    n_img = len(paths)
    print(f"VIPeR under {os.path.relpath(args.data_root, REPO)}: {n_img} distinct images in "
          "the manifest")
    load = load_check("decoding")
    _, t_decode, _ = timed(ImageStore, paths, size, cache_dir=tmp / "images")
    cache_file = next((tmp / "images").glob("*.npy"))
    cache_mib = mib(cache_file.stat().st_size)
    arr = np.load(cache_file)
    t0 = time.perf_counter()
    np.save(tmp / "write-test.npy", arr)  # what the first construction's cache write costs
    t_write = time.perf_counter() - t0
    del arr
    store, t_cache, _ = timed(ImageStore, paths, size, cache_dir=tmp / "images")
    rows = [("loader_load1", load, "load"),
            ("loader_store_images", n_img, "images"),
            ("loader_decode_time", t_decode, "s"),
            ("loader_decode_images_per_s", n_img / t_decode, "images/s"),
            ("loader_cache_write_time", t_write, "s"),
            ("loader_cache_size", cache_mib, "MiB"),
            ("loader_store_from_cache_time", t_cache, "s")]
    return manifest, store, rows, {"decode": t_decode, "write": t_write, "cache": t_cache,
                                   "cache_mib": cache_mib}


def _assembly(args, config, manifest, store) -> tuple[float, list[Row]]:
    """Batch assembly as the engine does it, timed over ``args.batches`` batches."""
    from ..engine import IdentitySampler, TrainData, epoch_generator, make_batch

    k = config.instances_per_id
    data = TrainData.from_manifest(manifest, store)
    hr_s = IdentitySampler(data.labels, config.ids_per_batch, k)
    lr_s = IdentitySampler(data.labels, config.lr_batch // k, k)
    print(f"training split: {len(data.labels)} HR images, {data.num_classes} identities, "
          f"{hr_s.steps} steps per epoch")

    def assemble(n_batches: int) -> int:
        done = images = epoch = 0
        while done < n_batches:
            g = epoch_generator(args.seed, epoch)
            for hp, lp in zip(hr_s.batches(g), lr_s.batches(g)):
                b = make_batch(data, hp, lp, config.lr_rates, config.lr_method, g, "cpu")
                images += len(b.hr_images) + len(b.lr_images)
                done += 1
                if done == n_batches:
                    break
            epoch += 1
        return images

    assemble(1)  # warm-up
    load = load_check(f"{args.batches} batches of assembly")
    images, t_batches, _ = timed(assemble, args.batches)
    loader_ips = images / t_batches
    return loader_ips, [("loader_batches_load1", load, "load"),
                        ("loader_batches", args.batches, "batches"),
                        ("loader_seconds_per_batch", t_batches / args.batches, "s"),
                        ("loader_images_per_s", loader_ips, "images/s")]


def run(args, train_images_per_s: float | None = None) -> list[Row]:
    """Data-path throughput; the ratio to training uses ``train_images_per_s`` if given, else
    a measurement of this run when ``args.compare_train``."""
    from ..profiles import make_config

    set_threads(args.threads)
    config = make_config(args.profile, "cadnet", num_classes=316, pretrained="none")
    size = tuple(config.input_size)
    print(f"machine: {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; profile {args.profile}: {size[0]}x{size[1]}, batch {config.batch_size} HR + "
          f"{config.lr_batch} LR, rates {config.lr_rates}, {config.lr_method}")
    with tempfile.TemporaryDirectory(prefix="mlr-perf-") as tmp:
        manifest, store, rows, t = _stores(args, Path(tmp), size)
        loader_ips, batch_rows = _assembly(args, config, manifest, store)
        rows += batch_rows
    if train_images_per_s is None and args.compare_train:
        from .train import measure_train

        print(f"[{args.profile} / cadnet] training for comparison: warm-up 1 + "
              f"{args.train_steps} timed steps")
        r = measure_train(args.profile, "cadnet", args.train_steps, count_flops=False,
                          budget_s=60.0)
        train_images_per_s = r["images_per_s"]
        rows += [("loader_compare_train_load1", r["load1"], "load"),
                 ("loader_compare_train_images_per_s", train_images_per_s, "images/s")]
    if train_images_per_s is not None:
        rows += [("loader_over_train_images_per_s", loader_ips / train_images_per_s, "x"),
                 ("loader_time_share_of_train_step", train_images_per_s / loader_ips,
                  "fraction")]
    print_rows(rows)
    print(f"decode (first ImageStore construction, incl. writing the {t['cache_mib']:.0f} MiB "
          f".npy cache, ~{t['write']:.2f} s of it): {t['decode']:.2f} s; from the .npy cache "
          f"(second construction): {t['cache']:.3f} s")
    print(f"batch assembly as the engine does it (IdentitySampler per epoch + make_batch: "
          f"uint8 -> float, flips, LR synthesis): {loader_ips:.0f} images/s")
    if train_images_per_s is not None:
        print(f"{args.profile} CAD-Net training: {train_images_per_s:.1f} images/s -> the data "
              f"path is {loader_ips / train_images_per_s:.0f}x faster, i.e. "
              f"{train_images_per_s / loader_ips:.1%} of a training step if run serially")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    return rows
