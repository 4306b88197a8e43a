"""The training loop, its callback protocol, and what every training uses next to it: the step
function, the schedules' callbacks, the running average of the parameters, and the callbacks
that write the run directory."""

from .averaging import ParameterAverage
from .callbacks import HOOKS, Callback, CallbackList, TrainState
from .fit import TrainingDiverged, cpu_threads, evaluate, fit, objective, resolve_device, seed_everything
from .progress import ProgressBar
from .records import Checkpointer, MetricsLogger, best_checkpoint, latest_checkpoint
from .schedules import (IterationLRSchedule, LRSchedule, MomentumSchedule, PlateauSchedule,
                        schedule_callbacks)
from .step import Stepping, take_step, take_steps

__all__ = ["fit", "evaluate", "objective", "seed_everything", "resolve_device", "cpu_threads", "Callback",
           "CallbackList", "TrainState", "HOOKS", "ProgressBar", "Checkpointer", "MetricsLogger",
           "best_checkpoint", "latest_checkpoint", "TrainingDiverged", "ParameterAverage",
           "LRSchedule", "IterationLRSchedule", "PlateauSchedule", "MomentumSchedule",
           "schedule_callbacks", "Stepping", "take_step", "take_steps"]
