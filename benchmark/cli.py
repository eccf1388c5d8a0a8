"""The ``run_all.py`` command line: parse, check, dispatch. Logic lives in the modules it calls."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console

try:
    from datasets.errors import MLRBenchError
except ImportError as e:  # another package named "datasets" (Hugging Face's) shadows ours
    import datasets

    raise ImportError(f"'import datasets' found {getattr(datasets, '__file__', '?')}, not "
                      "mlr-bench's datasets/ package (Hugging Face 'datasets' shadows it): run "
                      "from the repository root or uninstall the other package") from e

from .config import CacheMode, RunConfig  # noqa: E402

console = Console(stderr=True)



class UsageError(MLRBenchError):
    """Bad or contradictory arguments."""


def profile_names():
    from .profiles import PROFILES

    return PROFILES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_all.py", description="mlr-bench: regenerate the tables and figures of CAD-Net "
        "(Li et al., ICCV 2019) for cross-resolution person re-ID.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--table", type=int, choices=[1, 2, 3], help="regenerate Table 1, 2 or 3")
    what.add_argument("--figure", choices=["3", "4", "sweep", "invariance"],
                      help="regenerate a figure; sweep and invariance (a linear HR-vs-LR probe "
                           "on each method's features) are beyond the paper")
    what.add_argument("--paired", metavar="REFERENCE",
                      help="per-trial differences of --methods against REFERENCE from stored "
                           "results (mean, std, range, wins, paired t-test): paired-REFERENCE.csv/.md")
    what.add_argument("--claims", action="store_true",
                      help="check the paper's claims (orderings of two methods on a metric) "
                           "against stored per-trial results with a 95%% interval of the "
                           "paired differences: claims.csv/.md (holds / does not hold / "
                           "undecided / not run)")
    what.add_argument("--list-datasets", action="store_true",
                      help="list the datasets found under --data-root and exit")
    p.add_argument("--datasets", help="comma-separated: market1501, dukemtmcreid, cuhk03, viper, "
                   "caviar, synthetic (default: every paper dataset found under --data-root, "
                   "else synthetic)")
    p.add_argument("--methods", help="comma-separated method names (default: every method the "
                   "table uses)")
    p.add_argument("--data-root", type=Path,
                   help="folder holding the datasets in torchreid's layout (default: ./data; "
                   "given explicitly, it must exist)")
    p.add_argument("--protocol", choices=["paper", "authors"], default="paper",
                   help="paper: the paper's text (default); authors: the authors' split lists")
    p.add_argument("--compare-protocols", action="store_true",
                   help="with --table and --authors-lists: run the table under the paper's "
                        "protocol and the authors' lists and write tableN-protocols.csv/.md "
                        "side by side (authors - paper differences)")
    p.add_argument("--authors-lists", type=Path,
                   help="folder of the authors' lists (one subfolder per dataset); needed by "
                   "--protocol authors")
    p.add_argument("--profile", choices=list(profile_names()),
                   help="paper (GPU), cpu (2-core machine: MobileNetV2 from ImageNet), "
                   "cpu-scratch (the ResNet-18 from-scratch cpu profile of the earlier "
                   "reference results) or smoke (seconds, for tests); default: paper with "
                   "CUDA, cpu without")
    p.add_argument("--pretrained", choices=["imagenet", "none"],
                   help="backbone init (default: the profile's: imagenet for paper and cpu, none "
                   "for cpu-scratch and smoke)")
    p.add_argument("--seed", type=bounded_int("--seed", 0, MAX_SEED), default=0,
                   help=f"seed of splits, rates and training (0 to {MAX_SEED})")
    p.add_argument("--trials", type=bounded_int("--trials", 1, MAX_TRIALS),
                   help=f"number of trials, 1 to {MAX_TRIALS} (default: 10 for random-split "
                   "datasets and CUHK03's classic sets, 1 for Market/Duke's fixed split)")
    p.add_argument("--lr-method", choices=["bilinear", "maxpool"], default="bilinear",
                   help="how LR images are down-sampled before bilinear up-sampling")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="skip (and count) unreadable images instead of stopping")
    p.add_argument("--synthetic-ids", type=int,
                   help="identities of SynthMLR (default 200: 100 train / 100 test)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each network before training (off by default: on the "
                   "2-core CPU it took ~4 min to compile and gave no speed-up; for GPUs)")
    p.add_argument("--sync-bn", action="store_true",
                   help="under torchrun: BatchNorm statistics over all processes' batches "
                   "(SyncBatchNorm) instead of each process's own")
    p.add_argument("--retrain", action="store_true",
                   help="train again even where a cached model for the same settings exists")
    p.add_argument("--stored-only", action="store_true",
                   help="tables, sweep and probe from the results already stored under --out: "
                   "train and measure nothing; a (method, trial) without a stored result is "
                   "left out and listed (on screen, in the Markdown and the provenance)")
    p.add_argument("--per-query", action="store_true",
                   help="with --table: also store each method's per-query results (rank-1 "
                   "hit, AP, recovered-image SSIM / PSNR / LPIPS) beside its result; --claims "
                   "then tests a one-trial dataset's claims over its queries")
    p.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    return p


MAX_SEED = 2**32 - 1
MAX_TRIALS = 100


def bounded_int(flag: str, low: int, high: int):
    """An argparse type: an integer in [low, high], else an error naming ``flag``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{flag} must be between {low} and {high}, "
                                             f"got {value}")
        return value

    return parse


