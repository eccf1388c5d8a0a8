"""SynthMLR's renderer: a small "paper-doll" drawing of one image of one identity.

A person is a head, hair, torso, two arms, two legs with shoes and optionally a bag,
composited with soft (1 px) edges over a camera-specific background, then passed through a
per-camera imaging transform. What a person looks like (coarse and fine cues) comes from
``datasets/synthmlr_identity.py``; the configuration (``DEFAULT_CONFIG``) and the image set
on disk from ``datasets/synthetic.py``.

Generative model
----------------
``image(pid, cam, k) = camera[cam]( lighting_k( person(appearance(pid), pose_k) over
background[cam]_k ) ) + noise``

*Per-image nuisance* (independent per image): horizontal/vertical position jitter
(+-3 / +-2 px), scale jitter (+-6 %), walking pose (leg spread, arm swing), illumination
gain and vertical shading, background clutter (smooth random blobs), sensor noise, and with
probability ``blur_prob`` (0.25) a motion/defocus blur (sigma ~1 px) that wipes the finest
textures of that image, so even at full resolution a model cannot rely on fine cues alone.
Textures are laid out in whole pixels relative to the garment's corner, so a pattern keeps
its period in pixels whatever the scale jitter. Sensor noise is uniform with the camera's
standard deviation.

*Cameras* (``DEFAULT_CONFIG["cameras"]``): camera 0 is a bright, warm, indoor-looking view
(beige wall, grey floor); camera 1 is darker, cooler, desaturated, with a green-grey
background with vertical posts, a different tone curve and more sensor noise.

Randomness: the per-image draws come from ``numpy.random.default_rng(SeedSequence(...))``
with key ``[seed, pid, camid, k, 3]``, read in a fixed order (``_draw_nuisance``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .synthmlr_identity import PATTERNS, identity_attributes

_IMAGE = 3  # SeedSequence stream key (identity_attributes uses 1 and 2)


# ----------------------------------------------------------------------------- helpers

def _smooth_field(rng: np.random.Generator, h: int, w: int, gh: int = 9, gw: int = 5):
    """Smooth random field (h, w): a coarse Gaussian grid interpolated bilinearly."""
    g = rng.standard_normal((gh, gw))
    return _interp_matrix(h, gh) @ g @ _interp_matrix(w, gw).T


@functools.lru_cache(maxsize=16)
def _interp_matrix(n: int, m: int) -> np.ndarray:
    """(n, m) matrix that linearly interpolates m grid values onto n pixels."""
    pos = np.linspace(0, m - 1, n)
    lo = np.clip(np.floor(pos).astype(int), 0, m - 2)
    t = pos - lo
    a = np.zeros((n, m))
    a[np.arange(n), lo] = 1 - t
    a[np.arange(n), lo + 1] = t
    return a


class _Canvas:
    """An RGB float image; parts are painted inside their bounding box only (fast)."""

    def __init__(self, img: np.ndarray):
        self.img = img
        self.h, self.w = img.shape[:2]
        self.masks: dict[str, np.ndarray] = {}

    def paint(self, box, dist, colour, name: str | None = None, inside: float = 0.5):
        """Composite a part with signed distance ``dist(x, y)`` (px, negative inside; 1 px soft
        edge) inside ``box = (x0, x1, y0, y1)``; ``colour`` is RGB or ``colour(x, y)``."""
        ylo, yhi = max(int(np.floor(box[2])) - 1, 0), min(int(np.ceil(box[3])) + 2, self.h)
        xlo, xhi = max(int(np.floor(box[0])) - 1, 0), min(int(np.ceil(box[1])) + 2, self.w)
        if ylo >= yhi or xlo >= xhi:
            return
        y = np.arange(ylo, yhi, dtype=float)[:, None] + 0.5
        x = np.arange(xlo, xhi, dtype=float)[None, :] + 0.5
        d = np.broadcast_to(dist(x, y), (yhi - ylo, xhi - xlo))
        a = np.clip(0.5 - d, 0.0, 1.0)[..., None]
        col = colour(x, y) if callable(colour) else np.asarray(colour, dtype=float)
        sub = self.img[ylo:yhi, xlo:xhi]
        sub += a * (col - sub)
        if name is not None:
            m = self.masks.setdefault(name, np.zeros((self.h, self.w), dtype=bool))
            m[ylo:yhi, xlo:xhi] |= d < 0.5 - inside


def _garment(base, pattern: str, amp: float, direction, ox: float, oy: float):
    """Colour field ``base + amp * pattern * direction`` with the pattern anchored at the
    integer pixel corner (ox, oy); the amplitude is clamped so no channel clips (the texture
    stays zero-mean, i.e. invisible after a low-pass filter)."""
    base = np.asarray(base, dtype=float)
    vec = amp * np.asarray(direction, dtype=float)
    room = np.minimum(base - 0.02, 0.98 - base)
    vec = np.sign(vec) * np.minimum(np.abs(vec), room)
    fn = PATTERNS[pattern]

    def field(x, y):
        return base + fn(x - 0.5 - ox, y - 0.5 - oy)[..., None] * vec

    return field


def _binomial_blur(img: np.ndarray, passes: int) -> None:
    """In place: ``passes`` x [1, 2, 1] / 4 along both image axes (edges replicated)."""
    for _ in range(passes):
        p = np.concatenate([img[:1], img, img[-1:]], axis=0)
        img[...] = 0.25 * (p[:-2] + p[2:]) + 0.5 * p[1:-1]
        p = np.concatenate([img[:, :1], img, img[:, -1:]], axis=1)
        img[...] = 0.25 * (p[:, :-2] + p[:, 2:]) + 0.5 * p[:, 1:-1]


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(h: int, w: int):
    if (h, w) not in _GRIDS:
        _GRIDS[(h, w)] = (np.arange(w, dtype=float)[None, :] + 0.5,
                          np.arange(h, dtype=float)[:, None] + 0.5)
    return _GRIDS[(h, w)]




# ----------------------------------------------------------------------------- one image

@dataclass(frozen=True)
class _Nuisance:
    """Per-image random draws of ``render`` (see ``_draw_nuisance``)."""

    dx: float
    dy: float
    scale: float
    spread: float
    swing: float
    gain: float
    shading: float
    clutter: np.ndarray
    clutter2: np.ndarray
    posts_phase: float
    noise: np.ndarray
    blurred: bool


def _draw_nuisance(rng: np.random.Generator, cfg: dict, h: int, w: int,
                   unit: float) -> _Nuisance:
    """Every per-image random draw of an image, in a fixed order from its stream ``rng``."""
    dx = rng.uniform(-1, 1) * cfg["shift_x"] * unit
    dy = rng.uniform(-1, 1) * cfg["shift_y"] * unit
    scale = 1.0 + rng.uniform(-1, 1) * cfg["scale_jitter"]
    spread = rng.uniform(0, 1) * cfg["leg_spread"] * unit
    swing = rng.uniform(-1, 1) * cfg["arm_swing"] * unit
    gain = 1.0 + rng.uniform(-1, 1) * cfg["gain_jitter"]
    shading = rng.uniform(-1, 1) * cfg["shading_jitter"]
    clutter = _smooth_field(rng, h, w)
    clutter2 = _smooth_field(rng, h, w, 5, 3)
    posts_phase = rng.uniform(0, 1)
    # sensor noise: uniform with unit std (4x cheaper than Gaussian; scaled per camera)
    noise = (rng.random((h, w, 3), dtype=np.float32) - np.float32(0.5)) * np.float32(12 ** 0.5)
    blurred = rng.random() < cfg["blur_prob"]
    return _Nuisance(dx=dx, dy=dy, scale=scale, spread=spread, swing=swing, gain=gain,
                     shading=shading, clutter=clutter, clutter2=clutter2,
                     posts_phase=posts_phase, noise=noise, blurred=blurred)


def _background(cam: dict, nz: _Nuisance, h: int, unit: float, xx, yy) -> np.ndarray:
    """Background reflectance (h, w, 3): wall over floor, smooth clutter, optional posts."""
    f32 = np.float32
    wall, floor = np.asarray(cam["wall"], dtype=f32), np.asarray(cam["floor"], dtype=f32)
    t_floor = np.clip((yy - cam["floor_start"] * h) / 2.0 + 0.5, 0, 1).astype(f32)  # (h, 1)
    bg = (1 + cam["clutter"] * nz.clutter).astype(f32)
    if cam["posts_period"]:
        ph = (xx / (cam["posts_period"] * unit) + nz.posts_phase) % 1.0
        bg -= (cam["posts_amplitude"] * (ph < 0.25) * (1 - t_floor)).astype(f32)
    img = (wall * (1 - t_floor) + floor * t_floor)[:, None, :] * bg[..., None]
    img += (0.04 * nz.clutter2).astype(f32)[..., None] * np.array([1.0, -0.5, -0.5], dtype=f32)
    return img.astype(float)


@dataclass(frozen=True)
class _Body:
    """Body geometry of one image (px) and its pose (leg spread, arm swing)."""

    unit: float
    scale: float
    body_h: float
    feet: float
    cx: float
    head_ry: float
    head_rx: float
    head_cy: float
    sh_y: float
    hip_y: float
    sw: float
    ww: float
    leg_hw: float
    arm_hw: float
    shoe_h: float
    spread: float
    swing: float


def _body(cfg: dict, co: dict, nz: _Nuisance, w: int, unit: float) -> _Body:
    """Body geometry from the coarse proportions and the image's position/scale jitter."""
    scale = nz.scale
    body_h = 112.0 * unit * cfg["height_factors"][co["height"]] * scale
    feet = 122.0 * unit + nz.dy
    top = feet - body_h
    cx = w / 2.0 + nz.dx
    head_ry = 0.07 * body_h
    head_rx = 0.72 * head_ry
    head_cy = top + head_ry
    sh_y = top + 2 * head_ry + 0.02 * body_h
    hip_y = sh_y + cfg["torso_fractions"][co["torso"]] * body_h
    sw = cfg["shoulder_halfwidths"][co["shoulder"]] * unit * scale
    ww = 0.82 * sw
    leg_hw = 0.45 * ww
    arm_hw = 2.6 * unit * scale
    shoe_h = 4.0 * unit * scale
    return _Body(unit=unit, scale=scale, body_h=body_h, feet=feet, cx=cx, head_ry=head_ry,
                 head_rx=head_rx, head_cy=head_cy, sh_y=sh_y, hip_y=hip_y, sw=sw, ww=ww,
                 leg_hw=leg_hw, arm_hw=arm_hw, shoe_h=shoe_h, spread=nz.spread, swing=nz.swing)


