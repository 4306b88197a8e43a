"""The search space: which config keys to vary, over which range, on which scale.

Declared in the config's ``[search.space]`` table, one entry per hyperparameter::

    [search.space]
    lr = {low = 1e-6, high = 1, log = true}     # lr = 10 ** uniform(-6, 0)
    dropout = {low = 0, high = 0.6}             # plain uniform
    depth = {low = 1, high = 4}                 # integer (the config key holds an int)
    optim = {choices = ["nesterov", "adam"]}    # categorical
    mu = {low = 0.5, high = 0.99, when = {"optim.name" = ["momentum", "nesterov"]}}

A ``when`` table makes a parameter conditional: it is sampled only in trials whose searched
categorical parameters (here the update rule) take one of the listed values; other trials keep
the config's value and record none (momentum's mu means nothing to Adam, so an Adam trial
should neither spend a dimension of the search on it nor be compared by it).

Keys are config keys, dotted (``optim.lr``) or bare where unambiguous (``lr``; ``optim`` alone
means ``optim.name``). Learning rates and regularization strengths are searched on a log scale
unless ``log = false`` is written: the notes' point is that their effect is multiplicative, so
equal steps in log space are equal steps in effect.
"""

from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import all_keys, get_key, resolve_key, set_key
from ..errors import UserError

SPEC_KEYS = {"low", "high", "log", "int", "choices", "step", "when"}

# Leaf names searched on a log scale by default: their effect is multiplicative.
LOG_BY_DEFAULT = ("lr", "learning_rate", "reg", "weight_decay", "l2")


