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
    "no_best_checkpoint": (lambda tmp: nbdetect.best_checkpoint(tmp / "nbdetect_runs"),
                           ["no best.pt found", "CHECKPOINT"]),
    "compare_nothing_readable": (lambda tmp: nbdetect.compare_with_yolo(tmp / "results.csv", [tmp / "run"]),
                                 ["none of these could be read", "results.csv"]),
    "per_batch_unknown_count": (lambda tmp: nbdetect.per_batch([3.0], None),
                                ["number of batches", "DataLoader"]),
    "rerun_active_recipe": (lambda tmp: _rerun_active(tmp), ["still training", "run.wait()", "replace=True"]),
    "stopped_waiting": (lambda tmp: _interrupted_wait(tmp), ["stopped waiting", "Stop"]),
    "devices_uneven_batch": (lambda tmp: nbdetect.alternative_1(toy_samples(4), num_classes=2, devices=3,
                                                                batch_size=4, **FAST),
                             ["batch_size=4", "devices=3", "batch_size=3"]),
    "devices_not_a_count": (lambda tmp: nbdetect.alternative_1(toy_samples(4), num_classes=2, devices=0, **FAST),
                            ["devices=0", "at least 1", "devices=1"]),
    "sync_bn_on_cpu": (lambda tmp: nbdetect.alternative_1(toy_samples(4), num_classes=2, devices=2, sync_bn=True,
                                                          **FAST), ["sync_bn=True", "GPUs"]),
    "devices_after_cuda": (lambda tmp: _fork_after_cuda(), ["restart the kernel", "torchrun"]),
}


def _fork_after_cuda():
    from unittest import mock

    from nbdetect import distributed

    with mock.patch.object(torch.cuda, "is_initialized", return_value=True):
        return distributed.fork_workers(2, torch.device("cuda"), lambda group: None)


class _ActiveRun:
    def __init__(self, name, wait=None):
        from types import SimpleNamespace

        self.recipe, self.status, self.epoch, self.epochs = SimpleNamespace(name=name), "running", 1, 5
        self.out_dir, self.is_active = f"nbdetect_runs/{name}", True
        if wait is not None:
            self.wait = wait

    def stop(self):
        self.status, self.is_active = "stopped", False

    def wait(self, timeout=None):
        return self


def _with_active(run, call):
    from nbdetect import run_guard

    run_guard.claim(run)
    try:
        return call()
    finally:
        run_guard.release(run)


def _rerun_active(tmp):
    from nbdetect import run_guard

    return _with_active(_ActiveRun("alternative_1"),
                        lambda: run_guard.claim(_ActiveRun("alternative_1"), wait=True))


def _interrupted_wait(tmp):
    def interrupt(timeout=None):
        raise KeyboardInterrupt

    return _with_active(_ActiveRun("alternative_3", wait=interrupt),
                        lambda: nbdetect.make_submission(tmp / "best.pt", tmp))


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
    # what / where / fix (+ up to 3 samples and "and N more"), and the line pointing at %tb
    assert 2 <= len("\n".join(shown).splitlines()) <= 8 and "Traceback" not in "".join(shown)


def test_every_error_path_is_documented():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "ERRORS.md").read_text()
    documented = set(re.findall(r"`([a-z0-9_]+)`", doc))
    assert set(PATHS) | set(BAD_FILES) <= documented, (set(PATHS) | set(BAD_FILES)) - documented


@pytest.mark.slow
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


def _yolo_folder(tmp, label_line="0 0.5 0.5 0.2 0.2", yaml_text=None, image_bytes=None):
    from PIL import Image

    (tmp / "images").mkdir(parents=True)
    (tmp / "labels").mkdir()
    Image.new("RGB", (32, 32)).save(tmp / "images" / "a.jpg")
    if image_bytes is not None:
        (tmp / "images" / "b.jpg").write_bytes(image_bytes)
        (tmp / "labels" / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp / "labels" / "a.txt").write_text(label_line + "\n")
    if yaml_text is not None:
        (tmp / "data.yaml").write_text(yaml_text)
        return tmp / "data.yaml"
    return tmp


def _voc(tmp, body):
    (tmp / "Annotations").mkdir(parents=True)
    (tmp / "Annotations" / "x.xml").write_text(body)
    return tmp


def _jpeg_bytes():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(torch.randint(0, 255, (64, 64, 3), dtype=torch.uint8).numpy()).save(buf, "JPEG")
    return buf.getvalue()


