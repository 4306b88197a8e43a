"""The monitor's records: plain files in ``run_dir/watch/``, and the same records in memory.

Files (JSON lines are append-only and can be read while training runs)::

    watch/meta.json            parameter names and shapes, activation layers, the first layer
    watch/steps.jsonl          {"step", "epoch", "loss"}                      one per step (exact)
    watch/ratios.jsonl         {"step", "ratios": [per tensor, meta order]}   sampled steps
    watch/grad_norms.jsonl     {"step", "rms": [per tensor]}                  sampled steps
    watch/activations.jsonl    {"step", "layer", "kind", "low", "high", "counts",
                                "saturated", "near_zero" | "zero_fraction"}   sampled steps
    watch/gradients.jsonl      {"step", "layer", "low", "high", "counts", "rms"}
    watch/epochs.jsonl         {"epoch", "step", "train_acc", "val_acc", ..., "dead": {layer: f},
                                "saturated": {layer: f}, "near_zero": {layer: f}}  one per epoch
    watch/diagnoses.json       [{"code", "severity", "message", "evidence"}]  at the epoch
                               ends that read back (once a second) and at close; [] at first

The JSON lines reach the files at each batch read (see ``Monitor._flush_due``: every
`flush_every` steps once `flush_seconds` have passed), at :meth:`Monitor.flush` (in
:func:`babysit.fit` at every epoch end, before the epoch's checkpoint: a run resumed from it
finds every record up to it) and at close. A :class:`History` holds the records the rules and
the plots read, made just now or loaded from a run directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..rundir import RunDir, dumps, iter_jsonl, read_json

STREAMS = ("steps", "ratios", "grad_norms", "activations", "gradients", "epochs")


@dataclass
class History:
    meta: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)
    ratios: list = field(default_factory=list)
    grad_norms: list = field(default_factory=list)
    activations: list = field(default_factory=list)
    gradients: list = field(default_factory=list)
    epochs: list = field(default_factory=list)

    @property
    def param_names(self) -> list[str]:
        return [p["name"] for p in self.meta.get("params", [])]

    @property
    def weight_indices(self) -> list[int]:
        """Indices of the weight matrices and filters (2+ dims): the tensors the rules judge.

        Biases start at zero, so their ratio is huge early on for any learning rate.
        """
        return [i for i, p in enumerate(self.meta.get("params", [])) if len(p["shape"]) > 1]

    def epoch_position(self):
        """A function mapping a step number to its position in epochs (the notes' x axis).

        Step s of an epoch that ran from step s0 to s1 sits at ``e0 + (s - s0) / (s1 - s0)``;
        steps of the epoch in progress use the last epoch's length (or the known steps per
        epoch, or, before any epoch ended, the steps so far).
        """
        ends = [(0, 0)] + [(int(r["step"]), int(r["epoch"])) for r in self.epochs]
        if len(ends) > 1:
            span = max(ends[-1][0] - ends[-2][0], 1)
        else:
            span = self.meta.get("steps_per_epoch") or max((r["step"] for r in self.steps), default=1)

        def position(step: float) -> float:
            for (s0, e0), (s1, e1) in zip(ends, ends[1:]):
                if step <= s1:
                    return e0 + (step - s0) / max(s1 - s0, 1) * (e1 - e0)
            return ends[-1][1] + (step - ends[-1][0]) / max(span, 1)
        return position


class Recorder:
    """Appends records to memory and to the files of ``watch/``: JSON lines to files kept
    open (one unbuffered write of whole lines per batch), whole documents replaced atomically."""

    def __init__(self, run_dir: str | Path | RunDir | None, history: History):
        self.run_dir = RunDir(run_dir) if run_dir is not None and not isinstance(run_dir, RunDir) else run_dir
        self.history = history
        self._files: dict[str, object] = {}
        self._written: dict[str, bytes] = {}  # each document's last bytes
        if self.run_dir is not None:
            (self.run_dir / "watch").mkdir(parents=True, exist_ok=True)

    def start(self, step: int, epoch: int) -> None:
        """Begin recording at `step`: a fresh run (step 0) clears an earlier run's records; a
        resumed one keeps (and loads) those up to `step` and `epoch`, dropping what came after
        the checkpoint. Every stream's file is made here, so readers find them all at once."""
        if self.run_dir is None:
            return
        folder = self.run_dir / "watch"
        for stream in STREAMS:
            path = folder / f"{stream}.jsonl"
            if path.exists() and step > 0:
                kept = [r for r in iter_jsonl(path)
                        if (r.get("epoch", 0) <= epoch if stream == "epochs" else r.get("step", 0) <= step)]
                replace_file(path, "".join(map(_line, kept)).encode("utf-8"))
                getattr(self.history, stream).extend(kept)
            # unbuffered: each batch is one write of whole lines, on disk (and seen by readers) at once
            self._files[stream] = open(path, "ab" if step > 0 else "wb", buffering=0)
        if step == 0:
            self.write_diagnoses([])

    def write_meta(self) -> None:
        self.write_document("watch/meta.json", self.history.meta)

    def write_document(self, rel: str, obj) -> None:
        """Replace one JSON file atomically, unless with the very same bytes."""
        if self.run_dir is None:
            return
        data = (dumps(obj) + "\n").encode("utf-8")
        if self._written.get(rel) != data:
            replace_file(self.run_dir / rel, data)
            self._written[rel] = data

    def write_bytes(self, rel: str, data: bytes) -> None:
        if self.run_dir is not None:
            replace_file(self.run_dir / rel, data)

    def append(self, stream: str, records: list[dict]) -> None:
        """Add `records` to one stream: in memory, and in its file as whole lines."""
        if not records:
            return
        getattr(self.history, stream).extend(records)
        f = self._files.get(stream)
        if f is not None:
            text = _step_lines(records) if stream == "steps" else "".join(map(_line, records))
            data = memoryview(text.encode("utf-8"))
            while data:  # a regular file takes it whole; a short write is finished here
                data = data[f.write(data):]

    def write_diagnoses(self, found: list) -> None:
        self.write_document("watch/diagnoses.json", [d.to_dict() for d in found])

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}


