"""Image-quality metrics for reconstructed HR images: SSIM, PSNR (scikit-image) and LPIPS.

Inputs are batches of RGB images with values in [0, 1]: numpy ``[N, H, W, 3]`` (or one
``[H, W, 3]`` image; ``uint8`` is divided by 255) or torch ``[N, 3, H, W]`` (or ``[3, H, W]``).
Each metric returns a :class:`QualityScores` with one value per image and their mean.

* **SSIM**: ``skimage.metrics.structural_similarity`` with the settings of Wang et al. 2004
  (IEEE TIP, "Image quality assessment: from error visibility to structural similarity"):
  11 x 11 Gaussian window (``gaussian_weights=True, sigma=1.5``),
  ``use_sample_covariance=False``, ``K1=0.01, K2=0.03``, ``data_range=1.0``. Computed on the
  three RGB channels (``channel_axis=-1``) and averaged over them (not on luma). Images must
  be at least 11 px a side. Identical images give exactly 1.
* **PSNR**: ``skimage.metrics.peak_signal_noise_ratio`` with ``data_range=1.0``, i.e.
  ``10 log10(1 / MSE)`` over all pixels and channels. Identical images give ``inf`` (not
  capped), so a batch mean containing them is ``inf``. A constant offset of 0.1 gives 20 dB.
* **LPIPS** (Zhang et al., CVPR 2018) with the AlexNet trunk, version 0.1, as the CAD-Net
  paper: the ``lpips`` package's linear-layer weights (shipped inside the package) plus
  torchvision's ImageNet AlexNet (``alexnet-owt-7be5be79.pth``) found and SHA-256-checked by
  :mod:`benchmark.weights`. Inputs are scaled to [-1, 1]. AlexNet-LPIPS needs at least 32 px
  a side: smaller images are bilinearly up-sampled (both images of a pair alike) so the
  shorter side is 32 px. When the AlexNet file is missing or corrupt, or ``lpips`` is not
  installed, the result is :class:`LPIPSUnavailable` (NaN values, the reason and the path
  where the file belongs; logged once per process) and nothing else stops. LPIPS is never
  computed with a randomly initialised trunk.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmark.weights import WeightsUnavailable, checkpoint_info

__all__ = [
    "QualityScores",
    "LPIPSUnavailable",
    "ssim",
    "psnr",
    "lpips_distance",
    "image_quality",
    "SSIM_SETTINGS",
    "LPIPS_MIN_SIDE",
]

log = logging.getLogger(__name__)

#: keyword arguments passed to skimage.metrics.structural_similarity
SSIM_SETTINGS = {
    "data_range": 1.0,
    "channel_axis": -1,
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
}
_SSIM_MIN_SIDE = 11  # the Gaussian window is 2 * round(3.5 * 1.5) + 1 = 11 px wide
LPIPS_MIN_SIDE = 32


@dataclasses.dataclass(frozen=True, eq=False)
class QualityScores:
    """Per-image values of one metric (``values[i]`` for pair ``i``) and their mean.

    ``reason`` is None when the metric was computed; otherwise the values are NaN and
    ``reason`` (and ``expected_path`` for missing weights) say why.
    """

    name: str
    values: np.ndarray
    reason: str | None = None
    expected_path: str | None = None

    @property
    def available(self) -> bool:
        return self.reason is None

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if len(self.values) else float("nan")

    def __len__(self) -> int:
        return len(self.values)


class LPIPSUnavailable(QualityScores):
    """LPIPS could not be computed (no verified AlexNet weights, or no ``lpips`` package)."""


def _frozen(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------------------------
# inputs


def _to_nhwc(x, name: str) -> np.ndarray:
    """float64 [N, H, W, 3] in [0, 1] from numpy NHWC / HWC or torch NCHW / CHW."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.ndim == 3:
            t = t[None]
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(f"{name}: torch images must be [N, 3, H, W], got {tuple(x.shape)}")
        a = t.permute(0, 2, 3, 1).to(torch.float64).numpy()
    else:
        a = np.asarray(x)
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or a.shape[-1] != 3:
            raise ValueError(f"{name}: numpy images must be [N, H, W, 3], got {np.shape(x)}")
        if a.dtype == np.uint8:
            a = a / 255.0
        elif not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{name}: expected float images in [0, 1] (or uint8), got {a.dtype}")
        a = a.astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: images contain NaN or inf")
    if a.size and (a.min() < -1e-6 or a.max() > 1 + 1e-6):
        raise ValueError(
            f"{name}: values must lie in [0, 1], found [{a.min():.4g}, {a.max():.4g}] "
            "(clamp or rescale first, e.g. (x + 1) / 2 for tanh outputs)"
        )
    return np.clip(a, 0.0, 1.0)


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    a, b = _to_nhwc(x, "x"), _to_nhwc(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"image batches differ in shape: {a.shape} vs {b.shape}")
    return a, b


# --------------------------------------------------------------------------------------------
# SSIM / PSNR


def ssim(x, y) -> QualityScores:
    """Per-image SSIM of ``x`` vs ``y`` (Wang et al. 2004 settings; see module docstring)."""
    from skimage.metrics import structural_similarity

    a, b = _pair(x, y)
    if min(a.shape[1:3]) < _SSIM_MIN_SIDE:
        raise ValueError(
            f"SSIM needs images of at least {_SSIM_MIN_SIDE} px a side (11 x 11 Gaussian "
            f"window), got {a.shape[1]} x {a.shape[2]}"
        )
    vals = [structural_similarity(a[i], b[i], **SSIM_SETTINGS) for i in range(len(a))]
    return QualityScores("SSIM", _frozen(vals))


