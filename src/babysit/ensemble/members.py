"""Where ensemble members come from: checkpoints on disk, in three ways the notes name.

1. **Same model, different initializations** — :func:`seed_members` trains K copies of one
   configuration with seeds ``seed, seed+1, ...`` into ``run_dir/ensemble/seeds/<seed>/``.
2. **Top models of a search** — :func:`top_trial_members` reads ``run_dir/trials/<number>/``
   and takes each trial's best checkpoint (the validation score is in the file name), then
   the K best trials. Nothing is retrained.
3. **Checkpoints of one run** — :func:`checkpoint_members`: the last K per-epoch checkpoints in
   ``run_dir/checkpoints/``.

Every member is rebuilt with :func:`babysit.experiment.model_from_checkpoint` (weights loaded
with ``weights_only=True``) and put in eval mode. The config that each checkpoint carries may
name a user's own code only where the `trusted` config — the one the user passed — names the
same: checkpoints and trial folders can come from other machines.
"""

from __future__ import annotations

import copy
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import experiment
from ..config import to_toml
from ..errors import UserError
from ..rundir import RunDir, list_checkpoints, load_checkpoint
from ..train import best_checkpoint, latest_checkpoint
from ..train.averaging import AVERAGE_KEY


@dataclass
class Member:
    """One model of an ensemble, with where it came from."""

    name: str  # "seed 3", "trial 12", "epoch 7"
    model: nn.Module
    path: Path
    config: dict


def load_member(path: Path, name: str, trusted: dict | None) -> Member:
    model, ckpt = experiment.model_from_checkpoint(path, trusted=trusted)
    return Member(name, model.eval(), Path(path), ckpt["config"])


def seed_members(config: dict, run_dir: RunDir, k: int, *, quiet: bool = False) -> list[Member]:
    """K copies of `config` trained from seeds ``seed .. seed+k-1``; each member is its final epoch.

    A copy already trained with the same config is reused, and one interrupted half-way is
    resumed from its latest checkpoint (training goes through ``experiment.train(resume=True)``).
    """
    check_k(k)
    members = []
    for seed in range(config["seed"], config["seed"] + k):
        cfg = copy.deepcopy(config)
        cfg["seed"] = seed
        cfg["name"] = f"{config['name']}-seed{seed}"
        cfg["train"]["checkpoints"] = True
        folder = RunDir(run_dir / "ensemble" / "seeds" / str(seed))
        _forget_if_config_changed(folder, cfg)
        experiment.train(cfg, folder, quiet=quiet, resume=True)
        last = latest_checkpoint(folder / "checkpoints")
        if last is None:  # zero epochs
            raise UserError(f"the seed copies trained no epoch (train.epochs = {config['train']['epochs']}): "
                            "set train.epochs >= 1")
        members.append(load_member(last, f"seed {seed}", trusted=config))
    return members


def _forget_if_config_changed(folder: RunDir, config: dict) -> None:
    """A copy trained under another config is not a copy of this one: start it afresh."""
    saved = folder / "config.toml"
    if saved.is_file() and saved.read_text() != to_toml(config):
        for path in list_checkpoints(folder / "checkpoints"):
            path.unlink()
        (folder / "metrics.jsonl").unlink(missing_ok=True)
        saved.unlink()


def trial_folders(run_dir: RunDir) -> list[Path]:
    """``run_dir/trials/<number>/`` folders holding at least one checkpoint, by trial number."""
    root = run_dir / "trials"
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and p.name.isdigit() and list_checkpoints(p)]
    return sorted(folders, key=lambda p: int(p.name))


def score_in_name(path: Path) -> float:
    """The validation score written in a checkpoint's name (``epoch_007_val_0.9312.pt``)."""
    try:
        return float(path.stem.rsplit("_val_", 1)[1])
    except (IndexError, ValueError):
        return float("-inf")


