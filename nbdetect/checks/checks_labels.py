"""Label checks against the model's class count and nbdetect's 1..K convention."""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..families import get as get_family
from .report import Finding

CHECK = "labels"


def _declared_classes(scan) -> int | None:
    """The number of classes the dataset declares (``classes`` / ``class_names``), when it does."""
    ds = getattr(scan, "dataset", None)
    for name in ("class_names", "classes"):
        value = getattr(ds, name, None)
        if isinstance(value, (list, tuple)) and value:
            return len(value)
    return None


def check_labels(scan, model_info=None, num_classes: int | None = None, label_base: int = 1) -> list[Finding]:
    samples = scan.samples
    labels = np.concatenate([s.labels for s in samples]) if samples else np.zeros(0, dtype=np.int64)
    if labels.size == 0:
        return []
    if label_base == 0:
        labels = labels + 1
    counts = Counter(int(x) for x in labels)
    present = sorted(counts)
    lo, hi = present[0], present[-1]
    k_model = model_info.num_classes if model_info is not None else None
    k = k_model if k_model is not None else num_classes
    out: list[Finding] = []
    summary = f"{labels.size} labels, values {lo}..{hi}, {len(present)} distinct"
    if k is not None:
        summary += f"; the model has {k + 1} outputs -> valid labels 1..{k}"
    if num_classes is not None and k_model is not None and num_classes != k_model:
        wider = k_model > num_classes and hi <= k_model  # spare outputs: wasteful, harmless
        out.append(Finding(CHECK, "num_classes_mismatch", "warn" if wider else "fail",
                           f"num_classes={num_classes} but the model was built for {k_model} classes "
                           f"({k_model + 1} outputs)" + ("; the extra outputs are never trained (harmless, a little "
                                                         "wasteful)" if wider else ""), summary,
                           f"Build the model with num_classes={num_classes} (+1 output for background).", []))

    def where(pred) -> list[int]:
        return [s.index for s in samples if any(pred(int(x) + (1 if label_base == 0 else 0)) for x in s.labels)]

    if k is None:
        out.append(Finding(CHECK, "labels_unchecked", "skip", "label range not checked: num_classes unknown",
                           summary))
        return out
    if lo == 0:
        zero_idx = where(lambda x: x == 0)
        shifted = hi == k - 1 and counts.get(k, 0) == 0
        family = get_family(model_info.family) if model_info is not None else None
        if family is not None and family.background_output:  # output 0 trains as "nothing here"
            out.append(Finding(CHECK, "label_zero_background", "fail",
                               f"{counts[0]} boxes have label 0, which {family.title} treats as background: "
                               "those objects are trained as 'nothing here'",
                               summary + (f"; labels are 0..{k - 1}, i.e. 0-based (shifted down by one)" if shifted else ""),
                               "Use labels 1..K: add 1 to every label (nbdetect: pass label_base=0), and build the "
                               "model with num_classes=K (+1 background output).", zero_idx))
        elif shifted:
            out.append(Finding(CHECK, "labels_shifted", "fail",
                               f"labels are 0-based (0..{k - 1}); the model's class 0 is background and class {k} "
                               "is never trained", summary,
                               "Add 1 to every label (nbdetect: pass label_base=0).", zero_idx))
        else:
            out.append(Finding(CHECK, "label_zero", "fail", f"{counts[0]} boxes use label 0 (reserved for background)",
                               summary, "Use labels 1..K (pass label_base=0 if your data is 0-based).", zero_idx))
    if hi > k:
        high_idx = where(lambda x: x > k)
        complete = getattr(scan, "n_total", 0) and len(samples) >= scan.n_total
        declared = _declared_classes(scan)
        if counts.get(1, 0) == 0 and hi == k + 1 and complete and declared in (None, k):
            out.append(Finding(CHECK, "labels_shifted", "fail",
                               f"labels run 2..{k + 1}: shifted up by one (label {k + 1} is out of range, "
                               "label 1 is never used)", summary,
                               "Subtract 1 from every label so classes are 1..K.", high_idx))
        else:
            out.append(Finding(CHECK, "num_classes_too_small", "fail",
                               f"labels go up to {hi} but the model only knows classes 1..{k}",
                               summary + f"; {sum(v for c, v in counts.items() if c > k)} boxes out of range",
                               f"Build the model with num_classes={hi} (nbdetect adds the background output), "
                               "or remap the labels.", high_idx))
    if lo < 0:
        out.append(Finding(CHECK, "label_out_of_range", "fail", f"negative labels (min {lo})", summary,
                           "Labels must be integers 1..K.", where(lambda x: x < 0)))
    if any(f.status == "fail" for f in out):
        return out
    never = [c for c in range(1, k + 1) if c not in counts]
    if never:
        out.append(Finding(CHECK, "class_never_present", "warn",
                           f"{len(never)} of {k} classes never appear in the data: {never[:15]}",
                           summary, "Check the label mapping; a class with no example cannot be learnt "
                                    "(and lowers mAP when evaluated).", []))
    cnt = [counts[c] for c in present if c >= 1]
    if len(cnt) >= 2 and max(cnt) / max(1, min(cnt)) >= 20:
        top = counts.most_common(1)[0]
        rare = [c for c in present if counts[c] == min(cnt)]
        out.append(Finding(CHECK, "class_imbalance", "warn",
                           f"heavy class imbalance: class {top[0]} has {top[1]} boxes, classes {rare[:10]} "
                           f"only {min(cnt)}", summary,
                           "Expect the rare classes to be learnt late or not at all; oversample images holding "
                           "them or merge rare classes if the task allows.", []))
    out.append(Finding(CHECK, "labels_ok", "pass", f"labels are within 1..{k} as the model expects", summary))
    return out


def run_labels(ctx) -> list[Finding]:
    """The "labels" check of the registry (nbdetect.checks.registry), on diagnose's shared context."""
    return check_labels(ctx.scan, ctx.info, ctx.num_classes, ctx.label_base)