def _paint_legs(cv: _Canvas, cfg: dict, co: dict, fi: dict, b: _Body) -> None:
    """Legs and shoes; trousers textured from the integer corner at the hips."""
    cx, ww, hip_y, feet = b.cx, b.ww, b.hip_y, b.feet
    leg_hw, shoe_h, spread = b.leg_hw, b.shoe_h, b.spread
    trousers = _garment(cfg["lower_palette"][co["lower"]], fi["trouser_pattern"],
                        fi["trouser_amplitude"], np.ones(3) / np.sqrt(3),
                        np.floor(cx - ww), np.floor(hip_y))
    leg_len = max(feet - hip_y, 1.0)
    for side in (-1, 1):
        x_hip = cx + side * (ww - leg_hw)

        def leg(x, y, x_hip=x_hip, side=side):
            lcx = x_hip + side * spread * np.clip((y - hip_y) / leg_len, 0, 1)
            return np.maximum(np.abs(x - lcx) - leg_hw, np.maximum(hip_y - 2 - y, y - feet))

        def shoe(x, y, x_hip=x_hip, side=side):
            lcx = x_hip + side * (spread + 0.8)
            return np.maximum(np.abs(x - lcx) - (leg_hw + 0.8),
                              np.maximum(feet - shoe_h - y, y - feet))

        xs = sorted((x_hip, x_hip + side * spread))
        cv.paint((xs[0] - leg_hw - 1, xs[1] + leg_hw + 1, hip_y - 2, feet), leg, trousers,
                 name="legs")
        cv.paint((xs[1 if side > 0 else 0] - leg_hw - 2, xs[1 if side > 0 else 0] + leg_hw + 2,
                  feet - shoe_h, feet), shoe, cfg["shoe_palette"][fi["shoe_colour"]],
                 name="shoes")


