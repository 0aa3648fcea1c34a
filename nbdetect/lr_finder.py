"""``nbdetect.find_lr()``: an LR range test on a detector, the model and optimizer restored afterwards.

The sweep raises the LR geometrically from ``start_lr`` to ``end_lr`` over ``num_iter`` training steps and
records the loss; :mod:`nbdetect.lr_range` reads the suggestions off the curve (or says why it cannot).
Nothing the user owns is changed: the weights, buffers and optimizer state are copied before the sweep and
loaded back after it (also when it fails or is interrupted), as are the RNG states.
"""
from __future__ import annotations

import base64
import copy
import html
import math
import time
from dataclasses import dataclass, field

import torch

from .arguments import public
from .lr_range import LRSuggestion, blown_up, suggest


@dataclass
class LRFinderResult:
    lrs: list
    losses: list
    suggestion: LRSuggestion
    seconds: float
    notes: list = field(default_factory=list)

    @property
    def lr(self) -> float | None:
        """The suggested LR (the valley), or None when the curve could not be read."""
        return self.suggestion.lr

    def summary(self) -> str:
        s = self.suggestion
        which = "the lowest loss, as the peak of a decaying schedule" if s.lr == s.bottom else "valley"
        head = (f"suggested LR {s.lr:.2g} ({which}; valley {s.valley:.2g}, steepest fall at {s.steepest:.2g})"
                if s.status == "ok" else f"no suggestion: {s.reason}")
        return f"LR range test, {len(self.losses)} steps in {self.seconds:.0f} s: {head}" + (
            f"; {s.reason}" if s.status == "ok" else "")

    def __repr__(self) -> str:
        return f"<LRFinderResult {self.summary()}>"

    def plot_png(self) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        import io

        fig = Figure(figsize=(6.0, 3.2))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.plot(self.lrs[:len(self.losses)], self.losses, color="tab:orange", alpha=0.3, lw=0.8, label="loss")
        s = self.suggestion
        lo, hi = s.kept
        if s.smoothed:
            ax.plot(self.lrs[lo:hi], s.smoothed, color="tab:orange", lw=1.6, label="smoothed")
            top = max(s.smoothed) * 1.3
            ax.set_ylim(min(s.smoothed) * 0.9 if min(s.smoothed) > 0 else None, top)
        for value, name, colour in ((s.lr, "suggested", "tab:green"), (s.valley, "valley", "tab:olive"),
                                    (s.steepest, "steepest", "tab:red")):
            if value:
                ax.axvline(value, color=colour, ls="--", lw=1.2, label=f"{name} {value:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log)", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        ax.set_title("LR range test" + ("" if s.status == "ok" else f": {s.status.replace('_', ' ')}"), fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.25)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        return buf.getvalue()

    def _repr_html_(self) -> str:
        png = base64.b64encode(self.plot_png()).decode()
        notes = "".join(f"<br><small>{html.escape(n)}</small>" for n in self.notes)
        return (f"<div class='nbdetect-find-lr'><b>{html.escape(self.summary())}</b>{notes}<br>"
                f"<img alt='LR range test' src='data:image/png;base64,{png}'></div>")


def _cycle(loader):
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            return


#: batches whose labels the sweep checks against the model's classes (find_lr skips the data check by default)
LABEL_CHECK_BATCHES = 3


def check_labels(targets, classes: int | None) -> None:
    """A DataError when a label of ``targets`` (shifted to 1..K) is outside 1..``classes`` (the model's real
    classes), the mistake a wrong ``label_base`` makes, instead of an IndexError inside the loss."""
    from .data.validate import label_range_error

    error = label_range_error(targets, classes, "a batch of find_lr")
    if error is not None:
        raise error


def sweep(model, optimizer, loader, device, *, start_lr=1e-6, end_lr=0.1, num_iter=200, grad_clip=10.0,
          blowup=4.0, stop_event=None) -> tuple[list, list]:
    """Train ``num_iter`` steps at geometrically rising LRs; returns (lrs, losses), cut at a blow-up.

    Changes ``model`` and ``optimizer``: :func:`find_lr` restores them."""
    from .engine import move_to
    from .models import num_classes_of

    classes = num_classes_of(model)
    model.train()
    lrs, losses = [], []
    factor = (end_lr / start_lr) ** (1 / max(num_iter - 1, 1))
    batches = _cycle(loader)
    for i in range(num_iter):
        if stop_event is not None and stop_event.is_set():
            break
        lr = start_lr * factor ** i
        for g in optimizer.param_groups:
            g["lr"] = lr
        try:
            images, targets = next(batches)
        except StopIteration:
            break
        if i < LABEL_CHECK_BATCHES:
            check_labels(targets, classes)
        images, targets = move_to(list(images), list(targets), device)
        loss = sum(model(images, targets).values())
        value = float(loss.detach())
        lrs.append(lr)
        losses.append(value)
        if blown_up(losses, blowup):
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or math.inf)
        optimizer.step()
    return lrs, losses


