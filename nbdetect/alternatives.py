"""The guide's three alternatives as notebook-cell functions.

Each builds (or takes) a model, prepares and validates the data, and returns a
:class:`~nbdetect.trainer.TrainingRun`. In a notebook the live panel is shown
and training runs in the background (the cell returns at once); elsewhere
training runs in the calling thread with text progress.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from . import families, run_dirs, run_guard
from .hooks import LossBefore
from .inputs import prepare_data
from .models import (MODEL_SETTINGS, apply_prediction_settings, build_model, default_device,  # noqa: F401
                     family_of, family_title, num_classes_of)
from .recipes import (ALTERNATIVE_1, ALTERNATIVE_2, ALTERNATIVE_3, CPU_EPOCHS, CPU_IMAGE_SIZE, RECIPES,  # noqa: F401
                      SEED_MULTISTEP, Recipe, get_recipe)
from .trainer import TrainingRun
from .arguments import public
from .errors import InputError, RunError
from .data.tiles import tiled_of


def data_image_size(dataset, limit: int = 4) -> tuple[int, int] | None:
    """(short side, long side) in pixels of the first ``limit`` images of ``dataset`` (the largest of each side),
    or None when they cannot be read cheaply. The samples as annotated: an augmentation wrapper is looked through."""
    from .data.augment import Augmented

    dataset = dataset.dataset if isinstance(dataset, Augmented) else dataset
    short = long = 0
    try:
        for i in range(min(len(dataset), limit)):
            image = dataset[i][0]
            if hasattr(image, "shape"):
                h, w = (int(x) for x in image.shape[-2:])
            else:  # a PIL image
                w, h = (int(x) for x in image.size)
            short, long = max(short, min(h, w)), max(long, max(h, w))
    except Exception:  # noqa: BLE001 - a dataset the checks will name later; the default size meanwhile
        return None
    return (short, long) if short > 0 else None


def cpu_image_size(own: tuple[int, int] | None) -> tuple[int, int]:
    """CPU_IMAGE_SIZE capped at the data's own (short, long) size: images are shrunk to it, never upscaled."""
    if own is None:
        return CPU_IMAGE_SIZE
    return min(CPU_IMAGE_SIZE[0], own[0]), min(CPU_IMAGE_SIZE[1], own[1])


def _pick_preset(recipe: Recipe, preset: str | None, synthetic: bool, device: torch.device,
                 image_size=None, dataset=None) -> tuple[str, tuple[int, int] | None]:
    """The model preset and image size to build: the recipe's model on a GPU (or when asked), its CPU-sized
    model on a CPU at the data's own size (at most CPU_IMAGE_SIZE; measured on the first samples of
    ``dataset``), said in one line with the epochs and how to get the guide's setup."""
    if preset:
        return preset, image_size
    if device.type != "cpu":
        return recipe.preset, image_size
    tiny = recipe.tiny_preset
    own = None
    if image_size:
        size = image_size
    elif synthetic:
        size = None
    else:
        own = data_image_size(dataset) if dataset is not None else None
        size = cpu_image_size(own)
    sides = (size, size) if isinstance(size, (int, float)) else size
    shown = f" at {min(sides)}x{max(sides)} px" if size else ""
    what = "the synthetic demo data" if synthetic else "your data"
    if own is not None and tuple(size) != CPU_IMAGE_SIZE:
        what += f" (its own size: smaller images than {CPU_IMAGE_SIZE[0]}x{CPU_IMAGE_SIZE[1]} are not upscaled)"
    guide = RECIPES.get(recipe.name, recipe)
    print(f"nbdetect: no GPU: training the CPU-sized '{tiny}' model{shown} on {what} for {recipe.epochs} epoch{'s' if recipe.epochs != 1 else ''}, "
          f"from scratch (it has no pretrained weights). For the guide's setup set PRESET = '{recipe.preset}' and "
          f"EPOCHS = {guide.epochs} (pretrained, about 3 s per image on a 2-core CPU) or run on a GPU.")
    return tiny, size


