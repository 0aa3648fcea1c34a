"""Surface nbdetect.data.validate Problems that no diagnose check already explains."""
from __future__ import annotations

from collections import defaultdict

from .report import Finding

# validate's code -> the diagnose check family that explains it
FAMILY = {
    "image_not_float": "images", "image_range_255": "images", "image_shape": "images",
    "box_not_xyxy": "boxes", "box_normalized": "boxes", "box_outside_image": "boxes", "box_degenerate": "boxes",
    "no_boxes": "boxes", "label_out_of_range": "labels", "label_zero": "labels", "num_classes_mismatch": "labels",
}


def uncovered(scan, findings: list[Finding]) -> list[Finding]:
    if scan is None or not scan.problems:
        return []
    explained = {f.check for f in findings if f.is_problem}
    by_code = defaultdict(list)
    for p in scan.problems:
        by_code[p.code].append(p)
    out = []
    for code, probs in by_code.items():
        family = FAMILY.get(code, "data")
        if family in explained:
            continue
        errors = [p for p in probs if p.severity == "error"]
        if not errors and code == "no_boxes":
            continue  # the box check reports empty images with its own threshold
        status = "fail" if errors else "warn"
        shown = "\n".join(p.message for p in (errors or probs)[:3])
        out.append(Finding(family, code, status, f"{len(probs)} samples fail validation: {code}", shown,
                           "See nbdetect.data.validate's message for each sample.",
                           sorted({p.index for p in probs if p.index >= 0})))
    return out


def unreadable(scan) -> list[Finding]:
    """Samples whose ``__getitem__`` raised while scanning."""
    if scan is None or not scan.errors:
        return []
    i, msg = scan.errors[0]
    return [Finding("data", "data_unreadable", "fail", f"{len(scan.errors)} samples could not be read",
                    f"sample {i}: {msg}", "Fix the dataset's __getitem__ for these samples.",
                    [e[0] for e in scan.errors])]


def run_readable(ctx) -> list[Finding]:
    """The "readable" check of the registry (nbdetect.checks.registry): samples that could not be read."""
    return unreadable(ctx.scan)


def run_validate(ctx) -> list[Finding]:
    """The "validate" check: validation problems no earlier check explained (it reads their findings)."""
    return uncovered(ctx.scan, ctx.findings)
