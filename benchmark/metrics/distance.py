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
    as_numpy = not isinstance(qf, torch.Tensor)
    prep = _Prepared(qf, gf, metric, chunk_size)
    out = torch.empty((prep.q.shape[0], prep.g_t.shape[1]), dtype=torch.float32)
    for s in range(0, prep.q.shape[0], chunk_size):
        prep.fill(s, out[s : s + chunk_size])
    return out.numpy() if as_numpy else out


def distance_blocks(qf, gf, metric: str = "euclidean", chunk_size: int = 1024):
    """Yield ``(start, block)``: the rows ``start:start + len(block)`` of
    :func:`pairwise_distance` (bitwise the same values: the same products), one
    ``chunk_size``-row block at a time in ONE reused float32 buffer, so the full Q x G
    matrix is never held (nor its pages first touched). A block is valid until the next
    one is yielded: copy what must outlive it."""
    prep = _Prepared(qf, gf, metric, chunk_size)
    nq, ng = prep.q.shape[0], prep.g_t.shape[1]
    buf = torch.empty((min(chunk_size, nq), ng), dtype=torch.float32)
    for s in range(0, nq, chunk_size):
        block = buf[: min(chunk_size, nq - s)]
        prep.fill(s, block)
        yield s, block


class _Prepared:
    """Checked float32 operands of a distance computation: queries ``q``, the contiguous
    transposed gallery ``g_t`` and (Euclidean) the gallery's squared norms."""

    def __init__(self, qf, gf, metric: str, chunk_size: int) -> None:
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"unknown metric {metric!r}; use 'euclidean' or 'cosine'")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        q = torch.as_tensor(qf).detach().to("cpu", torch.float32)
        g = torch.as_tensor(gf).detach().to("cpu", torch.float32)
        if q.ndim != 2 or g.ndim != 2:
            raise ValueError(f"features must be 2-D [N, D]; got {tuple(q.shape)} and "
                             f"{tuple(g.shape)}")
        if q.shape[1] != g.shape[1]:
            raise ValueError(f"feature dimensions differ: query {q.shape[1]} vs gallery "
                             f"{g.shape[1]}")
        if metric == "cosine":
            q = torch.nn.functional.normalize(q, dim=1, eps=1e-12)
            g = torch.nn.functional.normalize(g, dim=1, eps=1e-12)
        self.metric, self.chunk_size, self.q = metric, chunk_size, q
        self.g_t = g.t().contiguous()  # a transposed view would take other BLAS paths
        self.g_sq = _squared_norms(g) if metric == "euclidean" else None

    @torch.no_grad()
    def fill(self, start: int, block: torch.Tensor) -> None:
        """Distances of query rows ``start:start + len(block)`` into ``block`` (contiguous)."""
        qc = self.q[start : start + block.shape[0]]
        torch.mm(qc, self.g_t, out=block)
        if self.metric == "euclidean":
            _euclidean_from_products(block, self.g_sq, _squared_norms(qc)[:, None])
        else:
            block.neg_().add_(1.0)


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


__all__ = ["distance_blocks", "pairwise_distance"]
