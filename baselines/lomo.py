"""The LOMO descriptor (Liao et al., CVPR 2015): the features of ``lomo-xqda``
(``baselines/lomo_xqda.py``).

Written from the paper and from reading the authors' MATLAB release (``LOMO.m``,
``SILTP.m``); numpy/scipy/scikit-image only.

LOMO (Local Maximal Occurrence), on a 128 x 48 image:

* Retinex: multi-scale Retinex with colour restoration (MSRCR, Jobson et al. 1997) with the
  two Gaussian surrounds sigma = 5 and 20 of the LOMO paper, colour restoration
  alpha = 125, beta = 46, then a per-channel "simplest colour balance" (1% of the pixels
  clipped at each end, linear stretch to [0, 1]). The authors ship their Retinex only as a
  closed MEX binary, so this is our reading of MSRCR, not their code; the gain/offset
  (G, b) of MSRCR drop out because the colour balance is affine-invariant.
* HSV joint histogram: the Retinex image in HSV, each channel quantised to 8 levels,
  joint code ``V*64 + S*8 + H`` -> 512 bins.
* SILTP (scale-invariant local ternary pattern) on the grey image (MATLAB ``rgb2gray``
  weights, not Retinex-processed, as in ``LOMO.m``): 4 neighbours at distance R (right, up,
  left, down), each coded 0 (within [(1-tau) I, (1+tau) I]), 1 (darker) or 2 (brighter),
  -> 3^4 = 81 bins; tau = 0.3, two scales R = 3 and R = 5, replicated borders.
* Histograms over 10 x 10 sliding windows with stride 5; for each horizontal row of windows
  the bin-wise maximum over the windows of that row ("maximal occurrence").
* Three-scale pyramid: 2 x 2 average pooling (odd last row/column dropped). As in
  ``LOMO.m`` the HSV pyramid pools the quantised HSV levels (then floors), the SILTP pyramid
  pools the grey image.
* log(1 + h), then L2 normalisation of each of the three blocks (HSV, SILTP R=3,
  SILTP R=5) separately, as ``LOMO.m`` does (``normc`` per call).

Dimension at 128 x 48: window rows per scale 24 + 11 + 5 = 40, so
40 x 512 (HSV) + 2 x 40 x 81 (SILTP) = 20,480 + 6,480 = **26,960** (the paper's number);
``lomo_dim`` computes it for other sizes. Images arrive at the harness input size
(e.g. 128 x 64 or 256 x 128) and are resized to 128 x 48 first (bilinear, anti-aliased;
the result of ``skimage.transform.resize``, applied as two small matrix products), the size
the LOMO paper normalises its images to.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.ndimage
from skimage.transform import resize

LOMO_SIZE = (128, 48)
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # MATLAB rgb2gray


@dataclass(frozen=True)
class LomoParams:
    num_scales: int = 3
    block_size: int = 10
    block_step: int = 5
    hsv_bins: tuple[int, int, int] = (8, 8, 8)
    tau: float = 0.3
    radii: tuple[int, ...] = (3, 5)
    retinex_sigmas: tuple[float, ...] = (5.0, 20.0)
    retinex_alpha: float = 125.0
    retinex_beta: float = 46.0
    retinex_clip: float = 0.01  # fraction of pixels saturated at each end per channel


def _window_starts(n: int, p: LomoParams) -> np.ndarray:
    return np.arange(0, n - p.block_size + 1, p.block_step)


def _scale_sizes(h: int, w: int, p: LomoParams) -> list[tuple[int, int]]:
    sizes = []
    for _ in range(p.num_scales):
        sizes.append((h, w))
        h, w = h // 2, w // 2
    return sizes


def lomo_dim(h: int = LOMO_SIZE[0], w: int = LOMO_SIZE[1], p: LomoParams = LomoParams()) -> int:
    """Length of the LOMO descriptor of an h x w image (26,960 for 128 x 48)."""
    hsv_rows = siltp_rows = 0
    hsv_on, n_bins = True, int(np.prod(p.hsv_bins))
    for sh, sw in _scale_sizes(h, w, p):
        rows, cols = len(_window_starts(sh, p)), len(_window_starts(sw, p))
        if rows == 0 or cols == 0:
            hsv_on = False  # LOMO.m stops the pyramid at the first scale without windows
        if hsv_on:
            hsv_rows += rows
    dim = hsv_rows * n_bins
    for r in p.radii:
        siltp_rows = 0
        for sh, sw in _scale_sizes(h, w, p):
            if sw < 2 * r + 1:
                continue  # LOMO.m skips this scale for this R
            rows, cols = len(_window_starts(sh, p)), len(_window_starts(sw, p))
            if rows == 0 or cols == 0:
                break
            siltp_rows += rows
        dim += siltp_rows * 3 ** 4
    return dim


@functools.lru_cache(maxsize=32)
def _gauss_matrix(n: int, sigma: float) -> np.ndarray:
    """[n, n] matrix of ``scipy.ndimage.gaussian_filter1d(mode="reflect")`` along one axis."""
    return scipy.ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0, mode="reflect")


@functools.lru_cache(maxsize=32)
def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] matrix of ``skimage.transform.resize`` (order 1, anti-aliased) along one axis."""
    return resize(np.eye(n_in), (n_out, n_in), order=1, mode="edge", anti_aliasing=True,
                  preserve_range=True)


