"""Classification metrics through 🤗 evaluate, from metric modules shipped in this package.

`evaluate.load("accuracy")` fetches its script from the Hub; loading our own modules by path works offline and
keeps each metric's name unambiguous: `weighted_accuracy` (plain accuracy), `unweighted_accuracy` (mean per-class
recall) and `macro_f1`. Each module is a single self-contained file, like evaluate's own metric scripts, so their
`MetricInfo` boilerplate repeats.
"""

from __future__ import annotations

from pathlib import Path

import evaluate

METRIC_NAMES = ("weighted_accuracy", "unweighted_accuracy", "macro_f1")
_MODULES = Path(__file__).parent


def load_metrics() -> evaluate.CombinedEvaluations:
    """All classification metrics, combined: call `.compute(predictions=..., references=...)`."""
    # keep_in_memory: no cache files, so several processes of one distributed run never contend for them.
    return evaluate.combine([evaluate.load(str(_MODULES / name), keep_in_memory=True) for name in METRIC_NAMES])


def compute_metrics(predictions, references) -> dict[str, float]:
    """Every metric of `METRIC_NAMES` for class-index `predictions` against `references`."""
    return load_metrics().compute(predictions=list(predictions), references=list(references))
