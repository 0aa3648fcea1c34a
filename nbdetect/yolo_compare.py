"""Compare an Ultralytics YOLOv8 run with nbdetect runs on the one scale they share: mAP.

Losses are not comparable across frameworks (YOLOv8 sums box/cls/DFL losses with
its own gains; torchvision RetinaNet normalises its focal loss per foreground
anchor), so the comparison uses mAP@.5 and mAP@[.5:.95] per epoch. Those are only
comparable when both were measured on the same validation images.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path

from .numbers import fmt_score

YOLO_MAP50 = "metrics/mAP50(B)"
YOLO_MAP = "metrics/mAP50-95(B)"


@dataclass
class RunCurves:
    name: str
    source: str
    map50: list[float]      # per epoch, NaN where not measured
    map: list[float]

    def best(self) -> tuple[float, float, int | None]:
        """(best mAP@.5, mAP@[.5:.95] at that epoch, 1-based epoch)."""
        finite = [(v, i) for i, v in enumerate(self.map50) if _finite(v)]
        if not finite:
            return math.nan, math.nan, None
        v, i = max(finite)
        return v, (self.map[i] if i < len(self.map) else math.nan), i + 1


@dataclass
class Comparison:
    runs: list[RunCurves]
    missing: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        out = []
        for r in self.runs:
            m50, m, ep = r.best()
            out.append({"run": r.name, "epochs": len(r.map50), "best_map50": m50, "map_at_best": m,
                        "best_epoch": ep, "source": r.source})
        return out

    def leader(self) -> str | None:
        scored = [(row["best_map50"], row["run"]) for row in self.rows() if _finite(row["best_map50"])]
        return max(scored)[1] if scored else None

    def __str__(self) -> str:
        lines = [f"{'run':<28} {'epochs':>6} {'best mAP@.5':>11} {'mAP@[.5:.95]':>12} {'at epoch':>8}"]
        for row in self.rows():
            lines.append(f"{row['run']:<28} {row['epochs']:>6} {fmt_score(row['best_map50']):>11} "
                         f"{fmt_score(row['map_at_best']):>12} {row['best_epoch'] or '-':>8}")
        if self.leader():
            lines.append(f"Highest mAP@.5: {self.leader()} (compare only runs validated on the same images).")
        lines += [f"not found: {m}" for m in self.missing]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("run", "epochs", "best mAP@.5", "mAP@[.5:.95]", "at epoch"))
        body = "".join(
            f"<tr><td>{html.escape(r['run'])}</td><td>{r['epochs']}</td><td>{fmt_score(r['best_map50'])}</td>"
            f"<td>{fmt_score(r['map_at_best'])}</td><td>{r['best_epoch'] or '-'}</td></tr>" for r in self.rows())
        img = ""
        if any(any(_finite(v) for v in r.map50) for r in self.runs):
            import base64
            img = f'<img src="data:image/png;base64,{base64.b64encode(self.plot_png()).decode()}"/>'
        notes = "".join(f"<p>not found: {html.escape(m)}</p>" for m in self.missing)
        leader = f"<p>Highest mAP@.5: <b>{html.escape(self.leader())}</b>.</p>" if self.leader() else ""
        return (f"<div class='nbdetect-compare'><table><tr>{head}</tr>{body}</table>{leader}{img}"
                "<p>Losses of different frameworks are on different scales; mAP is comparable when measured "
                f"on the same validation images.</p>{notes}</div>")

    def plot_png(self) -> bytes:
        """mAP@.5 per epoch of every run, as PNG bytes (Agg, no pyplot)."""
        import io

        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 3.5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for r in self.runs:
            pts = [(i + 1, v) for i, v in enumerate(r.map50) if _finite(v)]
            if pts:
                ax.plot(*zip(*pts), marker=".", label=r.name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mAP@.5")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def read_yolo_results(path: str | Path, name: str | None = None) -> RunCurves:
    """Read an Ultralytics ``results.csv`` (with diagnose's history reader, which knows its columns)."""
    from .checks.history_io import load_history

    path = Path(path)
    if path.is_dir():
        path = path / "results.csv"
    if not path.exists():
        raise FileNotFoundError(f"no Ultralytics results at {path}")
    columns = load_history(path).components
    if YOLO_MAP50 not in columns:
        raise ValueError(f"{path} has no '{YOLO_MAP50}' column: is it an Ultralytics detection results.csv?")
    return RunCurves(name or f"YOLOv8 ({path.parent.name})", str(path),
                     columns[YOLO_MAP50], columns.get(YOLO_MAP, []))


def read_nbdetect_run(run, name: str | None = None) -> RunCurves:
    """Read a TrainingRun, a History or a run folder / ``history.jsonl``."""
    from .history import History

    if hasattr(run, "history") and hasattr(run.history, "epochs"):
        epochs, source = run.history.epochs, f"TrainingRun {run.out_dir}"
        name = name or getattr(run.recipe, "name", "nbdetect run")
    elif isinstance(run, History):
        epochs, source = run.epochs, "History"
    else:
        path = Path(run)
        path = path / "history.jsonl" if path.is_dir() else path
        epochs, source = History.load(path).epochs, str(path)
        name = name or path.parent.name
    return RunCurves(name or "nbdetect run", source, [e.get("map50", math.nan) for e in epochs],
                     [e.get("map", math.nan) for e in epochs])


def _run_folders(runs) -> list:
    """Each run as given; a folder that holds run folders (``nbdetect_runs``) stands for all of them, oldest
    first."""
    out = []
    for run in runs:
        if isinstance(run, (str, Path)) and Path(run).is_dir() and not (Path(run) / "history.jsonl").exists():
            inner = sorted((d for d in Path(run).iterdir() if (d / "history.jsonl").exists()),
                           key=lambda d: (d / "history.jsonl").stat().st_mtime)
            out += inner or [run]
        else:
            out.append(run)
    return out


def compare_with_yolo(yolo_results="runs/detect/train/results.csv", nbdetect_runs=("nbdetect_runs",)
                      ) -> Comparison:
    """mAP per epoch of a YOLOv8 run next to nbdetect runs (run folders, runs, or ``nbdetect_runs`` for every
    run in it); missing files are listed, not fatal, unless nothing at all could be read. A run still
    training is waited for first."""
    from .arguments import check_one
    from .run_guard import wait_for_active

    if yolo_results is not None:
        check_one("yolo_results", yolo_results)
    if not isinstance(nbdetect_runs, (str, Path, list, tuple)) and not hasattr(nbdetect_runs, "history"):
        from .errors import InputError

        raise InputError(f"nbdetect_runs={nbdetect_runs!r} is not a run, a run folder or a list of them",
                         where="nbdetect_runs", fix="pass a run, a run folder, a list of them, or 'nbdetect_runs'")
    wait_for_active("comparing the runs")  # Run All: the training cell above may still be running
    runs, missing = [], []
    sources = [("yolo", yolo_results)] if yolo_results is not None else []
    if isinstance(nbdetect_runs, (str, Path)) or hasattr(nbdetect_runs, "history"):
        nbdetect_runs = [nbdetect_runs]
    nbdetect_runs = _run_folders(nbdetect_runs)
    sources += [("nbdetect", r) for r in nbdetect_runs]
    for kind, src in sources:
        try:
            runs.append(read_yolo_results(src) if kind == "yolo" else read_nbdetect_run(src))
        except FileNotFoundError:
            missing.append(str(src))
    if not runs:
        from .errors import MissingError

        raise MissingError(f"none of these could be read: {', '.join(missing)}", where="yolo_results, nbdetect_runs",
                           fix="point YOLO_RESULTS at your Ultralytics results.csv (runs/detect/train*/results.csv) "
                               "and NBDETECT_RUNS at run folders holding history.jsonl (or at nbdetect_runs)")
    return Comparison(runs, missing)
