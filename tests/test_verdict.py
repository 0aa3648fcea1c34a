"""The guide's decision tree on nbdetect's loss scale, on synthesised histories."""
import math

import pytest

from nbdetect.verdict import RULES, Rule, UserThresholds, decide, reference_of
from verdict_histories import cosine_lrs, diverging, flat_bad_data, healthy, seed_multistep_plateau


def test_healthy_alternative_1_continues_at_epoch_20_and_succeeds():
    h = healthy(epochs=50)
    assert decide(h[:10], "alternative_1", 50).status == "continue"
    v = decide(h[:20], "alternative_1", 50)
    assert v.status == "continue" and v.rule_id == "alt1_epoch20"
    assert "epoch 20 of 50" in v.rule_text and "continue to epoch 50" in v.rule_text
    assert "500/1750" in v.rule_text  # the rule states where its line comes from
    end = decide(h, "alternative_1", 50)
    assert end.status == "success" and end.next_action == "submission"


def test_seed_multistep_plateau_is_called_lr_too_low():
    h = seed_multistep_plateau()
    # before the cut, nothing condemns the run
    assert decide(h[:29], "seed_multistep", 60).status in ("continue", "warn")
    v = decide(h[:41], "seed_multistep", 60)  # the student's epoch 41
    assert v.rule_id == "lr_too_low" and v.status == "switch" and v.next_action == "alternative_1"
    assert v.details["cut_epoch"] == 31 and v.details["peak_lr"] == pytest.approx(2e-4)
    assert "LR" in v.headline and "(10x) at epoch 31" in v.rule_text
    assert decide(h, "seed_multistep", 60).next_action == "alternative_1"


def test_lr_cut_after_convergence_is_not_a_failure():
    # a cosine run that converged before its LR fell: no "LR too low" call
    h = healthy(epochs=50)
    for k in range(30, 50):
        assert decide(h[:k], "alternative_1", 50).rule_id != "lr_too_low"


def test_divergence_nan_is_called_out():
    v = decide(diverging(epochs=8, nan_at=6), "alternative_1", 50)
    assert v.rule_id == "nonfinite" and v.status == "fail" and "NaN" in v.headline.replace("nan", "NaN")
    assert decide(healthy(epochs=8), "alternative_1", 50).rule_id != "divergence"


def test_divergence_from_trainer_error_and_from_exploding_loss():
    class NonFiniteLossError(RuntimeError):
        pass

    v = decide(healthy(epochs=3), "alternative_2", 40, error=NonFiniteLossError("the loss became nan at epoch 4"))
    assert v.rule_id == "nonfinite" and "nan" in v.rule_text
    exploding = healthy(epochs=3)
    exploding.append({"epoch": 4, "train_loss": 9.0, "val_loss": 9.0, "lr": 5e-4})
    assert decide(exploding, "alternative_1", 50).rule_id == "divergence"


def test_flat_loss_from_bad_data_warns_then_switches():
    h = flat_bad_data(epochs=50)
    assert decide(h[:14], "alternative_1", 50).status == "continue"
    warn = decide(h[:15], "alternative_1", 50)
    assert warn.status == "warn" and warn.rule_id == "early_epoch15" and "epoch 15" in warn.headline
    v = decide(h[:20], "alternative_1", 50)
    assert v.status == "switch" and v.next_action == "alternative_2" and v.suggests_switch
    # the cosine decay later is not blamed: the loss never dropped, the data is the suspect
    assert decide(h[:45], "alternative_1", 50).rule_id == "alt1_epoch20"
    assert decide(h, "alternative_1", 50).status == "fail"


def test_flat_alternative_2_sends_to_the_diagnostic():
    h = flat_bad_data(epochs=40)
    v = decide(h[:20], "alternative_2", 40)
    assert v.status == "diagnose" and v.next_action == "diagnose" and not v.suggests_switch
    assert "epoch 20 of 40" in v.rule_text and "2/4.5" in v.rule_text


def test_decision_epoch_scales_with_short_runs():
    h = flat_bad_data(epochs=10)
    assert decide(h[:3], "alternative_1", 10).rule_id != "alt1_epoch20"
    v = decide(h[:4], "alternative_1", 10)  # 20/50 of 10 epochs
    assert v.rule_id == "alt1_epoch20" and v.details["decision_epoch"] == 4
    assert "scaled to epoch 4 of this 10-epoch run" in v.rule_text


def test_partial_success_grade():
    h = healthy(epochs=50, start=1.75, end=0.3)  # ends at ~17% of the start: between 200/1750 and 500/1750
    v = decide(h, "alternative_1", 50)
    # the guide: "200-500 partial success, might still work": submit it (not sent to another recipe)
    assert v.status == "partial" and v.next_action == "submission"


def _to_user_scale(epochs, n):
    return [{k: (v * n if k.endswith("loss") else v) for k, v in e.items()} for e in epochs]


