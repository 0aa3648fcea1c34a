"""The documented ways to extend nbdetect (docs/ARCHITECTURE.md), each through its public registration path."""
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader

from toy_data import collate, toy_samples
from nbdetect import actions, families, recipes
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


def test_a_new_verdict_rule_is_a_function_and_a_registry_entry(monkeypatch):
    """docs/ARCHITECTURE.md, "a verdict rule": a rule function in verdict_rules returning a Finding and one
    REGISTRY entry (done here, in the test file alone) are all the judge needs: POLICY is read off the registry
    (as at import), and the live verdict, decide() and diagnose() report it under its one id and its code."""
    import nbdetect.verdict as vd
    import nbdetect.verdict_data as vdata
    import nbdetect.verdict_rules as vrules
    from nbdetect.verdict_rules import Finding as RuleFinding

    def rule_epoch_seven(ctx):
        f = ctx.facts
        if f.n_epochs < 7:
            return None
        return ctx.verdict("warn", "Seven epochs in: a test rule fired.", f"Rule (test): {f.n_epochs} epochs read.",
                           "use_best", "epoch_seven", "loss_plateau", epochs=f.n_epochs)

    monkeypatch.setattr(vrules, "rule_epoch_seven", rule_epoch_seven, raising=False)
    registry = vdata.REGISTRY + (vdata.RuleEntry("epoch_seven", ("rule_epoch_seven",), ("loss_plateau",), ("warn",)),)
    monkeypatch.setattr(vdata, "REGISTRY", registry)
    monkeypatch.setattr(vd, "POLICY", vd.policy_from(registry))  # what importing nbdetect.verdict computes
    assert vd.POLICY[-1] is rule_epoch_seven and len(vd.POLICY) == len(vd.policy_from(registry[:-1])) + 1
    losses = [1.8 * 0.9 ** e for e in range(8)]
    assert decide(losses[:6], "custom", 50).rule_id is None
    v = decide(losses, "custom", 50)
    assert isinstance(rule_epoch_seven(vd.Context(v.facts, "custom", None, None, False, False)), RuleFinding)
    assert (v.rule_id, v.code, v.status, v.next_action) == ("epoch_seven", "loss_plateau", "warn", "use_best")
    assert v.details == {"epochs": 8} and vdata.entry(v.rule_id).codes == ("loss_plateau",)
    report = diagnose(history=losses, epochs=50, plots=False)
    assert any(f.code == "loss_plateau" and "test rule" in f.title for f in report.findings), report


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# -- a detector family and its recipe (docs/ARCHITECTURE.md, "How to add": at most three files) ----------------

def _train_in_its_cell(recipe, tmp_path, monkeypatch):
    """The recipe's ready cell, as a CPU notebook gets it, run on a small draw of the demo data for one epoch;
    then the verdict and diagnose read the run like any other."""
    import nbdetect
    from nbdetect.cells import get_cell
    from nbdetect.notebook_tools import render

    monkeypatch.chdir(tmp_path)
    train, val = nbdetect.synthetic_split(n_train=8, n_val=4, image_size=(128, 128))
    cell = get_cell(recipe.name, gpu=False)
    assert f"nbdetect.{recipe.name}(" in cell.source and recipe.tiny_preset in cell.source
    namespace = {"train_dataset": train, "val_dataset": val}
    exec(compile(render(cell, EPOCHS="1", IMAGE_SIZE="(128, 128)"), f"<cell {recipe.name}>", "exec"), namespace)
    run = namespace["run"]
    assert run.status == "finished" and run.meta["preset"] == recipe.tiny_preset
    assert run.recipe.name == recipe.name and len(run.history.epochs) == 1
    report = diagnose(run.model, run.optimizer, data=train, history=run, recipe=recipe.name, plots=False,
                      overfit=False)
    return run, report


@pytest.fixture
def fcos_recipe():
    """An FCOS recipe: FCOS is a family of the library (its record in families.py, presets fcos_resnet50_fpn and
    fcos_tiny); the recipe is one record, registered as a user's code would."""
    fcos = recipes.ALTERNATIVE_1.replace(
        name="fcos_recipe", title="FCOS (anchor-free, warmup + cosine)", short_title="the FCOS recipe",
        preset="fcos_resnet50_fpn", tiny_preset="fcos_tiny", rules=("early_epoch15",), match_iou=None,
        data_anchors=True,  # asked for, and left alone by the family's record (FCOS's anchors are points)
        next_on_failure="alternative_2", how="FCOS, anchor-free: no anchor sizes to get wrong",
        call="nbdetect.fcos_recipe(train, val, num_classes=K)", cell_title="FCOS recipe", cell_note="")
    recipes.register(fcos)
    yield fcos
    del recipes.RECIPES[fcos.name]


