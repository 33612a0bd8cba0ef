"""Downstream evaluation as in the SatCLIP paper: offline tasks from real data (:mod:`.tasks`),
probes and splits (:mod:`.probes`), the feature sets compared (:mod:`.features`), the loop
(:mod:`.run`) and the report (:mod:`.report`).

May import :mod:`satclip.checkpoint`, :mod:`satclip.nn`, :mod:`satclip.functional` and below;
not :mod:`satclip.embedding`, :mod:`satclip.training` or :mod:`satclip.cli`.
"""

from .features import feature_sets
from .run import evaluate, summarise
from .tasks import TASKS, load_task

__all__ = ["TASKS", "evaluate", "feature_sets", "load_task", "summarise"]
