"""Every argument a student edits, checked in one place before anything is loaded, created or announced.

One :class:`Arg` record per argument name: what it accepts, how a value is checked (and coerced, only where the
intent is unambiguous: ``batch_size="2"`` is read as 2 with a note), and the fix a refusal names. The public cell
functions (``alternative_1/2/3``, ``run_recipe``, ``find_lr``, ``make_submission``, ``load_model``) call
:func:`check` at their top: a wrong value is an :class:`~nbdetect.errors.InputError` naming the argument, before a
run folder is chosen or a line is printed. A misspelled keyword is answered with "did you mean ...?".

This module imports neither torch nor the data code at import time (the records are plain data); a few checks
import torch when they run. ``docs/ERRORS.md``'s argument table is :func:`docs_table`.
"""
from __future__ import annotations

import difflib
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import InputError, MissingError

#: Largest image side nbdetect resizes to (a 100000-px side would allocate tens of GB before the first step).
MAX_IMAGE_SIDE = 4096
MIN_IMAGE_SIDE = 32


@dataclass(frozen=True)
class Arg:
    name: str
    accepts: str  # what a valid value is, in words (the docs table, and every refusal's fix)
    check: Callable  # check(value, notes) -> the value to use; raises InputError / MissingError
    fix: str  # an example of a good value


class _Refuse(Exception):
    """Raised by a checker with the reason; turned into an InputError naming the argument."""


def _is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def _whole(lo: int | None = None, hi: int | None = None, none: bool = True):
    """An int in [lo, hi]; '2' or 2.0 is read as 2 (with a note); a bool, 1.7, 'two' or a list is refused."""

    def check(value, notes, name):
        if value is None:
            if none:
                return None
            raise _Refuse("is required")
        if isinstance(value, bool):
            raise _Refuse(f"is a bool ({value}), not a whole number")
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            notes.append(f"{name}={value!r} read as {int(value)}")
            value = int(value)
        elif isinstance(value, numbers.Real) and not _is_int(value) and math.isfinite(value) \
                and float(value) == int(value):
            notes.append(f"{name}={value!r} read as {int(value)}")
            value = int(value)
        if not _is_int(value):
            kind = _a_type(value) if not isinstance(value, numbers.Real) else "not a whole number"
            raise _Refuse(f"is {kind}" + (" (it would be truncated silently)" if isinstance(value, float) else ""))
        return _within(int(value), lo, hi, str)

    return check


def _is_list(value) -> bool:
    """A list or a tuple (a str, bytes or dict is not one)."""
    return isinstance(value, (tuple, list))


