"""Features -> CMC + mAP as implemented up to commit 3a9681f, kept to measure the current
implementation against in the same run (``python -m benchmark.perf eval``) and to check that
both give identical results (``tests/test_ranking.py``).

* :func:`pairwise_distance_previous`: the same BLAS calls as today (``chunk_size`` query rows
  times the contiguous transposed gallery), then five full passes over each 1024-row block
  (``* -2``, ``+ |g|^2``, ``+ |q|^2``, clamp, square root).
* :func:`evaluate_ranking_previous`: the same driver (chunks, threads, validation) as
  :func:`benchmark.metrics.evaluate_ranking`, ranking rows by histogram counting
  (:func:`_rank_chunk_histogram`) instead of counting on a sorted copy of each row.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.metrics import ranking
from benchmark.metrics.ranking import RankingResult, _rank_rows_by_sort

__all__ = ["pairwise_distance_previous", "evaluate_ranking_previous"]

#: rows whose true matches share their histogram bins with more images than this are
#: ranked by the sort fallback instead (degenerate distance distributions)
_MAX_SHARED = 512


def pairwise_distance_previous(qf, gf, metric: str = "euclidean", chunk_size: int = 1024):
    """Distance matrix between query features ``qf`` [Q, D] and gallery features ``gf`` [G, D].

    ``metric="euclidean"``: the true L2 distance ``||q - g||`` (not squared), computed as
    ``sqrt(max(|q|^2 + |g|^2 - 2 q.g, 0))`` (tiny negative values from rounding are clamped
    to 0 before the square root). ``metric="cosine"``: ``1 - cos(q, g)`` in [0, 2] (features
    are L2-normalised with eps 1e-12 first).

    Computed in float32 with torch, ``chunk_size`` query rows at a time. Returns a float32
    ``torch.Tensor`` when ``qf`` is a tensor, else a float32 ``numpy.ndarray``.
    """
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"unknown metric {metric!r}; use 'euclidean' or 'cosine'")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    as_numpy = not isinstance(qf, torch.Tensor)
    q = torch.as_tensor(qf).detach().to("cpu", torch.float32)
    g = torch.as_tensor(gf).detach().to("cpu", torch.float32)
    if q.ndim != 2 or g.ndim != 2:
        raise ValueError(f"features must be 2-D [N, D]; got {tuple(q.shape)} and {tuple(g.shape)}")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"feature dimensions differ: query {q.shape[1]} vs gallery {g.shape[1]}")
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1, eps=1e-12)
        g = torch.nn.functional.normalize(g, dim=1, eps=1e-12)
    out = torch.empty((q.shape[0], g.shape[0]), dtype=torch.float32)
    gt = g.t().contiguous()
    g_sq = (g * g).sum(1) if metric == "euclidean" else None
    with torch.no_grad():
        for s in range(0, q.shape[0], chunk_size):
            qc = q[s : s + chunk_size]
            block = out[s : s + chunk_size]
            torch.mm(qc, gt, out=block)
            if metric == "euclidean":
                block.mul_(-2.0).add_(g_sq[None, :]).add_((qc * qc).sum(1, keepdim=True))
                block.clamp_(min=0.0).sqrt_()
            else:
                block.neg_().add_(1.0)
    return out.numpy() if as_numpy else out


def _rank_chunk_histogram(d, qp, qc, cand, cand_ok, g_codes, g_cams):
    """The row ranking of ``_rank_chunk`` (identities of at most ``_MAX_IDENTITY`` images).

    Exact counting without sorting the row. Order images by ``(distance, gallery index)``
    (the stable-sort order). With the row's true matches ``t_0 < ... < t_{M-1}`` in that
    order, the k-th sits at position ``1 + k + #{other-identity images before t_k}`` after
    removal. That count comes from a histogram over ``B`` bins whose index is a monotone
    (non-decreasing) function of the distance, so an image in a lower (higher) bin than
    ``t_k`` surely ranks before (after) it; only the few images that share a bin with some
    true match are compared exactly, index included (this is where exact ties are
    resolved). Rows with a non-finite true-match distance, or where too many images share
    those bins (degenerate distributions), go to :func:`_rank_rows_by_sort`.
    """
    c, G = d.shape
    good = cand_ok & (g_cams[cand] != qc[:, None])
    n_good = good.sum(1)
    first = np.zeros(c, dtype=np.int64)
    ap = np.zeros(c, dtype=np.float64)
    m = int(n_good.max()) if c else 0
    if m == 0:
        return first, ap, n_good
    rows = np.arange(c)
    cd = np.take_along_axis(d, cand, axis=1)  # distances of the identity's own images
    key = np.where(good, cd, np.inf)
    fallback = (good & ~np.isfinite(cd)).any(1)
    # true matches in (distance, gallery index) order; padding (+inf) to the right
    t_order = np.argsort(key, axis=1, kind="stable")[:, :m]
    t = np.take_along_axis(key, t_order, axis=1)
    t_idx = np.take_along_axis(cand, t_order, axis=1)
    kk = np.arange(m)
    t_ok = kk[None, :] < n_good[:, None]
    work = (n_good > 0) & ~fallback

    # monotone binning: bin(x) = clip((x - t_min) * scale + 1, 0, B + 2), t in [1, B]
    n_bins = int(min(max(G // 4, 16), 1 << 16))
    dt = d.dtype.type
    lo = np.where(work, t[:, 0], 0).astype(d.dtype)
    hi = np.where(work, t[rows, np.maximum(n_good - 1, 0)], 0).astype(d.dtype)
    span = hi - lo
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        scale = (dt(0.999 * n_bins) / span).astype(d.dtype)
    ok = (span > 0) & np.isfinite(scale) & (scale > 0)
    scale = np.where(ok, scale, dt(1)).astype(d.dtype)
    lo, scale = lo[:, None], scale[:, None]

    def binned(x):
        with np.errstate(invalid="ignore", over="ignore"):
            y = x - lo
            y *= scale
            y += dt(1)
        np.clip(y, 0, n_bins + 2, out=y)
        return y.astype(np.int32)

    width = n_bins + 3
    off = (rows * width).astype(np.int64)[:, None]
    b = binned(d)  # [c, G]
    b += off.astype(np.int32)
    hist = np.bincount(b.ravel(), minlength=c * width).reshape(c, width)
    below = np.cumsum(hist, axis=1) - hist  # images in strictly lower bins
    tb = binned(np.where(t_ok, t, 0)).astype(np.int64)  # bins of the true matches
    below_t = np.take_along_axis(below, tb, axis=1)

    # images sharing a bin with a true match: compared exactly
    shared_bin = np.zeros(c * width, dtype=bool)
    shared_bin[(tb + off)[t_ok & work[:, None]]] = True
    flat = np.flatnonzero(shared_bin[b.ravel()])
    del b
    s_row, s_col = np.divmod(flat, G)
    s_cnt = np.bincount(s_row, minlength=c)
    fallback |= s_cnt > _MAX_SHARED
    keep_s = ~fallback[s_row]
    s_row, s_col = s_row[keep_s], s_col[keep_s]
    s_cnt = np.bincount(s_row, minlength=c)
    w = max(int(s_cnt.max(initial=0)), 1)
    s_slot = np.arange(len(s_row)) - (np.cumsum(s_cnt) - s_cnt)[s_row]
    sd = np.full((c, w), np.inf, dtype=d.dtype)
    s_idx = np.full((c, w), G, dtype=np.int64)
    s_ok = np.zeros((c, w), dtype=bool)
    sd[s_row, s_slot] = d[s_row, s_col]
    s_idx[s_row, s_slot] = s_col
    s_ok[s_row, s_slot] = True
    s_bin = binned(sd)  # [c, w]; padding (+inf) lands in bin B + 2, above every true match

    def before_t(x, xi):  # (x, xi) < (t_k, t_idx_k) lexicographically: [c, n, m]
        x, xi, tk, ti = x[:, :, None], xi[:, :, None], t[:, None, :], t_idx[:, None, :]
        return (x < tk) | ((x == tk) & (xi < ti))

    s_before = (before_t(sd, s_idx) & s_ok[:, :, None]).sum(1)
    s_lower = ((s_bin[:, :, None] < tb[:, None, :]) & s_ok[:, :, None]).sum(1)
    own_before = (before_t(cd, cand) & cand_ok[:, :, None]).sum(1)
    # every image ranked before the k-th true match, minus the identity's own images
    closer = below_t - s_lower + s_before - own_before
    pos = closer + kk[None, :] + 1  # 1-based position of the k-th true match after removal
    first = pos[:, 0].astype(np.int64)
    ap = np.where(t_ok, (kk[None, :] + 1) / np.maximum(pos, 1), 0.0).sum(1)
    ap /= np.maximum(n_good, 1)

    redo = np.flatnonzero(fallback & (n_good > 0))
    if len(redo):
        first[redo], ap[redo] = _rank_rows_by_sort(d[redo], qp[redo], qc[redo], g_codes, g_cams)
    return first, ap, n_good


def evaluate_ranking_previous(distmat, q_pids, g_pids, q_camids, g_camids, **kwargs
                              ) -> RankingResult:
    """:func:`benchmark.metrics.evaluate_ranking` (same arguments) with the previous row
    ranking, :func:`_rank_chunk_histogram`."""
    return ranking._evaluate(distmat, q_pids, g_pids, q_camids, g_camids,
                             rank_rows=_rank_chunk_histogram, **kwargs)
