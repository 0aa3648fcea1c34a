import math
import time

import pytest
import torch
from torch.utils.data import DataLoader

from toy_data import collate, toy_samples
from nbdetect.callbacks import Callback
from nbdetect.checkpoint import load_checkpoint
from nbdetect.engine import NonFiniteLossError
from nbdetect.models import build_model
from nbdetect.recipes import ALTERNATIVE_1
from nbdetect.monitor.core import progress_line
from nbdetect.trainer import TrainingRun


def make_run(preset, out_dir, epochs=2, data=None, callbacks=(), seed=0, threads=None):
    torch.manual_seed(seed)
    model = build_model(preset, 2, weights=None, min_size=96, max_size=96)
    data = data if data is not None else toy_samples(12)
    loader = DataLoader(data, batch_size=4, shuffle=False, collate_fn=collate)
    recipe = ALTERNATIVE_1.replace(preset=preset, epochs=epochs, warmup_epochs=0.5)
    return TrainingRun(model, loader, loader, recipe=recipe, out_dir=out_dir, eval_map_every=0,
                       tensorboard=False, callbacks=callbacks, threads=threads)


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_iteration_end(self, run, rec):
        if rec["step"] == self.step:
            run.stop()


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["retinanet_tiny", "fasterrcnn_tiny"])
def test_resumed_run_matches_uninterrupted_run(tmp_path, preset):
    full = make_run(preset, tmp_path / "full").run()
    assert full.status == "finished" and full.step == 6

    part = make_run(preset, tmp_path / "part", callbacks=[StopAt(4)]).run()
    assert part.status == "stopped" and part.step == 4 and part.iteration == 1  # mid epoch 2
    ckpt = load_checkpoint(part.last_checkpoint)
    assert (ckpt["epoch"], ckpt["iteration"], ckpt["step"]) == (1, 1, 4)

    resumed = make_run(preset, tmp_path / "part", seed=123)  # different init: everything comes from the checkpoint
    resumed.resume_from(part.last_checkpoint).run()
    assert resumed.status == "finished"
    assert [r["lr"] for r in resumed.history.iterations] == pytest.approx([r["lr"] for r in full.history.iterations])
    assert [r["loss"] for r in resumed.history.iterations] == pytest.approx(
        [r["loss"] for r in full.history.iterations], rel=1e-5)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    assert [round(e["val_loss"], 5) for e in resumed.history.epochs] == [round(e["val_loss"], 5) for e in full.history.epochs]


def test_stop_from_another_thread_saves_checkpoint(tmp_path):
    run = make_run("retinanet_tiny", tmp_path, epochs=50)
    run.start()
    deadline = time.monotonic() + 60
    while run.step < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.stop()
    t0 = time.monotonic()
    run.wait(timeout=60)
    assert time.monotonic() - t0 < 10
    assert run.status == "stopped"
    assert run.step < run.total_steps
    state = load_checkpoint(run.last_checkpoint)
    assert state["step"] == run.step
    model = build_model("retinanet_tiny", 2, weights=None)
    model.load_state_dict(state["model"])


class PoisonAfterEpoch1(Callback):
    def __init__(self, data):
        self.data = data

    def on_epoch_end(self, run, rec):
        if rec["epoch"] == 1:
            self.data[5][0][:, :4, :4] = float("nan")


def test_nan_loss_stops_run_and_keeps_last_good_checkpoint(tmp_path):
    data = toy_samples(12)
    run = make_run("retinanet_tiny", tmp_path, epochs=3, data=data, callbacks=[PoisonAfterEpoch1(data)])
    with pytest.raises(NonFiniteLossError) as info:
        run.run()
    msg = str(info.value)
    assert "epoch 2/3, iteration 2/3" in msg and "last good checkpoint" in msg and "epoch 1" in msg
    assert run.status == "failed"
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    # the model in memory was not updated with the NaN batch either
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


class InterruptAt(Callback):
    def on_iteration_end(self, run, rec):
        if rec["step"] == 2:
            raise KeyboardInterrupt


def test_keyboard_interrupt_saves_everything(tmp_path):
    run = make_run("retinanet_tiny", tmp_path, callbacks=[InterruptAt()]).run()
    assert run.status == "stopped" and "nothing lost" in run.message
    state = load_checkpoint(run.last_checkpoint)
    assert state["step"] == 2 and len(state["history"]["iterations"]) == 2


def test_mismatched_checkpoint_is_refused(tmp_path):
    part = make_run("retinanet_tiny", tmp_path, callbacks=[StopAt(2)]).run()
    other = make_run("retinanet_tiny", tmp_path / "other", data=toy_samples(20))  # 5 batches/epoch, not 3
    with pytest.raises(ValueError, match="does not match this data"):
        other.resume_from(part.last_checkpoint)


def test_validation_loss_does_not_touch_batchnorm_or_grads(toy_loader):
    from nbdetect.engine import evaluate_loss

    model = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss, parts = evaluate_loss(model, toy_loader, torch.device("cpu"))
    assert math.isfinite(loss) and set(parts) == {"classification", "bbox_regression"}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.slow
