"""The bad-input table: one record per bad input a student can give a public cell function, and how to judge
the answer. tests/test_bad_inputs.py runs every case; benchmarks/bench_faults.py counts the outcomes.

A case is ``refuse`` (an NbdetectError naming ``named``, at most 6 lines, or 3 lines plus at most 3 samples and
"and N more", raised before any file or folder is created or a run folder announced) or ``accept`` (a documented
acceptance: the call goes through, saying ``said`` when given). Training never starts: the launch step is
replaced by one that returns the run, so the whole table runs in seconds.

Outcomes: ``clear`` (as expected), ``cryptic`` (another exception, or a message that does not name the argument /
sample or is too long), ``silently wrong`` (a refusal expected, nothing refused), ``late`` (refused, but after a
folder was created or announced).
"""
from __future__ import annotations

import contextlib
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

import nbdetect
from toy_data import toy_samples

FAST = dict(epochs=1, preset="retinanet_tiny", weights=None, monitor=False, device="cpu")
GPU = torch.cuda.is_available()


@dataclass
class Case:
    id: str
    doc: str  # the argument (docs/ERRORS.md's argument table) or the ERRORS.md id this case is listed under
    call: Callable[[Path], object]
    named: tuple = ()  # words the message must contain (the argument, sample, file)
    expect: str = "refuse"  # or "accept"
    said: tuple = ()  # accept: words printed (the note saying what was read)
    absent: tuple = ()  # refuse: words the message must not contain (a wrong fix)
    setup: Callable | None = None  # setup(tmp) before the tree is recorded; may return a cleanup callable


CASES: list[Case] = []


def case(id, doc, call, named=(), **kw):
    CASES.append(Case(id, doc, call, tuple(named), **kw))


# -- helpers -------------------------------------------------------------------------------------------------
def a1(tmp=None, data=None, **kw):
    return nbdetect.alternative_1(toy_samples(4) if data is None else data, **{"num_classes": 2, **FAST, **kw})


def a2(tmp=None, **kw):
    return nbdetect.alternative_2(toy_samples(4), **{"num_classes": 2, **FAST, "preset": "fasterrcnn_tiny", **kw})


_CACHE: dict = {}


def tiny(family="retinanet", k=2):
    key = (family, k)
    if key not in _CACHE:
        torch.manual_seed(0)
        _CACHE[key] = nbdetect.build_model(f"{family}_tiny", k, weights=None, min_size=96, max_size=96)
    return _CACHE[key]


def a3(tmp=None, optimizer="same", model=None, **kw):
    model = model if model is not None else nbdetect.build_model("retinanet_tiny", 2, weights=None, min_size=96,
                                                                 max_size=96)
    opt = torch.optim.SGD(model.parameters(), lr=0.01) if optimizer == "same" else optimizer
    return nbdetect.alternative_3(opt, model, toy_samples(4), **{"epochs": 1, "monitor": False, **kw})


def images_folder(tmp, extra=None):
    from PIL import Image

    folder = tmp / "test_images"
    folder.mkdir(exist_ok=True)
    for i in range(2):
        Image.new("RGB", (64, 48), (i * 60, 30, 30)).save(folder / f"img{i}.png")
    for name, data in (extra or {}).items():
        (folder / name).write_bytes(data)
    return folder


def submit(tmp, model=None, images=None, **kw):
    kw.setdefault("out_dir", tmp / "submission")
    return nbdetect.make_submission(tiny() if model is None else model,
                                    images_folder(tmp) if images is None else images, device="cpu", **kw)


def fake_checkpoint(tmp, family="retinanet", k=2, name="last.pt", fmt="nbdetect-checkpoint-1"):
    """A checkpoint file with a model's weights (no training): enough for resume's checks."""
    from nbdetect.checkpoint import save_checkpoint

    folder = tmp / "old_run"
    folder.mkdir(exist_ok=True)
    preset = f"{family}_tiny"
    state = {"format": fmt, "model": tiny(family, k).state_dict(), "optimizer": {}, "epoch": 1, "iteration": 0,
             "step": 1, "steps_per_epoch": 1, "recipe": {"epochs": 1, "preset": preset},
             "meta": {"preset": preset, "num_classes": k}}
    return save_checkpoint(state, folder / name)


def with_samples(change, n=4):
    data = toy_samples(n)
    return [change(i, img, t) for i, (img, t) in enumerate(data)]


class Raises(torch.utils.data.Dataset):
    def __init__(self, at):
        self.data, self.at = toy_samples(4), at

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        if i == self.at:
            raise KeyError(f"annotation missing for image {i}")
        return self.data[i]


def yolo(tmp, line="0 0.5 0.5 0.2 0.2", yaml_text=None, size=(64, 64)):
    from PIL import Image

    root = tmp / "yolo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.new("RGB", size).save(root / "images" / "a.jpg")
    (root / "labels" / "a.txt").write_text(line + "\n")
    if yaml_text is not None:
        (root / "data.yaml").write_text(yaml_text)
        return str(root / "data.yaml")
    return str(root)


def coco(tmp, data):
    import json

    path = tmp / "instances.json"
    path.write_text(json.dumps(data))
    return nbdetect.load_coco(path)


def voc(tmp, body):
    (tmp / "voc" / "Annotations").mkdir(parents=True)
    (tmp / "voc" / "Annotations" / "x.xml").write_text(body)
    return str(tmp / "voc")


def jpeg_bytes():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


class _ActiveRun:
    def __init__(self, name):
        from types import SimpleNamespace

        self.recipe, self.status, self.epoch, self.epochs = SimpleNamespace(name=name), "running", 1, 5
        self.out_dir, self.is_active, self.monitor = f"nbdetect_runs/{name}", True, None

    def stop(self):
        self.status, self.is_active = "stopped", False

    def wait(self, timeout=None):
        return self


