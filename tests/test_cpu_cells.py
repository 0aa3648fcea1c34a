"""On a CPU a ready cell trains the CPU-sized model at the data's own size (never upscaled) for CPU-sized epochs,
says so in one line, and the cell headers (ready cells, demo notebook) say what actually runs."""
import re

import pytest
import torch
from PIL import Image

import nbdetect
from toy_data import toy_samples
from nbdetect.alternatives import CPU_EPOCHS, CPU_IMAGE_SIZE, _pick_preset, cpu_image_size, data_image_size
from nbdetect.cells import all_cells, as_json, get_cell, has_gpu, train_cell
from nbdetect.notebook_tools import demo_notebook
from nbdetect.recipes import ALTERNATIVE_1, ALTERNATIVE_2, RECIPES

CPU = torch.device("cpu")


def test_the_data_size_is_measured_on_the_first_samples_and_caps_the_cpu_size():
    assert data_image_size(toy_samples(3, size=96)) == (96, 96)
    wide = [(torch.zeros(3, 300, 1000), {}), (Image.new("RGB", (640, 200)), {})]  # tensors (C, H, W) or PIL
    assert data_image_size(wide) == (300, 1000)
    assert data_image_size([]) is None and data_image_size(object()) is None  # unreadable: the default size
    assert cpu_image_size(None) == CPU_IMAGE_SIZE == (480, 800)
    for own in [(96, 96), (192, 192), (300, 1000), (800, 1360), (480, 800), (600, 700)]:
        short, long = cpu_image_size(own)
        # torchvision resizes by min(short / image short, long / image long): never above 1
        assert min(short / own[0], long / own[1]) <= 1
        assert short <= CPU_IMAGE_SIZE[0] and long <= CPU_IMAGE_SIZE[1]
    assert cpu_image_size((192, 192)) == (192, 192) and cpu_image_size((800, 1360)) == (480, 800)


@pytest.mark.parametrize("recipe", [ALTERNATIVE_1, ALTERNATIVE_2])
@pytest.mark.parametrize("side", [96, 192])
def test_on_a_cpu_small_images_are_not_upscaled_and_the_line_says_size_and_epochs(recipe, side, capsys):
    cpu_recipe = recipe.scaled(recipe.cpu_epochs)
    preset, size = _pick_preset(cpu_recipe, None, False, CPU, None, toy_samples(4, size=side))
    assert preset == recipe.tiny_preset and size == (side, side)
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    assert f"'{recipe.tiny_preset}' model at {side}x{side} px" in out and "not upscaled" in out
    assert f"for {CPU_EPOCHS} epochs" in out
    assert f"PRESET = '{recipe.preset}'" in out and f"EPOCHS = {recipe.epochs}" in out  # the guide's setup


def test_the_ready_cell_as_pasted_on_a_cpu_trains_at_the_datas_size(tmp_path, monkeypatch, capsys):
    """The Alternative 1 cell of a machine without a GPU, run on 96 px data: the model resizes to 96, not 480x800;
    the cell asks for CPU_EPOCHS epochs (cut to 1 here to keep the test short) and the line says what runs."""
    cell = get_cell("alternative_1", gpu=False)
    real = nbdetect.alternative_1
    seen = {}

    def short_run(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **{**kwargs, "epochs": 1}, weights=None, device="cpu", monitor=False,
                    out_dir=tmp_path / "run", eval_map_every=0)

    monkeypatch.setattr(nbdetect, "alternative_1", short_run)
    namespace = {"train_dataset": toy_samples(4, size=96), "val_dataset": toy_samples(2, size=96, seed=1)}
    exec(compile(cell.source, "<alternative_1 cell>", "exec"), namespace)
    assert seen["epochs"] == CPU_EPOCHS and seen["preset"] is None and seen["image_size"] is None
    run = namespace["run"]
    assert run.status == "finished"
    assert tuple(run.model.transform.min_size) == (96,) and run.model.transform.max_size == 96
    assert run.meta["preset"] == "retinanet_tiny" and (run.meta["min_size"], run.meta["max_size"]) == (96, 96)
    line = [ln for ln in capsys.readouterr().out.splitlines() if "no GPU" in ln]
    assert len(line) == 1 and "at 96x96 px" in line[0] and "for 1 epoch," in line[0]


def _header(cell) -> str:
    return "\n".join(ln for ln in cell.source.splitlines() if ln.startswith("#"))


def _edit(cell, name) -> str:
    return re.search(rf"^{name} = (\S+)", cell.source, re.M).group(1)


@pytest.mark.parametrize("recipe", [ALTERNATIVE_1, ALTERNATIVE_2])
def test_headers_say_what_runs_on_a_cpu_and_on_a_gpu(recipe):
    cpu, gpu = get_cell(recipe.name, gpu=False), get_cell(recipe.name, gpu=True)
    head = _header(cpu)
    assert _edit(cpu, "EPOCHS") == str(recipe.cpu_epochs) == str(CPU_EPOCHS)
    assert f"{recipe.tiny_preset}," in head.splitlines()[0] and head.splitlines()[0].endswith(f"{CPU_EPOCHS} epochs.")
    assert recipe.preset + "," not in head.splitlines()[0]  # the GPU model is not what the header says runs
    assert "On this machine (no GPU)" in head and "own size, at most 480x800 px" in head
    assert f'PRESET = "{recipe.preset}", EPOCHS = {recipe.epochs}' in head  # how to get the guide's setup
    assert "epoch 20" not in head  # the verdict's epoch is scaled with the run
    head = _header(gpu)
    assert _edit(gpu, "EPOCHS") == str(recipe.epochs)
    assert f"{recipe.preset}," in head.splitlines()[0] and head.splitlines()[0].endswith(f"{recipe.epochs} epochs.")
    assert "On this machine (GPU)" in head and recipe.tiny_preset not in head.splitlines()[0]
    assert all(_edit(c, "PRESET") == "None" and _edit(c, "IMAGE_SIZE") == "None" for c in (cpu, gpu))


def test_the_served_cells_are_this_machines():
    assert has_gpu() == torch.cuda.is_available()
    assert as_json() == as_json(has_gpu())
    assert [c.source for c in all_cells()] == [c.source for c in all_cells(torch.cuda.is_available())]
    toy = RECIPES["alternative_1"].replace(epochs=6)  # a recipe shorter than CPU_EPOCHS keeps its own
    assert _edit(train_cell(toy, gpu=False), "EPOCHS") == "6"


@pytest.mark.parametrize("epochs", [8, 3])
def test_the_demo_notebooks_header_says_the_tiny_model_its_size_and_epochs(epochs):
    nb = demo_notebook(epochs)
    alt1 = next(c for c in nb.cells if "nbdetect.alternative_1(" in c.source)
    first, runs = alt1.source.splitlines()[:2]
    assert first.startswith("# nbdetect | Alternative 1") and ": retinanet_tiny, adamw" in first
    assert "retinanet_resnet50_fpn," not in first and first.endswith(f"{epochs} epochs.")
    assert runs == f"# Trains the CPU-sized retinanet_tiny (from scratch) at 192x192 px, {epochs} epochs."
    assert 'PRESET = "retinanet_tiny"' in alt1.source and "IMAGE_SIZE = 192" in alt1.source
    assert "EPOCHS = EPOCHS" in alt1.source and any(f"EPOCHS = {epochs}\n" in c.source for c in nb.cells)