def _paint_bag(cv: _Canvas, cfg: dict, co: dict, b: _Body) -> None:
    """The bag at the hip (painted before the arm, so it is behind it)."""
    cx, sw, hip_y, unit, scale = b.cx, b.sw, b.hip_y, b.unit, b.scale
    bx, by = cx + co["bag_side"] * (sw + 5.0 * unit * scale), hip_y - 2 * unit
    bw, bh = 5.0 * unit * scale, 7.0 * unit * scale
    cv.paint((bx - bw, bx + bw, by - bh, by + bh),
             lambda x, y: np.maximum(np.abs(x - bx) - bw, np.abs(y - by) - bh),
             cfg["bag_palette"][co["bag_colour"]])


def _paint_torso(cv: _Canvas, cfg: dict, co: dict, fi: dict, b: _Body) -> None:
    """Torso (a trapezoid from the shoulders to the waist, textured shirt), then the logo: a
    few px of saturated colour on the chest (hard-edged, whole pixels)."""
    cx, sw, ww, sh_y, hip_y = b.cx, b.sw, b.ww, b.sh_y, b.hip_y
    shirt = _garment(cfg["upper_palette"][co["upper"]], fi["shirt_pattern"],
                     fi["shirt_amplitude"], fi["shirt_direction"],
                     np.floor(cx - sw), np.floor(sh_y))
    torso_len = max(hip_y - sh_y, 1.0)

    def torso(x, y):
        half = sw + (ww - sw) * np.clip((y - sh_y) / torso_len, 0, 1)
        return np.maximum(np.abs(x - cx) - half, np.maximum(sh_y - y, y - hip_y))

    cv.paint((cx - sw, cx + sw, sh_y, hip_y), torso, shirt, name="torso", inside=2.0)
    if not fi["logo"]:
        return
    lx = np.floor(cx + fi["logo_anchor"][0] * sw) + 0.5
    ly = np.floor(sh_y + fi["logo_anchor"][1] * torso_len) + 0.5
    half_w, half_h = {"square3": (1.5, 1.5), "square4": (2.0, 2.0), "cross5": (2.5, 2.5),
                      "bar": (2.5, 1.0)}[fi["logo_shape"]]
    cross = fi["logo_shape"] == "cross5"

    def logo(x, y):
        ax_, ay_ = np.abs(x - lx), np.abs(y - ly)
        m = (ax_ < half_w) & (ay_ < half_h)
        if cross:
            m &= (ax_ < 0.5) | (ay_ < 0.5)
        return np.where(m, -10.0, 10.0)

    cv.paint((lx - 3, lx + 3, ly - 3, ly + 3), logo, cfg["logo_palette"][fi["logo_colour"]],
             name="logo")


