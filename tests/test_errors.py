"""Every documented refusal (docs/ERRORS.md) is an NbdetectError whose message names the argument or sample
and the fix; in a notebook it shows as a few lines, not a traceback from deep inside torch."""
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import nbdetect
from nbdetect.errors import NbdetectError
from toy_data import toy_samples

FAST = dict(epochs=1, preset="retinanet_tiny", weights=None, monitor=False, device="cpu")


def _bad_sample():
    data = toy_samples(4)
    img, t = data[2]
    data[2] = (img, {**t, "boxes": torch.tensor([[40.0, 40.0, 20.0, 20.0]])})  # x2 < x1
    return data


def _model_and_optimizer():
    model = nbdetect.build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    return model, torch.optim.SGD(model.parameters(), lr=0.01)


PATHS = {  # id in docs/ERRORS.md: (call, words the message must contain)
    "num_classes_not_int": (lambda tmp: nbdetect.alternative_1(toy_samples(4), num_classes="two", **FAST),
                            ["num_classes='two'", "Fix:"]),
    "num_classes_fraction": (lambda tmp: nbdetect.alternative_1(toy_samples(4), num_classes=2.5, **FAST),
                             ["num_classes=2.5", "Fix:"]),
    "num_classes_zero": (lambda tmp: nbdetect.alternative_1(toy_samples(4), num_classes=0, **FAST),
                         ["num_classes=0", "at least 1"]),
    "epochs_zero": (lambda tmp: nbdetect.alternative_1(toy_samples(4), num_classes=2, **{**FAST, "epochs": 0}),
                    ["epochs=0", "Fix:"]),
    "bad_sample": (lambda tmp: nbdetect.alternative_1(_bad_sample(), num_classes=2, **FAST),
                   ["sample 2", "Fix:", "diagnose"]),
    "dataset_path_missing": (lambda tmp: nbdetect.alternative_1(str(tmp / "nope"), **FAST),
                             ["no dataset at", "Fix:"]),
    "dataset_format_unknown": (lambda tmp: (tmp / "empty").mkdir() or nbdetect.alternative_1(str(tmp / "empty"), **FAST),
                               ["cannot tell the format", "load_yolo"]),
    "unknown_preset": (lambda tmp: nbdetect.alternative_1(toy_samples(4), num_classes=2,
                                                          **{**FAST, "preset": "yolo_v99"}),
                       ["yolo_v99", "retinanet_tiny"]),
    "alt3_no_optimizer": (lambda tmp: nbdetect.alternative_3(None, _model_and_optimizer()[0], toy_samples(4)),
                          ["optimizer is None", "kernel restart"]),
    "alt3_foreign_optimizer": (lambda tmp: nbdetect.alternative_3(
        torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), _model_and_optimizer()[0], toy_samples(4)),
        ["does not hold any parameter", "Fix:"]),
    "alt3_bad_lr": (lambda tmp: nbdetect.alternative_3(*reversed(_model_and_optimizer()), toy_samples(4), lr=-1),
                    ["lr=-1", "Fix:"]),
    "resume_from_best": (lambda tmp: _resume_from(tmp, "best"), ["inference checkpoint", "last.pt"]),
    "resume_from_foreign_file": (lambda tmp: _resume_from(tmp, "foreign"), ["cannot be read", "last.pt"]),
    "submission_no_images": (lambda tmp: nbdetect.make_submission(_tiny_checkpoint(tmp), tmp / "no_images",
                                                                  tmp / "out"),
                             ["no image folder", "Fix:"]),
    "unknown_recipe": (lambda tmp: nbdetect.run_recipe("alternative_9", toy_samples(4), num_classes=2, **FAST),
                       ["alternative_9", "alternative_1"]),
}


def _tiny_checkpoint(tmp):
    run = nbdetect.alternative_1(toy_samples(4), toy_samples(4), num_classes=2, out_dir=tmp / "run",
                                 eval_map_every=0, image_size=96, **FAST)
    return run.best_checkpoint


def _resume_from(tmp, kind):
    if kind == "best":
        ckpt = _tiny_checkpoint(tmp)
    else:
        ckpt = tmp / "notes.pt"
        ckpt.write_text("not a checkpoint")
    return nbdetect.alternative_1(toy_samples(4), num_classes=2, out_dir=tmp / "again", resume=ckpt, **FAST)


@pytest.mark.parametrize("path_id", list(PATHS))
def test_a_refusal_names_what_and_the_fix(path_id, tmp_path):
    call, words = PATHS[path_id]
    with pytest.raises(NbdetectError) as info:
        call(tmp_path)
    message = str(info.value)
    for w in words:
        assert w in message, (path_id, message)
    shown = info.value._render_traceback_()
    assert 2 <= len(shown) <= 16 and "Traceback" not in "".join(shown)


def test_every_error_path_is_documented():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "ERRORS.md").read_text()
    documented = set(re.findall(r"`([a-z0-9_]+)`", doc))
    assert set(PATHS) <= documented, set(PATHS) - documented


def test_a_refusal_in_a_notebook_shows_a_short_message_not_a_traceback(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import nbdetect\n"
                                          "nbdetect.alternative_1(None, num_classes='two', epochs=1, monitor=False)")]
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    err = next(o for o in nb.cells[0].outputs if o.output_type == "error")
    text = "\n".join(err.traceback)
    assert err.ename == "InputError" and "num_classes='two'" in text and "fix:" in text
    assert "site-packages" not in text and len(err.traceback) <= 8