def _anchors_for(model, dataset, limit: int = 300):
    """The preset's anchors fitted to the training boxes as the model will see them (after its resize), said
    in one line; None when the model has no anchors to fit or the data no boxes."""
    import numpy as np

    from . import anchors
    from .checks.model_probe import probe

    info = probe(model)
    if info is None or not info.anchor_sizes:
        return None
    from .data.augment import Augmented

    dataset = dataset.dataset if isinstance(dataset, Augmented) else dataset  # the boxes as annotated
    n = len(dataset)
    ws, hs = [], []
    for i in sorted({int(k * n / min(n, limit)) for k in range(min(n, limit))}):
        image, target = dataset[i]
        boxes = target["boxes"].reshape(-1, 4).float()
        scale = info.scale_for(*image.shape[-2:])
        ws += ((boxes[:, 2] - boxes[:, 0]) * scale).tolist()
        hs += ((boxes[:, 3] - boxes[:, 1]) * scale).tolist()
    if not ws:
        return None
    fitted = anchors.fit(np.array(ws), np.array(hs), info.anchor_sizes, info.aspect_ratios)
    print(f"nbdetect: {fitted.describe()}" if fitted.changed else
          f"nbdetect: the preset's anchors cover {fitted.coverage_before:.0%} of {fitted.boxes} training boxes "
          "(IoU >= 0.5): kept")
    return fitted


def _auto_lr(recipe: Recipe, model, loader, device, meta: dict) -> Recipe:
    """lr='auto': an LR range test on the model about to train (restored afterwards); its suggestion, or the
    recipe's own LR with the reason when the curve cannot be read."""
    from .lr_finder import find_lr

    found = find_lr(model, loader, recipe=recipe, device=device, show=False)
    meta["lr_finder"] = {"suggested": found.lr, "steepest": found.suggestion.steepest,
                         "status": found.suggestion.status, "seconds": round(found.seconds, 1)}
    if found.lr is None:
        print(f"nbdetect: lr='auto': {found.summary()}; keeping the recipe's lr {recipe.lr:g}")
        return recipe
    print(f"nbdetect: lr='auto': {found.summary()}; training with lr {found.lr:.2g} (the recipe's: {recipe.lr:g})")
    return recipe.replace(lr=float(f"{found.lr:.2g}"))


def start_next(run, action: str):
    """Start the recipe ``action`` on ``run``'s data, scaled to the same share of the guide's length.

    The panel's "Start ..." button calls this (it is handed to the monitor, which imports no recipe code).
    """
    meta = dict(getattr(run, "meta", {}) or {})
    current = RECIPES.get(getattr(getattr(run, "recipe", None), "name", None))
    target = get_recipe(action)
    epochs = target.epochs
    if current is not None and run.epochs != current.epochs:
        epochs = max(1, round(run.epochs * target.epochs / current.epochs))
    kwargs = {}
    if str(meta.get("preset") or "").endswith("_tiny"):
        kwargs.update(preset=target.tiny_preset, weights=None)
    if meta.get("min_size") and meta.get("max_size"):
        kwargs["image_size"] = (meta["min_size"], meta["max_size"])
    if meta.get("tiles"):  # the loaders already hold the tiles: the next recipe trains on them as they are
        kwargs["meta"] = {"tiles": meta["tiles"]}
    out_dir = run.out_dir.parent / action if getattr(run, "out_dir", None) is not None else None
    return run_recipe(target, run.train_loader, run.val_loader, num_classes=meta.get("num_classes"),
                      class_names=meta.get("class_names"), device=getattr(run, "device", None), epochs=epochs,
                      out_dir=out_dir, monitor="panel", **kwargs)


def _launch(run: TrainingRun, monitor, background, replace=False, thresholds=None, reserve=None, announce=()):
    """Claim the kernel's run slot, then (only then) reserve the run folder and say what happens; attach the
    monitor and train."""
    from .monitor import attach

    run.judge.thresholds = thresholds  # the verdict is computed by the run itself, with or without a display
    try:
        # a run of another recipe waits for the active one (Run All); a re-run cell of the active one is refused
        run_guard.claim(run, replace=replace, wait=True)
    except RunError:
        _show_active(monitor)
        raise
    try:
        if reserve is not None:
            run.out_dir = Path(reserve())
    except BaseException:
        run_guard.release(run)
        raise
    for line in announce:
        print(line)
    display_mode = attach(run, mode=monitor if monitor else "none", thresholds=thresholds, start_next=start_next)
    if background is None:
        background = display_mode == "panel"
    if background:
        return run.start()
    return run.run()


