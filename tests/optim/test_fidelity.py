"""Each rule's trajectory against a direct NumPy transcription of the notes' formula.

The learning rate changes every few steps (where torch's SGD, with lr outside the velocity,
would already differ), on a non-quadratic objective over two parameter tensors, in float64.
"""

import numpy as np
import pytest
import torch

from babysit import make_optimizer

STEPS = 30
SHAPES = [(3, 4), (5,)]
A = [np.linspace(0.5, 2.0, 12).reshape(3, 4), np.linspace(1.0, 3.0, 5)]


def lr_at(step: int, base: float) -> float:
    """A learning rate that changes every 4 steps (up and down)."""
    return base * (1.0, 0.5, 2.0, 0.25)[(step // 4) % 4]


def grad_np(xs):
    """Gradient of f(x) = sum(a*x**2 + sin(3x)) per tensor: 2*a*x + 3*cos(3x)."""
    return [2 * a * x + 3 * np.cos(3 * x) for a, x in zip(A, xs)]


def f_torch(params):
    return sum((torch.tensor(a) * p ** 2 + torch.sin(3 * p)).sum() for a, p in zip(A, params))


def start():
    rng = np.random.default_rng(0)
    return [rng.normal(size=s) for s in SHAPES]


def run_torch(name, base_lr, **hp):
    params = [torch.tensor(x, requires_grad=True) for x in start()]
    opt = make_optimizer(name, params, lr=base_lr, **hp)
    closure_needed = getattr(opt, "needs_closure", False)

    def closure():
        opt.zero_grad()
        loss = f_torch(params)
        loss.backward()
        return loss

    path = []
    for t in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = lr_at(t, base_lr)
        if closure_needed:
            opt.step(closure)
        else:
            closure()
            opt.step()
        path.append(np.concatenate([p.detach().numpy().ravel() for p in params]))
    return np.array(path)


def run_numpy(update, base_lr):
    xs = start()
    cache = [dict() for _ in xs]
    path = []
    for t in range(STEPS):
        lr = lr_at(t, base_lr)
        xs = [update(x, dx, lr, c, t + 1, i) for i, (x, dx, c) in enumerate(zip(xs, grad_np(xs), cache))]
        path.append(np.concatenate([x.ravel() for x in xs]))
    return np.array(path)


def sgd(x, dx, lr, c, t, i):
    return x + -lr * dx


def momentum(mu):
    def update(x, dx, lr, c, t, i):
        v = c.get("v", np.zeros_like(x))
        v = mu * v - lr * dx
        c["v"] = v
        return x + v
    return update


def nesterov(mu):
    def update(x, dx, lr, c, t, i):
        v = c.get("v", np.zeros_like(x))
        v_prev = v
        v = mu * v - lr * dx
        c["v"] = v
        return x + (-mu * v_prev + (1 + mu) * v)
    return update


def adagrad(eps):
    def update(x, dx, lr, c, t, i):
        c["cache"] = c.get("cache", np.zeros_like(x)) + dx ** 2
        return x + -lr * dx / (np.sqrt(c["cache"]) + eps)
    return update


def rmsprop(decay, eps):
    def update(x, dx, lr, c, t, i):
        c["cache"] = decay * c.get("cache", np.zeros_like(x)) + (1 - decay) * dx ** 2
        return x + -lr * dx / (np.sqrt(c["cache"]) + eps)
    return update


def adam(beta1, beta2, eps):
    def update(x, dx, lr, c, t, i):
        c["m"] = beta1 * c.get("m", np.zeros_like(x)) + (1 - beta1) * dx
        c["v"] = beta2 * c.get("v", np.zeros_like(x)) + (1 - beta2) * dx ** 2
        mt = c["m"] / (1 - beta1 ** t)
        vt = c["v"] / (1 - beta2 ** t)
        return x + -lr * mt / (np.sqrt(vt) + eps)
    return update


CASES = [
    ("sgd", {}, 0.05, sgd),
    ("momentum", {}, 0.02, momentum(0.9)),  # the notes' default mu
    ("momentum", {"mu": 0.5}, 0.05, momentum(0.5)),
    ("nesterov", {}, 0.02, nesterov(0.9)),
    ("nesterov", {"mu": 0.99}, 0.01, nesterov(0.99)),
    ("adagrad", {}, 0.1, adagrad(1e-8)),  # the notes' eps
    ("adagrad", {"eps": 1e-4}, 0.1, adagrad(1e-4)),
    ("rmsprop", {}, 0.01, rmsprop(0.99, 1e-8)),  # the notes' decay 0.99
    ("rmsprop", {"decay": 0.9}, 0.01, rmsprop(0.9, 1e-8)),
    ("adam", {}, 0.05, adam(0.9, 0.999, 1e-8)),  # the notes' defaults
    ("adam", {"beta1": 0.5, "beta2": 0.99, "eps": 1e-6}, 0.05, adam(0.5, 0.99, 1e-6)),
]


@pytest.mark.parametrize("name,hp,lr,update", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_rule_follows_the_notes(name, hp, lr, update):
    ours, notes = run_torch(name, lr, **hp), run_numpy(update, lr)
    assert np.abs(ours - notes).max() <= 1e-10
    assert np.abs(ours[-1] - ours[0]).max() > 1e-2  # it moved: the comparison is not vacuous


def test_nesterov_lookahead_form_takes_the_gradient_at_x_plus_mu_v():
    mu, base = 0.9, 0.02
    ours = run_torch("nesterov", base, nesterov_form="lookahead")
    xs, vs, path = start(), [np.zeros(s) for s in SHAPES], []
    for t in range(STEPS):
        lr = lr_at(t, base)
        ahead = [x + mu * v for x, v in zip(xs, vs)]
        vs = [mu * v - lr * dx for v, dx in zip(vs, grad_np(ahead))]
        xs = [x + v for x, v in zip(xs, vs)]
        path.append(np.concatenate([x.ravel() for x in xs]))
    assert np.abs(ours - np.array(path)).max() <= 1e-10


def test_both_nesterov_forms_visit_the_same_lookahead_points():
    """The rewritten form's parameters are the lookahead form's x + mu*v (the notes' remark)."""
    mu, base = 0.9, 0.02
    rewritten = run_numpy(nesterov(mu), base)
    xs, vs, ahead_path = start(), [np.zeros(s) for s in SHAPES], []
    for t in range(STEPS):
        lr = lr_at(t, base)
        vs = [mu * v - lr * dx for v, dx in zip(vs, grad_np([x + mu * v for x, v in zip(xs, vs)]))]
        xs = [x + v for x, v in zip(xs, vs)]
        ahead_path.append(np.concatenate([(x + mu * v).ravel() for x, v in zip(xs, vs)]))
    assert np.abs(rewritten - np.array(ahead_path)).max() <= 1e-10


def test_torch_sgd_differs_once_lr_changes():
    """Why momentum is our own: torch keeps lr outside the velocity."""
    params = [torch.tensor(x, requires_grad=True) for x in start()]
    opt = torch.optim.SGD(params, lr=0.02, momentum=0.9)
    path = []
    for t in range(STEPS):
        opt.param_groups[0]["lr"] = lr_at(t, 0.02)
        opt.zero_grad()
        f_torch(params).backward()
        opt.step()
        path.append(np.concatenate([p.detach().numpy().ravel() for p in params]))
    assert np.abs(np.array(path) - run_numpy(momentum(0.9), 0.02)).max() > 1e-3


def test_defaults_are_the_notes():
    p = [torch.zeros(2, requires_grad=True)]
    assert make_optimizer("momentum", p).param_groups[0]["mu"] == 0.9
    assert make_optimizer("nesterov", p).param_groups[0]["mu"] == 0.9
    ada = make_optimizer("adagrad", p).param_groups[0]
    assert ada["eps"] == 1e-8 and ada["initial_accumulator_value"] == 0 and ada["lr_decay"] == 0
    rms = make_optimizer("rmsprop", p).param_groups[0]
    assert rms["alpha"] == 0.99 and not rms["centered"] and rms["momentum"] == 0
    adam = make_optimizer("adam", p).param_groups[0]
    assert adam["betas"] == (0.9, 0.999) and adam["eps"] == 1e-8
    assert isinstance(make_optimizer("lbfgs", p), torch.optim.LBFGS)
    assert make_optimizer("lbfgs", p).param_groups[0]["line_search_fn"] == "strong_wolfe"


def test_velocity_and_state_dict_round_trip():
    """The stored (s, e) form gives back the notes' v, and a reloaded optimizer continues exactly."""
    mu, lr = 0.9, 0.03
    ours = run_torch("momentum", lr)
    xs = start()
    params = [torch.tensor(x, requires_grad=True) for x in xs]
    opt = make_optimizer("momentum", params, lr=lr)
    v = [np.zeros(s) for s in SHAPES]
    for t in range(STEPS):
        if t == STEPS // 2:  # swap in a fresh optimizer loaded from the state dict
            state = opt.state_dict()
            opt = make_optimizer("momentum", params, lr=lr)
            opt.load_state_dict(state)
        opt.param_groups[0]["lr"] = lr_at(t, lr)
        opt.zero_grad()
        f_torch(params).backward()
        v = [mu * vi - lr_at(t, lr) * dx for vi, dx in zip(v, grad_np([p.detach().numpy() for p in params]))]
        opt.step()
    final = np.concatenate([p.detach().numpy().ravel() for p in params])
    assert np.abs(final - ours[-1]).max() <= 1e-10
    for p, vi in zip(params, v):
        assert np.abs(opt.velocity(p).numpy() - vi).max() <= 1e-10


def test_a_parameter_without_gradient_keeps_its_velocity():
    """A parameter skipped in one step (grad None) neither moves by v nor decays it, as in torch."""
    a = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    opt = make_optimizer("nesterov", [a, b], lr=0.1, mu=0.5)
    va, vb = np.zeros(2), np.zeros(1)
    xa, xb = a.detach().numpy().copy(), b.detach().numpy().copy()
    for t in range(6):
        opt.zero_grad()
        use_b = t != 2
        ((a ** 2).sum() + ((b ** 2).sum() if use_b else 0)).backward()
        opt.step()
        va_prev, va = va, 0.5 * va - 0.1 * 2 * xa
        xa = xa - 0.5 * va_prev + 1.5 * va
        if use_b:
            vb_prev, vb = vb, 0.5 * vb - 0.1 * 2 * xb
            xb = xb - 0.5 * vb_prev + 1.5 * vb
    assert np.abs(a.detach().numpy() - xa).max() <= 1e-12
    assert np.abs(b.detach().numpy() - xb).max() <= 1e-12
