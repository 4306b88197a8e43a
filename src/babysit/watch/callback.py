"""`MonitorCallback`: the monitor as a companion of :func:`babysit.fit`.

``babysit.experiment.companions`` adds one to every training that has a run directory, when
the config's ``[watch]`` section says so (it does by default).
"""

from __future__ import annotations

from ..config import DEFAULTS
from ..train import Callback, TrainState
from ..train.fit import train_sample_size
from .monitor import Monitor


class MonitorCallback(Callback):
    """Creates a :class:`Monitor` when training begins and feeds it every step and epoch.

    Its records reach the disk at every epoch end, before the epoch's checkpoint (the
    experiment puts the monitor before the checkpointer), and when training ends — also
    when a KeyboardInterrupt or an error ends it (fit calls ``on_train_end`` then too).
    """

    def __init__(self, run_dir, **options):
        self.run_dir, self.options = run_dir, options
        self.monitor: Monitor | None = None

    def on_train_begin(self, state: TrainState) -> None:
        n_val = len(state.data.y_val)
        self.monitor = Monitor(state.model, state.optimizer, self.run_dir,
                               steps_per_epoch=state.steps_per_epoch, start_step=state.step,
                               start_epoch=state.epoch, **self.options,
                               accuracy_n={"train_acc": train_sample_size(state.data), "val_acc": n_val})

    def on_batch_end(self, state: TrainState) -> None:
        self.monitor.step(state.loss)  # fit already read the loss: a float, no further sync

    def on_epoch_end(self, state: TrainState) -> None:
        logs = state.logs
        extra = {k: v for k, v in logs.items()
                 if k not in ("epoch", "step", "train_acc", "val_acc", "val_loss")
                 and isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.monitor.epoch(train_acc=logs.get("train_acc"), val_acc=logs.get("val_acc"),
                           val_loss=logs.get("val_loss"), **extra)
        self.monitor.flush()  # on disk before the epoch's checkpoint: a run resumed from it finds them

    def on_train_end(self, state: TrainState) -> None:
        if self.monitor is not None:
            self.monitor.close()

    def diagnoses(self):
        return self.monitor.diagnoses() if self.monitor is not None else []


def from_config(config: dict, run_dir) -> MonitorCallback | None:
    """The callback the ``[watch]`` section asks for, or None when it is off or there is no run dir."""
    options = {**DEFAULTS["watch"], **config.get("watch", {})}
    if run_dir is None or not options.pop("enabled"):
        return None
    return MonitorCallback(run_dir, **options)
