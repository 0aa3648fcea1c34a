"""Image checks: type, value range, layout, normalisation applied twice."""
from __future__ import annotations

from .report import Finding

CHECK = "images"


def _problem_indices(scan, code) -> list[int]:
    return sorted({p.index for p in scan.problems if p.code == code and p.index >= 0})


def check_images(scan, model_info=None) -> list[Finding]:
    stats = scan.images
    if not stats:
        return []
    out: list[Finding] = []
    lo = min(s.min for s in stats)
    hi = max(s.max for s in stats)
    mean = sum(s.mean for s in stats) / len(stats)
    std = sum(s.std for s in stats) / len(stats)
    summary = (f"{len(stats)} images sampled: dtype {sorted({s.dtype for s in stats})}, "
               f"shape e.g. {list(stats[0].shape)}, values {lo:.3g}..{hi:.3g}, mean {mean:.3g}, std {std:.3g}")

    not_tensor = [s.index for s in stats if s.kind != "tensor" or not s.dtype.startswith("float")]
    if not_tensor:
        kinds = sorted({f"{s.kind} {s.dtype}" for s in stats if s.index in not_tensor})
        out.append(Finding(CHECK, "image_dtype", "fail",
                           f"images are {', '.join(kinds)}, not float32 tensors in [0, 1]",
                           summary, "Convert in the dataset: torchvision.transforms.functional.to_tensor(img) "
                           "(PIL/uint8 -> float 0-1), or T.ToImage() + T.ToDtype(torch.float32, scale=True).",
                           not_tensor))

    channel_last = [s.index for s in stats if len(s.shape) == 3 and s.shape[-1] in (1, 3, 4) and s.shape[0] not in (1, 3, 4)]
    bad_rank = [s.index for s in stats if len(s.shape) != 3] + _problem_indices(scan, "image_shape")
    if channel_last or bad_rank:
        idx = sorted(set(channel_last + bad_rank))
        what = "channels-last [H, W, C]" if channel_last else "not [3, H, W]"
        out.append(Finding(CHECK, "image_shape", "fail", f"images are {what}; torchvision detectors need [3, H, W]",
                           summary, "image = image.permute(2, 0, 1) (HWC -> CHW), or use to_tensor() on the PIL image.",
                           idx))

    floats = [s for s in stats if s.dtype.startswith("float") and s.kind == "tensor"]
    in_255 = [s.index for s in floats if s.max > 5.0]  # normalised images stay below ~2.7
    in_255 = sorted(set(in_255 + _problem_indices(scan, "image_range_255")))
    if in_255 and floats and len([s for s in floats if s.max > 5.0]) >= max(1, len(floats) // 2):
        norm = ""
        if model_info is not None and model_info.normalizes:
            norm = (f" The model's transform then subtracts mean {[round(m, 3) for m in model_info.image_mean]} and "
                    f"divides by std {[round(x, 3) for x in model_info.image_std]}, which assumes 0-1 input: "
                    f"its inputs reach ~{(hi - 0.4) / 0.225:.0f} instead of ~2.")
        out.append(Finding(CHECK, "image_range_255", "fail",
                           f"images are floats in 0-{hi:.0f}; the model expects 0-1",
                           summary + "." + norm,
                           "Divide by 255 in the dataset (image = image / 255.0), or build tensors with "
                           "torchvision.transforms.functional.to_tensor(), which scales to 0-1.", in_255))
        return out

    negative = [s for s in floats if s.min < -0.3]
    # A 0-1 image has no negative values: negatives mean a mean/std normalisation was applied.
    looks_standardized = negative and len(negative) >= max(1, len(floats) // 2)
    if looks_standardized:
        twice = model_info is not None and model_info.normalizes
        status = "fail" if twice else "warn"
        detail = ("the model's own transform (GeneralizedRCNNTransform) normalises again with mean "
                  f"{[round(m, 3) for m in model_info.image_mean]} / std {[round(x, 3) for x in model_info.image_std]}"
                  if twice else "a torchvision detector normalises internally")
        out.append(Finding(CHECK, "image_double_normalized", status,
                           "images are already normalised (negative values) and "
                           + ("normalised a second time by the model" if twice else "may be normalised twice"),
                           f"{summary}; {detail}.",
                           "Remove T.Normalize(...) from the dataset transforms: torchvision detection models "
                           "take 0-1 images and normalise them themselves.",
                           [s.index for s in negative]))
        return out
    if not out:
        out.append(Finding(CHECK, "images_ok", "pass", "images are float tensors [3, H, W] in 0-1", summary))
    return out


def run_images(ctx) -> list[Finding]:
    """The "images" check of the registry (nbdetect.checks.registry), on diagnose's shared context."""
    return check_images(ctx.scan, ctx.info)
