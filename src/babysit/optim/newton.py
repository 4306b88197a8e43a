"""Newton's method with the explicit Hessian: ``x -= lr * H^-1 grad f`` (lr = 1 is pure Newton).

The notes' point is that this is impossible beyond small models: the Hessian of a model with
n parameters has n**2 entries (a 1M-parameter network: 4 TB in float32). So :class:`Newton`
builds H only below a parameter-count limit and otherwise says how much memory H would take.
It is a full-batch method: :func:`babysit.fit` gives it one closure step per epoch over the
whole training set.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch

from ..errors import UserError

DEFAULT_MAX_PARAMS = 5000


def hessian_bytes(n: int, dtype: torch.dtype = torch.float32) -> int:
    return n * n * torch.empty((), dtype=dtype).element_size()


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


class Newton(torch.optim.Optimizer):
    """``x -= lr * (H + damping*I)^-1 grad``, with H the exact Hessian of the closure's loss.

    `step` needs a closure that computes the loss and calls ``loss.backward(create_graph=True)``
    (the gradients must carry their graph so they can be differentiated again; :func:`fit`
    does this because ``create_graph`` is set below). `damping` (default 0, the notes' plain
    Newton step) adds a multiple of the identity, which helps where H is near singular; a
    singular system falls back to the least-squares (pseudo-inverse) step.
    """

    full_batch = True  # fit(): one closure step per epoch on the whole training set
    create_graph = True  # fit(): the closure's backward keeps the graph for second derivatives

    def __init__(self, params, lr: float = 1.0, damping: float = 0.0,
                 max_params: int = DEFAULT_MAX_PARAMS):
        super().__init__(params, {"lr": lr, "damping": damping})
        self.max_params = max_params
        n = sum(p.numel() for g in self.param_groups for p in g["params"])
        if n > max_params:
            dtype = self.param_groups[0]["params"][0].dtype
            raise UserError(
                f"newton: the model has {n:,} parameters, so its explicit Hessian would take "
                f"{human_bytes(hessian_bytes(n, dtype))} ({n:,}^2 entries; the limit is "
                f"optim.newton_max_params = {max_params:,}): use lbfgs, or a smaller model")

    def step(self, closure: Callable | None = None):
        if closure is None:
            raise RuntimeError("Newton needs a closure that computes the loss and calls "
                               "loss.backward(create_graph=True)")
        with torch.enable_grad(), warnings.catch_warnings():
            # backward(create_graph=True) warns of the grad <-> graph reference cycle; we break it below.
            warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
            loss = closure()
        params = [p for g in self.param_groups for p in g["params"] if p.requires_grad]
        grads = [p.grad for p in params]
        if any(g is None or not g.requires_grad for g in grads):
            raise RuntimeError("Newton's closure must call loss.backward(create_graph=True)")
        flat_grad = torch.cat([g.reshape(-1) for g in grads])
        hessian = self._hessian(flat_grad, params)
        for p in params:  # drop the graph now (grad -> graph -> param is a reference cycle)
            p.grad = p.grad.detach()
        with torch.no_grad():
            direction = self._solve(hessian, flat_grad.detach())
            offset = 0
            for group in self.param_groups:
                for p in group["params"]:
                    if not p.requires_grad:
                        continue
                    n = p.numel()
                    p.add_(direction[offset:offset + n].view_as(p), alpha=-group["lr"])
                    offset += n
        return loss

    @staticmethod
    def _hessian(flat_grad: torch.Tensor, params: list[torch.Tensor], chunk: int = 256) -> torch.Tensor:
        """Row i of H is the gradient of (grad f)_i, taken `chunk` rows at a time."""
        n = flat_grad.numel()
        out = torch.empty(n, n, dtype=flat_grad.dtype, device=flat_grad.device)
        for start in range(0, n, chunk):
            rows = torch.eye(n, dtype=flat_grad.dtype, device=flat_grad.device)[start:start + chunk]
            blocks = _row_gradients(flat_grad, params, rows)
            out[start:start + len(rows)] = torch.cat(
                [(b if b is not None else torch.zeros(len(rows), p.numel(), dtype=out.dtype,
                                                      device=out.device)).reshape(len(rows), -1)
                 for b, p in zip(blocks, params)], dim=1)
        return out

    def _solve(self, hessian: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        damping = self.param_groups[0]["damping"]
        if damping:
            hessian = hessian + damping * torch.eye(len(grad), dtype=hessian.dtype, device=hessian.device)
        try:
            return torch.linalg.solve(hessian, grad)
        except RuntimeError:  # singular: the minimum-norm least-squares step
            return torch.linalg.pinv(hessian, hermitian=True) @ grad


def _row_gradients(flat_grad: torch.Tensor, params: list[torch.Tensor],
                   rows: torch.Tensor) -> list[torch.Tensor | None]:
    """For each parameter, the stacked gradients of ``row . flat_grad`` for every row.

    One batched backward pass (vmap) is much faster than a pass per row; the chunked rows
    bound its memory. Ops without a batching rule fall back to a pass per row.
    """
    try:
        return list(torch.autograd.grad(flat_grad, params, grad_outputs=rows, retain_graph=True,
                                        is_grads_batched=True, allow_unused=True))
    except RuntimeError:
        per_row = [torch.autograd.grad(flat_grad, params, grad_outputs=row, retain_graph=True,
                                       allow_unused=True) for row in rows]
        return [None if per_row[0][j] is None else torch.stack([r[j] for r in per_row])
                for j in range(len(params))]