BAD_FILES = {  # id in docs/ERRORS.md: (make the file, words the message must contain)
    "yolo_class_not_a_number": (lambda tmp: _yolo_folder(tmp, "stop 0.5 0.5 0.2 0.2"), ["a.txt, line 1", "class"]),
    "yolo_yaml_is_a_list": (lambda tmp: _yolo_folder(tmp, yaml_text="- images\n- labels\n"), ["list", "names:"]),
    "yolo_yaml_without_names": (lambda tmp: _yolo_folder(tmp, yaml_text="train: images\nval: images\n"),
                                ["neither names nor nc", "names:"]),
    # header intact, pixels cut: caught by the decode pass before training, not inside epoch 1
    "image_truncated": (lambda tmp: _yolo_folder(tmp, image_bytes=(lambda b: b[:int(len(b) * 0.8)])(_jpeg_bytes())),
                        ["b.jpg", "truncated", "before training"]),
    "image_header_corrupt": (lambda tmp: _yolo_folder(tmp, image_bytes=b"\xff\xd8\xff garbage"), ["b.jpg", "Fix:"]),
    "voc_xml_malformed": (lambda tmp: _voc(tmp, "<annotation><object><name>stop</name>"), ["x.xml", "XML"]),
    "voc_object_without_box": (lambda tmp: _voc(tmp, "<annotation><filename>x.jpg</filename><object><name>stop"
                                                     "</name></object></annotation>"), ["x.xml", "<bndbox>"]),
    "coco_without_images": (lambda tmp: (tmp / "c.json").write_text('{"annotations": []}') and tmp / "c.json",
                            ["no images", "categories"]),
}


@pytest.mark.parametrize("file_id", list(BAD_FILES))
def test_a_bad_dataset_file_is_named_with_the_fix(file_id, tmp_path):
    make, words = BAD_FILES[file_id]
    path = make(tmp_path)
    with pytest.raises(NbdetectError) as info:
        if file_id.startswith("coco"):
            nbdetect.load_coco(path)
        else:
            nbdetect.alternative_1(str(path), num_classes=1, **FAST)
    message = str(info.value)
    for w in words:
        assert w in message, (file_id, message)


def test_fractional_labels_are_refused_with_the_sample(tmp_path):
    data = toy_samples(4)
    img, t = data[1]
    data[1] = (img, {**t, "labels": torch.tensor([1.7])})
    with pytest.raises(NbdetectError, match=r"whole class numbers.*sample 1"):
        nbdetect.alternative_1(data, num_classes=2, **FAST)


def test_a_full_disk_during_save_says_so_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    from nbdetect import checkpoint

    good = checkpoint.save_checkpoint({"step": 1}, tmp_path / "last.pt")

    def no_space(obj, fh):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", no_space)
    with pytest.raises(NbdetectError, match="the disk is full.*previous checkpoint there is intact"):
        checkpoint.save_checkpoint({"step": 2}, tmp_path / "last.pt")
    monkeypatch.undo()
    assert checkpoint.load_checkpoint(good)["step"] == 1
    assert not list(tmp_path.glob(".*.tmp"))  # the half-written temp file is gone


def test_after_a_kill_and_resume_no_step_is_recorded_twice(tmp_path):
    import json

    from nbdetect.history_files import HistoryWriter

    w = HistoryWriter(tmp_path)
    for s in range(1, 9):  # steps 7 and 8 happened after the last checkpoint (step 6), then the process died
        w.iteration({"step": s, "loss": float(s)})
    w._file.write('{"type": "iter", "step": 9, "lo')  # a line cut short by the kill
    w.close()
    HistoryWriter(tmp_path, resume_step=6).close()
    steps = [json.loads(l).get("step") for l in (tmp_path / "history.jsonl").read_text().splitlines()
             if json.loads(l).get("type") == "iter"]
    assert steps == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("preset,label,said", [
    ("retinanet_tiny", 7, "label 7 is larger than num_classes=2"), ("fasterrcnn_tiny", 7, "label 7 is larger"),
    ("fcos_tiny", 7, "label 7 is larger"), ("retinanet_tiny", 0, "label 0 is reserved for background"),
    ("fasterrcnn_tiny", 0, "label 0 is reserved for background")])
def test_a_label_outside_the_classes_met_in_training_is_named_before_the_model_trains_on_it(tmp_path, preset, label,
                                                                                              said):
    """With verify_data=False nothing read the labels before the model: past K torchvision's loss failed with
    a bare IndexError, and 0 trained as a class of its own without a word. The training step checks each batch
    first and names the label, the batch and the two arguments."""
    from nbdetect.errors import DataError

    data = toy_samples(8)
    data[5][1]["labels"] = torch.tensor([label])
    with pytest.raises(DataError) as info:
        nbdetect.alternative_1(data, num_classes=2, **{**FAST, "preset": preset}, batch_size=4, verify_data=False,
                               background=False, out_dir=tmp_path / "run", image_size=96, eval_map_every=0)
    text = str(info.value)
    assert said in text and "iteration 2/2" in text and "image 1 of the batch" in text
    assert info.value.where == "label_base / num_classes"
    shown = "\n".join(info.value._render_traceback_())
    assert 2 <= len(shown.splitlines()) <= 8 and "Traceback" not in shown  # label_past_classes_in_training
