"""Searching the user's own training function, end to end: a plain-loop objective module in the
test's folder, real worker processes, two stages with continuation, a kill -9 mid-trial, an
objective that raises, and `babysit search --objective` on the command line."""

import json
import re
import math
import os
import signal
import subprocess
import sys
import textwrap

import optuna
import pytest

import babysit
from babysit.errors import UserError
from babysit.rundir import read_jsonl
from babysit.search.objective import Report, StopTrial, reference_of
from babysit.search.storage import default_storage, open_storage
from tests.search.processes import wait_for

PLAIN_LOOP = '''
import json, os, time
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits


def objective(params, epochs, run_dir, report):
    """Softmax regression on 600 digits, continued from run_dir/state.pt when it is there."""
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x[:600] / 16, dtype=torch.float32), torch.tensor(y[:600])
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 10)
    opt = torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=0.9)
    state, start = Path(run_dir) / "state.pt", 0
    if state.exists():
        saved = torch.load(state, weights_only=True)
        model.load_state_dict(saved["model"]); opt.load_state_dict(saved["opt"]); start = saved["epoch"]
    with open(Path(run_dir) / "calls.jsonl", "a") as f:
        f.write(json.dumps({"start": start, "epochs": epochs, "pid": os.getpid()}) + "\\n")
    for epoch in range(start + 1, epochs + 1):
        for i in range(0, 480, 48):
            loss = F.cross_entropy(model(x[i:i + 48]), y[i:i + 48])
            opt.zero_grad(); loss.backward(); opt.step()
        time.sleep(float(os.environ.get("PLAIN_LOOP_SLEEP", "0")))
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch}, str(state) + ".tmp")
        os.replace(str(state) + ".tmp", state)
        with torch.no_grad():
            acc = (model(x[480:]).argmax(1) == y[480:]).float().mean().item()
        report(epoch, acc, loss.item())


def flaky(params, epochs, run_dir, report):
    """The first trial to arrive raises; the others train."""
    try:
        os.close(os.open(os.environ["FLAKY_MARKER"], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return objective(params, epochs, run_dir, report)
    raise ValueError("boom")
'''

SPACE = {"lr": {"low": 1e-3, "high": 0.5, "log": True}}


