"""Gradients: per-layer distributions of the gradient flowing back, and per-tensor norms.

Two views, both taken on the sampled steps only and kept on the device:

* the gradient of the loss with respect to each activation layer's output (a tensor hook
  on the output the activation probe saw) — its histogram shows whether the backward signal
  shrinks layer by layer (vanishing) or grows (exploding);
* the root-mean-square gradient of every parameter tensor, ``||g|| / sqrt(numel)``, read just
  before the optimizer step — comparable across layers of different sizes.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from .histograms import NOT_ON_HOST, histogram, host_summary

try:
    from ._kernels import square_sums
except ImportError:  # not compiled here: torch._foreach_norm
    square_sums = None


class GradientProbe:
    def __init__(self, params: list[torch.Tensor], bins: int = 40):
        self.params, self.bins = params, bins
        self.sizes = [float(p.numel()) ** 0.5 for p in params]
        self.pending_layers: list = []  # (step, layer name, {stat: device tensor})
        self.pending_norms: list = []  # (step, per-tensor gradient norms: 0-d device tensors,
        #                                or on a CPU an array of their squares)
        self.step = 0

    def watch_output(self, name: str, kind: str, output: torch.Tensor) -> None:
        """Histogram the gradient that reaches `output` in the coming backward pass: a hook
        before the node that made it runs, with the gradients of that node's outputs (about
        half the cost of a tensor hook, which wraps the same thing in Python)."""
        node = output.grad_fn
        if node is not None:
            node.register_prehook(partial(self._before_node, self.step, name, output.output_nr))

    def _before_node(self, step: int, name: str, index: int, grad_outputs: tuple) -> None:
        if index < len(grad_outputs) and grad_outputs[index] is not None:
            self.summarize(step, name, grad_outputs[index])

    def summarize(self, step: int, name: str, grad: torch.Tensor) -> None:
        """The gradient's histogram and RMS: host numbers from one kernel call on a CPU, else
        device tensors (the RMS read back as ``norm / sqrt(n)``)."""
        try:
            counts, low, high, (_, _, squares) = host_summary(grad.detach().numpy(), "gradient", self.bins)
            rms = (squares ** 0.5, grad.numel() ** 0.5)
        except NOT_ON_HOST:
            counts, low, high = histogram(grad, "gradient", self.bins)
            rms = (torch.linalg.vector_norm(grad.detach()), grad.numel() ** 0.5)
        self.pending_layers.append((step, name, {"counts": counts, "low": low, "high": high, "rms": rms}))

    def record_norms(self, step: int) -> None:
        """RMS gradient of every parameter (0 where a parameter got no gradient this step):
        on a CPU the squared norms as host numbers from one kernel call, else the norms as
        device tensors (both divided by sqrt(n) when read)."""
        grads = [p.grad for p in self.params]
        if square_sums is not None:
            try:
                squares = np.empty(len(grads))
                square_sums([g if g is None else g.numpy() for g in grads], squares)
                self.pending_norms.append((step, squares))
                return
            except NOT_ON_HOST:
                pass
        grads = [g if g is not None else torch.zeros((), device=p.device, dtype=p.dtype)
                 for g, p in zip(grads, self.params)]
        self.pending_norms.append((step, torch._foreach_norm(grads)))

    def drain(self) -> tuple[list, list]:
        layers, norms = self.pending_layers, self.pending_norms
        self.pending_layers, self.pending_norms = [], []
        return layers, norms
