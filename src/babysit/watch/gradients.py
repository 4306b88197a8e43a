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

import torch

from .histograms import NOT_ON_HOST, histogram, host_summary


class GradientProbe:
    def __init__(self, params: list[torch.Tensor], bins: int = 40):
        self.params, self.bins = params, bins
        self.sizes = [float(p.numel()) ** 0.5 for p in params]
        self.pending_layers: list = []  # (step, layer name, {stat: device tensor})
        self.pending_norms: list = []  # (step, per-tensor gradient norms: 0-d device tensors)
        self.step = 0

    def watch_output(self, name: str, kind: str, output: torch.Tensor) -> None:
        """Histogram the gradient that reaches `output` in the coming backward pass."""
        output.register_hook(partial(self.summarize, self.step, name))

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
        """RMS gradient of every parameter (0 where a parameter got no gradient this step)."""
        grads = [p.grad if p.grad is not None else torch.zeros((), device=p.device, dtype=p.dtype)
                 for p in self.params]
        self.pending_norms.append((step, torch._foreach_norm(grads)))  # divided by sqrt(n) when read

    def drain(self) -> tuple[list, list]:
        layers, norms = self.pending_layers, self.pending_norms
        self.pending_layers, self.pending_norms = [], []
        return layers, norms
