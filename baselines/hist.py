"""``hist``: colour histograms over horizontal stripes, Euclidean distance. Not learned.

The floor of Table 1: the classic hand-crafted re-ID descriptor (cf. ELF / LOMO's colour
part). The image is cut into ``stripes`` horizontal bands; in each band a histogram of
``bins`` bins per channel is taken in RGB and in HSV, L1-normalised per band and channel
group; the square root (Hellinger map) of the concatenation is the feature, so Euclidean
distance between features is the Hellinger distance between histograms.
Feature size: stripes x 2 colour spaces x 3 channels x bins (6 x 2 x 3 x 16 = 576).
"""

from __future__ import annotations

import torch

from benchmark.registry import register_method


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] RGB in [0,1] -> HSV in [0,1] (hue scaled to [0,1))."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    v = maxc
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    dc = delta.clamp_min(1e-12)
    rc, gc, bc = (maxc - r) / dc, (maxc - g) / dc, (maxc - b) / dc
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, v], 1)


def stripe_histograms(images: torch.Tensor, stripes: int = 6, bins: int = 16) -> torch.Tensor:
    """The ``hist`` descriptor of a batch [B,3,H,W] in [0,1] -> [B, stripes*2*3*bins]."""
    b, _, h, w = images.shape
    if h < stripes:
        raise ValueError(f"images are {h} px high; need at least {stripes} for {stripes} stripes")
    x = torch.cat([images, rgb_to_hsv(images)], 1).clamp(0, 1)  # [B,6,H,W]
    q = (x * bins).long().clamp_(max=bins - 1)  # bin index per pixel and channel
    band = (torch.arange(h) * stripes // h).view(1, 1, h, 1).expand(b, 6, h, w)
    chan = torch.arange(6).view(1, 6, 1, 1).expand(b, 6, h, w)
    flat = (band * 6 + chan) * bins + q  # joint index (stripe, channel, bin)
    hist = torch.zeros(b, stripes * 6 * bins)
    hist.scatter_add_(1, flat.reshape(b, -1), torch.ones(b, 6 * h * w))
    hist = hist.view(b, stripes, 2, 3 * bins)
    hist = hist / hist.sum(-1, keepdim=True).clamp_min(1)
    return hist.reshape(b, -1).sqrt()


@register_method("hist")
class HistMethod:
    """Registered as ``hist``: no training; features are stripe colour histograms."""

    name = "hist"
    trainable = False
    produces_images = False
    init = "n/a (not learned)"

    def __init__(self, stripes: int = 6, bins: int = 16):
        self.stripes, self.bins = stripes, bins

    @property
    def feature_dim(self) -> int:
        return self.stripes * 2 * 3 * self.bins

    def config_key(self, run) -> dict:
        """What the stored results of this method depend on besides the data."""
        return {"stripes": self.stripes, "bins": self.bins}

    def fit(self, **_) -> None:
        """Nothing to learn."""

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return stripe_histograms(images, self.stripes, self.bins)