def _a_type(value) -> str:
    """'an int', 'a str': the type of ``value`` with its article."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _within(value, lo, hi, show):
    """``value`` when inside [lo, hi] (either bound may be None), else the refusal naming the bound."""
    if lo is not None and value < lo:
        raise _Refuse(f"must be at least {show(lo)}")
    if hi is not None and value > hi:
        raise _Refuse(f"must be at most {show(hi)}")
    return value


def _real(positive: bool = True, lo: float | None = None, hi: float | None = None, none: bool = True,
          words: tuple = ()):
    """A finite float (in [lo, hi]); '1e-4' is read as 1e-4 (with a note); NaN, inf, a bool or a list is refused."""

    def check(value, notes, name):
        if value is None:
            if none:
                return None
            raise _Refuse("is required")
        if isinstance(value, str) and value in words:
            return value
        if isinstance(value, bool):
            raise _Refuse(f"is a bool ({value}), not a number")
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise _Refuse("is a str, not a number") from None
            notes.append(f"{name}={value!r} read as {number:g}")
            value = number
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # a 0-d tensor / numpy scalar
            value = value.item()
        if not isinstance(value, numbers.Real):
            raise _Refuse(f"is {_a_type(value)}, not a number")
        value = float(value)
        if not math.isfinite(value):
            raise _Refuse("is not a finite number")
        if positive and value <= 0:
            raise _Refuse("must be a positive number")
        return _within(value, lo, hi, lambda x: f"{x:g}")

    return check


def _off_or(check_value):
    """False (off, read as 0.0) or what ``check_value`` accepts."""

    def check(value, notes, name):
        return 0.0 if value is False else check_value(value, notes, name)

    return check


def _choice(*allowed):
    def check(value, notes, name):
        if isinstance(value, bool) and not any(isinstance(a, bool) for a in allowed):
            raise _Refuse(f"is a bool ({value})")
        if any(value is a or (type(value) is type(a) and value == a) for a in allowed):
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in allowed if isinstance(a, str)], n=1)
        raise _Refuse("is not one of the choices" + (f" (did you mean {close[0]!r}?)" if close else ""))

    return check


def _flag(value, notes, name):
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    raise _Refuse(f"is {_a_type(value)}, not True or False")


def _label_base(value, notes, name):
    if isinstance(value, str) and value.strip() in ("0", "1"):
        notes.append(f"{name}={value!r} read as {int(value)}")
        return int(value)
    if _is_int(value) and int(value) in (0, 1):
        return int(value)
    raise _Refuse("must be 0 or 1")


def _device(value, notes, name):
    if value is None:
        return None
    import torch

    if isinstance(value, torch.device):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip().lower()
    else:
        raise _Refuse(f"is {_a_type(value)}" + (" (torch reads an int as a GPU number: write "
                                                        f"device='cuda:{value}')" if _is_int(value) else ""))
    kind = text.split(":")[0]
    if kind in ("gpu", "nvidia"):
        raise _Refuse("is not a torch device name (did you mean 'cuda'?)")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        close = difflib.get_close_matches(kind, ["cpu", "cuda", "mps"], n=1)
        raise _Refuse("is not a torch device name" + (f" (did you mean {close[0]!r}?)" if close else "")) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise _Refuse("but no CUDA GPU is visible to torch here")
        if device.index is not None and device.index >= count:
            raise _Refuse(f"but only {count} GPU(s) are visible (cuda:0..cuda:{count - 1})")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise _Refuse("but MPS (Apple GPU) is not available here")
    return device


def _weights(value, notes, name):
    if value is None or value == "DEFAULT":
        return value
    if isinstance(value, str) and value.strip().lower() == "default":
        notes.append(f"{name}={value!r} read as 'DEFAULT'")
        return "DEFAULT"
    if isinstance(value, str) and value.strip().lower() == "none":
        notes.append(f"{name}={value!r} read as None (no pretrained weights)")
        return None
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise MissingError(f"{name}={str(value)!r}: no such file" + (" (it is a folder)" if path.is_dir() else ""),
                               where=name, fix="pass weights='DEFAULT' (pretrained), weights=None (from scratch), "
                                               "or the path of a .pth file that exists")
        return value
    raise _Refuse(f"is {_a_type(value)}")


def _image_size(value, notes, name):
    if value is None:
        return None
    side = _whole(MIN_IMAGE_SIDE, MAX_IMAGE_SIDE, none=False)
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise _Refuse(f"has {len(value)} values; give (short side, long side) or one int")
        sides = [side(v, notes, name) for v in value]
        return tuple(sides) if isinstance(value, tuple) else sides
    return side(value, notes, name)


def _path(exists_ok_file: bool = False, none: bool = True, writes: bool = False):
    """A path (str or os.PathLike). ``exists_ok_file``: it may name a file; else an existing file is refused (a
    folder is asked for). ``writes``: nbdetect will create it, so its nearest existing folder must be a folder
    this process may write in (checked here, before anything is created). Whether a path to read exists is the
    reader's to say, with the path."""

    def check(value, notes, name):
        if value is None and none:
            return None
        if not isinstance(value, (str, os.PathLike)) or isinstance(value, bytes):
            raise _Refuse(f"is {_a_type(value)}, not a path")
        if not str(value).strip():
            raise _Refuse("is an empty path")
        if not exists_ok_file and Path(value).is_file():
            raise _Refuse("is an existing file, not a folder")
        if writes:
            nearest = Path(value).absolute()
            while not nearest.exists() and nearest != nearest.parent:
                nearest = nearest.parent
            if not nearest.is_dir():
                raise _Refuse(f"is inside {nearest}, which is a file, not a folder")
            if not os.access(nearest, os.W_OK | os.X_OK):
                raise _Refuse(f"cannot be created: {nearest} is not writable")
        return value

    return check


