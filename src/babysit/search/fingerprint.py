"""The experiment a search trains, fingerprinted, so that every worker trains the same one.

Trials of one study are compared with each other: a worker whose config builds another data
set, model, loss, update rule or training (``model.width = 512`` where the search has 16)
would put incomparable trials on one leaderboard, and carry checkpoints of the wrong shape
into the next stage. The master stores the experiment's part of the config and its SHA-256 on
every study it makes; a joining worker (and ``--resume``) compares its own and refuses a
different one, naming the keys that differ.

Left out of the comparison: what may differ from machine to machine (``device``,
``data.path``), what the search sets itself (``[search]``, the name), and what only watches
(``watch``, ``preflight``, ...).

A search of a user's own objective (:mod:`.objective`) trains what that function does: its
experiment is the function's ``package.module:function`` reference and the seed.
"""

from __future__ import annotations

import hashlib
import json

from ..errors import UserError

ATTR = "babysit_experiment"  # on the search's study and on each stage's: {"fingerprint", "experiment"}
EXPERIMENT_KEYS = ("seed", "data", "model", "loss", "optim", "train")
MACHINE_KEYS = {("data", "path")}


def experiment_of(config: dict, objective: str | None = None) -> dict:
    """The keys of `config` that decide what a trial trains, as plain JSON values (the
    `objective`'s reference and the seed, for a search of a user's own objective)."""
    if objective is not None:
        return {"objective": objective, "seed": config["seed"]}
    part = {key: config[key] for key in EXPERIMENT_KEYS if key in config}
    part = json.loads(json.dumps(part, sort_keys=True, default=str))
    for table, key in MACHINE_KEYS:
        part.get(table, {}).pop(key, None)
    return part


def fingerprint(config: dict, objective: str | None = None) -> str:
    return hashlib.sha256(json.dumps(experiment_of(config, objective), sort_keys=True).encode()).hexdigest()


def record(config: dict, objective: str | None = None) -> dict:
    """What the master stores on a study (the ``ATTR`` user attribute)."""
    return {"fingerprint": fingerprint(config, objective), "experiment": experiment_of(config, objective)}


def differences(stored: dict, mine: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, e.g. ``["model.width: 16 in the search, 512 here"]``."""
    found = []
    for key in sorted(set(stored) | set(mine)):
        a, b = stored.get(key), mine.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {a!r} in the search, {b!r} here")
    return found


def check_same_experiment(attrs: dict, config: dict, study_name: str, fix: str,
                          objective: str | None = None) -> None:
    """Refuse `config` when the study (its user `attrs`) was made for another experiment.
    Studies made before fingerprints existed pass."""
    stored = attrs.get(ATTR)
    if not stored or stored.get("fingerprint") == fingerprint(config, objective):
        return
    searched = stored.get("experiment", {}).get("objective")
    if searched != objective:  # one searches a user's function, the other something else
        def what(ref):
            return f"the objective {ref!r}" if ref else "the config's experiment"
        raise UserError(f"study {study_name!r} searches {what(searched)}, not {what(objective)}: "
                        + (f"give --objective {searched}" if searched else "leave out --objective"))
    diff = differences(stored.get("experiment", {}), experiment_of(config, objective))
    shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
    raise UserError(f"this config trains another experiment than study {study_name!r} "
                    f"({shown or 'the fingerprints differ'}): {fix}")
