"""Hyper-parameter checks on a validation split carved from the *training* identities.

``python -m benchmark.validate --dataset viper --methods hr-only --lr 1e-3,1e-2``

Takes one trial's manifest, keeps its training identities only (test identities are never
read: not their images, not their labels), holds out ``--val-ids`` of them with a seeded
generator, trains each (method, model learning rate) on the rest with the engine exactly as
the runner does (same profile, sampler, seed rule), and scores rank-1 on the held-out ids:
queries are their LR-camera images at the seen rates (r in {2, 3, 4}, three seeded draws),
at the unseen r = 8 and at r = 1 (HR); the gallery is their other-camera images at HR.
By default the number of epochs is scaled so that the run takes as many steps as the full
training would (fewer identities -> fewer steps per epoch). ``--epochs 36,72`` scores the
same run after 36 and after 72 epochs (a training-length check): the learning rates are
constant and each epoch's batches depend only on (seed, epoch), so each row is the model a
run of that length gives. One row per (run, epoch count) is printed and, with ``--out``,
appended to ``DIR/validation.csv``.

This is the only place where settings are compared; the reference tables use the profiles
as committed, and NOTES.md says which profile choice came from which validation run.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from datasets.seeds import validation_rng

COLUMNS = ["dataset", "trial", "seed", "val_ids", "train_ids", "method", "profile", "model_lr",
           "overrides",
           "epochs", "steps", "val_rank1_seen", "val_rank1_unseen", "val_rank1_hr",
           "val_rank1_seen_f_g",
           "val_psnr_recovered", "val_psnr_input", "val_ssim_recovered", "val_ssim_input",
           "val_rgb_recovered", "val_rgb_hr",
           "final_id", "final_tri", "final_rec", "minutes", "protocol", "pretrained",
           "backbone", "git_commit", "device"]


def validation_split(train_rows: pd.DataFrame, val_ids: int, seed: int, lr_camera: int
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(fit rows, query rows, gallery rows) from a manifest's r = 1 training rows.

    ``val_ids`` identities having an image in the LR camera and one in another camera are
    held out (seeded); query = their LR-camera images, gallery = their other images."""
    cams = train_rows.groupby("pid")["camid"].agg(lambda c: (c == lr_camera).any()
                                                  and (c != lr_camera).any())
    eligible = sorted(cams[cams].index)
    if val_ids >= len(eligible):
        raise ValueError(f"--val-ids {val_ids}: only {len(eligible)} training identities have "
                         f"images in camera {lr_camera} and another camera")
    rng = validation_rng(seed)
    held = set(rng.choice(eligible, val_ids, replace=False).tolist())
    val = train_rows[train_rows.pid.isin(held)]
    return (train_rows[~train_rows.pid.isin(held)], val[val.camid == lr_camera],
            val[val.camid != lr_camera])


def parse_overrides(items: list[str]) -> dict:
    """``--set field=JSON`` pairs -> config overrides; optimiser fields take a JSON object
    (e.g. ``disc_optim={"name": "sgd", "lr": 1e-4}``), tuples a JSON list."""
    import json

    from .profiles import CADNetConfig, OptimSpec

    valid = {f for f in CADNetConfig.__dataclass_fields__}
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in valid:
            raise ValueError(f"--set {item!r}: expected FIELD=JSON with FIELD one of "
                             f"{', '.join(sorted(valid))}")
        try:
            v = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"--set {item!r}: value is not JSON ({e})") from None
        if name.endswith("_optim"):
            if not isinstance(v, dict):
                raise ValueError(f"--set {item!r}: an optimiser is a JSON object")
            v = OptimSpec(**{k: tuple(x) if isinstance(x, list) else x for k, x in v.items()})
        elif isinstance(v, list):
            v = tuple(v)
        out[name] = v
    return out


def parse_epochs(text: str, full: int) -> list[int]:
    """``--epochs`` -> strictly increasing epoch counts; 0 stands for ``full``."""
    try:
        points = [int(x) or full for x in str(text).split(",")]
    except ValueError:
        points = []
    if not points or min(points) < 1 or points != sorted(set(points)):
        raise ValueError(f"--epochs {text!r}: expected increasing positive epoch counts "
                         f"separated by commas (0 = {full}, the full training's steps)")
    return points


def make_task(method: str, profile: str, num_classes: int, seed: int, model_lr: float | None,
              overrides: dict | None = None, trial: int = 0, pretrained: str = "none"):
    """:func:`benchmark.methods.create_task` with ``model_lr`` (None: the profile's) as the
    model optimiser's learning rate. Returns ``(method object, task)``."""
    from dataclasses import replace

    from .methods import create_task
    from .profiles import get_profile

    overrides = dict(overrides or {})
    if model_lr is not None:
        base = overrides.get("model_optim", get_profile(profile).model_optim)
        overrides["model_optim"] = replace(base, lr=model_lr)
    return create_task(method, profile, num_classes, seed=seed, trial=trial,
                       pretrained=pretrained, **overrides)