def active(name):
    def setup(tmp):
        from nbdetect import run_guard

        (tmp / "nbdetect_runs" / name).mkdir(parents=True)
        (tmp / "nbdetect_runs" / name / "last.pt").write_bytes(b"x")  # an earlier run: a new one would be -2
        run = _ActiveRun(name)
        run_guard.claim(run)
        return lambda: run_guard.release(run)

    return setup


# -- the table: arguments ------------------------------------------------------------------------------------
for value in (0, -1, 2.5, True, False, "four", [4], math.nan, "2.5"):
    case(f"batch_size={value!r}", "batch_size", lambda tmp, v=value: a1(batch_size=v), ["batch_size"])
case("batch_size='2'", "batch_size", lambda tmp: a1(batch_size="2"), expect="accept", said=["read as 2"])
case("batch_size=2.0", "batch_size", lambda tmp: a1(batch_size=2.0), expect="accept", said=["read as 2"])

for value in (0, -1, -1e-4, math.nan, math.inf, -math.inf, [1e-4], "fast", True, "Auto", {"lr": 1}):
    case(f"lr={value!r}", "lr", lambda tmp, v=value: a1(lr=v), ["lr"])
case("lr='1e-4'", "lr", lambda tmp: a1(lr="1e-4"), expect="accept", said=["read as 0.0001"])
case("lr=-1 (alternative_2)", "lr", lambda tmp: a2(lr=-1), ["lr=-1"])

for value in (1.7, 0, -3, "ten", True, [1], math.nan, 0.5):
    case(f"epochs={value!r}", "epochs", lambda tmp, v=value: a1(epochs=v), ["epochs"])
case("epochs='1'", "epochs", lambda tmp: a1(epochs="1"), expect="accept", said=["read as 1"])
case("epochs=1.0", "epochs", lambda tmp: a1(epochs=1.0), expect="accept", said=["read as 1"])

for value in ("gpu", "GPU", "tpu", "", 3, ["cpu"], "cuda:99", "cpux"):
    case(f"device={value!r}", "device", lambda tmp, v=value: a1(device=v), ["device"])
case("device='cuda' (no GPU)", "device", lambda tmp: a1(device="cuda"), ["device", "no CUDA GPU"],
     expect="accept" if GPU else "refuse")
case("device='CPU'", "device", lambda tmp: a1(device="CPU"), expect="accept")
case("device=torch.device('cpu')", "device", lambda tmp: a1(device=torch.device("cpu")), expect="accept")

case("weights=missing file", "weights", lambda tmp: a1(weights=str(tmp / "resnet.pth")), ["weights", "resnet.pth"])
case("weights=a folder", "weights", lambda tmp: a1(weights=str(tmp)), ["weights", "folder"])
case("weights=5", "weights", lambda tmp: a1(weights=5), ["weights"])
case("weights=True", "weights", lambda tmp: a1(weights=True), ["weights"])
case("weights='none'", "weights", lambda tmp: a1(weights="none"), expect="accept", said=["read as None"])

for value in (-1, "big", 100000, 0, 31, 96.5, True, (0, 100), (96,), (96, 96, 96), [96, "x"], (96, 10 ** 6)):
    case(f"image_size={value!r}", "image_size", lambda tmp, v=value: a1(image_size=v), ["image_size"])
case("image_size=96", "image_size", lambda tmp: a1(image_size=96), expect="accept")
case("image_size=(96, 128)", "image_size", lambda tmp: a1(image_size=(96, 128)), expect="accept")

for value in (True, 16, 5000, 320.5, "big", [320], {"size": 320, "overlap": 2}, {"sise": 320},
              {"size": 320, "background": 1.0}, {"size": 320, "seed": -1}, {"size": 320, 1: 2}):
    case(f"tiles={value!r}", "tiles", lambda tmp, v=value: a1(tiles=v), ["tiles"])
case("tiles=64", "tiles", lambda tmp: a1(tiles=64), expect="accept")
case("tiles='64'", "tiles", lambda tmp: a1(tiles="64"), expect="accept", said=["read as 64"])
case("alternative_2(tiles=0)", "tiles", lambda tmp: a2(tiles=0), ["tiles"])

for value in ("yes", 3, [True], {"flip": 1}, {"flp": True}, {"zoom_in": 2}, {"zoom_out_max": 0.5},
              {"photometric": "often"}):
    case(f"augment={value!r}", "augment", lambda tmp, v=value: a1(augment=v), ["augment"])
case("augment={'flip': True}", "augment", lambda tmp: a1(augment={"flip": True}), expect="accept")
case("alternative_2(augment=False)", "augment", lambda tmp: a2(augment=False), expect="accept")
for name in ("ema", "data_anchors", "iou_scores"):
    for value in ("yes", 1):
        case(f"{name}={value!r}", name, lambda tmp, n=name, v=value: a1(**{n: v}), [name])
for value in (1.5, -0.2, "often", True, [0.6]):
    case(f"box_voting={value!r}", "box_voting", lambda tmp, v=value: a1(box_voting=v), ["box_voting"])
case("box_voting=False", "box_voting", lambda tmp: a1(box_voting=False), expect="accept")
for value in ("high", 0.5, True, (0.5,), (0.2, 0.5), (0.5, float("nan")), (0.5, 0.0), (1.0, 0.5), ("a", "b"),
              {"fg": 0.5}):
    case(f"match_iou={value!r}", "match_iou", lambda tmp, v=value: a1(match_iou=v), ["match_iou"])
case("match_iou=[0.4, 0.3]", "match_iou", lambda tmp: a1(match_iou=[0.4, 0.3]), expect="accept")
case("match_iou=False", "match_iou", lambda tmp: a1(match_iou=False), expect="accept")
for value in ("30", 30, [0], [5, "x"], [True], -1):
    case(f"milestones={value!r}", "milestones", lambda tmp, v=value: a1(milestones=v), ["milestones"])
case("milestones=[8, 11]", "milestones", lambda tmp: a1(milestones=[8, 11]), expect="accept")
for value in (0, -0.1, 1.5, "tenth", True):
    case(f"gamma={value!r}", "gamma", lambda tmp, v=value: a1(gamma=v), ["gamma"])
