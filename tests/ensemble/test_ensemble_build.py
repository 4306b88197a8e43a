import json
import os
import shutil
import tomllib

import tomli_w

import pytest
import torch

from babysit.cli import main
from babysit.ensemble import build_ensembles, read_table
from babysit.ensemble.build import _Stage
from babysit.ensemble.members import Member, check_compatible, top_trial_members
from babysit.errors import UserError
from babysit.models import mlp
from babysit.rundir import RunDir, list_checkpoints, load_checkpoint

COLUMNS = {"kind", "members", "val_acc", "best_member_acc", "gain", "eval_seconds", "eval_memory_mb"}


def test_every_kind_builds_a_row_and_the_table_is_written(finished_run, small, capsys):
    rows = build_ensembles(small(), finished_run, k=2)
    assert [r.kind for r in rows] == ["seeds", "top_trials", "checkpoints", "average", "distill"]
    for r in rows:
        assert 0.0 <= r.best_member_acc <= 1.0 and 0.0 <= r.val_acc <= 1.0
        assert r.gain == pytest.approx(r.val_acc - r.best_member_acc)
        assert r.eval_seconds > 0 and r.eval_memory_mb > 0
        # Noise on every figure: n, the Wilson interval, the paired interval of the gain.
        assert r.n == 120  # the validation split of 600 digits
        assert r.val_low <= r.val_acc <= r.val_high and r.gain_low <= r.gain <= r.gain_high
        assert r.verdict == ("gain" if r.gain_low > 0 else "loss" if r.gain_high < 0 else "within noise")
        if r.kind in ("average", "distill"):  # one model: no curve, nothing to disagree on
            assert r.curve == [] and r.disagreement is None
        else:  # the first m members together, m = 1..K; the last is the ensemble itself
            on_test = r.curve_split == "test"  # the test split, once the data has one
            assert len(r.curve) == r.members
            assert r.curve[-1] == pytest.approx(r.test["acc"] if on_test else r.val_acc)
            assert 0.0 <= r.disagreement <= 1.0
    by_kind = {r.kind: r for r in rows}
    assert by_kind["seeds"].members == by_kind["top_trials"].members == 2
    assert by_kind["seeds"].memory_ratio > 1.2  # two members' weights resident, not one
    # The seed copies were trained into their own run folders with their own seeds.
    for seed in (0, 1):
        ckpt = load_checkpoint(list_checkpoints(finished_run / "ensemble" / "seeds" / str(seed)
                                                / "checkpoints")[-1])
        assert ckpt["config"]["seed"] == seed
    assert list_checkpoints(finished_run / "ensemble" / "distill" / "checkpoints")
    table = json.loads((finished_run / "ensemble" / "table.json").read_text())
    assert all(COLUMNS <= set(row) for row in table)
    assert read_table(finished_run) == rows
    text = (finished_run / "ensemble" / "table.txt").read_text()
    assert "best member" in text and "n = 120 validation examples" in text
    assert all(r.verdict in text for r in rows)
    assert (finished_run / "ensemble" / "plots" / "accuracy.png").stat().st_size > 1000
    assert (finished_run / "ensemble" / "plots" / "members.png").stat().st_size > 1000
    assert "checkpoints" in capsys.readouterr().out


def test_top_trials_are_the_best_by_the_score_in_the_file_name(finished_run):
    members = top_trial_members(finished_run, 2)
    scores = {}
    for folder in (finished_run / "trials").iterdir():
        best = max(float(p.stem.split("_val_")[1]) for p in list_checkpoints(folder))
        scores[f"trial {folder.name}"] = best
    ranked = sorted(scores, key=lambda name: -scores[name])
    assert [m.name for m in members] == ranked[:2]
    assert "trial 2" not in [m.name for m in members]  # lr 0.001 for 3 epochs: the worst


def continue_trial(run_dir: RunDir, source: int, number: int, extra_epoch_score: str | None) -> None:
    """Make trials/<number> what a later stage writes when it continues trial <source>: the same
    configuration under another name and epoch count, the source's checkpoints linked in."""
    src, dst = run_dir / "trials" / str(source), run_dir / "trials" / str(number)
    shutil.copytree(src, dst, copy_function=os.link)
    config = tomllib.loads((src / "config.toml").read_text())
    config["name"], config["train"]["epochs"] = f"trial{number}", 9
    (dst / "config.toml").unlink()
    (dst / "config.toml").write_text(tomli_w.dumps(config))
    if extra_epoch_score is not None:  # the continuation trained one more, better epoch
        last = list_checkpoints(src)[-1]
        shutil.copyfile(last, dst / f"epoch_009_val_{extra_epoch_score}.pt")


def test_a_configuration_continued_across_stages_is_one_member(tmp_path, finished_run):
    run_dir = RunDir(tmp_path / "run")
    shutil.copytree(finished_run.path, run_dir.path)
    continue_trial(run_dir, 0, 3, None)          # trial 3 holds trial 0's checkpoints only
    continue_trial(run_dir, 1, 4, "0.9999")      # trial 4 went further than trial 1
    names = [m.name for m in top_trial_members(run_dir, 3)]
    assert len(names) == 3 and "trial 3" not in names and "trial 1" not in names
    assert names[0] == "trial 4" and "trial 0" in names and "trial 2" in names
    with pytest.raises(UserError, match="only 3 distinct configurations"):
        top_trial_members(run_dir, 4)


