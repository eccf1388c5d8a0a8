"""Which half of v = [f, g] carries identity in the trained CAD-Net models (Table 1's
f-only / g-only question). For each cached cadnet / cadnet-f / cadnet-g model and trial it
prints the mean L2 norm of GAP(f) and GAP(g) on the test images and the rank-1 of the test
feature restricted to f, to g, and the joint u = GAP([f, g]) raw and with each half
L2-normalised. A read-out of trained models on the test split, not a tuning step: nothing
here changes a model or a setting. Run from the repository root:
PYTHONPATH=. python <this file> [trials] (default 0). A (method, trial) without a finished
cached model is skipped (named on screen): this script trains nothing. Output:
cadnet_fg_parts.txt."""
import sys
from pathlib import Path
import torch, torch.nn.functional as F
from benchmark.cli import build_parser, make_config
from benchmark.runner import fit_method, open_manifest, image_store, load_checked
from benchmark.metrics import evaluate_ranking, pairwise_distance
from datasets.loader import make_lr

trials = [int(t) for t in (sys.argv[1] if len(sys.argv) > 1 else "0").split(",")]
methods = ["cadnet", "cadnet-f", "cadnet-g"]
args = build_parser().parse_args(["--table", "1", "--datasets", "viper", "--profile", "cpu",
    "--trials", str(max(trials) + 1), "--data-root", "../shared/data",
    "--out", "results/reference/cpu-viper", "--methods", ",".join(methods)])
cfg = make_config(args, methods)
ds = load_checked(cfg, "viper")


def parts(model, store, rows, rates):
    """GAP(f), GAP(g) (g None for cadnet-f) of rows down-sampled at rates."""
    idx = store.indices(rows_paths(rows)); fs, gs = [], []
    with torch.inference_mode():
        for s in range(0, len(idx), 128):
            x = make_lr(store.batch(idx[s:s + 128]), rates[s:s + 128], cfg.lr_method)
            f, taps = model.encoder(x)
            fs.append(f.mean(dim=(2, 3)))
            if model.hr_encoder is not None:
                gs.append(model.hr_encoder(model.decoder(f, taps)).mean(dim=(2, 3)))
    return torch.cat(fs), (torch.cat(gs) if gs else None)


def r1(q, g, qrows, grows):
    r = evaluate_ranking(pairwise_distance(q, g), qrows.pid.to_numpy(), grows.pid.to_numpy(),
                         qrows.camid.to_numpy(), grows.camid.to_numpy(), max_rank=1,
                         single_shot=True, seed=cfg.seed)
    return 100 * r.cmc[0]


for trial in trials:
    man = open_manifest(cfg, ds, trial); store = image_store(cfg, man)
    rows_paths = man.abspaths
    gal = man.rows("gallery")
    for name in methods:
        done = Path(cfg.cache_dir) / "models" / "viper" / "paper" / "cpu" / name / f"seed0-trial{trial}"
        if not (done / "model.pt").exists():
            print(f"trial {trial} {name}: no finished cached model in {done}, skipped", flush=True)
            continue
        m = fit_method(name, man, store, cfg).model.eval()
        gf, gg = parts(m, store, gal, [1] * len(gal))
        line = [f"trial {trial} {name:9s}", f"|GAP f| {gf.norm(dim=1).mean():.2f}"]
        if gg is not None:
            line.append(f"|GAP g| {gg.norm(dim=1).mean():.2f}")
        for subset in ("seen", "unseen"):
            q = man.rows("query", subset)
            qf, qg = parts(m, store, q, q["rate"].tolist())
            cells = [f"f {r1(qf, gf, q, gal):4.1f}"]
            if qg is not None:
                cells.append(f"g {r1(qg, gg, q, gal):4.1f}")
                cells.append(f"[f,g] {r1(torch.cat([qf, qg], 1), torch.cat([gf, gg], 1), q, gal):4.1f}")
                n = lambda a, b: torch.cat([F.normalize(a, dim=1), F.normalize(b, dim=1)], 1)
                cells.append(f"[f/|f|,g/|g|] {r1(n(qf, qg), n(gf, gg), q, gal):4.1f}")
            line.append(f"{subset}: " + " ".join(cells))
        print(" | ".join(line), flush=True)