for value in ("x", 0, -3, 2.5):
    case(f"decision_epoch={value!r}", "decision_epoch", lambda tmp, v=value: a1(decision_epoch=v), ["decision_epoch"])
for value in ("cosine", 1, True):
    case(f"schedule={value!r}", "schedule", lambda tmp, v=value: a1(schedule=v), ["schedule"])
case("schedule='constant'", "schedule", lambda tmp: a1(schedule="constant"), expect="accept")
case("synthetic={'cache': False}", "synthetic", lambda tmp: a1(synthetic={"cache": False}), expect="accept")
case("synthetic={'n_trian': 3}", "synthetic", lambda tmp: a1(synthetic={"n_trian": 3}), ["synthetic", "n_trian"])
for value in ("yes", 1):
    case(f"synthetic={value!r}", "synthetic", lambda tmp, v=value: a1(synthetic=v), ["synthetic"])
for value in (5, "print", [5]):
    case(f"callbacks={value!r}", "callbacks", lambda tmp, v=value: a1(callbacks=v), ["callbacks"])
case("callbacks=None", "callbacks", lambda tmp: a1(callbacks=None), expect="accept")
case("alternative_3(callbacks=None)", "callbacks", lambda tmp: a3(callbacks=None), expect="accept")
case("alternative_3(callbacks=[5])", "callbacks", lambda tmp: a3(callbacks=[5]), ["callbacks"])
for value in (3, "note", [1, 2]):
    case(f"meta={value!r}", "meta", lambda tmp, v=value: a1(meta=v), ["meta"])
case("make_submission(slices=8)", "slices", lambda tmp: submit(tmp, slices=8), ["slices"])

for value in (2, -1, "zero", True, None, 0.5):
    case(f"label_base={value!r}", "label_base", lambda tmp, v=value: a1(label_base=v), ["label_base"])
case("label_base='1'", "label_base", lambda tmp: a1(label_base="1"), expect="accept", said=["read as 1"])

for value in ("panels", "yes", 1, "gui", ["text"]):
    case(f"monitor={value!r}", "monitor", lambda tmp, v=value: a1(monitor=v), ["monitor"])
case("monitor='none'", "monitor", lambda tmp: a1(monitor="none"), expect="accept")

case("out_dir=5", "out_dir", lambda tmp: a1(out_dir=5), ["out_dir"])
case("out_dir=an existing file", "out_dir", lambda tmp: (tmp / "f.txt").write_text("x") and a1(out_dir=tmp / "f.txt"),
     ["out_dir", "existing file"])
case("out_dir=''", "out_dir", lambda tmp: a1(out_dir=""), ["out_dir"])
case("out_dir=3.5", "out_dir", lambda tmp: a1(out_dir=3.5), ["out_dir"])
case("out_dir=['runs']", "out_dir", lambda tmp: a1(out_dir=["runs"]), ["out_dir"])
case("out_dir=a new folder", "out_dir", lambda tmp: a1(out_dir=tmp / "runs" / "mine"), expect="accept")
case("out_dir=inside a file", "out_dir",
     lambda tmp: (tmp / "f.txt").write_text("x") and a1(out_dir=tmp / "f.txt" / "runs"), ["out_dir", "f.txt"])
case("make_submission(out_dir=inside a file)", "out_dir",
     lambda tmp: (tmp / "f.txt").write_text("x") and submit(tmp, out_dir=tmp / "f.txt" / "sub"), ["out_dir", "f.txt"])

for value in (-1, 1.5, "abc", True, None, [0]):
    case(f"seed={value!r}", "seed", lambda tmp, v=value: a1(seed=v), ["seed"])
for value in (-1, 1.5, "many", True, None):
    case(f"num_workers={value!r}", "num_workers", lambda tmp, v=value: a1(num_workers=v), ["num_workers"])
for value in (-1, 0.5, "often", None, True):
    case(f"eval_map_every={value!r}", "eval_map_every", lambda tmp, v=value: a1(eval_map_every=v), ["eval_map_every"])
case("eval_map_every=0", "eval_map_every", lambda tmp: a1(eval_map_every=0), expect="accept",
     said=["mAP is never computed"])
for value in (0, -1, "two", 1.5, True, None):
    case(f"devices={value!r}", "devices", lambda tmp, v=value: a1(devices=v), ["devices"])
case("devices=3, batch_size=4", "devices_uneven_batch", lambda tmp: a1(devices=3, batch_size=4), ["batch_size=4", "devices=3"])
for value in ({"loss": 1.0}, 0.5, "strict"):
    case(f"thresholds={value!r}", "thresholds", lambda tmp, v=value: a1(thresholds=v), ["thresholds"])
for value in (0, -2, "x", 1.5):
    case(f"threads={value!r}", "threads", lambda tmp, v=value: a1(threads=v), ["threads"])
case("class_names='stop'", "class_names", lambda tmp: a1(class_names="stop"), ["class_names"])
case("class_names=[] ", "class_names", lambda tmp: a1(class_names=[]), ["class_names"])
case("class_names=5", "class_names", lambda tmp: a1(class_names=5), ["class_names"])
case("class_names=1 name, num_classes=2", "class_names", lambda tmp: a1(class_names=["stop"]), ["class_names", "num_classes=2"])
for value in ("retina", "yolo_v99", 5):
    case(f"preset={value!r}", "preset", lambda tmp, v=value: a1(preset=v), ["preset"])
case("preset='retinanet_tyni' (did you mean)", "preset", lambda tmp: a1(preset="retinanet_tyni"), ["retinanet_tiny"])
for value in ("model.pt", 5):
    case(f"model={value!r}", "model", lambda tmp, v=value: a1(model=v), ["model"])
case("model=nn.Linear", "model", lambda tmp: a1(model=nn.Linear(2, 2)), ["model", "Linear"])
for value in ("adam", 5):
    case(f"optimizer={value!r}", "optimizer", lambda tmp, v=value: a1(optimizer=v), ["optimizer"])
