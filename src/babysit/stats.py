"""How sure an accuracy is: the notes' numbers with their n and a 95% interval.

An accuracy measured on n examples is a proportion, and on a few hundred examples a point or
two is luck. Two intervals, both closed-form (no resampling, so the same numbers every time):

* **Wilson score interval** for one proportion p = k/n (Wilson 1927), with z = 1.96:

      centre = (p + z²/2n) / (1 + z²/n)
      half   = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)

  Unlike p ± z·sqrt(p(1-p)/n) it stays inside [0, 1] and is not zero-width at p = 0 or 1.

* **Newcombe's interval for a paired difference** (Newcombe 1998, method 10) when two models
  are scored on the same examples. With a = both right, b = only A right, c = only B right,
  d = both wrong, p1 = (a+b)/n, p2 = (a+c)/n, their Wilson intervals [l1,u1], [l2,u2] and
  the correlation phi = (ad - bc) / sqrt((a+b)(c+d)(a+c)(b+d)) (0 when undefined):

      low  = (p1 - p2) - sqrt((p1-l1)² - 2 phi (p1-l1)(u2-p2) + (u2-p2)²)
      high = (p1 - p2) + sqrt((u1-p1)² - 2 phi (u1-p1)(p2-l2) + (p2-l2)²)

  Pairing matters: two models that miss mostly the same examples differ by much less noise
  than two independent samples would. An interval that holds 0 is "within noise".

* **Unpaired**: the same formula with phi = 0 (Newcombe's method 10 for two independent
  proportions), for accuracies whose per-example hits are not at hand (search trials). On the
  same examples it is wider than the paired interval: it says "within noise" more often,
  never less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

Z95 = 1.959963984540054  # the two-sided 95% quantile of the normal distribution


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the proportion `correct`/`n` (``(0, 1)`` when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z / scale * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Accuracy:
    """An accuracy with its n and 95% Wilson interval."""

    correct: int
    n: int

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    @classmethod
    def from_rate(cls, rate: float, n: int) -> "Accuracy":
        """The accuracy `rate` measured on `n` examples (a share k/n, so k = round(rate * n))."""
        return cls(int(round(rate * n)), n)

    @classmethod
    def of(cls, hits: Sequence[bool]) -> "Accuracy":
        hits = [bool(h) for h in hits]
        return cls(sum(hits), len(hits))

    def to_dict(self) -> dict:
        low, high = self.interval
        return {"acc": self.value, "n": self.n, "low": low, "high": high}

    def __str__(self) -> str:
        low, high = self.interval
        return f"{self.value:.4f} (n={self.n}, 95% CI {low:.4f}-{high:.4f})"

    def brief(self, n: bool = True) -> str:
        """Short, for lines that carry several: ``97.3% (96.1-98.1, n=359)``, the brackets
        holding the 95% interval (`n` False leaves the n to a line that states it once)."""
        low, high = self.interval
        size = f", n={self.n}" if n else ""
        return f"{100 * self.value:.1f}% ({100 * low:.1f}-{100 * high:.1f}{size})"


def brief(value: float, n: int | None) -> str:
    """An accuracy `value` (a fraction) measured on `n` examples, as :meth:`Accuracy.brief`;
    the bare value where n was not recorded."""
    return Accuracy.from_rate(value, n).brief() if n else f"{100 * value:.1f}% (n not recorded)"


@dataclass(frozen=True)
class PairedDifference:
    """Accuracy of A minus accuracy of B on the same n examples, with Newcombe's 95% interval."""

    only_a: int  # examples A gets right and B wrong
    only_b: int  # examples B gets right and A wrong
    both: int  # examples both get right
    n: int

    @classmethod
    def of(cls, hits_a: Sequence[bool], hits_b: Sequence[bool]) -> "PairedDifference":
        hits_a, hits_b = [bool(h) for h in hits_a], [bool(h) for h in hits_b]
        if len(hits_a) != len(hits_b):
            raise ValueError(f"paired accuracies need the same examples: {len(hits_a)} != {len(hits_b)}")
        pairs = list(zip(hits_a, hits_b))
        return cls(only_a=pairs.count((True, False)), only_b=pairs.count((False, True)),
                   both=pairs.count((True, True)), n=len(pairs))

    @property
    def value(self) -> float:
        return (self.only_a - self.only_b) / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        n = self.n
        if n == 0:
            return -1.0, 1.0
        a, b, c = self.both, self.only_a, self.only_b
        d = n - a - b - c
        denominator = (a + b) * (c + d) * (a + c) * (b + d)
        phi = (a * d - b * c) / math.sqrt(denominator) if denominator > 0 else 0.0
        return newcombe_interval(Accuracy(a + b, n), Accuracy(a + c, n), phi)

    @property
    def verdict(self) -> str:
        """"gain" or "loss" when the interval excludes 0, else "within noise"."""
        return verdict(self.interval)

    def to_dict(self) -> dict:
        low, high = self.interval
        return {"diff": self.value, "n": self.n, "low": low, "high": high, "verdict": self.verdict,
                "only_a": self.only_a, "only_b": self.only_b}

    def __str__(self) -> str:
        low, high = self.interval
        return (f"{100 * self.value:+.2f} pt (95% CI {100 * low:+.2f} to {100 * high:+.2f}, "
                f"n={self.n}): {self.verdict}")


@dataclass(frozen=True)
class UnpairedDifference:
    """Accuracy `a` minus accuracy `b` with Newcombe's interval for independent proportions
    (phi = 0): for two models whose per-example hits are not kept. Conservative when they were
    scored on the same examples (see the module's docstring)."""

    a: Accuracy
    b: Accuracy

    @property
    def value(self) -> float:
        return self.a.value - self.b.value

    @property
    def interval(self) -> tuple[float, float]:
        return newcombe_interval(self.a, self.b, 0.0)

    @property
    def verdict(self) -> str:
        return verdict(self.interval)

    def to_dict(self) -> dict:
        low, high = self.interval
        return {"diff": self.value, "low": low, "high": high, "verdict": self.verdict,
                "paired": False}

    def __str__(self) -> str:
        low, high = self.interval
        return (f"{100 * self.value:+.2f} pt (95% CI {100 * low:+.2f} to {100 * high:+.2f}, "
                f"unpaired): {self.verdict}")


def newcombe_interval(a: Accuracy, b: Accuracy, phi: float = 0.0) -> tuple[float, float]:
    """Newcombe's 95% interval of p_a - p_b from the two Wilson intervals and their
    correlation `phi` (0: independent samples). See the module's docstring."""
    p1, p2 = a.value, b.value
    (l1, u1), (l2, u2) = a.interval, b.interval
    below = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    above = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, p1 - p2 - below), min(1.0, p1 - p2 + above)


def verdict(interval: tuple[float, float]) -> str:
    """"gain" or "loss" when the interval excludes 0, else "within noise"."""
    low, high = interval
    return "gain" if low > 0 else "loss" if high < 0 else "within noise"
