"""Ranking metrics: hand-computed cases, conventions, and agreement with the slow reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import benchmark.metrics.ranking as ranking
from benchmark.metrics import RankingResult, evaluate_ranking, pairwise_distance
from benchmark.metrics.reference import evaluate_ranking_reference

# ------------------------------------------------------------------------------------------
# a tiny problem computed by hand
#
# gallery index:  0    1    2    3    4    5
# g_pids      = [ 1,   2,   1,   3,   2,   1 ]
# g_camids    = [ 0,   1,   1,   1,   0,   0 ]
G_PIDS = np.array([1, 2, 1, 3, 2, 1])
G_CAMS = np.array([0, 1, 1, 1, 0, 0])
Q_PIDS = np.array([1, 2, 1, 3, 9])
Q_CAMS = np.array([0, 1, 1, 1, 0])
DIST = np.array([
    # q0 (pid 1, cam 0): order 1,3,2,4,0,5; 0 and 5 are pid 1 in cam 0 -> removed;
    #   kept list [1(p2), 3(p3), 2(p1), 4(p2)] -> first match at rank 3, AP = 1/3.
    #   (4 is pid 2 in the query's camera 0: other identities are never removed)
    [0.5, 0.1, 0.3, 0.2, 0.4, 0.6],
    # q1 (pid 2, cam 1): order 5,2,1,0,3,4; 1 is pid 2 in cam 1 -> removed;
    #   kept list [5, 2, 0, 3, 4(p2)] -> rank 5, AP = 1/5.
    [0.3, 0.2, 0.1, 0.4, 0.5, 0.05],
    # q2 (pid 1, cam 1): order 0,2,3,5,4,1; 2 is pid 1 in cam 1 -> removed;
    #   kept list [0(p1), 3, 5(p1), 4, 1] -> matches at 1 and 3: rank 1,
    #   AP = (1/1 + 2/3) / 2 = 5/6.
    [0.1, 0.9, 0.2, 0.3, 0.8, 0.4],
    # q3 (pid 3, cam 1): its only gallery image (3) is in cam 1 -> removed -> invalid.
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    # q4 (pid 9): not in the gallery -> invalid.
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
])


def test_hand_computed_multishot():
    res = evaluate_ranking(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    assert isinstance(res, RankingResult)
    # first-match ranks 3, 5, 1 over 3 valid queries:
    # rank<=1: 1/3, <=2: 1/3, <=3: 2/3, <=4: 2/3, <=5: 3/3
    np.testing.assert_allclose(res.cmc, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0], atol=1e-12)
    # mAP = (1/3 + 1/5 + 5/6) / 3 = (10 + 6 + 25) / 30 / 3 = 41/90
    assert res.mAP == pytest.approx(41 / 90, abs=1e-12)
    assert res.num_valid_queries == 3
    assert res.num_queries == 5
    assert res.num_invalid_queries == 2
    d = res.as_dict(ranks=(1, 5))
    assert d["rank1"] == pytest.approx(1 / 3) and d["rank5"] == pytest.approx(1.0)
    assert d["mAP"] == pytest.approx(41 / 90) and d["num_valid_queries"] == 3


def test_per_query_values_by_hand():
    # the valid queries q0, q1, q2 (q3, q4 have no match): ranks 3, 5, 1; AP 1/3, 1/5, 5/6
    res = evaluate_ranking(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    np.testing.assert_array_equal(res.query_index, [0, 1, 2])
    np.testing.assert_array_equal(res.query_rank1, [0.0, 0.0, 1.0])
    np.testing.assert_allclose(res.query_ap, [1 / 3, 1 / 5, 5 / 6], atol=1e-12)
    # the same in blocks of one query row (the features path): the parts keep their rows
    q = np.eye(5, 6)
    blocks = ranking.evaluate_features(q, np.eye(6), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS,
                                       max_rank=5, chunk_size=1)
    assert blocks.query_index.tolist() == [0, 1, 2]


@pytest.mark.parametrize("single_shot", [False, True])
def test_per_query_values_average_to_the_summary(single_shot):
    rng = np.random.default_rng(7)
    d, qp, gp, qc, gc = _random_problem(rng, 40, 300, 30, 4)
    res = evaluate_ranking(d, qp, gp, qc, gc, max_rank=5, single_shot=single_shot, seed=2)
    assert len(res.query_index) == len(res.query_rank1) == res.num_valid_queries
    assert res.query_rank1.mean() == pytest.approx(res.cmc[0], abs=1e-12)
    assert res.query_ap.mean() == pytest.approx(res.mAP, abs=1e-12)
    values = set(np.round(res.query_rank1 * 10, 9))  # single-shot: tenths of 10 draws
    assert values <= ({0.0, 10.0} if not single_shot else set(map(float, range(11))))
    if single_shot:
        assert len(values) > 2  # some queries hit in some draws only


def test_max_rank_beyond_gallery_keeps_last_value():
    # 6 gallery images, max_rank 10: never truncated; ranks 6..10 keep the value at rank 5
    res = evaluate_ranking(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=10)
    assert len(res.cmc) == 10
    np.testing.assert_allclose(res.cmc, [1 / 3, 1 / 3, 2 / 3, 2 / 3] + [1.0] * 6, atol=1e-12)
    ref = evaluate_ranking_reference(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=10)
    np.testing.assert_allclose(res.cmc, ref.cmc, atol=1e-12)


def test_same_camera_exclusion_matters():
    # without the removal q0 would match image 0 (pid 1, cam 0) at rank 5 and 5 at rank 6,
    # with it the first match is image 2 at rank 3: give 0 the smallest distance
    d = DIST[:1].copy()
    d[0, 0] = 0.0
    res = evaluate_ranking(d, Q_PIDS[:1], G_PIDS, Q_CAMS[:1], G_CAMS, max_rank=3)
    # kept list [1, 3, 2, 4] is unchanged: rank 3, AP 1/3
    np.testing.assert_allclose(res.cmc, [0, 0, 1], atol=1e-12)
    assert res.mAP == pytest.approx(1 / 3)


def test_ties_broken_by_lower_gallery_index():
    g_pids, g_cams = np.array([5, 7, 5]), np.array([1, 1, 1])
    d = np.full((2, 3), 0.5)
    # query pid 7: all distances equal -> order 0, 1, 2 -> match (index 1) at rank 2, AP 1/2
    # query pid 5: order 0, 1, 2 -> matches at 1 and 3: AP = (1/1 + 2/3) / 2 = 5/6
    res = evaluate_ranking(d, [7, 5], g_pids, [0, 0], g_cams, max_rank=3)
    np.testing.assert_allclose(res.cmc, [1 / 2, 1, 1], atol=1e-12)
    assert res.mAP == pytest.approx((1 / 2 + 5 / 6) / 2, abs=1e-12)
    # a true match tied with a lower-index impostor ranks second, with a higher one first
    d = np.array([[0.2, 0.2, 0.2, 0.1]])
    res = evaluate_ranking(d, [7], [4, 7, 4, 8], [0], [1, 1, 1, 1], max_rank=2)
    # order 3, 0, 1, 2 -> match at rank 3
    assert res.cmc.tolist() == [0.0, 0.0] and res.mAP == pytest.approx(1 / 3)
    res = evaluate_ranking(d, [4], [4, 7, 4, 8], [0], [1, 1, 1, 1], max_rank=2)
    # order 3, 0(p4), 1, 2(p4) -> matches at 2 and 4: AP = (1/2 + 2/4) / 2 = 1/2
    assert res.cmc.tolist() == [0.0, 1.0] and res.mAP == pytest.approx(1 / 2)


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match="no valid query"):
        evaluate_ranking(DIST[3:], Q_PIDS[3:], G_PIDS, Q_CAMS[3:], G_CAMS)


def test_single_shot_one_image_per_identity_equals_multishot():
    # every identity has exactly one kept image per query -> sampling has no choice
    g_pids, g_cams = np.array([1, 2, 3, 4]), np.array([1, 1, 1, 1])
    d = np.array([[0.4, 0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4]])
    # q0 pid 1: order 1, 2, 3, 0 -> rank 4; q1 pid 3: order 0, 1, 2 -> rank 3
    res = evaluate_ranking(d, [1, 3], g_pids, [0, 0], g_cams, max_rank=4, single_shot=True)
    np.testing.assert_allclose(res.cmc, [0, 0, 0.5, 1.0], atol=1e-12)
    assert res.mAP == pytest.approx((1 / 4 + 1 / 3) / 2)


def test_single_shot_by_hand_sampling_rule():
    # pid 1 has images 0 (cam 1) and 1 (cam 2); pid 2 has images 2 and 3. In each repeat the
    # sampled image of an identity is the one with the smaller priority U[r].
    g_pids, g_cams = np.array([1, 1, 2, 2]), np.array([1, 2, 1, 2])
    d = np.array([[0.1, 0.4, 0.2, 0.3]])  # query pid 1, cam 0
    u = ranking.single_shot_priorities(4, 5, seed=11)
    expected = []
    for r in range(5):
        mine = 0 if u[r, 0] <= u[r, 1] else 1
        other = 2 if u[r, 2] <= u[r, 3] else 3
        expected.append(1 if d[0, mine] < d[0, other] else 2)  # rank of the sampled match
    cmc1 = np.mean([e == 1 for e in expected])
    res = evaluate_ranking(d, [1], g_pids, [0], g_cams, max_rank=2, single_shot=True,
                           num_repeats=5, seed=11)
    np.testing.assert_allclose(res.cmc, [cmc1, 1.0], atol=1e-12)
    # AP on the full gallery: order 0(p1), 2, 3, 1(p1) -> (1/1 + 2/4) / 2 = 3/4
    assert res.mAP == pytest.approx(3 / 4)


def _random_problem(rng, nq, ng, n_ids, n_cams, kind="float64"):
    q_pids = rng.integers(0, n_ids, nq)
    g_pids = rng.integers(0, n_ids, ng)
    q_cams = rng.integers(0, n_cams, nq)
    g_cams = rng.integers(0, n_cams, ng)
    if kind == "int":  # many exact ties
        d = rng.integers(0, 4, (nq, ng))
    elif kind == "float32":
        d = rng.random((nq, ng)).astype(np.float32)
    else:
        d = rng.random((nq, ng))
    return d, q_pids, g_pids, q_cams, g_cams


def test_single_shot_seeded():
    rng = np.random.default_rng(3)
    d, qp, gp, qc, gc = _random_problem(rng, 60, 240, 12, 3)
    a = evaluate_ranking(d, qp, gp, qc, gc, single_shot=True, seed=5)
    b = evaluate_ranking(d, qp, gp, qc, gc, single_shot=True, seed=5)
    c = evaluate_ranking(d, qp, gp, qc, gc, single_shot=True, seed=6)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    assert a.mAP == b.mAP
    assert not np.array_equal(a.cmc, c.cmc)
    assert a.mAP == c.mAP  # AP uses the full gallery


SHAPES = [(1, 1, 1, 2), (7, 5, 3, 2), (25, 60, 8, 3), (40, 300, 30, 4), (30, 500, 5, 6)]


@pytest.mark.parametrize("single_shot", [False, True])
@pytest.mark.parametrize("kind", ["float64", "float32", "int"])
def test_agrees_with_reference(single_shot, kind):
    rng = np.random.default_rng([int(single_shot), ["float64", "float32", "int"].index(kind)])
    checked = 0
    for nq, ng, n_ids, n_cams in SHAPES:
        prob = _random_problem(rng, nq, ng, n_ids, n_cams, kind)
        for max_rank in (1, 10, ng + 3):
            try:
                ref = evaluate_ranking_reference(*prob, max_rank=max_rank,
                                                 single_shot=single_shot, num_repeats=4, seed=2)
            except ValueError:
                with pytest.raises(ValueError, match="no valid query"):
                    evaluate_ranking(*prob, max_rank=max_rank, single_shot=single_shot)
                continue
            res = evaluate_ranking(*prob, max_rank=max_rank, single_shot=single_shot,
                                   num_repeats=4, seed=2)
            assert len(res.cmc) == max_rank
            np.testing.assert_allclose(res.cmc, ref.cmc, atol=1e-6)
            assert res.mAP == pytest.approx(ref.mAP, abs=1e-6)
            assert res.num_valid_queries == ref.num_valid_queries
            checked += 1
    assert checked >= 9


@pytest.mark.parametrize("path", ["sort_fallback", "small_chunks", "big_identity"])
def test_internal_paths_agree_with_reference(monkeypatch, path):
    """The exact sort fallback and multi-chunk (threaded) processing give the same result."""
    if path == "sort_fallback":
        monkeypatch.setattr(ranking, "_MAX_TIED", -1)
    elif path == "small_chunks":
        monkeypatch.setattr(ranking, "_CHUNK_ELEMENTS", 700)
    else:
        monkeypatch.setattr(ranking, "_MAX_IDENTITY", 3)
    rng = np.random.default_rng(8)
    for kind in ("float32", "int"):
        prob = _random_problem(rng, 50, 200, 10, 3, kind)
        for single_shot in (False, True):
            ref = evaluate_ranking_reference(*prob, single_shot=single_shot, num_repeats=3)
            res = evaluate_ranking(*prob, single_shot=single_shot, num_repeats=3)
            np.testing.assert_allclose(res.cmc, ref.cmc, atol=1e-6)
            assert res.mAP == pytest.approx(ref.mAP, abs=1e-6)


def test_nonfinite_and_signed_zero_distances():
    rng = np.random.default_rng(4)
    d, qp, gp, qc, gc = _random_problem(rng, 20, 50, 5, 3)
    d[rng.random(d.shape) < 0.2] = np.inf
    d[:, :5] = -0.0
    d[:, 5:10] = 0.0
    d[0, :] = np.inf
    for single_shot in (False, True):
        ref = evaluate_ranking_reference(d, qp, gp, qc, gc, single_shot=single_shot)
        res = evaluate_ranking(d, qp, gp, qc, gc, single_shot=single_shot)
        np.testing.assert_allclose(res.cmc, ref.cmc, atol=1e-6)
        assert res.mAP == pytest.approx(ref.mAP, abs=1e-6)


def test_torch_input_and_string_ids():
    rng = np.random.default_rng(5)
    d, qp, gp, qc, gc = _random_problem(rng, 20, 80, 6, 3, "float32")
    a = evaluate_ranking(d, qp, gp, qc, gc)
    b = evaluate_ranking(torch.from_numpy(d), torch.from_numpy(qp), torch.from_numpy(gp),
                         torch.from_numpy(qc), torch.from_numpy(gc))
    c = evaluate_ranking(d, qp.astype(str), gp.astype(str), qc, gc)
    h = evaluate_ranking(torch.from_numpy(d).half(), qp, gp, qc, gc)  # float16 accepted
    assert h.num_valid_queries == a.num_valid_queries
    np.testing.assert_array_equal(a.cmc, b.cmc)
    np.testing.assert_array_equal(a.cmc, c.cmc)
    assert a.mAP == b.mAP == c.mAP
    assert not a.cmc.flags.writeable


def test_input_validation():
    args = (Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
    with pytest.raises(ValueError, match="query rows"):
        evaluate_ranking(DIST[:4], *args)
    with pytest.raises(ValueError, match="gallery columns"):
        evaluate_ranking(DIST[:, :5], *args)
    with pytest.raises(ValueError, match="2-D"):
        evaluate_ranking(DIST[0], *args)
    bad = DIST.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ranking(bad, *args)
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_ranking(DIST, *args, max_rank=0)
    with pytest.raises(ValueError, match="num_repeats"):
        evaluate_ranking(DIST, *args, single_shot=True, num_repeats=0)
    with pytest.raises(ValueError, match="1-D"):
        evaluate_ranking(DIST, Q_PIDS[:, None], G_PIDS, Q_CAMS, G_CAMS)
    with pytest.raises(ValueError, match="rank 6"):
        evaluate_ranking(DIST, *args, max_rank=5).rank(6)


def test_pairwise_distance():
    rng = np.random.default_rng(6)
    qf = rng.standard_normal((13, 32)).astype(np.float32)
    gf = rng.standard_normal((21, 32)).astype(np.float32)
    exact = np.sqrt(((qf[:, None, :].astype(np.float64) - gf[None]) ** 2).sum(-1))
    d = pairwise_distance(qf, gf, chunk_size=4)
    assert isinstance(d, np.ndarray) and d.dtype == np.float32 and d.shape == (13, 21)
    np.testing.assert_allclose(d, exact, rtol=1e-4, atol=1e-4)  # true L2, not squared
    dt = pairwise_distance(torch.from_numpy(qf), torch.from_numpy(gf))
    assert isinstance(dt, torch.Tensor) and dt.dtype == torch.float32
    np.testing.assert_allclose(dt.numpy(), d, rtol=1e-5, atol=1e-5)
    # identical vectors: rounding can make |q|^2 + |g|^2 - 2 q.g slightly negative; clamped
    same = pairwise_distance(qf, qf)
    assert np.isfinite(same).all() and (same >= 0).all()
    assert np.abs(np.diag(same)).max() < 1e-2
    cos = pairwise_distance(qf, gf, metric="cosine")
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    np.testing.assert_allclose(cos, 1 - qn @ gn.T, atol=1e-5)
    with pytest.raises(ValueError, match="metric"):
        pairwise_distance(qf, gf, metric="manhattan")
    with pytest.raises(ValueError, match="dimensions"):
        pairwise_distance(qf, gf[:, :5])


# ------------------------------------------------------------------------------------------
# the current implementation gives the results of the previous one (benchmark.perf.previous)


def _labels(rng, nq, ng, n_ids, n_cams):
    return (rng.integers(0, n_ids, nq), rng.integers(0, n_ids, ng),
            rng.integers(0, n_cams, nq), rng.integers(0, n_cams, ng))


def _assert_same_results(d, labels, **kw):
    from benchmark.perf.previous import evaluate_ranking_previous

    res = evaluate_ranking(d, *labels, **kw)
    prev = evaluate_ranking_previous(d, *labels, **kw)
    np.testing.assert_array_equal(res.cmc, prev.cmc)
    assert res.mAP == prev.mAP
    assert res.num_valid_queries == prev.num_valid_queries
    ref = evaluate_ranking_reference(d, *labels, **kw)
    np.testing.assert_allclose(res.cmc, ref.cmc, atol=1e-12)
    assert res.mAP == pytest.approx(ref.mAP, abs=1e-12)
    return res


@pytest.mark.parametrize("chunk_size", [1024, 300])
def test_random_features_same_distances_and_results_as_previous(chunk_size):
    """Gaussian features, several query chunks (the last one short): bitwise the same
    distances, the same CMC curve and mAP (multi- and single-shot)."""
    from benchmark.perf.previous import pairwise_distance_previous

    gen = torch.Generator().manual_seed(chunk_size)
    qf, gf = torch.randn(1100, 96, generator=gen), torch.randn(1500, 96, generator=gen)
    d = pairwise_distance(qf, gf, chunk_size=chunk_size)
    assert torch.equal(d, pairwise_distance_previous(qf, gf, chunk_size=chunk_size))
    cos = pairwise_distance(qf, gf, metric="cosine", chunk_size=chunk_size)
    assert torch.equal(cos, pairwise_distance_previous(qf, gf, metric="cosine",
                                                       chunk_size=chunk_size))
    labels = _labels(np.random.default_rng(chunk_size), 1100, 1500, 60, 4)
    for single_shot in (False, True):
        _assert_same_results(d, labels, max_rank=20, single_shot=single_shot, num_repeats=3)


def test_hand_made_ties_same_results_as_previous():
    """Features with entries in {-1, 0, 1} and duplicated gallery images: many true matches
    at exactly the same distance as other images, before and after them in gallery order.
    Ranks, CMC and mAP are those of the previous implementation and of the reference."""
    from benchmark.perf.previous import pairwise_distance_previous

    rng = np.random.default_rng(21)
    qf = torch.from_numpy(rng.integers(-1, 2, (120, 6)).astype(np.float32))
    gf = torch.from_numpy(rng.integers(-1, 2, (200, 6)).astype(np.float32))
    gf = torch.cat([gf, gf[:100]])  # exact duplicates at higher indices
    d = pairwise_distance(qf, gf)
    assert torch.equal(d, pairwise_distance_previous(qf, gf))
    labels = _labels(rng, 120, 200, 25, 3)
    labels = (labels[0], np.concatenate([labels[1], labels[1][:100]]), labels[2],
              np.concatenate([labels[3], labels[3][:100]]))
    # the ties exist: true matches sharing their distance with other-identity images
    dn = d.numpy()
    match = labels[0][:, None] == labels[1][None, :]
    tied = [np.isin(dn[i, match[i]], dn[i, ~match[i]]).sum() for i in range(len(dn))]
    assert sum(tied) > 1000
    for single_shot in (False, True):
        res = _assert_same_results(d, labels, max_rank=30, single_shot=single_shot)
        assert res.num_valid_queries > 100


@pytest.mark.parametrize("chunk_size", [1024, 37])
def test_features_path_same_as_full_matrix(chunk_size):
    """``evaluate_features`` (distances block by block, never the full matrix) gives the
    result of ``evaluate_ranking(pairwise_distance(...))``, ties included, and its blocks
    are bitwise the rows of ``pairwise_distance``."""
    from benchmark.metrics import evaluate_features
    from benchmark.metrics.distance import distance_blocks

    rng = np.random.default_rng(5)
    qf = torch.from_numpy(rng.integers(-1, 2, (130, 6)).astype(np.float32))
    gf = torch.from_numpy(rng.integers(-1, 2, (220, 6)).astype(np.float32))
    labels = _labels(rng, 130, 220, 25, 3)
    for metric in ("euclidean", "cosine"):
        full = pairwise_distance(qf, gf, metric=metric, chunk_size=chunk_size)
        rows = [b.clone() for _, b in distance_blocks(qf, gf, metric, chunk_size)]
        assert torch.equal(torch.cat(rows), full)
    d = pairwise_distance(qf, gf, chunk_size=chunk_size)
    for single_shot in (False, True):
        kw = dict(max_rank=30, single_shot=single_shot, num_repeats=4, seed=3)
        want = evaluate_ranking(d, *labels, **kw)
        got = evaluate_features(qf, gf, *labels, chunk_size=chunk_size, **kw)
        assert np.array_equal(got.cmc, want.cmc) and got.mAP == want.mAP
        assert got.num_valid_queries == want.num_valid_queries > 100
    with pytest.raises(ValueError, match="query rows"):
        evaluate_features(qf, gf, *(labels[0][:5],) + labels[1:])
