"""Where a run's history goes on disk: ``history.jsonl`` (every record as it happens), ``epochs.csv``
(the epoch table, rewritten atomically) and TensorBoard when installed and asked for.

:class:`HistoryWriter` is a plain sink; the training run's :class:`nbdetect.hooks.HistoryFiles` hook
feeds it. :class:`nbdetect.history.History` itself only holds records in memory.
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

EPOCH_FIELDS = ["epoch", "train_loss", "val_loss", "map", "map50", "lr", "time_s", "images_per_s"]


def _drop_after(path: Path, step: int) -> None:
    """Remove the records a resume from ``step`` supersedes (and a line cut short by a kill): no step is
    recorded twice in history.jsonl."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("type") in ("iter", "epoch") and int(rec.get("step", -1)) > step:
            continue
        kept.append(line)
    from .atomic import atomic_write

    atomic_write(path, lambda fh: fh.write(("\n".join(kept) + ("\n" if kept else "")).encode("utf-8")))


class HistoryWriter:
    def __init__(self, out_dir: Path | str, tensorboard: bool = False, resume_step: int | None = None):
        from .atomic import make_folder

        out_dir = make_folder(out_dir)
        if resume_step is not None:
            _drop_after(out_dir / "history.jsonl", int(resume_step))
        self._file = open(out_dir / "history.jsonl", "a", encoding="utf-8")
        self._csv_path = out_dir / "epochs.csv"
        self._last_flush = 0.0
        self._tb = None
        if resume_step is not None:
            self._write({"type": "resume", "step": int(resume_step)})
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"))
            except Exception:  # tensorboard not installed: files are enough
                self._tb = None

    def _write(self, rec: dict) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(rec, default=float) + "\n")
        now = time.monotonic()
        if rec.get("type") != "iter" or now - self._last_flush > 2.0:
            self._file.flush()
            self._last_flush = now

    def iteration(self, rec: dict) -> None:
        self._write({"type": "iter", **rec})
        if self._tb is not None:
            for key in ("loss", "lr"):
                if key in rec:
                    self._tb.add_scalar(f"train/{key}", rec[key], rec.get("step", 0))

    def meta(self, meta: dict) -> None:
        """What the run knows beyond its records (recipe, planned epochs, convention, thresholds)."""
        self._write({"type": "meta", **meta})

    def epoch(self, rec: dict, all_epochs: list[dict]) -> None:
        self._write({"type": "epoch", **rec})
        self._write_csv(all_epochs)
        if self._tb is not None:
            for key, value in rec.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self._tb.add_scalar(f"epoch/{key}", value, rec.get("epoch", len(all_epochs)))

    def _write_csv(self, epochs: list[dict]) -> None:
        extra = sorted({k for r in epochs for k in r} - set(EPOCH_FIELDS))
        tmp = self._csv_path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=EPOCH_FIELDS + extra, extrasaction="ignore")
            writer.writeheader()
            for r in epochs:
                writer.writerow(r)
        tmp.replace(self._csv_path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