def _build(recipe: Recipe, data, preset, weights, device, image_size, synthetic, seed, meta, resumed=(None, {})):
    """The recipe's model for this data: its preset (CPU-sized on a CPU), image size, anchors fitted to the
    boxes; returns (model, preset, meta with what load_model needs to rebuild it). ``resumed``: (preset, build
    options) of the checkpoint a resume continues (resumed_shape): the same preset is built in its shape."""
    if image_size is None and data.tiles is not None:  # tiles go in at native resolution: no resize
        image_size = (data.tiles.size, data.tiles.size)
    preset, image_size = _pick_preset(recipe, preset, data.synthetic, device, image_size,
                                      data.train_loader.dataset)
    size = {}
    if image_size is not None:
        size = {"min_size": int(min(image_size) if isinstance(image_size, (tuple, list)) else image_size),
                "max_size": int(max(image_size) if isinstance(image_size, (tuple, list)) else image_size)}
    elif data.synthetic:
        side = (synthetic or {}).get("image_size", (256, 256))
        size = {"min_size": min(side), "max_size": max(side)}
    shape = resumed[1] if resumed[0] == preset else {}
    torch.manual_seed(seed)
    model = build_model(preset, data.num_classes, weights=weights, **size, **shape)
    meta = {**(meta or {}), "preset": preset, "min_size": size.get("min_size"), "max_size": size.get("max_size")}
    if recipe.data_anchors:
        fitted = _anchors_for(model, data.train_loader.dataset)
        if fitted is not None and fitted.changed:
            torch.manual_seed(seed)
            model = build_model(preset, data.num_classes, weights=weights, anchor_sizes=fitted.sizes,
                                aspect_ratios=fitted.ratios, **size, **shape)
            meta.update(anchor_sizes=[list(x) for x in fitted.sizes], aspect_ratios=[list(x) for x in fitted.ratios])
        if fitted is not None:
            meta["anchor_coverage"] = [round(fitted.coverage_before, 4), round(fitted.coverage_after, 4)]
    _apply_settings(recipe, model, meta)
    return model, preset, meta


def build_recipe_model(recipe: Recipe | str, data, *, preset: str | None = None, weights="DEFAULT", device=None,
                       image_size=None, seed: int = 0, meta: dict | None = None):
    """The model ``recipe`` trains on ``data`` (what :func:`nbdetect.inputs.prepare_data` returns), built as
    run_recipe builds it: its preset (the CPU-sized one on a CPU), image size, anchors fitted to the boxes, the
    recipe's anchor matching. Returns (model, preset, meta with what load_model needs to rebuild it)."""
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    device = torch.device(device) if device is not None else default_device()
    return _build(recipe, data, preset, weights, device, image_size, None, seed, meta or {})


def recipe_function(recipe: Recipe | str):
    """``nbdetect.<recipe name>``: the cell function of a registered recipe (train, val, **options) -> run, as
    alternative_1 is for its record; a recipe added with recipes.register() is called by its name like the
    built-in ones (its ready cell does)."""
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe

    def train(train=None, val=None, **options) -> TrainingRun:
        return run_recipe(recipe, train, val, **options)

    train.__name__ = train.__qualname__ = recipe.name
    train.__doc__ = f"{recipe.title}: {recipe.how}. Arguments as nbdetect.alternative_1."
    return train


def _apply_settings(recipe: Recipe, model, meta: dict, yours: bool = False) -> None:
    """The recipe's MODEL_SETTINGS on ``model`` (a setting the recipe leaves off, or that does not apply to the
    model's family, is skipped), each recorded in ``meta``; a model of the user's that had another value gets
    one line per change."""
    for setting in MODEL_SETTINGS:
        given = getattr(recipe, setting.field)
        if not given:
            continue
        value = setting.value(given)
        before = setting.apply(model, value)
        if before is None:
            continue
        meta[setting.field] = list(value) if isinstance(value, tuple) else value
        if yours and before != value:
            print("nbdetect: " + setting.told(recipe.short_title or recipe.name, family_title(model), value, before))


_RUN_OPTIONS = ("train", "val", "num_classes", "class_names", "model", "preset", "weights", "epochs", "batch_size",
                "lr", "label_base", "device", "out_dir", "resume", "monitor", "background", "image_size",
                "num_workers", "eval_map_every", "seed", "amp", "synthetic", "optimizer", "meta", "callbacks",
                "replace", "thresholds", "exist_ok", "verify_data", "threads", "devices", "sync_bn", "tiles")
#: Recipe fields a call may override (``warmup_epochs=2``); the rest describe the recipe itself.
#: Every model setting (models.MODEL_SETTINGS) is one as well.
_RECIPE_OPTIONS = ("warmup_epochs", "min_lr", "weight_decay", "momentum", "grad_clip", "milestones", "gamma",
                   "decision_epoch", "augment", "ema", "data_anchors", "schedule",
                   *(setting.field for setting in MODEL_SETTINGS))


def known_options(extra=()) -> tuple:
    return (*_RUN_OPTIONS, *_RECIPE_OPTIONS, *extra)