@pytest.mark.slow
def test_fcos_is_a_family_whose_recipe_trains_through_the_same_cells_verdict_and_diagnose(fcos_recipe, tmp_path,
                                                                                          monkeypatch):
    assert families.of_preset("fcos_tiny") is families.FCOS and families.of_recipe(fcos_recipe) is families.FCOS
    run, report = _train_in_its_cell(fcos_recipe, tmp_path, monkeypatch)
    assert type(run.model).__name__ == "FCOS" and run.meta["num_classes"] == 6  # the demo data's six signs
    assert "anchor_sizes" not in run.meta  # FCOS's point anchors set each level's scale range: never fitted
    assert run.verdict.rule_id == "final_fcos"  # the family's final grading (the recipe names none)
    codes = {f.code for f in report.findings}
    assert "prior_bias_ok" in codes and "box_too_small_for_anchors" not in codes, codes
    assert report.root_cause is None or report.root_cause.code != "not_checked", report.root_cause


def _tiny_ssd(num_outputs, min_size, max_size, anchor_sizes=None, aspect_ratios=None):
    """SSDlite's head on nbdetect's tiny backbone: a family nbdetect does not ship, added by a user."""
    from functools import partial

    from torch import nn
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD
    from torchvision.models.detection.ssdlite import SSDLiteHead

    from nbdetect.backbones import TinyBackbone

    boxes = DefaultBoxGenerator([[2]] * 5, scales=[0.05, 0.1, 0.2, 0.4, 0.7, 0.95])
    head = SSDLiteHead([64] * 5, boxes.num_anchors_per_location(), num_outputs, partial(nn.GroupNorm, 16))
    return SSD(TinyBackbone(64, extra="p6p7"), boxes, (min_size, min_size), num_outputs, head=head)


SSD = families.Family(
    name="ssdlite", title="SSDlite", model_class="torchvision.models.detection.ssd:SSD", tiny=_tiny_ssd,
    replace_head=lambda model, outputs: None, outputs=lambda m: int(m.head.classification_head.num_columns),
    anchors=lambda m: None, anchor_argument=None, anchor_boxes=False,
    background_output=True,  # softmax over K + 1 outputs: label 0 is trained as background
    loss_range=(0.5, 15.0), loss_note="SSDlite ~10 at the start",
    final_rule=families.FinalRule("final_ssdlite", 0.4, 0.7, "an SSDlite that learns ends below 40% of its start"))


@pytest.fixture
def new_family():
    """A newcomer's family and its recipe, all in this one file: a Family record with its preset, a Recipe."""
    families.register(SSD, [families.Preset("ssdlite_tiny", "ssdlite", "tiny SSDlite", True, 128, 128)])
    recipe = recipes.register(recipes.ALTERNATIVE_1.replace(
        name="ssd_recipe", title="SSDlite (warmup + cosine)", short_title="the SSDlite recipe", preset="ssdlite_tiny",
        tiny_preset="ssdlite_tiny", rules=("early_epoch15",), match_iou=None, data_anchors=False,
        call="nbdetect.ssd_recipe(train, val, num_classes=K)", cell_title="SSDlite recipe", cell_note=""))
    yield recipe
    del recipes.RECIPES[recipe.name]
    families.unregister(SSD.name)


@pytest.mark.slow
def test_a_new_family_and_its_recipe_are_two_records_read_by_models_cells_verdict_and_diagnose(new_family, tmp_path,
                                                                                              monkeypatch):
    model = build_model("ssdlite_tiny", 2, weights=None)
    from nbdetect.models import family_of, num_classes_of

    assert family_of(model) == "ssdlite" and num_classes_of(model) == 2
    run, report = _train_in_its_cell(new_family, tmp_path, monkeypatch)
    assert run.verdict.rule_id == "final_ssdlite"
    from nbdetect.verdict import rules

    assert "final_ssdlite" in {r.id for r in rules()}
    codes = {f.code for f in report.findings}
    assert "prior_bias_na" in codes and "loss_scale_ok" in codes, codes
    with pytest.raises(ValueError, match="already registered"):
        families.register(SSD.__class__(**{**SSD.__dict__, "title": "another"}))


# -- the architecture as docs/ARCHITECTURE.md states it ------------------------------------------------------------

