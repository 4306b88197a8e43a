"""Gradients: per-layer distributions of the gradient flowing back, and per-tensor norms.

Two views, both taken on the sampled steps only and kept on the device:

* the gradient of the loss with respect to each activation layer's output (a hook on the
  autograd node that made the output the activation probe saw) — its histogram shows whether
  the backward signal shrinks layer by layer (vanishing) or grows (exploding);
* the root-mean-square gradient of every parameter tensor, ``||g|| / sqrt(numel)``, read just
  before the optimizer step — comparable across layers of different sizes.
"""

from __future__ import annotations

from functools import partial

import torch

from .histograms import histogram
from .records import pack


class GradientProbe:
    def __init__(self, params: list[torch.Tensor], bins: int, pending: list):
        self.params, self.bins, self.pending = params, bins, pending  # the monitor's, see records.pack
        self.sizes = [float(p.numel()) ** 0.5 for p in params]

    def watch_output(self, step: int, name: str, output: torch.Tensor) -> None:
        """Histogram the gradient that reaches `output` in the coming backward pass: a hook
        that runs before the node that made it, with the gradients of that node's outputs."""
        node = output.grad_fn
        if node is not None:
            node.register_prehook(partial(self._before_node, step, name, output.output_nr))

    def _before_node(self, step: int, name: str, index: int, grad_outputs: tuple) -> None:
        grad = grad_outputs[index] if index < len(grad_outputs) else None
        if grad is not None:
            grad = grad.detach()
            counts, low, high = histogram(grad, "gradient", self.bins)
            rms = torch.linalg.vector_norm(grad) / grad.numel() ** 0.5
            self.pending.append(("gradients", *pack({"step": step, "layer": name}, {
                "low": low, "high": high, "counts": counts, "rms": rms})))

    def record_norms(self, step: int) -> None:
        """RMS gradient ``||g|| / sqrt(n)`` of every parameter (0 where one got no gradient
        this step), on the device."""
        grads = [p.grad if p.grad is not None else torch.zeros((), device=p.device, dtype=p.dtype)
                 for p in self.params]
        rms = torch._foreach_div(torch._foreach_norm(grads), self.sizes)
        self.pending.append(("grad_norms", rms, lambda values: {"step": step, "rms": values}))