for name in ("amp", "replace", "exist_ok", "verify_data", "sync_bn", "background"):
    case(f"{name}='yes'", name, lambda tmp, n=name: a1(**{n: "yes"}), [name])
for name, value in (("warmup_epochs", -1), ("weight_decay", "x"), ("momentum", 2), ("grad_clip", 0), ("min_lr", math.nan)):
    case(f"{name}={value!r}", name, lambda tmp, n=name, v=value: a1(**{n: v}), [name])
for value in ("two", 2.5, 0, -1, True, [2]):
    case(f"num_classes={value!r}", "num_classes", lambda tmp, v=value: a1(num_classes=v), ["num_classes"])
case("num_classes='2'", "num_classes", lambda tmp: a1(num_classes="2"), expect="accept", said=["read as 2"])

# misspelled keywords: "did you mean"
for wrong, right in (("epoch", "epochs"), ("learning_rate", "lr"), ("batchsize", "batch_size"), ("lr_rate", "lr"),
                     ("num_class", "num_classes"), ("imgsz", "image_size"), ("outdir", "out_dir"),
                     ("weigths", "weights"), ("devise", "device"), ("resum", "resume"), ("monitr", "monitor"),
                     ("seeds", "seed"), ("workers", "num_workers"), ("n_epochs", "epochs"), ("label_bse", "label_base")):
    case(f"alternative_1({wrong}=)", "misspelled_keyword", lambda tmp, w=wrong: a1(**{w: 1}), [wrong, f"`{right}`"],
         absent=["Recipe.__init__"])
case("alternative_2(epoch=)", "misspelled_keyword", lambda tmp: a2(epoch=1), ["epoch", "`epochs`"])
case("alternative_3(epoch=)", "misspelled_keyword", lambda tmp: a3(epoch=1), ["epoch", "`epochs`"])
case("make_submission(score=)", "misspelled_keyword", lambda tmp: submit(tmp, score=0.5), ["score", "`score_threshold`"])
case("find_lr(learning_rate=)", "misspelled_keyword", lambda tmp: nbdetect.find_lr(tiny(), learning_rate=1), ["learning_rate"])
case("load_model(devices=)", "misspelled_keyword", lambda tmp: nbdetect.load_model("x.pt", devices="cpu"), ["devices", "`device`"])
case("alternative_1 with no keyword (positional num_classes)", "misspelled_keyword",
     lambda tmp: nbdetect.alternative_1(toy_samples(4), None, 2), ["alternative_1"])

# resume
case("resume=5", "resume_not_a_path", lambda tmp: a1(resume=5), ["resume"])
case("resume=1.5", "resume_not_a_path", lambda tmp: a1(resume=1.5), ["resume"])
case("resume=['last.pt']", "resume_not_a_path", lambda tmp: a1(resume=["last.pt"]), ["resume"])
case("resume=a typo", "resume_missing", lambda tmp: a1(resume=str(tmp / "runs" / "alternative_1" / "lats.pt")),
     ["resume", "lats.pt", "never trains from scratch"])
case("resume='True' (a string)", "resume_missing", lambda tmp: a1(resume="True"), ["resume", "resume=True"])
case("resume=a folder without last.pt", "resume_missing", lambda tmp: (tmp / "empty_run").mkdir() or a1(resume=tmp / "empty_run"),
     ["resume", "without last.pt"])
case("resume=a text file", "resume_from_foreign_file",
     lambda tmp: (tmp / "notes.pt").write_text("x") and a1(resume=tmp / "notes.pt", out_dir=tmp / "o"), ["notes.pt", "last.pt"])
case("resume=best.pt", "resume_from_best",
     lambda tmp: a1(resume=fake_checkpoint(tmp, name="best.pt", fmt="nbdetect-model-1"), out_dir=tmp / "o"),
     ["best.pt", "inference checkpoint"])
case("resume=a Faster R-CNN checkpoint into a RetinaNet", "resume_other_model",
     lambda tmp: a1(resume=fake_checkpoint(tmp, "fasterrcnn")), ["fasterrcnn_tiny", "retinanet"],
     absent=["Missing key", "Unexpected key"])
case("resume=a checkpoint with 5 classes", "resume_other_model",
     lambda tmp: a1(resume=fake_checkpoint(tmp, "retinanet", 5)), ["5 classes", "2 classes"])
case("resume=True and exist_ok=True", "resume", lambda tmp: a1(resume=True, exist_ok=True), ["resume", "exist_ok"])
case("resume=True on a fresh folder", "resume", lambda tmp: a1(resume=True, out_dir=tmp / "fresh"), expect="accept",
     said=["no last.pt", "starting from scratch"])
case("resume=None", "resume", lambda tmp: a1(resume=None), expect="accept")

# alternative 3
case("alternative_3(optimizer='adam')", "optimizer", lambda tmp: a3(optimizer="adam"), ["optimizer"])
case("alternative_3(model=nn.Linear)", "model_not_a_detector",
     lambda tmp: a3(optimizer=torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), model=nn.Linear(2, 2)),
     ["model", "Linear"], absent=["argument 'input'"])
for value in (0, -1, math.nan, "auto", [1e-3], None):
    case(f"alternative_3(lr={value!r})", "lr", lambda tmp, v=value: a3(lr=v), ["lr"])
for value in (1.7, 0, None):
    case(f"alternative_3(epochs={value!r})", "epochs", lambda tmp, v=value: a3(epochs=v), ["epochs"])
case("alternative_3(start_epoch=-1)", "start_epoch", lambda tmp: a3(start_epoch=-1), ["start_epoch"])
case("alternative_3(previous_loss=nan)", "previous_loss", lambda tmp: a3(previous_loss=math.nan), ["previous_loss"])
case("alternative_3(out_dir=5)", "out_dir", lambda tmp: a3(out_dir=5), ["out_dir"])
case("alternative_3(batch_size=0)", "batch_size", lambda tmp: a3(batch_size=0), ["batch_size"])
case("alternative_3(scheduler of another optimizer)", "alt3_foreign_scheduler",
     lambda tmp: a3(scheduler=torch.optim.lr_scheduler.StepLR(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1), 1)),
     ["scheduler"])
