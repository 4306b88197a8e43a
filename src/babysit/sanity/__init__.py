"""Sanity checks before learning ("preflight"), from the notes' "Before learning" section.

Before an expensive optimization: the loss at initialization is the loss at chance; raising the
regularization strength raises the loss; the model memorizes a tiny subset with regularization
off; the gradients check out; the model learns from its inputs (beyond the notes: memorizing a
tiny set does not prove the features are right); and a fixed seed makes the loss repeatable.

    report = babysit.preflight(lambda: MyNet(), "softmax", (x_train, y_train), num_classes=10)
    print(report)            # the table
    report.passed            # all checks passed
    report.checks["overfit_tiny"].steps
"""

from .experiment_preflight import preflight_experiment, save_report
from .pipeline import Options
from .report import CheckResult, PreflightReport
from .runner import CHECKS, preflight

__all__ = ["preflight", "preflight_experiment", "save_report", "PreflightReport", "CheckResult",
           "Options", "CHECKS"]
