"""The training engine: a few plain functions over a torchvision detector.

* :func:`train_one_epoch` - forward/backward/step over a loader with gradient
  clipping, AMP on CUDA, a per-iteration LR scheduler, a stop check between
  iterations and a non-finite-loss guard that raises *before* the bad update.
* :func:`evaluate_loss` - validation loss without gradients and without
  updating BatchNorm running statistics.
* :func:`predict` - detections in original image coordinates.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; the model was not updated with it."""


@dataclass
class EpochResult:
    loss: float  # mean total loss over the iterations run
    components: dict = field(default_factory=dict)
    iterations: int = 0
    images: int = 0
    seconds: float = 0.0
    data_seconds: float = 0.0  # time spent waiting for batches
    stopped: bool = False  # left early because should_stop() said so


def move_to(images, targets, device):
    images = [img.to(device, non_blocking=True) for img in images]
    targets = [
        {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets
    ]
    return images, targets


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable,
    device: torch.device,
    *,
    scheduler=None,
    scaler: "torch.amp.GradScaler | None" = None,
    grad_clip: float | None = None,
    amp: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_iteration: Callable[[int, float, dict, int, float], None] | None = None,
    describe: Callable[[int], str] = lambda i: f"iteration {i}",
    start_iteration: int = 0,
    average: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> EpochResult:
    """Run one (possibly partial) epoch.

    ``on_iteration(iteration, loss, components, n_images, lr)`` is called after
    each optimizer step with the LR that step used. ``should_stop`` is checked before each iteration.
    ``average`` (a distributed run): the mean over the processes of the loss and its components, so every
    process logs the global batch's loss and a non-finite loss on one of them stops all of them here.
    """
    from .data.validate import label_range_error
    from .models import num_classes_of

    model.train()
    classes = num_classes_of(model)  # each batch's labels are checked against it before the model sees them
    result = EpochResult(loss=math.nan)
    totals: dict[str, float] = {}
    loss_sum = 0.0
    t_start = time.perf_counter()
    t_ready = t_start
    iteration = start_iteration
    for images, targets in batches:
        t_batch = time.perf_counter()
        result.data_seconds += t_batch - t_ready
        if should_stop():
            result.stopped = True
            break
        # a label outside 1..K (verify_data=False, a wrong label_base or num_classes): named before the model
        # trains on it (past K, torchvision's loss fails with a bare IndexError; 0, it trains the background)
        error = label_range_error(targets, classes, describe(iteration))
        if error is not None:
            raise error
        images, targets = move_to(images, targets, device)
        with _autocast(device, amp):
            loss_dict = model(images, targets)
            loss = sum(loss_dict.values())
        values = torch.stack([loss.detach().float(), *(v.detach().float() for v in loss_dict.values())]).cpu()
        if average is not None:
            values = average(values)
        loss_value = float(values[0])
        components = dict(zip(loss_dict, values[1:].tolist()))
        if not math.isfinite(loss_value):
            parts = ", ".join(f"{k}={v:.4g}" for k, v in components.items())
            raise NonFiniteLossError(f"the loss became {loss_value} at {describe(iteration)} ({parts})")
        lr_used = optimizer.param_groups[0]["lr"]
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            if grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            # the norm is computed anyway for clipping; a NaN/Inf gradient with a finite loss must not reach
            # the weights either (the same guard as the loss, before the step)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or math.inf)
            if not math.isfinite(float(norm)):
                optimizer.zero_grad(set_to_none=True)
                raise NonFiniteLossError(f"the gradients became {float(norm)} at {describe(iteration)} although "
                                         f"the loss was finite ({loss_value:.4g})")
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        for k, v in components.items():
            totals[k] = totals.get(k, 0.0) + v
        loss_sum += loss_value
        result.iterations += 1
        result.images += len(images)
        if on_iteration is not None:
            on_iteration(iteration, loss_value, components, len(images), lr_used)
        iteration += 1
        t_ready = time.perf_counter()
    result.seconds = time.perf_counter() - t_start
    if result.iterations:
        result.loss = loss_sum / result.iterations
        result.components = {k: v / result.iterations for k, v in totals.items()}
    return result


@contextlib.contextmanager
def loss_mode(model: nn.Module):
    """Train mode (so torchvision detectors return losses) with BatchNorm frozen, no grads."""
    was_training = model.training
    model.train()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def evaluate_loss(model: nn.Module, batches: Iterable, device: torch.device, amp: bool = False,
                  gather: Callable[[object], list] | None = None) -> tuple[float, dict]:
    """Mean validation loss per image (and per component), without touching BN stats or grads.

    Note: torchvision samples anchors/proposals randomly when computing losses
    (Faster R-CNN); the global torch RNG state is preserved so that evaluating
    does not change what training does next.
    """
    rng = torch.get_rng_state()
    total, n, parts = 0.0, 0, {}
    with loss_mode(model):
        for images, targets in batches:
            images, targets = move_to(images, targets, device)
            with _autocast(device, amp):
                loss_dict = model(images, targets)
            bs = len(images)
            for k, v in loss_dict.items():
                parts[k] = parts.get(k, 0.0) + float(v) * bs
            total += float(sum(loss_dict.values())) * bs
            n += bs
    torch.set_rng_state(rng)
    if gather is not None:  # a distributed run: each process had its part of the images; the mean is over all
        parts_of_all = gather((total, n, parts))
        total, n = sum(t for t, _, _ in parts_of_all), sum(c for _, c, _ in parts_of_all)
        keys = dict.fromkeys(k for _, _, p in parts_of_all for k in p)
        parts = {k: sum(p.get(k, 0.0) for _, _, p in parts_of_all) for k in keys}
    if n == 0:
        return math.nan, {}
    return total / n, {k: v / n for k, v in parts.items()}


@contextlib.contextmanager
def native_resolution(model: nn.Module):
    """Inside it, a torchvision detector sees each image at its own size: its transform's resize (to
    ``min_size``/``max_size``) is skipped, normalisation and batching kept. A model trained on native-resolution
    tiles then predicts whole frames at the scale it learned, instead of shrunk to the tile size."""
    transform = getattr(model, "transform", None)
    if transform is None or not hasattr(transform, "resize"):
        yield model
        return
    transform.resize = lambda image, target=None: (image, target)  # an instance attribute over the method
    try:
        yield model
    finally:
        del transform.resize


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable, device: torch.device, amp: bool = False,
            score_threshold: float | None = None) -> list[dict]:
    """Detections for every image: ``{"image_id", "boxes", "scores", "labels"}`` (CPU tensors).

    Boxes are in the coordinates of the images as given (torchvision maps them
    back from its internal resize). ``score_threshold`` None keeps the model's
    own cut (torchvision: 0.05); a lower value lowers it for this call.
    """
    was_training = model.training
    model.eval()
    out = []
    holder = model.roi_heads if hasattr(model, "roi_heads") else model  # where torchvision keeps score_thresh
    internal = getattr(holder, "score_thresh", None)
    if score_threshold is None:
        score_threshold = 0.0
    elif internal is not None and score_threshold < internal:
        holder.score_thresh = score_threshold  # otherwise boxes under torchvision's default cut never reach us
    try:
        for images, targets in batches:
            images = [img.to(device, non_blocking=True) for img in images]
            with _autocast(device, amp):
                dets = model(images)
            for det, tgt in zip(dets, targets):
                keep = det["scores"] >= score_threshold
                image_id = _image_id(tgt)
                out.append(
                    {
                        "image_id": len(out) if image_id is None else image_id,
                        "boxes": det["boxes"][keep].float().cpu(),
                        "scores": det["scores"][keep].float().cpu(),
                        "labels": det["labels"][keep].cpu(),
                    }
                )
    finally:
        model.train(was_training)
        if internal is not None:
            holder.score_thresh = internal
    return out


def _image_id(target) -> int | str:
    value = target.get("image_id") if isinstance(target, dict) else None
    if torch.is_tensor(value):
        return int(value.reshape(-1)[0])
    return value