case("alternative_3(lr='0.1')", "lr", lambda tmp: a3(lr="0.1"), expect="accept", said=["read as 0.1", "raised from"])

# build_model, the loaders and the other public helpers
for name, value in (("min_size", -1), ("min_size", "big"), ("max_size", 10 ** 6), ("anchor_sizes", 5),
                    ("anchor_sizes", [[16, "x"]]), ("aspect_ratios", [[0.0]] * 5), ("aspect_ratios", "1:1")):
    case(f"build_model({name}={value!r})", name,
         lambda tmp, n=name, v=value: nbdetect.build_model("retinanet_tiny", 2, weights=None, **{n: v}), [name])
case("build_model(tiny, anchor_sizes without aspect_ratios)", "anchor_sizes",
     lambda tmp: nbdetect.build_model("retinanet_tiny", 2, weights=None, anchor_sizes=[[12, 16, 20]] * 5),
     expect="accept")  # its own ratios (a TypeError before)
case("build_model(R50, anchor_sizes without aspect_ratios)", "aspect_ratios",
     lambda tmp: nbdetect.build_model("retinanet_resnet50_fpn", 2, weights=None, anchor_sizes=[[12, 16, 20]] * 5),
     ["aspect_ratios"])
for name, value in (("num_classes", 0), ("num_classes", "x"), ("num_classes", 10 ** 12), ("weights", 5),
                    ("weights", True)):
    case(f"build_model({name}={value!r})", name,
         lambda tmp, n=name, v=value: nbdetect.build_model(**{"preset": "retinanet_tiny", "num_classes": 2,
                                                               "weights": None, n: v}), [name])
case("compare_with_yolo(nbdetect_runs=5)", "nbdetect_runs",
     lambda tmp: nbdetect.compare_with_yolo(nbdetect_runs=5), ["nbdetect_runs"])
case("load_gtsdb(5)", "root", lambda tmp: nbdetect.load_gtsdb(5), ["root"])
case("load_gtsdb(superclasses='yes')", "superclasses",
     lambda tmp: nbdetect.load_gtsdb(tmp, superclasses="yes"), ["superclasses"])
case("load_gtsdb(cache=1)", "cache", lambda tmp: nbdetect.load_gtsdb(tmp, cache=1), ["cache"])
case("load_yolo(split=5)", "split", lambda tmp: nbdetect.load_yolo(tmp, split=5), ["split"])
case("load_yolo(split='valid')", "split", lambda tmp: nbdetect.load_yolo(tmp, split="valid"), ["split"])
case("load_yolo(None)", "path", lambda tmp: nbdetect.load_yolo(None), ["path"])
case("load_coco(5)", "annotation_json", lambda tmp: nbdetect.load_coco(5), ["annotation_json"])
case("load_coco(images_dir=3)", "images_dir", lambda tmp: nbdetect.load_coco(tmp / "a.json", images_dir=3),
     ["images_dir"])
case("load_voc('')", "root", lambda tmp: nbdetect.load_voc(""), ["root"])
case("find_lr(show='yes')", "show", lambda tmp: nbdetect.find_lr(tiny(), toy_samples(4), show="yes"), ["show"])
case("raise_lr(scheduler=5)", "scheduler",
     lambda tmp: nbdetect.raise_lr(torch.optim.SGD(tiny().parameters(), lr=0.1), 0.2, scheduler=5), ["scheduler"])
case("compare_with_yolo(5)", "yolo_results", lambda tmp: nbdetect.compare_with_yolo(5), ["yolo_results"])
case("best_checkpoint(5)", "root", lambda tmp: nbdetect.best_checkpoint(5), ["root"])
case("best_checkpoint(recipe='alt1')", "recipe", lambda tmp: nbdetect.best_checkpoint(tmp, recipe="alt1"), ["recipe"])
case("synthetic_split(n_train=-1)", "n_train", lambda tmp: nbdetect.synthetic_split(n_train=-1), ["n_train"])
case("synthetic_split(n_train='8')", "n_train", lambda tmp: nbdetect.synthetic_split(n_train="8"), expect="accept",
     said=["read as 8"])
case("synthetic_split(n_val='many')", "n_val", lambda tmp: nbdetect.synthetic_split(n_val="many"), ["n_val"])
case("stop_all(timeout='x')", "timeout", lambda tmp: nbdetect.stop_all(timeout="x"), ["timeout"])
case("per_batch('x', 5)", "losses", lambda tmp: nbdetect.per_batch("x", 5), ["losses"])
case("per_batch([1, 'a'], 5)", "losses", lambda tmp: nbdetect.per_batch([1, "a"], 5), ["losses[1]"])

# find_lr
case("find_lr(start_lr=0)", "start_lr", lambda tmp: nbdetect.find_lr(tiny(), toy_samples(4), start_lr=0), ["start_lr"])
case("find_lr(end_lr < start_lr)", "end_lr", lambda tmp: nbdetect.find_lr(tiny(), toy_samples(4), start_lr=1, end_lr=0.1),
     ["start_lr", "end_lr"])
case("find_lr(recipe=5)", "recipe", lambda tmp: nbdetect.find_lr(tiny(), toy_samples(4), recipe=5), ["recipe"])
case("find_lr(label_base=0) on labels 1..K", "label_base",
     lambda tmp: nbdetect.find_lr(tiny(), toy_samples(4), label_base=0, num_iter=3, show=False),
     ["label_base", "larger than num_classes=2 allows (labels 1..2)"])
