"""The training loop, its callback protocol, and the callbacks that write the run directory."""

from .callbacks import HOOKS, Callback, CallbackList, TrainState
from .fit import TrainingDiverged, evaluate, fit, objective, resolve_device, seed_everything
from .progress import ProgressBar
from .records import Checkpointer, MetricsLogger, best_checkpoint, latest_checkpoint

__all__ = ["fit", "evaluate", "objective", "seed_everything", "resolve_device", "Callback",
           "CallbackList", "TrainState", "HOOKS", "ProgressBar", "Checkpointer", "MetricsLogger",
           "best_checkpoint", "latest_checkpoint", "TrainingDiverged"]
