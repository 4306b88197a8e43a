"""How a step is taken is read in one place from the optimizer, never from its name."""

import pytest
import torch

from babysit import UserError, make_optimizer
from babysit.train.step import Stepping, take_step, take_steps


def params():
    return [torch.zeros(3, requires_grad=True)]


def forced_lbfgs(ps):
    opt = torch.optim.LBFGS(ps)
    opt.force_minibatch = True
    return opt


@pytest.mark.parametrize("build,expected", [
    (lambda ps: make_optimizer("sgd", ps), Stepping()),
    (lambda ps: make_optimizer("momentum", ps), Stepping()),
    (lambda ps: make_optimizer("nesterov", ps), Stepping()),
    (lambda ps: make_optimizer("nesterov", ps, nesterov_form="lookahead"), Stepping(closure=True)),
    (lambda ps: make_optimizer("adam", ps), Stepping()),
    (lambda ps: make_optimizer("lbfgs", ps), Stepping(full_batch=True, closure=True)),
    (lambda ps: make_optimizer("lbfgs", ps, force_minibatch=True), Stepping(closure=True)),
    (lambda ps: make_optimizer("newton", ps), Stepping(full_batch=True, closure=True, create_graph=True)),
    (lambda ps: torch.optim.SGD(ps, lr=0.1), Stepping()),
    (forced_lbfgs, Stepping(closure=True)),
])
def test_stepping_is_read_from_the_optimizer(build, expected):
    assert Stepping.of(build(params())) == expected


def test_a_plain_torch_lbfgs_is_refused_on_minibatches():
    with pytest.raises(UserError, match="full-batch method"):
        Stepping.of(torch.optim.LBFGS(params()))


@pytest.mark.parametrize("rule", ["sgd", "nesterov", "lbfgs", "newton"])
def test_a_step_descends_a_quadratic_and_reports_the_loss_before_it(rule):
    """f(w) = |w - 1|^2 from w = 0: every kind of step goes downhill; the loss returned is f(0)."""
    w = torch.zeros(3, requires_grad=True)
    opt = make_optimizer(rule, [w], lr=0.1) if rule in ("sgd", "nesterov") else make_optimizer(rule, [w])
    seen = []

    def evaluate():
        return None, ((w - 1) ** 2).sum()

    _, loss = take_step(opt, Stepping.of(opt), evaluate, observe=lambda s, l: seen.append(w.grad.clone()))
    assert loss.item() == 3.0
    assert torch.equal(seen[0], torch.full((3,), -2.0))  # the gradient at w = 0, before the step
    assert ((w.detach() - 1) ** 2).sum() < 3.0


def test_take_steps_gives_the_same_batches_for_the_same_seed_and_stops_when_done():
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))

    def run(seed, done=None):
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 3)
        opt = make_optimizer("sgd", model.parameters(), lr=0.1)
        loss = lambda xb, yb: torch.nn.functional.cross_entropy(model(xb), yb)  # noqa: E731
        return take_steps(model, opt, loss, x, y, steps=12, batch_size=16, seed=seed, done=done)

    assert run(0) == run(0)
    assert run(0)[2] != run(1)[2]
    assert run(0, done=lambda step: step == 4)[:2] == (4, True)
