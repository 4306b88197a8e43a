"""The intervals against independent computations: SciPy's Wilson interval, and Newcombe's
paired interval transcribed by hand for a worked case."""

import math

import pytest
from scipy.stats import binomtest

from babysit.stats import Accuracy, PairedDifference, brief, wilson_interval


@pytest.mark.parametrize("k, n", [(0, 10), (10, 10), (3, 10), (50, 100), (352, 359), (1, 1), (930, 1000)])
def test_wilson_matches_scipy(k, n):
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected.low, abs=1e-9)
    assert high == pytest.approx(expected.high, abs=1e-9)


def test_accuracy_carries_n_and_interval():
    acc = Accuracy.of([True] * 90 + [False] * 10)
    assert (acc.correct, acc.n, acc.value) == (90, 100, 0.9)
    low, high = acc.interval
    assert low < 0.9 < high and high - low == pytest.approx(0.1191, abs=1e-3)
    assert "n=100" in str(acc) and "95% CI" in str(acc)
    assert acc.to_dict()["n"] == 100


def test_newcombe_paired_interval_by_hand():
    # a = both right 40, b = only A 9, c = only B 3, d = both wrong 8; n = 60.
    hits_a = [True] * 40 + [True] * 9 + [False] * 3 + [False] * 8
    hits_b = [True] * 40 + [False] * 9 + [True] * 3 + [False] * 8
    diff = PairedDifference.of(hits_a, hits_b)
    a, b, c, d, n, z = 40, 9, 3, 8, 60, 1.959963984540054

    def wilson(k):
        p = k / n
        centre = (2 * k + z * z) / (2 * (n + z * z))
        half = z * math.sqrt(z * z + 4 * k * (1 - p)) / (2 * (n + z * z))
        return centre - half, centre + half

    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = wilson(a + b), wilson(a + c)
    phi = (a * d - b * c) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = p1 - p2 + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    assert diff.value == pytest.approx(0.1)
    assert diff.interval == pytest.approx((low, high), abs=1e-12)
    assert diff.interval[0] < 0.1 < diff.interval[1]


@pytest.mark.parametrize("only_a, only_b, verdict", [
    (2, 0, "within noise"),     # two examples out of 359: the ensemble table's "+0.56 pt"
    (30, 2, "gain"),
    (2, 30, "loss"),
    (0, 0, "within noise"),
])
def test_verdicts(only_a, only_b, verdict):
    n = 359
    both = n - only_a - only_b - 10
    hits_a = [True] * both + [True] * only_a + [False] * only_b + [False] * 10
    hits_b = [True] * both + [False] * only_a + [True] * only_b + [False] * 10
    diff = PairedDifference.of(hits_a, hits_b)
    assert diff.verdict == verdict
    low, high = diff.interval
    assert low <= diff.value <= high


def test_pairing_narrows_the_interval():
    """The same two accuracies (0.90 and 0.85 on 200) are surer when the models err together."""
    together = PairedDifference(only_a=10, only_b=0, both=170, n=200)
    apart = PairedDifference(only_a=40, only_b=30, both=140, n=200)
    assert together.value == apart.value == pytest.approx(0.05)
    width = lambda d: d.interval[1] - d.interval[0]  # noqa: E731
    assert width(together) < width(apart) / 2
    assert together.verdict == "gain" and apart.verdict == "within noise"


def test_unpaired_difference_by_hand():
    """Newcombe's method 10 for independent proportions: 0.90 on 200 vs 0.85 on 200, transcribed
    from the formula with SciPy's Wilson intervals."""
    from babysit.stats import UnpairedDifference

    a, b = Accuracy(180, 200), Accuracy(170, 200)
    wa = binomtest(180, 200).proportion_ci(confidence_level=0.95, method="wilson")
    wb = binomtest(170, 200).proportion_ci(confidence_level=0.95, method="wilson")
    low = 0.05 - math.sqrt((0.90 - wa.low) ** 2 + (wb.high - 0.85) ** 2)
    high = 0.05 + math.sqrt((wa.high - 0.90) ** 2 + (0.85 - wb.low) ** 2)
    diff = UnpairedDifference(a, b)
    assert diff.value == pytest.approx(0.05)
    assert diff.interval == pytest.approx((low, high), abs=1e-9)
    assert diff.verdict == "within noise" and "unpaired" in str(diff)
    # never narrower than the paired interval of the same accuracies on shared examples
    paired = PairedDifference(only_a=10, only_b=0, both=170, n=200)
    assert diff.interval[0] < paired.interval[0] and diff.interval[1] > paired.interval[1]
    assert UnpairedDifference(Accuracy(950, 1000), Accuracy(900, 1000)).verdict == "gain"


def test_accuracy_from_a_rate_counts_the_examples():
    acc = Accuracy.from_rate(0.9375, 288)
    assert (acc.correct, acc.n) == (270, 288)
    assert str(acc) == "0.9375 (n=288, 95% CI " + f"{acc.interval[0]:.4f}-{acc.interval[1]:.4f})"


def test_brief_is_the_value_its_wilson_interval_and_n_in_percent():
    low, high = wilson_interval(973, 1000)
    assert Accuracy(973, 1000).brief() == f"97.3% ({100 * low:.1f}-{100 * high:.1f}, n=1000)"
    assert Accuracy(973, 1000).brief(n=False) == f"97.3% ({100 * low:.1f}-{100 * high:.1f})"
    assert brief(0.973, 1000) == Accuracy(973, 1000).brief()
    assert brief(0.973, None) == "97.3% (n not recorded)"
