"""A training run's checkpointable state: what last.pt holds and how a run resumes from it.

:class:`RunState` is the base class of :class:`nbdetect.trainer.TrainingRun` and holds only that: the
checkpoint's contents (``state_dict``/``load_state_dict``), writing it (``save``) and resuming (``resume_from``).
Hooks with state travel in the same checkpoint under ``"hooks"``, each under its ``state_key``. The run's
views (progress, the panel as a cell's value, ``repr``) are TrainingRun's own.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from . import schedules
from .callbacks import hook_states, load_hook_states, state_key
from .checkpoint import load_checkpoint, load_scheduler_state, save_checkpoint, scheduler_state
from .history import History
from .errors import CheckpointError, MissingError


def size_of(path) -> str:
    try:
        return f" ({Path(path).stat().st_size / 1e6:.1f} MB)"
    except (OSError, TypeError):
        return ""


def read_checkpoint(path, device="cpu") -> dict:
    """Load a checkpoint file, or say plainly why it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise MissingError(f"no checkpoint at {path}", where=str(path),
                           fix="check the run folder (nbdetect_runs/<recipe>), or start without resume")
    try:
        state = load_checkpoint(path, map_location=device)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"{path} cannot be read as a checkpoint ({type(exc).__name__}: {reason})",
                              where=str(path), fix="use last.pt or best.pt written by nbdetect; a file cut short "
                                                   "by a crash is never left behind by nbdetect's atomic saves") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not an nbdetect checkpoint", where=str(path),
                              fix="use last.pt (to resume) or best.pt (to predict) of an nbdetect run")
    return state


def _described(state: dict) -> str:
    meta = state.get("meta") or {}
    preset = meta.get("preset") or (state.get("recipe") or {}).get("preset") or "an unknown model"
    k = meta.get("num_classes")
    return f"{preset}" + (f" with {k} classes" if k is not None else "")


def check_model_state(model, state: dict, path) -> None:
    """A CheckpointError saying what the checkpoint holds when its weights do not fit ``model`` (another model
    family, preset or number of classes), instead of torch's list of missing and unexpected keys."""
    saved = state.get("model")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path} holds no model weights", where=str(path),
                              fix="use last.pt (to resume) or best.pt (to predict) of an nbdetect run")
    own = model.state_dict()
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    shapes = [k for k in own if k in saved and tuple(own[k].shape) != tuple(saved[k].shape)]
    if not (missing or unexpected or shapes):
        return
    from .models import family_of, num_classes_of

    mine = f"a {family_of(model)}" + (f" with {num_classes_of(model)} classes" if num_classes_of(model) else "")
    detail = (f"{len(missing)} weights missing, {len(unexpected)} unexpected, {len(shapes)} of another shape"
              + (f" (e.g. {shapes[0]})" if shapes else ""))
    raise CheckpointError(f"{path} holds {_described(state)}; this run builds {mine}: {detail}", where=str(path),
                          fix="resume with the same recipe, preset and data (num_classes) as that run, or start a "
                              "new run (resume=False)")


class RunState:
    """What a TrainingRun's checkpoint holds, how it is written and how a run resumes from it."""
    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"format": "nbdetect-checkpoint-1", "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": scheduler_state(self.scheduler),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None, "epoch": self.epoch,
                "iteration": self.iteration, "step": self.step, "steps_per_epoch": self.steps_per_epoch,
                "images_seen": self.images_seen, "epoch_acc": dict(self._epoch_acc),
                "history": self.history.to_dict(), "hooks": hook_states(self.callbacks),
                "recipe": dataclasses.asdict(self.recipe), "meta": self.meta, "rng": rng}

    def save(self, name: str = "last.pt") -> Path:
        if not self.strategy.is_global_zero:  # in a distributed run only rank 0 writes
            return self.last_checkpoint
        self.last_checkpoint = save_checkpoint(self.state_dict(), self.out_dir / name)
        return self.last_checkpoint

    def load_state_dict(self, state: dict, where: str = "the checkpoint") -> None:
        self.model.load_state_dict(state["model"])
        self._match_group_layout(state["optimizer"])
        self.optimizer.load_state_dict(state["optimizer"])
        load_scheduler_state(self.scheduler, state.get("scheduler"))
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.iteration, self.step = int(state["epoch"]), int(state["iteration"]), int(state["step"])
        self.images_seen = int(state.get("images_seen", 0))
        self._epoch_acc = dict(state.get("epoch_acc", self._epoch_acc))
        hooks = state.get("hooks", {})
        # a rank other than 0 has only the hooks every rank runs: the others' state is rank 0's
        load_hook_states(self.callbacks, hooks, where, warn=self.strategy.is_global_zero)
        if state_key(self.checkpointer) not in hooks and "Checkpointer" not in hooks:  # written before hook state
            self.checkpointer.load_state_dict({"best_metric": state.get("best_metric", math.inf)})
        self.history = History.from_dict(state["history"])
        self._restored_rng = state.get("rng")
        self.resumed = True
        if (self.out_dir / "best.pt").exists():
            self.best_checkpoint = self.out_dir / "best.pt"

    def _match_group_layout(self, saved: dict) -> None:
        """A checkpoint written before the recipes split biases and norms into their own group has one
        parameter group: continue it with one group (its optimizer state belongs to that layout)."""
        groups = saved.get("param_groups", [])
        if len(groups) == 1 and len(self.optimizer.param_groups) > 1 and self.recipe.optimizer != "keep":
            self.optimizer = self.recipe.make_optimizer(self.model.parameters())
            self.scheduler = schedules.to_torch(self.optimizer, self.schedule)

    def resume_from(self, path: str | Path) -> "RunState":
        """Load a checkpoint written by a run of the same recipe and data."""
        state = read_checkpoint(path, self.device)
        if state.get("format") != "nbdetect-checkpoint-1" or "optimizer" not in state:
            kind = ("an inference checkpoint (model weights and config, as best.pt holds)"
                    if state.get("format") == "nbdetect-model-1" else
                    f"not an nbdetect training checkpoint (keys: {', '.join(sorted(state)[:8])})")
            raise CheckpointError(f"{path} is {kind}; resuming needs the whole run state", where=str(path),
                                  fix=f"resume from last.pt in the same folder ({Path(path).parent / 'last.pt'}); "
                                      "use best.pt for predictions (nbdetect.make_submission)")
        check_model_state(self.model, state, path)
        saved = state.get("recipe", {})
        if saved.get("epochs") not in (None, self.epochs):
            raise CheckpointError(f"{path} was made for a {saved.get('epochs')}-epoch run, this run has "
                                  f"{self.epochs}", where="epochs",
                                  fix=f"pass epochs={saved.get('epochs')} to resume it, or start a new run folder")
        if state.get("steps_per_epoch", self.steps_per_epoch) != self.steps_per_epoch:
            raise CheckpointError(
                f"{path} does not match this data: it is at step {state['step']} (epoch {state['epoch']}, "
                f"iteration {state['iteration']}) of a loader with {state['steps_per_epoch']} batches per epoch, "
                f"but this loader has {self.steps_per_epoch}", where="train / batch_size",
                fix="resume with the same training data and batch_size, or start a new run folder")
        self.load_state_dict(state, str(path))
        self.last_checkpoint = Path(path)
        return self

    def _restore_rng(self) -> None:
        if self._restored_rng is not None:
            torch.set_rng_state(self._restored_rng["torch"].cpu())
            if "cuda" in self._restored_rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in self._restored_rng["cuda"]])
            self._restored_rng = None