def test_too_large_k_is_refused_before_any_seed_copy_trains(tmp_path, finished_run, small):
    run_dir = RunDir(tmp_path / "run")  # without what other tests built into it
    shutil.copytree(finished_run.path, run_dir.path, ignore=shutil.ignore_patterns("ensemble"))
    with pytest.raises(UserError, match="use -k 3 or fewer"):
        build_ensembles(small(), run_dir, k=4, quiet=True)  # the default kinds: seeds come first
    assert not (run_dir / "ensemble").exists()


def test_cli_prints_the_table(finished_run, capsys):
    assert main(["ensemble", str(finished_run.path), "--kind", "checkpoints", "--kind", "average",
                 "-k", "3", "-q"]) == 0
    out = capsys.readouterr().out
    assert "checkpoints" in out and "average" in out and "table written to" in out


def test_no_trials_is_skipped_by_default_but_an_error_when_asked(tmp_path, finished_run, small):
    bare = RunDir(tmp_path / "bare")
    (bare / "checkpoints").mkdir(parents=True)
    for path in list_checkpoints(finished_run / "checkpoints"):
        (bare / "checkpoints" / path.name).write_bytes(path.read_bytes())
    # The default kinds skip what the run lacks (the stage answers no row) ...
    assert _Stage(small(), bare, 2, quiet=True).top_trials(explicit=False) is None
    # ... but asking for it by name is an error.
    with pytest.raises(UserError, match="holds no trial checkpoints"):
        build_ensembles(small(), bare, k=2, kinds=("top",), quiet=True)


@pytest.mark.parametrize("argv, message", [
    (["--kind", "checkpoints"], "holds no checkpoints: train into it first"),
    (["--kind", "top", "-k", "4"], "has only 3 distinct configurations with checkpoints: use -k 3 or fewer"),
    (["--kind", "checkpoints", "-k", "9"], "has only 3: use -k 3 or fewer"),
    (["--kind", "checkpoints", "-k", "1"], "at least 2 members"),
])
def test_bad_input_is_one_clear_line(tmp_path, finished_run, capsys, argv, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.toml").write_text((finished_run / "config.toml").read_text())
    target = empty if argv[1] == "checkpoints" and "-k" not in argv else finished_run.path
    assert main(["ensemble", str(target), "-q", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("babysit: error:") and message in err[0]


def test_a_missing_run_directory_is_one_line(tmp_path, capsys):
    assert main(["ensemble", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_members_with_different_outputs_are_refused():
    probe = torch.randn(2, 1, 8, 8)
    members = [Member("ten", mlp((1, 8, 8), 10, width=8), None, {}),
               Member("five", mlp((1, 8, 8), 5, width=8), None, {})]
    with pytest.raises(UserError, match="outputs of different shapes"):
        check_compatible(members, probe)


def test_members_trained_on_other_data_settings_are_flagged(tmp_path, small):
    from babysit import experiment

    run_dir = RunDir(tmp_path)
    for number, limit in enumerate([600, 500]):
        trial = run_dir / "trials" / str(number)
        experiment.train(small(f"data.limit={limit}", "train.epochs=1"), trial, quiet=True,
                         checkpoint_dir=trial)
    (row,) = build_ensembles(small(), run_dir, k=2, kinds=("top",), quiet=True)
    assert "other data settings: trial 1" in row.detail


def test_seed_copies_differ_in_init_data_order_and_dropout_masks(small):
    """What makes the seeds ensemble an ensemble: each copy's seed sets its initial weights,
    the order of its minibatches and its dropout masks; the same seed repeats all three."""
    from babysit import experiment
    from babysit.train import Callback

    class Record(Callback):
        def on_train_begin(self, state):
            self.init = [p.detach().clone() for p in state.model.parameters()]
            dropout = next(m for m in state.model.modules() if isinstance(m, torch.nn.Dropout))
            self.hook = dropout.register_forward_hook(self.mask)

        def mask(self, module, inputs, output):  # the first training batch's dropout mask
            self.alive, self.dropped = inputs[0] != 0, (output == 0) & (inputs[0] != 0)
            self.hook.remove()

        def on_batch_begin(self, state):
            if state.step == 0:
                self.first_batch = state.yb.clone()

    def run(seed):
        record = Record()
        config = small("train.epochs=1", "model.dropout=0.5", f"seed={seed}", "train.checkpoints=false")
        experiment.train(config, None, quiet=True, callbacks=[record])
        return record

    a, b, again = run(0), run(1), run(0)
    assert not torch.equal(a.init[0], b.init[0]) and torch.equal(a.init[0], again.init[0])
    assert not torch.equal(a.first_batch, b.first_batch) and torch.equal(a.first_batch, again.first_batch)
    # The masks differ where both copies had a unit to drop (not only because their inputs did).
    both = a.alive & b.alive
    assert a.dropped.any() and not torch.equal(a.dropped[both], b.dropped[both])
    assert torch.equal(a.dropped, again.dropped)