def _resume(value, notes, name):
    if isinstance(value, bool):
        return value
    if value is None:
        notes.append(f"{name}=None read as False (a new run)")
        return False
    if not isinstance(value, (str, os.PathLike)) or isinstance(value, bytes):
        raise _Refuse(f"is {_a_type(value)}: pass True (continue the latest run) or a checkpoint path")
    path = Path(value)
    if path.is_dir():
        if (path / "last.pt").is_file():
            notes.append(f"{name}={str(value)!r} is a run folder: resuming from its last.pt")
            return path / "last.pt"
        raise MissingError(f"{name}={str(value)!r} is a folder without last.pt", where=name,
                           fix="pass the last.pt of the run to continue, or resume=True for the latest run")
    if not path.is_file():
        near = sorted(str(p) for p in path.parent.glob("*.pt"))[:3] if path.parent.is_dir() else []
        hint = f"; .pt files there: {', '.join(near)}" if near else ""
        text = str(value)
        bool_hint = " (to continue the latest run write resume=True, without quotes)" \
            if text.strip().lower() in ("true", "yes", "1") else ""
        raise MissingError(f"{name}={text!r}: no such checkpoint{bool_hint}{hint}", where=name,
                           fix="check the path (a typo starts nothing: nbdetect never trains from scratch in its "
                               "place), or pass resume=True to continue the latest run of this recipe")
    return value


def _thresholds(value, notes, name):
    if value is None:
        return None
    from .verdict import UserThresholds

    if isinstance(value, UserThresholds):
        return value
    raise _Refuse(f"is {_a_type(value)}, not nbdetect.verdict.UserThresholds")


def _class_names(value, notes, name):
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise _Refuse(f"is {_a_type(value)}, not a list of names")
    if not value:
        raise _Refuse("is an empty list")
    return list(value)


def detector_family(model) -> str | None:
    """The family name (nbdetect.families: 'retinanet', 'fasterrcnn', 'fcos'...) of a torchvision detector,
    'detector' for another torchvision-style one; None for anything else."""
    import torch

    if not isinstance(model, torch.nn.Module):
        return None
    from .families import of_model

    family = of_model(model)
    if family is not None:
        return family.name
    return "detector" if hasattr(model, "transform") else None


def takes_targets(model) -> bool:
    """A module whose forward takes (images, targets), as a detector in training does (nn.Linear takes one)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return True
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) >= 2


def _model(value, notes, name):
    if value is None:
        return None
    import torch

    if not isinstance(value, torch.nn.Module) or (detector_family(value) is None and not takes_targets(value)):
        raise _Refuse(f"is {_a_type(value)}, not a torchvision detector (RetinaNet / Faster R-CNN / FCOS)")
    return value


def _optimizer(value, notes, name):
    if value is None:
        return None
    import torch

    if not isinstance(value, torch.optim.Optimizer):
        raise _Refuse(f"is {_a_type(value)}, not a torch.optim optimizer")
    return value


def _eval_map_every(value, notes, name):
    value = _whole(0, none=False)(value, notes, name)
    if value == 0:
        notes.append("eval_map_every=0: mAP is never computed (not even after the last epoch); the verdict and "
                     "best.pt use the validation loss")
    return value


def _box_loss(value, notes, name):
    from .families import BOX_LOSSES

    return _choice(False, None, *BOX_LOSSES)(value, notes, name)


def _iou_pair(value, notes, name):
    """(foreground, background) IoUs, 0 < background <= foreground < 1, as a tuple of floats; False: off."""
    if value is False:
        return 0.0
    if value is None:
        return None
    if not _is_list(value) or len(value) != 2:
        raise _Refuse(f"is {value!r}: give two IoUs, (foreground, background)")
    high, low = (_real(none=False, hi=1.0)(v, notes, name) for v in value)
    if not 0.0 < low <= high < 1.0:
        raise _Refuse(f"is ({high:g}, {low:g}): needs 0 < background <= foreground < 1")
    return (high, low)


def _milestones(value, notes, name):
    """Epochs at which a multistep schedule cuts the LR: whole numbers >= 1, returned sorted as a tuple."""
    if value is None:
        return None
    if not _is_list(value):
        raise _Refuse(f"is {_a_type(value)}: give a list of epochs")
    return tuple(sorted(_whole(1, 100_000, none=False)(v, notes, name) for v in value))


def _mapping_of(keys: tuple | None = None):
    """None or a dict; with ``keys``, one whose keys are among them (the keyword arguments it is passed on as)."""

    def check(value, notes, name):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _Refuse(f"is {_a_type(value)}, not a dict")
        unknown = [k for k in value if k not in keys] if keys is not None else []
        if unknown:
            raise _Refuse(f"has the key {unknown[0]!r}, not one of {', '.join(keys)}")
        return value

    return check


#: The keywords ``synthetic=`` is passed on as: synthetic_split's and, through it, SyntheticSigns' (listed, not
#: read from their signatures: nbdetect.data imports this module; tests/test_bad_inputs.py checks the two agree).
SYNTHETIC_KEYS = ("n_train", "n_val", "image_size", "seed", "min_size", "max_size", "max_objects", "cache")


def _callbacks(value, notes, name):
    """None (none: read as []) or a list of hook objects (instances with on_<event> methods, nbdetect.callbacks)."""
    if value is None:
        return []
    if not _is_list(value):
        raise _Refuse(f"is {_a_type(value)}: give a list of callback objects")
    for item in value:
        if isinstance(item, type):
            raise _Refuse(f"holds the class {item.__name__}: pass an instance, {item.__name__}()")
        if not any(attr.startswith("on_") and callable(getattr(item, attr)) for attr in dir(item)):
            raise _Refuse(f"holds {item!r}, which has no on_<event> method (subclass nbdetect.callbacks.Callback)")
    return list(value)


def _expected(value, notes, name):
    """None or {epoch: (low, high)} loss bounds: epochs whole numbers >= 1, finite bounds low <= high."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Refuse("is not a dict: give {epoch: (low, high)}")
    out = {}
    for epoch, bounds in value.items():
        epoch = _whole(1, none=False)(epoch, notes, name)
        if isinstance(bounds, (str, bytes)) or not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise _Refuse(f"has {bounds!r} at epoch {epoch}: give (low, high)")
        low, high = (_real(positive=False, none=False)(b, notes, name) for b in bounds)
        if low > high:
            raise _Refuse(f"has ({low:g}, {high:g}) at epoch {epoch}: low above high")
        out[epoch] = (low, high)
    return out


