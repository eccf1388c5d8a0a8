"""Manifest rows -> image tensors: decode once, resize, make LR versions in batched ops.

``ImageStore`` decodes every distinct file of a manifest once (PIL; grayscale, palette and
RGBA images are converted to RGB), resizes it to the network input size (H, W) and keeps
the result as one uint8 tensor ``[N, 3, H, W]``. It can keep a copy on disk (``.npy`` keyed
by the list of files and the size) so later runs skip decoding.

``make_lr`` produces synthetic LR images the way the paper does (section 3.1): down-sample
the (already resized) image by r to (H/r, W/r), then bilinear up-sample back to H x W. The
down-sampling method is recorded, never hidden: ``bilinear`` (antialiased; default) or
``maxpool`` (kernel = stride = r, as the authors' code did). Rates may be non-integer (the
rate sweep), in which case ``maxpool`` uses adaptive max pooling to the same target size.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from .atomic import atomic_path
from .base import DatasetError

log = logging.getLogger(__name__)

LR_METHODS = ("bilinear", "maxpool")
MIN_LR_SIDE = 2


def decode_image(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """Decode ``path`` to an RGB uint8 array of shape (3, H, W); errors name the file."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DatasetError(f"image file is empty (0 bytes): {path}")
        with Image.open(path) as im:
            im.load()
            if im.mode != "RGB":
                im = im.convert("RGBA").convert("RGB") if im.mode in ("P", "LA") else im.convert("RGB")
            w, h = im.size
            if w < 2 or h < 2:
                raise DatasetError(f"image {path} is only {w}x{h} px; expected a person crop "
                                   "of at least 2x2 px")
            im = im.resize((size[1], size[0]), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()
    except DatasetError:
        raise
    except FileNotFoundError as e:
        raise DatasetError(f"image file not found: {path}") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"cannot decode image {path}: {e} (corrupt or not an image)") from e


def check_images(paths: Sequence[str], skip_bad: bool = False) -> tuple[list[str], list[str]]:
    """Verify that every file decodes. Returns (good, bad); bad files raise unless skip_bad."""
    good, bad = [], []
    for p in paths:
        try:
            decode_image(p, (2, 2))
            good.append(p)
        except DatasetError:
            if not skip_bad:
                raise
            bad.append(p)
    return good, bad


class ImageStore:
    """Every distinct image of a list, decoded once, as a uint8 tensor [N, 3, H, W]."""

    def __init__(self, paths: Sequence[str], size: tuple[int, int], cache_dir: Path | None = None,
                 progress=None):
        self.size = tuple(size)
        self.paths = list(dict.fromkeys(str(p) for p in paths))
        self.index = {p: i for i, p in enumerate(self.paths)}
        cache = self.cache_file(cache_dir) if cache_dir else None
        if cache is not None and cache.exists():
            try:
                arr = np.load(cache)
            except (OSError, ValueError, EOFError) as e:  # only a cache: decode again
                log.warning("image cache %s unreadable (%s): decoding the images again", cache, e)
                arr = None
            if (arr is not None and arr.shape == (len(self.paths), 3, *self.size)
                    and arr.dtype == np.uint8):
                self.data = torch.from_numpy(arr)
                return
        arr = np.empty((len(self.paths), 3, *self.size), dtype=np.uint8)
        for i, p in enumerate(self.paths):
            arr[i] = decode_image(p, self.size)
            if progress is not None:
                progress(i + 1, len(self.paths))
        if cache is not None:
            with atomic_path(cache) as tmp, open(tmp, "wb") as f:
                np.save(f, arr)
        self.data = torch.from_numpy(arr)

    def cache_file(self, cache_dir: Path) -> Path:
        """The decoded images' cache file: keyed by the paths, each file's size and
        modification time, and the input size (a changed image is decoded again)."""
        h = hashlib.sha256(f"{self.size}".encode())
        for p in self.paths:
            st = os.stat(p)
            h.update(f"\n{p}\t{st.st_size}\t{st.st_mtime_ns}".encode())
        return Path(cache_dir) / f"images-{self.size[0]}x{self.size[1]}-{h.hexdigest()[:16]}.npy"

    def __len__(self) -> int:
        return len(self.paths)

    def indices(self, paths: Sequence[str]) -> torch.Tensor:
        return torch.tensor([self.index[str(p)] for p in paths], dtype=torch.long)

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1], shape [B, 3, H, W]."""
        return self.data[idx].float().div_(255.0)


def lr_size(size: tuple[int, int], rate: float) -> tuple[int, int]:
    """(H/r, W/r) rounded, never below MIN_LR_SIDE px (a clear error if it would be)."""
    h, w = max(1, round(size[0] / rate)), max(1, round(size[1] / rate))
    if min(h, w) < MIN_LR_SIDE:
        raise DatasetError(
            f"down-sampling {size[0]}x{size[1]} images by r={rate} leaves {h}x{w} px; at least "
            f"{MIN_LR_SIDE} px a side are needed: use a larger input size or a smaller rate")
    return h, w


def make_lr(images: torch.Tensor, rates: torch.Tensor | Sequence[float], method: str = "bilinear",
            upsample: str = "bilinear") -> torch.Tensor:
    """Synthetic LR versions of ``images`` [B,3,H,W]: down by r, bilinear back up (Sec. 3.1).

    Rows with r = 1 are returned unchanged. Images sharing a rate are processed together.
    ``upsample="bicubic"`` is for the ``bicubic`` baseline (queries up-sampled bicubically).
    """
    if upsample not in ("bilinear", "bicubic"):
        raise ValueError(f"unknown up-sampling {upsample!r}; known: bilinear, bicubic")
    if method not in LR_METHODS:
        raise ValueError(f"unknown LR method {method!r}; known: {', '.join(LR_METHODS)}")
    rates = torch.as_tensor(rates, dtype=torch.float64).reshape(-1)
    if len(rates) != len(images):
        raise ValueError(f"{len(rates)} rates for {len(images)} images")
    out = images.clone()
    size = tuple(images.shape[-2:])
    for r in torch.unique(rates).tolist():
        if r == 1:
            continue
        sel = (rates == r).nonzero().flatten()
        x = images[sel]
        small_size = lr_size(size, r)
        if method == "bilinear":
            small = F.interpolate(x, size=small_size, mode="bilinear", align_corners=False,
                                  antialias=True)
        elif float(r).is_integer() and size[0] % int(r) == 0 and size[1] % int(r) == 0:
            small = F.max_pool2d(x, kernel_size=int(r), stride=int(r))
        else:
            small = F.adaptive_max_pool2d(x, small_size)
        out[sel] = F.interpolate(small, size=size, mode=upsample, align_corners=False).clamp_(0, 1)
    return out