def test_cpu_threads_are_chosen_applied_while_training_and_restored(tmp_path):
    from nbdetect.errors import InputError
    from nbdetect.threads import choose_threads

    assert choose_threads("cpu", cpus=2) == 1 and choose_threads("cpu", cpus=16) == 15
    assert choose_threads("cpu", cpus=1) == 1 and choose_threads("cuda", cpus=16) is None
    assert choose_threads("cuda", 4) == 4
    with pytest.raises(InputError, match="threads=0"):
        choose_threads("cpu", 0)
    seen = []

    class Spy(Callback):
        def on_iteration_end(self, run, rec):
            seen.append(torch.get_num_threads())

    original = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run = make_run("retinanet_tiny", tmp_path, epochs=1, callbacks=[Spy()], threads=1)
        run.run()
        assert set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(original)
    assert "(cpu, 1 thread)" in progress_line(run.progress())


@pytest.mark.slow
def test_weight_ema_is_validated_saved_and_resumed_exactly(tmp_path, monkeypatch):
    from functools import partialmethod

    from nbdetect.hooks import WeightEMA

    monkeypatch.setattr(WeightEMA, "__init__", partialmethod(WeightEMA.__init__, share=0.5))  # a 3-step window
    recipe_ema = ALTERNATIVE_1.replace(preset="retinanet_tiny", epochs=2, warmup_epochs=0.5, ema=True)

    def run_of(out, callbacks=(), seed=0):
        torch.manual_seed(seed)
        model = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
        loader = DataLoader(toy_samples(12), batch_size=4, shuffle=False, collate_fn=collate)
        return TrainingRun(model, loader, loader, recipe=recipe_ema, out_dir=out, eval_map_every=0,
                           tensorboard=False, callbacks=callbacks)

    full = run_of(tmp_path / "full").run()
    assert full.eval_model is not full.model
    raw, avg = full.model.state_dict(), full.eval_model.state_dict()
    assert any(not torch.allclose(raw[k].float(), avg[k].float()) for k in raw if raw[k].is_floating_point())
    best = load_checkpoint(full.best_checkpoint)["model"]  # best.pt holds the averaged weights
    assert all(torch.equal(best[k], v) for k, v in avg.items()) or load_checkpoint(full.best_checkpoint)["epoch"] < 2

    part = run_of(tmp_path / "part", callbacks=[StopAt(4)]).run()
    resumed = run_of(tmp_path / "part", seed=123)
    resumed.resume_from(part.last_checkpoint).run()
    for (name, a), b in zip(avg.items(), resumed.eval_model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    assert [round(e["val_loss"], 5) for e in resumed.history.epochs] == [round(e["val_loss"], 5) for e in full.history.epochs]


def test_recipe_optimizer_exempts_biases_and_norms_from_weight_decay_and_warms_them_up(tmp_path):
    run = make_run("retinanet_tiny", tmp_path)
    groups = run.optimizer.param_groups
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"weights", "biases and norms"}
    assert by_name["weights"]["weight_decay"] == ALTERNATIVE_1.weight_decay and by_name["biases and norms"]["weight_decay"] == 0
    assert all(p.ndim > 1 for p in by_name["weights"]["params"])
    assert all(p.ndim <= 1 for p in by_name["biases and norms"]["params"])
    trainable = [p for p in run.model.parameters() if p.requires_grad]
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == len(trainable) and {id(p) for p in grouped} == {id(p) for p in trainable}
    # the warm-up drives every group: after one step both groups have the schedule's LR, far below the peak
    run.optimizer.step()  # no gradients yet: nothing moves
    run.scheduler.step()
    lrs = {g["name"]: g["lr"] for g in run.optimizer.param_groups}
    assert lrs["weights"] == lrs["biases and norms"] == pytest.approx(run.schedule.lr_at(1))
    assert lrs["weights"] < ALTERNATIVE_1.lr


def test_a_one_group_checkpoint_resumes_with_its_own_layout(tmp_path):
    old = make_run("retinanet_tiny", tmp_path / "old", callbacks=[StopAt(2)])
    old.optimizer = ALTERNATIVE_1.replace(preset="retinanet_tiny").make_optimizer(old.model.parameters())
    from nbdetect import schedules

    old.scheduler = schedules.to_torch(old.optimizer, old.schedule)
    old.run()
    assert old.status == "stopped" and len(load_checkpoint(old.last_checkpoint)["optimizer"]["param_groups"]) == 1
    resumed = make_run("retinanet_tiny", tmp_path / "old")
    assert len(resumed.optimizer.param_groups) == 2
    resumed.resume_from(old.last_checkpoint).run()
    assert resumed.status == "finished" and resumed.step == 6 and len(resumed.optimizer.param_groups) == 1
    assert resumed.history.iterations[-1]["lr"] == pytest.approx(resumed.schedule.lr_at(5))