def rank1(method, store, manifest, query, gallery, rates, draws: int, parts=None):
    """Mean rank-1 (%) over ``draws`` seeded draws of one rate per query from ``rates``
    (features through the evaluation path: the method's own query up-sampling).

    ``parts`` (name -> column slice of the feature) adds the rank-1 of each part of the same
    features: ``{"": slice(None)}`` is the whole feature, and the result is then a dict."""
    from datasets.seeds import validation_draw_seed

    from .evaluation import extract_features, rank_queries

    cols = parts or {"": slice(None)}
    gf = extract_features(method, store, manifest, gallery, "bilinear", rates=[1] * len(gallery))
    out: dict = {name: [] for name in cols}
    for d in range(draws):
        g = torch.Generator().manual_seed(validation_draw_seed(d))
        r = torch.tensor(rates, dtype=torch.float64)[torch.randint(len(rates), (len(query),),
                                                                   generator=g)]
        qf = extract_features(method, store, manifest, query, "bilinear", rates=r.tolist())
        for name, sl in cols.items():
            res = rank_queries(qf[:, sl], gf[:, sl], query, gallery, single_shot=False, seed=0,
                               max_rank=1)
            out[name].append(float(res.cmc[0]) * 100)
    means = {name: sum(v) / len(v) for name, v in out.items()}
    return means if parts else means[""]


def feature_parts(method) -> dict:
    """The whole test feature (``""``) and, for a CAD-Net with v = [f, g], the column
    slices of f and of g in it (a diagnostic: which branch carries the rank-1)."""
    parts = {"": slice(None)}
    model = getattr(method, "model", None)
    if getattr(model, "feature_mode", None) == "fg" and not model.config.l2_test_features:
        d = model.feature_dim
        parts.update(f=slice(0, d), g=slice(d, 2 * d))
    return parts


@torch.inference_mode()
def recovery(method, store, manifest, query, rates) -> dict:
    """For a method that recovers HR images: PSNR / SSIM of its recovered validation queries
    and of their bilinear LR input against the HR originals (each query at one rate of
    ``rates``, drawn as :func:`rank1`'s first draw), and the mean R/G/B of the recovered
    images and of the originals (a colour cast shows there). NaN for other methods."""
    from datasets.loader import make_lr
    from datasets.seeds import validation_draw_seed

    from .metrics.quality import image_quality

    if not method.produces_images:
        return {k: math.nan for k in ("val_psnr_recovered", "val_psnr_input",
                                      "val_ssim_recovered", "val_ssim_input")} | {
            "val_rgb_recovered": "", "val_rgb_hr": ""}
    hr = store.batch(store.indices(manifest.abspaths(query)))
    g = torch.Generator().manual_seed(validation_draw_seed(0))
    r = torch.tensor(rates, dtype=torch.float64)[torch.randint(len(rates), (len(query),),
                                                               generator=g)]
    lr = make_lr(hr, r, "bilinear", method.query_upsampling)
    rec = method.recover(lr).clamp(0, 1)
    q_rec = image_quality(rec, hr, lpips=False)
    q_in = image_quality(lr.float().clamp(0, 1), hr, lpips=False)

    def rgb(x):
        return "/".join(f"{v:.3f}" for v in x.float().mean((0, 2, 3)).tolist())

    return {"val_psnr_recovered": q_rec["PSNR"].mean, "val_psnr_input": q_in["PSNR"].mean,
            "val_ssim_recovered": q_rec["SSIM"].mean, "val_ssim_input": q_in["SSIM"].mean,
            "val_rgb_recovered": rgb(rec), "val_rgb_hr": rgb(hr)}


