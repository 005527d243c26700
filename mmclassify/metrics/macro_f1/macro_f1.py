"""Macro-F1: the F1 score of each class, averaged over classes with equal weight."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Macro-F1: the harmonic mean of precision and recall computed for each class (one class against the
rest), then averaged over the classes that occur in the references or the predictions."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class indices.
    references (list of int): true class indices.
Returns:
    macro_f1 (float): mean per-class F1, in [0, 1].
"""


class MacroF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions), np.asarray(references)
        scores = []
        for c in np.union1d(np.unique(references), np.unique(predictions)):
            true_pos = np.sum((predictions == c) & (references == c))
            denominator = np.sum(predictions == c) + np.sum(references == c)
            scores.append(2 * true_pos / denominator if denominator else 0.0)
        return {"macro_f1": float(np.mean(scores)) if scores else 0.0}