def _per_level(value, notes, name):
    """None or, per feature level, a list of positive numbers (anchor sizes in px, or aspect ratios)."""
    if value is None:
        return None
    if not _is_list(value) or not value:
        raise _Refuse("is not a list with one list of numbers per feature level")
    levels = []
    for level in value:
        if not _is_list(level) or not level:
            raise _Refuse(f"holds {level!r}: each level is a list of positive numbers")
        levels.append(tuple(_real(none=False)(v, notes, name) for v in level))
    return tuple(levels)


def _scheduler(value, notes, name):
    """None or a torch LR scheduler (an object with step() and the optimizer it steps)."""
    if value is None or (callable(getattr(value, "step", None)) and hasattr(value, "optimizer")):
        return value
    raise _Refuse(f"is {_a_type(value)}, not an LR scheduler (torch.optim.lr_scheduler)")


def _name_in(what: str, names: Callable[[], dict], listed: bool = False):
    """None or a key of the registry ``names()`` returns (read when checked: registered records count), with
    "did you mean" (``listed``: else every name)."""

    def check(value, notes, name):
        if value is None:
            return None
        known = list(names())
        if isinstance(value, str) and value in known:
            return value
        close = difflib.get_close_matches(str(value), known, n=1)
        raise _Refuse(f"is not {what}" + (f" (did you mean {close[0]!r}?)" if close else
                                          f": one of {', '.join(known)}" if listed else ""))

    return check


def _presets() -> dict:
    from .families import PRESETS

    return PRESETS


def _recipes() -> dict:
    from .recipes import RECIPES

    return RECIPES


def _images(value, notes, name):
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        if not Path(value).is_dir():
            what = "is a file, not a folder" if Path(value).is_file() else "is not a folder"
            raise MissingError(f"no image folder at {value} ({name} {what})", where=name,
                               fix="pass the folder holding your test images (or a list of image paths)")
        return value
    if isinstance(value, (list, tuple)):
        odd = next((i for i, p in enumerate(value) if not isinstance(p, (str, os.PathLike))), None)
        if odd is not None:
            raise _Refuse(f"holds {_a_type(value[odd])} at [{odd}]: give image paths")
        missing = [str(p) for p in value if not Path(p).is_file()]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise MissingError(f"{len(missing)} image path(s) do not exist: {', '.join(missing[:3])}{more}",
                               where=name, fix="check the paths (relative paths start at the notebook's folder)")
        return value
    from torch.utils.data import Dataset

    if isinstance(value, Dataset):
        return value
    raise _Refuse(f"is {_a_type(value)}: pass a folder, a list of image paths or a Dataset")