def run(args) -> list[dict]:
    from datasets import load_dataset
    from datasets.loader import ImageStore
    from datasets.protocol import ProtocolOptions, get_manifest

    from .engine import TrainData
    from .profiles import get_profile
    from .provenance import base_provenance

    if args.threads:
        torch.set_num_threads(args.threads)
    prof = get_profile(args.profile)
    cache = Path(args.cache)
    ds = load_dataset(args.dataset, args.data_root, cache_dir=cache)
    opt = ProtocolOptions().resolved(ds.name)
    manifest = get_manifest(ds, trial=args.trial, seed=args.seed, manifest_dir=cache / "manifests")
    rows = manifest.rows("train")
    rows = rows[rows["rate"] == 1]  # the training identities only; test rows are never read
    fit, query, gallery = validation_split(rows, args.val_ids, args.seed, opt.lr_camera)
    store = ImageStore(manifest.abspaths(rows), tuple(prof.input_size), cache_dir=cache / "images")
    pids = sorted(set(fit.pid))
    data = TrainData(store=store, index=store.indices(manifest.abspaths(fit)),
                     labels=torch.tensor([{p: i for i, p in enumerate(pids)}[p] for p in fit.pid]),
                     num_classes=len(pids))
    per_epoch_full = math.ceil(len(rows) / prof.batch_size)
    per_epoch = math.ceil(len(fit) / prof.batch_size)
    full = math.ceil(prof.epochs * per_epoch_full / per_epoch)
    points = parse_epochs(args.epochs, full)
    overrides = parse_overrides(args.set)
    prov = base_provenance("cpu")
    if args.out is not None:
        check_columns(Path(args.out) / "validation.csv")
    out = []
    for method in [m for m in args.methods.split(",") if m]:
        for lr in [float(x) for x in args.lr.split(",")] if args.lr else [None]:
            meth, task = make_task(method, args.profile, len(pids), args.seed, lr, overrides,
                                   args.trial, args.pretrained or prof.pretrained)
            cfg = task.config
            t0 = time.perf_counter()
            hist = []
            for epochs in points:  # each point continues the same run after the last one
                hist = task.fit(data, epochs=epochs, history=hist)
                m = meth
                seen = rank1(m, store, manifest, query, gallery, tuple(cfg.lr_rates), 3,
                             feature_parts(m))
                row = {"dataset": ds.name, "trial": args.trial, "seed": args.seed,
                       "val_ids": args.val_ids, "train_ids": len(pids), "method": method,
                       "profile": args.profile, "model_lr": cfg.model_optim.lr,
                       "overrides": " ".join(args.set), "epochs": epochs,
                       "steps": epochs * per_epoch,
                       "val_rank1_seen": seen[""],
                       "val_rank1_unseen": rank1(m, store, manifest, query, gallery,
                                                 (opt.unseen_rate,), 1),
                       "val_rank1_hr": rank1(m, store, manifest, query, gallery, (1,), 1),
                       "val_rank1_seen_f_g": (f"{seen['f']:.1f}/{seen['g']:.1f}"
                                              if "f" in seen else ""),
                       **recovery(m, store, manifest, query, tuple(cfg.lr_rates)),
                       "final_id": hist[-1].get("id", math.nan),
                       "final_tri": hist[-1].get("tri", math.nan),
                       "final_rec": hist[-1].get("rec", math.nan),
                       "minutes": (time.perf_counter() - t0) / 60,
                       "protocol": opt.protocol, "pretrained": cfg.pretrained,
                       "backbone": cfg.backbone,
                       **{k: prov[k] for k in ("git_commit", "device")}}
                print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in row.items()), flush=True)
                print(f"  epoch {epochs} losses: " + ", ".join(
                    f"{k}={v:.4g}" for k, v in hist[-1].items() if k != "epoch"), flush=True)
                out.append(row)
                if args.out is not None:
                    append_row(Path(args.out) / "validation.csv", row)
    return out


def check_columns(path: Path) -> None:
    """An existing ``validation.csv`` with other columns (an older version's) is an error
    before any training, not a misaligned append after it."""
    if path.exists():
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if header != COLUMNS:
            raise ValueError(f"--out: {path} has the columns {header}, not this version's "
                             f"{COLUMNS}; give another --out folder")


def append_row(path: Path, row: dict) -> None:
    """Append one result row to ``path`` (header first if the file is new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})


def build_parser() -> argparse.ArgumentParser:
    from datasets import default_cache_dir

    p = argparse.ArgumentParser(prog="python -m benchmark.validate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="viper")
    p.add_argument("--data-root", type=Path, default=Path("data"))
    p.add_argument("--trial", type=int, default=0, help="whose training identities to use")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-ids", type=int, default=100, help="training identities held out")
    p.add_argument("--methods", default="hr-only", help="comma-separated engine methods")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--pretrained", choices=["imagenet", "none"],
                   help="backbone init (default: the profile's)")
    p.add_argument("--lr", default="", help="comma-separated model learning rates to compare "
                   "(default: the profile's)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                   help="config override for every run, e.g. lambda_adv_di=0.1 or "
                   "'disc_optim={\"name\": \"sgd\", \"lr\": 1e-4}' (repeatable)")
    p.add_argument("--epochs", default="0",
                   help="epoch counts to score one run at, increasing (e.g. 36,72); 0: as "
                   "many steps as the profile's full training")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--cache", type=Path, default=default_cache_dir() / "validation")
    p.add_argument("--out", type=Path, default=None, help="append rows to DIR/validation.csv")
    return p


def main(argv: list[str] | None = None) -> int:
    from datasets import DatasetError

    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
