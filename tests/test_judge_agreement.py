"""The live verdict of a real TrainingRun and diagnose(history=<its run folder>) say the same thing.

Both call nbdetect.verdict.judge_history on the same History: the run's in memory, and the one read back from
its history.jsonl (whose meta record carries the recipe, the planned epochs and the user's thresholds).
"""
import pytest

from toy_data import toy_samples
from nbdetect import alternative_1
from nbdetect.checks import diagnose
from nbdetect.history_readers import read_history
from nbdetect.verdict import UserThresholds, judge_history

pytestmark = pytest.mark.slow


def _curve_problems(report):
    return [f for f in report.findings if f.check in ("curve", "lr") and f.code != "lr_timeline" and f.is_problem]


@pytest.mark.parametrize("thresholds", [None, UserThresholds(switch_above=0.01, success_below=0.005)],
                         ids=["guide-lines", "user-thresholds"])
def test_a_runs_live_verdict_equals_diagnose_of_its_folder(tmp_path, thresholds):
    run = alternative_1(toy_samples(8), toy_samples(4, seed=1), num_classes=2, preset="retinanet_tiny",
                        out_dir=tmp_path, weights=None, epochs=4, monitor=False, image_size=96, eval_map_every=1,
                        thresholds=thresholds)
    assert run.status == "finished"
    live = run.verdict
    read = read_history(tmp_path)
    assert read.meta["recipe"] == "alternative_1" and read.meta["total_epochs"] == 4
    assert [r["epoch"] for r in read.epochs] == [r["epoch"] for r in run.history.epochs]
    again = judge_history(read)  # the folder's History, judged by the same function
    assert (again.status, again.rule_id, again.code, again.next_action, again.headline) == \
           (live.status, live.rule_id, live.code, live.next_action, live.headline)
    report = diagnose(history=tmp_path, plots=False)
    problems = _curve_problems(report)
    if live.is_problem:
        assert problems and problems[0].code == live.code and problems[0].title == live.headline
    else:
        assert not problems
        curve = next(f for f in report.findings if f.code == "curve_ok")
        assert curve.evidence == live.rule_text
    # diagnose() of a recipe's own run never sends the user back to that same recipe
    assert report.next_action != "alternative_1"
    if thresholds is not None:
        assert read.meta["thresholds"]["switch_above"] == 0.01 and "your threshold" in live.rule_text
