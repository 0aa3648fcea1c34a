"""Every way a training history reaches nbdetect, read into the one :class:`~nbdetect.history.History`.

Pure Python (no torch). :func:`read_history` takes what a user has and returns a History whose epoch
records are ``{"epoch", "train_loss", "val_loss", "lr", "map50", "map"}`` (missing values absent) with
``meta`` saying where they came from (``source``), the planned length when the file tells it
(``total_epochs``) and the loss convention (``"nbdetect"`` only for nbdetect's own runs; every other loop or
framework is ``"unknown"`` and is judged on its own evidence, never on the guide's loss lines).

Accepted in a notebook: a list of per-epoch losses, a list of epoch dicts, a dict of lists
(``{"train": [...], "val": [...], "lr": [...], "map50": [...]}``), a History or a TrainingRun. Files (or a
folder holding one) are recognised by the records in :data:`READERS`, one per format:

=====================  ==========================================================================
format                 file
=====================  ==========================================================================
nbdetect               ``history.jsonl`` (with the run's meta record), ``epochs.csv``
Ultralytics            ``results.csv`` (YOLOv5 and YOLOv8+ columns; ``args.yaml``/``opt.yaml`` beside
                       it gives the planned epochs)
YOLOv5/YOLOv7 (txt)    ``results.txt`` (``0/299  mem  box obj cls total ...`` columns)
detectron2             ``metrics.json`` (JSON lines; one record per evaluation period)
MMDetection            ``*.log.json`` (2.x) or ``scalars.json`` (3.x ``vis_data``)
Lightning              ``metrics.csv`` (CSVLogger: sparse rows, one record per epoch)
=====================  ==========================================================================

A history that cannot be judged is refused with :class:`HistoryError` naming what was found: strings,
nested lists, losses that are all missing, negative losses, a file of unknown format. A check never
derives a verdict from such input.

Add a format: one reader function and one :class:`Reader` record in :data:`READERS` (or
:func:`register_reader`), and its test.
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import InputError
from .history import History, run_meta

LOSS_KEYS = ("train_loss", "val_loss")
VALUE_KEYS = ("train_loss", "val_loss", "lr", "map50", "map")


class HistoryError(InputError):
    """A history (list, dict or file) that cannot be read as per-epoch losses."""


# -- numbers --------------------------------------------------------------------------------------------
def _scalar(v, where: str):
    """A float, None for a gap, or a HistoryError for what is not a number."""
    if v is None:
        return None
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 0) == 0:
        v = v.item()  # a 0-d tensor or numpy scalar
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if not isinstance(v, (str, bytes)) and (isinstance(v, (list, tuple, dict)) or hasattr(v, "__len__")):
            kind = f"a {type(v).__name__}" + (f" of {len(v)} values" if hasattr(v, "__len__") else "")
            raise HistoryError(f"{where} is {kind}, not one number per epoch", where=where,
                               fix="pass one loss per epoch (a flat list of numbers), e.g. [r['val_loss'] for r in log]")
        raise HistoryError(f"{where} is {type(v).__name__} {v!r}, not a number", where=where,
                           fix="store losses as numbers: loss.item() or float(value)")
    return float(v)


def _csv_number(text) -> float | None:
    if text is None:
        return None
    text = str(text).strip()
    if text == "" or text.lower() in ("nan", "none", "null"):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _finite(v) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def _validated(history: History, what: str) -> History:
    """Refuse a history with nothing to judge or with negative losses (no detection loss is negative)."""
    if not history.epochs:
        raise HistoryError(f"{what} has no epochs", where=what,
                           fix="pass the per-epoch losses once at least one epoch has ended")
    losses = [(r.get("epoch"), k, r.get(k)) for r in history.epochs for k in LOSS_KEYS if r.get(k) is not None]
    finite = [(e, k, v) for e, k, v in losses if _finite(v)]
    if not finite and not any(_finite(r.get(k)) for r in history.epochs for k in ("map50", "map")):
        raise HistoryError(f"{what} has no finite loss or mAP in {len(history.epochs)} epochs (all missing or NaN)",
                           where=what, fix="pass the losses your loop recorded (numbers), not placeholders")
    negative = [(e, k, v) for e, k, v in finite if v < 0]
    if negative:
        shown = "; ".join(f"epoch {e} {k} {v:g}" for e, k, v in negative[:3])
        more = f" and {len(negative) - 3} more" if len(negative) > 3 else ""
        raise HistoryError(f"{what} has negative losses ({shown}{more}); a detection loss is never below 0",
                           where=what, fix="pass the loss itself (not a log, a difference or a score)")
    return history


def _from_rows(rows: list[dict], meta: dict) -> History:
    h = History(meta=meta)
    for i, r in enumerate(rows):
        rec = {"epoch": r.get("epoch", i + 1)}
        rec.update({k: v for k, v in r.items() if k != "epoch" and v is not None})
        h.log_epoch(**rec)
    return h


# -- notebook objects -----------------------------------------------------------------------------------
def _from_list(values: list, what: str) -> History:
    if values and all(isinstance(v, dict) for v in values):
        return _from_dicts(values, what)
    rows = []
    for i, v in enumerate(values):
        rows.append({"epoch": i + 1, "train_loss": _scalar(v, f"{what}[{i}]")})
    return _from_rows(rows, {"source": f"{what}: list of per-epoch losses", "convention": "unknown"})


EPOCH_KEY_ALIASES = {"train_loss": ("train_loss", "loss", "train"), "val_loss": ("val_loss", "val", "valid_loss"),
                     "lr": ("lr", "learning_rate"), "map50": ("map50", "mAP50", "map_50"), "map": ("map", "mAP")}


def _from_dicts(records: list[dict], what: str) -> History:
    rows = []
    for i, r in enumerate(records):
        row = {"epoch": i + 1}
        e = r.get("epoch")
        if e is not None:
            e = _scalar(e, f"{what}[{i}]['epoch']")
            if not math.isfinite(e) or e != int(e):
                raise HistoryError(f"{what}[{i}]['epoch'] is {e!r}, not an epoch number", where=f"{what}[{i}]",
                                   fix="number epochs 1, 2, 3... (or leave the key out)")
            row["epoch"] = int(e)
        for key, aliases in EPOCH_KEY_ALIASES.items():
            name = next((a for a in aliases if r.get(a) is not None), None)
            if name is not None:
                row[key] = _scalar(r[name], f"{what}[{i}][{name!r}]")
        for k, v in r.items():  # other numbers (time_s, images_per_s...) travel along
            if k not in row and isinstance(v, (int, float)) and not isinstance(v, bool):
                row[k] = float(v)
        rows.append(row)
    return _from_rows(rows, {"source": f"{what}: list of epoch records", "convention": "unknown"})


DICT_KEYS = {"train_loss": ("train", "train_loss", "train_losses", "loss", "losses"),
             "val_loss": ("val", "val_loss", "val_losses", "valid_loss"),
             "lr": ("lr", "lrs"), "map50": ("map50", "mAP50", "map_50"), "map": ("map", "mAP")}


def _from_dict(d: dict, what: str) -> History:
    columns = {}
    for key, names in DICT_KEYS.items():
        name = next((n for n in names if d.get(n) is not None), None)
        if name is None:
            continue
        values = d[name]
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise HistoryError(f"{what}[{name!r}] is {type(values).__name__}, not a list of per-epoch values",
                               where=f"{what}[{name!r}]", fix=f"pass {{'{name}': [one value per epoch]}}")
        columns[key] = [_scalar(v, f"{what}[{name!r}][{i}]") for i, v in enumerate(values)]
    if not columns:
        raise HistoryError(f"{what} has none of the keys {', '.join(k for names in DICT_KEYS.values() for k in names[:2])}",
                           where=what, fix="pass {'train': [...], 'val': [...]} with one loss per epoch")
    n = max(len(v) for v in columns.values())
    rows = [{"epoch": i + 1, **{k: (v[i] if i < len(v) else None) for k, v in columns.items()}} for i in range(n)]
    return _from_rows(rows, {"source": f"{what}: dict of per-epoch lists", "convention": "unknown"})


# -- files ----------------------------------------------------------------------------------------------
def _planned_from_yaml(folder: Path) -> int | None:
    """``epochs:`` of an Ultralytics ``args.yaml`` / YOLOv5 ``opt.yaml`` beside the results."""
    for name in ("args.yaml", "opt.yaml", "hparams.yaml"):
        path = folder / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(r"\s*(epochs|max_epochs)\s*:\s*(\d+)\s*$", line)
            if m:
                return int(m.group(2))
    return None


def _read_csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [{(k or "").strip(): v for k, v in r.items() if k is not None} for r in rows]


def _csv_columns(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        header = fh.readline()
    return [c.strip() for c in header.split(",")]


def _pick_lr(rows: list[dict], cols: list[str]) -> str | None:
    """The LR column of the weights: of several param groups, the one that most often equals the per-row
    median (a bias group warmed up from 0.1 is the odd one out)."""
    lr_cols = [c for c in cols if c.startswith("lr/") or re.fullmatch(r"x/lr\d+", c)]
    if len(lr_cols) <= 2:
        return lr_cols[-1] if lr_cols else None

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    scores = {c: 0 for c in lr_cols}
    for r in rows:
        vals = {c: _csv_number(r.get(c)) for c in lr_cols}
        vals = {c: v for c, v in vals.items() if v is not None}
        if len(vals) < 2:
            continue
        m = median(list(vals.values()))
        for c, v in vals.items():
            scores[c] += abs(v - m) <= 1e-12 + 1e-6 * abs(m)
    return max(lr_cols, key=lambda c: (scores[c], c == lr_cols[1]))


ULTRA_MAP50 = ("metrics/mAP50(B)", "metrics/mAP_0.5", "metrics/mAP50")
ULTRA_MAP = ("metrics/mAP50-95(B)", "metrics/mAP_0.5:0.95", "metrics/mAP50-95")


def read_ultralytics_csv(path: Path) -> History:
    rows = _read_csv_rows(path)
    cols = list(rows[0]) if rows else _csv_columns(path)
    train_cols = [c for c in cols if c.startswith("train/") and c.endswith("loss")]
    val_cols = [c for c in cols if c.startswith("val/") and c.endswith("loss")]
    map50 = next((c for c in ULTRA_MAP50 if c in cols), None)
    mapc = next((c for c in ULTRA_MAP if c in cols), None)
    lr_col = _pick_lr(rows, cols)
    first_epoch = _csv_number(rows[0].get("epoch")) if rows and "epoch" in cols else None
    offset = 1 if first_epoch == 0 else 0
    out = []
    for i, r in enumerate(rows):
        e = _csv_number(r.get("epoch"))
        rec = {"epoch": int(e) + offset if e is not None else i + 1}

        def total(columns):
            vals = [_csv_number(r.get(c)) for c in columns]
            return sum(vals) if columns and all(v is not None for v in vals) else None
        rec["train_loss"], rec["val_loss"] = total(train_cols), total(val_cols)
        rec["map50"] = _csv_number(r.get(map50)) if map50 else None
        rec["map"] = _csv_number(r.get(mapc)) if mapc else None
        rec["lr"] = _csv_number(r.get(lr_col)) if lr_col else None
        out.append(rec)
    comps = {c: [_csv_number(r.get(c)) for r in rows] for c in cols if "/" in c}
    return _from_rows(out, {"source": f"Ultralytics results.csv ({path})", "convention": "unknown",
                            "total_epochs": _planned_from_yaml(path.parent), "components": comps,
                            "lr_column": lr_col})


YOLO_TXT = re.compile(r"^\s*(\d+)/(\d+)\s+")


def read_yolo_txt(path: Path) -> History:
    """YOLOv5 (before results.csv) and YOLOv7 ``results.txt``: ``epoch/last mem box obj cls total labels size
    P R mAP@.5 mAP@.5:.95 val_box val_obj val_cls``."""
    out, total = [], None
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        m = YOLO_TXT.match(line)
        if not m:
            continue
        parts = line.split()
        if len(parts) < 15:
            raise HistoryError(f"{path.name} line {n} has {len(parts)} columns, a YOLO results.txt has 15",
                               where=f"{path}:{n}", fix="pass the results.txt the training wrote, unedited")
        nums = [_csv_number(p) for p in parts[2:15]]
        total = int(m.group(2)) + 1
        val = nums[10:13]
        out.append({"epoch": int(m.group(1)) + 1, "train_loss": nums[3],
                    "val_loss": sum(val) if all(v is not None for v in val) else None,
                    "map50": nums[8], "map": nums[9]})
    return _from_rows(out, {"source": f"YOLOv5/YOLOv7 results.txt ({path})", "convention": "unknown",
                            "total_epochs": total})


def _json_lines(path: Path) -> list[dict]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{path.name} line {n} is not JSON ({exc.msg})", where=f"{path}:{n}",
                               fix="pass the log file as the framework wrote it (one JSON object a line)") from None
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _mean(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and math.isfinite(x)]
    return sum(xs) / len(xs) if xs else None


def read_detectron2(path: Path) -> History:
    """detectron2 ``metrics.json``: training lines every ``log_period`` iterations, evaluation results
    (``bbox/AP``, ``bbox/AP50`` in percent) at each ``TEST.EVAL_PERIOD``. One record per evaluation period
    (the mean ``total_loss`` of its training lines, its last LR, the evaluation's AP / 100); without
    evaluations, one record per logged line."""
    lines = _json_lines(path)
    evaluated = any("bbox/AP" in r for r in lines)
    out, period = [], []
    for r in lines:
        if "total_loss" in r:
            period.append(r)
        if evaluated and "bbox/AP" in r or not evaluated and "total_loss" in r:
            ap, ap50 = r.get("bbox/AP"), r.get("bbox/AP50")
            out.append({"epoch": len(out) + 1, "train_loss": _mean([p.get("total_loss") for p in period]),
                        "val_loss": r.get("validation_loss"),
                        "lr": period[-1].get("lr") if period else None,
                        "map50": ap50 / 100 if isinstance(ap50, (int, float)) else None,
                        "map": ap / 100 if isinstance(ap, (int, float)) else None,
                        "iteration": r.get("iteration")})
            period = []
    if period and evaluated:  # training after the last evaluation: a period without mAP yet
        out.append({"epoch": len(out) + 1, "train_loss": _mean([p.get("total_loss") for p in period]),
                    "lr": period[-1].get("lr"), "iteration": period[-1].get("iteration")})
    unit = "evaluation period" if evaluated else "logged line"
    return _from_rows(out, {"source": f"detectron2 metrics.json ({path})", "convention": "unknown", "unit": unit})


def read_mmdet(path: Path) -> History:
    """MMDetection 2.x ``*.log.json`` (``mode`` train/val lines per epoch) or 3.x ``scalars.json``."""
    lines = _json_lines(path)
    total = None
    by_epoch: dict[int, dict] = {}
    for r in lines:
        cfg = r.get("config") or r.get("env_info")
        if isinstance(cfg, str):
            m = re.search(r"max_epochs\s*=\s*(\d+)|total_epochs\s*=\s*(\d+)", cfg)
            if m:
                total = int(m.group(1) or m.group(2))
        if "coco/bbox_mAP" in r or "coco/bbox_mAP_50" in r:  # 3.x validation: step is the epoch
            e = int(r.get("epoch", r.get("step", 0)))
            slot = by_epoch.setdefault(e, {"train": []})
            slot["map"], slot["map50"] = r.get("coco/bbox_mAP"), r.get("coco/bbox_mAP_50")
            continue
        mode, e = r.get("mode", "train" if "loss" in r else None), r.get("epoch")
        if e is None or mode is None:
            continue
        slot = by_epoch.setdefault(int(e), {"train": []})
        if mode == "train":
            slot["train"].append(r.get("loss"))
            slot["lr"] = r.get("lr", slot.get("lr"))
        elif mode == "val":
            if "loss" in r:
                slot["val_loss"] = r.get("loss")
            slot["map"] = r.get("bbox_mAP", slot.get("map"))
            slot["map50"] = r.get("bbox_mAP_50", slot.get("map50"))
    out = [{"epoch": e, "train_loss": _mean(s["train"]), "val_loss": s.get("val_loss"), "lr": s.get("lr"),
            "map50": s.get("map50"), "map": s.get("map")} for e, s in sorted(by_epoch.items())]
    return _from_rows(out, {"source": f"MMDetection log ({path})", "convention": "unknown", "total_epochs": total})


def _lightning_column(cols: list[str], *patterns: str) -> str | None:
    for pattern in patterns:
        hit = next((c for c in cols if re.fullmatch(pattern, c)), None)
        if hit:
            return hit
    return None


def read_lightning(path: Path) -> History:
    """Lightning CSVLogger ``metrics.csv``: one row per logging call (empty cells for the others),
    ``epoch`` 0-based; the last value of each column in an epoch is that epoch's."""
    rows = _read_csv_rows(path)
    cols = list(rows[0]) if rows else []
    train = _lightning_column(cols, r"train_loss_epoch", r"train_loss", r"loss_epoch", r"loss", r"train.*loss.*")
    val = _lightning_column(cols, r"val_loss_epoch", r"val_loss", r"valid.*loss.*", r"val.*loss.*")
    map50 = _lightning_column(cols, r"(val_)?map_50", r"(val_)?map50", r"val.*map.?50.*")
    mapc = _lightning_column(cols, r"(val_)?map", r"val.*map(?!.?50).*")
    lr = _lightning_column(cols, r"lr-.*", r"lr", r"learning_rate")
    by_epoch: dict[int, dict] = {}
    for r in rows:
        e = _csv_number(r.get("epoch"))
        if e is None:
            continue
        slot = by_epoch.setdefault(int(e) + 1, {})
        for key, col in (("train_loss", train), ("val_loss", val), ("map50", map50), ("map", mapc), ("lr", lr)):
            v = _csv_number(r.get(col)) if col else None
            if v is not None:
                slot[key] = v
    out = [{"epoch": e, **s} for e, s in sorted(by_epoch.items())]
    return _from_rows(out, {"source": f"Lightning metrics.csv ({path})", "convention": "unknown",
                            "total_epochs": _planned_from_yaml(path.parent)})


def read_nbdetect_jsonl(path: Path) -> History:
    h = History.load(path)
    h.meta.setdefault("convention", "nbdetect" if h.meta.get("recipe") else "unknown")
    h.meta["source"] = f"nbdetect history ({path})"
    return h


def read_epochs_csv(path: Path) -> History:
    """nbdetect's ``epochs.csv`` or any CSV with an ``epoch`` column and loss columns."""
    rows = _read_csv_rows(path)
    out = []
    for i, r in enumerate(rows):
        rec = {k: _csv_number(v) for k, v in r.items()}
        rec["epoch"] = int(rec["epoch"]) if rec.get("epoch") is not None else i + 1
        if rec.get("train_loss") is None and rec.get("loss") is not None:
            rec["train_loss"] = rec.pop("loss")
        out.append(rec)
    return _from_rows(out, {"source": f"csv ({path})", "convention": "unknown"})


# -- format records -------------------------------------------------------------------------------------
def _is_ultralytics(path: Path) -> bool:
    return path.suffix == ".csv" and any(c.startswith("train/") for c in _csv_columns(path))


def _is_lightning(path: Path) -> bool:
    cols = _csv_columns(path)
    return path.suffix == ".csv" and "epoch" in cols and "step" in cols


def _is_yolo_txt(path: Path) -> bool:
    if path.suffix != ".txt":
        return False
    with open(path, encoding="utf-8", errors="replace") as fh:
        return any(YOLO_TXT.match(line) for line in (fh.readline(), fh.readline()))


def _first_json(path: Path) -> dict:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    return {}
                return rec if isinstance(rec, dict) else {}
    return {}


def _is_detectron2(path: Path) -> bool:
    return path.suffix == ".json" and "iteration" in _first_json(path)


def _is_mmdet(path: Path) -> bool:
    if path.suffix != ".json":
        return False
    if path.name.endswith(".log.json") or path.name == "scalars.json":
        return True
    first = _first_json(path)
    return "mode" in first or "env_info" in first


@dataclass(frozen=True)
class Reader:
    """One history file format: its name, a test on a path (cheap: name and first lines), the reader."""

    name: str
    detect: Callable[[Path], bool]
    read: Callable[[Path], History]
    names: tuple[str, ...] = ()  # file names a run folder holds in this format, most specific first


READERS: list[Reader] = [
    Reader("nbdetect history.jsonl", lambda p: p.suffix == ".jsonl", read_nbdetect_jsonl, ("history.jsonl",)),
    Reader("Ultralytics results.csv", _is_ultralytics, read_ultralytics_csv, ("results.csv",)),
    Reader("YOLOv5/YOLOv7 results.txt", _is_yolo_txt, read_yolo_txt, ("results.txt",)),
    Reader("detectron2 metrics.json", _is_detectron2, read_detectron2, ("metrics.json",)),
    Reader("MMDetection log.json / scalars.json", _is_mmdet, read_mmdet, ("vis_data/scalars.json",)),
    Reader("Lightning metrics.csv", _is_lightning, read_lightning, ("metrics.csv",)),
    Reader("nbdetect epochs.csv (or any CSV with loss columns)", lambda p: p.suffix == ".csv", read_epochs_csv,
           ("epochs.csv",)),
]


def register_reader(reader: Reader, first: bool = True) -> None:
    """Add a format (``first``: tried before the built-in ones)."""
    READERS.insert(0 if first else len(READERS), reader)


def _in_folder(folder: Path) -> Path:
    for reader in READERS:
        for name in reader.names:
            if (folder / name).is_file():
                return folder / name
    logs = sorted(folder.glob("*.log.json"))
    if logs:
        return logs[-1]
    names = ", ".join(n for r in READERS for n in r.names)
    raise HistoryError(f"no training history in the folder {folder}", where=str(folder),
                       fix=f"pass the history file itself, or a folder holding one of: {names}")


def read_path(path) -> History:
    path = Path(path)
    if not path.exists():
        raise HistoryError(f"the history file {path} does not exist", where=str(path),
                           fix="check the path (a run folder, history.jsonl, results.csv, metrics.json, ...)")
    if path.is_dir():
        path = _in_folder(path)
    for reader in READERS:
        try:
            ok = reader.detect(path)
        except (OSError, UnicodeDecodeError):
            ok = False
        if ok:
            try:
                history = reader.read(path)
            except HistoryError:
                raise
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise HistoryError(f"{path.name} could not be read as a {reader.name}: {type(exc).__name__}: {exc}",
                                   where=str(path), fix="pass the file as the training wrote it") from exc
            history.meta.setdefault("format", reader.name)
            return _validated(history, str(path))
    formats = "; ".join(r.name for r in READERS)
    raise HistoryError(f"{path.name} is not a history format nbdetect reads", where=str(path),
                       fix=f"pass one of: {formats}")


def read_history(obj, what: str = "history") -> History | None:
    """``obj`` as a validated :class:`History` (None stays None). Raises :class:`HistoryError` when it cannot
    be judged (see the module docstring)."""
    if obj is None:
        return None
    if isinstance(obj, History):
        return _validated(obj, what) if obj.epochs else obj
    if isinstance(obj, (str, Path)):
        return read_path(obj)
    run_history = getattr(obj, "history", None)
    if isinstance(run_history, History):  # a TrainingRun: its own history, with what the run knows
        run_history.meta.update(run_meta(obj))
        return run_history
    if isinstance(obj, dict):
        return _validated(_from_dict(obj, what), what)
    if isinstance(obj, (str, bytes)) or not hasattr(obj, "__iter__"):
        raise HistoryError(f"{what} is {type(obj).__name__}, not a history", where=what,
                           fix="pass a list of per-epoch losses, {'train': [...], 'val': [...]}, or a file path")
    values = list(obj)
    return _validated(_from_list(values, what), what)
