"""The documented ways to extend nbdetect (docs/ARCHITECTURE.md), each through its public registration path."""
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader

from toy_data import collate, toy_samples
from nbdetect import actions, recipes
from nbdetect.callbacks import Callback
from nbdetect.checkpoint import load_checkpoint
from nbdetect.checks import diagnose
from nbdetect.checks import registry
from nbdetect.checks.report import Finding
from nbdetect.models import build_model
from nbdetect.trainer import TrainingRun
from nbdetect.verdict import decide


@pytest.fixture
def toy_recipe():
    toy = recipes.ALTERNATIVE_2.replace(name="toy_recipe", title="Toy recipe (Faster R-CNN, constant LR)",
                                        short_title="the toy recipe", schedule="constant", epochs=12,
                                        next_on_failure="alternative_1", rules=("alt2_epoch20", "final_fasterrcnn"),
                                        how="a recipe added in a test", call="nbdetect.run_recipe('toy_recipe', ...)",
                                        cell_title="Toy recipe")
    recipes.register(toy)
    yield toy
    del recipes.RECIPES[toy.name]


def test_a_new_recipe_is_one_record_read_by_the_verdict_actions_and_cells(toy_recipe):
    flat = [{"epoch": e, "train_loss": 1.0 - 0.002 * e, "val_loss": 1.0 - 0.001 * e} for e in range(1, 13)]
    v = decide(flat, "toy_recipe", 12)  # finished, graded by the record's own final rule
    assert v.rule_id == "final_fasterrcnn" and v.next_action == "alternative_1" and v.suggests_switch
    mid = decide(flat[:8], "toy_recipe", 12)  # past the record's decision rule (epoch 20 of 40 -> 6 of 12)
    assert mid.rule_id == "alt2_epoch20" and mid.status == "diagnose" and "Stop the toy recipe" in mid.headline
    assert actions.call("toy_recipe").startswith("nbdetect.run_recipe('toy_recipe'")
    from nbdetect.cells import get_cell

    cell = get_cell("toy_recipe")
    assert "nbdetect.toy_recipe(" in cell.source and "EPOCHS = 12" in cell.source
    with pytest.raises(ValueError, match="already registered"):
        recipes.register(toy_recipe.replace(title="another"))


def test_a_new_diagnose_check_is_one_record_with_its_codes():
    def too_few_epochs(ctx):
        n = ctx.history.n_epochs
        if n < 5:
            return [Finding("curve", "too_few_epochs", "warn", f"only {n} epochs to judge", f"{n} epochs")]
        return []

    check = registry.Check("too_few_epochs", ("history",), ("too_few_epochs",), too_few_epochs)
    with pytest.raises(ValueError, match="undeclared"):
        registry.register_check(check)
    before = registry.CHECKS
    try:
        registry.register_check(check, {"too_few_epochs": registry.Code(95, "continue")})
        report = diagnose(history=[1.6, 1.4, 1.3], plots=False)
        assert report.root_cause.code == "too_few_epochs" and report.next_action == "continue"
        assert report.root_cause.priority == 95
    finally:
        registry.CHECKS = before
        registry.CODES.pop("too_few_epochs", None)


class Counting(Callback):
    """A user hook with state: it counts iterations across a stop and a resume."""

    def __init__(self):
        self.iterations, self.events = 0, []

    def on_run_start(self, run):
        self.events.append("run_start")

    def on_epoch_start(self, run):
        self.events.append("epoch_start")

    def on_iteration_end(self, run, rec):
        self.iterations += 1
        if self.iterations == 4 and not run.resumed:
            run.stop()

    def on_validation_end(self, run, rec):
        self.events.append("validation_end")
        rec["my_metric"] = 1.0 / rec["epoch"]  # a hook may add a metric to the epoch record

    def on_epoch_end(self, run, rec):
        self.events.append("epoch_end")

    def on_run_end(self, run):
        self.events.append("run_end")

    def state_dict(self):
        return {"iterations": self.iterations}

    def load_state_dict(self, state):
        self.iterations = state["iterations"]


