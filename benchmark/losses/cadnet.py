"""One CAD-Net training step: all losses of Eqs. 1-6, and the update order.

Update order (:func:`cadnet_train_step`; engines that step by hand must do the same):

1. ``gen, disc = cadnet_losses(model, batch, config)``: ONE forward pass of E, G, F, C on
   the HR and the LR batch. Generator-side adversarial terms run D_F / D_I with their
   parameters temporarily frozen (``requires_grad=False``), so ``gen["total"].backward()``
   puts no gradient on the discriminators. Discriminator terms run D_F / D_I on
   *detached* f_H, f_L and recovered images, so ``disc[...].backward()`` puts gradient on
   that discriminator only. The discriminator losses use the features of this same forward
   pass (before any parameter changes).
2. ``optimizers["model"].zero_grad(); gen["total"].backward(); optimizers["model"].step()``:
   E, G, F, C by Eq. 6 (this backward must come before the step that changes E/G/F/C).
3. ``optimizers["d_f"].zero_grad(); disc["d_f"].backward(); optimizers["d_f"].step()``
   (only when ``use_adv_df``), then the same for ``d_i`` (only when ``use_adv_di``): the
   authors' order G, D_F, D_I. Both discriminator graphs are independent of E/G/F/C's
   parameters, so stepping the model first does not invalidate them.

Ablations (Table 3): ``use_cls``, ``use_rec``, ``use_adv_df``, ``use_adv_di``; a disabled
loss is not computed (its key is absent) and a disabled adversarial loss's discriminator is
neither run nor stepped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .terms import (
    feature_adversarial_loss,
    identity_loss,
    image_adversarial_loss,
    reconstruction_loss,
    total_generator_loss,
    triplet_loss,
)


@dataclass
class CrossResolutionBatch:
    """One step's data. Images are (B, 3, H, W) RGB in [0, 1]; pids are int64 class indices
    in [0, num_classes).

    hr_images / hr_pids: the HR batch (P ids x K images). lr_images / lr_pids: the LR batch
    (synthetic LR images already up-sampled back to H x W; sampled independently of the HR
    batch, ideally also P x K so the LR triplet term has positives). lr_targets: the HR
    originals of lr_images (ground truth of L_rec and the matching real term of Eq. 3).
    The field order is part of the API (the engine builds batches positionally).
    """

    hr_images: torch.Tensor
    hr_pids: torch.Tensor
    lr_images: torch.Tensor
    lr_pids: torch.Tensor
    lr_targets: torch.Tensor


def as_batch(batch: CrossResolutionBatch | Mapping[str, torch.Tensor]) -> CrossResolutionBatch:
    """Accept a :class:`CrossResolutionBatch` or a mapping with the same keys."""
    if isinstance(batch, CrossResolutionBatch):
        return batch
    try:
        return CrossResolutionBatch(**{k: batch[k] for k in
                                       ("hr_images", "hr_pids", "lr_images", "lr_pids",
                                        "lr_targets")})
    except KeyError as e:
        raise KeyError(f"batch lacks {e}; expected keys hr_images, hr_pids, lr_images, "
                       "lr_pids, lr_targets") from None


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Run ``module`` as a constant: parameters get no gradient from graphs built inside."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def cadnet_losses(model, batch, config=None) -> tuple[dict[str, torch.Tensor],
                                                      dict[str, torch.Tensor]]:
    """All CAD-Net losses of one step: ``(generator_losses, discriminator_losses)``.

    generator_losses: unweighted ``id``, ``tri`` (each HR term + LR term), ``rec``,
    ``adv_df``, ``adv_di`` (generator sides) for the enabled losses, and ``total`` (Eq. 6
    with the config's lambdas); it updates E, G, F, C. discriminator_losses: ``d_f``
    (Eq. 1, D side) and ``d_i`` (Eq. 3, D side) for the enabled adversarial losses.
    ``config`` defaults to ``model.config``. See the module docstring for the update order.
    """
    cfg = config or model.config
    b = as_batch(batch)
    nh = b.hr_images.shape[0]
    need_img = cfg.use_rec or cfg.use_adv_di
    if cfg.joint_forward:
        out = model(torch.cat([b.hr_images, b.lr_images]), recover=need_img,
                    classify=cfg.use_cls)

        def split(t):
            return (None, None) if t is None else (t[:nh], t[nh:])

        f_h, f_l = split(out.f)
        rec_h, rec_l = split(out.recovered)
        emb_h, emb_l = split(out.embedding)
        log_h, log_l = split(out.logits)
        recovered = out.recovered
    else:
        oh = model(b.hr_images, recover=need_img, classify=cfg.use_cls)
        ol = model(b.lr_images, recover=need_img, classify=cfg.use_cls)
        f_h, f_l, rec_h, rec_l = oh.f, ol.f, oh.recovered, ol.recovered
        emb_h, emb_l, log_h, log_l = oh.embedding, ol.embedding, oh.logits, ol.logits
        recovered = None if rec_h is None else torch.cat([rec_h, rec_l])

    gen: dict[str, torch.Tensor] = {}
    disc: dict[str, torch.Tensor] = {}
    if cfg.use_cls:
        gen["id"] = identity_loss(log_h, b.hr_pids) + identity_loss(log_l, b.lr_pids)
        m, nrm = cfg.triplet_margin, cfg.triplet_normalize
        gen["tri"] = (triplet_loss(emb_h, b.hr_pids, m, nrm)
                      + triplet_loss(emb_l, b.lr_pids, m, nrm))
    if cfg.use_rec:
        gen["rec"] = reconstruction_loss(rec_h, b.hr_images, rec_l, b.lr_targets)
    if cfg.use_adv_df:
        d_f = model.feature_discriminator
        with frozen(d_f):
            gen["adv_df"] = feature_adversarial_loss(None, d_f(f_l), side="generator")
        disc["d_f"] = feature_adversarial_loss(d_f(f_h.detach()), d_f(f_l.detach()),
                                               side="discriminator")
    if cfg.use_adv_di:
        d_i = model.image_discriminator
        with frozen(d_i):
            fake = d_i(recovered)  # [G(f_H); G(f_L)]
        gen["adv_di"] = image_adversarial_loss([], [fake[nh:], fake[:nh]], side="generator")
        real = d_i(torch.cat([b.lr_targets, b.hr_images]))
        fake_d = d_i(recovered.detach())
        nl = b.lr_targets.shape[0]
        disc["d_i"] = image_adversarial_loss([real[:nl], real[nl:]], [fake_d[nh:], fake_d[:nh]],
                                             side="discriminator")
    gen["total"] = total_generator_loss(gen, cfg.lambdas)
    return gen, disc


def cadnet_train_step(model, optimizers, batch, config=None) -> dict[str, torch.Tensor]:
    """One full CAD-Net update (order: E/G/F/C, then D_F, then D_I; see module docstring).

    ``optimizers`` maps ``"model"`` (and ``"g"`` when G has its own, ``"d_f"`` / ``"d_i"``
    for the enabled adversarial losses) to optimisers, as
    :func:`benchmark.models.build_optimizers` returns them. Puts
    the model in train mode. Returns every loss as a detached tensor (keys of both dicts of
    :func:`cadnet_losses`); no host synchronisation inside.
    """
    cfg = config or model.config
    model.train()
    gen, disc = cadnet_losses(model, batch, cfg)
    main = [optimizers[k] for k in ("model", "g") if k in optimizers]  # "g": gen_optim's
    for opt in main:
        opt.zero_grad(set_to_none=True)
    gen["total"].backward()
    for opt in main:
        opt.step()
    for key in ("d_f", "d_i"):
        if key in disc:
            opt = optimizers.get(key)
            if opt is None:
                raise ValueError(f"{key} loss is enabled but there is no {key!r} optimiser")
            opt.zero_grad(set_to_none=True)
            disc[key].backward()
            opt.step()
    return {k: v.detach() for k, v in {**gen, **disc}.items()}
