"""``input_dependence``: a model trained on the real inputs clearly beats one trained on zeros.

The notes warn that overfitting a tiny subset does not prove the features are right: if a bug
pairs the labels with the wrong inputs (or the model never looks at its input), a network still
memorizes 20 examples but learns nothing that generalizes. So the same model, from the same
initialization and on the same batches, is trained twice — on the real inputs and on zeroed
inputs, which carry no information beyond the class frequencies — and both are scored on
held-out examples. Real inputs must win by a clear margin in accuracy.
"""

from __future__ import annotations

import torch

from ..stats import Accuracy, UnpairedDifference
from .pipeline import Pipeline
from .report import CheckResult
from .training import train_steps


def check_input_dependence(p: Pipeline) -> CheckResult:
    opts = p.options
    x, y = p.sample(opts.dependence_examples)
    n_train = max(1, (3 * len(y)) // 4)
    results, curves = {}, {}
    for kind, inputs in (("real", x), ("zeroed", torch.zeros_like(x))):
        model = p.fresh_model()
        _, _, curves[kind] = train_steps(p, model, inputs[:n_train], y[:n_train],
                                         steps=opts.dependence_steps, batch_size=opts.batch_size)
        results[kind] = p.measure(model, inputs[n_train:], y[n_train:])
    (real_loss, real_acc), (zero_loss, zero_acc) = results["real"], results["zeroed"]
    gain = real_acc - zero_acc
    n_held = len(y) - n_train
    # The two models are scored on the same examples, but only their accuracies are kept:
    # the unpaired interval (wider than the paired one) says how sure the gain is.
    noise = UnpairedDifference(Accuracy.from_rate(real_acc, n_held), Accuracy.from_rate(zero_acc, n_held))
    gain_low, gain_high = noise.interval
    values = {"real_acc": real_acc, "zeroed_acc": zero_acc, "gain": gain,
              "margin": opts.dependence_margin, "real_loss": real_loss, "zeroed_loss": zero_loss,
              "train_examples": n_train, "heldout_examples": n_held,
              "gain_low": gain_low, "gain_high": gain_high,
              "steps": opts.dependence_steps, "real_curve": curves["real"],
              "zeroed_curve": curves["zeroed"]}
    summary = (f"held-out acc {real_acc:.1%} (real inputs) vs {zero_acc:.1%} (zeroed), n={n_held}: "
               f"gain {gain:+.1%} (95% CI {gain_low:+.1%} to {gain_high:+.1%}, unpaired; "
               f"needs >= {opts.dependence_margin:.0%})")
    setting = (f"trained {opts.dependence_steps} steps on {n_train} examples and scored on "
               f"{len(y) - n_train} held-out ones")
    if gain >= opts.dependence_margin:
        return CheckResult("input_dependence", True, summary, (
            f"The model {setting} reaches {real_acc:.1%} accuracy from the real inputs and "
            f"{zero_acc:.1%} from zeroed inputs: it learns from the features, and what it learns "
            "carries over to examples it has not seen."), values)
    if real_acc <= zero_acc + 0.02 and real_loss >= 0.95 * zero_loss:
        why = ("does no better from the real inputs than from zeros: it does not use its input. "
               "Look for an input that is replaced or dropped inside the model (a forward that "
               "ignores x, x multiplied by 0, a constant or a buffer used in its place), or for "
               "labels that do not belong to their inputs (shuffled separately, misaligned after "
               "a sort or a filter). If overfit_tiny failed too, fix that first: a model that "
               "cannot learn at all cannot use its input either.")
    else:
        why = ("learns only a little more from the real inputs than from zeros. The features may "
               "be partly wrong (a bad preprocessing step, a wrong channel order, labels partly "
               "misaligned), or the model learns too slowly for this test; if you trust the data, "
               "raise preflight.dependence_steps.")
    return CheckResult("input_dependence", False, summary,
                       f"The model {setting} {why}", values)