def _run(out_dir, callbacks=(), epochs=2):
    torch.manual_seed(0)
    model = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    loader = DataLoader(toy_samples(12), batch_size=4, shuffle=False, collate_fn=collate)
    recipe = recipes.ALTERNATIVE_1.replace(preset="retinanet_tiny", epochs=epochs, warmup_epochs=0.5)
    return TrainingRun(model, loader, loader, recipe=recipe, out_dir=out_dir, eval_map_every=0, tensorboard=False,
                       callbacks=callbacks)


def test_hooks_see_every_event_in_order_and_their_state_travels_in_the_checkpoint(tmp_path):
    hook = Counting()
    run = _run(tmp_path, [hook]).run()
    assert run.status == "stopped" and hook.iterations == 4
    assert hook.events == ["run_start", "epoch_start", "validation_end", "epoch_end", "epoch_start", "run_end"]
    assert run.history.epochs[0]["my_metric"] == 1.0 and "my_metric" in (tmp_path / "epochs.csv").read_text()
    assert load_checkpoint(run.last_checkpoint)["hooks"]["Counting"] == {"iterations": 4}
    fresh = Counting()
    resumed = _run(tmp_path, [fresh]).resume_from(run.last_checkpoint)
    assert fresh.iterations == 4
    resumed.run()
    assert resumed.status == "finished" and fresh.iterations == 6  # 3 + 3 iterations, counted across the stop


class Broken(Callback):
    def __init__(self, critical):
        self.critical = critical

    def on_epoch_end(self, run, rec):
        raise OSError("disk full")


def test_a_broken_display_is_disabled_but_a_broken_critical_hook_fails_the_run(tmp_path):
    with pytest.warns(UserWarning, match="Broken.on_epoch_end failed and was disabled"):
        run = _run(tmp_path / "a", [Broken(critical=False)], epochs=1).run()
    assert run.status == "finished"
    with pytest.raises(OSError, match="disk full"):
        _run(tmp_path / "b", [Broken(critical=True)], epochs=1).run()


def test_a_run_whose_folder_cannot_be_created_ends_failed_not_running(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    run = _run(blocker / "run", epochs=1)
    with pytest.raises(OSError):
        run.run()
    assert run.status == "failed" and not run.is_active and run.error is not None


def test_the_pure_floors_import_no_widgets_and_no_torch():
    code = ("import sys, nbdetect.verdict, nbdetect.recipes, nbdetect.actions, nbdetect.cells; "
            "print([m for m in ('ipywidgets', 'matplotlib', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    loop = ("import sys, nbdetect.trainer; print([m for m in ('ipywidgets', 'matplotlib', 'nbdetect.monitor') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", loop], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_new_data_format_is_one_loader_and_one_record(tmp_path):
    """A toy format: a folder with boxes.csv (file,x1,y1,x2,y2,label) next to PNG images."""
    from PIL import Image

    from nbdetect.data.base import DetectionDataset, make_record
    from nbdetect.data.formats import FORMATS, Format, register_format
    from nbdetect.inputs import prepare_data

    for i in range(4):
        Image.new("RGB", (64, 48), (i * 40, 0, 0)).save(tmp_path / f"im{i}.png")
    (tmp_path / "boxes.csv").write_text("".join(f"im{i}.png,4,4,30,30,{1 + i % 2}\n" for i in range(4)))

    def load_boxes_csv(path, split):
        rows = [line.split(",") for line in (path / "boxes.csv").read_text().splitlines()]
        records = [make_record(path / r[0], [[float(v) for v in r[1:5]]], [int(r[5])], i, r[0])
                   for i, r in enumerate(rows)]
        return DetectionDataset(records, ["a", "b"])

    fmt = register_format(Format("boxes_csv", lambda p: p.is_dir() and (p / "boxes.csv").exists(), load_boxes_csv))
    try:
        data = prepare_data(str(tmp_path), str(tmp_path), batch_size=2)
        images, targets = next(iter(data.train_loader))
        assert data.num_classes == 2 and len(images) == 2 and images[0].shape == (3, 48, 64)
        assert targets[0]["boxes"].tolist() in ([[4.0, 4.0, 30.0, 30.0]],)
    finally:
        FORMATS.remove(fmt)