@pytest.mark.parametrize("history,k", [(healthy(epochs=50), 20), (flat_bad_data(epochs=50), 20),
                                       (healthy(epochs=50, start=1.75, end=0.3), 50),
                                       (healthy(epochs=50), 50)])
def test_user_thresholds_in_sum_over_batches_convention_agree(history, k):
    # a user whose notebook sums the loss over 1000 batches starts near 1750: the guide's own numbers apply
    n = 1000
    ref = reference_of(history)
    assert 1500 <= ref * n <= 2000
    user = UserThresholds(switch_above=500, success_below=200, partial_below=500,
                          loss_scale="sum_over_batches", batches_per_epoch=n)
    a = decide(history[:k], "alternative_1", 50, reference_loss=1.75)
    b = decide(history[:k], "alternative_1", 50, thresholds=user)
    assert a.status == b.status and a.next_action == b.next_action
    assert "your threshold" in b.rule_text and "summed over 1000 batches" in b.rule_text


def test_user_threshold_changes_the_decision():
    h = healthy(epochs=50)
    strict = UserThresholds(switch_above=0.05)  # nbdetect's own scale; the run is projected to end near 0.1
    assert decide(h[:20], "alternative_1", 50).status == "continue"
    v = decide(h[:20], "alternative_1", 50, thresholds=strict)
    assert v.status == "switch" and "projected" in v.rule_text
    assert decide(h[:20], "alternative_1", 50, thresholds=UserThresholds(switch_above=5, multiplier=100)).status == "switch"
    # above a looser line but still falling fast enough to reach it by epoch 50: no stop without that evidence
    behind = decide(h[:20], "alternative_1", 50, thresholds=UserThresholds(switch_above=0.12))
    assert behind.status == "warn" and behind.next_action is None
    with pytest.raises(ValueError, match="batches_per_epoch"):
        UserThresholds(switch_above=500, loss_scale="sum_over_batches").factor()


def test_missing_validation_falls_back_to_train_loss():
    h = [{k: v for k, v in e.items() if k != "val_loss"} for e in flat_bad_data(epochs=50)]
    v = decide(h[:20], "alternative_1", 50)
    assert v.status == "switch" and "train loss (no validation data)" in v.rule_text


def test_pending_and_generic_recipes():
    assert decide([], "alternative_1", 50).status == "pending"
    v = decide(healthy(epochs=50)[:5], "my_recipe", 50)
    assert v.status == "continue" and v.rule_id is None


def test_alternative_3_lr_boost_grading():
    h = healthy(epochs=10)
    assert decide(h, "alternative_3", 10).status == "partial"
    assert decide(flat_bad_data(epochs=10), "alternative_3", 10).next_action == "alternative_1"
    assert decide(flat_bad_data(epochs=10), "alternative_3", 10).status == "fail"


def test_rules_are_plain_data_with_guide_ratios():
    by_id = {r.id: r for r in RULES}
    assert all(isinstance(r, Rule) for r in RULES)
    assert by_id["alt1_epoch20"].ratio == pytest.approx(500 / 1750)
    assert by_id["final_retinanet"].ratio == pytest.approx(200 / 1750)
    assert by_id["alt2_epoch20"].ratio == pytest.approx(2 / 4.5)
    assert by_id["alt1_epoch20"].scaled_epoch(50) == 20 and by_id["alt1_epoch20"].scaled_epoch(12) == 5
    assert by_id["alt2_epoch20"].scaled_epoch(40) == 20
    assert math.isclose(cosine_lrs(50)[0], 5e-4, rel_tol=0.01)


def test_planned_cosine_decay_is_not_called_an_lr_cut():
    """Alternative 1's cosine tail ends far below its peak, but it glides there: no 'LR too low' verdict."""
    import math as _m

    from nbdetect.verdict import decide

    total = 12
    lrs = [1e-6 + (5e-4 - 1e-6) * 0.5 * (1 + _m.cos(_m.pi * e / (total - 1))) for e in range(total)]
    losses = [1.63, 1.2, 1.0, 0.85, 0.75, 0.68, 0.64, 0.61, 0.58, 0.56, 0.555, 0.55]
    epochs = [{"epoch": i + 1, "train_loss": v, "val_loss": v, "lr": lr} for i, (v, lr) in enumerate(zip(losses, lrs))]
    for n in range(2, total + 1):
        v = decide(epochs[:n], "alternative_1", total, lr_per_epoch=lrs[:n])
        assert v.rule_id != "lr_too_low", (n, v.rule_text)


def test_overfitting_is_called_out_only_when_validation_rises_while_training_falls():
    run = healthy(epochs=100)[:12]
    best = run[5]["val_loss"]
    for i, rec in enumerate(run[6:], start=1):  # validation climbs away from its best, training keeps falling
        rec["val_loss"] = best * (1 + 0.1 * i)
    v = decide(run, "alternative_1", 100)
    assert v.rule_id == "overfitting" and v.status == "warn"
    assert "epoch 6" in v.headline and v.details["best_epoch"] == 6
    assert decide(run[:9], "alternative_1", 100).rule_id != "overfitting"  # not yet 3 epochs 25% above the best
    both = [dict(r, train_loss=r["val_loss"]) for r in run]  # training rises too: not overfitting
    assert decide(both, "alternative_1", 100).rule_id != "overfitting"
    assert decide(healthy(epochs=100)[:12], "alternative_1", 100).rule_id != "overfitting"


