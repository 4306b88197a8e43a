"""Layers with hand-written backward passes: correct ones, and ones with the planted bugs the
gradient check must catch (a wrong bias gradient, a missing factor, a transposed weight
gradient, a regularization gradient off by a factor)."""

import torch
from torch import nn


class LinearFn(torch.autograd.Function):
    """y = x W^T + b with a backward that can carry one planted bug."""

    @staticmethod
    def forward(ctx, x, weight, bias, bug):
        ctx.save_for_backward(x, weight)
        ctx.bug = bug
        return x @ weight.t() + bias

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad @ weight
        grad_w = grad.t() @ x
        grad_b = grad.sum(0)
        if ctx.bug == "bias":
            grad_b = grad.mean(0)  # forgot that every example adds to the bias gradient
        elif ctx.bug == "transposed":
            grad_w = (grad.t() @ x).t()  # shapes agree for a square layer; values do not
        return grad_x, grad_w, grad_b, None


class SquareFn(torch.autograd.Function):
    """y = x**2 with a backward that may forget the factor 2."""

    @staticmethod
    def forward(ctx, x, bug):
        ctx.save_for_backward(x)
        ctx.bug = bug
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        factor = 1.0 if ctx.bug == "factor" else 2.0
        return factor * x * grad, None


class L2Fn(torch.autograd.Function):
    """R = 0.5 * reg * sum(W**2), dR/dW = reg * W — or twice that with the planted bug."""

    @staticmethod
    def forward(ctx, weight, reg, bug):
        ctx.save_for_backward(weight)
        ctx.reg, ctx.bug = reg, bug
        return 0.5 * reg * (weight * weight).sum()

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        factor = 2.0 if ctx.bug == "reg" else 1.0
        return grad * factor * ctx.reg * weight, None, None


class HandLinear(nn.Module):
    def __init__(self, n_in, n_out, bug=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / n_in ** 0.5)
        self.bias = nn.Parameter(torch.randn(n_out) * 0.1)
        self.bug = bug

    def forward(self, x):
        return LinearFn.apply(x, self.weight, self.bias, self.bug)


class HandNet(nn.Module):
    """Square hidden layer (so a transposed gradient fits), a squared-activation, a classifier."""

    def __init__(self, bug=None, width=8):
        super().__init__()
        self.inp = nn.Linear(6, width)
        self.hidden = HandLinear(width, width, bug if bug in ("bias", "transposed") else None)
        self.out = nn.Linear(width, 3)
        self.bug = bug

    def forward(self, x):
        h = SquareFn.apply(self.hidden(torch.tanh(self.inp(x))), self.bug)
        return self.out(h)


def l2(bug=None, reg=0.1):
    return lambda model: sum(L2Fn.apply(p, reg, bug) for p in model.parameters() if p.dim() > 1)


class HalfReLU(torch.autograd.Function):
    """relu with a planted bug: the backward passes half the gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 0.5 * grad * (x > 0)
