"""Figures of the paper, regenerated as PNG (+ CSV where there are numbers), with provenance.

* Figure 3: recovered HR images for r in {1, 2, 4, 8}, one row per person, one column block
  per method (the first block shows the LR inputs).
* Figure 4: t-SNE of w = GAP(f) on test images of 15 identities: (a) CAD-Net without
  L_adv^DF coloured by identity, (b) CAD-Net by identity, (c) CAD-Net by down-sampling rate
  (r = 8 is never seen in training). The silhouettes of w by identity and by rate, over all
  test identities, are printed on the panels and stored in the provenance (the numbers
  behind the picture).
* Sweep (beyond the paper): rank-1 against the down-sampling rate, 1 to 8 including
  non-integer rates, for every method.
* Invariance probe (beyond the paper): how well a linear classifier tells a test image's
  feature at HR from its feature at rate r, per method (0.5 = the feature does not reveal
  the resolution; what Eq. 1 asks of CAD-Net's encoder).

All use trial 0's manifest and the cached models of that trial (training them if absent).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from datasets.atomic import atomic_path  # noqa: E402
from datasets.errors import MLRBenchError  # noqa: E402
from datasets.loader import make_lr  # noqa: E402
from datasets.seeds import evaluation_seed, figure_seed  # noqa: E402

from .config import RunConfig  # noqa: E402
from .evaluation import extract_features, query_upsampling, rank_queries  # noqa: E402
from .experiment import Trial, collect, fit_method, image_store, load_checked, open_manifest  # noqa: E402
from .provenance import atomic_write_json, atomic_write_text, base_provenance, is_main_process  # noqa: E402
from .store import output_path  # noqa: E402

FIGURE3_METHODS = ("cyclegan", "sing", "csrgan", "cadnet")
FIGURE4_METHODS = ("cadnet-no-adv-df", "cadnet")
FIGURE3_RATES = (1, 2, 4, 8)
SWEEP_RATES = (1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8)
PROBE_RATES = (2, 3, 4, 8)
PROBE_FOLDS = 5
PROBE_COLUMNS = ["dataset", "method", "rate", "probe_accuracy", "images", "identities", "init"]


def save_png(fig, path: Path) -> Path:
    """Save atomically (temp file + rename) and close the figure."""
    if is_main_process():
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def provenance(cfg: RunConfig, figure: str, wall: float, **extra) -> dict:
    return {**base_provenance(cfg.device), "figure": figure, "datasets": cfg.datasets,
            "methods": cfg.methods, "protocol": cfg.protocol, "profile": cfg.profile,
            "seed": cfg.seed, "trial": 0, "lr_method": cfg.lr_method,
            "input_size": list(cfg.input_size), "wall_time_s": round(wall, 2), **extra,
            "config": asdict(cfg)}


def _trial0(cfg: RunConfig, dataset: str):
    manifest = open_manifest(cfg, load_checked(cfg, dataset), 0)
    return manifest, image_store(cfg, manifest)


class FigureError(MLRBenchError):
    """The figure cannot be made from the given methods (a usage error)."""


def figure3(cfg: RunConfig, persons: int = 6) -> list[Path]:
    """Recovered images: rows = persons, column blocks = LR input, then each method."""
    t0, paths = time.perf_counter(), []
    for dataset in cfg.datasets:
        manifest, store = _trial0(cfg, dataset)
        methods = {m: fit_method(m, manifest, store, cfg) for m in cfg.methods}
        methods = {m: meth for m, meth in methods.items() if meth.produces_images}
        if not methods:
            raise FigureError(f"none of {cfg.methods} recovers images; Figure 3 needs one of "
                             f"{', '.join(FIGURE3_METHODS)}")
        query = manifest.rows("query", "seen").sort_values("pid").head(persons)
        hr = store.batch(store.indices(manifest.abspaths(query)))
        blocks = {"input": (lambda x: x, "bilinear"),
                  **{m: (meth.recover, query_upsampling(meth))
                     for m, meth in methods.items()}}
        cols = len(blocks) * len(FIGURE3_RATES)
        fig, axes = plt.subplots(len(hr), cols, figsize=(cols * 0.75, len(hr) * 1.5),
                                 squeeze=False)
        shown = []  # the numbers behind the picture: PSNR and colour shift per block and rate
        for b, (name, (fn, upsample)) in enumerate(blocks.items()):
            for j, r in enumerate(FIGURE3_RATES):
                with torch.inference_mode():
                    images = fn(make_lr(hr, [r] * len(hr), cfg.lr_method, upsample)).clamp(0, 1)
                shown.append({"block": name, "rate": r, **colour_fidelity(images, hr)})
                for i in range(len(hr)):
                    ax = axes[i, b * len(FIGURE3_RATES) + j]
                    ax.imshow(images[i].permute(1, 2, 0).numpy())
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if i == 0:
                        ax.set_title(f"{name}\nr={r}" if j == 0 else f"r={r}", fontsize=7)
        fig.suptitle(f"Figure 3: recovered HR images, {dataset} test set (first block: LR "
                     "input; r = 8 unseen in training)", fontsize=8)
        paths.append(save_png(fig, output_path(cfg, f"figure3_{dataset}.png")))
        atomic_write_json(output_path(cfg, f"figure3_{dataset}.provenance.json"),
                          provenance(cfg, "3", time.perf_counter() - t0, dataset=dataset,
                                     persons=query["pid"].tolist(), rates=list(FIGURE3_RATES),
                                     shown=shown,
                                     init={m: meth.init for m, meth in methods.items()}))
    return paths


def colour_fidelity(images: torch.Tensor, hr: torch.Tensor) -> dict:
    """PSNR (scikit-image, mean over images) of ``images`` against ``hr`` and the largest
    shift of a per-channel mean (RGB in [0, 1]): false colours show as a large shift."""
    from .metrics.quality import psnr

    shift = (images.float().mean((0, 2, 3)) - hr.float().mean((0, 2, 3))).abs().max()
    value = psnr(images, hr).mean  # inf where the images are the originals (r = 1 input)
    return {"psnr": round(value, 3) if np.isfinite(value) else None,
            "max_channel_shift": round(float(shift), 4)}


@torch.inference_mode()
def resolution_invariant_features(method, images: torch.Tensor, batch: int = 128) -> np.ndarray:
    """w = GAP(f) of CAD-Net's encoder E (paper section 4.7)."""
    model = method.model.eval()
    device = next(model.parameters()).device
    out = [model.encoder.features(images[s:s + batch].to(device)).mean((2, 3)).float().cpu()
           for s in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def separation(w: np.ndarray, pids: np.ndarray, rates: np.ndarray) -> dict:
    """Silhouette of w (cosine) grouped by identity and by rate: the numbers behind Figure 4.

    The paper reads Figure 4 as "w clusters by identity, not by resolution"; the silhouette
    (scikit-learn, -1..1) says how much, on the raw w rather than on a t-SNE picture: high
    by identity and near 0 (or below) by rate is the resolution-invariant case.
    """
    from sklearn.metrics import silhouette_score

    return {"silhouette_identity": float(silhouette_score(w, pids, metric="cosine")),
            "silhouette_rate": float(silhouette_score(w, rates, metric="cosine"))}


def _rate_copies(hr: torch.Tensor, cfg: RunConfig) -> tuple[torch.Tensor, np.ndarray]:
    rates = np.repeat(FIGURE3_RATES, len(hr))
    return make_lr(hr.repeat(len(FIGURE3_RATES), 1, 1, 1), rates.tolist(), cfg.lr_method), rates


def figure4(cfg: RunConfig, identities: int = 15) -> list[Path]:
    """t-SNE of w = GAP(f): (a) w/o L_adv^DF by identity, (b) full by identity, (c) by rate."""
    from sklearn.manifold import TSNE

    t0, paths = time.perf_counter(), []
    for dataset in cfg.datasets:
        manifest, store = _trial0(cfg, dataset)
        ablated = fit_method("cadnet-no-adv-df", manifest, store, cfg)
        full = fit_method("cadnet", manifest, store, cfg)
        test = pd.concat([manifest.rows("query", "seen"), manifest.rows("gallery")])
        test = test.drop_duplicates("path").sort_values(["pid", "path"])
        # every test image at every rate: the silhouettes; the plotted subset: `identities` ids
        every, every_rates = _rate_copies(store.batch(store.indices(manifest.abspaths(test))), cfg)
        every_pids = np.tile(test["pid"].to_numpy(), len(FIGURE3_RATES))
        scores = {name: separation(resolution_invariant_features(m, every), every_pids, every_rates)
                  for name, m in (("cadnet-no-adv-df", ablated), ("cadnet", full))}
        available = sorted(set(test["pid"]))
        ids = np.random.default_rng(figure_seed(cfg.seed)).choice(available, min(identities, len(available)),
                                                     replace=False)
        test = test[test["pid"].isin(ids)]
        images, rates = _rate_copies(store.batch(store.indices(manifest.abspaths(test))), cfg)
        pids = np.tile(test["pid"].to_numpy(), len(FIGURE3_RATES))
        perplexity = min(30.0, (len(images) - 1) / 3)
        emb = {name: TSNE(2, perplexity=perplexity, init="pca", random_state=figure_seed(cfg.seed))
               .fit_transform(resolution_invariant_features(m, images))
               for name, m in (("ablated", ablated), ("full", full))}
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
        cmap = plt.get_cmap("tab20")
        order = [*range(0, 20, 2), *range(1, 20, 2)]  # tab20's dark shades first, then light
        id_colour = {p: cmap(order[i % 20]) for i, p in enumerate(ids)}
        ab, fu = scores["cadnet-no-adv-df"], scores["cadnet"]
        panels = [("(a) w/o $L_{adv}^{D_F}$: by identity\nsilhouette of w: identity "
                   f"{ab['silhouette_identity']:.3f}, rate {ab['silhouette_rate']:.3f}",
                   emb["ablated"], "id"),
                  ("(b) CAD-Net: by identity\nsilhouette of w: identity "
                   f"{fu['silhouette_identity']:.3f}", emb["full"], "id"),
                  ("(c) CAD-Net: by down-sampling rate (r=8 unseen)\nsilhouette of w: rate "
                   f"{fu['silhouette_rate']:.3f}", emb["full"], "rate")]
        for ax, (title, xy, by) in zip(axes, panels):
            if by == "id":
                ax.scatter(xy[:, 0], xy[:, 1], c=[id_colour[p] for p in pids], s=14)
            else:
                for r, colour in zip(FIGURE3_RATES, ["tab:blue", "tab:green", "tab:orange",
                                                     "tab:red"]):
                    sel = rates == r
                    ax.scatter(xy[sel, 0], xy[sel, 1], c=colour, s=14, label=f"r={r}")
                ax.legend(fontsize=8)
            ax.set_title(title, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"Figure 4: t-SNE of w = GAP(f), {len(ids)} test identities of {dataset}, "
                     f"rates {FIGURE3_RATES}; silhouettes (cosine) on w of all "
                     f"{len(available)} test identities", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        paths.append(save_png(fig, output_path(cfg, f"figure4_{dataset}.png")))
        atomic_write_json(output_path(cfg, f"figure4_{dataset}.provenance.json"),
                          provenance(cfg, "4", time.perf_counter() - t0, dataset=dataset,
                                     identities=[int(i) for i in ids], points=len(images),
                                     perplexity=perplexity, separation=scores,
                                     separation_points=len(every),
                                     init={"cadnet": full.init, "cadnet-no-adv-df": ablated.init}))
    return paths


class SweepMeasure:
    """Rank-1 of a method at every rate of SWEEP_RATES (queries: the seen query set, each
    at that one rate; single-shot as Table 1)."""

    kind, settings, first_trial_only = "sweep", {"rates": list(SWEEP_RATES)}, False

    def compute(self, trial: Trial, name: str) -> list[dict]:
        run, manifest = trial.run, trial.manifest
        query, gallery = manifest.rows("query", "seen"), manifest.rows("gallery")
        method = trial.fit(name)
        g = extract_features(method, trial.store, manifest, gallery, run.lr_method)
        out = []
        for r in SWEEP_RATES:
            q = extract_features(method, trial.store, manifest, query, run.lr_method,
                                 rates=[r] * len(query))
            res = rank_queries(q, g, query, gallery, single_shot=run.protocol == "paper",
                               seed=evaluation_seed(run.seed, trial.trial), max_rank=1)
            out.append({"dataset": trial.dataset, "method": name, "trial": trial.trial,
                        "rate": r, "rank1": 100 * float(res.cmc[0])})
        return out


def sweep(cfg: RunConfig) -> list[Path]:
    """Rank-1 (single-shot, as Table 1) of every method against the down-sampling rate."""
    t0 = time.perf_counter()
    (collected,) = collect(cfg, SweepMeasure())
    per_trial, missing = collected.frame(cfg), collected.missing
    table = (per_trial.groupby(["dataset", "method", "rate"], sort=False)["rank1"]
             .agg(rank1="mean", rank1_std=lambda x: x.std(ddof=1) if len(x) > 1 else 0.0,
                  trials="count").reset_index().round(4))
    atomic_write_text(output_path(cfg, "sweep.csv"), table.to_csv(index=False, lineterminator="\n"))
    paths = [output_path(cfg, "sweep.csv")]
    for dataset, part in table.groupby("dataset", sort=False):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, line in part.groupby("method", sort=False):
            ax.errorbar(line["rate"], line["rank1"], yerr=line["rank1_std"], marker="o",
                        ms=3, capsize=2, label=name)
        ax.axvspan(2, 4, color="grey", alpha=0.12, label="seen rates")
        ax.set_xlabel("down-sampling rate r (queries)")
        ax.set_ylabel("rank-1 (%)")
        ax.set_title(f"Rank-1 against query resolution, {dataset}")
        ax.legend(fontsize=7, ncol=2)
        paths.append(save_png(fig, output_path(cfg, f"sweep_{dataset}.png")))
    atomic_write_json(output_path(cfg, "sweep.provenance.json"),
                      provenance(cfg, "sweep", time.perf_counter() - t0,
                                 rates=list(SWEEP_RATES),
                                 trials={d: cfg.num_trials(d) for d in cfg.datasets},
                                 missing=missing))
    return paths


def resolution_probe(hr: np.ndarray, lr: np.ndarray, pids: np.ndarray,
                     folds: int = PROBE_FOLDS) -> float:
    """Held-out accuracy of a linear HR-vs-LR classifier on features (chance 0.5).

    Row i of ``hr`` and ``lr`` is one image at HR and at a lower resolution. Logistic
    regression on standardised features, cross-validated with folds grouped by identity, so
    an image's two copies, and every image of a person, are always in the same fold.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([hr, lr]).astype(np.float64)
    y = np.repeat([0, 1], len(hr))
    groups = np.concatenate([pids, pids])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    return float(cross_val_score(clf, x, y, groups=groups, cv=GroupKFold(folds)).mean())


def probe_images(manifest) -> pd.DataFrame:
    """The probe's test images: seen queries and gallery, each once, by identity."""
    test = pd.concat([manifest.rows("query", "seen"), manifest.rows("gallery")])
    return test.drop_duplicates("path").sort_values(["pid", "path"])


class ProbeMeasure:
    """Probe accuracy of a method at every rate of PROBE_RATES on trial 0's test images."""

    kind, first_trial_only = "invariance", True
    settings = {"rates": list(PROBE_RATES), "folds": PROBE_FOLDS}

    def compute(self, trial: Trial, name: str) -> list[dict]:
        run, manifest, test = trial.run, trial.manifest, probe_images(trial.manifest)
        pids = test["pid"].to_numpy()
        method = trial.fit(name)
        hr = extract_features(method, trial.store, manifest, test, run.lr_method,
                              rates=[1] * len(test)).numpy()
        out = []
        for r in PROBE_RATES:
            lr = extract_features(method, trial.store, manifest, test, run.lr_method,
                                  rates=[r] * len(test)).numpy()
            out.append({"dataset": trial.dataset, "method": name, "rate": r,
                        "probe_accuracy": round(resolution_probe(hr, lr, pids), 4),
                        "images": len(test), "identities": len(set(pids)), "init": method.init})
        return out


def invariance(cfg: RunConfig) -> list[Path]:
    """Resolution probe per method and rate on trial 0's test images (HR vs rate r)."""
    t0 = time.perf_counter()
    (collected,) = collect(cfg, ProbeMeasure())
    missing = collected.missing
    table = collected.frame(cfg)[PROBE_COLUMNS]  # stored rows come back with sorted keys
    atomic_write_text(output_path(cfg, "invariance.csv"), table.to_csv(index=False, lineterminator="\n"))
    paths = [output_path(cfg, "invariance.csv")]
    for dataset, part in table.groupby("dataset", sort=False):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, line in part.groupby("method", sort=False):
            ax.plot(line["rate"], line["probe_accuracy"], marker="o", ms=3, label=name)
        ax.axhline(0.5, color="grey", ls="--", lw=1, label="chance (invariant)")
        ax.axvspan(2, 4, color="grey", alpha=0.12, label="seen rates")
        ax.set_xlabel("down-sampling rate r of the LR copy")
        ax.set_ylabel(f"HR-vs-LR probe accuracy ({PROBE_FOLDS}-fold, by identity)")
        ax.set_title(f"Does the re-ID feature reveal the resolution? {dataset} test images")
        ax.legend(fontsize=7, ncol=2)
        paths.append(save_png(fig, output_path(cfg, f"invariance_{dataset}.png")))
    atomic_write_json(output_path(cfg, "invariance.provenance.json"),
                      provenance(cfg, "invariance", time.perf_counter() - t0,
                                 rates=list(PROBE_RATES), folds=PROBE_FOLDS,
                                 probe="StandardScaler + LogisticRegression, GroupKFold by pid, "
                                       "features = each method's re-ID descriptor",
                                 missing=missing))
    return paths


FIGURES = {"3": (figure3, FIGURE3_METHODS), "4": (figure4, FIGURE4_METHODS), "sweep": (sweep, None),
           "invariance": (invariance, None)}
