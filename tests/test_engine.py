"""The training engine: sampling, exact resume, NaN stop, 2-process data parallel = 1 process."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from benchmark.engine import IdentitySampler, NonFiniteLoss, load_checkpoint, train
from benchmark.profiles import make_config
from benchmark.tasks import CADNetTask


def smoke_config(num_classes, **kw):
    return make_config("smoke", "cadnet", num_classes=num_classes, **kw)


def run(data, ckpt=None, epochs=3, task=None, **kw):
    task = task or CADNetTask(smoke_config(data.num_classes))
    hist = train(task, data, epochs=epochs, ids_per_batch=4, instances_per_id=4, seed=5,
                 checkpoint=ckpt, log_every=1, **kw)
    return task, hist


def test_identity_sampler_draws_p_ids_by_k_images():
    labels = torch.tensor([0, 0, 1, 1, 1, 1, 1, 2, 3, 3, 4, 4])
    s = IdentitySampler(labels, ids_per_batch=2, instances_per_id=3)
    assert s.steps == math.ceil(12 / 6)
    batches = s.batches(torch.Generator().manual_seed(0))
    assert len(batches) == 2
    for b in batches:
        ids = labels[b].view(2, 3)
        assert (ids == ids[:, :1]).all() and ids[0, 0] != ids[1, 0]
        # identity 1 has five images: three distinct ones are drawn
        for row in b.view(2, 3):
            if labels[row[0]] == 1:
                assert len(set(row.tolist())) == 3
    again = s.batches(torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))


def test_losses_fall_and_history_is_recorded(small_viper, tmp_path):
    task, hist = run(small_viper, tmp_path / "ck.pt", epochs=3)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    for key in ("id", "tri", "rec", "adv_df", "adv_di", "d_f", "d_i", "total"):
        assert all(math.isfinite(h[key]) for h in hist), key
    state = load_checkpoint(tmp_path / "ck.pt")
    assert state["epoch"] == 2 and len(state["history"]) == 3


def test_interrupted_then_resumed_equals_uninterrupted(small_viper, tmp_path):
    full, _ = run(small_viper, tmp_path / "full.pt", epochs=3)
    run(small_viper, tmp_path / "part.pt", epochs=1)  # "killed" after epoch 1
    resumed, hist = run(small_viper, tmp_path / "part.pt", epochs=3)  # new process state
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(small_viper, tmp_path):
    ck = tmp_path / "ck.pt"
    run(small_viper, ck, epochs=1)
    good = ck.read_bytes()

    class Poisoned(CADNetTask):
        def train_step(self, batch):
            out = super().train_step(batch)
            out["rec"] = out["rec"] * float("nan")
            return out

    with pytest.raises(NonFiniteLoss, match=r"loss rec became nan at epoch 2.*epoch 1\) is kept"):
        run(small_viper, ck, epochs=3, task=Poisoned(smoke_config(small_viper.num_classes)))
    assert ck.read_bytes() == good


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, port, data, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    task, _ = run(data, epochs=1, task=CADNetTask(smoke_config(data.num_classes)))
    if rank == 0:
        torch.save(task.model.state_dict(), out)
    dist.destroy_process_group()


def test_two_process_data_parallel_equals_one_process_on_the_same_global_batch(small_viper,
                                                                               tmp_path):
    """2 gloo processes, each with half the identities of a step and averaged gradients, give
    the weights of one process that averages the gradients of the same two halves."""
    out = tmp_path / "ddp.pt"
    mp.spawn(_ddp_worker, args=(_free_port(), small_viper, out), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)

    # reference: one process, the global batch as two micro-batches, gradients averaged
    import benchmark.engine as engine

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: same kernels, same summation order

    task = CADNetTask(smoke_config(small_viper.num_classes))
    from benchmark.losses.cadnet import cadnet_losses

    def micro_step(batch):
        halves = [type(batch)(*(t.view(2, -1, *t.shape[1:])[i] for t in
                                (batch.hr_images, batch.hr_pids, batch.lr_images, batch.lr_pids,
                                 batch.lr_targets))) for i in range(2)]
        task.model.train()
        outs = [cadnet_losses(task.model, h, task.config) for h in halves]
        opts = task.optimizers
        opts["model"].zero_grad(set_to_none=True)
        sum(g["total"] for g, _ in outs).div(2).backward()
        opts["model"].step()
        for key in ("d_f", "d_i"):
            opts[key].zero_grad(set_to_none=True)
            sum(d[key] for _, d in outs).div(2).backward()
            opts[key].step()
        return {k: v.detach() for k, v in outs[0][0].items()}

    task.train_step = micro_step
    try:
        engine.train(task, small_viper, epochs=1, ids_per_batch=4, instances_per_id=4, seed=5)
    finally:
        torch.set_num_threads(threads)
    # parameters agree; BN running statistics differ by design (they follow rank 0's half)
    params = dict(task.model.named_parameters())
    init = CADNetTask(smoke_config(small_viper.num_classes)).model.state_dict()
    for k, p in params.items():
        assert torch.allclose(ddp[k], p.detach(), atol=1e-5, rtol=1e-4), k
    assert sum(not torch.equal(init[k], p.detach()) for k, p in params.items()) > len(params) // 2