@public
def find_lr(model=None, train=None, *, optimizer=None, recipe="alternative_1", num_classes=None, preset=None,
            weights="DEFAULT", image_size=None, batch_size=None, start_lr=1e-6, end_lr=0.1, num_iter=200,
            device=None, label_base=1, verify_data=False, show=True) -> LRFinderResult:
    """LR range test: sweep the LR from ``start_lr`` to ``end_lr`` over ``num_iter`` steps and suggest one.

    model: your detector (None: the recipe's model, CPU-sized on a CPU, as ``alternative_1`` builds it).
    train: your training Dataset / DataLoader / path (None: the embedded demo data).
    optimizer: the optimizer to sweep with (None: the recipe's, e.g. AdamW for Alternative 1).
    The model and the optimizer are restored afterwards. Returns an :class:`LRFinderResult`: ``.lr`` is the
    suggestion (None with a reason when the curve is too short or too noisy), shown as a plot in a notebook.
    Use it as ``nbdetect.alternative_1(..., lr=result.lr)``, or pass ``lr="auto"`` to let the recipe run it.
    """
    from . import arguments
    from .alternatives import build_recipe_model, check_data_argument
    from .errors import InputError
    from .inputs import prepare_data
    from .models import default_device, num_classes_of
    from .recipes import Recipe, get_recipe

    if not isinstance(recipe, (str, Recipe)):
        raise InputError(f"recipe={recipe!r} is not a recipe", where="recipe",
                         fix="pass a recipe name, e.g. recipe='alternative_1', or a Recipe record")
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    check_data_argument(train, "train")
    v = arguments.check(dict(model=model, optimizer=optimizer, num_classes=num_classes, preset=preset, weights=weights,
                             image_size=image_size, batch_size=batch_size, start_lr=start_lr, end_lr=end_lr,
                             num_iter=num_iter, device=device, label_base=label_base, verify_data=verify_data,
                             show=show))
    (model, num_classes, preset, weights, image_size, batch_size, start_lr, end_lr, num_iter, device, label_base) = (
        v[k] for k in ("model", "num_classes", "preset", "weights", "image_size", "batch_size", "start_lr", "end_lr",
                       "num_iter", "device", "label_base"))
    if start_lr is None or end_lr is None or not (0 < start_lr < end_lr):
        raise InputError(f"start_lr={start_lr!r} must be positive and below end_lr={end_lr!r}",
                         where="start_lr, end_lr", fix="e.g. start_lr=1e-6, end_lr=0.1")
    from torch.utils.data import DataLoader

    device = torch.device(device) if device is not None else (
        next(model.parameters()).device if model is not None else default_device())
    if num_classes is None and model is not None:
        num_classes = num_classes_of(model)
    if model is not None and isinstance(train, DataLoader):  # a loader of prepared batches: used as it is
        loader = train
    else:
        data = prepare_data(train, None, num_classes=num_classes, label_base=label_base,
                            batch_size=batch_size or recipe.batch_size, validate=verify_data)
        loader = data.train_loader
    notes = []
    if model is None:  # the model the recipe would train on this data (CPU-sized on a CPU, anchors fitted)
        model, preset, meta = build_recipe_model(recipe, data, preset=preset, weights=weights, device=device,
                                                 image_size=image_size)
        notes.append(f"model: {preset}" + (f" at {meta['min_size']}x{meta['max_size']} px" if meta["min_size"] else ""))
    if optimizer is None:
        if recipe.optimizer == "keep":
            raise InputError(f"{recipe.name} keeps your optimizer", where="optimizer",
                             fix="pass optimizer= (the one you train with)")
        optimizer = recipe.make_optimizer(model)
        notes.append(f"optimizer: {recipe.optimizer} as in {recipe.short_title or recipe.name}")
    model.to(device)
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(optimizer.state_dict())
    rng = torch.get_rng_state()
    was_training = model.training
    t0 = time.perf_counter()
    try:
        lrs, losses = sweep(model, optimizer, loader, device, start_lr=start_lr, end_lr=end_lr,
                            num_iter=num_iter, grad_clip=recipe.grad_clip)
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_opt)
        torch.set_rng_state(rng)
        model.train(was_training)
    schedule = "constant" if recipe.schedule == "constant" else "decaying"
    result = LRFinderResult(lrs, losses, suggest(lrs, losses, schedule=schedule), time.perf_counter() - t0, notes)
    if show:
        print(f"nbdetect: {result.summary()}")
    return result
