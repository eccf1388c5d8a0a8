"""Run from the repository root: PYTHONPATH=. python <this file>.
How fast does CycleGAN's G learn the identity on HR training images: SGD (our profile) vs Adam (CycleGAN's)."""
import torch, copy
from torch.nn import functional as F
from benchmark.validate import make_task
from benchmark.cli import build_parser, make_config
from benchmark.runner import open_manifest, image_store, load_checked
args = build_parser().parse_args(["--table","1","--datasets","viper","--profile","cpu","--trials","1",
    "--data-root","../shared/data","--out","results/reference/cpu-viper"])
cfg = make_config(args, ["cyclegan"])
man = open_manifest(cfg, load_checked(cfg, "viper"), 0); store = image_store(cfg, man)
train = man.rows("train"); train = train[train.rate == 1]
x_all = store.batch(store.indices(man.abspaths(train)))
torch.manual_seed(0)
task = make_task("cyclegan", "cpu", 316, 0, None)
g0 = task.model.g_lr2hr
print("profile model_optim:", task.config.model_optim)
for name, mk in (("sgd 1e-3 m0.9", lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, weight_decay=5e-4)),
                 ("adam 2e-4 b0.5", lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.5, 0.999)))):
    g = copy.deepcopy(g0).train(); opt = mk(g.parameters()); gen = torch.Generator().manual_seed(1)
    for step in range(101):
        x = x_all[torch.randint(len(x_all), (32,), generator=gen)]
        loss = F.l1_loss(g(x), x)
        if step % 25 == 0: print(name, "step", step, "L1 %.4f" % loss.item(), flush=True)
        opt.zero_grad(); loss.backward(); opt.step()