@dataclass(frozen=True)
class Param:
    """One hyperparameter: a config key and its range (numeric) or its choices (categorical)."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    int: bool = False
    choices: tuple = field(default_factory=tuple)
    # ((key, (value, ...)), ...): sampled only where every such key took one of its values
    when: tuple = field(default_factory=tuple)

    @property
    def numeric(self) -> bool:
        return not self.choices

    def applies(self, sampled: dict[str, Any]) -> bool:
        """Whether this parameter is sampled in a trial whose values so far are `sampled`."""
        return all(sampled.get(key) in values for key, values in self.when)

    def distribution(self):
        """The equivalent Optuna distribution."""
        from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                          IntDistribution)

        if not self.numeric:
            return CategoricalDistribution(list(self.choices))
        if self.int:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def suggest(self, trial) -> Any:
        if not self.numeric:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.int:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    # The param's own scale: log10 for log ranges, identity otherwise. Border alarms and
    # narrowing measure distances there, so "the outer 10%" of 1e-6..1 is 10**-0.6..1.
    def scale(self, value: float) -> float:
        return math.log10(value) if self.log else float(value)

    def unscale(self, u: float) -> float:
        return 10.0 ** u if self.log else u

    def with_range(self, low: float, high: float) -> "Param":
        if self.int:
            low, high = math.floor(low + 1e-9), math.ceil(high - 1e-9)
            high = max(high, low)
        return Param(self.key, low, high, self.log, self.int, when=self.when)

    def to_dict(self) -> dict:
        spec = ({"choices": list(self.choices)} if not self.numeric else
                {"low": self.low, "high": self.high, "log": self.log, "int": self.int})
        if self.when:
            spec["when"] = {key: list(values) for key, values in self.when}
        return spec

    def describe(self) -> str:
        condition = "".join(f" if {key} in {{{', '.join(map(str, values))}}}" for key, values in self.when)
        if not self.numeric:
            return f"{self.key} in {{{', '.join(map(str, self.choices))}}}{condition}"
        kind = ("log-" if self.log else "") + ("int" if self.int else "uniform")
        return f"{self.key} ~ {kind}[{self.low:g}, {self.high:g}]{condition}"


class Space:
    """An ordered set of :class:`Param`; samples a trial and writes the values into a config."""

    def __init__(self, params: list[Param]):
        self.params = {p.key: p for p in params}

    @classmethod
    def from_config(cls, config: dict, table: dict | None = None, *, free: bool = False) -> "Space":
        """Parse (and check) ``config['search']['space']``, or `table` in its format. With
        `free`, names are not config keys but the parameters of a user's own objective
        (see :mod:`.objective`): taken as written, log scale by the same names."""
        table = config["search"]["space"] if table is None else table
        params = [parse_param(config, name, spec, free=free) for name, spec in flatten(table).items()]
        if not params:
            raise UserError("the search space is empty: declare hyperparameters in [search.space], "
                            "e.g. lr = {low = 1e-6, high = 1, log = true}")
        keys = [p.key for p in params]
        duplicate = next((k for k in keys if keys.count(k) > 1), None)
        if duplicate:
            raise UserError(f"search.space names config key '{duplicate}' twice: keep one entry")
        return cls([settle_condition(config, p, params, free=free) for p in params])

    @classmethod
    def from_dict(cls, table: dict) -> "Space":
        """The inverse of :meth:`to_dict` (already checked, full keys)."""
        return cls([Param(key, spec.get("low"), spec.get("high"), spec.get("log", False),
                          spec.get("int", False), tuple(spec.get("choices", ())),
                          tuple((k, tuple(v)) for k, v in spec.get("when", {}).items()))
                    for key, spec in table.items()])

    def to_dict(self) -> dict:
        return {key: p.to_dict() for key, p in self.params.items()}

    def __iter__(self):
        return iter(self.params.values())

    def __getitem__(self, key: str) -> Param:
        return self.params[key]

    def __len__(self) -> int:
        return len(self.params)

    def numeric(self) -> list[Param]:
        return [p for p in self if p.numeric]

    def suggest(self, trial) -> dict[str, Any]:
        """Sample every hyperparameter through an Optuna trial (the study's sampler decides):
        the unconditional ones first, then each conditional one whose condition they meet."""
        sampled = {p.key: p.suggest(trial) for p in self if not p.when}
        sampled.update({p.key: p.suggest(trial) for p in self if p.when and p.applies(sampled)})
        return {key: sampled[key] for key in self.params if key in sampled}

    def distributions(self) -> dict:
        return {p.key: p.distribution() for p in self}

    def describe(self) -> str:
        return "; ".join(p.describe() for p in self)


def apply(config: dict, params: dict[str, Any]) -> dict:
    """A copy of `config` with each hyperparameter value written into its key."""
    config = copy.deepcopy(config)
    for key, value in params.items():
        set_key(config, key, value)
    return config


def flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    """TOML reads ``optim.lr = {...}`` as nested tables: join them back into dotted names."""
    flat = {}
    for name, spec in table.items():
        if isinstance(spec, dict) and spec and not (set(spec) & SPEC_KEYS):
            flat.update(flatten(spec, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = spec
    return flat


def parse_param(config: dict, name: str, spec: Any, *, free: bool = False) -> Param:
    where = f"search.space.{name}"
    example = f"write e.g. {name} = {{low = 1e-6, high = 1, log = true}} or {{choices = [...]}}"
    if not isinstance(spec, dict):
        raise UserError(f"{where} must be a table, not {spec!r}: {example}")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise UserError(f"{where} has unknown field(s) {', '.join(sorted(unknown))}: "
                        f"use low, high, log, int, choices or when")
    key = name if free else resolve_space_key(config, name)
    current = None if free else get_key(config, key)
    when = parse_when(config, where, spec.get("when"), free=free)
    spec = {k: v for k, v in spec.items() if k != "when"}
    if "choices" in spec:
        return replace(parse_choices(config, key, where, spec, free=free), when=when)
    if "low" not in spec or "high" not in spec:
        raise UserError(f"{where} needs both low and high (or choices): {example}")
    low, high = spec["low"], spec["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise UserError(f"{where}: low and high must be numbers, not {low!r} and {high!r}")
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise UserError(f"{where}: low must be below high (got low={low}, high={high}): swap or fix them")
    is_int = spec.get("int", isinstance(current, int) and not isinstance(current, bool))
    log = spec.get("log", key.rsplit(".", 1)[-1] in LOG_BY_DEFAULT)
    if log and low <= 0:
        raise UserError(f"{where}: a log range needs low > 0 (got low={low}): use a positive low "
                        f"like 1e-6, or log = false")
    if is_int and (low != int(low) or high != int(high)):
        raise UserError(f"{where}: '{key}' takes whole numbers, so low and high must be integers "
                        f"(got {low}, {high})")
    if isinstance(current, bool) or isinstance(current, str):
        raise UserError(f"{where}: '{key}' is not a number ({current!r}): give choices = [...] instead")
    return Param(key, float(low) if not is_int else int(low), float(high) if not is_int else int(high),
                 bool(log), bool(is_int), when=when)


def parse_when(config: dict, where: str, table: Any, *, free: bool = False) -> tuple:
    """``{"optim.name" = ["momentum", "nesterov"]}`` -> ``(("optim.name", ("momentum", "nesterov")),)``."""
    if table is None:
        return ()
    example = 'e.g. when = {"optim.name" = ["momentum", "nesterov"]}'
    if not isinstance(table, dict) or not table:
        raise UserError(f"{where}: when must be a table of key = [values], {example}")
    conditions = []
    for name, values in flatten_when(table).items():
        if not isinstance(values, list) or not values:
            raise UserError(f"{where}: when.{name} must be a non-empty list of values, {example}")
        key = name if free else resolve_space_key(config, name)
        conditions.append((key, tuple(values)))
    return tuple(conditions)


def flatten_when(table: dict, prefix: str = "") -> dict[str, Any]:
    """TOML reads ``when = {optim.name = [...]}`` as nested tables: join the dotted name back."""
    flat = {}
    for name, value in table.items():
        if isinstance(value, dict):
            flat.update(flatten_when(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def settle_condition(config: dict, param: Param, params: list[Param], *, free: bool = False) -> Param:
    """A condition on a searched categorical parameter stays; one on a key the search does not
    vary is decided now from the config: it holds (the parameter is always searched) or it
    does not, which is an error (the parameter could never be sampled)."""
    searched = {p.key: p for p in params}
    kept = []
    for key, values in param.when:
        if key == param.key:
            raise UserError(f"search.space.{param.key}: its when names the parameter itself: "
                            "name another searched parameter, such as optim.name")
        if key in searched:
            if searched[key].numeric or searched[key].when:
                raise UserError(f"search.space.{param.key}: when names {key}, which is not an "
                                "unconditional choices = [...] parameter: condition on a "
                                "categorical parameter, such as optim.name")
            kept.append((key, values))
            continue
        value = None if free else get_key(config, key)
        if value not in values:
            raise UserError(f"search.space.{param.key} is searched only when {key} is one of "
                            f"{', '.join(map(str, values))}, but {key} = {value!r} and is not searched: "
                            f"search {key} as well, or remove {param.key} from [search.space]")
    return replace(param, when=tuple(kept))


def parse_choices(config: dict, key: str, where: str, spec: dict, *, free: bool = False) -> Param:
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        raise UserError(f"{where}: choices must be a non-empty list, e.g. choices = [\"nesterov\", \"adam\"]")
    if set(spec) - {"choices"}:
        raise UserError(f"{where}: give either choices or low/high, not both")
    if free:  # the user's objective decides what its values mean
        return Param(key, choices=tuple(choices))
    probe = copy.deepcopy(config)
    for value in choices:  # every choice must be a valid value of the key: fail now, not in trial 17
        set_key(probe, key, value)
    if key == "optim.name":
        from ..optim import OPTIMIZERS

        bad = [c for c in choices if c not in OPTIMIZERS]
        if bad:
            raise UserError(f"{where}: unknown update rule(s) {', '.join(map(str, bad))}: "
                            f"choose from {', '.join(OPTIMIZERS)}")
    return Param(key, choices=tuple(choices))


def resolve_space_key(config: dict, name: str) -> str:
    """``lr`` -> ``optim.lr``; a table name such as ``optim`` alone means its ``name`` key."""
    node = config
    for part in name.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and "name" in node:
        return f"{name}.name"
    try:
        return resolve_key(config, name)
    except UserError as exc:
        if "ambiguous" in str(exc):
            raise UserError(f"search.space: {exc}") from None
    keys = [k for k in all_keys(config) if not k.startswith("search.")]
    by_leaf = {k.rsplit(".", 1)[-1]: k for k in keys}
    close = difflib.get_close_matches(name, keys, n=1) or \
        [by_leaf[m] for m in difflib.get_close_matches(name.rsplit(".", 1)[-1], by_leaf, n=1)]
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise UserError(f"search.space: unknown config key '{name}'{hint}: name a config key such as "
                    "optim.lr, loss.reg, model.dropout, model.depth or optim.name")