def psnr(x, y) -> QualityScores:
    """Per-image PSNR in dB, ``data_range=1`` (identical images: ``inf``)."""
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _pair(x, y)
    with np.errstate(divide="ignore"):
        vals = [peak_signal_noise_ratio(a[i], b[i], data_range=1.0) for i in range(len(a))]
    return QualityScores("PSNR", _frozen(vals))


# --------------------------------------------------------------------------------------------
# LPIPS


#: torchvision's ImageNet AlexNet (== torchvision_weights_url("alexnet"), checked in tests)
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"


def _alexnet_url() -> str:
    return ALEXNET_URL


_models: dict[tuple[str, str], torch.nn.Module] = {}
_warned = False


def _reset_lpips_state() -> None:
    """Forget built models and the once-per-process warning (tests)."""
    global _warned
    _models.clear()
    _warned = False


def load_alexnet_trunk(net: torch.nn.Module, state: dict) -> None:
    """Load torchvision AlexNet ``features.*`` weights into lpips' ``pn.alexnet`` slices.

    ``lpips.pretrained_networks.alexnet`` copies ``tv.alexnet().features[i]`` into
    ``slice1`` (i = 0, 1), ``slice2`` (2-4), ``slice3`` (5-7), ``slice4`` (8, 9) and
    ``slice5`` (10, 11), keeping the index ``i`` as the module name, so the parameter
    ``slice{s}.{i}.weight`` is torchvision's ``features.{i}.weight``. Every slice parameter
    must be found and every ``features.*`` tensor of ``state`` used, else ValueError.
    """
    mapped, used = {}, set()
    for key in net.state_dict():
        _, index, pname = key.split(".", 2)
        src = f"features.{index}.{pname}"
        if src not in state:
            raise ValueError(f"AlexNet checkpoint lacks {src!r} (needed for lpips {key!r})")
        mapped[key] = state[src]
        used.add(src)
    unused = {k for k in state if k.startswith("features.")} - used
    if unused:
        raise ValueError(f"AlexNet features not loaded into lpips: {sorted(unused)}")
    net.load_state_dict(mapped, strict=True)


def _build_lpips(path: Path) -> torch.nn.Module:
    import lpips

    state = torch.load(path, map_location="cpu", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's `pretrained=` deprecation inside lpips
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True,
                            verbose=False)
    load_alexnet_trunk(model.net, state)
    # the linear layers come from the package's own file; check they were all loaded
    lin_path = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    lin_state = torch.load(lin_path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    for k in (k for k in own if k.startswith("lin") and not k.startswith("lins.")):
        if k not in lin_state or not torch.equal(own[k], lin_state[k]):
            raise ValueError(f"lpips linear layer {k!r} not loaded from {lin_path}")
    return model.eval()


def _unavailable(n: int, reason: str, expected_path: str | None) -> LPIPSUnavailable:
    global _warned
    if not _warned:
        _warned = True
        where = f"; expected AlexNet weights at {expected_path}" if expected_path else ""
        log.warning("LPIPS unavailable (reported as NaN): %s%s", reason, where)
    return LPIPSUnavailable("LPIPS", _frozen(np.full(n, np.nan)), reason, expected_path)


def _upsample_min_side(t: torch.Tensor, min_side: int) -> torch.Tensor:
    h, w = t.shape[-2:]
    if min(h, w) >= min_side:
        return t
    s = min_side / min(h, w)
    size = (max(min_side, round(h * s)), max(min_side, round(w * s)))
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)


def lpips_distance(x, y, *, batch_size: int = 32, download: bool = True,
                   device: str | torch.device = "cpu") -> QualityScores:
    """Per-image LPIPS (AlexNet, v0.1) of ``x`` vs ``y``; lower is more similar.

    Returns :class:`LPIPSUnavailable` (NaN values, reason, expected path) when the verified
    AlexNet weights or the ``lpips`` package are missing. Images under 32 px a side are
    bilinearly up-sampled first (shorter side to 32 px). See the module docstring.
    """
    a, b = _pair(x, y)
    n = len(a)
    try:
        info = checkpoint_info(_alexnet_url(), download=download)
    except WeightsUnavailable as exc:
        return _unavailable(n, exc.reason, str(exc.expected_path))
    key = (str(info.path), info.sha256)
    if key not in _models:
        try:
            _models[key] = _build_lpips(info.path)
        except ImportError as exc:
            return _unavailable(n, f"the lpips package cannot be imported ({exc})", None)
    model = _models[key].to(device)
    out = []
    with torch.no_grad():
        for s in range(0, n, batch_size):
            ta = torch.from_numpy(a[s : s + batch_size]).permute(0, 3, 1, 2).float()
            tb = torch.from_numpy(b[s : s + batch_size]).permute(0, 3, 1, 2).float()
            ta = _upsample_min_side(ta, LPIPS_MIN_SIDE).to(device) * 2 - 1
            tb = _upsample_min_side(tb, LPIPS_MIN_SIDE).to(device) * 2 - 1
            out.append(model(ta, tb).reshape(-1).double().cpu().numpy())
    return QualityScores("LPIPS", _frozen(np.concatenate(out) if out else np.zeros(0)))


def image_quality(x, y, *, lpips: bool = True, download: bool = True) -> dict[str, QualityScores]:
    """``{"SSIM": ..., "PSNR": ..., "LPIPS": ...}`` for the pairs ``(x[i], y[i])``.

    LPIPS being unavailable never stops the others (its entry is :class:`LPIPSUnavailable`).
    """
    out = {"SSIM": ssim(x, y), "PSNR": psnr(x, y)}
    if lpips:
        out["LPIPS"] = lpips_distance(x, y, download=download)
    return out