case("find_lr(num_iter=0)", "num_iter", lambda tmp: nbdetect.find_lr(tiny(), toy_samples(4), num_iter=0), ["num_iter"])
case("find_lr(num_iter=1.5)", "num_iter", lambda tmp: nbdetect.find_lr(tiny(), toy_samples(4), num_iter=1.5), ["num_iter"])
case("find_lr(batch_size=0)", "batch_size", lambda tmp: nbdetect.find_lr(tiny(), toy_samples(4), batch_size=0), ["batch_size"])
case("find_lr(device='gpu')", "device", lambda tmp: nbdetect.find_lr(tiny(), toy_samples(4), device="gpu"), ["device"])
case("find_lr(model=nn.Linear)", "model", lambda tmp: nbdetect.find_lr(nn.Linear(2, 2), toy_samples(4)), ["model"])
case("find_lr(train=5)", "train_not_a_dataset", lambda tmp: nbdetect.find_lr(tiny(), 5), ["train"])

# submission
for value in (-0.1, math.nan, 1.5, "high", None, math.inf):
    case(f"score_threshold={value!r}", "score_threshold", lambda tmp, v=value: submit(tmp, score_threshold=v),
         ["score_threshold"])
case("score_threshold='0.5'", "score_threshold", lambda tmp: submit(tmp, score_threshold="0.5"), expect="accept",
     said=["read as 0.5"])
case("a text file in the test folder", "submission_not_an_image_skipped",
     lambda tmp: submit(tmp, images=images_folder(tmp, {"notes.txt": b"hello"})), expect="accept",
     said=["skipped 1 file", "notes.txt"])
case("a broken .jpg in the test folder", "submission_bad_image",
     lambda tmp: submit(tmp, images=images_folder(tmp, {"broken.jpg": b"not an image"})), ["broken.jpg"])
case("images=a missing folder", "submission_no_images", lambda tmp: submit(tmp, images=tmp / "nope"), ["no image folder"])
case("images=a file", "submission_no_images",
     lambda tmp: (tmp / "a.png").write_bytes(b"x") and submit(tmp, images=tmp / "a.png"), ["images"])
case("images=5", "images", lambda tmp: submit(tmp, images=5), ["images"])
case("images=[1, 2]", "images", lambda tmp: submit(tmp, images=[1, 2]), ["images", "an int"])
case("images=a list with a missing path", "images", lambda tmp: submit(tmp, images=[tmp / "x.png"]), ["x.png"])
case("make_submission(nn.Linear)", "model_not_a_detector", lambda tmp: submit(tmp, model=nn.Linear(2, 2)),
     ["model", "Linear"], absent=["argument 'input'"])
case("make_submission(5)", "model_not_a_detector", lambda tmp: submit(tmp, model=5), ["model"])
case("make_submission(a missing checkpoint)", "submission_missing_checkpoint",
     lambda tmp: submit(tmp, model=tmp / "best.pt"), ["best.pt"])
case("make_submission(a folder without best.pt)", "submission_missing_checkpoint",
     lambda tmp: (tmp / "run").mkdir() or submit(tmp, model=tmp / "run"), ["best.pt"])
for value in (0, None, "x"):
    case(f"make_submission(batch_size={value!r})", "batch_size", lambda tmp, v=value: submit(tmp, batch_size=v),
         ["batch_size"])
case("make_submission(label_base=2)", "label_base", lambda tmp: submit(tmp, label_base=2), ["label_base"])
case("make_submission(out_dir=a file)", "out_dir",
     lambda tmp: (tmp / "f.csv").write_text("x") and submit(tmp, out_dir=tmp / "f.csv"), ["out_dir"])
case("make_submission(device='gpu')", "device",
     lambda tmp: nbdetect.make_submission(tiny(), images_folder(tmp), tmp / "s", device="gpu"), ["device"])
case("make_submission(class_names='abc')", "class_names", lambda tmp: submit(tmp, class_names="abc"), ["class_names"])
case("load_model(5)", "load_model_not_a_path", lambda tmp: nbdetect.load_model(5), ["checkpoint"])
case("load_model(missing)", "load_model_not_a_path", lambda tmp: nbdetect.load_model(tmp / "best.pt"), ["best.pt"])
case("load_model(a text file)", "resume_from_foreign_file",
     lambda tmp: (tmp / "m.pt").write_text("x") and nbdetect.load_model(tmp / "m.pt"), ["m.pt", "cannot be read"])

# a re-run while the recipe trains: refused before a folder is announced or its number burned
case("re-run of alternative_1 while it trains", "rerun_active_recipe", lambda tmp: a1(), ["still training"],
     setup=active("alternative_1"))
case("re-run of alternative_3 while it trains", "rerun_active_recipe", lambda tmp: a3(), ["still training"],
     setup=active("alternative_3"))
case("re-run with bad batch_size while it trains", "batch_size", lambda tmp: a1(batch_size=0), ["batch_size"],
     setup=active("alternative_1"))

# -- the table: data -----------------------------------------------------------------------------------------
case("targets as lists", "target_not_a_dict",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, [t["boxes"], t["labels"]])), num_classes=None),
     ["sample 0", "list", "'boxes'"], absent=["pass num_classes"])
case("targets as tuples", "target_not_a_dict",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, (t["boxes"], t["labels"]))), num_classes=None),
     ["sample 0", "tuple"], absent=["pass num_classes"])
case("targets as lists, num_classes given", "target_not_a_dict",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, [t["boxes"], t["labels"]]))), ["sample 0", "list"])
case("a missing labels key", "target_without_labels",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, {"boxes": t["boxes"]})), num_classes=None),
     ["sample 0", "'labels'"], absent=["pass num_classes"])
case("a missing boxes key, num_classes given", "target_without_labels",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, {"labels": t["labels"]}))), ["sample 0", "'boxes'"])
case("an empty train set", "empty_dataset", lambda tmp: a1(data=[], num_classes=None), ["train", "empty"],
     absent=["pass num_classes"])
case("an empty train set, num_classes given", "empty_dataset", lambda tmp: a1(data=[]), ["train", "empty"])
case("an empty val set", "empty_dataset", lambda tmp: nbdetect.alternative_1(toy_samples(4), [], num_classes=2, **FAST),
     ["val", "empty"])
