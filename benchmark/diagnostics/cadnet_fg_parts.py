"""Which half of v = [f, g] carries identity in the trained CAD-Net models.

Table 1's f-only / g-only question, read from the trained models: for each cached model and
trial it prints the mean L2 norm of GAP(f) and GAP(g) on the gallery and the rank-1 of the
test feature restricted to f, to g, and the joint u = GAP([f, g]), raw and with each half
L2-normalised, for the seen and the unseen queries. A read-out of trained models on the test
split, not a tuning step. The run is ``--stored-only``: a (method, trial) without a usable
cached model is named and skipped, nothing is trained. The Table 3 ablations are CAD-Net
models too (``--methods``).

    python -m benchmark.diagnostics.cadnet_fg_parts --data-root ../shared/data --trials 0,1,2 \\
        > results/reference/cpu-viper-scratch/diagnostics/cadnet_fg_parts.txt
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

from benchmark.diagnostics import add_common_arguments, reference_config


class FGHalves:
    """features(x) = [GAP(f), GAP(g)] of a CAD-Net model (GAP(f) alone without F)."""

    def __init__(self, model):
        self.m = model

    def features(self, x):
        f, taps = self.m.encoder(x)
        parts = [f.mean(dim=(2, 3))]
        if self.m.hr_encoder is not None:
            parts.append(self.m.hr_encoder(self.m.decoder(f, taps, x)).mean(dim=(2, 3)))
        return torch.cat(parts, 1)


def normalised_halves(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[a / |a|, b / |b|] row by row."""
    return torch.cat([F.normalize(a, dim=1), F.normalize(b, dim=1)], 1)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.diagnostics.cadnet_fg_parts",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", default="0", help="comma-separated trials (default 0)")
    p.add_argument("--methods", default="cadnet,cadnet-f,cadnet-g",
                   help="comma-separated CAD-Net methods (default cadnet,cadnet-f,cadnet-g)")
    add_common_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    trials = [int(t) for t in args.trials.split(",")]
    methods = [m for m in args.methods.split(",") if m]

    from benchmark.evaluation import extract_features
    from benchmark.experiment import fit_method, image_store, load_checked, open_manifest
    from benchmark.metrics import evaluate_ranking, pairwise_distance
    from benchmark.store import MissingResult

    cfg = reference_config(args.data_root, args.out, methods, max(trials) + 1, stored_only=True)
    ds = load_checked(cfg, "viper")

    def r1(q, g, qrows, grows):
        r = evaluate_ranking(pairwise_distance(q, g), qrows.pid.to_numpy(),
                             grows.pid.to_numpy(), qrows.camid.to_numpy(),
                             grows.camid.to_numpy(), max_rank=1, single_shot=True,
                             seed=cfg.seed)
        return 100 * r.cmc[0]

    for trial in trials:
        man = open_manifest(cfg, ds, trial)
        store = image_store(cfg, man)
        gal = man.rows("gallery")
        for name in methods:
            try:
                m = fit_method(name, man, store, cfg).model.eval()
            except MissingResult as e:
                print(f"trial {trial} {name}: no finished cached model ({e.path}), skipped",
                      flush=True)
                continue
            d, halves = m.feature_dim, FGHalves(m)
            gu = extract_features(halves, store, man, gal, cfg.lr_method)
            gf, gg = gu[:, :d], (gu[:, d:] if gu.shape[1] > d else None)
            line = [f"trial {trial} {name:16s}", f"|GAP f| {gf.norm(dim=1).mean():.2f}"]
            if gg is not None:
                line.append(f"|GAP g| {gg.norm(dim=1).mean():.2f}")
            for subset in ("seen", "unseen"):
                q = man.rows("query", subset)
                qu = extract_features(halves, store, man, q, cfg.lr_method)
                qf, qg = qu[:, :d], qu[:, d:]
                cells = [f"f {r1(qf, gf, q, gal):4.1f}"]
                if gg is not None:
                    cells.append(f"g {r1(qg, gg, q, gal):4.1f}")
                    cells.append(f"[f,g] {r1(qu, gu, q, gal):4.1f}")
                    both = r1(normalised_halves(qf, qg), normalised_halves(gf, gg), q, gal)
                    cells.append(f"[f/|f|,g/|g|] {both:4.1f}")
                line.append(f"{subset}: " + " ".join(cells))
            print(" | ".join(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
