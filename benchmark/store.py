"""The result store: where results and trained models live, what they are keyed by, and
the cache mode (``use | retrain | stored-only``) that says whether they are reused.

Layout under ``--out``::

    runs/<dataset>/<protocol>/<profile>/<method>/seed<S>-trial<T>.json        a table result
    runs/.../seed<S>-trial<T>.<kind>.json                                     sweep, probe ...
    cache/models/<dataset>/<protocol>/<profile>/<model>/seed<S>-trial<T>/     a trained model

A stored file holds its *key* (everything it was made from: method config, code versions,
manifest hash ...) and is reused only under the same key; it is written atomically with its
wall time and provenance.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from datasets.errors import MLRBenchError

from .config import CacheMode, RunConfig
from .provenance import atomic_write_json, base_provenance

EVAL_VERSION = 3  # bump when evaluation changes what a stored result holds
MODEL_CODE_VERSION = 1  # bump when a change to models/losses/engine invalidates cached models


class MissingResult(MLRBenchError):
    """``stored-only``: nothing is stored at ``path`` under the run's key."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"--stored-only / --paired / --claims read stored results only, and none is stored under "
            f"{path} for these settings (make them first with --table / --figure sweep and "
            "the same flags)")
        self.path = path


class ResultStore:
    """Paths, keys and reuse of one run's stored results and models."""

    def __init__(self, run: RunConfig) -> None:
        self.run = run

    @property
    def mode(self) -> CacheMode:
        return self.run.cache

    def result_path(self, dataset: str, method: str, trial: int, kind: str | None = None
                    ) -> Path:
        r = self.run
        path = (Path(r.out) / "runs" / dataset / r.protocol / r.profile / method
                / f"seed{r.seed}-trial{trial}.json")
        return path.with_suffix(f".{kind}.json") if kind else path

    def model_folder(self, dataset: str, model: str, trial: int) -> Path:
        r = self.run
        return (Path(r.out) / "cache" / "models" / dataset / r.protocol / r.profile / model
                / f"seed{r.seed}-trial{trial}")

    def result_key(self, dataset: str, method, trial: int, manifest_sha256: str) -> dict:
        """What a stored result of ``method`` (a method object) must match to be reused, in
        its JSON form (tuples as lists), so that it compares equal to the stored key."""
        r = self.run
        return _as_json({"eval_version": EVAL_VERSION, "model_code_version": MODEL_CODE_VERSION,
                "method_config": method.config_key(r), "dataset": dataset,
                "method": method.name, "trial": trial, "seed": r.seed, "protocol": r.protocol,
                "profile": r.profile, "input_size": list(r.input_size),
                "lr_method": r.lr_method, "pretrained": r.pretrained,
                "dataset_options": r.dataset_options.get(dataset, {}),
                "manifest_sha256": manifest_sha256})

    def rows(self, path: Path, key: dict, compute) -> list[dict]:
        """The rows stored at ``path`` under ``key``; otherwise (or with ``retrain``)
        ``compute()`` them and store them atomically with the key, the wall time and the
        provenance. ``stored-only`` computes nothing: :class:`MissingResult`."""
        if path.exists() and self.mode is not CacheMode.RETRAIN:
            old = read_json(path, "a stored result")
            if old.get("key") == key:
                return old["rows"]
        if self.mode is CacheMode.STORED_ONLY:
            raise MissingResult(path)
        t0 = time.perf_counter()
        rows = compute()
        atomic_write_json(path, {"key": key, "rows": rows, "wall_s": time.perf_counter() - t0,
                                 "provenance": {**base_provenance(self.run.device),
                                                "config": asdict(self.run)}})
        return rows

    def output_path(self, name: str) -> Path:
        """``OUT/name`` under the paper's protocol, ``OUT/<stem>-<protocol>.<ext>`` under
        another, so a run of the authors' lists never overwrites the paper-protocol files."""
        r = self.run
        if r.protocol == "paper":
            return Path(r.out) / name
        stem, _, ext = name.partition(".")
        return Path(r.out) / f"{stem}-{r.protocol}.{ext}"


def _as_json(value):
    """``value`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value))


def read_json(path: Path, what: str):
    """``path`` parsed; a damaged file is an error naming it and the remedy."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MLRBenchError(f"{path}: cannot read {what} ({type(e).__name__}: {e}); delete the "
                            "file and run again to recompute it") from e


def output_path(run: RunConfig, name: str) -> Path:
    return ResultStore(run).output_path(name)


__all__ = ["EVAL_VERSION", "MODEL_CODE_VERSION", "MissingResult", "ResultStore", "output_path",
           "read_json"]
