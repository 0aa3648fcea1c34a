"""Read a loss history from whatever the user has.

Accepted: a list of numbers (one loss per epoch), a list of epoch dicts, a dict
of lists (``{"train": [...], "val": [...]}``), an nbdetect :class:`History`, a
``history.jsonl`` / ``epochs.csv`` file or run folder, or an Ultralytics
``results.csv`` (columns such as ``train/box_loss``, ``val/cls_loss``,
``metrics/mAP50(B)``, ``lr/pg0``; older versions pad names with spaces).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LossHistory:
    """Per-epoch series (NaN where missing); epoch ``i`` of the lists is epoch ``i + 1`` for the user."""

    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    components: dict[str, list[float]] = field(default_factory=dict)
    source: str = "list"

    @property
    def n_epochs(self) -> int:
        return max(len(self.train), len(self.val))

    def primary(self) -> tuple[str, list[float]]:
        """The series to judge: validation loss when there is one, else training loss."""
        if any(_finite(v) for v in self.val):
            return "val_loss", list(self.val)
        return "train_loss", list(self.train)

    def has_lr(self) -> bool:
        return any(_finite(v) for v in self.lr)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _num(v) -> float:
    try:
        out = float(v)
    except (TypeError, ValueError):
        return math.nan
    return out


def _from_epoch_records(records: list[dict], source: str) -> LossHistory:
    train = [_num(r.get("train_loss", r.get("loss"))) for r in records]
    val = [_num(r.get("val_loss")) for r in records]
    lr = [_num(r.get("lr")) for r in records]
    if not any(_finite(v) for v in val):
        val = []
    return LossHistory(train=train, val=val, lr=lr, source=source)


def _from_ultralytics(rows: list[dict], source: str) -> LossHistory:
    rows = [{k.strip(): v for k, v in r.items() if k is not None} for r in rows]
    cols = list(rows[0]) if rows else []
    train_cols = [c for c in cols if c.startswith("train/") and c.endswith("loss")]
    val_cols = [c for c in cols if c.startswith("val/") and c.endswith("loss")]
    comps = {c: [_num(r.get(c)) for r in rows] for c in train_cols + val_cols + [c for c in cols if c.startswith("metrics/")]}
    train = [sum(_num(r.get(c)) for c in train_cols) for r in rows] if train_cols else []
    val = [sum(_num(r.get(c)) for c in val_cols) for r in rows] if val_cols else []
    lr_col = "lr/pg0" if "lr/pg0" in cols else next((c for c in cols if c.startswith("lr/")), None)
    lr = [_num(r.get(lr_col)) for r in rows] if lr_col else []
    return LossHistory(train=train, val=val, lr=lr, components=comps, source=f"Ultralytics results.csv ({source})")


def _read_csv(path: Path) -> LossHistory:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cols = [c.strip() for c in (rows[0].keys() if rows else [])]
    if any(c.startswith("train/") for c in cols):
        return _from_ultralytics(rows, str(path))
    rows = [{k.strip(): v for k, v in r.items() if k is not None} for r in rows]
    return _from_epoch_records(rows, f"csv ({path})")


def _read_path(path: Path) -> LossHistory:
    if path.is_dir():
        for name in ("history.jsonl", "results.csv", "epochs.csv"):
            if (path / name).exists():
                return _read_path(path / name)
        raise FileNotFoundError(f"no history.jsonl, results.csv or epochs.csv in {path}")
    if path.suffix == ".jsonl":
        from ..history import History

        hist = _from_epoch_records(History.load(path).epochs, f"nbdetect history ({path})")
        return hist
    if path.suffix == ".csv":
        return _read_csv(path)
    raise ValueError(f"cannot read a loss history from {path} (expected .jsonl or .csv)")


def load_history(obj) -> LossHistory | None:
    """Normalise ``obj`` into a :class:`LossHistory` (``None`` stays ``None``)."""
    if obj is None or isinstance(obj, LossHistory):
        return obj
    if isinstance(obj, (str, Path)):
        return _read_path(Path(obj))
    if hasattr(obj, "epochs") and isinstance(getattr(obj, "epochs"), list):  # nbdetect History
        return _from_epoch_records(obj.epochs, "nbdetect History")
    if hasattr(obj, "history") and hasattr(obj.history, "epochs"):  # TrainingRun
        return _from_epoch_records(obj.history.epochs, "nbdetect TrainingRun")
    if isinstance(obj, dict):
        def pick(*keys):
            for k in keys:
                if k in obj and obj[k] is not None:
                    return [_num(v) for v in obj[k]]
            return []
        return LossHistory(train=pick("train", "train_loss", "train_losses", "loss"),
                           val=pick("val", "val_loss", "val_losses"),
                           lr=pick("lr", "lrs"), source="dict")
    values = list(obj)
    if values and isinstance(values[0], dict):
        return _from_epoch_records(values, "list of epoch records")
    if hasattr(values[0] if values else None, "item"):
        values = [v.item() for v in values]
    return LossHistory(train=[_num(v) for v in values], source="list of per-epoch losses")
