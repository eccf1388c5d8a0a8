"""Ranking metrics for person re-ID: CMC curve and mean average precision (mAP).

Conventions (the ones torchreid's ``eval_market1501`` / ``eval_cuhk03`` and open-reid use):

* **Removal.** For each query, gallery images with the query's identity *and* camera are
  removed before ranking (Market-1501 convention). Every other gallery image stays, including
  other identities seen by the query's camera.
* **Labels.** Identities and cameras are compared for equality only. Drop junk images
  (Market-1501 / DukeMTMC pid -1) before calling, as torchreid's readers do; distractors
  (Market-1501 pid 0) are an ordinary identity that no query has.
* **Validity.** A query is *valid* when at least one gallery image of its identity survives
  the removal. Invalid queries are excluded from CMC and mAP and counted
  (``RankingResult.num_valid_queries`` vs ``num_queries``); if no query is valid a
  ``ValueError`` is raised.
* **Ties.** The gallery is ordered by distance with ties broken *stably*: of two gallery
  images at exactly the same distance, the one with the lower gallery index ranks first
  (``np.argsort(kind="stable")`` / ``torch.argsort(stable=True)`` order).
* **CMC.** ``cmc[k-1]`` is the fraction of valid queries whose first true match is at rank
  ``<= k`` in the ranked list after removal. The curve always has exactly ``max_rank``
  entries: ranks beyond the length of a query's list keep the last value (every valid query
  has its first match within its list, so the curve has reached 1 there). Unlike torchreid,
  ``max_rank`` is never truncated to the gallery size.
* **AP.** For one query with ``M`` true matches at 1-based positions ``p_1 < ... < p_M`` in
  the list after removal, ``AP = (1/M) * sum_j j / p_j`` (mean precision at each true match,
  the non-interpolated AP of Market-1501 / torchreid). ``mAP`` is the mean over valid queries.
* **Single shot** (``single_shot=True``; CUHK03 / VIPeR / SING convention). After the same
  removal one gallery image per identity is sampled; CMC is computed on the sampled gallery
  and averaged over ``num_repeats`` draws. AP is computed on the full gallery after removal,
  so ``mAP`` is the same in both modes. The sampling procedure is :func:`single_shot_priorities`
  (shared by the fast code here and the slow reference in ``benchmark.metrics.reference``):

  1. ``rng = numpy.random.default_rng(seed)``; ``U = rng.random((num_repeats, num_gallery))``
     (row ``r`` holds one priority per gallery image for repeat ``r``).
  2. In repeat ``r``, for every query and every identity, the sampled image is the gallery
     image of that identity *not removed for this query* with the smallest ``U[r]``
     (ties, which do not occur in practice, go to the lower gallery index).

  For identities other than the query's own nothing is removed, so within one repeat every
  query sees the same sampled gallery for them (one single-shot gallery per repeat, as in the
  classic protocol); the query's own identity uses its lowest-priority image outside the
  query's camera. The same seed gives identical results; another seed gives another draw.

From features, :func:`evaluate_features` computes the distances one block of query rows
at a time and ranks each block before computing the next (bitwise the same distances, so
the same result as ranking the full matrix, which is never held).

Implementation (numpy; no Python loop over gallery items). Queries are processed in chunks
of about 0.5M distance entries, one chunk per thread (``torch.get_num_threads()`` threads;
numpy and torch release the GIL), so memory beyond the distance matrix itself stays in the
tens of MB even for 20,000 x 20,000. The position of each true match is obtained by counting
the gallery images ranked before it: a binary search of its distance in a sorted copy of
the row's distances (values only, ``np.sort``), plus exact comparisons (distance, then
gallery index) for the images at exactly the same distance and for the query's own
identity; see ``_rank_chunk_sorted``. Degenerate rows (identities with more than 256
gallery images, non-finite true-match distances, or many tied true-match distances) fall
back to a stable ``argsort`` of the row. Both paths follow the same tie rule and are tested
against the per-query reference (``benchmark.metrics.reference``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .distance import distance_blocks, pairwise_distance

__all__ = [
    "RankingResult",
    "evaluate_features",
    "evaluate_ranking",
    "pairwise_distance",
    "single_shot_priorities",
]

#: distance entries per chunk (rows per chunk = this // gallery size, at most 1024)
_CHUNK_ELEMENTS = 1 << 19
_MAX_CHUNK_ROWS = 1024


@dataclasses.dataclass(frozen=True, eq=False)
class RankingResult:
    """Result of :func:`evaluate_ranking`.

    Attributes:
        cmc: float64 array of length ``max_rank``; ``cmc[k-1]`` = rank-k accuracy (fraction).
        mAP: mean average precision over valid queries (fraction in [0, 1]).
        num_valid_queries: queries with at least one true match after removal.
        num_queries: all queries passed in.
        query_index: the valid queries' row indices (ascending), for the per-query values.
        query_rank1: per valid query, its rank-1 hit (1.0 or 0.0; single-shot: the
            fraction of the draws with a true match first); their mean is ``cmc[0]``.
        query_ap: per valid query, its average precision; their mean is ``mAP``.
    """

    cmc: np.ndarray
    mAP: float
    num_valid_queries: int
    num_queries: int
    query_index: np.ndarray | None = None
    query_rank1: np.ndarray | None = None
    query_ap: np.ndarray | None = None

    def rank(self, k: int) -> float:
        """Rank-``k`` accuracy (fraction), ``k`` 1-based."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank {k} outside 1..{len(self.cmc)} (max_rank)")
        return float(self.cmc[k - 1])

    @property
    def num_invalid_queries(self) -> int:
        return self.num_queries - self.num_valid_queries

    def as_dict(self, ranks: Sequence[int] = (1, 5, 10)) -> dict:
        """Flat dict: ``rank{k}`` for ``ranks`` (those <= max_rank), ``mAP``, query counts."""
        out = {f"rank{k}": self.rank(k) for k in ranks if k <= len(self.cmc)}
        out["mAP"] = float(self.mAP)
        out["num_valid_queries"] = int(self.num_valid_queries)
        out["num_queries"] = int(self.num_queries)
        return out


