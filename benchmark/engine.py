"""One training engine for CAD-Net and every learned baseline.

A *task* owns a model and its optimisers and knows how to take one update from a
:class:`~benchmark.losses.cadnet.CrossResolutionBatch` (``task.train_step(batch) -> dict of
detached loss tensors``). The engine owns everything else, the same for every method:

* identity-balanced sampling: each step draws P identities x K images as the HR batch and,
  independently (the paper shuffles X_H and X_L separately), another P x K as the LR batch,
  each LR image at a rate drawn from the profile's seen rates, with its HR original as the
  L_rec target; random horizontal flips (shared by an LR image and its target);
* an epoch is ceil(HR training images / (P*K)) steps; P identities per step come from a
  per-epoch permutation of the training identities (cycled), K images per identity without
  replacement when it has K, else with replacement;
* all randomness of epoch e comes from a generator seeded by (seed, e): resuming from the
  checkpoint of epoch e-1 replays epoch e exactly, so interrupted-then-resumed training
  ends with the same weights as an uninterrupted run (on CPU);
* a checkpoint after every epoch (written atomically, loaded with ``weights_only=True``);
* NaN/inf in any loss stops the run with a clear error; losses are checked (one host sync)
  every ``log_every`` steps and at the end of each epoch, before the checkpoint is written,
  so the last checkpoint on disk is always a good one;
* no model selection: the model of the last epoch is the result (nothing looks at test data);
* data parallel over ``torchrun`` processes: each process takes its share of the P
  identities of a step, and gradients are averaged across processes in the optimiser step
  (:class:`GradientAveraging`: bucketed all-reduce, as DistributedDataParallel does for one
  forward/backward). CAD-Net's alternating generator and discriminator updates with
  frozen discriminators do not fit DDP's one-forward-one-backward model, so the engine
  averages the gradients itself. BatchNorm normalises with per-process batch statistics
  (or across processes with ``--sync-bn``) and the running statistics follow rank 0 (DDP's
  default ``broadcast_buffers``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from datasets.atomic import atomic_path
from datasets.errors import MLRBenchError
from datasets.loader import ImageStore, make_lr
from datasets.seeds import epoch_seed

from .losses.cadnet import CrossResolutionBatch

CHECKPOINT_VERSION = 1


class NonFiniteLoss(MLRBenchError):
    """A loss became NaN or inf; the last good checkpoint is left as it was."""


@dataclass
class TrainData:
    """The HR training images of a manifest (store indices) with contiguous class labels."""

    store: ImageStore
    index: torch.Tensor  # [N] store index of each HR training image
    labels: torch.Tensor  # [N] class label 0..C-1
    num_classes: int

    @classmethod
    def from_manifest(cls, manifest, store: ImageStore) -> TrainData:
        rows = manifest.rows("train")
        rows = rows[rows["rate"] == 1]
        if rows.empty:
            raise ValueError("the manifest has no training images at r = 1")
        pids = sorted(set(rows["pid"]))
        relabel = {p: i for i, p in enumerate(pids)}
        return cls(store=store, index=store.indices(manifest.abspaths(rows)),
                   labels=torch.tensor([relabel[p] for p in rows["pid"]]),
                   num_classes=len(pids))


class IdentitySampler:
    """P identities x K images per step (see module docstring for the exact rule)."""

    def __init__(self, labels: torch.Tensor, ids_per_batch: int, instances_per_id: int):
        self.p, self.k = ids_per_batch, instances_per_id
        self.by_id = [torch.nonzero(labels == c).flatten() for c in range(int(labels.max()) + 1)]
        if len(self.by_id) < self.p:
            raise ValueError(f"{len(self.by_id)} training identities; a batch needs P = {self.p}")
        self.steps = math.ceil(len(labels) / (self.p * self.k))

    def batches(self, g: torch.Generator) -> list[torch.Tensor]:
        """The epoch's batches: ``steps`` tensors of P*K positions into the training list."""
        n = len(self.by_id)
        order = torch.cat([torch.randperm(n, generator=g)
                           for _ in range(math.ceil(self.steps * self.p / n))])
        out = []
        for s in range(self.steps):
            picks = []
            for c in order[s * self.p:(s + 1) * self.p].tolist():
                members = self.by_id[c]
                if len(members) >= self.k:
                    sel = members[torch.randperm(len(members), generator=g)[:self.k]]
                else:
                    sel = members[torch.randint(len(members), (self.k,), generator=g)]
                picks.append(sel)
            out.append(torch.cat(picks))
        return out


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(epoch_seed(seed, epoch))


def make_batch(data: TrainData, hr_pos: torch.Tensor, lr_pos: torch.Tensor, rates, lr_method: str,
               g: torch.Generator, device) -> CrossResolutionBatch:
    """HR batch and LR batch (with HR targets), flipped at random, on ``device``."""

    def load(pos):
        x = data.store.batch(data.index[pos])
        flip = torch.rand(len(pos), generator=g) < 0.5
        x[flip] = x[flip].flip(-1)
        return x

    hr = load(hr_pos)
    target = load(lr_pos)
    r = torch.tensor(rates, dtype=torch.float64)[torch.randint(len(rates), (len(lr_pos),),
                                                               generator=g)]
    lr = make_lr(target, r, lr_method)
    to = dict(device=device, non_blocking=True)
    return CrossResolutionBatch(hr.to(**to), data.labels[hr_pos].to(**to), lr.to(**to),
                                data.labels[lr_pos].to(**to), target.to(**to))


