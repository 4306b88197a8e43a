"""Reproduce this run: the command, the code, the data, the model, the seed, the versions.

The config is shown as what differs from babysit's defaults (what the user and the search chose),
the complete ``config.toml`` behind a ``<details>``: two full dumps of ~100 keys that differ in
four hide the four.
"""

from __future__ import annotations

import hashlib
import shlex

from ..config import DEFAULTS
from .cache import cached
from .markup import e, fmt, key_values, pre, table
from .provenance import code_version, describe_experiment
from .sections import Section, error_body, missing_body


def described(run) -> dict:
    """The data fingerprint and architecture of the run's final config (see provenance), plus
    ``n_val``, the validation split's size; {} when there is no config."""
    config, text = run.config(), run.config_text()
    if not config.ok or not isinstance(config.data, dict):
        return {}
    # Rebuilding the data and model takes seconds (imports, loading, hashing): once per config.
    key = hashlib.sha256(text.data.encode() if text.ok else b"").hexdigest()
    description = cached(run.path, "experiment", key, lambda: describe_experiment(config.data),
                         keep=lambda d: isinstance(d, dict) and "error" not in d)  # a fixable failure: retry
    return dict(description) if isinstance(description, dict) else {}


def config_changes(config: dict, base: dict = DEFAULTS, prefix: str = "") -> list[dict]:
    """Every dotted key whose value in `config` differs from `base` (new keys included)."""
    rows = []
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        default = base.get(key) if isinstance(base, dict) else None
        if isinstance(value, dict) and isinstance(default, dict):
            rows.extend(config_changes(value, default, dotted + "."))
        elif value != default:
            rows.append({"key": dotted, "this run": value, "default": default})
    return rows


def reproduction_section(run, info: dict, description: dict) -> Section:
    config_text, config = run.config_text(), run.config()
    facts: list[tuple[str, object]] = []
    seed = (config.data or {}).get("seed") if config.ok else info.get("seed")
    facts.append(("seed", seed if seed is not None else "not recorded"))
    if info.get("command"):
        cmd = info["command"]
        facts.append(("command", shlex.join(cmd) if isinstance(cmd, list) else cmd))
    if info.get("cwd"):
        facts.append(("working directory", info["cwd"]))
    versions = dict(info.get("versions") or {})
    facts.append(("code", versions.pop("babysit_code", None) or f"{code_version()} (when this page was written)"))
    if description.get("fingerprint"):
        facts.append(("data fingerprint", f"{description['fingerprint']} over {description['shapes']} "
                                          "(the data as loaded when a report was first written for this config)"))
    if description.get("parameters") is not None:
        facts.append(("parameters", f"{description['parameters']:,}"))
    if description.get("error"):
        facts.append(("data and model", description["error"]))
    for key, value in versions.items():
        facts.append((key, value))
    device = info.get("device")
    if isinstance(device, dict):
        facts.extend((f"device {k}", v) for k, v in device.items())
    elif device:
        facts.append(("device", device))
    if not info:
        facts.append(("versions, device", "not recorded (no run.json)"))
    best = [p.name for p in run.checkpoints()]
    if best:
        facts.append(("checkpoints", f"{len(best)} in checkpoints/, last {best[-1]}"))
    body = key_values(facts)
    body += (f"<p>Retrain the final model with the same numbers: <code>babysit train "
             f"{e(run.path / 'config.toml')} --run-dir NEW_DIR</code> (same machine, same seed).</p>")
    if description.get("modules"):
        body += ("<h3>Architecture</h3>" + table(
            description["modules"], ["name", "type", "parameters", "detail"], limit=12,
            caption="every module by its qualified name: the name the gradient check and the monitor use"))
    if config.ok and isinstance(config.data, dict):
        changes = config_changes(config.data)
        body += ("<h3>config.toml: what differs from the defaults</h3>"
                 + (table(changes, ["key", "this run", "default"]) if changes else "<p>Nothing: the defaults.</p>"))
    if config_text.ok:
        body += ("<details><summary>the complete config.toml (the final training, as resolved)</summary>"
                 + pre(config_text.data) + "</details>")
    if isinstance(info.get("input_config"), dict):
        changes = config_changes(info["input_config"])
        body += ("<details><summary>the workflow's input config: what differs from the defaults</summary>"
                 + (table(changes, ["key", "this run", "default"]) if changes else "<p>Nothing.</p>")
                 + "</details>")
    # a plain `babysit train` writes no run.json: normal, not a problem (the facts say what is missing)
    status = "ok" if config_text.ok else ("warn" if info else "missing")
    if not config_text.ok:
        body = missing_body(["config.toml"], "No training wrote its config here.") + error_body([config_text]) + body
    verdict = f"seed {fmt(seed)}"
    if description.get("parameters") is not None:
        verdict += f", {description['parameters']:,} parameters"
    if info.get("versions"):
        verdict += f", torch {info['versions'].get('torch', '?')} on {_device_name(device)}"
    return Section("reproduce", "Reproduce this run", "info" if status == "ok" else status, verdict, body)


def _device_name(device) -> str:
    if isinstance(device, dict):
        return str(device.get("name") or device.get("type") or "?")
    return str(device or "?")