def names_of(flag: str, arg: str | None) -> list[str] | None:
    """The comma-separated names of ``flag``; None when the flag was not given. A flag
    given with no name in it (``--methods ""``, ``--methods ,``) is an error."""
    if arg is None:
        return None
    names = [n.strip() for n in arg.split(",") if n.strip()]
    if not names:
        raise UsageError(f"{flag} {arg!r} names nothing; give comma-separated names, or leave "
                         "the flag out for the default")
    return names


def resolve_datasets(arg: str | None, data_root: Path | None) -> list[str]:
    """The datasets of ``--datasets``; without it, every dataset found under ``--data-root``
    (SynthMLR only when neither flag was given and ./data holds none)."""
    from datasets import data_folders, load_dataset
    from datasets import list_datasets as known_datasets

    root = data_root if data_root is not None else Path("data")
    folders = data_folders()  # top-level folder of each dataset read from --data-root
    names = names_of("--datasets", arg)
    needs_root = names is None or any(n in folders for n in names)
    if data_root is not None and needs_root and not data_root.is_dir():
        raise UsageError(f"--data-root {data_root}: no such folder")
    if names:
        unknown = [n for n in names if n not in known_datasets()]
        if unknown:
            raise UsageError(f"unknown dataset(s) {', '.join(unknown)}; known: "
                             f"{', '.join(known_datasets())}")
        for n in names:
            if n in folders and not (root / folders[n]).is_dir():
                load_dataset(n, root)  # the reader's own error: the folder and its layout
                raise UsageError(f"dataset {n}: folder {root / folders[n]} not found "
                                 f"(--data-root {root}); see README 'Where to put the data'")
        return names
    found = [n for n, folder in folders.items() if (root / folder).is_dir()]
    if not found and data_root is not None:
        raise UsageError(f"--data-root {data_root}: no dataset folder in it (expected one of "
                         f"{', '.join(sorted(set(folders.values())))}); see README 'Where to "
                         "put the data'")
    if not found:
        console.print(
            f"[bold yellow]No paper dataset found under --data-root {data_root}: running on "
            "SynthMLR, the embedded synthetic dataset.[/] Put real data under the data root "
            "(e.g. data/viper/VIPeR/cam_a) or pass --data-root; see README 'Where to put the data'.")
        return ["synthetic"]
    return found


def resolve_methods(arg: str | None, default: list[str]) -> list[str]:
    from .methods import list_methods

    names = names_of("--methods", arg)
    if names is None:
        return default
    unknown = [n for n in names if n not in list_methods()]
    if unknown:
        raise UsageError(f"unknown method(s) {', '.join(unknown)}; known: "
                         f"{', '.join(list_methods())}")
    return names


