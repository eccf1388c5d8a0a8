"""``train --profile-ops``: where a training step's CPU time goes, by op kind
(convolutions, matrix products, everything else), from ``torch.profiler``."""

from __future__ import annotations


def _op_kind(name: str) -> str:
    n = name.lower()
    if "conv" in n:  # aten::convolution, aten::_convolution, aten::mkldnn_convolution,
        return "conv"  # aten::convolution_backward, ConvolutionBackward0, slow_conv ...
    if n.split("::")[-1] in ("mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "addmv",
                             "mv", "dot") or "mmbackward" in n or "addmmbackward" in n:
        return "matmul"
    return "other"


def profile_ops(task, batch, steps: int = 2, top: int = 8) -> dict[str, float]:
    """Shares of self CPU time by op kind over ``steps`` train steps (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            task.train_step(batch)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    shares = {"conv": 0.0, "matmul": 0.0, "other": 0.0}
    for e in events:
        shares[_op_kind(e.key)] += e.self_cpu_time_total / total
    print(f"  torch.profiler over {steps} steps, self CPU time: convolution ops "
          f"{shares['conv']:.1%}, matmul {shares['matmul']:.1%}, everything else "
          f"{shares['other']:.1%}; top ops:")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
        print(f"    {e.self_cpu_time_total / total:6.1%}  {e.key}  ({_op_kind(e.key)})")
    return shares
