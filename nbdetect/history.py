"""Training history: per-iteration and per-epoch records.

Records live in memory (files are written by :mod:`nbdetect.history_files`). The iteration records stay bounded: past ``max_points`` neighbouring
records are merged pairwise (numbers averaged) and from then on every record
in memory stands for twice as many iterations (``stride``), so a
100k-iteration run keeps the shape of its curves in a few thousand points of
equal weight. ``History.load`` reads the JSONL file a run wrote
(``{"type": "iter"|"epoch"|"resume", ...}``), dropping records a resume superseded.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable



def _merge(a: dict, b: dict, weight_a: float = 1.0) -> dict:
    """``b`` with its numbers averaged with ``a``'s (``a`` counting ``weight_a`` times)."""
    out = dict(b)
    for key, va in a.items():
        vb = b.get(key)
        if key in ("step", "epoch"):
            continue
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            out[key] = (va * weight_a + vb) / (weight_a + 1.0)
    return out


class History:
    """The one history type: per-iteration and per-epoch records of a run, however they were logged.

    ``epochs`` are records ``{"epoch", "train_loss", "val_loss", "lr", "map50", "map", ...}`` identified by
    their epoch number as written (1-based, as a user counts): logging an epoch number again replaces the
    earlier record, so a resumed loop that appended an epoch twice is not counted twice. ``meta`` says what
    is known about the run beyond its records: ``source`` (where it was read from), ``total_epochs`` (the
    planned length), ``reference_loss`` (the starting loss, when known better than the first epoch),
    ``convention`` (``"nbdetect"``: torchvision's loss as nbdetect's recipes report it; ``"unknown"``: a
    loss of another loop or framework) and ``components`` (a file's raw columns). Every reader
    (:mod:`nbdetect.history_readers`) produces this type; the live verdict and diagnose() judge it.
    """

    def __init__(self, max_points: int = 4000, meta: dict | None = None):
        if max_points < 16:
            raise ValueError("max_points must be >= 16")
        self.max_points = int(max_points)
        self.iterations: list[dict] = []
        self.epochs: list[dict] = []
        self.iterations_logged = 0
        self.stride = 1  # iterations per in-memory record
        self.latest: dict | None = None  # the last iteration record, never merged
        self._pending: dict | None = None
        self._pending_n = 0
        self.meta: dict = dict(meta or {})

    # -- logging -----------------------------------------------------------
    def log_iteration(self, **rec) -> dict:
        self.latest = rec
        self.iterations_logged += 1
        if self.stride == 1:
            self.iterations.append(rec)
        else:
            n = self._pending_n
            self._pending = rec if n == 0 else _merge(self._pending, rec, n)
            self._pending_n = n + 1
            if self._pending_n == self.stride:
                self.iterations.append(self._pending)
                self._pending, self._pending_n = None, 0
        if len(self.iterations) > self.max_points:
            self._compact()
        return rec

    def log_epoch(self, **rec) -> dict:
        """Add an epoch record; one with the number of an earlier record replaces it (records stay ordered)."""
        e = rec.get("epoch")
        if isinstance(e, (int, float)) and not isinstance(e, bool) and self.epochs:
            last = self.epochs[-1].get("epoch")
            if isinstance(last, (int, float)) and e > last:  # the usual case: the next epoch
                self.epochs.append(rec)
                return rec
            for i, old in enumerate(self.epochs):
                if old.get("epoch") == e:
                    self.epochs[i] = rec
                    return rec
            if isinstance(self.epochs[-1].get("epoch"), (int, float)) and e < self.epochs[-1]["epoch"]:
                self.epochs.append(rec)
                self.epochs.sort(key=lambda r: r.get("epoch") if isinstance(r.get("epoch"), (int, float)) else 0)
                return rec
        self.epochs.append(rec)
        return rec

    def _compact(self) -> None:
        its = self.iterations
        merged = [_merge(its[i], its[i + 1]) for i in range(0, len(its) - 1, 2)]
        if len(its) % 2:  # an odd one out starts the next bucket
            self._pending, self._pending_n = its[-1], self.stride
        self.iterations = merged
        self.stride *= 2

    # -- views -------------------------------------------------------------
    def epoch_values(self, key: str) -> list[float]:
        """Per-epoch values of ``key`` (NaN where missing)."""
        return [_num(r.get(key)) for r in self.epochs]

    def last_epoch(self) -> dict | None:
        return self.epochs[-1] if self.epochs else None

    @property
    def n_epochs(self) -> int:
        """The latest epoch number written (not the number of records: a gap or a repeat is not an epoch)."""
        numbers = [r.get("epoch") for r in self.epochs if isinstance(r.get("epoch"), (int, float))
                   and not isinstance(r.get("epoch"), bool) and math.isfinite(r.get("epoch"))]
        return int(max(numbers)) if numbers else len(self.epochs)

    @property
    def train(self) -> list[float]:
        """Training losses per record ([] when none was logged)."""
        key = "train_loss" if any(r.get("train_loss") is not None for r in self.epochs) else "loss"
        values = self.epoch_values(key)
        return values if any(math.isfinite(v) for v in values) else []

    @property
    def val(self) -> list[float]:
        """Validation losses per record ([] when the run never validated)."""
        vals = self.epoch_values("val_loss")
        return vals if any(math.isfinite(v) for v in vals) else []

    @property
    def lr(self) -> list[float]:
        return self.epoch_values("lr")

    @property
    def maps(self) -> list[float]:
        key = "map50" if any(math.isfinite(v) for v in self.epoch_values("map50")) else "map"
        return self.epoch_values(key)

    @property
    def source(self) -> str:
        return str(self.meta.get("source", "nbdetect History"))

    @property
    def components(self) -> dict:
        return self.meta.get("components", {})

    def primary(self) -> tuple[str, list[float]]:
        """The series to judge: validation loss when there is one, else training loss."""
        return ("val_loss", self.val) if self.val else ("train_loss", self.train)

    def has_lr(self) -> bool:
        return any(math.isfinite(v) for v in self.lr)

    def as_validation(self) -> "History":
        """This history with its training losses named validation losses (a list that was ``val_losses``)."""
        out = History(self.max_points, self.meta)
        for r in self.epochs:
            rec = {k: v for k, v in r.items() if k not in ("train_loss", "loss")}
            rec["val_loss"] = r.get("train_loss", r.get("loss"))
            out.epochs.append(rec)
        return out

    # -- persistence -------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "max_points": self.max_points,
            "iterations": list(self.iterations),
            "epochs": list(self.epochs),
            "iterations_logged": self.iterations_logged,
            "stride": self.stride,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        h = cls(max_points=d.get("max_points", 4000))
        h.iterations = list(d.get("iterations", []))
        h.epochs = list(d.get("epochs", []))
        h.iterations_logged = int(d.get("iterations_logged", len(h.iterations)))
        h.stride = int(d.get("stride", 1))
        return h

    @classmethod
    def from_records(cls, records: Iterable[dict], max_points: int = 4000) -> "History":
        """Rebuild from JSONL records; records superseded by a later resume are dropped."""
        h = cls(max_points=max_points)
        for rec in records:
            kind = rec.get("type")
            body = {k: v for k, v in rec.items() if k != "type"}
            if kind == "resume":
                step = int(rec["step"])
                h.iterations = [r for r in h.iterations if r.get("step", -1) <= step]
                h.epochs = [r for r in h.epochs if r.get("step", -1) <= step]
            elif kind == "iter":
                h.log_iteration(**body)
            elif kind == "epoch":
                h.log_epoch(**body)
            elif kind == "meta":
                h.meta.update(body)
        return h

    @classmethod
    def load(cls, path: Path | str) -> "History":
        """Read a ``history.jsonl`` file (or the run folder holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / "history.jsonl"
        with open(path, encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        return cls.from_records(records)


def _num(v) -> float:
    if v is None or isinstance(v, bool):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def per_batch(losses, batches) -> list[float]:
    """Losses summed over a loader's batches (``running_loss`` never divided) turned into per-batch means, the
    scale of the guide's numbers and of nbdetect: ``per_batch(val_losses, val_loader)``. ``batches`` is the
    loader or its number of batches."""
    from .errors import InputError

    n = len(batches) if hasattr(batches, "__len__") and not isinstance(batches, str) else batches
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"cannot tell the number of batches from {type(batches).__name__}", where="batches",
                         fix="pass the DataLoader the losses were summed over, or its len()")
    import numbers

    fix = "pass your list of per-epoch losses, e.g. per_batch(val_losses, val_loader)"
    values = losses.tolist() if hasattr(losses, "tolist") else losses
    if not isinstance(values, (list, tuple)):
        raise InputError(f"losses={str(losses)[:40]!r} is not a list of numbers", where="losses", fix=fix)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise InputError(f"losses[{i}] is {v!r}, not a number", where="losses", fix=fix)
    return [float(v) / n for v in values]


def run_meta(run) -> dict:
    """What a run knows beyond its epoch records: recipe, planned epochs, loss convention, reference loss and
    the user's thresholds (as a dict), under the keys :func:`judge_history` reads."""
    recipe = getattr(run, "recipe", None)
    name = getattr(recipe, "name", "") if recipe is not None else ""
    judge = getattr(run, "judge", None)
    thresholds = getattr(judge, "thresholds", None)
    reference = getattr(judge, "reference_loss", None)
    if reference is None:
        reference = (getattr(run, "meta", None) or {}).get("reference_loss")
    meta = {"recipe": name, "total_epochs": getattr(run, "epochs", None) or None, "convention": "nbdetect",
            "source": f"nbdetect run ({getattr(run, 'out_dir', '')})"}
    if reference is not None:
        meta["reference_loss"] = float(reference)
    if thresholds is not None:
        from dataclasses import asdict

        meta["thresholds"] = asdict(thresholds)
    tiles = (getattr(run, "meta", None) or {}).get("tiles")
    if tiles:  # the run trains on tiles (nbdetect.data.tiles): said by diagnose(history=<run folder>)
        meta["tiles"] = dict(tiles)
    return meta
