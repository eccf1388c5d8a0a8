"""Where ``cyclegan`` loses rank-1: translated vs raw queries and gallery, same re-ID network.

Loads the cached ``cyclegan`` model of trial 0 (under the current code's key: the method's
code version decides which generators; the run is ``--stored-only``, so nothing is trained
when it is missing) and prints the HR gallery's L1(G(x), x) and PSNR, then seen and unseen
rank-1 of the trained re-ID network R on R(G(query)) vs R(G(gallery)), G on the queries
only, and no G at all.

    python -m benchmark.diagnostics.cyclegan_translation --data-root ../shared/data \\
        > results/reference/cpu-viper-scratch/diagnostics/cyclegan_translation-residual.txt

The committed outputs are ``-sgd.txt`` (SGD, plain generators), ``-adam.txt`` (CycleGAN's
Adam, plain generators) and ``-residual.txt`` (Adam, residual generators).
"""

from __future__ import annotations

import argparse
import sys

import torch

from benchmark.diagnostics import add_common_arguments, reference_config


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.diagnostics.cyclegan_translation",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from benchmark.experiment import fit_method, image_store, load_checked, open_manifest
    from benchmark.metrics import evaluate_ranking, pairwise_distance
    from benchmark.store import MissingResult
    from datasets.loader import make_lr

    cfg = reference_config(args.data_root, args.out, ["cyclegan"], 1, stored_only=True)
    man = open_manifest(cfg, load_checked(cfg, "viper"), 0)
    store = image_store(cfg, man)
    try:
        m = fit_method("cyclegan", man, store, cfg).model.eval()
    except MissingResult as e:
        print(f"cyclegan trial 0: no finished cached model ({e.path})", file=sys.stderr)
        return 2
    g = man.rows("gallery")

    def feats(rows, rates, translate):
        idx = store.indices(man.abspaths(rows))
        out = []
        with torch.inference_mode():
            for s in range(0, len(idx), 128):
                x = make_lr(store.batch(idx[s:s + 128]), rates[s:s + 128], cfg.lr_method)
                out.append(m.reid.extract_features(m.g_lr2hr(x) if translate else x))
        return torch.cat(out)

    ghr = store.batch(store.indices(man.abspaths(g)))
    with torch.inference_mode():
        gg = m.g_lr2hr(ghr)
    l1 = (gg - ghr).abs().mean()
    psnr = -10 * torch.log10(((gg - ghr) ** 2).mean())
    print(f"gallery: L1(G(HR),HR) {l1:.4f}, PSNR {psnr:.2f}")
    for subset in ("seen", "unseen"):
        q = man.rows("query", subset)
        rates = q["rate"].tolist()
        for qt, gt in ((True, True), (True, False), (False, False)):
            qf, gf = feats(q, rates, qt), feats(g, [1] * len(g), gt)
            r = evaluate_ranking(pairwise_distance(qf, gf), q.pid.to_numpy(), g.pid.to_numpy(),
                                 q.camid.to_numpy(), g.camid.to_numpy(), max_rank=1,
                                 single_shot=True, seed=cfg.seed)
            print(subset, "query G" if qt else "query raw", "gallery G" if gt else "gallery raw",
                  f"R1 {100 * r.cmc[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
