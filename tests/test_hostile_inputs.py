"""The hostile-input trial, as part of the suite: every verb against a corpus of bad inputs.

The README promises that bad input ends in one line naming the fix, exit code 2, no
traceback — and, since the check comes before anything is made, no new file or folder. Each
case runs ``babysit.cli.main`` in-process (the same code path as the ``babysit`` command; a
few cases also run as a real process) in an empty working directory, after its setup, and
asserts all four. ``test_the_count`` prints how many cases were tried.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from babysit.cli import main
from tests.digits import digits_args

PLUGINS = "tests.hostile_plugins"


# --- set-ups: what a case finds in its working directory -------------------------------------
def write(name: str, content: str | bytes):
    def setup(cwd: Path, base: Path) -> None:
        path = cwd / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def run_copy(change=None):
    """A copy of a small finished ``babysit train`` run as ``run/``, then `change` applied to it."""
    def setup(cwd: Path, base: Path) -> None:
        shutil.copytree(base, cwd / "run")
        if change is not None:
            change(cwd / "run")
    return setup


def both(*setups):
    def setup(cwd: Path, base: Path) -> None:
        for s in setups:
            s(cwd, base)
    return setup


def last_checkpoint(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("epoch_*.pt"))[-1]


def replace_checkpoint(payload):
    def change(run: Path) -> None:
        path = last_checkpoint(run)
        if isinstance(payload, bytes):
            path.write_bytes(payload)
        else:
            torch.save(payload(torch.load(path, weights_only=True)), path)
    return change


def write_in_run(rel: str, content: bytes):
    def change(run: Path) -> None:
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(content)
    return change


def remove_in_run(rel: str):
    def change(run: Path) -> None:
        target = run / rel
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return change


# --- the corpus --------------------------------------------------------------------------------
# Bad config values: (setting, what the one line must contain). Each runs against several verbs.
BAD_SETTINGS = [
    ("train.epochs=-1", "train.epochs takes a whole number >= 1, not -1"),
    ("epochs=0", "train.epochs takes a whole number >= 1, not 0"),
    ("epochs=1.5", "train.epochs takes a whole number, not 1.5: like 10"),
    ("batch_size=0", "train.batch_size takes a whole number >= 1, not 0"),
    ("batch_size=-64", "train.batch_size takes"),
    ("optim.lr=-1", "optim.lr takes a number in [0, 1e6]"),
    ("lr=1e300", "optim.lr takes a number in [0, 1e6], not 1e+300"),
    ("lr=nan", "optim.lr takes a number in [0, 1e6], not nan"),
    ("lr=inf", "optim.lr takes"),
    ("lr=abc", "optim.lr takes a number, not 'abc'"),
    ("reg=-1", "loss.reg takes a number >= 0, not -1"),
    ("reg=nan", "loss.reg takes a number >= 0, not nan"),
    ("reg=inf", "loss.reg takes a number >= 0, not inf"),
    ("init_scale=-1", "model.init_scale takes a number > 0"),
    ("init_scale=0", "model.init_scale takes a number > 0"),
    ("init_scale=nan", "model.init_scale takes a number > 0, not nan"),
    ("init_scale=inf", "model.init_scale takes a number > 0, not inf"),
    ("ema_decay=1.5", "ensemble.ema_decay takes a number in [0, 1), not 1.5"),
    ("ema_decay=-0.1", "ensemble.ema_decay takes"),
    ("ema_decay=nan", "ensemble.ema_decay takes"),
    ("max_loss=nan", "train.max_loss takes a number > 0, not nan"),
    ("max_loss=inf", "train.max_loss takes a number > 0, not inf"),
    ("max_loss=-1", "train.max_loss takes a number > 0"),
    ("data.limit=-5", "data.limit takes a whole number >= 0, not -5"),
    ("search.margin=nan", "search.margin takes a number >= 0, not nan"),
    ("search.margin=-1", "search.margin takes"),
    ("temperature=0", "ensemble.temperature takes a number in (0, 1000], not 0"),
    ("temperature=-2", "ensemble.temperature takes"),
    ("temperature=nan", "ensemble.temperature takes"),
    ("alpha=2", "ensemble.alpha takes a number in [0, 1], not 2"),
    ("alpha=-0.5", "ensemble.alpha takes"),
    ("preflight.dependence_examples=1", "preflight.dependence_examples takes a whole number >= 8, not 1"),
    ("seed=18446744073709551616", "seed takes a whole number from 0 to 9223372036854775807"),
    ("seed=-1", "seed takes a whole number from 0"),
    ("split_seed=99999999999999999999", "data.split_seed takes"),
    ("width=1000000", "model.width takes a whole number from 1 to 65536, not 1000000"),
    ("width=0", "model.width takes"),
    ("depth=-1", "model.depth takes"),
    ("device=tpu", "device takes auto, cpu, cuda, cuda:N or mps, not 'tpu'"),
    ("device=cuda:x", "device takes"),
    ("name=a/b", "name takes a folder name"),
    ("name=..", "name takes a folder name"),
    ('name=""', "name takes a folder name"),
    ("name=../../etc", "name takes a folder name"),
    ("val_fraction=0", "data.val_fraction takes a number in (0, 1), not 0"),
    ("val_fraction=1", "data.val_fraction takes"),
    ("dropout=1", "model.dropout takes a number in [0, 1), not 1"),
    ("dropout=-0.1", "model.dropout takes"),
    ("mu=1", "optim.mu takes a number in [0, 1), not 1"),
    ("beta2=1", "optim.beta2 takes"),
    ("eps=0", "optim.eps takes a number in (0, 1], not 0"),
    ("decay=1.5", "optim.decay takes"),
    ("factor=0", "optim.factor takes a number in (0, 1], not 0"),
    ("step_every=0", "optim.step_every takes a whole number >= 1"),
    ("patience=0", "optim.patience takes"),
    ("optim.k=-1", "optim.k takes a number >= 0"),
    ("mu_start=1", "optim.mu_start takes"),
    ("mu_epochs=-1", "optim.mu_epochs takes"),
    ("damping=-1", "optim.damping takes"),
    ("schedule=cosine", "optim.schedule takes one of constant | step"),
    ("schedule_unit=year", "optim.schedule_unit takes one of epoch | iteration"),
    ("optim.name=adamw", "optim.name takes one of sgd | momentum"),
    ("nesterov_form=ahead", "optim.nesterov_form takes one of rewritten | lookahead"),
    ("activation=gelu", "model.activation takes one of relu"),
    ("loss.name=hinge", "loss.name takes one of softmax | svm"),
    ("data.dataset=imagenet", "data.dataset takes one of digits"),
    ("model.name=resnet", "model.name takes one of mlp | convnet"),
    ("gradcheck.h=0", "gradcheck.h takes a number in (0, 1], not 0"),
    ("gradcheck.num_points=0", "gradcheck.num_points takes"),
    ("coords_per_tensor=-1", "gradcheck.coords_per_tensor takes"),
    ("burn_in=-1", "gradcheck.burn_in takes"),
    ("dtype=float16", "gradcheck.dtype takes one of float64 | float32"),
    ("reg_scale=0", "gradcheck.reg_scale takes"),
    ("gradcheck.scale=nan", "gradcheck.scale takes"),
    ("preflight.examples=0", "preflight.examples takes"),
    ("initial_tolerance=2", "preflight.initial_tolerance takes a number in [0, 1), not 2"),
    ("overfit_examples=0", "preflight.overfit_examples takes"),
    ("overfit_steps=0", "preflight.overfit_steps takes"),
    ("overfit_target=-1", "preflight.overfit_target takes"),
    ("dependence_steps=0", "preflight.dependence_steps takes"),
    ("dependence_margin=1.5", "preflight.dependence_margin takes"),
    ("preflight.threads=-1", "preflight.threads takes"),
    ("search.workers=-1", "search.workers takes a whole number from 0 to 4096, not -1"),
    ("search.threads=-1", "search.threads takes a whole number from 0 to 4096, not -1"),
    ("top_k=0", "search.top_k takes"),
    ("grid_points=1", "search.grid_points takes a whole number >= 2"),
    ("border=0.5", "search.border takes a number in [0, 0.5)"),
    ("sampler=bayes", "search.sampler takes one of random | tpe"),
    ("pruner=hyperband", "search.pruner takes one of median | halving"),
    ("watch.hist_every=-5", "watch.hist_every takes a whole number >= 0, not -5"),
    ("watch.ratio_every=-1", "watch.ratio_every takes"),
    ("watch.bins=0", "watch.bins takes"),
    ("flush_every=0", "watch.flush_every takes"),
    ("flush_seconds=-1", "watch.flush_seconds takes a number >= 0"),
    ("ensemble.k=0", "ensemble.k takes a whole number >= 1"),
    # the default experiment: MNIST-1D (whose generator takes num_samples and seed) and the convnet
    ("data.kwargs={a=1}", "data set 'mnist1d' cannot be called this way (mnist1d() got an unexpected keyword"),
    ("model.kwargs={a=1}", "model.kwargs {'a': 1} given, but model 'convnet' takes none"),
    ("optim.lrr=0.1", "unknown config key 'optim.lrr'"),
    ("k=3", "config key 'k' is ambiguous"),
    ("noequals", "--set takes key=value"),
    ("optim=3", "unknown config key 'optim'"),
    ("checkpoints=maybe", "train.checkpoints takes true or false, not 'maybe'"),
]

# The verbs every bad setting is tried with; a second group tries each with one more verb.
EVERY = ("train", "search")
ROTATE = ("run", "preflight", "gradcheck", "config", "ensemble run")

# A user's own data set, model or loss going wrong: (setting, what the line must contain).
BAD_PLUGINS = [
    (f"data.dataset={PLUGINS}:data_raises", "raised ValueError: cannot find my files (at hostile_plugins.py"),
    (f"data.dataset={PLUGINS}:data_strings", "x must be a tensor or array of numbers, not str"),
    (f"data.dataset={PLUGINS}:data_vector", "returned a Tensor: return (x, y) or (x, y, num_classes)"),
    (f"data.dataset={PLUGINS}:data_float", "returned a float: return (x, y) or (x, y, num_classes)"),
    (f"data.dataset={PLUGINS}:data_nested_strings", "x must be a tensor or array of numbers, not list"),
    (f"data.dataset={PLUGINS}:data_one_example", "1 examples are too few to train and validate on"),
    (f"data.dataset={PLUGINS}:data_two_examples", "2 examples are too few"),
    (f"data.dataset={PLUGINS}:data_single_class", "every label is 0: a classifier needs examples of at least 2"),
    (f"data.dataset={PLUGINS}:data_float_labels", "labels must be class indices 0..C-1, not fractions like 0.5"),
    (f"data.dataset={PLUGINS}:data_huge_classes", "num_classes takes a whole number from 2 to 100000, not 1000000000"),
    (f"data.dataset={PLUGINS}:data_classes_text", "num_classes takes a whole number from 2 to 100000, not 'three'"),
    (f"data.dataset={PLUGINS}:data_nan", "input values are NaN or infinite"),
    (f"data.dataset={PLUGINS}:data_mismatch", "60 examples but 57 labels"),
    (f"data.dataset={PLUGINS}:data_3d", "inputs must be (N, D) vectors or (N, C, H, W) images"),
    (f"data.dataset={PLUGINS}:data_2d_labels", "labels must be a 1-D vector"),
    (f"data.dataset={PLUGINS}:data_negative_labels", "label -1 is negative"),
    (f"data.dataset={PLUGINS}:data_label_out_of_range", "label 2 is out of range for 2 classes"),
    (f"data.dataset={PLUGINS}:data_empty", "the data set is empty"),
    (f"data.dataset={PLUGINS}:nope", "has no attribute 'nope'"),
    (f"data.dataset={PLUGINS}:not_callable", "is not callable"),
    ("data.dataset=no_such_module_xyz:load", "cannot import module 'no_such_module_xyz'"),
    (f"model.name={PLUGINS}:model_raises", "raised RuntimeError: my model is broken (at hostile_plugins.py"),
    (f"model.name={PLUGINS}:model_not_module", "returned a str: return a torch.nn.Module"),
    (f"model.name={PLUGINS}:model_gives_strings", "gives scores of shape str"),
    (f"model.name={PLUGINS}:model_gives_vector", "gives scores of shape (2,) for 2 examples; expected (2, 10)"),
    (f"model.name={PLUGINS}:model_gives_float", "gives scores of shape float"),
    (f"model.name={PLUGINS}:model_forward_raises", "raised ValueError: forward fails"),
    (f"model.name={PLUGINS}:model_no_parameters", "gives scores of shape (2, 40)"),  # MNIST-1D's 40 samples
    (f"loss.name={PLUGINS}:loss_raises", "raised ValueError: my loss is broken (at hostile_plugins.py"),
    (f"loss.name={PLUGINS}:loss_string", "returned a str: it must return the batch's mean loss"),
    (f"loss.name={PLUGINS}:loss_vector", "returned a tensor of shape (2,)"),
    (f"loss.name={PLUGINS}:loss_float", "returned a float"),
    (f"loss.name={PLUGINS}:not_callable", "is not callable"),
    (f"data.dataset={PLUGINS}:data_ok --set data.kwargs={{wrong=1}}", "data_ok"),  # accepts **kwargs: fine
]

NOT_UTF8 = b'name = "\xff\xfe"\n'
# Whole command lines: (id, argv, setup, what the one line must contain).
COMMANDS = [
    # config files
    ("config not UTF-8", ["train", "bad.toml"], write("bad.toml", NOT_UTF8), "is not UTF-8 text: save it as UTF-8"),
    ("config binary", ["train", "bad.toml"], write("bad.toml", bytes(range(256))), "bad.toml is not"),
    ("config bad TOML", ["train", "bad.toml"], write("bad.toml", "[optim\nlr = 1"), "is not valid TOML"),
    ("config missing", ["train", "missing.toml"], None, "config file missing.toml does not exist"),
    ("config is a folder", ["train", "folder"], write("folder/x", ""), "config file folder does not exist"),
    ("config unknown section", ["train", "bad.toml"], write("bad.toml", "[optimizer]\nlr = 1\n"),
     "unknown config key 'optimizer'"),
    ("config scalar for table", ["train", "bad.toml"], write("bad.toml", "optim = 3\n"), "config key 'optim' is a table"),
    ("config bad value", ["preflight", "bad.toml"], write("bad.toml", "[train]\nepochs = -1\n"),
     "train.epochs takes a whole number >= 1"),
    ("config name traversal", ["train", "bad.toml"], write("bad.toml", 'name = "../outside"\n'), "name takes a folder name"),
    ("config empty name", ["run", "bad.toml"], write("bad.toml", 'name = ""\n'), "name takes a folder name"),
    ("config stages not a list", ["search", "bad.toml"], write("bad.toml", "[search]\nstages = 3\n"),
     "search.stages must be a non-empty list"),
    ("config stage trials 0", ["search", "bad.toml"],
     write("bad.toml", "[search]\nstages = [{trials = 0, epochs = 1}]\n"), "search.stages[1].trials takes"),
    ("config space low>high", ["search", "--set", "search.space.lr={low=1,high=0.1,log=true}"], None,
     "low must be below high"),
    ("run batch_size 0 names train.batch_size", ["run", "--set", "batch_size=0"], None,
     "train.batch_size takes a whole number >= 1, not 0"),
    ("run epochs -1 before any stage", ["run", "--set", "epochs=-1"], None, "train.epochs takes"),
    ("run one-example data", ["run", "--set", f"data.dataset={PLUGINS}:data_one_example"], None,
     "1 examples are too few"),
    ("search one-class data", ["search", "--set", f"data.dataset={PLUGINS}:data_single_class"], None,
     "every label is 0"),
    ("gradcheck broken loss", ["gradcheck", "--set", f"loss.name={PLUGINS}:loss_raises"], None, "my loss is broken"),
    ("preflight broken model", ["preflight", "--set", f"model.name={PLUGINS}:model_raises"], None, "my model is broken"),
    # run directories
    ("train into a used run dir", ["train", "--run-dir", "run"], run_copy(), "continue it with babysit train --resume run"),
    ("search into a used run dir", ["search", "--run-dir", "run"], run_copy(), "babysit search --resume run"),
    ("run into a used run dir", ["run", "--run-dir", "run"], run_copy(), "--run-dir run is not empty"),
    ("train run dir is a file", ["train", "--run-dir", "afile"], write("afile", "x"), "--run-dir afile cannot be made"),
    ("train run dir under a file", ["train", "--run-dir", "afile/run"], write("afile", "x"), "cannot be made"),
    ("run run dir is a file", ["run", "--run-dir", "afile"], write("afile", "x"), "cannot be made"),
    ("search run dir is a file", ["search", "--run-dir", "afile"], write("afile", "x"), "cannot be made"),
    ("preflight run dir is a file", ["preflight", "--run-dir", "afile"], write("afile", "x"), "--run-dir afile is a file"),
    ("gradcheck run dir is a file", ["gradcheck", "--run-dir", "afile"], write("afile", "x"), "--run-dir afile is a file"),
    ("runs is a file", ["train"], write("runs", "x"), "cannot be made"),
    ("train bad workers", ["run", "--workers", "0"], None, "--workers takes a number >= 1"),
    ("search bad workers", ["search", "--workers", "-1"], None, "--workers takes a number >= 1"),
    ("run skip unknown", ["run", "--skip", "everything"], None, "cannot skip everything"),
    ("search storage unknown scheme", ["search", "--quick", "--storage", "nosuch://x"], None,
     "cannot open the study storage nosuch://x"),
    ("search storage unknown, empty run dir given", ["search", "--quick", "--storage", "nosuch://x", "--run-dir",
                                                     "empty"], lambda cwd, base: (cwd / "empty").mkdir(),
     "cannot open the study storage"),  # the folder the user made stays, empty
    ("train broken loss, empty run dir given", ["train", "--run-dir", "empty", "--set", f"loss.name={PLUGINS}:loss_raises"],
     lambda cwd, base: (cwd / "empty").mkdir(), "my loss is broken"),
    ("search storage unreachable", ["search", "--quick", "--storage", "postgresql://nobody@127.0.0.1:1/x"], None,
     "cannot open the study storage"),
    # resume
    ("resume missing", ["train", "--resume", "nothing"], None, "nothing holds no run (no config.toml)"),
    ("resume a file", ["train", "--resume", "afile"], write("afile", "x"), "holds no run"),
    ("resume no config", ["train", "--resume", "run"], run_copy(remove_in_run("config.toml")), "holds no run"),
    ("resume corrupt config", ["train", "--resume", "run"], run_copy(write_in_run("config.toml", b"[x\n")),
     "is not valid TOML"),
    ("resume bare tensor", ["train", "--resume", "run", "--set", "epochs=3"],
     run_copy(replace_checkpoint(lambda c: torch.zeros(3))), "holds a Tensor, not what babysit writes"),
    ("resume wrong keys", ["train", "--resume", "run", "--set", "epochs=3"],
     run_copy(replace_checkpoint(lambda c: {"weights": c["model"]})), "lacks model, optimizer, epoch, metrics"),
    ("resume wrong shapes", ["train", "--resume", "run", "--set", "epochs=3", "--set", "width=24"],
     run_copy(), "does not fit this config's model"),
    ("resume garbage checkpoint", ["train", "--resume", "run", "--set", "epochs=3"],
     run_copy(replace_checkpoint(b"not a checkpoint")), "it is corrupt or not a babysit checkpoint"),
    ("resume pickled code", ["train", "--resume", "run", "--set", "epochs=3"],
     run_copy(replace_checkpoint(lambda c: {**c, "x": Path("evil")})), "it is corrupt or not a babysit checkpoint"),
    ("search resume missing", ["search", "--resume", "nothing"], None, "holds no run"),
    # plots and report
    ("plots no run", ["plots", "nothing"], None, "has no monitor records"),
    ("plots no watch", ["plots", "run"], run_copy(remove_in_run("watch")), "has no monitor records"),
    ("plots meta garbage", ["plots", "run", "--no-draw"], run_copy(write_in_run("watch/meta.json", b"{not json")),
     "meta.json is not readable JSON"),
    ("plots meta binary", ["plots", "run", "--no-draw"], run_copy(write_in_run("watch/meta.json", b"\xff\x00\xfe")),
     "meta.json is not readable JSON"),
    ("plots meta empty", ["plots", "run", "--no-draw"], run_copy(write_in_run("watch/meta.json", b"")),
     "meta.json is not readable JSON"),
    ("plots meta array", ["plots", "run", "--no-draw"], run_copy(write_in_run("watch/meta.json", b"[1, 2]")),
     "meta.json holds a list"),
    ("report no run", ["report", "nothing"], None, "nothing"),
    ("report bad port", ["report", "run", "--port", "70000"], run_copy(), "--port takes 0..65535"),
    ("report out is a folder", ["report", "run", "--out", "folder"], both(run_copy(), write("folder/x", "")),
     "--out folder is a folder"),
    ("report out under a file", ["report", "run", "--out", "afile/r.html"], both(run_copy(), write("afile", "x")),
     "afile is a file"),
    ("optimizers out is a folder", ["optimizers", "--out", "folder"], write("folder/x", ""), "should end in .png"),
    ("optimizers out png folder", ["optimizers", "--out", "f.png"], write("f.png/x", ""), "--out f.png is a folder"),
    ("optimizers wrong suffix", ["optimizers", "--out", "x.jpg"], None, "should end in .png"),
    ("optimizers gif suffix", ["optimizers", "--animate", "--out", "x.png"], None, "should end in .gif"),
    ("optimizers out under a file", ["optimizers", "--out", "afile/x.png"], write("afile", "x"), "afile is a file"),
    # ensemble
    ("ensemble no run", ["ensemble", "nothing"], None, "run directory nothing does not exist"),
    ("ensemble no config", ["ensemble", "run"], run_copy(remove_in_run("config.toml")), "has no config.toml"),
    ("ensemble bare tensor checkpoint", ["ensemble", "run", "--kind", "checkpoints", "-k", "2"],
     run_copy(replace_checkpoint(lambda c: torch.zeros(3))), "holds a Tensor"),
    ("ensemble checkpoint wrong keys", ["ensemble", "run", "--kind", "checkpoints", "-k", "2"],
     run_copy(replace_checkpoint(lambda c: {"weights": c["model"]})), "lacks model, config"),
    ("ensemble checkpoint wrong shapes", ["ensemble", "run", "--kind", "checkpoints", "-k", "2"],
     run_copy(replace_checkpoint(lambda c: {**c, "model": {k: v[:1] for k, v in c["model"].items()}})),
     "does not fit its config's model"),
    ("ensemble bad kind", ["ensemble", "run", "--kind", "bagging"], run_copy(), "invalid choice: 'bagging'"),
    # worker
    ("worker threads -1", ["worker", "c.toml", "--storage", "s.journal", "--study", "x", "--threads", "-1"],
     write("c.toml", ""), "--threads takes a whole number >= 1, not -1"),
    ("worker threads 0", ["worker", "c.toml", "--storage", "s.journal", "--study", "x", "--threads", "0"],
     write("c.toml", ""), "--threads takes"),
    ("worker max trials 0", ["worker", "c.toml", "--storage", "s.journal", "--study", "x", "--max-trials", "0"],
     write("c.toml", ""), "--max-trials takes"),
    ("worker poll 0", ["worker", "c.toml", "--storage", "s.journal", "--study", "x", "--poll", "0"],
     write("c.toml", ""), "--poll takes a number > 0"),
    ("worker poll nan", ["worker", "c.toml", "--storage", "s.journal", "--study", "x", "--poll", "nan"],
     write("c.toml", ""), "--poll takes"),
    ("worker wait -1", ["worker", "c.toml", "--storage", "s.journal", "--study", "x", "--wait", "-1"],
     write("c.toml", ""), "--wait takes"),
    ("worker seed -1", ["worker", "c.toml", "--storage", "s.journal", "--study", "x", "--seed", "-1"],
     write("c.toml", ""), "--seed takes"),
    ("worker config missing", ["worker", "c.toml", "--storage", "s.journal", "--study", "x"], None, "does not exist"),
    ("worker config bad value", ["worker", "c.toml", "--storage", "s.journal", "--study", "x"],
     write("c.toml", "[optim]\nlr = -1\n"), "optim.lr takes"),
    ("worker run dir a file", ["worker", "c.toml", "--storage", "s.journal", "--study", "x", "--run-dir", "afile"],
     both(write("c.toml", ""), write("afile", "x")), "--run-dir afile is a file"),
    ("worker no storage", ["worker", "c.toml", "--study", "x"], write("c.toml", ""), "required: --storage"),
    # usage errors: one line too
    ("unknown verb", ["fly"], None, "invalid choice: 'fly'"),
    ("unknown option", ["train", "--bogus"], None, "unrecognized arguments: --bogus"),
    ("option needs a number", ["gradcheck", "--burn-in", "many"], None, "invalid int value: 'many'"),
    ("gradcheck burn-in -1", ["gradcheck", "--burn-in", "-1"], None, "gradcheck.burn_in takes"),
]


def _cases():
    cases = []
    for i, (setting, message) in enumerate(BAD_SETTINGS):
        for verb in (*EVERY, ROTATE[i % len(ROTATE)]):
            setup = run_copy() if verb.startswith("ensemble") else None
            cases.append(pytest.param([*verb.split(), "--set", setting], setup, message,
                                      id=f"{verb}:{setting}"))
    for setting, message in BAD_PLUGINS:
        if message == "data_ok":
            continue
        for verb in ("train", "preflight") if setting.startswith("data") else ("train",):
            cases.append(pytest.param([verb, "--set", setting], None, message, id=f"{verb}:{setting}"))
    for name, argv, setup, message in COMMANDS:
        cases.append(pytest.param(argv, setup, message, id=name))
    return cases


CASES = _cases()
QUIET_VERBS = ("train", "run", "preflight", "gradcheck", "search", "worker", "ensemble")


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A small finished ``babysit train`` run (2 epochs) that run-directory cases copy."""
    path = tmp_path_factory.mktemp("base") / "run"
    assert main(["train", "--quiet", "--run-dir", str(path), *digits_args(), "--set", "epochs=2",
                 "--set", "width=16", "--set", "data.limit=300"]) == 0
    return path


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def call(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return exc.code


@pytest.mark.parametrize("argv, setup, message", CASES)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(argv, setup, message, base_run, tmp_path,
                                                         monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1]))  # tests.hostile_plugins
    if setup is not None:
        setup(tmp_path, base_run)
    before = tree(tmp_path)
    capsys.readouterr()
    code = call([*argv, "--quiet"] if argv[0] in QUIET_VERBS else argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("babysit: error: "), lines
    assert message in lines[0], lines[0]
    said = lines[0][len("babysit: error: "):]
    assert ": " in said or " takes " in said, "the line names what is wrong and the fix"
    assert tree(tmp_path) == before, "bad input left files behind"


def test_a_user_data_set_may_take_its_own_kwargs(tmp_path, monkeypatch, capsys):
    """The other side of refusing kwargs for built-ins: a user's function gets its kwargs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1]))
    assert main(["config", "--set", f"data.dataset={PLUGINS}:data_ok", "--set", "data.kwargs={wrong=1}"]) == 0
    assert main(["gradcheck", "-q", "--set", f"data.dataset={PLUGINS}:data_ok",
                 "--set", "data.kwargs={wrong=1}", "--set", "width=8"]) in (0, 1)
    assert "Traceback" not in capsys.readouterr().err


# Damage a reader must tolerate: the command works (exit 0), no traceback.
TOLERATED = [
    ("metrics line is an array", ["report", "run"]),
    ("metrics line is binary", ["report", "run"]),
    ("metrics line is an array", ["train", "--resume", "run", "--quiet"]),
    ("checkpoint named epoch_xyz", ["train", "--resume", "run", "--quiet"]),
]


def _damage(run: Path, case: str) -> None:
    metrics = run / "metrics.jsonl"
    lines = metrics.read_bytes().splitlines(keepends=True)
    if case == "metrics line is an array":
        metrics.write_bytes(lines[0] + b"[1, 2, 3]\n" + b"".join(lines[1:]))
    elif case == "metrics line is binary":
        metrics.write_bytes(lines[0] + b"\xff\xfe\x00\x81garbage\n" + b"".join(lines[1:]))
    else:
        shutil.copy(last_checkpoint(run), run / "checkpoints" / "epoch_xyz_val_0.99.pt")


@pytest.mark.parametrize("case, argv", TOLERATED)
def test_damaged_records_are_read_around(case, argv, base_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(base_run, tmp_path / "run")
    _damage(tmp_path / "run", case)
    assert main(argv) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_resume_records_the_new_config(base_run, tmp_path, monkeypatch):
    """``train --resume --set epochs=3`` trains to 3 and config.toml says 3 (it said 2)."""
    import tomllib

    monkeypatch.chdir(tmp_path)
    shutil.copytree(base_run, tmp_path / "run")
    assert main(["train", "--resume", "run", "--set", "epochs=3", "--quiet"]) == 0
    assert tomllib.loads((tmp_path / "run" / "config.toml").read_text())["train"]["epochs"] == 3


def test_run_directory_files_are_readable_by_the_team(base_run):
    """Files follow the umask (0644 under 022), not mkstemp's private 0600."""
    umask = os.umask(0o022)
    os.umask(umask)
    for path in base_run.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


@pytest.mark.parametrize("argv", [
    ["train", "--set", "epochs=-1"],
    ["search", "--set", "device=tpu"],
    ["train", "--set", f"data.dataset={PLUGINS}:data_raises"],
    ["fly"],
])
def test_a_real_process_says_one_line(argv, tmp_path):
    """The same promise through the installed entry point: a real process, its real stderr."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run([sys.executable, "-m", "babysit.cli", *argv], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())


def test_the_count():
    """How many bad inputs the trial tries (the lead's report quotes it)."""
    print(f"\nhostile inputs tried: {len(CASES)} one-line cases, {len(TOLERATED)} tolerated damages")
    assert len(CASES) >= 150
