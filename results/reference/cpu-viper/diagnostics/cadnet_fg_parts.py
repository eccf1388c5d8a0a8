"""Which half of v = [f, g] carries identity in the trained CAD-Net models (Table 1's
f-only / g-only question). For each cached cadnet / cadnet-f / cadnet-g model and trial it
prints the mean L2 norm of GAP(f) and GAP(g) on the gallery and the rank-1 of the test
feature restricted to f, to g, and the joint u = GAP([f, g]) raw and with each half
L2-normalised. A read-out of trained models on the test split, not a tuning step: nothing
here changes a model or a setting. Run from the repository root:
PYTHONPATH=. python <this file> [trials] [methods] (default 0 and cadnet,cadnet-f,cadnet-g;
the Table 3 ablations are CAD-Net models too). The config is --stored-only, so a
(method, trial) without a usable cached model is named and skipped: nothing is trained.
Output: cadnet_fg_parts.txt (cadnet, -f, -g), cadnet_fg_parts-ablations.txt."""
import sys

import torch
import torch.nn.functional as F

from benchmark.cli import build_parser, make_config
from benchmark.evaluation import extract_features
from benchmark.metrics import evaluate_ranking, pairwise_distance
from benchmark.runner import MissingResult, fit_method, image_store, load_checked, open_manifest

trials = [int(t) for t in (sys.argv[1] if len(sys.argv) > 1 else "0").split(",")]
methods = (sys.argv[2] if len(sys.argv) > 2 else "cadnet,cadnet-f,cadnet-g").split(",")
args = build_parser().parse_args(["--table", "1", "--datasets", "viper", "--profile", "cpu",
    "--trials", str(max(trials) + 1), "--data-root", "../shared/data", "--stored-only",
    "--out", "results/reference/cpu-viper", "--methods", ",".join(methods)])
cfg = make_config(args, methods)
ds = load_checked(cfg, "viper")


class FGHalves:
    """features(x) = [GAP(f), GAP(g)] of a CAD-Net model (GAP(f) alone without F)."""

    def __init__(self, model):
        self.m = model

    def features(self, x):
        f, taps = self.m.encoder(x)
        parts = [f.mean(dim=(2, 3))]
        if self.m.hr_encoder is not None:
            parts.append(self.m.hr_encoder(self.m.decoder(f, taps)).mean(dim=(2, 3)))
        return torch.cat(parts, 1)


def r1(q, g, qrows, grows):
    r = evaluate_ranking(pairwise_distance(q, g), qrows.pid.to_numpy(), grows.pid.to_numpy(),
                         qrows.camid.to_numpy(), grows.camid.to_numpy(), max_rank=1,
                         single_shot=True, seed=cfg.seed)
    return 100 * r.cmc[0]


for trial in trials:
    man = open_manifest(cfg, ds, trial)
    store = image_store(cfg, man)
    gal = man.rows("gallery")
    for name in methods:
        try:
            m = fit_method(name, man, store, cfg).model.eval()
        except MissingResult as e:
            print(f"trial {trial} {name}: no finished cached model ({e.path}), skipped", flush=True)
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
                n = lambda a, b: torch.cat([F.normalize(a, dim=1), F.normalize(b, dim=1)], 1)
                cells.append(f"[f/|f|,g/|g|] {r1(n(qf, qg), n(gf, gg), q, gal):4.1f}")
            line.append(f"{subset}: " + " ".join(cells))
        print(" | ".join(line), flush=True)
