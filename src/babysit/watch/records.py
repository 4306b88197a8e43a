"""The monitor's records: plain files in ``run_dir/watch/``, and the same records in memory.

Files (JSON lines are append-only and can be read while training runs)::

    watch/meta.json            parameter names and shapes, activation layers, the first layer
    watch/steps.jsonl          {"step", "epoch", "loss"}                      one per step (exact)
    watch/ratios.jsonl         {"step", "ratios": [per tensor, meta order]}   one per step
                               (6 significant digits; the monitor's own records keep all)
    watch/grad_norms.jsonl     {"step", "rms": [per tensor]}                  sampled steps
    watch/activations.jsonl    {"step", "layer", "kind", "low", "high", "counts",
                                "saturated" | "zero_fraction"}                 sampled steps
    watch/gradients.jsonl      {"step", "layer", "low", "high", "counts", "rms"}
    watch/epochs.jsonl         {"epoch", "step", "train_acc", "val_acc", ..., "dead": {layer: f},
                                "saturated": {layer: f}}                      one per epoch
    watch/diagnoses.json       [{"code", "severity", "message", "evidence"}]  rewritten at epoch
                               ends (within 0.2% of the training time: every epoch once epochs
                               take > ~0.5 s) and at close; [] from the start

The JSON lines reach the files at each batch read: every `flush_every` steps (once
`flush_seconds` have passed since the last one), when a diagnosis is due, and at close (an
epoch's record waits for the next one, like its steps).

A :class:`History` holds the records the rules and the plots read, whether the monitor has
just made them or they were loaded back from a run directory.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..rundir import RunDir, dumps, iter_jsonl, read_json

try:  # the lines' writers in C (where babysit.watch._kernels was compiled)
    from ._kernels import json_lines, ratio_lines
except ImportError:  # not compiled here: the json module and the formats below write every line
    json_lines = ratio_lines = None

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
    """Appends records to memory and to the files of ``watch/``.

    JSON lines go to files kept open, unbuffered: one write of whole lines per batch, which
    readers see at once. Whole-file documents (meta, diagnoses, the first layer's weights)
    are replaced atomically (temp file + rename). All on the training thread, a few times
    per epoch: a writer thread was tried and cost more — each hand-over makes the training
    thread wait for the interpreter lock.
    """

    def __init__(self, run_dir: str | Path | RunDir | None, history: History):
        self.run_dir = RunDir(run_dir) if run_dir is not None and not isinstance(run_dir, RunDir) else run_dir
        self.history = history
        self._files: dict[str, object] = {}
        self._written: dict[str, tuple[object, bytes]] = {}  # each document's last object and bytes
        self._reserved: dict[str, tuple] = {}  # document -> (temp file, path, the temp file open)
        if self.run_dir is not None:
            (self.run_dir / "watch").mkdir(parents=True, exist_ok=True)

    def start(self, step: int, epoch: int) -> None:
        """Begin recording at `step`: a fresh run (step 0) clears the records of an earlier run
        in the same folder; a resumed one keeps those up to `step` (and `epoch`) — dropping
        what the interrupted run recorded after its last checkpoint — and loads them.

        Every stream's file is opened (made) here, so readers find them all from the start
        and training never waits for a file to be created (on ext4 that is ~0.1-0.3 ms each,
        a step of a small model)."""
        if self.run_dir is None:
            return
        folder = self.run_dir / "watch"
        for stream in STREAMS:
            path = folder / f"{stream}.jsonl"
            if path.exists() and step > 0:
                kept = [r for r in iter_jsonl(path)
                        if (r.get("epoch", 0) <= epoch if stream == "epochs" else r.get("step", 0) <= step)]
                replace_file(path, "".join(_line(r) for r in kept).encode("utf-8"))
                getattr(self.history, stream).extend(kept)
            self._files[stream] = open(path, "ab" if step > 0 else "wb", buffering=0)
        if step == 0:  # none yet: a healthy run's close then has nothing to replace
            self.write_diagnoses([])

    def write_meta(self) -> None:
        self.write_document("watch/meta.json", self.history.meta)

    def write_document(self, rel: str, obj) -> None:
        """Replace one JSON file atomically — unless it would get the very same bytes again
        (a healthy run's diagnoses stay ``[]`` epoch after epoch). An object equal to the
        one written last is not even encoded: comparing is a few us, encoding the meta with
        cold caches ~50 us (a NaN is never equal, and is then compared as bytes)."""
        if self.run_dir is None:
            return
        last, written = self._written.get(rel, (None, None))
        if last is not None and last == obj:
            return
        data = (dumps(obj) + "\n").encode("utf-8")
        if written != data:
            replace_file(self.run_dir / rel, data)
        self._written[rel] = (copy.deepcopy(obj), data)  # a copy: the caller may change obj in place

    def reserve(self, rel: str) -> None:
        """Make, and open, the temp file a later :meth:`write_bytes` of a NEW file will fill and
        rename: on this kind of disk creating a file costs ~0.5 ms, renaming one onto a free
        name ~0.1 ms, so the create is paid now rather than while training waits. It stays
        open: opening it again would truncate it, and ext4 then writes a truncated file out at
        its close (~0.1 ms; its safeguard for files replaced by truncation)."""
        if self.run_dir is not None and not (self.run_dir / rel).exists():
            tmp = _temp_path(self.run_dir / rel)
            self._reserved[rel] = (str(tmp), str(self.run_dir / rel), open(tmp, "wb", buffering=0))

    def write_bytes(self, rel: str, data: bytes) -> None:
        if self.run_dir is None:
            return
        reserved = self._reserved.pop(rel, None)
        if reserved is None:
            replace_file(self.run_dir / rel, data)
            return
        tmp, path, f = reserved
        with f:
            write_all(f, data)
        os.replace(tmp, path)

    def append(self, stream: str, records: list[dict], text: str | None = None) -> None:
        """Add `records` to one stream: in memory, and in its file with one write of whole
        lines (`text`, when the caller has them formatted already)."""
        if not records:
            return
        getattr(self.history, stream).extend(records)
        f = self._files.get(stream)
        if f is None:
            if self.run_dir is None:
                return
            f = self._files[stream] = open(self.run_dir / f"watch/{stream}.jsonl", "ab", buffering=0)
        if text is None:
            text = BATCHES.get(stream, _lines)(records)
        write_all(f, text.encode("utf-8"))  # whole lines, visible to readers now

    def write_diagnoses(self, found: list) -> None:
        self.write_document("watch/diagnoses.json", [d.to_dict() for d in found])

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}
        for tmp, _, f in self._reserved.values():  # reserved for a document never written
            f.close()
            Path(tmp).unlink(missing_ok=True)
        self._reserved = {}


def write_all(f, data: bytes) -> None:
    """Write all of `data` to an unbuffered binary file: one system call (a regular file
    takes it whole), where a text file's layers cost ~20 us more with cold caches."""
    view = memoryview(data)
    while view:
        view = view[f.write(view):]


def _reject(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# json.dumps(record, allow_nan=False) builds a new encoder on every call (~2 us before it
# writes a byte, a third of a small record's cost); the C encoder it builds is reusable, with
# the very same output: separators ", " and ": ", ASCII only, no NaN/Inf.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_STRICT = (_c_make_encoder(None, _reject, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                           False, False, False) if _c_make_encoder is not None else None)


def _lines(records: list[dict]) -> str:
    """JSON lines of `records`: the kernel's writer where it takes them all (plain numbers,
    names, lists: ~3x faster), else :func:`_line` each."""
    if json_lines is not None:
        text = json_lines(records)
        if text is not None:
            return text
    return "".join(map(_line, records))


def _line(record: dict) -> str:
    """One JSON line; the C encoder for plain numbers, babysit's for NaN/Inf (written as "nan").
    The per-step streams have faster formats of their own (:data:`BATCHES`)."""
    try:
        if _STRICT is not None:
            return "".join(_STRICT(record, 0)) + "\n"
        return json.dumps(record, allow_nan=False) + "\n"
    except (ValueError, TypeError):
        return dumps(record) + "\n"


# The per-step streams are formatted a batch at a time by ONE %-format of a template repeated
# for every record: the floats go through float.__repr__ as json's do, without a Python-level
# call per record or per number (~3x faster than a line at a time). The templates contain no
# "n", so an "n" in the text means a nan or an inf: that batch goes through _line instead.
_STEP = '{"step": %d, "epoch": %d, "loss": %r}\n'


def _steps_text(records: list[dict]) -> str:
    """steps.jsonl lines, ``{"step": s, "epoch": e, "loss": x}``: the most frequent record."""
    values: list = []
    for r in records:
        if type(r["loss"]) is not float or len(r) != 3:
            return "".join(map(_line, records))
        values += (r["step"], r["epoch"], r["loss"])
    text = (_STEP * len(records)) % tuple(values)
    return text if "n" not in text else "".join(map(_line, records))


def _ratios_text(records: list[dict]) -> str:
    """ratios.jsonl lines, ``{"step": s, "ratios": [...]}``, one per step, to 6 significant
    digits: plenty for a quantity judged on a log scale against 1e-3, and ``%.6g`` formats a
    float 3-4x faster than the shortest exact form (``repr``: ~0.8 us each here)."""
    width = len(records[0]["ratios"])
    values: list = []
    for r in records:
        if len(r) != 2 or len(r["ratios"]) != width:
            return "".join(map(_line, records))
        values.append(r["step"])
        values += r["ratios"]
    line = '{"step": %d, "ratios": [' + ", ".join(["%.6g"] * width) + "]}\n"
    text = (line * len(records)) % tuple(values)
    return text if "n" not in text else "".join(map(_line, records))


BATCHES = {"steps": _steps_text, "ratios": _ratios_text}  # the per-step streams' own formats


def replace_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically (temp file + rename): readers see the old or the new file.

    Unlike :func:`babysit.rundir.atomic_write_bytes` it does not fsync: these documents are
    derived from the JSON lines and rewritten every epoch, and on a busy disk one fsync can
    cost more than an epoch of a small model. A crash keeps the previous complete version.
    The temp file has a fixed name (one monitor writes a run's records): making a unique one
    costs more than the write.
    """
    tmp = _temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def load_history(run_dir: str | Path | RunDir) -> History:
    """The records a monitor wrote into ``run_dir/watch`` (possibly while it is still running)."""
    folder = Path(run_dir) / "watch"
    meta_path = folder / "meta.json"
    history = History(meta=read_json(meta_path) if meta_path.exists() else {})
    for stream in STREAMS:
        getattr(history, stream).extend(iter_jsonl(folder / f"{stream}.jsonl"))
    return history
