"""SynthMLR identities: the zero-mean texture patterns and the appearance of each identity.

``identity_attributes`` draws what ``datasets/synthmlr_render.py`` paints: the coarse cues
of an identity's group and its own fine cues. The palettes, probabilities and pattern lists
come from the configuration (``DEFAULT_CONFIG`` in ``datasets/synthetic.py``).

Identity cues
-------------
*Coarse cues* (survive down-sampling by r = 4..8; shared by a whole *group* of
``group_size`` consecutive identities, ``group = pid // group_size``): upper-body (shirt) and
lower-body (trouser) colours drawn from small palettes, hair and skin colour, sleeve length,
body proportions (overall height, torso length, shoulder width), and a bag (presence, side,
colour). Because a group of ~6 identities shares all of these, an identity cannot be told
from its group mates once the fine cues are gone: that is what makes LR queries hard.

*Fine cues* (per identity; graded so that down-sampling removes them progressively): a
zero-mean texture on the shirt with a period of 2 px (1 px stripes, 1 px checks: lost at
r >= 2), 3 px (stripes, diagonals, dots: lost at r >= 3), 4 px (2 px stripes and checks,
pinstripes: attenuated at r = 2, lost at r = 4) or 6 px (3 px bands: survive r = 2, mostly
lost at r = 4, gone at r = 8); a weaker texture on the trousers; a tiny logo (3-5 px square,
cross or bar of a saturated colour) at one of six chest positions; and the shoe colour (a
4 px band). The textures are zero-mean around the garment colour, so a low-pass filter maps
every group member to the same coarse colour; the logo and shoes leave only a faint tint at
r = 4 and nearly nothing at r = 8. The shirt patterns of the members of a group are all
different (a permutation drawn per group), so at full resolution every identity is
distinguishable.

Randomness: ``numpy.random.default_rng(SeedSequence(...))`` with keys ``[seed, group, 1]``
(group appearance) and ``[seed, pid, 2]`` (identity appearance), each read in a fixed order.
"""

from __future__ import annotations

import numpy as np

_GROUP, _IDENTITY = 1, 2  # SeedSequence stream keys (render uses 3 for image nuisance)


# Zero-mean textures: name -> function of integer coordinates (x, y) relative to the garment
# corner; values in about [-1, 1], mean 0 over one period.
PATTERNS = {
    "plain": lambda x, y: np.zeros(np.broadcast_shapes(x.shape, y.shape)),
    # period 2 px (lost at r >= 2)
    "hstripe2": lambda x, y: _sq(y, 2) + 0 * x,
    "vstripe2": lambda x, y: _sq(x, 2) + 0 * y,
    "check1": lambda x, y: _sq(x, 2) * _sq(y, 2),
    # period 3 px (lost at r >= 3)
    "hstripe3": lambda x, y: np.cos(2 * np.pi * (y % 3) / 3) + 0 * x,
    "vstripe3": lambda x, y: np.cos(2 * np.pi * (x % 3) / 3) + 0 * y,
    "diag3": lambda x, y: np.cos(2 * np.pi * ((x + y) % 3) / 3),
    "antidiag3": lambda x, y: np.cos(2 * np.pi * ((x - y) % 3) / 3),
    "dots3": lambda x, y: np.where((x % 3 == 0) & (y % 3 == 0), 1.0, -1.0 / 8),
    # period 4 px (attenuated at r = 2, lost at r >= 4)
    "hstripe4": lambda x, y: _sq(y, 4) + 0 * x,
    "vstripe4": lambda x, y: _sq(x, 4) + 0 * y,
    "check2": lambda x, y: _sq(x, 4) * _sq(y, 4),
    "vpin4": lambda x, y: np.where(x % 4 == 0, 1.0, -1.0 / 3) + 0 * y,
    "hpin4": lambda x, y: np.where(y % 4 == 0, 1.0, -1.0 / 3) + 0 * x,
    # period 6 px (survives r = 2, weak at r = 4, lost at r = 8)
    "hstripe6": lambda x, y: _sq(y, 6) + 0 * x,
    "vstripe6": lambda x, y: _sq(x, 6) + 0 * y,
}


def _sq(v, period: int):
    """Square wave of ``period`` px: +1 for the first half, -1 for the second (zero mean)."""
    return np.where(v % period < period / 2, 1.0, -1.0)


# ----------------------------------------------------------------------------- appearance

def identity_attributes(cfg: dict, seed: int, pid: int) -> dict:
    """Appearance of identity ``pid``: coarse (shared by its group) and fine (its own) cues."""
    gs = int(cfg["group_size"])
    group = pid // gs
    rg = np.random.default_rng(np.random.SeedSequence([int(seed), group, _GROUP]))
    coarse = {
        "group": group,
        "upper": int(rg.integers(len(cfg["upper_palette"]))),
        "lower": int(rg.integers(len(cfg["lower_palette"]))),
        "hair": int(rg.integers(len(cfg["hair_palette"]))),
        "skin": int(rg.integers(len(cfg["skin_palette"]))),
        "height": int(rg.integers(len(cfg["height_factors"]))),
        "torso": int(rg.integers(len(cfg["torso_fractions"]))),
        "shoulder": int(rg.integers(len(cfg["shoulder_halfwidths"]))),
        "long_sleeves": bool(rg.random() < cfg["long_sleeve_prob"]),
        "long_hair": bool(rg.random() < cfg["long_hair_prob"]),
        "bag": bool(rg.random() < cfg["bag_prob"]),
        "bag_side": int(rg.choice([-1, 1])),
        "bag_colour": int(rg.integers(len(cfg["bag_palette"]))),
    }
    # distinct shirt patterns inside a group (a permutation fixed by the group's own stream)
    n_pat = len(cfg["shirt_patterns"])
    perm = np.concatenate([rg.permutation(n_pat) for _ in range(-(-gs // n_pat))])
    ri = np.random.default_rng(np.random.SeedSequence([int(seed), int(pid), _IDENTITY]))
    fine = {
        "shirt_pattern": cfg["shirt_patterns"][int(perm[pid % gs])],
        "shirt_amplitude": float(ri.uniform(*cfg["shirt_amplitude"])),
        # texture contrast along luminance (+-grey) or along a random colour direction
        "shirt_direction": [float(v) for v in (np.ones(3) / np.sqrt(3) if ri.random() < 0.5
                                                 else _unit(ri.standard_normal(3)))],
        "trouser_pattern": cfg["trouser_patterns"][int(ri.integers(len(cfg["trouser_patterns"])))],
        "trouser_amplitude": float(ri.uniform(*cfg["trouser_amplitude"])),
        "logo": bool(ri.random() < cfg["logo_prob"]),
        "logo_shape": cfg["logo_shapes"][int(ri.integers(len(cfg["logo_shapes"])))],
        "logo_anchor": [float(ri.choice([-0.45, 0.0, 0.45])), float(ri.choice([0.22, 0.5]))],
        "logo_colour": int(ri.integers(len(cfg["logo_palette"]))),
        "shoe_colour": int(ri.integers(len(cfg["shoe_palette"]))),
    }
    return {"pid": int(pid), "coarse": coarse, "fine": fine}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-6)