def _augment(value, notes, name):
    """``augment=``: None (the recipe's), True/False, or a dict of nbdetect.data.augment.AugmentConfig fields."""
    from .data.augment import augment_config

    try:
        return augment_config(value)
    except (ValueError, TypeError) as exc:
        raise _Refuse(str(exc)) from None


def _tiles(value, notes, name):
    """``tiles=``: None/False (off), a tile size in pixels, or a dict of nbdetect.data.tiles.TileConfig fields."""
    from .data.tiles import tile_config

    if isinstance(value, str) and value.strip().isdigit():
        notes.append(f"{name}={value!r} read as {int(value)}")
        value = int(value)
    try:
        return tile_config(value)
    except (ValueError, TypeError) as exc:
        raise _Refuse(str(exc)) from None


ARGS: dict[str, Arg] = {a.name: a for a in [
    Arg("epochs", "a whole number from 1 to 100000", _whole(1, 100_000), "epochs=50"),
    Arg("batch_size", "a whole number from 1 to 4096", _whole(1, 4096), "batch_size=4"),
    Arg("lr", "a positive finite number, or 'auto' (alternative_1/2)", _real(words=("auto",)), "lr=1e-4"),
    Arg("num_classes", "a whole number from 1 to 10000 (real classes, background not counted), or None to read it "
        "from the data",
        _whole(1, 10_000), "num_classes=43"),
    Arg("label_base", "0 (labels 0..K-1) or 1 (labels 1..K)", _label_base, "label_base=1"),
    Arg("device", "None (a GPU when there is one), 'cpu', 'cuda', 'cuda:N' or a torch.device", _device,
        "device='cpu' (or leave it out)"),
    Arg("weights", "'DEFAULT' (pretrained), None (from scratch) or the path of a weights file", _weights,
        "weights=None"),
    Arg("image_size", f"one int or (short side, long side), each {MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE} px",
        _image_size, "image_size=(480, 800)"),
    Arg("monitor", "'auto', 'panel', 'text', 'none', True or False",
        _choice("auto", "panel", "text", "none", True, False, None), "monitor='text'"),
    Arg("out_dir", "None (nbdetect_runs/<recipe>) or a folder path (not an existing file) you can write in",
        _path(writes=True), "out_dir='runs/mine'"),
    Arg("resume", "False, True (the latest run of this recipe) or the path of a last.pt that exists", _resume,
        "resume=True"),
    Arg("seed", "a whole number >= 0", _whole(0, 2 ** 63 - 1, none=False), "seed=0"),
    Arg("num_workers", "a whole number >= 0 (DataLoader worker processes)", _whole(0, 256, none=False), "num_workers=0"),
    Arg("eval_map_every", "a whole number >= 0 (epochs between mAP evaluations; 0: never)", _eval_map_every,
        "eval_map_every=1"),
    Arg("devices", "a whole number >= 1 (training processes)", _whole(1, 1024, none=False), "devices=1"),
    Arg("threads", "None or a whole number >= 1 (torch CPU threads)", _whole(1, 1024), "threads=2"),
    Arg("thresholds", "None or nbdetect.verdict.UserThresholds", _thresholds, "thresholds=None"),
    Arg("class_names", "None or a list of class names", _class_names, "class_names=['stop', 'yield']"),
    Arg("preset", "None or a model preset name (nbdetect.PRESETS)", _name_in("a model preset", _presets),
        "preset='retinanet_tiny'"),
    Arg("model", "None or a torchvision detector (RetinaNet / Faster R-CNN / FCOS)", _model,
        "model=nbdetect.build_model('retinanet_tiny', K)"),
    Arg("optimizer", "None or a torch.optim optimizer", _optimizer, "optimizer=torch.optim.SGD(model.parameters(), lr=0.01)"),
    Arg("background", "None (automatic), True or False", _flag, "background=False"),
    Arg("amp", "True or False", _flag, "amp=True"),
    Arg("replace", "True or False", _flag, "replace=True"),
    Arg("exist_ok", "True or False", _flag, "exist_ok=True"),
    Arg("verify_data", "True or False", _flag, "verify_data=True"),
    Arg("sync_bn", "True or False", _flag, "sync_bn=False"),
    Arg("score_threshold", "a number from 0 to 1", _real(positive=False, lo=0.0, hi=1.0, none=False),
        "score_threshold=0.3 (mAP tools: 0.001)"),
    Arg("images", "a folder of images, a list of image paths, or a Dataset", _images, "images='test_images/'"),
    Arg("start_lr", "a positive finite number below end_lr", _real(), "start_lr=1e-6"),
    Arg("end_lr", "a positive finite number above start_lr", _real(), "end_lr=0.1"),
    Arg("num_iter", "a whole number from 2 to 100000", _whole(2, 100_000, none=False), "num_iter=200"),
    Arg("start_epoch", "None or a whole number >= 0 (labels the epochs)", _whole(0), "start_epoch=41"),
    Arg("previous_loss", "None or a finite number (your last validation loss)", _real(positive=False),
        "previous_loss=1.2"),
    Arg("warmup_epochs", "a number >= 0", _real(positive=False, lo=0.0), "warmup_epochs=1"),
    Arg("weight_decay", "a number >= 0", _real(positive=False, lo=0.0), "weight_decay=1e-4"),
    Arg("schedule", "one of 'warmup_cosine', 'multistep', 'constant'",
        _choice("warmup_cosine", "multistep", "constant"), "schedule='warmup_cosine'"),
    Arg("milestones", "None or a list of epochs >= 1 (where schedule='multistep' cuts the LR)", _milestones,
        "milestones=[30, 45]"),
    Arg("gamma", "a number above 0 up to 1 (what each milestone multiplies the LR by)", _real(hi=1.0, none=False),
        "gamma=0.1"),
    Arg("decision_epoch", "None or a whole number from 1 to 100000 (the epoch of the verdict's decision)",
        _whole(1, 100_000),
        "decision_epoch=20"),
    Arg("synthetic", "None or a dict of the demo data's options (n_train, n_val, image_size, seed, min_size, "
        "max_size, max_objects, cache)",
        _mapping_of(SYNTHETIC_KEYS),
        "synthetic={'n_train': 120}"),
    Arg("callbacks", "None or a list of callback objects (instances of nbdetect.callbacks.Callback subclasses)",
        _callbacks, "callbacks=[MyCallback()]"),
    Arg("meta", "None or a dict (recorded in the checkpoints)", _mapping_of(), "meta={'note': 'run 2'}"),
    # build_model(), the data loaders and the other public helpers
    Arg("min_size", "None (the preset's) or a whole number of px, 32..8192 (the model's resize, short side)",
        _whole(32, 8192), "min_size=512"),
    Arg("max_size", "None (the preset's) or a whole number of px, 32..8192 (the model's resize, long side)",
        _whole(32, 8192), "max_size=853"),
    Arg("anchor_sizes", "None (the preset's) or one list of sizes in px per feature level", _per_level,
        "anchor_sizes=[[16, 20, 25], [32, 40, 50], [64, 80, 101], [128, 161, 203], [256, 322, 406]]"),
    Arg("aspect_ratios", "None (the preset's) or one list of height/width ratios per feature level", _per_level,
        "aspect_ratios=[[0.5, 1.0, 2.0]] * 5"),
    Arg("root", "a folder path (str or Path)", _path(none=False), "root='data/gtsdb'"),
    Arg("path", "a data.yaml or a YOLO folder path (str or Path)", _path(exists_ok_file=True, none=False),
        "path='data.yaml'"),
    Arg("annotation_json", "the path of a COCO annotation JSON", _path(exists_ok_file=True, none=False),
        "annotation_json='train.json'"),
    Arg("images_dir", "None (next to the annotations) or a folder path", _path(),
        "images_dir='images/'"),
    Arg("yolo_results", "the path of an Ultralytics results.csv (or its run folder)",
        _path(exists_ok_file=True, none=False),
        "yolo_results='runs/detect/train/results.csv'"),
    Arg("split", "one of 'train', 'val', 'test'", _choice("train", "val", "test"), "split='val'"),
    Arg("superclasses", "True or False (GTSDB's 4 super-classes instead of its 43)", _flag, "superclasses=True"),
    Arg("cache", "'auto', True or False (decoded images kept in memory)", _choice("auto", True, False),
        "cache='auto'"),
    Arg("show", "True or False (draw the curve)", _flag, "show=True"),
    Arg("scheduler", "None or your LR scheduler (torch.optim.lr_scheduler), the one built on this optimizer",
        _scheduler, "scheduler=scheduler"),
    Arg("n_train", "a whole number from 1 to 100000 (images)", _whole(1, 100_000, none=False), "n_train=240"),
    Arg("n_val", "a whole number from 1 to 100000 (images)", _whole(1, 100_000, none=False), "n_val=60"),
    Arg("timeout", "None (wait as long as it takes) or a number of seconds >= 0", _real(positive=False, lo=0.0),
        "timeout=120"),
    # diagnose()'s own options (a refused one is reported under Skipped and its default used: check_or_default)
    Arg("steps_per_epoch", "None or a whole number >= 1 (batches per epoch)", _whole(1), "steps_per_epoch=150"),
    Arg("scheduler_interval", "one of 'auto', 'epoch', 'step' (how often your scheduler steps)",
        _choice("auto", "epoch", "step"), "scheduler_interval='epoch'"),
    Arg("expected", "None or {epoch: (low, high)} loss bounds", _expected, "expected={10: (0.5, 1.5)}"),
    Arg("overfit", "True, False or 'force' (the overfit-one-batch test)", _choice(True, False, "force"),
        "overfit=False"),
    Arg("overfit_steps", "a whole number from 1 to 100000", _whole(1, 100_000, none=False), "overfit_steps=40"),
    Arg("overfit_seconds", "a positive number of seconds", _real(none=False), "overfit_seconds=30"),
    Arg("loss_batches", "a whole number from 1 to 1000", _whole(1, 1000, none=False), "loss_batches=2"),
    Arg("max_samples", "None (all) or a whole number >= 1", _whole(1), "max_samples=500"),
    Arg("max_image_stats", "a whole number >= 0", _whole(0, none=False), "max_image_stats=32"),
    Arg("data_seconds", "a positive number of seconds", _real(none=False), "data_seconds=40"),
    Arg("plots", "True or False", _flag, "plots=False"),
    Arg("recipe", "None (your own run) or an nbdetect recipe name", _name_in("a recipe name", _recipes, listed=True),
        "recipe='alternative_1'"),
    Arg("history_kind", "one of 'auto', 'val', 'train' (what a plain list of losses is)",
        _choice("auto", "val", "train"), "history_kind='val'"),
    Arg("match_iou", "False (the model's) or (foreground, background) IoUs, 0 < background <= foreground < 1",
        _iou_pair, "match_iou=(0.4, 0.3) or match_iou=False"),
    Arg("naming_loss", "False (without it) or a number >= 0 (its weight)", _off_or(_real(positive=False, lo=0.0)),
        "naming_loss=1.0 or naming_loss=False"),
    Arg("box_loss", "False (the model's) or one of 'giou', 'l1', 'smooth_l1', 'diou', 'ciou'", _box_loss,
        "box_loss='giou'"),
    Arg("augment", "True, False, or a dict of nbdetect.data.augment.AugmentConfig fields (photometric, zoom_out, "
        "zoom_out_max, zoom_in, flip)", _augment, "augment=True or augment={'flip': True}"),
    Arg("ema", "True or False (an average of the weights for validation and the checkpoints)", _flag, "ema=True"),
    Arg("data_anchors", "True or False (anchors fitted to the data's boxes where that covers more)", _flag,
        "data_anchors=True"),
    Arg("box_weight", "False (the model's) or a positive number (the box regression losses times it)",
        _off_or(_real()), "box_weight=2.0 or box_weight=False"),
    Arg("iou_scores", "True or False (class scores trained against the predicted box's IoU)", _flag,
        "iou_scores=True"),
    Arg("box_voting", "False (the model's NMS) or an IoU above 0 up to 1 (kept boxes placed by the candidates "
        "overlapping them that much)", _off_or(_real(hi=1.0)), "box_voting=0.6 or box_voting=False"),
    Arg("min_lr", "a number >= 0", _real(positive=False, lo=0.0), "min_lr=1e-6"),
    Arg("momentum", "a number from 0 to 1", _real(positive=False, lo=0.0, hi=1.0), "momentum=0.9"),
    Arg("grad_clip", "None or a positive number", _real(), "grad_clip=10"),
    Arg("tiles", "None, a tile size in px (64..4096) or a dict: size, overlap (0..0.9), background (share, 0..<1), "
        "seed, min_visible", _tiles, "tiles=320 or tiles={'size': 320, 'background': 0.2}"),
    Arg("slices", "None (as the run was trained), False (whole frames), or a tile size / dict as tiles=", _tiles,
        "slices=320"),
]}

