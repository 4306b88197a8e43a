"""Reading device tensors back to the host in batches: one transfer for many small tensors.

The instruments leave their numbers on the device as they go (no host-device synchronization
per step) and the monitor reads them all at once every few steps. On a GPU each ``.tolist()``
would wait for the device; concatenating first makes it a single wait and a single copy.
"""

from __future__ import annotations

import torch


def read_back(tensors: list[torch.Tensor]) -> list[list[float] | float]:
    """The values of `tensors`, in order: a float for a 0-d tensor, a flat list otherwise.

    Scalars (most of what the instruments leave: norms, fractions, losses) are stacked in one
    op, everything else concatenated in another; then one copy to the host each.
    """
    if not tensors:
        return []
    scalars = [t for t in tensors if t.dim() == 0]
    vectors = [t for t in tensors if t.dim() != 0]
    scalar_values = iter(_stack(scalars).tolist()) if scalars else iter(())
    flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in vectors]).tolist() if vectors else []
    out, at = [], 0
    for t in tensors:
        if t.dim() == 0:
            out.append(next(scalar_values))
        else:
            out.append(flat[at:at + t.numel()])
            at += t.numel()
    return out


def _stack(scalars: list[torch.Tensor]) -> torch.Tensor:
    dtype = scalars[0].dtype
    if all(t.dtype == dtype and t.device == scalars[0].device for t in scalars):
        return torch.stack(scalars).detach().to(torch.float64)
    return torch.stack([t.detach().to(device=scalars[0].device, dtype=torch.float64) for t in scalars])
