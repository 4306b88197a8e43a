"""A softmax loss whose hand-written backward forgets a factor: the bug a gradient check exists for."""

import torch
import torch.nn.functional as F


class _HalfGradientSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores, targets):
        ctx.save_for_backward(scores, targets)
        return F.cross_entropy(scores, targets)

    @staticmethod
    def backward(ctx, grad):
        scores, targets = ctx.saved_tensors
        dscores = torch.softmax(scores, dim=1)
        dscores[torch.arange(len(targets)), targets] -= 1
        return 0.5 * grad * dscores / len(targets), None  # the bug: 0.5 *


def half_gradient_softmax(scores, targets):
    return _HalfGradientSoftmax.apply(scores, targets)