# --------------------------------------------------------------------------------------------
# features -> distances


def single_shot_priorities(num_gallery: int, num_repeats: int, seed: int) -> np.ndarray:
    """Sampling priorities ``U`` [num_repeats, num_gallery] for single-shot evaluation.

    ``U = numpy.random.default_rng(seed).random((num_repeats, num_gallery))``. In repeat
    ``r`` the sampled image of an identity (for a given query) is its not-removed gallery
    image with the smallest ``U[r]``; ties go to the lower gallery index. See the module
    docstring.
    """
    return np.random.default_rng(seed).random((num_repeats, num_gallery))


# --------------------------------------------------------------------------------------------
# validation


def _ids(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a


def _encode(q: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map arbitrary (int, str) labels of both arrays to shared int64 codes."""
    try:
        _, inv = np.unique(np.concatenate([q, g]), return_inverse=True)
    except TypeError as exc:  # mixed, unorderable types
        raise ValueError(f"ids must be of one comparable type: {exc}") from exc
    inv = inv.reshape(-1).astype(np.int64)
    return inv[: len(q)], inv[len(q) :]


def _distance_array(distmat) -> np.ndarray:
    if isinstance(distmat, torch.Tensor):
        t = distmat.detach().cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        distmat = t.numpy()
    d = np.asarray(distmat)
    if d.ndim != 2:
        raise ValueError(f"distmat must be 2-D [num_query, num_gallery], got shape {d.shape}")
    if d.dtype == bool or not (
        np.issubdtype(d.dtype, np.floating) or np.issubdtype(d.dtype, np.integer)
    ):
        raise ValueError(f"distmat must hold real numbers, got dtype {d.dtype}")
    return d


def _chunk_as_float(d: np.ndarray) -> np.ndarray:
    """float32/float64 C-contiguous chunk (no copy when already so); NaN rejected."""
    if d.dtype not in (np.float32, np.float64):
        d = d.astype(np.float32 if d.dtype == np.float16 else np.float64)
    d = np.ascontiguousarray(d)
    if np.isnan(d).any():
        raise ValueError("distmat contains NaN; distances must be numbers (inf is allowed)")
    return d


# --------------------------------------------------------------------------------------------
# core


@dataclasses.dataclass
class _PidTable:
    """Gallery indices of each query identity, ascending, padded: ``index[row, :count]``."""

    index: np.ndarray  # [P, K] int64 (padding 0)
    mask: np.ndarray  # [P, K] bool
    row_of_query: np.ndarray  # [Q] int64, row in the table


def _pid_table(q_codes: np.ndarray, g_codes: np.ndarray) -> _PidTable:
    n_codes = int(max(g_codes.max(initial=-1), q_codes.max(initial=-1))) + 1
    order = np.argsort(g_codes, kind="stable")  # by identity, then gallery index
    counts = np.bincount(g_codes, minlength=n_codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    uq, row_of_query = np.unique(q_codes, return_inverse=True)
    k = max(int(counts[uq].max(initial=0)), 1)
    offs = np.arange(k)
    mask = offs[None, :] < counts[uq][:, None]
    pos = np.where(mask, starts[uq][:, None] + offs[None, :], 0)
    index = np.where(mask, order[np.minimum(pos, len(order) - 1)], 0).astype(np.int64)
    return _PidTable(index, mask, row_of_query.reshape(-1).astype(np.int64))


def _rank_rows_by_sort(d, qp, qc, g_codes, g_cams):
    """Exact first-match rank and AP of each row with a full stable argsort (fallback path)."""
    order = np.argsort(d, axis=1, kind="stable")
    same = g_codes[order] == qp[:, None]
    good = same & (g_cams[order] != qc[:, None])
    keep = ~same | good
    pos = np.cumsum(keep, axis=1)  # 1-based position among kept items
    n_good = good.sum(1)
    first = np.where(good, pos, np.iinfo(np.int64).max).min(1)
    prec = np.cumsum(good, axis=1) / np.maximum(pos, 1)
    ap = np.where(good, prec, 0.0).sum(1) / np.maximum(n_good, 1)
    return first, ap


#: rows with more true matches whose distance occurs more than once in the row than this
#: are ranked by the sort fallback instead (degenerate distance distributions)
_MAX_TIED = 16
#: rows whose identity has more gallery images than this are ranked by the sort fallback
_MAX_IDENTITY = 256


def _rank_chunk(d, qp, qc, cand, cand_ok, g_codes, g_cams, rank_rows):
    """First-match rank (1-based, after removal) and AP for each query row of ``d``.

    ``cand``/``cand_ok`` [c, K]: the gallery indices of each row's identity (ascending,
    padding at the end). Rows of identities with at most ``_MAX_IDENTITY`` gallery images
    are ranked by ``rank_rows`` (:func:`_rank_chunk_sorted`), the others by
    :func:`_rank_rows_by_sort`. Returns ``(first, ap, n_good)``; rows with ``n_good == 0``
    are invalid (their values are meaningless).
    """
    n_cand = cand_ok.sum(1)
    big = n_cand > _MAX_IDENTITY
    if not big.any():
        k = max(int(n_cand.max(initial=0)), 1)
        return rank_rows(d, qp, qc, cand[:, :k], cand_ok[:, :k], g_codes, g_cams)
    n_good = (cand_ok & (g_cams[cand] != qc[:, None])).sum(1)
    first = np.zeros(len(d), dtype=np.int64)
    ap = np.zeros(len(d), dtype=np.float64)
    rows = np.flatnonzero(big)
    first[rows], ap[rows] = _rank_rows_by_sort(d[rows], qp[rows], qc[rows], g_codes, g_cams)
    rows = np.flatnonzero(~big)
    if len(rows):
        k = max(int(n_cand[rows].max()), 1)
        f, a, _ = rank_rows(d[rows], qp[rows], qc[rows], cand[rows, :k], cand_ok[rows, :k],
                            g_codes, g_cams)
        first[rows], ap[rows] = f, a
    return first, ap, n_good


def _rank_chunk_sorted(d, qp, qc, cand, cand_ok, g_codes, g_cams):
    """:func:`_rank_chunk` for identities of at most ``_MAX_IDENTITY`` gallery images.

    Images are ordered by ``(distance, gallery index)`` (the stable-sort order). With the
    row's true matches ``t_0 < ... < t_{M-1}`` in that order, the k-th sits at position
    ``1 + k + #{other-identity images before t_k}`` after removal. The images before
    ``t_k`` are those at a smaller distance, counted by a binary search of ``t_k`` in a
    sorted copy of the row's distances (values only: ``np.sort``, vectorised), plus those
    at exactly the same distance with a lower gallery index, counted on the row itself for
    the few true matches whose distance occurs more than once. The identity's own images
    before ``t_k`` are then subtracted (compared exactly, index included). Rows with more
    than ``_MAX_TIED`` such tied true matches, or with a non-finite true-match distance, go
    to :func:`_rank_rows_by_sort`.
    """
    c, G = d.shape
    good = cand_ok & (g_cams[cand] != qc[:, None])
    n_good = good.sum(1)
    first = np.zeros(c, dtype=np.int64)
    ap = np.zeros(c, dtype=np.float64)
    m = int(n_good.max()) if c else 0
    if m == 0:
        return first, ap, n_good
    cd = np.take_along_axis(d, cand, axis=1)  # distances of the identity's own images
    key = np.where(good, cd, np.inf)
    # true matches in (distance, gallery index) order; padding (+inf) to the right
    t_order = np.argsort(key, axis=1, kind="stable")[:, :m]
    t = np.ascontiguousarray(np.take_along_axis(key, t_order, axis=1))
    t_idx = np.take_along_axis(cand, t_order, axis=1)
    kk = np.arange(m)
    t_ok = kk[None, :] < n_good[:, None]

    # images at a smaller distance than each true match, all identities
    srt, tt = torch.from_numpy(np.sort(d, axis=1)), torch.from_numpy(t)
    before = torch.searchsorted(srt, tt, side="left").numpy()
    tied = t_ok & (torch.searchsorted(srt, tt, side="right").numpy() - before > 1)
    n_tied = tied.sum(1)
    # a non-finite true match could tie with the +inf padding of the key above
    fallback = (n_tied > _MAX_TIED) | (good & ~np.isfinite(cd)).any(1)
    for r in np.flatnonzero((n_tied > 0) & ~fallback):  # same distance, lower index
        ks = np.flatnonzero(tied[r])
        same = d[r][None, :] == t[r, ks][:, None]
        same &= np.arange(G)[None, :] < t_idx[r, ks][:, None]
        before[r, ks] += same.sum(1)

    # (x, xi) < (t_k, t_idx_k) lexicographically for the identity's own images: [c, K, m]
    x, xi, tk, ti = cd[:, :, None], cand[:, :, None], t[:, None, :], t_idx[:, None, :]
    own_before = (((x < tk) | ((x == tk) & (xi < ti))) & cand_ok[:, :, None]).sum(1)
    pos = before - own_before + kk[None, :] + 1  # 1-based position after removal
    first = pos[:, 0].astype(np.int64)
    ap = np.where(t_ok, (kk[None, :] + 1) / np.maximum(pos, 1), 0.0).sum(1)
    ap /= np.maximum(n_good, 1)

    redo = np.flatnonzero(fallback)
    if len(redo):
        first[redo], ap[redo] = _rank_rows_by_sort(d[redo], qp[redo], qc[redo], g_codes, g_cams)
    return first, ap, n_good



def _single_shot_ranks(d, qp, qc, cand, cand_ok, sampled, g_codes, g_cams, u):
    """Rank of the sampled true match among one sampled image per identity, per row.

    ``sampled`` [n_ids]: for each gallery identity its lowest-priority image (no removal);
    ``u`` [G]: this repeat's priorities.
    """
    good = cand_ok & (g_cams[cand] != qc[:, None])
    pu = np.where(good, u[cand], np.inf)
    own = np.take_along_axis(cand, pu.argmin(1)[:, None], axis=1)  # first min: lower index
    own_d = np.take_along_axis(d, own, axis=1)
    s_d = d[:, sampled]  # [c, n_ids]
    before = (s_d < own_d) | ((s_d == own_d) & (sampled[None, :] < own))
    before &= g_codes[sampled][None, :] != qp[:, None]  # own identity: `own` instead
    return before.sum(1) + 1


def _sampled_per_identity(g_codes: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Gallery index with the smallest priority (lower index on ties) for each identity."""
    order = np.lexsort((np.arange(len(u)), u, g_codes))
    codes_sorted = g_codes[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = codes_sorted[1:] != codes_sorted[:-1]
    return order[first]


def _cmc_from_first(first: np.ndarray, max_rank: int) -> np.ndarray:
    f = np.minimum(first, max_rank + 1)
    hist = np.bincount(f, minlength=max_rank + 2)[1 : max_rank + 1]
    return np.cumsum(hist) / float(len(f))


def evaluate_ranking(
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
    """CMC and mAP of a query x gallery distance matrix (smaller = more similar).

    Args:
        distmat: [Q, G] numpy array or torch tensor of distances (NaN rejected, inf allowed).
        q_pids, g_pids, q_camids, g_camids: 1-D identity / camera labels of length Q and G
            (ints or strings; compared for equality only).
        max_rank: length of the returned CMC curve (may exceed the gallery size: the curve
            keeps its last value there, see the module docstring).
        single_shot: False = Market-1501 multi-shot; True = CUHK03 single-shot with
            ``num_repeats`` seeded draws of one gallery image per identity.
        num_repeats, seed: single-shot sampling (:func:`single_shot_priorities`); ignored in
            multi-shot mode.

    Returns:
        :class:`RankingResult` (``cmc`` fractions of length ``max_rank``, ``mAP`` fraction,
        ``num_valid_queries``, ``num_queries``).

    Raises:
        ValueError: bad shapes or arguments, NaN distances, or no valid query.
    """
    return _evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank,
                     single_shot=single_shot, num_repeats=num_repeats, seed=seed,
                     rank_rows=_rank_chunk_sorted)


def evaluate_features(
    q_feat,
    g_feat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    *,
    metric: str = "euclidean",
    max_rank: int = 50,
    single_shot: bool = False,
    num_repeats: int = 10,
    seed: int = 0,
    chunk_size: int = 1024,
) -> RankingResult:
    """:func:`evaluate_ranking` of ``pairwise_distance(q_feat, g_feat, metric)``, computed
    block by block (:func:`benchmark.metrics.distance.distance_blocks`): each block of
    ``chunk_size`` query rows is ranked while the next is not yet computed, in one reused
    buffer, so the Q x G matrix is never held. The distances are bitwise those of
    :func:`pairwise_distance` and so the result is identical to
    ``evaluate_ranking(pairwise_distance(...), ...)``."""
    nq = len(q_feat)
    ng = len(g_feat)
    prob = _Problem(nq, ng, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank,
                    single_shot=single_shot, num_repeats=num_repeats, seed=seed)
    parts = []
    for s, block in distance_blocks(q_feat, g_feat, metric, chunk_size):
        parts += prob.rank(_distance_array(block), s)
    return prob.result(parts)


def _evaluate(distmat, q_pids, g_pids, q_camids, g_camids, *, max_rank: int = 50,
              single_shot: bool = False, num_repeats: int = 10, seed: int = 0,
              rank_rows=_rank_chunk_sorted) -> RankingResult:
    """:func:`evaluate_ranking` with the row ranking ``rank_rows`` (see :func:`_rank_chunk`)."""
    d_all = _distance_array(distmat)
    nq, ng = d_all.shape
    prob = _Problem(nq, ng, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank,
                    single_shot=single_shot, num_repeats=num_repeats, seed=seed,
                    rank_rows=rank_rows)
    return prob.result(prob.rank(d_all, 0))


class _Problem:
    """Checked, encoded labels of a Q x G ranking problem; ranks blocks of distance rows
    (:meth:`rank`) and combines their parts into a :class:`RankingResult` (:meth:`result`).
    Each row's rank and AP depend on that row alone, so any split into blocks gives the
    same result."""

    def __init__(self, nq, ng, q_pids, g_pids, q_camids, g_camids, *, max_rank, single_shot,
                 num_repeats, seed, rank_rows=_rank_chunk_sorted) -> None:
        qp_np, gp_np = _ids(q_pids, "q_pids"), _ids(g_pids, "g_pids")
        qc_np, gc_np = _ids(q_camids, "q_camids"), _ids(g_camids, "g_camids")
        if len(qp_np) != nq or len(qc_np) != nq:
            raise ValueError(
                f"distmat has {nq} query rows but q_pids has {len(qp_np)} and q_camids "
                f"{len(qc_np)} entries"
            )
        if len(gp_np) != ng or len(gc_np) != ng:
            raise ValueError(
                f"distmat has {ng} gallery columns but g_pids has {len(gp_np)} and g_camids "
                f"{len(gc_np)} entries"
            )
        if nq == 0 or ng == 0:
            raise ValueError(f"empty problem: {nq} queries x {ng} gallery images")
        if (isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer))
                or max_rank < 1):
            raise ValueError(f"max_rank must be a positive int, got {max_rank!r}")
        if single_shot and (
            isinstance(num_repeats, bool)
            or not isinstance(num_repeats, (int, np.integer))
            or num_repeats < 1
        ):
            raise ValueError(f"num_repeats must be a positive int, got {num_repeats!r}")
        self.nq, self.ng, self.max_rank = nq, ng, int(max_rank)
        self.single_shot, self.rank_rows = single_shot, rank_rows
        self.qp, self.gp = _encode(qp_np, gp_np)
        self.qc, self.gc = _encode(qc_np, gc_np)
        self.table = _pid_table(self.qp, self.gp)
        if single_shot:
            self.u_all = single_shot_priorities(ng, int(num_repeats), seed)
            self.sampled = [_sampled_per_identity(self.gp, u) for u in self.u_all]

    def rank(self, d_rows: np.ndarray, offset: int) -> list:
        """Parts ``(first, ap, single-shot ranks, row index)`` of the valid queries among rows
        ``offset:offset + len(d_rows)``, chunk by chunk (one chunk per thread)."""
        step = max(1, min(_MAX_CHUNK_ROWS, _CHUNK_ELEMENTS // self.ng))
        gp, gc = self.gp, self.gc

        def one_chunk(s: int):
            d = _chunk_as_float(d_rows[s : s + step])
            rows = slice(offset + s, offset + s + len(d))
            qpc, qcc = self.qp[rows], self.qc[rows]
            trow = self.table.row_of_query[rows]
            cand, cand_ok = self.table.index[trow], self.table.mask[trow]
            first, ap, n_good = _rank_chunk(d, qpc, qcc, cand, cand_ok, gp, gc, self.rank_rows)
            valid = np.flatnonzero(n_good > 0)
            ss = None
            if self.single_shot and len(valid):
                dv, qpv, qcv = d[valid], qpc[valid], qcc[valid]
                cv, cov = cand[valid], cand_ok[valid]
                ss = np.stack([
                    _single_shot_ranks(dv, qpv, qcv, cv, cov, self.sampled[r], gp, gc,
                                       self.u_all[r])
                    for r in range(len(self.u_all))
                ])
            return first[valid], ap[valid], ss, offset + s + valid

        starts = range(0, len(d_rows), step)
        workers = max(1, min(torch.get_num_threads(), len(starts)))
        if workers == 1:
            return [one_chunk(s) for s in starts]
        with ThreadPoolExecutor(max_workers=workers) as pool:  # numpy releases the GIL
            return list(pool.map(one_chunk, starts))

    def result(self, parts: list) -> RankingResult:
        """The CMC and mAP of all rows from the parts of :meth:`rank`, in row order."""
        n_valid = sum(len(p[0]) for p in parts)
        if n_valid == 0:
            raise ValueError(
                f"no valid query: none of the {self.nq} queries has a gallery image of its "
                "identity from another camera (same identity + same camera images are removed)"
            )
        if self.single_shot:
            ranks = np.concatenate([p[2] for p in parts if p[2] is not None], axis=1)
            cmc = np.mean([_cmc_from_first(r, self.max_rank) for r in ranks], axis=0)
            hit1 = (ranks == 1).mean(axis=0)
        else:
            first = np.concatenate([p[0] for p in parts])
            cmc = _cmc_from_first(first, self.max_rank)
            hit1 = (first == 1).astype(np.float64)
        cmc = np.asarray(cmc, dtype=np.float64)
        ap = np.concatenate([p[1] for p in parts]).astype(np.float64)
        for a in (cmc, hit1, ap):
            a.setflags(write=False)
        return RankingResult(cmc=cmc, mAP=float(ap.mean()), num_valid_queries=n_valid,
                             num_queries=self.nq,
                             query_index=np.concatenate([p[3] for p in parts]),
                             query_rank1=hit1, query_ap=ap)
