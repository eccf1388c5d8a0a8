"""The experiment loop: for each dataset, each trial and each method, the rows of a
*measure*, reused from the result store or computed and stored.

Every product of a run goes through :func:`collect`: Table 1-3's per-trial results
(:class:`benchmark.evaluation.ResultMeasure`), the rate sweep and the invariance probe
(``benchmark/figures.py``), and so the paired comparisons, which read the first two. The loop
reads top to bottom: for each dataset, for each trial, build (or reuse) the manifest, decode
its images once (only if something must be computed), and for each method reuse the stored
rows or fit the method and measure it. Every finished (dataset, method, trial) is written
atomically before the next starts, so an interrupted run loses nothing already finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Protocol

import pandas as pd
from rich.console import Console

from datasets import load_dataset
from datasets.loader import ImageStore, check_images
from datasets.protocol import Manifest, ProtocolOptions, get_manifest

from .config import CacheMode, RunConfig
from .methods import create_method
from .store import MissingResult, ResultStore

console = Console(stderr=True)


def load_checked(run: RunConfig, name: str):
    """Dataset ``name``, every image verified to decode; with ``--skip-bad-images`` the bad
    ones are dropped and counted, otherwise the first is an error naming it."""
    ds = load_dataset(name, run.data_root, cache_dir=run.cache_dir,
                      **run.dataset_options.get(name, {}))
    _, bad = check_images([r.path for r in ds.images], skip_bad=run.skip_bad_images)
    if bad:
        drop = set(bad)
        ds.images = [r for r in ds.images if r.path not in drop]
        if ds.split:
            ds.split = {k: [r for r in v if r.path not in drop] for k, v in ds.split.items()}
        ds.excluded["unreadable images (skipped by --skip-bad-images)"] = len(bad)
        console.print(f"[yellow]{ds.name}: skipped {len(bad)} unreadable image(s), e.g. {bad[0]}")
    return ds


def open_manifest(run: RunConfig, ds, trial: int) -> Manifest:
    return get_manifest(ds, trial=trial, seed=run.seed, manifest_dir=Path(run.out) / "manifests",
                        options=ProtocolOptions(protocol=run.protocol),
                        authors_lists=run.authors_lists,
                        write=run.cache is not CacheMode.STORED_ONLY)


def image_store(run: RunConfig, manifest: Manifest) -> ImageStore:
    paths = manifest.abspaths(manifest.frame.drop_duplicates("path"))
    return ImageStore(paths, run.input_size, cache_dir=run.cache_dir / "images")


def fit_method(name: str, manifest: Manifest, store: ImageStore, run: RunConfig):
    """Method ``name`` fitted on the manifest's training rows (a cached model is reused)."""
    method = create_method(name)
    method.fit(manifest=manifest, store=store, run=run)
    return method


@dataclass
class Trial:
    """One (dataset, trial) of a run: its manifest, and its decoded images on first use."""

    run: RunConfig
    dataset: str
    trial: int
    manifest: Manifest
    #: method -> (result rows, per-query rows) of its evaluation on this trial
    #: (``benchmark.evaluation.trial_evaluation``): measured once, shared by the measures
    evaluations: dict = field(default_factory=dict, repr=False)

    @cached_property
    def store(self) -> ImageStore:
        return image_store(self.run, self.manifest)

    def fit(self, name: str):
        return fit_method(name, self.manifest, self.store, self.run)


class Measure(Protocol):
    """What :func:`collect` measures per (trial, method). ``kind`` names the stored file
    (None: the table result file itself), ``settings`` extend its key, ``first_trial_only``
    restricts the loop to trial 0."""

    kind: str | None
    settings: dict
    first_trial_only: bool

    def compute(self, trial: Trial, method: str) -> list[dict]: ...


@dataclass
class Collected:
    """The rows of a measure over a run, the (dataset, method, trial) left out under
    ``stored-only``, and what each dataset's reader reported."""

    rows: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)
    datasets: dict = field(default_factory=dict)

    def frame(self, run: RunConfig) -> pd.DataFrame:
        """The rows as a frame; none at all (``stored-only``, nothing stored) is an error."""
        if not self.rows:
            raise MissingResult(Path(run.out) / "runs")
        frame = pd.DataFrame(self.rows)
        frame.attrs["datasets"], frame.attrs["missing"] = self.datasets, self.missing
        return frame


def collect(run: RunConfig, *measures: Measure) -> tuple[Collected, ...]:
    """Each of ``measures`` over every dataset, trial and method of ``run`` (stored rows
    reused); one pass over the data, one :class:`Collected` per measure."""
    store, outs = ResultStore(run), tuple(Collected() for _ in measures)
    for name in run.datasets:
        ds = load_checked(run, name)
        for out in outs:
            out.datasets[name] = {"root": str(ds.root), "excluded": ds.excluded,
                                  "notes": ds.notes, "comparable": ds.comparable}
        for t in range(run.num_trials(name)):
            todo = [(m, out) for m, out in zip(measures, outs)
                    if t == 0 or not m.first_trial_only]
            if not todo:
                break
            trial = Trial(run, name, t, open_manifest(run, ds, t))
            for method in run.methods:
                key = store.result_key(name, create_method(method), t,
                                       trial.manifest.meta["sha256"])
                for measure, out in todo:
                    path = store.result_path(name, method, t, measure.kind)
                    k = {**key, "kind": measure.kind, **measure.settings} if measure.kind else key
                    try:
                        out.rows += store.rows(path, k, partial(measure.compute, trial, method))
                    except MissingResult as e:
                        console.print(f"[yellow]--stored-only: no stored result for dataset "
                                      f"{name}, method {method}, trial {t} ({e.path})")
                        out.missing.append({"dataset": name, "method": method, "trial": t,
                                            "path": str(e.path)})
    return outs


__all__ = ["Collected", "Measure", "Trial", "collect", "fit_method", "image_store",
           "load_checked", "open_manifest"]