def _check_data_argument(value, name: str):
    """``train`` / ``val``: None, a path, a Dataset, a DataLoader, or a sequence of samples."""
    import os

    from torch.utils.data import DataLoader

    if value is None or isinstance(value, (str, os.PathLike)) or isinstance(value, DataLoader):
        if isinstance(value, DataLoader) and value.batch_size is None and value.batch_sampler is None:
            raise InputError(f"{name} is a DataLoader with batch_size=None: it yields single samples, not batches",
                             where=name, fix="pass the Dataset itself (nbdetect builds the loader), or "
                                             "DataLoader(dataset, batch_size=4, collate_fn=lambda b: tuple(zip(*b)))")
        return
    if isinstance(value, (dict, bytes, int, float, bool)) or not (hasattr(value, "__getitem__")
                                                                   and hasattr(value, "__len__")):
        raise InputError(f"{name} is a {type(value).__name__}: not a dataset", where=name,
                         fix="pass a Dataset yielding (image, target), a DataLoader, a list of samples, a dataset "
                             "path, or None for the synthetic demo data")


#: The public name of the data-argument check (find_lr checks its ``train`` with it).
check_data_argument = _check_data_argument


def check_run_arguments(recipe: Recipe, values: dict, overrides: dict, say: bool = True) -> dict:
    """Every argument of a training call checked (and coerced) before anything is loaded, built or created."""
    from . import arguments

    arguments.check_keywords(recipe.name, overrides, known_options())
    for name in ("train", "val"):
        if name in values:
            _check_data_argument(values[name], name)
    values = arguments.check({**values, **overrides}, say=say)
    lr = values.get("lr")
    if isinstance(lr, str) and (recipe.optimizer == "keep" or values.get("optimizer") is not None):
        raise InputError(f"lr={lr!r}: 'auto' is only for a recipe that builds its own optimizer", where="lr",
                         fix="pass lr='auto' to alternative_1/2 (it runs nbdetect.find_lr first), or a number such "
                             "as lr=1e-4")
    names, k = values.get("class_names"), values.get("num_classes")
    if names is not None and k is not None and len(names) != k:
        raise InputError(f"class_names has {len(names)} names but num_classes={k}", where="class_names",
                         fix=f"give one name per class ({k}), or leave class_names out")
    if values.get("resume") and values.get("exist_ok"):
        raise InputError("resume and exist_ok=True together: resume continues a run, exist_ok starts a new one "
                         "over an old folder", where="resume, exist_ok", fix="pass one of them")
    return values


def refuse_rerun(name: str, replace: bool, monitor=True) -> None:
    """A re-run cell of the recipe still training is refused before anything is loaded or a folder chosen."""
    if replace or not any(run_guard.name_of(r) == name for r in run_guard.active_runs()):
        return
    from types import SimpleNamespace

    probe = SimpleNamespace(recipe=SimpleNamespace(name=name), status="pending", is_active=False)
    try:
        run_guard.claim(probe, replace=False, wait=False)  # raises the RunError naming the active run
    except RunError:
        _show_active(monitor)
        raise
    run_guard.release(probe)  # (it stopped meanwhile)


def _show_active(monitor) -> None:
    active = run_guard.active_run()  # the re-run cell's output lost that run's panel: show it here again
    if active is not None and getattr(getattr(active, "monitor", None), "widget", None) is not None and monitor:
        from IPython.display import display

        display(active.monitor.widget)


def resumed_checkpoint(resume, out_dir, name) -> dict | None:
    """The checkpoint ``resume`` would continue, read once (None: not resuming, or nothing there: run_recipe
    says so in its own words)."""
    if not resume:
        return None
    try:
        ckpt = Path(resume) if isinstance(resume, (str, Path)) else run_dirs.choose(out_dir, name, resume=True) / "last.pt"
    except Exception:  # noqa: BLE001
        return None
    if not ckpt.is_file():
        return None
    from .run_state import read_checkpoint

    return read_checkpoint(ckpt)


def resumed_tiles(tiles, saved: dict | None):
    """The tile config a run trains on: ``tiles`` as given; on resume the checkpoint's (the same tiles as before),
    refused when the call asks for other tiles."""
    from .data.tiles import TileConfig

    if saved is None:
        return tiles
    before = (saved.get("meta") or {}).get("tiles")
    before = TileConfig.from_summary(before) if before else None
    if tiles is not None and tiles != before:
        raise InputError(f"resume continues a run trained on {before.describe() if before else 'whole frames'}, "
                         f"not tiles={tiles.size}", where="tiles",
                         fix="leave tiles out when resuming (the checkpoint's are used), or start a new run")
    return before


def resumed_shape(saved: dict | None) -> tuple[str | None, dict]:
    """(the checkpoint's preset, the build options its weights imply: a tiny model of an earlier shape is
    rebuilt in that shape so that it continues; families.Family.rebuild_options). (None, {}) when not resuming."""
    preset = ((saved or {}).get("meta") or {}).get("preset")
    weights = (saved or {}).get("model")
    return preset, families.rebuild_options(preset, weights) if isinstance(weights, dict) else {}