@pytest.fixture
def plain_loop(tmp_path, monkeypatch):
    """The module `plainloop` in tmp_path/code, importable here and by child processes."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "plainloop.py").write_text(textwrap.dedent(PLAIN_LOOP))
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("FLAKY_MARKER", str(tmp_path / "flaky.marker"))
    sys.modules.pop("plainloop", None)
    import plainloop

    return plainloop


def trials_of(run_dir, study):
    return optuna.load_study(study_name=study, storage=open_storage(default_storage(run_dir))).get_trials()


def epochs_recorded(trial_dir):
    return [r["epoch"] for r in read_jsonl(trial_dir / "metrics.jsonl")]


@pytest.mark.slow
def test_two_stages_continue_the_best_trials_from_their_run_dir(plain_loop, tmp_path):
    run_dir = tmp_path / "run"
    result = babysit.search_objective(plain_loop.objective, SPACE, workers=2, run_dir=run_dir, quiet=True,
                                      stages=[{"trials": 4, "epochs": 1}, {"trials": 2, "epochs": 3}], top_k=2)
    assert result.best_value > 0.5 and set(result.best_params) == {"lr"}
    assert result.best_config is None  # no babysit experiment: the params are the answer
    stage2 = [t for t in trials_of(run_dir, "objective.stage2") if "continue_from" in t.user_attrs]
    assert len(stage2) == 2 and all(t.state.name == "COMPLETE" for t in stage2)
    for t in stage2:  # carried: the copy of its stage-1 folder, trained on from epoch 1 to 3
        folder = run_dir / f"trials/{t._trial_id}"
        calls = read_jsonl(folder / "calls.jsonl")
        assert [(c["start"], c["epochs"]) for c in calls] == [(0, 1), (1, 3)]
        assert epochs_recorded(folder) == [1, 2, 3]
        assert t.user_attrs["trained"]["epochs_trained"] == 2
    best_of_stage1 = [r["trial"] for r in result.leaderboard if r["stage"] == 1 and r["state"] == "complete"][:2]
    assert sorted(t.user_attrs["continue_from"] for t in stage2) == sorted(best_of_stage1)
    for name in ("leaderboard.json", "leaderboard.txt", "stages.json", "alarms.json",
                 "plots/scores_vs_params.png", "plots/learning_curves.png"):
        assert (run_dir / "search" / name).exists(), name
    logs = " ".join(p.read_text() for p in (run_dir / "search/logs").glob("*.log"))
    assert "Traceback" not in logs


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_retried_from_the_trials_last_state(plain_loop, tmp_path, cli_env):
    run_dir = tmp_path / "run"
    driver = (f"import babysit, plainloop; babysit.search_objective(plainloop.objective, {SPACE!r}, "
              f"workers=1, run_dir={str(run_dir)!r}, quiet=True, stages=[{{'trials': 1, 'epochs': 4}}])")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.environ["PYTHONPATH"], cli_env["PYTHONPATH"]]),
           "PLAIN_LOOP_SLEEP": "0.7"}
    master = subprocess.Popen([sys.executable, "-c", driver], env=env, stderr=subprocess.PIPE, text=True)
    try:
        victim = wait_for(lambda: mid_trial(run_dir), what="a trial with an epoch saved")
        os.kill(victim, signal.SIGKILL)
        _, err = master.communicate(timeout=120)
    finally:
        if master.poll() is None:
            master.kill()
    assert master.returncode == 0, err
    trials = trials_of(run_dir, "objective.stage1")
    killed = [t for t in trials if t.state.name == "FAIL"]
    retry = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(killed) == 1 and len(retry) == 1
    folder = run_dir / f"trials/{retry[0]._trial_id}"
    starts = [c["start"] for c in read_jsonl(folder / "calls.jsonl")]
    assert starts[0] == 0 and starts[-1] >= 1  # the retry went on from the killed trial's state
    assert epochs_recorded(folder) == [1, 2, 3, 4]  # every epoch once
    assert retry[0].user_attrs["continue_from"] == killed[0]._trial_id


def mid_trial(run_dir):
    """The pid of the worker running a trial that saved its state and reported an epoch."""
    if not (run_dir / "search/study.journal").exists():
        return None
    try:
        trials = trials_of(run_dir, "objective.stage1")
    except KeyError:
        return None
    for t in trials:
        if t.state.name == "RUNNING" and "worker" in t.user_attrs \
                and (run_dir / f"trials/{t._trial_id}/metrics.jsonl").exists():
            return int(t.user_attrs["worker"].rsplit(":", 1)[1])
    return None


def test_cli_an_objective_that_raises_fails_its_trial_in_one_line_and_the_search_goes_on(
        plain_loop, tmp_path, cli, cli_env):
    config = tmp_path / "space.toml"
    config.write_text('name = "flaky"\n[search]\nstages = [{trials = 4, epochs = 1}]\n'
                      '[search.space]\nlr = {low = 0.001, high = 0.5, log = true}\n')
    run_dir = tmp_path / "run"
    env = {**cli_env, "PYTHONPATH": os.environ["PYTHONPATH"] + os.pathsep + cli_env["PYTHONPATH"]}
    done = subprocess.run(cli("search", str(config), "--objective", "plainloop:flaky", "--workers", "2",
                              "--run-dir", str(run_dir)), env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    board = json.loads((run_dir / "search/leaderboard.json").read_text())
    states = [r["state"] for r in board]  # (two workers may both take the last trial of a budget)
    assert states.count("failed") == 1 and states.count("complete") == len(states) - 1 >= 3
    failed = next(r for r in board if r["state"] == "failed")
    line = "objective 'plainloop:flaky' raised ValueError: boom (at plainloop.py:"
    assert failed["error"].startswith(line) and f"with lr={failed['params']['lr']!r}" in failed["error"]
    assert "\n" not in failed["error"]
    assert f"trial {failed['trial']} failed: {failed['error']}" in done.stderr
    assert "Traceback" not in done.stderr
    assert "plainloop" not in (run_dir / "config.toml").read_text()  # the reference is never stored
    assert "best val acc" in done.stdout


# ---------------------------------------------------------------- without processes


def _lambda_objective():
    return lambda params, epochs, run_dir, report: None


def _closure_objective():
    def inner(params, epochs, run_dir, report):
        return None
    return inner


@pytest.mark.parametrize("objective, refused", [
    (_lambda_objective(), "a lambda, or a function defined inside another"),
    (_closure_objective(), "a lambda, or a function defined inside another"),
    (42, "must be a function"),
])
def test_objectives_workers_cannot_import_are_refused_in_one_line(objective, refused):
    with pytest.raises(UserError, match=refused):
        reference_of(objective)


def test_a_top_level_function_is_named_by_module_and_qualname():
    assert reference_of(epochs_recorded) == f"{__name__}:epochs_recorded"


class FakeTrial:
    """Just enough of optuna.Trial for Report: what was reported, and a pruner's answer."""

    def __init__(self, prune=False):
        self.reported, self.prune = [], prune

    def report(self, value, step):
        self.reported.append((step, value))

    def should_prune(self):
        return self.prune


@pytest.mark.parametrize("args, outcome", [
    ((1, 0.5), "ok"),
    ((1, 0.5, 0.7), "ok"),
    ((1, math.nan), "diverged"),
    ((1, 0.5, math.inf), "diverged"),
    ((0, 0.5), "epoch as a whole number"),
    ((1.5, 0.5), "epoch as a whole number"),
    ((1, 1.5), "fraction in \\[0, 1\\]"),
    ((1, "high"), "val_acc as a number"),
])
def test_report_records_an_epoch_or_says_why_it_stops(tmp_path, args, outcome):
    trial = FakeTrial()
    report = Report(trial, tmp_path)
    if outcome == "ok":
        report(*args)
        assert trial.reported == [(1, 0.5)] and epochs_recorded(tmp_path) == [1]
    elif outcome == "diverged":
        with pytest.raises(StopTrial) as stop:
            report(*args)
        assert stop.value.diverged and not (tmp_path / "metrics.jsonl").exists()
    else:
        with pytest.raises(UserError, match=outcome):
            report(*args)