def configuration_key(folder: Path) -> str:
    """What makes a trial a configuration of its own: its config.toml less the trial's name and
    epochs. A trial that a later stage continued has the same key as its source."""
    try:
        config = tomllib.loads((folder / "config.toml").read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return f"folder {folder}"  # no readable config: a configuration of its own
    config.pop("name", None)
    config.get("train", {}).pop("epochs", None)
    return json.dumps(config, sort_keys=True, default=str)


def best_per_configuration(run_dir: RunDir) -> list[tuple[Path, str]]:
    """(best checkpoint, trial number) of each distinct configuration, best score first.

    A configuration continued across stages lives in several trial folders (the later ones
    hold links to the earlier checkpoints); it is one candidate member, at its best epoch.
    On ties the lower trial number (found earlier) wins.
    """
    best: dict[str, tuple[Path, str]] = {}
    for folder in trial_folders(run_dir):
        path, key = best_checkpoint(folder), configuration_key(folder)
        if key not in best or score_in_name(path) > score_in_name(best[key][0]):
            best[key] = (path, folder.name)
    return sorted(best.values(), key=lambda item: (-score_in_name(item[0]), int(item[1])))


def top_trial_members(run_dir: RunDir, k: int, trusted: dict | None = None) -> list[Member]:
    """The K distinct configurations of a finished search with the best validation score,
    each at its best epoch."""
    best = available_top_trials(run_dir, k)
    return [load_member(path, f"trial {number}", trusted) for path, number in best[:k]]


def available_top_trials(run_dir: RunDir, k: int) -> list[tuple[Path, str]]:
    """:func:`best_per_configuration`, refused when it has fewer than `k` members to give."""
    check_k(k)
    if not trial_folders(run_dir):
        raise UserError(f"{run_dir / 'trials'} holds no trial checkpoints: run a search into "
                        f"{run_dir.path} first, or pick another --kind")
    best = best_per_configuration(run_dir)
    if k > len(best):
        raise UserError(f"asked for the top {k} trials but {run_dir / 'trials'} has only "
                        f"{len(best)} distinct configurations with checkpoints: use -k {len(best)} or fewer")
    return best


def checkpoint_members(run_dir: RunDir, k: int, trusted: dict | None = None) -> list[Member]:
    """The last K per-epoch checkpoints of the run in ``run_dir/checkpoints/``."""
    found = available_checkpoints(run_dir, k)
    return [load_member(path, f"epoch {int(path.name.split('_')[1])}", trusted) for path in found[-k:]]


def available_checkpoints(run_dir: RunDir, k: int) -> list[Path]:
    """The run's per-epoch checkpoints, refused when there are fewer than `k`."""
    check_k(k)
    found = list_checkpoints(run_dir / "checkpoints")
    if not found:
        raise UserError(f"{run_dir / 'checkpoints'} holds no checkpoints: train into it first "
                        f"(babysit train --run-dir {run_dir.path})")
    if k > len(found):
        raise UserError(f"asked for {k} checkpoints but {run_dir / 'checkpoints'} has only "
                        f"{len(found)}: use -k {len(found)} or fewer")
    return found


def average_from_checkpoint(path: str | Path, trusted: dict | None = None) -> tuple[nn.Module, nn.Module, dict]:
    """(raw model, averaged model, checkpoint) from a checkpoint trained with the parameter average."""
    raw, ckpt = experiment.model_from_checkpoint(path, trusted=trusted)
    if AVERAGE_KEY not in ckpt:
        raise UserError(f"checkpoint {path} holds no averaged weights: train with "
                        "ensemble.ema_decay > 0 (the default is 0.99)")
    averaged = experiment.new_model(ckpt["config"], experiment.load_split(ckpt["config"]))
    averaged.load_state_dict(ckpt[AVERAGE_KEY])
    return raw.eval(), averaged.eval(), ckpt


def last_averaged_checkpoint(run_dir: RunDir) -> Path | None:
    """The run's latest checkpoint if it carries averaged weights."""
    last = latest_checkpoint(run_dir / "checkpoints")
    if last is None or AVERAGE_KEY not in load_checkpoint(last):
        return None
    return last


def check_k(k: int) -> None:
    if k < 2:
        raise UserError(f"an ensemble needs at least 2 members, got k = {k}: use -k 2 or more")


def check_compatible(members: list[Member], probe: torch.Tensor) -> None:
    """All members must take the same inputs and give scores of the same shape."""
    shapes = {}
    for m in members:
        try:
            with torch.no_grad():
                shapes[m.name] = tuple(m.model(probe).shape[1:])
        except RuntimeError as exc:
            raise UserError(f"member {m.name} ({m.path}) does not accept the validation inputs "
                            f"of shape {tuple(probe.shape[1:])} ({str(exc).splitlines()[0]}): "
                            "ensemble members must be trained on the same data") from None
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{name}: {shape}" for name, shape in shapes.items())
        raise UserError(f"ensemble members give outputs of different shapes ({listing}): "
                        "members must predict the same classes")
