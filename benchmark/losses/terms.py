"""CAD-Net's loss terms, one function per equation of the paper (section 3).

Sign convention: the paper writes the adversarial objectives (Eqs. 1, 3) as log-likelihoods
that the discriminator maximises. Here every loss is *minimised*: the discriminator side is
the binary cross-entropy ``-[log D(real) + log(1 - D(fake))]`` (BCE-with-logits, targets
1 = real/HR, 0 = fake/LR), and the generator side uses the standard non-saturating form
``-log D(fake)`` (fakes labelled as real). Each expectation of an equation is one batch
mean; the terms of an equation are summed.

Which parameters each term is meant to update (enforced by :mod:`benchmark.losses.cadnet`):

==========================  ===========================================================
term                        updates
==========================  ===========================================================
L_adv^{D_F}, D side         D_F only (inputs f_H, f_L detached)
L_adv^{D_F}, G side         E only (through D_F, whose parameters are frozen for it)
L_rec                       E and G (through the skip connections, too)
L_adv^{D_I}, D side         D_I only (recovered images detached)
L_adv^{D_I}, G side         G and E (through D_I, frozen for it)
L_id                        C, F, G, E (g = F(G(f)) so it reaches G through F, sec. 3.3)
L_tri                       F, G, E (the embedding GAP(v) is before C's FC)
==========================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch.nn import functional as F


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean BCE-with-logits of every logit (a pooled logit or a logit map) against target."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _check_side(side: str) -> None:
    if side not in ("discriminator", "generator"):
        raise ValueError(f"side must be 'discriminator' or 'generator', got {side!r}")


def feature_adversarial_loss(
    logits_hr: torch.Tensor | None, logits_lr: torch.Tensor, side: str
) -> torch.Tensor:
    """Eq. 1, L_adv^{D_F}: D side BCE(D_F(f_H), 1) + BCE(D_F(f_L), 0); G side BCE(D_F(f_L), 1).

    The generator (encoder E) side is the non-saturating trick of labelling f_L as HR: only
    the LR features are pushed towards the HR feature distribution (as in Tsai et al. 2018,
    who adapt the target domain only); ``logits_hr`` is ignored (may be None) there.
    """
    _check_side(side)
    if side == "generator":
        return _bce(logits_lr, 1.0)
    if logits_hr is None:
        raise ValueError("the discriminator side needs D_F(f_H) logits")
    return _bce(logits_hr, 1.0) + _bce(logits_lr, 0.0)


def image_adversarial_loss(
    real_logits: Sequence[torch.Tensor], fake_logits: Sequence[torch.Tensor], side: str
) -> torch.Tensor:
    """Eq. 3, L_adv^{D_I}: D side sum_i BCE(D_I(real_i), 1) + BCE(D_I(fake_i), 0); G side
    sum_i BCE(D_I(fake_i), 1).

    For Eq. 3, ``real_logits = [D_I(x_H of the LR batch), D_I(x_H of the HR batch)]`` and
    ``fake_logits = [D_I(G(f_L)), D_I(G(f_H))]`` (the equation's two real terms, one paired
    with each fake term). ``real_logits`` is ignored (may be empty) on the generator side.
    """
    _check_side(side)
    if side == "generator":
        return torch.stack([_bce(z, 1.0) for z in fake_logits]).sum()
    terms = [_bce(z, 1.0) for z in real_logits] + [_bce(z, 0.0) for z in fake_logits]
    return torch.stack(terms).sum()


def reconstruction_loss(
    recovered_hr: torch.Tensor,
    target_hr: torch.Tensor,
    recovered_lr: torch.Tensor,
    target_lr: torch.Tensor,
) -> torch.Tensor:
    """Eq. 2, L_rec: mean |G(f_H) - x_H| + mean |G(f_L) - x_H| (L1, per-pixel mean, [0, 1]).

    ``target_lr`` is the HR ground truth of the LR batch (the x_H whose down-sampled
    version is x_L).
    """
    return F.l1_loss(recovered_hr, target_hr) + F.l1_loss(recovered_lr, target_lr)


def identity_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 4's L_id: softmax cross-entropy of C's logits against the identity labels."""
    return F.cross_entropy(logits.float(), labels)


def pairwise_distances(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distance matrix (B, B), numerically safe at zero distance."""
    x = x.float()
    sq = (x * x).sum(dim=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.t())
    return d2.clamp_min(1e-12).sqrt()


def triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 2.0, normalize: bool = False
) -> torch.Tensor:
    """Eq. 5 (one resolution's term): batch-hard triplet max(0, phi + d_pos - d_neg), mean
    over anchors (Hermans et al. 2017; Euclidean distances).

    d_pos is the largest distance to another sample with the anchor's label, d_neg the
    smallest to a sample with a different label. Anchors without a positive or without a
    negative in the batch are left out of the mean (0 if no anchor qualifies); no host sync.
    """
    if normalize:
        embeddings = F.normalize(embeddings.float(), dim=1)
    dist = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    big = dist.detach().max() + 1.0
    d_pos = torch.where(pos, dist, torch.zeros_like(dist)).amax(dim=1)
    d_neg = torch.where(neg, dist, dist + big).amin(dim=1)
    valid = (pos.any(dim=1) & neg.any(dim=1)).to(dist.dtype)
    per_anchor = F.relu(margin + d_pos - d_neg) * valid
    return per_anchor.sum() / valid.sum().clamp_min(1.0)


def classification_loss(
    logits_hr: torch.Tensor,
    emb_hr: torch.Tensor,
    labels_hr: torch.Tensor,
    logits_lr: torch.Tensor,
    emb_lr: torch.Tensor,
    labels_lr: torch.Tensor,
    margin: float = 2.0,
    lambda_id: float = 1.0,
    lambda_tri: float = 1.0,
    normalize: bool = False,
) -> torch.Tensor:
    """Eq. 4, L_cls = L_id + L_tri, each summed over the HR and the LR batch (Eq. 5's two
    expectations; the same split is used for L_id). Weights 1 reproduce Eq. 4 exactly."""
    l_id = identity_loss(logits_hr, labels_hr) + identity_loss(logits_lr, labels_lr)
    l_tri = (triplet_loss(emb_hr, labels_hr, margin, normalize)
             + triplet_loss(emb_lr, labels_lr, margin, normalize))
    return lambda_id * l_id + lambda_tri * l_tri


def total_generator_loss(
    losses: Mapping[str, torch.Tensor], lambdas: Mapping[str, float]
) -> torch.Tensor:
    """Eq. 6, L = L_cls + lambda_adv^{D_F} L_adv^{D_F} + lambda_rec L_rec + lambda_adv^{D_I}
    L_adv^{D_I}, with L_cls = lambda_id L_id + lambda_tri L_tri; terms absent from ``losses``
    (disabled ablations) are skipped. Keys: id, tri, rec, adv_df, adv_di (generator sides)."""
    known = ("id", "tri", "rec", "adv_df", "adv_di")
    terms = [lambdas[k] * losses[k] for k in known if k in losses]
    if not terms:
        raise ValueError("every loss is disabled: nothing to optimise")
    return torch.stack([t.float() for t in terms]).sum()