case("negative boxes", "bad_sample",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, {**t, "boxes": t["boxes"] * 0 - torch.tensor([[5., 5., 1., 1.]])}))),
     ["sample 0"], absent=["normalised"])
case("float64 images", "float64_image", lambda tmp: a1(data=with_samples(lambda i, img, t: (img.double(), t))),
     expect="accept")
case("a sample that is only an image", "sample_not_a_pair",
     lambda tmp: a1(data=with_samples(lambda i, img, t: img)), ["sample 0", "(image, target)"])
case("a sample of 3 items", "sample_not_a_pair",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, t, "extra"))), ["sample 0", "3 items"])
case("__getitem__ raises on index 2", "getitem_raises", lambda tmp: a1(data=Raises(2)), ["sample 2", "KeyError"])
case("__getitem__ raises on index 0, no num_classes", "getitem_raises", lambda tmp: a1(data=Raises(0), num_classes=None),
     ["sample 0", "KeyError"])
case("a DataLoader with batch_size=None", "loader_without_batch_size",
     lambda tmp: a1(data=torch.utils.data.DataLoader(toy_samples(4), batch_size=None)), ["train", "batch_size=None"])
case("train=5", "train_not_a_dataset", lambda tmp: a1(data=5), ["train"])
case("train=a dict", "train_not_a_dataset", lambda tmp: a1(data={"images": []}), ["train"])
case("train=a generator", "train_not_a_dataset", lambda tmp: a1(data=(s for s in toy_samples(4))), ["train"])
case("val=5", "train_not_a_dataset", lambda tmp: nbdetect.alternative_1(toy_samples(4), 5, num_classes=2, **FAST), ["val"])
case("channels-last images", "bad_sample",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img.permute(1, 2, 0), t))), ["sample 0", "HWC"])
case("0-255 images", "bad_sample", lambda tmp: a1(data=with_samples(lambda i, img, t: (img * 255, t))),
     ["sample 0", "255"])
case("label 0 with label_base=1", "bad_sample",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, {**t, "labels": t["labels"] - 1}))), ["label_base=0"])
case("x2 < x1", "bad_sample",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, {**t, "boxes": t["boxes"][:, [2, 1, 0, 3]]}))),
     ["sample 0", "x2 < x1"])
case("NaN boxes", "bad_sample",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, {**t, "boxes": t["boxes"] * math.nan}))), ["sample 0", "NaN"])
case("2 boxes, 1 label", "bad_sample",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, {**t, "boxes": t["boxes"].repeat(2, 1)}))),
     ["sample 0", "2 boxes but 1 labels"])
case("normalised boxes", "bad_sample",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, {**t, "boxes": t["boxes"] / 96}))), ["sample 0", "normalised"])
case("20 bad samples: 3 named, and N more", "bad_sample",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img * 255, t), n=20)), ["sample 0", "more"])
case("fractional labels", "bad_sample",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, {**t, "labels": t["labels"] + 0.5}))), ["sample 0", "whole"])
case("labels above num_classes", "bad_sample",
     lambda tmp: a1(data=with_samples(lambda i, img, t: (img, {**t, "labels": t["labels"] + 5}))), ["num_classes=2"])

case("YOLO labels in pixels", "yolo_label_pixels", lambda tmp: a1(data=yolo(tmp, "0 320 240 50 40"), num_classes=1),
     ["a.txt, line 1", "pixels"])
case("YOLO line with 6 columns", "yolo_label_columns",
     lambda tmp: a1(data=yolo(tmp, "0 0.5 0.5 0.2 0.2 0.9"), num_classes=1), ["a.txt, line 1", "6 values"])
case("YOLO polygon line", "yolo_label_columns",
     lambda tmp: a1(data=yolo(tmp, "0 0.1 0.1 0.5 0.1 0.5 0.5"), num_classes=1), ["a.txt, line 1", "7 values"])
case("YOLO negative value", "yolo_label_pixels", lambda tmp: a1(data=yolo(tmp, "0 0.5 0.5 -0.2 0.2"), num_classes=1),
     ["a.txt, line 1", "negative"])
case("YOLO class as a name", "yolo_class_not_a_number", lambda tmp: a1(data=yolo(tmp, "stop 0.5 0.5 0.2 0.2"), num_classes=1),
     ["a.txt, line 1"])
case("YOLO line with 3 values", "yolo_class_not_a_number", lambda tmp: a1(data=yolo(tmp, "0 0.5 0.5"), num_classes=1),
     ["a.txt, line 1"])
case("data.yaml train: a missing folder", "yolo_yaml_missing_folder",
     lambda tmp: a1(data=yolo(tmp, yaml_text="train: images/train\nval: images\nnames: [a]\n"), num_classes=1),
     ["images/train"])
case("data.yaml val: a missing folder", "yolo_yaml_missing_folder",
     lambda tmp: a1(data=yolo(tmp, yaml_text="train: images\nval: images/valid\nnames: [a]\n"), num_classes=1),
     ["images/valid"])
case("data.yaml path: a missing root", "yolo_yaml_missing_folder",
     lambda tmp: a1(data=yolo(tmp, yaml_text="path: ../elsewhere\ntrain: images\nnames: [a]\n"), num_classes=1),
     ["elsewhere"])
case("data.yaml is a list", "yolo_yaml_is_a_list", lambda tmp: a1(data=yolo(tmp, yaml_text="- a\n- b\n"), num_classes=1),
     ["data.yaml", "list"])
case("data.yaml without names", "yolo_yaml_without_names",
     lambda tmp: a1(data=yolo(tmp, yaml_text="train: images\n"), num_classes=1), ["data.yaml", "names"])
case("data.yaml that does not parse", "yolo_yaml_is_a_list",
     lambda tmp: a1(data=yolo(tmp, yaml_text="train: [images\nnames: {a\n"), num_classes=1), ["data.yaml"])
case("YOLO folder without images", "empty_dataset",
     lambda tmp: (lambda p: [f.unlink() for f in (Path(p) / "images").iterdir()] and a1(data=p, num_classes=1))(yolo(tmp)),
     ["train", "empty"])
