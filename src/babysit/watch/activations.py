"""Per-layer activation distributions, from forward hooks on the activation modules.

The notes: plot activation histograms for every layer; tanh units should spread over [-1, 1],
not sit at 0 or at +-1. Two summaries turn the histograms into numbers a rule can judge:

* saturated fraction (tanh, sigmoid): share of outputs within 0.01 of a bound, where the
  local gradient ``1 - a^2`` (tanh) or ``a (1 - a)`` (sigmoid) is below ~2%;
* near-zero fraction (tanh, and the other zero-centred squashes): share of outputs with
  ``|a| < 0.1``, where the unit is nearly linear (``tanh a ~ a``): all there, the weights are
  too small and the signal shrinks layer by layer;
* dead units (ReLU): units (features, or channels of a conv layer) that gave 0 on every
  example of every sampled batch in the window — they receive no gradient and never recover.

The hooks are registered (``register_forward_hook``) only for the sampled steps ("armed") and
removed right after, so the other steps run the bare model. Everything is computed on the
device and read back in batches by the monitor.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.layers import Maxout
from .histograms import FIXED_RANGES as BOUNDS, histogram
from .records import pack

# Activation module type -> kind (matched along the class hierarchy: ReLU6 is a Hardtanh).
KINDS: dict[type, str] = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.LeakyReLU: "leaky_relu",
                          nn.PReLU: "leaky_relu", nn.ELU: "elu", nn.SELU: "elu", nn.CELU: "elu",
                          nn.GELU: "gelu", nn.SiLU: "silu", nn.Mish: "silu", nn.Softplus: "softplus",
                          nn.Tanh: "tanh", nn.Hardtanh: "hardtanh", nn.Softsign: "softsign",
                          nn.Sigmoid: "sigmoid", nn.Hardsigmoid: "hardsigmoid", Maxout: "maxout"}
SATURATION_MARGIN = 0.01
NEAR_ZERO = 0.1  # |a| below this: a zero-centred squash in its linear regime (tanh slope > 0.99)
DYING = {"relu", "relu6"}  # units whose output is exactly 0 over a whole region
# the saturated share counts outputs within 1% of the range from a bound (|a - center| >= edge)
EDGES = {kind: (hi - lo) / 2 * (1 - 2 * SATURATION_MARGIN) for kind, (lo, hi) in BOUNDS.items()}


def kind_of(module: nn.Module) -> str | None:
    for cls in type(module).__mro__:
        if cls in KINDS:
            return KINDS[cls]
    return None


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """``(name, module, kind)`` of every activation module, in registration (forward) order."""
    return [(name or "model", m, kind) for name, m in model.named_modules()
            if (kind := kind_of(m)) is not None]


class ActivationProbe:
    """Hooks on the activation layers of `model` that sample one training forward when armed.

    `on_output(step, name, output)`, when given, is called with each sampled output that
    requires grad, so the gradient probe can watch the gradient flowing back into it.
    """

    def __init__(self, model: nn.Module, bins: int, pending: list, on_output=None):
        self.model, self.bins, self.on_output = model, bins, on_output
        self.layers = activation_layers(model)
        self.pending = pending  # the monitor's: ("activations", device tensors, fill), see records.pack
        self.input_shape: tuple | None = None
        self._step = 0
        self._handles: list = []
        # the window since the last epoch end, per layer: units ever active (ReLU), saturated shares
        self._active: dict[str, torch.Tensor] = {}
        self._shares: dict[str, dict[str, list[torch.Tensor]]] = {}  # "saturated"/"near_zero" -> layer -> shares

    def arm(self, step: int) -> None:
        """Sample the next training forward pass (recorded as optimizer step `step`)."""
        if self._handles:  # armed already
            return
        self._step = step
        self._handles = [module.register_forward_hook(self._hook(name, kind)) for name, module, kind in self.layers]
        if self.input_shape is None:
            self._handles.append(self.model.register_forward_pre_hook(self._see_input))

    def disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _see_input(self, module, args) -> None:
        if args and isinstance(args[0], torch.Tensor):
            self.input_shape = tuple(args[0].shape[1:])

    def _hook(self, name: str, kind: str):
        def hook(module: nn.Module, inputs, output) -> None:
            # Only training forwards: validation passes (eval mode or no_grad) are not sampled.
            if not (module.training and torch.is_grad_enabled()) or not isinstance(output, torch.Tensor):
                return
            self.pending.append(("activations", *pack({"step": self._step, "layer": name, "kind": kind},
                                                      self.summarize(name, kind, output))))
            if self.on_output is not None and output.requires_grad:
                self.on_output(self._step, name, output)
        return hook

    def summarize(self, name: str, kind: str, a: torch.Tensor) -> dict:
        """The histogram and the layer's summaries, as device tensors (a few ops: they run on a
        sampled step only); a fixed histogram range as floats."""
        a = a.detach()
        counts, low, high = histogram(a, kind, self.bins)
        stats: dict = {"low": low, "high": high, "counts": counts}
        if kind in BOUNDS:
            center = sum(BOUNDS[kind]) / 2
            near = (a.abs() if center == 0 else (a - center).abs()) >= EDGES[kind]
            stats["saturated"] = near.sum(dtype=torch.float64) / a.numel()
            if center == 0:
                stats["near_zero"] = (a.abs() < NEAR_ZERO).sum(dtype=torch.float64) / a.numel()
            for key in ("saturated", "near_zero"):
                if key in stats:
                    self._shares.setdefault(key, {}).setdefault(name, []).append(stats[key])
        if kind in DYING and a.dim() >= 2:
            # outputs are >= 0, so sign() is 1 where a unit fired (float64: exact for any size)
            stats["zero_fraction"] = 1 - torch.sign(a).sum(dtype=torch.float64) / a.numel()
            # a unit is a feature (N, F) or a channel (N, C, ...): active if > 0 anywhere, that
            # is (outputs >= 0) if its sum is > 0
            active = a.sum(dim=[d for d in range(a.dim()) if d != 1]) > 0
            self._active[name] = active if name not in self._active else self._active[name].logical_or_(active)
        return stats

    def end_window(self, record: dict) -> tuple:
        """The epoch's unit statistics over its sampled steps, for the epoch's `record`: per
        ReLU layer the share of units never active ("dead"), per tanh/sigmoid layer the mean
        saturated share (and, zero-centred ones, the mean near-zero share), as ``(device
        tensors, fill)`` (see :func:`pack`; None when no step was sampled). Starts a new window."""
        found = [(key, name, torch.stack(shares).mean()) for key, layers in self._shares.items()
                 for name, shares in layers.items()]
        found += [("dead", name, 1 - active.float().mean()) for name, active in self._active.items()]
        self._active, self._shares = {}, {}
        if not found:
            return None, lambda values: record

        def fill(values: list[float]) -> dict:
            for (key, name, _), value in zip(found, values):
                record.setdefault(key, {})[name] = value
            return record
        return [share for _, _, share in found], fill
