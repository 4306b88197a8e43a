"""Bad input: one clear line naming the fix, exit code 2 from the CLI, no traceback."""

import pytest
import torch

from babysit import UserError, cli, make_optimizer
from babysit.optim import OPTIMIZERS
from babysit.train import schedule_callbacks
from babysit.config import load_config
from tests.digits import digits_args


def params():
    return [torch.zeros(3, requires_grad=True)]


def test_names_are_exported():
    assert OPTIMIZERS == ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "lbfgs", "newton")


@pytest.mark.parametrize("call,expected", [
    (lambda: make_optimizer("adamm", params()), "did you mean 'adam'"),
    (lambda: make_optimizer("sgd", params(), lr=-0.1), "optim.lr takes a number in [0, 1e6], not -0.1"),
    (lambda: make_optimizer("momentum", params(), mu=1.0), "optim.mu takes a number in [0, 1), not 1.0"),
    (lambda: make_optimizer("nesterov", params(), mu=-0.1), "optim.mu takes a number in [0, 1), not -0.1"),
    (lambda: make_optimizer("nesterov", params(), nesterov_form="ahead"), "optim.nesterov_form takes one of rewritten | lookahead"),
    (lambda: make_optimizer("adam", params(), momentum=0.9), "unknown update-rule hyperparameter"),
    (lambda: make_optimizer("lbfgs", [{"params": params()}, {"params": params(), "lr": 0.1}]),
     "single parameter group"),
    (lambda: schedule_callbacks({**load_config(None)["optim"], "schedule": "cosine"}),
     "optim.schedule takes one of constant | step"),
])
def test_bad_input_is_one_clear_line(call, expected):
    with pytest.raises(UserError) as err:
        call()
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_mu_of_other_rules_is_ignored_not_refused():
    """One config section serves every rule: adam ignores mu (the search varies the rule)."""
    adam = make_optimizer("adam", params(), mu=0.9, lr=1e-3)
    group = adam.param_groups[0]
    assert isinstance(adam, torch.optim.Adam)
    assert group["lr"] == 1e-3 and group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8
    assert "mu" not in group  # nothing of the momentum rules reached Adam


@pytest.mark.parametrize("setting,expected", [
    ("optim.name=sgdd", "optim.name takes one of sgd | momentum | nesterov"),
    ("optim.schedule=linear", "optim.schedule takes one of constant | step"),
    ("optim.lr=-1", "optim.lr takes a number in [0, 1e6], not -1.0"),
])
def test_cli_refuses_with_exit_code_2(setting, expected, capsys, tmp_path):
    code = cli.main(["train", "--quiet", "--run-dir", str(tmp_path / "run"), *digits_args(), "--set", setting,
                     "--set", "train.epochs=1", "--set", "data.limit=100"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("babysit: error: ") and expected in err and "Traceback" not in err