def test_the_loop_is_short_and_has_no_distributed_branch():
    """One loop for one or N processes: what differs is a method of run.strategy (nbdetect/strategy.py)."""
    import ast
    import inspect
    import textwrap

    source = textwrap.dedent(inspect.getsource(TrainingRun._fit))
    assert len(source.splitlines()) <= 110
    loop = "".join(textwrap.dedent(inspect.getsource(getattr(TrainingRun, name)))
                   for name in ("_fit", "_should_stop", "_on_iteration", "_describe", "_end_epoch"))
    names = {n.attr if isinstance(n, ast.Attribute) else n.id for n in ast.walk(ast.parse(loop))
             if isinstance(n, (ast.Attribute, ast.Name))}
    assert not names & {"group", "rank", "is_main", "devices", "world_size", "is_global_zero"}, names
    tests = [n.test for n in ast.walk(ast.parse(loop)) if isinstance(n, (ast.If, ast.IfExp))]
    assert not any("strategy" in ast.unparse(t) for t in tests)  # the strategy is called, never asked which it is


class EveryN(Callback):
    """Counts the steps it saw that are multiples of n: two instances with another n keep other counts."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    @property
    def state_key(self):
        return self.generate_state_key(n=self.n)

    def on_iteration_end(self, run, rec):
        self.seen += rec["step"] % self.n == 0

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


def test_two_hooks_of_one_class_keep_their_own_state_across_resume(tmp_path):
    every1, every2 = EveryN(1), EveryN(2)
    part = make_run("retinanet_tiny", tmp_path, callbacks=[every1, every2, StopAt(3)]).run()
    assert part.status == "stopped" and (every1.seen, every2.seen) == (3, 1)
    ckpt = load_checkpoint(part.last_checkpoint)
    assert ckpt["hooks"]["EveryN{'n': 1}"] == {"seen": 3} and ckpt["hooks"]["EveryN{'n': 2}"] == {"seen": 1}
    assert "best_metric" not in ckpt and "best_metric" in ckpt["hooks"]["Checkpointer"]  # kept once
    again1, again2 = EveryN(1), EveryN(2)
    resumed = make_run("retinanet_tiny", tmp_path, callbacks=[again2, again1])  # the order does not matter
    resumed.resume_from(part.last_checkpoint)
    assert (again1.seen, again2.seen) == (3, 1)
    resumed.run()
    assert resumed.status == "finished" and (again1.seen, again2.seen) == (6, 3)

    class Same(EveryN):  # two stateful hooks under one key would overwrite each other: refused
        state_key = "same"

    from nbdetect.errors import InputError

    with pytest.raises(InputError, match="'same'"):
        make_run("retinanet_tiny", tmp_path / "other", callbacks=[Same(1), Same(2)])


def test_a_checkpoint_with_an_unknown_hook_key_loads_with_a_warning(tmp_path, recwarn):
    part = make_run("retinanet_tiny", tmp_path, callbacks=[EveryN(2), StopAt(2)]).run()
    assert part.status == "stopped"
    resumed = make_run("retinanet_tiny", tmp_path)  # without that hook
    with pytest.warns(UserWarning, match=r"hooks this run does not have: EveryN\{'n': 2\}"):
        resumed.resume_from(part.last_checkpoint)
    assert resumed.step == 2 and resumed.run().status == "finished"
    # a checkpoint from before state keys (class names, the best metric at the top) still loads, silently
    old = load_checkpoint(resumed.last_checkpoint)
    best = old["hooks"].pop("Checkpointer")["best_metric"]
    assert math.isfinite(best) and "EveryN{'n': 2}" not in old["hooks"]  # a state ignored is not written again
    old.update(best_metric=best, hooks={**old["hooks"], "MapEvaluator": {}})
    torch.save(old, tmp_path / "old.pt")
    legacy = make_run("retinanet_tiny", tmp_path)
    recwarn.clear()
    legacy.resume_from(tmp_path / "old.pt")
    assert legacy.checkpointer.best_metric == best and not [w for w in recwarn if "hooks" in str(w.message)]


def test_the_loop_calls_its_strategy_for_everything_one_or_n_processes_do_differently(tmp_path):
    from nbdetect.strategy import DDP, SingleProcess, choose

    assert type(choose(1)) is SingleProcess and type(choose(2)) is DDP and choose(2).world == 2

    class Recording(SingleProcess):
        def __init__(self):
            self.calls = []

        def __getattribute__(self, name):
            attr = object.__getattribute__(self, name)
            if not callable(attr) or name.startswith("_"):
                return attr

            def recorded(*args, **kwargs):
                object.__getattribute__(self, "calls").append(name)
                return attr(*args, **kwargs)

            return recorded

    strategy = Recording()
    torch.manual_seed(0)
    model = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    loader = DataLoader(toy_samples(8), batch_size=4, shuffle=False, collate_fn=collate)
    run = TrainingRun(model, loader, loader, recipe=ALTERNATIVE_1.replace(epochs=1), out_dir=tmp_path,
                      eval_map_every=0, tensorboard=False, strategy=strategy).run()
    assert run.status == "finished" and run.is_main and run.devices == 1 and run.group is None
    called = set(strategy.calls)
    assert {"device_for", "place", "attach", "launch", "agree", "mean", "val_part", "gather", "teardown"} <= called
    assert strategy.calls.count("mean") == run.step == 2  # the loss of every step goes through it