case("a dataset path that does not exist", "dataset_path_missing", lambda tmp: a1(data=str(tmp / "nope")), ["nope"])
case("a folder of unknown format", "dataset_format_unknown",
     lambda tmp: (tmp / "empty").mkdir() or a1(data=str(tmp / "empty")), ["empty", "load_yolo"])
case("a COCO json as train", "coco_needs_images", lambda tmp: (tmp / "c.json").write_text("{}") and a1(data=str(tmp / "c.json")),
     ["c.json", "load_coco"])

_COCO = {"images": [{"id": 1, "file_name": "a.jpg", "height": 64, "width": 64}],
         "categories": [{"id": 1, "name": "sign"}]}
case("COCO annotation for an unknown image id", "coco_unknown_image",
     lambda tmp: coco(tmp, {**_COCO, "annotations": [{"id": 7, "image_id": 99, "category_id": 1, "bbox": [1, 1, 9, 9]}]}),
     ["annotation 7", "image_id 99"])
case("COCO unknown category", "coco_unknown_category",
     lambda tmp: coco(tmp, {**_COCO, "annotations": [{"id": 7, "image_id": 1, "category_id": 5, "bbox": [1, 1, 9, 9]}]}),
     ["annotation 7", "category_id 5"])
case("COCO without images", "coco_without_images", lambda tmp: coco(tmp, {"annotations": []}), ["no images"])
case("COCO invalid JSON", "coco_without_images",
     lambda tmp: (tmp / "bad.json").write_text("{") and nbdetect.load_coco(tmp / "bad.json"), ["bad.json"])
case("VOC folder with no objects", "voc_no_objects",
     lambda tmp: a1(data=voc(tmp, "<annotation><filename>x.jpg</filename></annotation>"), num_classes=None),
     ["<object>"])
case("VOC malformed XML", "voc_xml_malformed", lambda tmp: a1(data=voc(tmp, "<annotation><object>"), num_classes=1),
     ["x.xml"])
case("VOC object without bndbox", "voc_object_without_box",
     lambda tmp: a1(data=voc(tmp, "<annotation><filename>x.jpg</filename><object><name>stop</name></object>"
                                  "</annotation>"), num_classes=1), ["x.xml", "<bndbox>"])
case("a truncated JPEG", "image_truncated",
     lambda tmp: (lambda p: (Path(p) / "images" / "a.jpg").write_bytes(jpeg_bytes()[:300]) and a1(data=p, num_classes=1))(yolo(tmp)),
     ["a.jpg"])
case("a corrupt image header", "image_header_corrupt",
     lambda tmp: (lambda p: (Path(p) / "images" / "a.jpg").write_bytes(b"\xff\xd8\xff junk") and a1(data=p, num_classes=1))(yolo(tmp)),
     ["a.jpg"])


#: what the cases themselves create (their data, checkpoints, files): anything else new is nbdetect's doing
FIXTURES = {"test_images", "yolo", "voc", "old_run", "instances.json", "bad.json", "c.json", "f.txt", "f.csv", "a.png",
            "notes.pt", "m.pt", "empty", "empty_run", "run"}


# -- judging -------------------------------------------------------------------------------------------------
def _tree(root: Path) -> set:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def message_ok(exc, named, absent=()) -> tuple[bool, str]:
    text = str(exc)
    shown = "\n".join(exc.lines()).splitlines()
    samples = [line for line in shown if line.lstrip().startswith("- ")]
    more = [line for line in shown if line.lstrip().startswith("... and")]
    base = len(shown) - len(samples) - len(more)
    short = len(shown) <= 6 or (base <= 3 and len(samples) <= 3 and len(more) <= 1)
    missing = [w for w in named if w not in text]
    wrong = [w for w in absent if w in text]
    if missing or wrong or not short:
        return False, f"missing {missing}, wrong {wrong}, {len(shown)} lines: {text[:300]}"
    return True, ""


def run_case(c: Case, tmp: Path) -> tuple[str, str]:
    """(outcome, detail): 'clear', 'cryptic', 'silently wrong' or 'late'. Runs in ``tmp`` (the cwd)."""
    from nbdetect.errors import NbdetectError

    tmp = Path(tmp)
    old_cwd = os.getcwd()
    os.chdir(tmp)
    cleanup = c.setup(tmp) if c.setup else None
    before = _tree(tmp)
    out = io.StringIO()
    from nbdetect import run_guard
    from nbdetect.trainer import TrainingRun

    real = TrainingRun.run, TrainingRun.start
    TrainingRun.run = TrainingRun.start = lambda self: self  # never train: the case is about what happens before
    error, result = None, None
    try:
        with contextlib.redirect_stdout(out):
            result = c.call(tmp)
    except Exception as exc:  # noqa: BLE001  (judged below)
        error = exc
    finally:
        TrainingRun.run, TrainingRun.start = real
        if isinstance(result, TrainingRun):
            run_guard.release(result)
        if cleanup:
            cleanup()
        os.chdir(old_cwd)
    printed = out.getvalue()
    created = sorted(_tree(tmp) - before)
    announced = "writes to" in printed or "holds an earlier run" in printed
    if c.expect == "accept":
        if error is not None:
            return "cryptic", f"refused an acceptable input: {type(error).__name__}: {str(error)[:300]}"
        missing = [w for w in c.said if w not in printed]
        return ("clear", "") if not missing else ("silently wrong", f"accepted without saying {missing}: {printed[:300]}")
    if error is None:
        return "silently wrong", f"accepted: {printed[:200]}"
    if not isinstance(error, NbdetectError):
        return "cryptic", f"{type(error).__name__}: {str(error)[:300]}"
    ok, detail = message_ok(error, c.named, c.absent)
    if not ok:
        return "cryptic", detail
    ours = [p for p in created if Path(p).parts[0] not in FIXTURES]
    if ours or announced:
        return "late", f"created {ours[:5]}" + (f"; announced: {printed[:200]}" if announced else "")
    return "clear", ""