class GradientAveraging:
    """Wraps an optimiser: before each step, average its gradients over the process group.

    As DDP does it: the gradients are flattened into buckets of about ``bucket_mb`` MiB
    (per dtype and device) and each bucket is all-reduced once, instead of one collective
    call per parameter tensor; then divided by the world size and copied back.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, bucket_mb: float = 25.0):
        self.optimizer = optimizer
        self.bucket_bytes = int(bucket_mb * 2**20)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)

    def buckets(self) -> list[list[torch.Tensor]]:
        """This optimiser's gradients, grouped into all-reduce buckets (same order on every
        process: parameter order, split by dtype/device and size)."""
        out: list[list[torch.Tensor]] = []
        open_: dict[tuple, tuple[list[torch.Tensor], list[int]]] = {}
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                key = (p.grad.dtype, p.grad.device)
                bucket, size = open_.setdefault(key, ([], [0]))
                bucket.append(p.grad)
                size[0] += p.grad.numel() * p.grad.element_size()
                if size[0] >= self.bucket_bytes:
                    out.append(bucket)
                    del open_[key]
        out += [bucket for bucket, _ in open_.values()]
        return out

    def step(self, closure=None):
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        world = dist.get_world_size()
        for bucket in self.buckets():
            flat = _flatten_dense_tensors(bucket)
            dist.all_reduce(flat)
            flat.div_(world)
            for grad, mean in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
                grad.copy_(mean)
        return self.optimizer.step(closure)


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when not running under torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(batch: CrossResolutionBatch, k: int) -> CrossResolutionBatch:
    """This process's share of a step: whole identities, P / world of them, from a global
    batch whose random flips and rates were drawn once for all processes."""
    rank, size = world()
    if size == 1:
        return batch

    def part(t: torch.Tensor) -> torch.Tensor:
        groups = t.view(-1, k, *t.shape[1:])
        if len(groups) % size:
            raise ValueError(f"P = {len(groups)} identities per step cannot be split over "
                             f"{size} processes; choose P divisible by the number of processes")
        return groups.chunk(size)[rank].reshape(-1, *t.shape[1:])

    return CrossResolutionBatch(*(part(t) for t in (batch.hr_images, batch.hr_pids,
                                                     batch.lr_images, batch.lr_pids,
                                                     batch.lr_targets)))


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, remedy: str = "delete it to start that training again "
                    "(or pass --retrain)") -> dict:
    """A file written by :func:`save_checkpoint` (tensors only: ``weights_only=True``, no
    code from the file runs). A damaged or foreign file is an error naming it and ``remedy``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a checkpoint, or refused by weights_only
        raise CorruptFile(f"{path}: cannot read this checkpoint ({type(e).__name__}); it is "
                          f"damaged or was not written by this project: {remedy}") from None


class CorruptFile(MLRBenchError):
    """A stored file that cannot be read back."""


def train(task, data: TrainData, *, epochs: int, ids_per_batch: int, instances_per_id: int,
          lr_batch_ids: int | None = None, lr_rates=(2, 3, 4), lr_method: str = "bilinear",
          seed: int = 0, checkpoint: Path | None = None, device="cpu", log_every: int = 10,
          on_log: Callable[[dict], None] | None = None,
          history: list[dict] | None = None) -> list[dict]:
    """Train ``task`` for ``epochs``; resume from ``checkpoint`` if it holds earlier epochs,
    or continue after ``history`` (the epochs this task object was already trained for).

    Returns the history: one dict per epoch with the mean of every loss, images/s and time.
    """
    hr_sampler = IdentitySampler(data.labels, ids_per_batch, instances_per_id)
    lr_sampler = IdentitySampler(data.labels, lr_batch_ids or ids_per_batch, instances_per_id)
    history = list(history or [])
    start = len(history)
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        task.load_state_dict(state["task"])
        history, start = state["history"], state["epoch"] + 1
    rank, _ = world()
    for epoch in range(start, epochs):
        g = epoch_generator(seed, epoch)
        hr_batches, lr_batches = hr_sampler.batches(g), lr_sampler.batches(g)
        sums: dict[str, torch.Tensor] = {}
        t0, images = time.perf_counter(), 0
        for step, (hr_pos, lr_pos) in enumerate(zip(hr_batches, lr_batches)):
            batch = shard(make_batch(data, hr_pos, lr_pos, lr_rates, lr_method, g, device),
                          instances_per_id)
            losses = task.train_step(batch)
            if world()[1] > 1:  # as DDP's broadcast_buffers: BN running stats follow rank 0
                for buf in task.model.buffers():
                    dist.broadcast(buf, 0)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0) + v.float()
            images += len(batch.hr_images) + len(batch.lr_images)
            if (step + 1) % log_every == 0 or step + 1 == len(hr_batches):
                means = {k: float(v) / (step + 1) for k, v in sums.items()}  # one sync per log
                bad = [k for k, v in means.items() if not math.isfinite(v)]
                if bad:
                    kept = (f"the last good checkpoint (epoch {history[-1]['epoch']}) is kept at "
                            f"{checkpoint}" if history and checkpoint else "no checkpoint was written")
                    raise NonFiniteLoss(f"loss {', '.join(bad)} became {means[bad[0]]} at epoch "
                                        f"{epoch + 1}, step {step + 1}; training stopped and {kept}")
                if on_log is not None and rank == 0:
                    on_log({"epoch": epoch + 1, "epochs": epochs, "step": step + 1,
                            "steps": len(hr_batches), "losses": means,
                            "images_per_s": images / (time.perf_counter() - t0)})
        wall = time.perf_counter() - t0
        history.append({"epoch": epoch + 1,
                        **{k: float(v) / len(hr_batches) for k, v in sums.items()},
                        "images_per_s": images / wall, "seconds": wall})
        if checkpoint is not None and rank == 0:
            save_checkpoint(Path(checkpoint), {"version": CHECKPOINT_VERSION, "epoch": epoch,
                                               "task": task.state_dict(), "history": history})
    return history
