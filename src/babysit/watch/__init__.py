"""Babysitting the learning process: instruments, automatic diagnoses and plots.

:class:`Monitor` watches a model and its optimizer in any training loop — loss per step,
accuracies per epoch, update:weight ratios, activation and gradient histograms per layer, the
first layer's weights — writes plain records into ``run_dir/watch/`` and says what looks wrong
(:func:`diagnose`, with stable codes in :data:`CODES`). :class:`MonitorCallback` is the same
monitor as a :func:`babysit.fit` companion; :func:`draw_all` draws the plots.
"""

from .callback import MonitorCallback
from .diagnoses import CODES, Diagnosis, Thresholds, diagnose
from .monitor import Monitor
from .records import History, load_history


def draw_all(run_dir, history=None):
    """Draw every plot of ``run_dir/watch`` into ``run_dir/watch/plots`` (matplotlib, PNG)."""
    from .plots import draw_all as draw

    return draw(run_dir, history)


__all__ = ["Monitor", "MonitorCallback", "Diagnosis", "Thresholds", "diagnose", "CODES", "History",
           "load_history", "draw_all"]
