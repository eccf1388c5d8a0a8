"""Query x gallery distance matrices (Euclidean or cosine) for the ranking metrics.

The Euclidean distance is computed as ``sqrt(max(|q|^2 + |g|^2 - 2 q.g, 0))`` from one
matrix product per block of queries; the element-wise part runs on cache-sized pieces of
each block. Results are bitwise reproducible for the same inputs and thread count.
"""

from __future__ import annotations

import torch


def pairwise_distance(qf, gf, metric: str = "euclidean", chunk_size: int = 1024):
    """Distance matrix between query features ``qf`` [Q, D] and gallery features ``gf`` [G, D].

    ``metric="euclidean"``: the true L2 distance ``||q - g||`` (not squared), computed as
    ``sqrt(max(|q|^2 + |g|^2 - 2 q.g, 0))`` (tiny negative values from rounding are clamped
    to 0 before the square root). ``metric="cosine"``: ``1 - cos(q, g)`` in [0, 2] (features
    are L2-normalised with eps 1e-12 first).

    Computed in float32 with torch: one matrix product per ``chunk_size`` query rows, then
    the rest of the formula on blocks of about 2 MB while they are in cache. The rounding
    of a product depends on the BLAS code path, which depends on the operands' shapes and
    layout, so the products are the same calls as in earlier versions (``chunk_size`` rows
    times the contiguous transposed gallery): distances are bitwise those of earlier
    versions (``tests/test_ranking.py``), and so are the rankings. Returns a float32
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
    gt = g.t().contiguous()  # a transposed view would take other BLAS paths for small chunks
    g_sq = _squared_norms(g) if metric == "euclidean" else None
    with torch.no_grad():
        for s in range(0, q.shape[0], chunk_size):
            qc = q[s : s + chunk_size]
            block = out[s : s + chunk_size]
            torch.mm(qc, gt, out=block)
            if metric == "euclidean":
                _euclidean_from_products(block, g_sq, _squared_norms(qc)[:, None])
            else:
                block.neg_().add_(1.0)
    return out.numpy() if as_numpy else out


#: distance entries per block of the element-wise part of :func:`pairwise_distance`
_FINISH_ELEMENTS = 1 << 19


def _squared_norms(x: torch.Tensor, rows: int = 512) -> torch.Tensor:
    """``(x * x).sum(1)`` a block of rows at a time (each row's sum is the same reduction
    either way, so the values are bitwise the same; the full product is never held)."""
    out = torch.empty(x.shape[0], dtype=x.dtype)
    for s in range(0, x.shape[0], rows):
        torch.sum(x[s : s + rows] * x[s : s + rows], 1, out=out[s : s + rows])
    return out


def _euclidean_from_products(block, g_sq, q_sq) -> None:
    """``block`` (products q.g) becomes ``sqrt(max((-2 q.g + |g|^2) + |q|^2, 0))`` in place,
    row blocks of ~2 MB at a time (4 passes each while in cache; torch's ``sqrt`` as before:
    it is not always correctly rounded, so numpy's would differ in the last bit)."""
    rows = max(1, _FINISH_ELEMENTS // max(block.shape[1], 1))
    for r in range(0, block.shape[0], rows):
        b = block[r : r + rows]
        torch.add(g_sq, b, alpha=-2.0, out=b)  # == b * -2 + |g|^2: the product by -2 is exact
        b.add_(q_sq[r : r + rows]).clamp_(min=0.0).sqrt_()


# --------------------------------------------------------------------------------------------
# single-shot sampling (shared with the reference implementation)


__all__ = ["pairwise_distance"]