@public
def run_recipe(recipe: Recipe | str, train=None, val=None, *, num_classes=None, class_names=None, model=None,
               preset=None, weights="DEFAULT", epochs=None, batch_size=None, lr=None, label_base=1, device=None,
               out_dir=None, resume=False, monitor="auto", background=None, image_size=None, num_workers=0,
               eval_map_every=1, seed=0, amp=True, synthetic=None, optimizer=None, meta=None, callbacks=(),
               replace=False, thresholds=None, exist_ok=False, verify_data=True, threads=None, devices=1,
               sync_bn=False, tiles=None, announce=(), **overrides) -> TrainingRun:
    """Train ``recipe`` on the given data; see :func:`alternative_1` for the arguments.

    Every argument is checked first (nbdetect.arguments): a refusal comes before any data is loaded, any line
    announced or any run folder chosen; the folder is reserved only once the run may start."""
    from . import distributed

    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    v = check_run_arguments(recipe, dict(
        train=train, val=val, num_classes=num_classes, class_names=class_names, model=model, preset=preset,
        weights=weights, epochs=epochs, batch_size=batch_size, lr=lr, label_base=label_base, device=device,
        out_dir=out_dir, resume=resume, monitor=monitor, background=background, image_size=image_size,
        num_workers=num_workers, eval_map_every=eval_map_every, seed=seed, amp=amp, optimizer=optimizer,
        replace=replace, thresholds=thresholds, exist_ok=exist_ok, verify_data=verify_data, threads=threads,
        devices=devices, sync_bn=sync_bn, tiles=tiles, synthetic=synthetic, meta=meta, callbacks=callbacks),
        overrides)
    (num_classes, class_names, model, preset, weights, epochs, batch_size, lr, label_base, device, out_dir, resume,
     monitor, image_size, num_workers, eval_map_every, seed, devices, threads, synthetic, meta, callbacks) = (
        v[k] for k in ("num_classes", "class_names", "model", "preset", "weights", "epochs", "batch_size", "lr",
                       "label_base", "device", "out_dir", "resume", "monitor", "image_size", "num_workers",
                       "eval_map_every", "seed", "devices", "threads", "synthetic", "meta", "callbacks"))
    saved = resumed_checkpoint(resume, out_dir, recipe.name)
    tiles = resumed_tiles(v["tiles"], saved)
    overrides = {k: v[k] for k in overrides}
    refuse_rerun(recipe.name, replace, monitor)
    auto_lr = isinstance(lr, str)
    lr = None if auto_lr else lr
    if epochs is not None:
        recipe = recipe.scaled(epochs)
    changes = {k: v for k, v in {"lr": lr, "batch_size": batch_size, **overrides}.items() if v is not None}
    recipe = recipe.replace(**changes) if changes else recipe
    device = torch.device(device) if device is not None else default_device()
    group = distributed.from_env()  # a process of a torchrun job: it is one of the devices
    devices = distributed.check_devices(group.world if group is not None else devices, device.type,
                                        recipe.batch_size, sync_bn)
    if num_classes is None and model is not None:
        num_classes = num_classes_of(model)
    data = prepare_data(train, val, num_classes=num_classes, class_names=class_names, label_base=label_base,
                        batch_size=recipe.batch_size, seed=seed, num_workers=num_workers, synthetic=synthetic,
                        validate=verify_data, augment=recipe.augment, tiles=tiles)
    for w in data.warnings[:5]:
        print(f"nbdetect warning: {w}")
    tiled = tiled_of(data.train_loader)
    if tiled is not None:  # recorded for the panel, diagnose, resume and make_submission
        meta = {**(meta or {}), "tiles": tiled.summary()}
        print(f"nbdetect: training on {tiled.describe()}; mAP and make_submission predict full frames by "
              f"{tiled.cfg.size}-px slices")
    if model is None:
        model, preset, meta = _build(recipe, data, preset, weights, device, image_size, synthetic, seed, meta,
                                     resumed_shape(saved))
    else:
        preset = preset or f"your {family_of(model)}"
        meta = {**(meta or {}), "preset": preset}
        _apply_settings(recipe, model, meta, yours=True)
    recipe = recipe.replace(preset=preset)
    meta.update(num_classes=data.num_classes, class_names=data.class_names, synthetic=data.synthetic)
    if auto_lr:
        recipe = _auto_lr(recipe, model, data.train_loader, device, meta)
    ckpt, later = None, list(announce)
    if resume:
        folder = run_dirs.choose(out_dir, recipe.name, resume=resume)  # (resuming never creates a folder)
        ckpt = Path(resume) if isinstance(resume, (str, Path)) else folder / "last.pt"
        if ckpt.exists():
            out_dir = folder
        else:  # only resume=True reaches here: an explicit path that does not exist was refused above
            later.append(f"nbdetect: resume=True: no last.pt to continue from "
                         f"({run_dirs.describe_resume_miss(ckpt.parent)}); starting from scratch, as a new run")
            ckpt = None
    reserve = None
    if ckpt is None:
        planned, exist = out_dir, exist_ok
        out_dir = run_dirs.choose(planned, recipe.name, exist_ok=exist, dry=True)

        def reserve():
            return run_dirs.choose(planned, recipe.name, exist_ok=exist)
    if devices > 1:
        meta["devices"] = devices
    run = TrainingRun(model, data.train_loader, data.val_loader, recipe=recipe, optimizer=optimizer, device=device,
                      out_dir=out_dir, amp=amp, eval_map_every=eval_map_every, meta=meta,
                      callbacks=callbacks, threads=threads, devices=devices, group=group, sync_bn=sync_bn)
    if ckpt is not None:
        run.resume_from(ckpt)
        later.append(f"nbdetect: resuming from {ckpt} at epoch {run.epoch + 1}, iteration {run.iteration}")
    return _launch(run, monitor, background, replace=replace, thresholds=thresholds, reserve=reserve,
                   announce=later)