def list_datasets(data_root: Path) -> int:
    from rich.table import Table

    from datasets import DatasetError, data_folders, load_dataset

    t = Table(title=f"datasets under {data_root}")
    for c in ["dataset", "where", "split", "ids", "images", "cameras", "excluded"]:
        t.add_column(c)
    for name, folder in data_folders().items():
        if not (data_root / folder).is_dir():
            t.add_row(name, f"not found ({data_root / folder})", "", "", "", "", "")
            continue
        try:
            ds = load_dataset(name, data_root)
        except DatasetError as e:
            t.add_row(name, f"[red]error: {str(e).splitlines()[0]}", "", "", "", "", "")
            continue
        excl = ", ".join(f"{k}: {v}" for k, v in ds.excluded.items() if v) or "-"
        for i, (split, s) in enumerate(ds.summary().items()):
            t.add_row(name if i == 0 else "", str(ds.root) if i == 0 else "", split,
                      f"{s['ids']:,}", f"{s['images']:,}", str(s["cameras"]),
                      excl if i == 0 else "")
    Console().print(t)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.list_datasets:
            root = args.data_root or Path("data")
            if not root.is_dir():
                raise UsageError(f"--data-root {root}: no such folder")
            return list_datasets(root)
        return dispatch(args)
    except MLRBenchError as e:
        print(f"run_all.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"run_all.py: interrupted. Every finished (dataset, method, trial) is kept under "
              f"{args.out} (runs/), and a training in progress resumes from its last finished "
              "epoch (cache/models/): run the same command again to continue.", file=sys.stderr)
        return 130


def make_config(args, default_methods: list[str]):
    from .profiles import get_profile
    from .provenance import check_writable

    if args.protocol == "authors" and args.authors_lists is None:
        raise UsageError("--protocol authors needs --authors-lists DIR")
    if args.authors_lists is not None and args.protocol != "authors":
        raise UsageError("--authors-lists is only used with --protocol authors")
    if args.protocol == "authors" and args.trials not in (None, 1):
        raise UsageError("the authors' lists hold one fixed split: --trials must be 1")
    if args.stored_only and args.retrain:
        raise UsageError("--stored-only (and --paired, --claims) train nothing; they cannot be combined "
                         "with --retrain")
    if args.per_query and (args.table is None or args.stored_only):
        raise UsageError("--per-query measures per-query results in a --table run; it cannot "
                         "be combined with --stored-only, --figure, --paired or --claims")
    if args.stored_only and args.figure in ("3", "4"):
        raise UsageError(f"--stored-only applies to --table, --figure sweep and --figure "
                         f"invariance; --figure {args.figure} draws from the models themselves")
    cuda = torch.cuda.is_available()
    datasets = resolve_datasets(args.datasets, args.data_root)
    no_data_default = args.datasets is None and datasets == ["synthetic"]
    profile_name = args.profile or ("smoke" if no_data_default else "paper" if cuda else "cpu")
    trials = args.trials if args.trials is not None or not no_data_default else 1
    if no_data_default:
        console.print(f"[bold yellow]SynthMLR default run:[/] 200 identities (100 train / 100 "
                      f"test), profile '{profile_name}', {trials} trial(s), seed {args.seed}; "
                      "sized to finish within about 10 minutes on 2 CPU cores. Its numbers "
                      "show the harness working, not the paper's results.")
    profile = get_profile(profile_name)
    pretrained = args.pretrained or profile.pretrained
    check_writable(args.out)
    if args.synthetic_ids is not None:
        if "synthetic" not in datasets:
            raise UsageError("--synthetic-ids only applies to --datasets synthetic")
        if args.synthetic_ids < 16:
            raise UsageError(f"--synthetic-ids must be at least 16, got {args.synthetic_ids}")
    run = RunConfig(
        datasets=datasets, methods=resolve_methods(args.methods, default_methods),
        data_root=args.data_root or Path("data"), out=args.out, protocol=args.protocol,
        authors_lists=args.authors_lists, profile=profile_name,
        input_size=tuple(profile.input_size), seed=args.seed, trials=trials,
        lr_method=args.lr_method, pretrained=pretrained, skip_bad_images=args.skip_bad_images,
        device=init_distributed(cuda), compile=args.compile, sync_bn=args.sync_bn,
        cache=(CacheMode.STORED_ONLY if args.stored_only else
               CacheMode.RETRAIN if args.retrain else CacheMode.USE),
        dataset_options={"synthetic": {"num_ids": args.synthetic_ids}} if args.synthetic_ids
        else {}, per_query=args.per_query)
    plan_notes(run)
    return run