def _separable(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Apply a separable linear image operator: rows @ x @ cols' over the last two axes
    (two large matrix products rather than one small product per image)."""
    *lead, h, w = x.shape
    y = (x.reshape(-1, w) @ cols.T).reshape(-1, h, cols.shape[0])  # [N, h, w']
    y = rows @ y.transpose(1, 0, 2).reshape(h, -1)  # [h', N * w']
    return y.reshape(rows.shape[0], -1, cols.shape[0]).transpose(1, 0, 2).reshape(
        *lead, rows.shape[0], cols.shape[0])


def retinex(rgb: np.ndarray, p: LomoParams = LomoParams()) -> np.ndarray:
    """MSRCR of a batch [B,3,H,W] in [0,1] -> [B,3,H,W] in [0,1] (see module docstring)."""
    x = rgb.astype(np.float64) * 255.0 + 1.0
    log_x = np.log(x)
    msr = np.zeros_like(x)
    h, w = x.shape[-2:]
    for s in p.retinex_sigmas:
        surround = _separable(x, _gauss_matrix(h, s), _gauss_matrix(w, s))
        msr += log_x - np.log(surround)
    msr /= len(p.retinex_sigmas)
    crf = p.retinex_beta * (np.log(p.retinex_alpha * x) - np.log(x.sum(1, keepdims=True)))
    out = msr * crf
    b, c, h, w = out.shape
    flat = out.reshape(b, c, h * w)
    lo, hi = np.quantile(flat, [p.retinex_clip, 1.0 - p.retinex_clip], axis=-1)
    span = hi - lo
    scaled = (flat - lo[..., None]) / np.where(span > 0, span, 1.0)[..., None]
    scaled = np.where((span > 0)[..., None], scaled, 0.5)
    return np.clip(scaled, 0.0, 1.0).reshape(b, c, h, w)


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """[B,3,H,W] RGB in [0,1] -> HSV in [0,1], MATLAB ``rgb2hsv`` conventions (H=0 on greys)."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    maxc, minc = rgb.max(1), rgb.min(1)
    delta = maxc - minc
    s = np.where(maxc > 0, delta / np.where(maxc > 0, maxc, 1.0), 0.0)
    d = np.where(delta > 0, delta, 1.0)
    h = np.where(maxc == r, (g - b) / d, np.where(maxc == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, maxc], 1)


def avg_pool2(x: np.ndarray) -> np.ndarray:
    """2 x 2 average pooling over the last two axes; an odd last row/column is dropped."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return x.reshape(*x.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


def siltp(grey: np.ndarray, tau: float, radius: int) -> np.ndarray:
    """4-neighbour SILTP codes in [0, 81) of a batch of grey images [B,H,W] (``SILTP.m``)."""
    h, w = grey.shape[-2:]
    r = radius
    pad = np.pad(grey, ((0, 0), (r, r), (r, r)), mode="edge")
    neighbours = (pad[:, r:r + h, 2 * r:],       # right
                  pad[:, :h, r:r + w],           # up
                  pad[:, r:r + h, :w],           # left
                  pad[:, 2 * r:, r:r + w])       # down
    lower, upper = (1.0 - tau) * grey, (1.0 + tau) * grey
    code = np.zeros(grey.shape, dtype=np.int64)
    for k, nb in enumerate(neighbours):
        code += ((nb < lower) + 2 * (nb > upper)).astype(np.int64) * 3 ** k
    return code


def max_occurrence(codes: np.ndarray, n_bins: int, p: LomoParams) -> np.ndarray | None:
    """Histograms of ``codes`` [B,H,W] over the sliding windows, max over each window row.

    Returns [B, rows, n_bins] (None when no window fits). One ``bincount`` for the batch.
    """
    b, h, w = codes.shape
    rows, cols = _window_starts(h, p), _window_starts(w, p)
    if len(rows) == 0 or len(cols) == 0:
        return None
    off = np.arange(p.block_size)
    ri = (rows[:, None] + off)[:, None, :, None]  # [R,1,k,1]
    ci = (cols[:, None] + off)[None, :, None, :]  # [1,C,1,k]
    patches = codes[:, ri, ci]  # [B,R,C,k,k]
    nr, nc = len(rows), len(cols)
    window = np.arange(b * nr * nc).reshape(b, nr, nc, 1, 1)
    flat = (window * n_bins + patches).ravel()
    hist = np.bincount(flat, minlength=b * nr * nc * n_bins).reshape(b, nr, nc, n_bins)
    return hist.max(axis=2)


def _log_l2(parts: list[np.ndarray]) -> np.ndarray:
    h = np.log1p(np.concatenate([q.reshape(q.shape[0], -1) for q in parts], 1).astype(np.float64))
    n = np.linalg.norm(h, axis=1, keepdims=True)
    return h / np.where(n > 0, n, 1.0)


def lomo(images: np.ndarray, p: LomoParams = LomoParams(), chunk: int = 32) -> np.ndarray:
    """LOMO descriptors of a batch [B,3,H,W] RGB in [0,1] (no resizing) -> [B, D] float32."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B,3,H,W], got shape {images.shape}")
    out = [_lomo_chunk(images[s:s + chunk], p) for s in range(0, len(images), chunk)]
    if not out:
        return np.zeros((0, lomo_dim(*images.shape[-2:], p)), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)