@public
def alternative_1(train=None, val=None, *, num_classes=None, class_names=None, model=None, preset=None,
                  weights="DEFAULT", epochs=50, batch_size=4, lr=5e-4, label_base=1, device=None,
                  out_dir=None, resume=False, monitor="auto", background=None,
                  **overrides) -> TrainingRun:
    """Alternative 1: RetinaNet, AdamW, LR 5e-4 with linear warmup then cosine to 1e-6, gradient clipping.

    train, val: a Dataset yielding (image, target), a DataLoader, a dataset path, or None for the
        embedded synthetic traffic-sign data.
    num_classes: number of real classes K (labels 1..K; ``label_base=0`` for 0-based labels).
    preset: model preset (default: the recipe's RetinaNet R50-FPN on a GPU; on a CPU its tiny CPU-sized model,
        at 480x800 px on your data, or your images' own size when they are smaller: never upscaled). weights: "DEFAULT" (COCO-pretrained, offline fallback), None, or a file.
    image_size: (short side, long side) the model resizes images to, or one int (default: the preset's).
    out_dir: where checkpoints and history go (default ``nbdetect_runs/<recipe name>``, then ``-2``, ``-3``...
        for later runs: a run never writes into another run's folder).
    resume: True to continue the latest run folder of this recipe (its ``last.pt``), or a checkpoint path.
    lr: the peak learning rate, or "auto" to run an LR range test first (nbdetect.find_lr) and use its suggestion.
    threads: torch CPU threads while training (default on a CPU: one fewer than the usable cores, at least 1;
        on a GPU torch's own); shown next to images/s.
    devices: training processes (default 1). On GPUs one per GPU (DDP over NCCL); on a CPU N processes (gloo).
        The batch_size is split between them (it must be divisible by devices), so the LR schedule and the
        checkpoints are those of one process and a run resumes on any number of them. From a notebook call it
        before anything uses the GPU in the kernel (the processes are forked); from a script use torchrun.
        sync_bn=True (GPUs) computes BatchNorm statistics over the whole batch.
    match_iou: (foreground, background) IoU at which RetinaNet's anchors are matched to boxes while training
        (default (0.3, 0.2): more positives for small signs than torchvision's 0.5/0.4; on GTSDB tiles ahead of
        0.4/0.3 in three seeds on mAP@.5:.95, README); False keeps the model's.
    naming_loss: weight of a cross-entropy among the classes on RetinaNet's anchors matched to a box, beside its
        focal loss (default 1.0: small signs are named, not only found; nbdetect.losses); False: without it.
    box_loss: RetinaNet's box regression loss: "giou" (torchvision's RetinaNet v2 loss), "l1", "smooth_l1",
        "diou" or "ciou"; default (False): the model's (L1 on the box deltas). On GTSDB tiles GIoU was ahead at 6
        epochs and behind at 12 (README).
    box_weight: the box regression losses times this (e.g. 2.0; default False: as the model computes them).
        Predictions are unchanged. On GTSDB tiles at 12 epochs (one run each) x2 and x4 scored below the
        default's three seeds (README), so it is not a default.
    iou_scores: True trains RetinaNet's class scores against the IoU of the box each matched anchor predicts
        (the quality focal loss of Generalized Focal Loss), so a well-placed box outscores a loose one on the same
        sign; default False: torchvision's focal loss against 1. Predictions and checkpoints are unchanged. On
        GTSDB tiles at 12 epochs (seeds 0 and 1) it scored mAP@.5 0.358 and 0.366 against the default's 0.455
        and 0.481, mAP@.5:.95 0.204 and 0.206 against 0.259 and 0.282 (README), so it is not a default.
    box_voting: predict with RetinaNet's kept boxes each moved to the score-weighted mean of its class's
        candidates overlapping it at this IoU (default 0.6; the same boxes and scores as its NMS keeps). On the
        GTSDB validation tiles it took mAP@.5:.95 from 0.466 to 0.489 at 12 epochs and 0.239 to 0.259 at 6, the
        same checkpoints; on the synthetic demo data it cost 0.006 (README). Training and the weights are
        unchanged; False: the model's NMS.
    exist_ok: write into ``out_dir`` even if it holds an earlier run (its files are replaced).
    verify_data: check every sample before training (decodes each image once: truncated files, bad boxes and
        labels are named before epoch 1; see the README for its cost); False skips it for huge datasets.
    monitor: "auto" (live panel in a notebook, text elsewhere), "panel", "text" or False.
    background: train in a background thread (default: when the panel is shown).
    replace: stop a run still active in this kernel (checkpoint saved) instead of waiting for it (a run of
        another recipe) or refusing to start (a re-run of the same recipe while it trains).
    thresholds: nbdetect.verdict.UserThresholds, the guide's numbers in your own loss convention.
    tiles: train on square tiles cut at native resolution from your full frames (any data above): a tile size
        such as 320, or a dict {"size": 320, "overlap": 0.25, "background": 0.2, "seed": 0, "min_visible": 0.6}.
        Boxes are clipped and kept when mostly inside; ``background`` is the share of tiles without objects. The
        model takes tiles unresized; the per-epoch mAP and make_submission predict whole frames by overlapping
        slices, merged, in the frames' own pixels. A resumed run uses the checkpoint's tiles.
    """
    return run_recipe(ALTERNATIVE_1, train, val, num_classes=num_classes, class_names=class_names, model=model,
                      preset=preset, weights=weights, epochs=epochs, batch_size=batch_size, lr=lr,
                      label_base=label_base, device=device, out_dir=out_dir, resume=resume, monitor=monitor,
                      background=background, **overrides)


