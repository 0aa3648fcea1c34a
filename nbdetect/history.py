"""Training history: per-iteration and per-epoch records.

In memory the iteration records stay bounded: past ``max_points`` neighbouring
records are merged pairwise (numbers averaged) and from then on every record
in memory stands for twice as many iterations (``stride``), so a
100k-iteration run keeps the shape of its curves in a few thousand points of
equal weight. On disk every record is
appended to a JSONL file as it happens (``{"type": "iter"|"epoch"|"resume", ...}``)
and epoch records are mirrored to a CSV file; TensorBoard gets them too when
it is installed and asked for.
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Iterable

EPOCH_FIELDS = ["epoch", "train_loss", "val_loss", "map", "map50", "lr", "time_s", "images_per_s"]


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
        self._file = None
        self._csv_path: Path | None = None
        self._tb = None
        self._last_flush = 0.0

    # -- sinks -------------------------------------------------------------
    def attach_files(self, out_dir: Path | str, tensorboard: bool = False, resume_step: int | None = None) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(out_dir / "history.jsonl", "a", encoding="utf-8")
        self._csv_path = out_dir / "epochs.csv"
        if resume_step is not None:
            self._write({"type": "resume", "step": int(resume_step)})
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"))
            except Exception:  # tensorboard not installed: files are enough
                self._tb = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _write(self, rec: dict) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(rec, default=float) + "\n")
        now = time.monotonic()
        if rec.get("type") != "iter" or now - self._last_flush > 2.0:
            self._file.flush()
            self._last_flush = now

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
        self._write({"type": "iter", **rec})
        if self._tb is not None:
            step = rec.get("step", self.iterations_logged)
            for key in ("loss", "lr"):
                if key in rec:
                    self._tb.add_scalar(f"train/{key}", rec[key], step)
        return rec

    def log_epoch(self, **rec) -> dict:
        self.epochs.append(rec)
        self._write({"type": "epoch", **rec})
        self._write_csv()
        if self._tb is not None:
            for key, value in rec.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self._tb.add_scalar(f"epoch/{key}", value, rec.get("epoch", len(self.epochs)))
        return rec

    def _compact(self) -> None:
        its = self.iterations
        merged = [_merge(its[i], its[i + 1]) for i in range(0, len(its) - 1, 2)]
        if len(its) % 2:  # an odd one out starts the next bucket
            self._pending, self._pending_n = its[-1], self.stride
        self.iterations = merged
        self.stride *= 2

    def _write_csv(self) -> None:
        if self._csv_path is None:
            return
        extra = sorted({k for r in self.epochs for k in r} - set(EPOCH_FIELDS))
        tmp = self._csv_path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=EPOCH_FIELDS + extra, extrasaction="ignore")
            writer.writeheader()
            for r in self.epochs:
                writer.writerow(r)
        tmp.replace(self._csv_path)

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