def _paint_arms(cv: _Canvas, cfg: dict, co: dict, b: _Body) -> None:
    """Arms (sleeves, skin forearms for short sleeves) and hands."""
    cx, sw, sh_y, unit, scale = b.cx, b.sw, b.sh_y, b.unit, b.scale
    arm_hw, swing = b.arm_hw, b.swing
    upper = cfg["upper_palette"][co["upper"]]
    skin = cfg["skin_palette"][co["skin"]]
    arm_len = 0.38 * b.body_h
    sleeve_end = sh_y + (arm_len if co["long_sleeves"] else 0.45 * arm_len)
    for side in (-1, 1):
        x_sh = cx + side * (sw + arm_hw * 0.7)

        def arm(x, y, x_sh=x_sh, side=side, y_end=sh_y + arm_len):
            acx = x_sh + swing * side * np.clip((y - sh_y) / arm_len, 0, 1)
            return np.maximum(np.abs(x - acx) - arm_hw, np.maximum(sh_y + 1 - y, y - y_end))

        xs = sorted((x_sh, x_sh + swing * side))
        box = (xs[0] - arm_hw, xs[1] + arm_hw, sh_y, sh_y + arm_len)
        if not co["long_sleeves"]:
            cv.paint(box, arm, skin)
        cv.paint(box, lambda x, y, arm=arm: np.maximum(arm(x, y), y - sleeve_end), upper)
        hx, hy, hr = x_sh + swing * side, sh_y + arm_len + 1.5 * unit, 2.4 * unit * scale
        cv.paint((hx - hr, hx + hr, hy - hr, hy + hr),
                 lambda x, y, hx=hx, hy=hy, hr=hr: np.hypot(x - hx, y - hy) - hr, skin)


def _paint_strap(cv: _Canvas, cfg: dict, co: dict, b: _Body) -> None:
    """The bag strap across the torso (from the opposite shoulder)."""
    cx, sw, sh_y, hip_y, unit, scale = b.cx, b.sw, b.sh_y, b.hip_y, b.unit, b.scale
    s = co["bag_side"]
    x0, y0 = cx - s * sw * 0.8, sh_y
    x1, y1 = cx + s * (sw + 4.0 * unit * scale), hip_y - 8 * unit
    vx, vy = x1 - x0, y1 - y0

    def strap(x, y):
        t = np.clip(((x - x0) * vx + (y - y0) * vy) / (vx * vx + vy * vy), 0, 1)
        return np.hypot(x - x0 - t * vx, y - y0 - t * vy) - 1.0 * unit

    cv.paint((min(x0, x1), max(x0, x1), y0, y1), strap, cfg["bag_palette"][co["bag_colour"]])