@public
def alternative_2(train=None, val=None, *, num_classes=None, class_names=None, model=None, preset=None,
                  weights="DEFAULT", epochs=40, batch_size=4, lr=None, label_base=1, device=None,
                  out_dir=None, resume=False, monitor="auto", background=None,
                  **overrides) -> TrainingRun:
    """Alternative 2: Faster R-CNN R50-FPN, SGD 0.005 (torchvision's 0.02 per 16 images, scaled to 4),
    warmup + cosine, gradient clipping, 40 epochs. Arguments as :func:`alternative_1`."""
    return run_recipe(ALTERNATIVE_2, train, val, num_classes=num_classes, class_names=class_names, model=model,
                      preset=preset, weights=weights, epochs=epochs, batch_size=batch_size, lr=lr,
                      label_base=label_base, device=device, out_dir=out_dir, resume=resume, monitor=monitor,
                      background=background, **overrides)


@public
def seed_multistep(train=None, val=None, *, epochs=60, out_dir=None, **kwargs):
    """The student's failing configuration (RetinaNet, AdamW 2e-4, MultiStepLR [30, 45] x0.1), for comparison."""
    return run_recipe(SEED_MULTISTEP, train, val, epochs=epochs, out_dir=out_dir, **kwargs)


def raise_lr(optimizer: torch.optim.Optimizer, lr: float, scheduler=None) -> list[float]:
    """Set every param group's LR to ``lr`` (and the scheduler's base LRs); returns the old LRs."""
    from . import arguments

    arguments.check_one("scheduler", scheduler)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InputError(f"lr={lr!r} is not a positive number", where="lr",
                         fix="pass the new learning rate as a number, e.g. lr=1e-4")
    old = [g["lr"] for g in optimizer.param_groups]
    for g in optimizer.param_groups:
        g["lr"] = lr
        g["initial_lr"] = lr
    if scheduler is not None and hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [lr] * len(optimizer.param_groups)
    return old


