"""diagnose(): why is this detection run not learning, and what to do about it (the guide's Step 2)."""
from .core import diagnose
from .history_io import LossHistory, load_history
from .lr_timeline import LRTimeline, reconstruct
from .report import Finding, Report

__all__ = ["diagnose", "Report", "Finding", "LossHistory", "load_history", "LRTimeline", "reconstruct"]