def pack(record: dict, numbers: dict[str, torch.Tensor]):
    """A record whose `numbers` are still on the device: ``(tensors, fill)``, the numbers as
    they are (read back with the others, see :func:`read_back`) and the function that puts
    the values read back into `record` (a 0-d tensor becomes a float, a vector a list; histogram
    counts whole numbers). Numbers that are not tensors go into `record` at once."""
    record.update((key, v) for key, v in numbers.items() if not isinstance(v, torch.Tensor))
    numbers = {key: t for key, t in numbers.items() if isinstance(t, torch.Tensor)}
    sizes = [(key, t.numel() if t.ndim else 0) for key, t in numbers.items()]

    def fill(values: list[float]) -> dict:
        at = 0
        for key, n in sizes:
            record[key] = values[at] if n == 0 else values[at:at + n]
            at += n or 1
        if "counts" in record:
            record["counts"] = [round(c) for c in record["counts"]]
        return record
    return list(numbers.values()), fill


def read_back(groups: list[list[torch.Tensor]]) -> list[list[float]]:
    """The values of each group of 0-d and 1-d tensors, as floats in the group's order: per
    device one stack of the 0-d tensors of each dtype (a stack that mixes dtypes converts each
    tensor: several times slower), one concatenation and one ``.tolist()`` (on an accelerator,
    one wait for the device and one copy). The probes leave their numbers as they come (e.g.
    ``torch._foreach_norm``'s 0-d tensors): gathered here, a sampled step launches no op of
    its own to join them."""
    parts = [t for group in groups for t in group]
    values: list = [None] * len(parts)
    for device in {t.device for t in parts}:
        kinds: dict = {}  # a dtype: the 0-d tensors of that dtype; None: the vectors
        for i, t in enumerate(parts):
            if t.device == device:
                kinds.setdefault(None if t.ndim else t.dtype, []).append(i)
        pieces = [p for kind, at in kinds.items()
                  for p in ([parts[i] for i in at] if kind is None else [torch.stack([parts[i] for i in at])])]
        flat, start = torch.cat(pieces).tolist(), 0  # promoted to the widest dtype: exact as floats
        for i in (i for at in kinds.values() for i in at):
            n = parts[i].numel()
            values[i], start = flat[start:start + n], start + n
    out, start = [], 0
    for group in groups:
        out.append([v for piece in values[start:start + len(group)] for v in piece])
        start += len(group)
    return out


# One encoder for every line: json.dumps(record, allow_nan=False) would build a new one each
# call, a third of a small record's cost (the output is the same).
_encode = json.JSONEncoder(allow_nan=False).encode


def _line(record: dict) -> str:
    """One JSON line; babysit's encoder (NaN/Inf written as "nan"/"inf") where json refuses."""
    try:
        return _encode(record) + "\n"
    except (ValueError, TypeError):
        return dumps(record) + "\n"


def _step_lines(records: list[dict]) -> str:
    """steps.jsonl lines, the same as :func:`_line`'s: the most frequent records, formatted
    directly (a quarter of the json module's cost): a finite float's repr is its JSON. Every
    form that is not (nan, inf, np.float64(...)) has an "n", which no key here has."""
    text = "".join([f'{{"step": {r["step"]}, "epoch": {r["epoch"]}, "loss": {r["loss"]!r}}}\n' for r in records])
    if "n" in text or not all(len(r) == 3 for r in records):
        return "".join(map(_line, records))  # the json module's lines
    return text


def replace_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically (temp file + rename): readers see the old or the new file.

    No fsync (unlike :func:`babysit.rundir.atomic_write_bytes`): these documents are derived
    from the JSON lines and rewritten every epoch, and one fsync can cost more than a small
    model's epoch. A crash keeps the previous complete version."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_history(run_dir: str | Path | RunDir) -> History:
    """The records a monitor wrote into ``run_dir/watch`` (possibly while it is still running)."""
    folder = Path(run_dir) / "watch"
    meta_path = folder / "meta.json"
    history = History(meta=read_json(meta_path) if meta_path.exists() else {})
    for stream in STREAMS:
        getattr(history, stream).extend(iter_jsonl(folder / f"{stream}.jsonl"))
    return history