def _modules():
    from nbdetect_test_paths import REPO

    root = REPO / "nbdetect"
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path, modules, top_level: bool) -> set:
    """The nbdetect modules ``path`` imports: at module level (including under if/try there), or anywhere."""
    import ast

    tree = ast.parse(path.read_text())
    me = next(m for m, p in modules.items() if p == path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    if top_level:
        nodes, todo = [], list(tree.body)
        while todo:
            node = todo.pop()
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                nodes.append(node)
            elif isinstance(node, (ast.If, ast.Try)):
                todo += node.body + node.orelse + getattr(node, "finalbody", [])
                todo += [n for h in getattr(node, "handlers", []) for n in h.body]
    else:
        nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
            continue
        if node.level:
            base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
            base = ".".join(base + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in modules:
                out.add(sub)
            elif base in modules:
                out.add(base)
    return out - {me}


def _circles(graph) -> list:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_a_model_setting_is_a_record_whose_field_is_a_recipe_field_an_option_and_a_checked_argument():
    """docs/ARCHITECTURE.md: a model setting is its set_<name> and ModelSetting record (models.py), the Recipe
    field and the Arg; the options a call may pass are read from the records, not listed again."""
    import dataclasses

    from nbdetect.alternatives import known_options
    from nbdetect.arguments import ARGS
    from nbdetect.models import MODEL_SETTINGS

    recipe_fields = {f.name for f in dataclasses.fields(recipes.Recipe)}
    assert len(MODEL_SETTINGS) >= 6
    for setting in MODEL_SETTINGS:
        assert setting.field in recipe_fields, setting.field
        assert setting.field in known_options(), setting.field
        assert setting.field in ARGS, setting.field
        assert setting.apply.__module__ == "nbdetect.models" and setting.apply.__name__.startswith("set_")
    assert [s.field for s in MODEL_SETTINGS if s.predicts] == ["box_voting"]


def test_no_import_circle_at_module_level():
    """No module needs another to load that needs it back. Imports inside functions (deferring torch or widgets, or
    a lower floor calling a higher one at run time) may close one circle only: the one ARCHITECTURE.md names."""
    modules = _modules()
    top = {m: _imports(p, modules, top_level=True) for m, p in modules.items()}
    assert _circles(top) == []
    anywhere = {m: _imports(p, modules, top_level=False) for m, p in modules.items()}
    assert _circles(anywhere) == [["nbdetect.alternatives", "nbdetect.lr_finder"]]  # lr="auto" / build_recipe_model
    assert "nbdetect.alternatives" not in top["nbdetect.lr_finder"]


def test_the_checks_registry_is_data_that_names_each_check_function():
    modules = _modules()
    imported = _imports(modules["nbdetect.checks.registry"], modules, top_level=False)
    assert imported <= {"nbdetect.recipes"}, imported  # no checks module, not even inside a function
    for check in registry.CHECKS:
        assert isinstance(check.run, str) and callable(check.function()), check.name


def test_no_module_but_families_switches_on_a_family_name():
    """`x == "retinanet"`, `family in ("fasterrcnn", ...)`: only the family records know the families."""
    import ast

    names = set(families.FAMILIES)
    for module, path in _modules().items():
        if module == "nbdetect.families":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                consts = [n for n in ast.walk(node) if isinstance(n, ast.Constant) and n.value in names]
                assert not consts, f"{module}:{node.lineno} compares with a family name"


def test_architecture_md_lists_every_module_and_names_real_tests():
    """Every module of nbdetect/ is in the tree (a top-level one as an entry's name, a subpackage's in its part),
    and every test the "How to add" table cites exists."""
    import re

    from nbdetect_test_paths import REPO

    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    tree = text[text.index("```\nnbdetect/"):]
    lines = tree[:tree.index("```", 4)].splitlines()
    entries = [re.split(r"\s{2,}", line.strip())[0].split() for line in lines if re.match(r"^  \S", line)]
    top = {name for names in entries for name in names}
    for path in _modules().values():
        rel = path.relative_to(REPO / "nbdetect")
        if len(rel.parts) == 1:
            assert rel.name in top, f"{rel} is not an entry of ARCHITECTURE.md's tree"
            continue
        start = next(i for i, line in enumerate(lines) if line.startswith(f"  {rel.parts[0]}/"))
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"^  \S", lines[i])), len(lines))
        section = "\n".join(lines[start:end])
        assert re.search(rf"(?<![\w/]){re.escape(rel.name)}", section), f"{rel} is not in ARCHITECTURE.md's tree"
    for file, test in re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text):
        assert (REPO / file).exists(), file
        if test:
            assert f"def {test}(" in (REPO / file).read_text(), (file, test)


def test_no_submodule_is_named_as_a_public_function_it_would_hide():
    """Importing a submodule sets the package attribute of its name: a module nbdetect/find_lr.py turned
    ``nbdetect.find_lr`` into the module once anything imported it (lr="auto" did), and the next
    ``nbdetect.find_lr(...)`` failed with "'module' object is not callable"."""
    import importlib
    import pkgutil

    import nbdetect

    submodules = {m.name for m in pkgutil.iter_modules(nbdetect.__path__)}
    assert not submodules & set(nbdetect.__all__)
    for name in nbdetect.__all__:  # every public name is still itself after every submodule is imported
        importlib.import_module(f"nbdetect.{nbdetect._MODULE_OF[name]}")
    assert callable(nbdetect.find_lr) and nbdetect.find_lr.__module__ == "nbdetect.lr_finder"
