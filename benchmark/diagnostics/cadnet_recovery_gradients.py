"""Which loss moves CAD-Net's recovered images, and toward what.

For the cached model of trial 0 of ``--method`` (``cadnet`` or one of its presets: the
Table 3 ablations, ``cadnet-f``, ``cadnet-g``) it takes a seeded batch of HR training images,
down-samples them at r = 2, 4, 8 (bilinear back up, as G's input), and prints:

* the recovered images' error at the strong edges (the top 10 % of the HR image's gradient
  magnitude): its green excess G - (R + B) / 2 and its mean colour error off the grey axis,
  beside the bilinear and bicubic inputs' (green fringes show as a positive green excess);
* for each generator-side term as trained (Eq. 6's weight, and L_cls's gradient into G
  scaled by ``reid_grad_to_g``): the per-pixel size of its gradient on the recovered
  images, and the cosine of its descent direction with the way to the HR original
  (``hr - recovered``), over all pixels and at the strong edges. A term that recovers
  detail points toward the original (cosine > 0); one near 0 moves the pixels in a direction
  unrelated to the original.

A read-out of one trained model at its final weights (networks in eval mode), not a
training run; nothing is changed or stored. The ``paper`` protocol's LR path
(``datasets.loader.make_lr``) makes the inputs.

    python -m benchmark.diagnostics.cadnet_recovery_gradients --dataset market1501 \\
        --data-root ../shared/data-market-resplit --out results/reference/cpu-market-resplit \\
        > results/reference/cpu-market-resplit/diagnostics/cadnet_recovery_gradients_cadnet.txt
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

from benchmark.diagnostics import add_common_arguments, reference_config

RATES = (2, 4, 8)


def strong_edges(hr: torch.Tensor, quantile: float = 0.9) -> torch.Tensor:
    """(B, 1, H, W) mask of the pixels whose grey-level gradient magnitude (|dx| + |dy|,
    forward differences) is in the top ``1 - quantile`` of the batch."""
    grey = hr.mean(1, keepdim=True)
    mag = torch.zeros_like(grey)
    mag[..., :, 1:] += (grey[..., :, 1:] - grey[..., :, :-1]).abs()
    mag[..., 1:, :] += (grey[..., 1:, :] - grey[..., :-1, :]).abs()
    return mag >= torch.quantile(mag.flatten(), quantile)


def colour_error(images: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor) -> dict:
    """Mean green excess G - (R + B) / 2 of ``images - hr`` and mean |colour error off the
    grey axis| inside ``mask``."""
    e = images - hr
    green = e[:, 1:2] - (e[:, 0:1] + e[:, 2:3]) / 2
    off_grey = (e - e.mean(1, keepdim=True)).abs().mean(1, keepdim=True)
    return {"green_excess": float(green[mask].mean()), "off_grey": float(off_grey[mask].mean())}


def gradient_alignment(model, f: torch.Tensor, recovered: torch.Tensor, hr: torch.Tensor,
                       labels: torch.Tensor, mask: torch.Tensor) -> dict[str, dict]:
    """For each generator-side term acting on the recovered images (``recovered`` = G(f),
    ``f`` = E(x); weighted as in training): per-pixel mean |gradient| and the cosine of its
    descent direction with ``hr - recovered``, over all pixels (``cos``) and inside
    ``mask`` (``cos_mask``)."""
    from benchmark.losses.terms import identity_loss, image_adversarial_loss, triplet_loss

    cfg, lam = model.config, model.config.lambdas
    rec = recovered.detach().clone().requires_grad_(True)
    terms = {"L_rec": lam["rec"] * F.l1_loss(rec, hr)}
    if cfg.use_adv_di:
        fake = model.image_discriminator(rec)
        terms["L_adv^DI"] = lam["adv_di"] * image_adversarial_loss([], [fake], "generator")
    if cfg.use_cls and model.hr_encoder is not None:
        emb, logits = model.classifier(model._v_maps(f, model.hr_encoder(rec)))
        s = cfg.reid_grad_to_g
        terms["L_id"] = s * lam["id"] * identity_loss(logits, labels)
        terms["L_tri"] = s * lam["tri"] * triplet_loss(emb, labels, cfg.triplet_margin,
                                                       cfg.triplet_normalize)
    target = (hr - rec).detach()
    m = mask.expand_as(target)
    out = {}
    for name, loss in terms.items():
        (grad,) = torch.autograd.grad(loss, rec, retain_graph=True)
        d = -grad
        out[name] = {"loss": float(loss.detach()), "per_pixel": float(d.abs().mean()),
                     "cos": float(F.cosine_similarity(d.flatten(), target.flatten(), dim=0)),
                     "cos_mask": float(F.cosine_similarity(d[m], target[m], dim=0))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmark.diagnostics.cadnet_recovery_gradients",
        description=__doc__.split("\n\n")[0])
    add_common_arguments(p)
    p.add_argument("--dataset", default="viper", help="dataset of the reference run")
    p.add_argument("--method", default="cadnet",
                   help="a CAD-Net preset with a recovering G (default cadnet)")
    p.add_argument("--images", type=int, default=128, help="training images in the batch")
    p.add_argument("--seed", type=int, default=0, help="seed of the image draw")
    args = p.parse_args(argv)

    from benchmark.engine import TrainData
    from benchmark.experiment import fit_method
    from benchmark.figures import _trial0
    from datasets.loader import make_lr

    cfg = reference_config(args.data_root, args.out, [args.method], 1, stored_only=True,
                           dataset=args.dataset)
    manifest, store = _trial0(cfg, args.dataset)
    method = fit_method(args.method, manifest, store, cfg)
    if not method.produces_images or not hasattr(method.model, "decoder"):
        p.error(f"--method {args.method} is not a CAD-Net preset that recovers images")
    model = method.model.eval()
    data = TrainData.from_manifest(manifest, store)
    pick = torch.randperm(len(data.index), generator=torch.Generator().manual_seed(args.seed))
    pick = pick[:args.images]
    hr, labels = store.batch(data.index[pick]), data.labels[pick]
    edges = strong_edges(hr)
    print(f"{args.dataset} trial 0 {args.method}: {len(hr)} training images (seed {args.seed}); "
          "strong edges = top 10 % of the HR gradient magnitude; colours in [0, 1]")
    for r in RATES:
        x = make_lr(hr, [r] * len(hr), cfg.lr_method, "bilinear")
        with torch.no_grad():
            f, taps = model.encoder(x)
            rec = model.decoder(f, taps, x)
        print(f"r = {r}")
        for name, images in [("bilinear input", x.clamp(0, 1)),
                             ("bicubic", make_lr(hr, [r] * len(hr), cfg.lr_method,
                                                 "bicubic").clamp(0, 1)),
                             ("recovered", rec.clamp(0, 1))]:
            c = colour_error(images, hr, edges)
            print(f"  {name:15} error at strong edges: green excess {c['green_excess']:+.4f}, "
                  f"off-grey {c['off_grey']:.4f}")
        for name, g in gradient_alignment(model, f, rec, hr, labels, edges).items():
            print(f"  {name:9} (weighted {g['loss']:.4f}): |gradient| per pixel "
                  f"{g['per_pixel']:.2e}, cos(descent, original - recovered) {g['cos']:+.3f}, "
                  f"at strong edges {g['cos_mask']:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