def test_report_stops_a_pruned_trial_and_counts_an_epoch_trained_again_once(tmp_path):
    report = Report(FakeTrial(), tmp_path)
    report(1, 0.4)
    again = Report(FakeTrial(prune=True), tmp_path)  # a retry: it inherits epoch 1
    assert again.trial.reported == [(1, 0.4)]
    with pytest.raises(StopTrial, match="pruned at epoch 1") as stop:
        again(1, 0.45)
    assert not stop.value.diverged and epochs_recorded(tmp_path) == [1]
    assert not isinstance(stop.value, Exception)  # an `except Exception` in the loop lets it through


@pytest.mark.parametrize("config_text, reference, refused", [
    (None, "plainloop:objective", "--objective needs a CONFIG whose \\[search.space\\] names"),
    ("[search.space]\nlr = {low = 0.001, high = 0.5}\n", "nosuchmodule:objective", "cannot import module 'nosuchmodule'"),
    ("[search.space]\nlr = {low = 0.001, high = 0.5}\n", "plainloop:nosuchfunction", "has no attribute 'nosuchfunction'"),
    ("[search.space]\nlr = {low = 0, high = 0.5, log = true}\n", "plainloop:objective", "a log range needs low > 0"),
])
def test_cli_bad_objective_input_is_one_line_and_makes_no_run_dir(plain_loop, tmp_path, cli, cli_env,
                                                                   config_text, reference, refused):
    args = ["search", "--objective", reference, "--run-dir", str(tmp_path / "run")]
    if config_text is not None:
        (tmp_path / "space.toml").write_text(config_text)
        args.insert(1, str(tmp_path / "space.toml"))
    env = {**cli_env, "PYTHONPATH": os.environ["PYTHONPATH"] + os.pathsep + cli_env["PYTHONPATH"]}
    done = subprocess.run(cli(*args), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert re.search(refused, lines[0]), lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_an_objective_search_on_postgres(plain_loop, tmp_path):
    """The many-machines storage: the same stages and continuation, the study in the database."""
    import uuid

    from babysit.search.storage import delete_studies
    from tests.search.test_search_postgres import reachable_url

    url = reachable_url()
    name = f"babysit-objective-{uuid.uuid4().hex[:10]}"
    try:
        result = babysit.search_objective(plain_loop.objective, SPACE, workers=2, run_dir=tmp_path / "run",
                                          storage=url, study=name, quiet=True, top_k=1,
                                          stages=[{"trials": 3, "epochs": 1}, {"trials": 1, "epochs": 2}])
        carried = [r for r in result.leaderboard if r["stage"] == 2 and r["continued_from"] is not None]
        assert [r["state"] for r in carried] == ["complete"]
        assert epochs_recorded(tmp_path / "run" / carried[0]["checkpoint_dir"]) == [1, 2]
        assert not (tmp_path / "run/search/study.journal").exists()
    finally:
        delete_studies(url, [name, f"{name}.stage1", f"{name}.stage2"])


@pytest.mark.parametrize("searched, mine, refused", [
    ("plainloop:objective", None, "searches the objective 'plainloop:objective', not the config's experiment: "
                                  "give --objective plainloop:objective"),
    (None, "plainloop:objective", "searches the config's experiment, not the objective 'plainloop:objective': "
                                  "leave out --objective"),
    ("plainloop:objective", "plainloop:flaky", "not the objective 'plainloop:flaky'"),
])
def test_a_worker_or_resume_with_another_objective_is_refused_in_one_line(searched, mine, refused):
    from babysit.config import default_config
    from babysit.search import fingerprint

    config = default_config()
    attrs = {fingerprint.ATTR: fingerprint.record(config, searched)}
    with pytest.raises(UserError, match=re.escape(refused)):
        fingerprint.check_same_experiment(attrs, config, "s", "fix", mine)
    fingerprint.check_same_experiment(attrs, config, "s", "fix", searched)  # the same one passes


def test_a_fractional_stage_is_refused_for_an_objective_in_one_line_before_any_run_dir(plain_loop, tmp_path):
    with pytest.raises(UserError, match="a stage of a fraction of an epoch needs babysit's own experiment"):
        babysit.search_objective(plain_loop.objective, SPACE, run_dir=tmp_path / "run", quiet=True,
                                 stages=[{"trials": 4, "epochs": 0.5}, {"trials": 2, "epochs": 3}])
    assert not (tmp_path / "run").exists()
