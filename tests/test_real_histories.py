"""Real public training logs (../shared/data/real_histories), read from their raw files and judged at every
epoch. The truth below is ours, written from reading each log (no verdict ships with them):

- every one of these runs learned (mAP rose, or the loss fell, well beyond the noise): no verdict may ever
  say stop (switch/diagnose/fail), and none may send the user to another recipe (these are YOLO and
  detectron2 runs: nbdetect's RetinaNet recipes are not their next step);
- a finished run is never graded "not good enough" (fail/partial) by a guide line: its loss convention and
  goal are unknown;
- a few logs show something a good adviser names by their end: the dental run (val loss up from its best,
  mAP@.5 down from 0.56 to 0.44 over the last 20 epochs) is not "fine" at its last epoch.

Skips cleanly when ../shared is absent.
"""
import json
import math
from pathlib import Path

import pytest

from nbdetect import recipes
from nbdetect.checks import diagnose
from nbdetect.history_readers import read_history
from nbdetect.verdict import STOP_STATUSES, judge_history

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_histories"
INDEX = ROOT / "real_histories.json"
LOGS = json.loads(INDEX.read_text()) if INDEX.exists() else []
pytestmark = pytest.mark.skipif(not LOGS, reason="../shared/data/real_histories is not here")

# Our reading of each log's end (the name's first word is enough to find it): what the last verdict may be.
NOT_FINE_AT_THE_END = {"Abhinaya35+dental-tooth-detection-yolov8"}  # overfitting: val loss up, mAP down


def _raw_path(log):
    return ROOT / "raw" / log["source"]["repo"].replace("/", "+") / log["source"]["path"]


def _id(log):
    return log["name"].split(":")[0]


def _history(log):
    return read_history(_raw_path(log))  # a file, or a run folder named as the source path


@pytest.mark.parametrize("log", LOGS, ids=_id)
def test_each_raw_log_is_read_into_the_same_epochs_as_its_published_conversion(log):
    """The readers (Ultralytics results.csv, YOLOv5/v7 results.txt, detectron2 metrics.json) against the
    conversion published with the logs: same epochs, losses, mAP."""
    h = _history(log)
    assert h.n_epochs == log["logged_epochs"], h.source
    got = {r["epoch"]: r for r in h.epochs}
    for ref in log["epochs"]:
        rec = got[ref["epoch"]]
        for key in ("train_loss", "val_loss", "map50", "map"):
            if ref.get(key) is None:
                continue
            assert rec.get(key) == pytest.approx(ref[key], rel=1e-4, abs=1e-6), (ref["epoch"], key)
    assert h.meta["convention"] == "unknown"
    if h.meta.get("total_epochs"):
        assert h.meta["total_epochs"] == log["planned_epochs"]


def _verdicts(log):
    h = _history(log)
    total = log["planned_epochs"]
    for k in range(1, len(h.epochs) + 1):
        part = type(h)(meta=dict(h.meta))
        part.epochs = h.epochs[:k]
        yield k, judge_history(part, total_epochs=total)


@pytest.mark.parametrize("log", LOGS, ids=_id)
def test_a_real_run_that_learned_is_never_stopped_nor_sent_to_a_recipe(log):
    recipe_names = set(recipes.RECIPES)
    for k, v in _verdicts(log):
        assert v.status not in STOP_STATUSES, (k, v.headline, v.rule_text)
        assert v.next_action not in recipe_names, (k, v.headline)
        assert v.status != "partial", (k, v.headline)


@pytest.mark.parametrize("log", LOGS, ids=_id)
def test_the_end_of_a_real_run_is_graded_on_its_own_evidence(log):
    *_, (k, last) = _verdicts(log)
    finished = log["logged_epochs"] >= log["planned_epochs"]
    if _id(log) in NOT_FINE_AT_THE_END:
        assert last.status == "warn", (k, last.headline)
        assert {"overfitting", "plateau"} & {last.rule_id, *(f.rule_id for f in last.findings)}
    elif finished:
        assert last.status in ("success", "warn"), (k, last.headline)
        assert last.rule_id in ("final_own_evidence", "overfitting", "map_collapse"), last.rule_id
        assert "Read:" in last.rule_text and "mAP" in last.rule_text  # it says which series it read
    else:
        assert last.status in ("continue", "warn"), (k, last.headline)


@pytest.mark.parametrize("log", LOGS[::3], ids=_id)
def test_diagnose_of_the_raw_file_says_what_the_live_judge_says(log):
    path = _raw_path(log)
    report = diagnose(history=path, epochs=log["planned_epochs"], plots=False)
    *_, (k, live) = _verdicts(log)
    curve = [f for f in report.findings if f.check in ("curve", "lr") and f.code != "lr_timeline"]
    problems = [f for f in curve if f.is_problem]
    if live.is_problem:
        assert problems and problems[0].code == live.code and problems[0].title == live.headline
    else:
        assert not problems and report.conclusive, report.to_text()
        assert curve[0].evidence == live.rule_text


def test_the_real_logs_cover_several_frameworks_and_lengths():
    frameworks = {log["framework"].split()[0] for log in LOGS}
    assert len(LOGS) >= 8 and {"Ultralytics", "detectron2"} <= frameworks
    assert min(log["logged_epochs"] for log in LOGS) <= 5 and max(log["logged_epochs"] for log in LOGS) >= 200
    assert all(math.isfinite(r["map50"]) for log in LOGS for r in log["epochs"] if r.get("map50") is not None)