@public
def alternative_3(optimizer, model, train, val=None, *, scheduler=None, lr=1e-4, epochs=10, start_epoch=None,
                  previous_loss=None,
                  num_classes=None, class_names=None, label_base=1, device=None,
                  out_dir=None, monitor="auto", background=None, **overrides) -> TrainingRun:
    """Alternative 3: raise the LR of your live optimizer and keep training your model.

    The guide's quick test: the optimizer keeps its state (momentum, Adam moments); its LR is set to ``lr``
    and held constant for ``epochs`` epochs (your scheduler is not stepped meanwhile; its base LRs are set to
    ``lr`` so stepping it later starts from there). ``start_epoch`` (e.g. 41) only labels the epochs.
    The run is judged against the loss before the change: ``previous_loss`` (your last validation loss, on
    nbdetect's per-batch scale) or, when not given, the validation loss measured before the first step.
    """
    from . import arguments
    from .errors import NbdetectError

    if optimizer is None or model is None:
        missing = "optimizer" if optimizer is None else "model"
        raise InputError(f"{ALTERNATIVE_3.name} continues an existing training, but {missing} is None",
                         where=missing, fix="pass the optimizer and the model you have been training "
                                            "(in an AS4 notebook: optimizer_v2 and model_v2); after a kernel restart "
                                            "re-run the cells that create them")
    arguments.check_keywords(ALTERNATIVE_3.name, overrides, known_options(("scheduler", "start_epoch", "previous_loss")))
    v = arguments.check({"optimizer": optimizer, "model": model, "lr": lr, "epochs": epochs, "start_epoch": start_epoch,
                         "previous_loss": previous_loss})
    lr, epochs = v["lr"], v["epochs"]
    if lr is None or isinstance(lr, str):
        raise InputError(f"lr={lr!r} is not a positive number", where="lr",
                         fix="pass the new learning rate as a number, e.g. lr=1e-4")
    if epochs is None:
        raise InputError("epochs=None: Alternative 3 trains a given number of epochs", where="epochs",
                         fix="e.g. epochs=10")
    owned = {id(p) for p in model.parameters()}
    if not any(id(p) in owned for g in optimizer.param_groups for p in g["params"]):
        raise InputError("this optimizer does not hold any parameter of this model", where="optimizer, model",
                         fix="pass the optimizer that was created from this model's parameters (the pair you "
                             "trained with)")
    if scheduler is not None and getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise InputError("this scheduler belongs to another optimizer", where="scheduler",
                         fix="pass the scheduler created from this optimizer, or leave scheduler out")
    # the whole call is checked before the optimizer is touched; a refusal later on (the data) puts it back
    check_run_arguments(ALTERNATIVE_3, {"train": train, "val": val, "num_classes": num_classes,
                                        "class_names": class_names, "label_base": label_base, "device": device,
                                        "out_dir": out_dir, "monitor": monitor, "background": background},
                        overrides, say=False)  # (run_recipe says)
    refuse_rerun(ALTERNATIVE_3.name, bool(overrides.get("replace")), monitor)
    saved = [{k: g[k] for k in ("lr", "initial_lr") if k in g} for g in optimizer.param_groups]
    saved_base = list(getattr(scheduler, "base_lrs", []) or [])
    old = raise_lr(optimizer, lr, scheduler)
    if device is None:
        device = next(model.parameters()).device
    recipe = ALTERNATIVE_3.replace(epochs=int(epochs), lr=float(lr))
    callbacks = [LossBefore(), *(overrides.pop("callbacks", None) or ())]
    try:
        return run_recipe(recipe, train, val, num_classes=num_classes, class_names=class_names, model=model,
                          label_base=label_base, device=device, out_dir=out_dir, monitor=monitor,
                          background=background, optimizer=optimizer, callbacks=callbacks,
                          meta={"start_epoch": start_epoch, "previous_lr": old[0], "reference_loss": previous_loss},
                          announce=[f"nbdetect: LR {lr_change(old[0], lr)} on {len(old)} param group(s); continuing "
                                    f"for {epochs} epochs"], **overrides)
    except NbdetectError:
        for group, before in zip(optimizer.param_groups, saved):
            group.pop("initial_lr", None)
            group.update(before)
        if scheduler is not None and saved_base:
            scheduler.base_lrs = saved_base
        raise


def lr_change(old: float, new: float) -> str:
    """'raised from 2e-05 to 0.0001 (5x)', 'lowered from ... to ...' or 'unchanged at ...': what really happened."""
    if math.isclose(old, new, rel_tol=1e-6):
        return f"unchanged at {new:.3g} (it already was {old:.3g})"
    verb = "raised" if new > old else "lowered"
    factor = new / old if new > old else old / new
    note = "" if new > old else "; the guide's Alternative 3 raises it, pass a higher lr= to test that"
    return f"{verb} from {old:.3g} to {new:.3g} ({factor:.3g}x){note}"
