"""Slow, plain per-query reference for :func:`benchmark.metrics.evaluate_ranking`.

A straightforward loop over queries in the style of torchreid's ``eval_market1501`` /
``eval_cuhk03`` (numpy, stable argsort per query), kept deliberately simple so it can be
read against the conventions in :mod:`benchmark.metrics.ranking`. The tests check the fast
implementation against it to 1e-6, and ``python -m benchmark.perf eval`` times both.

Single shot uses the same documented sampling procedure
(:func:`benchmark.metrics.ranking.single_shot_priorities`): per repeat ``r`` and per query,
each identity's sampled image is its kept gallery image with the smallest ``U[r]``.
"""

from __future__ import annotations

import numpy as np

from .ranking import RankingResult, single_shot_priorities

__all__ = ["evaluate_ranking_reference"]


def _cmc_of(matches: np.ndarray, max_rank: int) -> np.ndarray:
    """0/1 CMC of one ranked list (true-match flags), padded with its last value."""
    cmc = np.minimum(np.cumsum(matches), 1).astype(np.float64)
    if len(cmc) >= max_rank:
        return cmc[:max_rank].copy()  # a copy: a view would keep the whole list alive
    return np.concatenate([cmc, np.full(max_rank - len(cmc), cmc[-1])])


def evaluate_ranking_reference(
    distmat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    *,
    max_rank: int = 50,
    single_shot: bool = False,
    num_repeats: int = 10,
    seed: int = 0,
) -> RankingResult:
    """Same contract as ``evaluate_ranking`` (no input validation beyond numpy's)."""
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    if single_shot:
        priorities = single_shot_priorities(num_g, num_repeats, seed)

    all_cmc, all_ap = [], []
    for i in range(num_q):
        order = np.argsort(distmat[i], kind="stable")  # ties: lower gallery index first
        remove = (g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])
        kept = order[~remove]
        matches = g_pids[kept] == q_pids[i]
        if not matches.any():
            continue  # invalid query: no true match after removal

        # AP on the full gallery after removal: mean precision at each true match
        hits = np.cumsum(matches)
        positions = np.flatnonzero(matches) + 1.0
        all_ap.append(float(np.mean(hits[matches] / positions)))

        if not single_shot:
            all_cmc.append(_cmc_of(matches, max_rank))
            continue
        cmc = np.zeros(max_rank)
        for r in range(num_repeats):
            # one image per identity among the kept ones: smallest priority, then lower index
            u, pids = priorities[r][kept], g_pids[kept]
            by_id = np.lexsort((kept, u, pids))
            first_of_id = np.ones(len(by_id), dtype=bool)
            first_of_id[1:] = pids[by_id][1:] != pids[by_id][:-1]
            sub = kept[np.sort(by_id[first_of_id])]  # back in ranked order
            cmc += _cmc_of(g_pids[sub] == q_pids[i], max_rank)
        all_cmc.append(cmc / num_repeats)

    if not all_cmc:
        raise ValueError("no valid query")
    cmc = np.mean(np.asarray(all_cmc), axis=0)
    return RankingResult(cmc=cmc, mAP=float(np.mean(all_ap)), num_valid_queries=len(all_cmc),
                         num_queries=num_q)