@pytest.mark.parametrize("factor,diverging", [(2.95, False), (3.05, True)])
def test_divergence_at_its_boundary_of_three_times_the_start(factor, diverging):
    # a run that jumps to factor x its start within the warm-up (so only the absolute line can fire)
    h = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "lr": 1e-4},
         {"epoch": 2, "train_loss": factor, "val_loss": factor, "lr": 2e-4}]
    assert (decide(h, "alternative_1", 50).rule_id == "divergence") is diverging


@pytest.mark.parametrize("rise,diverging", [(1.4, False), (1.6, True)])
def test_divergence_from_the_best_at_its_boundary(rise, diverging):
    # learned to 0.4 of the start, then validation and training both rise to rise x the best
    h = [{"epoch": e, "train_loss": v, "val_loss": v, "lr": 1e-4}
         for e, v in enumerate([1.0, 0.7, 0.5, 0.42, 0.4, 0.4 * (1 + (rise - 1) / 2), 0.4 * rise], 1)]
    assert (decide(h, "alternative_1", 50).rule_id == "divergence") is diverging


def test_validation_every_third_epoch_with_nan_placeholders_is_not_divergence():
    h = [{"epoch": e, "train_loss": 2.0 * 0.9 ** e, "val_loss": 1.9 * 0.9 ** e if e % 3 == 0 else float("nan")}
         for e in range(1, 11)]
    for k in range(1, 11):
        assert decide(h[:k], "alternative_1", 50).rule_id != "nonfinite", k
    h[-1]["val_loss"], h[-2]["val_loss"], h[-3]["val_loss"] = (float("nan"),) * 3  # three missed: real NaN
    h[-3]["val_loss"] = float("nan")
    assert decide(h, "alternative_1", 50).rule_id == "nonfinite"


def test_the_rule_registry_names_every_rule_the_policy_runs_and_the_docs_table():
    """One identifier per rule: every rule_id a rule reports has one REGISTRY entry (its codes and outcomes),
    the policy runs exactly the registry's rule functions in the registry's order, and docs/JUDGE.md's rule
    table lists the same ids with the same codes."""
    import re
    from pathlib import Path

    import nbdetect.verdict as vd
    import nbdetect.verdict_rules as vr
    from judge_cases import generate
    from nbdetect.curve_facts import curve_facts
    from nbdetect.verdict_data import REGISTRY, entry

    ids = [e.id for e in REGISTRY]
    assert len(ids) == len(set(ids))
    for e in REGISTRY:
        for name in e.functions:
            assert hasattr(vr, name) or hasattr(vd, name), (e.id, name)
    policy = [r.__name__ for r in vd.POLICY]
    own = list(dict.fromkeys(e.functions[0] for e in REGISTRY if e.functions[0] in policy))
    assert own == policy, "REGISTRY's order is POLICY's (severity = position)"
    assert {f for e in REGISTRY for f in e.functions} - set(policy) == {"rule_final", "rule_final_own_evidence",
                                                                        "judge_history"}
    # docs/JUDGE.md's rule table: the same ids, each with the same codes
    text = (Path(__file__).resolve().parents[1] / "docs" / "JUDGE.md").read_text()
    table = text[text.index("## Verdict rules"):]
    table = table[:table.index("\n## ")]
    documented = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 5 or not cells[0].startswith("`"):
            continue
        for rid in re.findall(r"`([\w*]+)`", cells[0]):
            documented[rid] = set(re.findall(r"`(\w+)`", cells[1]))
    assert set(documented) == set(ids)
    for e in REGISTRY:
        assert documented[e.id] == set(e.codes), e.id
    # every finding the rules report, on the generated histories and the guide's shapes, is its entry's
    histories = [(c.epochs, c.recipe, c.total) for c in generate(seed=0, n=24)]
    histories += [(h, r, len(h)) for h in (healthy(), seed_multistep_plateau(), diverging(), flat_bad_data())
                  for r in ("alternative_1", "alternative_2", "alternative_3", "seed_multistep", "custom")]
    seen = set()
    for epochs, recipe, total in histories:
        for k in range(1, len(epochs) + 1, 3):
            for v in vd.judge(curve_facts(epochs[:k], total), recipe):
                e = entry(v.rule_id)
                assert e is not None and v.code in e.codes and v.status in e.status, (recipe, k, v.rule_id,
                                                                                       v.code, v.status)
                seen.add(e.id)
    assert len(seen) >= len(ids) - 3, sorted(set(ids) - seen)
    failed = decide(healthy()[:5], "alternative_1", 50, error=RuntimeError("CUDA out of memory"))
    assert failed.rule_id == "run_failed" and failed.code in entry("run_failed").codes
