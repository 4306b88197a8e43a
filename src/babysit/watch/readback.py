"""Reading device tensors back to the host in batches: one transfer for many small tensors.

The instruments leave their numbers on the device as they go (no host-device synchronization
per step) and the monitor reads them all at once every few steps. On a GPU each ``.tolist()``
would wait for the device; concatenating first makes it a single wait and a single copy.
"""

from __future__ import annotations

import torch


def read_back(tensors: list[torch.Tensor]) -> list[list[float] | float]:
    """The values of `tensors`, in order: a float for a 0-d tensor, a flat list otherwise.

    Scalars (most of what the instruments leave: norms, counts, losses) are stacked in one op
    per dtype, everything else concatenated in one more; then one copy to the host each.
    """
    if not tensors:
        return []
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        key = (t.ndim == 0, t.dtype, t.device)
        where = groups.get(key)
        if where is None:
            groups[key] = [i]
        else:
            where.append(i)
    out: list = [None] * len(tensors)
    for (scalar, dtype, _), where in groups.items():
        exact = dtype.is_floating_point  # .tolist() gives Python floats already; ints need float()
        if scalar:
            values = torch.stack([tensors[i] for i in where]).detach().tolist()
            if not exact:
                values = [float(v) for v in values]
            for i, v in zip(where, values):
                out[i] = v
        else:
            flat = torch.cat([tensors[i].detach().reshape(-1) for i in where]).tolist()
            if not exact:
                flat = [float(v) for v in flat]
            at = 0
            for i in where:
                n = tensors[i].numel()
                out[i] = flat[at:at + n]
                at += n
    return out