#: Words students write for an argument, that difflib cannot guess.
ALIASES = {
    "learning_rate": "lr", "lr_rate": "lr", "learningrate": "lr", "base_lr": "lr",
    "n_epochs": "epochs", "num_epochs": "epochs", "max_epochs": "epochs", "epoch": "epochs",
    "bs": "batch_size", "batchsize": "batch_size", "batch": "batch_size",
    "nc": "num_classes", "n_classes": "num_classes", "classes": "num_classes", "num_class": "num_classes",
    "output_dir": "out_dir", "outdir": "out_dir", "save_dir": "out_dir", "output": "out_dir", "project": "out_dir",
    "workers": "num_workers", "n_workers": "num_workers", "imgsz": "image_size", "img_size": "image_size",
    "imgsize": "image_size", "pretrained": "weights", "gpu": "device", "cuda": "device", "names": "class_names",
    "conf": "score_threshold", "threshold": "score_threshold", "score": "score_threshold",
}


def suggest(word: str, known) -> str | None:
    known = list(known)
    if word in ALIASES and ALIASES[word] in known:
        return ALIASES[word]
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return close[0] if close else None


def check_keywords(function: str, given, known) -> None:
    """An InputError for the first keyword of ``given`` that ``function`` does not take, with "did you mean"."""
    known = set(known)
    for word in given:
        if word in known:
            continue
        near = suggest(word, known)
        raise InputError(f"{function}() has no argument {word!r}" + (f"; did you mean `{near}`?" if near else ""),
                         where=word, fix=f"write {near}= instead of {word}=" if near else
                         f"see help(nbdetect.{function}) for its arguments")


