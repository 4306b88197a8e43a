"""Nothing read from a run directory may name code to import (issue 22, item 1).

The payload is the one seen: a checkpoint (or config.toml) whose config says
``data.dataset = "os:system"`` with ``kwargs = {"command": "echo PWNED > FILE"}``. Every verb
that rebuilds something from a run directory must refuse it in one line, exit 2, and FILE
must never exist. A user's own ``module:function`` still works when it comes from the config
the user passes, or with ``--trust-run-dir``.
"""

import shutil

import pytest
import torch

from babysit import experiment
from babysit.cli import main
from babysit.config import load_config, to_toml
from babysit.errors import UserError
from babysit.rundir import RunDir, list_checkpoints
from tests.digits import DIGITS

SMALL = [*DIGITS, "train.epochs=2", "model.width=16", "train.batch_size=128", "data.limit=300",
         "ensemble.ema_decay=0.9"]


def payload(marker) -> dict:
    return {"dataset": "os:system", "kwargs": {"command": f"echo PWNED > {marker}"}}


def plant_in_checkpoints(folder, marker) -> None:
    """Rewrite every checkpoint in `folder` so that its config names ``os:system``."""
    for path in list_checkpoints(folder):
        ckpt = torch.load(path, weights_only=True)
        ckpt["config"]["data"].update(payload(marker))
        torch.save(ckpt, path)


def plant_in_config_toml(run_dir, marker) -> None:
    config = load_config(run_dir / "config.toml")
    config["data"].update(payload(marker))
    (run_dir / "config.toml").write_text(to_toml(config))


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> RunDir:
    """A small real run with checkpoints (with averaged weights) and two search trials."""
    run_dir = RunDir(tmp_path_factory.mktemp("clean") / "run")
    experiment.train(load_config(overrides=SMALL), run_dir, quiet=True)
    for number in (0, 1):
        trial = run_dir / "trials" / str(number)
        experiment.train(load_config(overrides=[*SMALL, f"seed={number + 1}"]), trial, quiet=True,
                         checkpoint_dir=trial)
    return run_dir


@pytest.fixture
def run_copy(clean_run, tmp_path) -> RunDir:
    copy = tmp_path / "run"
    shutil.copytree(clean_run.path, copy)
    return RunDir(copy)


# (where the payload is planted, the command line after "babysit")
ATTACKS = [
    ("checkpoints", ["ensemble", "{run}", "--kind", "checkpoints", "-k", "2", "--config", "{clean}"]),
    ("checkpoints", ["ensemble", "{run}", "--kind", "average", "--config", "{clean}"]),
    ("trials", ["ensemble", "{run}", "--kind", "top", "-k", "2", "--config", "{clean}"]),
    ("config.toml", ["ensemble", "{run}", "--kind", "checkpoints", "-k", "2"]),
    ("config.toml", ["train", "--resume", "{run}", "--quiet"]),
    ("config.toml", ["search", "--resume", "{run}", "--quiet"]),
]


@pytest.mark.parametrize("where, argv", ATTACKS, ids=[f"{w}:{' '.join(a[:4])}" for w, a in ATTACKS])
def test_a_planted_reference_is_refused_and_never_run(where, argv, run_copy, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    clean = tmp_path / "clean.toml"
    clean.write_text(to_toml(load_config(overrides=SMALL)))
    if where == "checkpoints":
        plant_in_checkpoints(run_copy / "checkpoints", marker)
    elif where == "trials":
        for number in (0, 1):
            plant_in_checkpoints(run_copy / "trials" / str(number), marker)
    else:
        plant_in_config_toml(run_copy, marker)
    code = main([a.format(run=run_copy.path, clean=clean) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert not marker.exists()
    assert len(err) == 1 and "names code to import" in err[0] and "'os:system'" in err[0], err
    # The fix named: vouch for one's own run directory, or pass the config that names the code.
    assert ("--trust-run-dir" if where == "config.toml" else "with --config") in err[0]


def test_model_from_checkpoint_refuses_unless_the_trusted_config_names_the_same(run_copy, tmp_path):
    marker = tmp_path / "PWNED"
    plant_in_checkpoints(run_copy / "checkpoints", marker)
    last = list_checkpoints(run_copy / "checkpoints")[-1]
    with pytest.raises(UserError, match="names code to import"):
        experiment.model_from_checkpoint(last)
    # A trusted config naming other code is no licence for this checkpoint's.
    other = load_config(overrides=SMALL)
    other["data"]["dataset"] = "os:getcwd"
    with pytest.raises(UserError, match="data.dataset = 'os:system'"):
        experiment.model_from_checkpoint(last, trusted=other)
    assert not marker.exists()


def user_module(tmp_path, monkeypatch) -> str:
    (tmp_path / "mynets.py").write_text(
        "from torch import nn\n"
        "import math\n"
        "def tiny(input_shape, num_classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 8), nn.ReLU(),\n"
        "                         nn.Linear(8, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "mynets:tiny"


def test_the_users_own_model_works_from_the_config_they_pass(tmp_path, monkeypatch, capsys):
    """The same code reference is fine where the user gave it: in the config they pass, or in
    their own run directory with --trust-run-dir; without it the run directory is refused."""
    reference = user_module(tmp_path, monkeypatch)
    config = load_config(overrides=[*SMALL, f"model.name={reference}", "train.epochs=3"])
    run_dir = RunDir(tmp_path / "mine")
    experiment.train(config, run_dir, quiet=True)
    passed = tmp_path / "mine.toml"
    passed.write_text(to_toml(config))

    assert main(["ensemble", str(run_dir.path), "--kind", "checkpoints", "-k", "2", "--config",
                 str(passed), "--quiet"]) == 0
    assert main(["ensemble", str(run_dir.path), "--kind", "checkpoints", "-k", "2", "--quiet"]) == 2
    assert "names code to import (model.name = 'mynets:tiny')" in capsys.readouterr().err
    assert main(["ensemble", str(run_dir.path), "--kind", "checkpoints", "-k", "3", "--quiet",
                 "--trust-run-dir"]) == 0
    assert main(["train", "--resume", str(run_dir.path), "--quiet", "--trust-run-dir",
                 "--set", "train.epochs=4"]) == 0
    # Named on the command line, the same code is the user's own: no --trust-run-dir needed.
    assert main(["train", "--resume", str(run_dir.path), "--quiet", "--set", f"model.name={reference}",
                 "--set", "train.epochs=5"]) == 0
