"""Optional export of the monitor's records to TensorBoard event files (``watch/tensorboard``).

Used only when asked for (``Monitor(tensorboard=True)``, ``[watch] tensorboard = true``) and
when the ``tensorboard`` package (the ``babysit[tensorboard]`` extra) is installed; otherwise
the plain files in ``watch/`` are all there is.
"""

from __future__ import annotations

import math

from .records import History


def tensorboard_writer(run_dir):
    """A SummaryWriter into ``run_dir/watch/tensorboard``, or None without run dir or package."""
    if run_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the extra is not installed: plain files only
        return None
    return SummaryWriter(str(run_dir / "watch" / "tensorboard"))


def export(writer, history: History, added: dict[str, int]) -> None:
    """Mirror the records just added to `history` (the last ``added[stream]`` of each stream)."""
    def new(stream: str) -> list[dict]:
        records = getattr(history, stream)
        return records[len(records) - added.get(stream, 0):]
    for record in new("steps"):
        if math.isfinite(record["loss"]):
            writer.add_scalar("loss", record["loss"], record["step"])
    names = history.param_names
    for record in new("ratios"):
        for name, ratio in zip(names, record["ratios"]):
            if ratio > 0 and math.isfinite(ratio):
                writer.add_scalar(f"update_ratio_log10/{name}", math.log10(ratio), record["step"])
    for record in new("activations"):
        add_histogram(writer, f"activations/{record['layer']}", record)
    for record in new("epochs"):
        for key, value in record.items():
            if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                writer.add_scalar(f"epoch/{key}", value, record["epoch"])


def add_histogram(writer, tag: str, record: dict) -> None:
    """A histogram the monitor already binned on the device, sent as TensorBoard's raw form."""
    counts, low, high = record["counts"], record["low"], record["high"]
    total = sum(counts)
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low or not total:
        return
    width = (high - low) / len(counts)
    centers = [low + (i + 0.5) * width for i in range(len(counts))]
    writer.add_histogram_raw(tag, min=low, max=high, num=int(total),
                             sum=sum(c * x for c, x in zip(counts, centers)),
                             sum_squares=sum(c * x * x for c, x in zip(counts, centers)),
                             bucket_limits=[low + (i + 1) * width for i in range(len(counts))],
                             bucket_counts=counts, global_step=record["step"])