def _paint_head(cv: _Canvas, cfg: dict, co: dict, b: _Body) -> None:
    """Neck, head and hair (long hair reaches below the chin)."""
    cx, sh_y, head_rx, head_ry, head_cy = b.cx, b.sh_y, b.head_rx, b.head_ry, b.head_cy
    skin = cfg["skin_palette"][co["skin"]]
    ny, nh, nw = sh_y - head_ry * 0.2, head_ry * 0.35, 0.35 * head_rx
    cv.paint((cx - nw, cx + nw, ny - nh, ny + nh),
             lambda x, y: np.maximum(np.abs(x - cx) - nw, np.abs(y - ny) - nh), skin)
    cv.paint((cx - head_rx, cx + head_rx, head_cy - head_ry, head_cy + head_ry),
             lambda x, y: (np.hypot((x - cx) / head_rx, (y - head_cy) / head_ry) - 1) * head_rx,
             skin, name="head")
    hair_bottom = head_cy + (0.9 * head_ry if co["long_hair"] else -0.25 * head_ry)
    hrx, hry = head_rx + 0.8, head_ry + 0.6

    def hair_d(x, y):
        r = np.hypot((x - cx) / hrx, (y - head_cy + 0.6) / hry)
        return np.maximum((r - 1) * head_rx, y - hair_bottom)

    cv.paint((cx - hrx, cx + hrx, head_cy - 0.6 - hry, hair_bottom), hair_d,
             cfg["hair_palette"][co["hair"]])


def _camera(img: np.ndarray, cam: dict, nz: _Nuisance, h: int, yy) -> np.ndarray:
    """Lighting (per image), camera transform (cast, gain, saturation, tone), noise -> uint8."""
    f32 = np.float32
    light = (nz.gain * cam["gain"]) * (1 + nz.shading * (yy / h - 0.5))  # (h, 1)
    img = img.astype(f32) * light.astype(f32)[..., None]
    img *= np.asarray(cam["cast"], dtype=f32)
    grey = (img[..., 0] + img[..., 1] + img[..., 2])[..., None] * f32(1 / 3)
    img = grey + f32(cam["saturation"]) * (img - grey)
    img = np.clip(img, 0, 1, out=img) ** f32(cam["gamma"])
    img = f32(cam["black"]) + f32(1 - cam["black"]) * img + f32(cam["noise"]) * nz.noise
    return np.clip(np.rint(img * f32(255)), 0, 255).astype(np.uint8)


def render(cfg: dict, seed: int, pid: int, camid: int, k: int,
           attrs: dict | None = None, with_masks: bool = False):
    """Image ``k`` of identity ``pid`` in camera ``camid`` as uint8 (H, W, 3).

    With ``with_masks`` also returns boolean part masks (``torso`` interior, ``legs``,
    ``logo``, ...) for tests and figures.
    """
    h, w = int(cfg["height"]), int(cfg["width"])
    attrs = attrs or identity_attributes(cfg, seed, pid)
    co, fi = attrs["coarse"], attrs["fine"]
    cam = cfg["cameras"][camid]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(pid), int(camid),
                                                        int(k), _IMAGE]))
    unit = h / 128.0
    xx, yy = _grid(h, w)
    nz = _draw_nuisance(rng, cfg, h, w, unit)
    cv = _Canvas(_background(cam, nz, h, unit, xx, yy))
    body = _body(cfg, co, nz, w, unit)
    # painted back to front: legs, bag, torso and logo, arms, strap, head
    _paint_legs(cv, cfg, co, fi, body)
    if co["bag"]:
        _paint_bag(cv, cfg, co, body)
    _paint_torso(cv, cfg, co, fi, body)
    _paint_arms(cv, cfg, co, body)
    if co["bag"]:
        _paint_strap(cv, cfg, co, body)
    _paint_head(cv, cfg, co, body)
    if nz.blurred:
        _binomial_blur(cv.img, int(cfg["blur_passes"]))
    out = _camera(cv.img, cam, nz, h, yy)
    return (out, cv.masks) if with_masks else out