def check_one(name: str, value, notes: list | None = None):
    """``value`` checked (and coerced) as argument ``name``; an InputError naming it otherwise."""
    arg = ARGS[name]
    try:
        return arg.check(value, notes if notes is not None else [], name)
    except _Refuse as reason:
        shown = repr(value) if not hasattr(value, "parameters") else f"<{type(value).__name__}>"
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise InputError(f"{name}={shown} {reason}", where=name,
                         fix=f"pass {arg.accepts}, e.g. {arg.fix}") from None


def _say(notes: list[str]) -> None:
    """Print the notes on coercions (``batch_size='2' read as 2``), once the checks have passed."""
    for note in notes:
        print(f"nbdetect: note: {note}")


def check(values: dict, *, say: bool = True, skip=()) -> dict:
    """Every known argument of ``values`` checked; returns them coerced. Notes on coercions are printed (once,
    after all passed) when ``say``."""
    notes: list[str] = []
    out = dict(values)
    for name, value in values.items():
        if name in ARGS and name not in skip:
            out[name] = check_one(name, value, notes)
    if say:
        _say(notes)
    return out


def check_or_default(values: dict, defaults: dict) -> tuple[dict, list[tuple[str, str]]]:
    """For a function that reports instead of raising (diagnose): every known argument of ``values`` checked as
    :func:`check_one`; a refused one takes its ``defaults`` value and gives (a line naming it and the value used,
    the fix). Notes on coercions are printed as :func:`check` prints them. Returns (the values, those pairs)."""
    out, lines, notes = dict(values), [], []
    for name, value in values.items():
        if name not in ARGS:
            continue
        try:
            out[name] = check_one(name, value, notes)
        except InputError as exc:
            out[name] = defaults[name]
            lines.append((f"{exc.what}: ignored, {name}={defaults[name]!r} used instead", exc.fix))
    _say(notes)
    return out, lines


def docs_table() -> str:
    """The argument table of docs/ERRORS.md (tests/test_bad_inputs.py checks the file holds exactly this)."""
    rows = ["| argument | accepted | e.g. |", "| --- | --- | --- |"]
    rows += [f"| `{a.name}` | {a.accepts} | `{a.fix}` |" for a in ARGS.values()]
    return "\n".join(rows)


def public(function):
    """A public cell function whose call with an unknown keyword (or a wrong number of arguments) is an
    InputError naming it, with "did you mean ...?", instead of Python's TypeError."""
    import functools
    import inspect

    signature = inspect.signature(function)
    known = [n for n, p in signature.parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            unknown = [k for k in kwargs if k not in known]
            if unknown:
                check_keywords(function.__name__, unknown, known)
            raise InputError(f"{function.__name__}(): {exc}", where=function.__name__,
                             fix=f"see help(nbdetect.{function.__name__}) for its arguments") from None
        return function(*args, **kwargs)

    return call
