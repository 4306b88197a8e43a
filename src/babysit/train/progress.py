"""A progress bar per epoch and a one-line summary after each (to stderr; off with quiet).

The summary's accuracies carry their 95% interval and n: ``acc 97.3% (96.1-98.1)`` (the
training accuracy is scored on a fixed sample as large as the validation split, so one n
serves both).

The bar is drawn only on a terminal: written to a log file or a CI console its carriage-return
redraws become fragments between the epoch lines, so there only the plain epoch lines appear.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from ..stats import Accuracy
from .callbacks import Callback, TrainState
from .fit import train_sample_size


class ProgressBar(Callback):
    def __init__(self, desc: str = "train", file=None):
        self.desc, self.file = desc, file or sys.stderr
        self.bar = None

    def on_epoch_begin(self, state: TrainState) -> None:
        self.bar = tqdm(total=state.steps_per_epoch, desc=f"{self.desc} epoch {state.epoch}/{state.epochs}",
                        leave=False, file=self.file, unit="batch", dynamic_ncols=True,
                        disable=None)  # None: tqdm draws no bar where the file is not a terminal

    def on_batch_end(self, state: TrainState) -> None:
        self.bar.update(1)

    def on_epoch_end(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()
        logs = state.logs
        n_train, n_val = train_sample_size(state.data), len(state.data.y_val)
        # The accuracies with their 95% intervals; one n when both were scored on as many examples.
        train = Accuracy.from_rate(logs["train_acc"], n_train).brief(n=n_train != n_val)
        val = Accuracy.from_rate(logs["val_acc"], n_val).brief(n=n_train != n_val)
        size = "" if n_train != n_val else f"  n={n_val}"
        line = (f"epoch {state.epoch:>3}/{state.epochs}  train loss {logs['train_loss']:.4f} "
                f"acc {train}  |  val loss {logs['val_loss']:.4f} acc {val}{size}  "
                f"({logs['seconds']:.1f}s)")
        if state.stop_reason:
            line += f"  stopped: {state.stop_reason}"
        tqdm.write(line, file=self.file)
