"""SwitchedHook: a hook put in and taken out of a module's or an optimizer's hook dict."""

import torch
from torch import nn

from babysit.watch.switch import SwitchedHook


def test_a_switched_forward_hook_runs_only_while_on_and_leaves_the_module_bare():
    layer, seen = nn.ReLU(), []
    hook = SwitchedHook(layer.register_forward_hook, lambda m, i, out: seen.append(out.sum().item()))
    x = torch.tensor([-1.0, 2.0])
    layer(x)
    assert seen == [] and not layer._forward_hooks  # made, not on
    for _ in range(3):
        hook.on()
        hook.on()  # twice: still one hook
        layer(x)
        hook.off()
        hook.off()
        assert not layer._forward_hooks  # the module's fast path again
        layer(x)
    assert seen == [2.0, 2.0, 2.0]


def test_switched_on_it_runs_after_the_hooks_registered_before():
    layer, order = nn.ReLU(), []
    switched = SwitchedHook(layer.register_forward_hook, lambda *a: order.append("switched"))
    switched.on()
    switched.off()
    layer.register_forward_hook(lambda *a: order.append("user's"))
    switched.on()
    layer(torch.ones(2))
    assert order == ["user's", "switched"]


def test_an_optimizer_pre_hook_switches_too():
    w = nn.Parameter(torch.ones(2))
    optimizer, calls = torch.optim.SGD([w], lr=0.1), []
    hook = SwitchedHook(optimizer.register_step_pre_hook, lambda *a: calls.append(1))
    w.grad = torch.ones(2)
    hook.on()
    optimizer.step()
    hook.off()
    optimizer.step()
    assert calls == [1] and not optimizer._optimizer_step_pre_hooks


def test_a_handle_of_another_kind_is_removed_the_documented_way():
    class Handle:  # what a registration returning no RemovableHandle gives
        def __init__(self, hooks):
            self.hooks = hooks

        def remove(self):
            self.hooks.remove(fn)
    hooks = []

    def register(fn):
        hooks.append(fn)
        return Handle(hooks)
    fn = object()
    hook = SwitchedHook(register, fn)
    hook.on()
    assert hooks == [fn]
    hook.off()
    assert hooks == []
    hook.on()
    assert hooks == [fn]