def plan_notes(run) -> None:
    """Say what a run's trial count means: a fixed split repeated, and how many models a
    large run trains."""
    from datasets import get_dataset_info

    from .methods import LearnedMethod, create_method

    for d in run.datasets:
        if run.protocol == "paper" and get_dataset_info(d).default_trials == 1 \
                and run.num_trials(d) > 1:
            console.print(f"[yellow]note: {d} has one fixed split; its {run.num_trials(d)} "
                          "trials share it and differ only in the query rates and the "
                          "training seed.")
    learned = {m.cache_name for m in map(create_method, run.methods)
               if isinstance(m, LearnedMethod)}
    models = len(learned) * sum(run.num_trials(d) for d in run.datasets)
    if models >= 20 and run.cache is not CacheMode.STORED_ONLY:
        console.print(f"[yellow]note: this run trains up to {models} models ({len(learned)} "
                      f"learned method(s) x {sum(run.num_trials(d) for d in run.datasets)} "
                      "dataset trials; stored ones are reused); one cpu-profile CAD-Net model "
                      "on MLR-VIPeR took 25-40 minutes on one CPU core.")


def init_distributed(cuda: bool) -> str:
    """Under ``torchrun`` (WORLD_SIZE > 1) join the process group; return this process's device.

    Every process runs the same loop; training splits each step's identities over the
    processes (benchmark/engine.py) and only rank 0 writes files.
    """
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return "cuda" if cuda else "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return "cpu"


def dispatch(args) -> int:
    from . import tables

    if args.compare_protocols:
        if args.table is None or args.authors_lists is None or args.protocol != "paper":
            raise UsageError("--compare-protocols needs --table N and --authors-lists DIR "
                             "(and no --protocol: it runs both)")
        from argparse import Namespace

        default = list(tables.TABLES[args.table].default_methods)
        paper = make_config(Namespace(**{**vars(args), "authors_lists": None}), default)
        authors = make_config(Namespace(**{**vars(args), "protocol": "authors", "trials": 1}),
                              default)
        paths = tables.compare_protocols(args.table, paper, authors)
        console.print("wrote " + ", ".join(str(p) for p in paths.values()))
        return 0
    if args.table is not None:
        spec = tables.TABLES[args.table]
        cfg = make_config(args, default_methods=list(spec.default_methods))
        paths = tables.make_table(args.table, cfg)
        console.print("wrote " + ", ".join(str(p) for p in paths.values()))
        return 0
    if args.claims:
        from .claims import claim_methods, claims_report

        cfg = make_config(argparse.Namespace(**{**vars(args), "stored_only": True}),
                          claim_methods())
        paths = claims_report(cfg)
        print(paths[1].read_text())
        console.print("wrote " + ", ".join(str(p) for p in paths))
        return 0
    if args.paired is not None:
        from .paired import paired_report

        if not args.methods:
            raise UsageError("--paired REFERENCE needs --methods (the methods to compare with it)")
        resolve_methods(args.paired, [])
        cfg = make_config(argparse.Namespace(**{**vars(args), "stored_only": True}), [])
        cfg = replace(cfg, methods=[args.paired, *(m for m in cfg.methods if m != args.paired)])
        if len(cfg.methods) < 2:
            raise UsageError("--methods names no method besides the --paired reference")
        paths = paired_report(cfg, args.paired)
        print(paths[1].read_text())
        console.print("wrote " + ", ".join(str(p) for p in paths))
        return 0
    from .figures import FIGURES

    make, default = FIGURES[args.figure]
    cfg = make_config(args, default_methods=list(default or tables.TABLE1_METHODS))
    if args.figure == "4" and args.methods:
        raise UsageError("--figure 4 always compares cadnet with cadnet-no-adv-df: drop --methods")
    paths = make(cfg)
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return 0
