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
    def __init__(self, max_points: int = 4000):
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
        return [float(r[key]) if r.get(key) is not None else math.nan for r in self.epochs]

    def last_epoch(self) -> dict | None:
        return self.epochs[-1] if self.epochs else None

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


def per_batch(losses, batches) -> list[float]:
    """Losses summed over a loader's batches (``running_loss`` never divided) turned into per-batch means, the
    scale of the guide's numbers and of nbdetect: ``per_batch(val_losses, val_loader)``. ``batches`` is the
    loader or its number of batches."""
    from .errors import InputError

    n = len(batches) if hasattr(batches, "__len__") and not isinstance(batches, str) else batches
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"cannot tell the number of batches from {type(batches).__name__}", where="batches",
                         fix="pass the DataLoader the losses were summed over, or its len()")
    return [float(v) / n for v in losses]
