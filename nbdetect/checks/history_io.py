"""diagnose()'s history input: the one History, read by :mod:`nbdetect.history_readers`.

Kept as the checks' import point: ``load_history`` is :func:`nbdetect.history_readers.read_history` and
``LossHistory`` is :class:`nbdetect.history.History` (there is no second history type).
"""
from __future__ import annotations

from ..history import History as LossHistory
from ..history_readers import HistoryError, read_history as load_history

__all__ = ["LossHistory", "load_history", "HistoryError"]
