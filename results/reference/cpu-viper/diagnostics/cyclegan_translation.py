"""Where cyclegan loses rank-1: R(G(query)) vs R(G(gallery)), G on queries only, no G at all
(same trained R). Run from the repository root: PYTHONPATH=. python <this file>. It loads the
cached cyclegan model of the current code: outputs -sgd.txt (session 3, SGD, plain generators),
-adam.txt (CycleGAN's Adam, plain generators), -residual.txt (Adam, residual generators)."""
import sys, torch
from benchmark.cli import build_parser, make_config
from benchmark.runner import fit_method, open_manifest, image_store, load_checked
from benchmark.metrics import evaluate_ranking, pairwise_distance
from datasets.loader import make_lr
args = build_parser().parse_args(["--table","1","--datasets","viper","--profile","cpu","--trials","1",
    "--data-root","../shared/data","--out","results/reference/cpu-viper","--methods","cyclegan"])
cfg = make_config(args, ["cyclegan"])
man = open_manifest(cfg, load_checked(cfg, "viper"), 0); store = image_store(cfg, man)
meth = fit_method("cyclegan", man, store, cfg); m = meth.model.eval()
g = man.rows("gallery")
def feats(rows, rates, translate):
    idx = store.indices(man.abspaths(rows)); out=[]
    with torch.inference_mode():
        for s in range(0, len(idx), 128):
            x = make_lr(store.batch(idx[s:s+128]), rates[s:s+128], cfg.lr_method)
            out.append(m.reid.extract_features(m.g_lr2hr(x) if translate else x))
    return torch.cat(out)
ghr = store.batch(store.indices(man.abspaths(g)))
with torch.inference_mode():
    gg = m.g_lr2hr(ghr)
print("gallery: L1(G(HR),HR) %.4f, PSNR %.2f" % ((gg-ghr).abs().mean(), -10*torch.log10(((gg-ghr)**2).mean())))
for subset in ("seen","unseen"):
    q = man.rows("query", subset); rates = q["rate"].tolist()
    for qt, gt in ((True, True), (True, False), (False, False)):
        qf, gf = feats(q, rates, qt), feats(g, [1]*len(g), gt)
        r = evaluate_ranking(pairwise_distance(qf, gf), q.pid.to_numpy(), g.pid.to_numpy(), q.camid.to_numpy(), g.camid.to_numpy(), max_rank=1, single_shot=True, seed=cfg.seed)
        print(subset, "query G" if qt else "query raw", "gallery G" if gt else "gallery raw", "R1 %.1f" % (100*r.cmc[0]))
