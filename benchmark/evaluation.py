"""The one evaluation path: features of LR queries and HR gallery -> CMC, mAP (and the
recovered images' quality). Tables, the sweep, the invariance probe and ``benchmark.validate``
all extract features with :func:`extract_features` and rank with :func:`rank_queries`."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

from datasets.loader import ImageStore, make_lr
from datasets.protocol import Manifest

from .metrics import evaluate_features
from .metrics.quality import image_quality

RANKS = (1, 5, 10)


def query_upsampling(method) -> str:
    """How ``method`` resizes an LR query back to the input size: "bilinear" (the
    protocol's default) unless the method declares ``query_upsampling`` (bicubic does)."""
    return getattr(method, "query_upsampling", "bilinear")


def rank_queries(q_feat: torch.Tensor, g_feat: torch.Tensor, query: pd.DataFrame,
                 gallery: pd.DataFrame, *, single_shot: bool, seed: int, max_rank: int,
                 num_repeats: int = 10):
    """CMC and mAP of ``query`` against ``gallery`` from their features (Euclidean)."""
    return evaluate_features(
        q_feat, g_feat, query["pid"].to_numpy(),
        gallery["pid"].to_numpy(), query["camid"].to_numpy(), gallery["camid"].to_numpy(),
        metric="euclidean", max_rank=max_rank, single_shot=single_shot,
        num_repeats=num_repeats, seed=seed)


@torch.inference_mode()
def extract_features(method, store: ImageStore, manifest: Manifest, rows: pd.DataFrame,
                     lr_method: str, batch_size: int = 128, rates: Iterable[float] | None = None
                     ) -> torch.Tensor:
    """Features of ``rows`` (their own ``rate``, or ``rates`` when given) -> [N, D] float32."""
    idx = store.indices(manifest.abspaths(rows))
    r = torch.tensor(list(rates) if rates is not None else rows["rate"].tolist(),
                     dtype=torch.float64)
    feats = []
    upsample = query_upsampling(method)
    for s in range(0, len(idx), batch_size):
        x = make_lr(store.batch(idx[s:s + batch_size]), r[s:s + batch_size], lr_method, upsample)
        feats.append(method.features(x).float())
    return torch.cat(feats)


@torch.inference_mode()
def evaluate_recovery(method, manifest: Manifest, store: ImageStore, rows: pd.DataFrame,
                      lr_method: str, batch_size: int = 64) -> dict:
    """SSIM, PSNR, LPIPS (:class:`~benchmark.metrics.QualityScores`, one value per image) of
    ``method.recover(LR query)`` against the HR original (Table 2)."""
    idx = store.indices(manifest.abspaths(rows))
    rates = torch.tensor(rows["rate"].tolist(), dtype=torch.float64)
    recovered, originals = [], []
    upsample = query_upsampling(method)
    for s in range(0, len(idx), batch_size):
        hr = store.batch(idx[s:s + batch_size])
        recovered.append(method.recover(make_lr(hr, rates[s:s + batch_size], lr_method, upsample)))
        originals.append(hr)
    q = image_quality(torch.cat(recovered).clamp(0, 1), torch.cat(originals))
    return {"ssim": q["SSIM"], "psnr": q["PSNR"], "lpips": q["LPIPS"]}


def evaluate_method(method, manifest: Manifest, store: ImageStore, *, lr_method: str,
                    single_shot: bool, seed: int, subsets=("seen", "unseen"),
                    num_repeats: int = 10) -> tuple[list[dict], list[dict]]:
    """``(rows, query_rows)``. ``rows``: one per query subset, rank-1/5/10 and mAP in
    percent, query counts, and for methods that recover HR images the mean SSIM / PSNR /
    LPIPS of the recovered query images. ``query_rows``: one per query of the same
    evaluation, its path and rate, rank-1 hit and AP in percent (NaN for a query with no
    match) and its recovered image's SSIM / PSNR / LPIPS, for paired tests over queries."""
    gallery = manifest.rows("gallery")
    g_feat = extract_features(method, store, manifest, gallery, lr_method)
    rows, query_rows = [], []
    for subset in subsets:
        query = manifest.rows("query", subset)
        if query.empty:
            continue
        q_feat = extract_features(method, store, manifest, query, lr_method)
        res = rank_queries(q_feat, g_feat, query, gallery, single_shot=single_shot, seed=seed,
                           max_rank=max(RANKS), num_repeats=num_repeats)
        cmc = np.asarray(res.cmc, dtype=np.float64)
        # a gallery smaller than rank k: the curve has reached its end, use its last value
        row = {"testset": subset,
               **{f"rank{k}": 100.0 * float(cmc[min(k, len(cmc)) - 1]) for k in RANKS},
               "mAP": 100.0 * float(res.mAP), "num_queries": int(len(query)),
               "num_valid_queries": int(res.num_valid_queries)}
        per_query = {k: np.full(len(query), np.nan) for k in ("rank1", "ap")}
        per_query["rank1"][res.query_index] = 100.0 * res.query_rank1
        per_query["ap"][res.query_index] = 100.0 * res.query_ap
        if getattr(method, "produces_images", False):
            quality = evaluate_recovery(method, manifest, store, query, lr_method)
            row.update({k: q.mean for k, q in quality.items()})
            if not quality["lpips"].available:
                row["lpips_note"] = quality["lpips"].reason
            per_query.update({k: q.values for k, q in quality.items()})
        rows.append(row)
        query_rows += [{"testset": subset, "path": str(p), "rate": float(r),
                        **{k: float(v[i]) for k, v in per_query.items()}}
                       for i, (p, r) in enumerate(zip(query["path"], query["rate"]))]
    return rows, query_rows


def trial_evaluation(trial, name: str) -> tuple[list[dict], list[dict]]:
    """:func:`evaluate_method` of method ``name`` (fitted, or its cached model) on ``trial``,
    once per trial and method: a table result and its per-query results share it."""
    from rich.console import Console

    from datasets.seeds import evaluation_seed

    if name not in trial.evaluations:
        run, t0 = trial.run, time.perf_counter()
        method = trial.fit(name)
        rows, query_rows = evaluate_method(
            method, trial.manifest, trial.store, lr_method=run.lr_method,
            single_shot=run.protocol == "paper", seed=evaluation_seed(run.seed, trial.trial))
        weights = getattr(method, "init_weights", None) or {}
        head = {"dataset": trial.dataset, "method": name, "trial": trial.trial}
        rows = [{**head, "init": getattr(method, "init", run.pretrained),
                 "init_file": weights.get("file"), "init_sha256": weights.get("sha256"), **r}
                for r in rows]
        trial.evaluations[name] = (rows, [{**head, **r} for r in query_rows])
        Console(stderr=True).print(
            f"{trial.dataset} trial {trial.trial} {name}: "
            + ", ".join(f"{r['testset']} R1 {r['rank1']:.1f}" for r in rows)
            + f" ({time.perf_counter() - t0:.1f}s)")
    return trial.evaluations[name]


class ResultMeasure:
    """Tables 1-3's per-trial result of a method: :func:`evaluate_method`'s rows on both
    query sets (stored as the run's result file, ``kind`` None)."""

    kind = None
    settings: dict = {}
    first_trial_only = False

    def compute(self, trial, name: str) -> list[dict]:
        return trial_evaluation(trial, name)[0]


class QueryMeasure:
    """``--per-query``: :func:`evaluate_method`'s per-query rows beside a result (``kind``
    "queries"); ``--claims`` tests a claim over queries with them where a dataset has one
    trial (one fixed split: Market-1501, DukeMTMC-reID)."""

    kind, settings, first_trial_only = "queries", {}, False

    def compute(self, trial, name: str) -> list[dict]:
        return trial_evaluation(trial, name)[1]
