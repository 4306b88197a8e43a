"""The preflight's verdicts: one :class:`CheckResult` per check, gathered in a :class:`PreflightReport`."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CheckResult:
    """The verdict of one check.

    ``passed`` is the verdict, ``summary`` one short line of what was measured, ``message`` what
    it means and what to do, and ``values`` the measured numbers (also readable as attributes:
    ``result.loss``).
    """

    name: str
    passed: bool
    summary: str
    message: str
    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        # Only called when normal lookup fails: expose the measured numbers as attributes.
        values = self.__dict__.get("values", {})
        if key in values:
            return values[key]
        raise AttributeError(f"{type(self).__name__} {self.__dict__.get('name')!r} has no {key!r}; "
                             f"measured: {', '.join(values) or 'nothing'}")

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def verdict(self) -> str:
        return "ok" if self.passed else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "summary": self.summary, "message": self.message, **self.values}


@dataclass
class PreflightReport:
    """All checks of one preflight. ``passed`` when every check passed; ``str()`` is the table."""

    checks: dict[str, CheckResult]
    title: str = "preflight"
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, check in self.checks.items() if not check.passed]

    def __getitem__(self, name: str) -> CheckResult:
        return self.checks[name]

    def to_dict(self) -> dict[str, Any]:
        """``{"passed", "checks": {name: {"passed", "summary", "message", ...numbers}}, ...}``."""
        return {"passed": self.passed, "title": self.title, "seconds": round(self.seconds, 3),
                "checks": {name: check.to_dict() for name, check in self.checks.items()}}

    def table(self, width: int = 100) -> str:
        """One line per check (name, verdict, what was measured); each failure is followed by
        what it means and what to do."""
        n_ok = sum(check.passed for check in self.checks.values())
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"{self.title}: {verdict}, {n_ok} of {len(self.checks)} checks passed "
                 f"({self.seconds:.1f} s)"]
        name_width = max([len("check")] + [len(name) for name in self.checks])
        lines.append(f"  {'check':<{name_width}}  result  measured")
        for name, check in self.checks.items():
            lines.append(f"  {name:<{name_width}}  {check.verdict:<6}  {check.summary}")
            if not check.passed:
                indent = " " * (name_width + 12)
                lines.extend(textwrap.wrap(check.message, width=width, initial_indent=indent[:-2] + "→ ",
                                           subsequent_indent=indent))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def details(self) -> str:
        """The table followed by every check's message (report.txt)."""
        parts = [self.table(), ""]
        for name, check in self.checks.items():
            parts.append(textwrap.fill(f"{name} [{check.verdict}]: {check.message}", width=100,
                                       subsequent_indent="    "))
        return "\n".join(parts) + "\n"
