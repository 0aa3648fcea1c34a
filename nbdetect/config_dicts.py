"""A settings record from a dict of its fields (pure): the one place that refuses an unknown key, so every
option given as a dict (``tiles=``, ``augment=``) names the keys it takes in the same words."""
from __future__ import annotations

from dataclasses import fields


def record_from_dict(cls, value: dict):
    """``cls(**value)`` for a dataclass ``cls``; ValueError naming each unknown key and the known ones (the
    caller's argument check turns it into the argument's refusal)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - known, key=str)
    if unknown:
        raise ValueError(f"has unknown key(s) {', '.join(map(repr, unknown))} (keys: {', '.join(sorted(known))})")
    return cls(**value)