def _lomo_chunk(images: np.ndarray, p: LomoParams) -> np.ndarray:
    x = images.astype(np.float64)
    hb = np.asarray(p.hsv_bins)
    # HSV joint histograms of the Retinex image, pyramid over the quantised levels
    hsv = rgb_to_hsv(retinex(x, p))
    levels = np.minimum(np.floor(hsv * hb[None, :, None, None]), hb[None, :, None, None] - 1)
    hsv_parts = []
    for scale in range(p.num_scales):
        code = (levels[:, 2] * hb[1] * hb[0] + levels[:, 1] * hb[0] + levels[:, 0]).astype(np.int64)
        hist = max_occurrence(code, int(np.prod(hb)), p)
        if hist is None:
            break
        hsv_parts.append(hist)
        if scale < p.num_scales - 1:
            levels = np.floor(avg_pool2(levels))
    blocks = [_log_l2(hsv_parts)]
    # SILTP histograms of the grey image, one block per radius
    grey0 = np.tensordot(np.asarray(GREY_WEIGHTS), x, axes=([0], [1]))  # [B,H,W]
    for radius in p.radii:
        grey, parts = grey0, []
        for scale in range(p.num_scales):
            if grey.shape[-1] >= 2 * radius + 1:
                hist = max_occurrence(siltp(grey, p.tau, radius), 3 ** 4, p)
                if hist is None:
                    break
                parts.append(hist)
            if scale < p.num_scales - 1:
                grey = avg_pool2(grey)
        blocks.append(_log_l2(parts))
    return np.concatenate(blocks, 1)


def resize_for_lomo(images: np.ndarray, size: tuple[int, int] = LOMO_SIZE) -> np.ndarray:
    """[B,3,H,W] -> [B,3,*size]: bilinear, anti-aliased (the LOMO paper's 128 x 48)."""
    h, w = images.shape[-2:]
    if (h, w) == tuple(size):
        return images
    # separable: identical to skimage.transform.resize(order=1, anti_aliasing=True) of the
    # batch, as two small matrix products
    return _separable(np.asarray(images, dtype=np.float64), _resize_matrix(h, size[0]),
                      _resize_matrix(w, size[1]))
