"""Reading device tensors back to the host in batches: one transfer for many small tensors.

The instruments leave their numbers on the device as they go (no host-device synchronization
per step) and the monitor reads them all at once every few steps. On a GPU each ``.tolist()``
would wait for the device; concatenating first makes it a single wait and a single copy.
"""

from __future__ import annotations

import torch


def read_back(tensors: list[torch.Tensor]) -> list[list[float] | float]:
    """The values of `tensors`, in order: a float for a 0-d tensor, a flat list otherwise."""
    if not tensors:
        return []
    flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors]).tolist()
    out, at = [], 0
    for t in tensors:
        n = t.numel()
        out.append(flat[at] if t.dim() == 0 else flat[at:at + n])
        at += n
    return out
