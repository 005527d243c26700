"""Unweighted accuracy (UA): the mean of the per-class recalls, so every class counts the same however rare."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Unweighted accuracy (UA, also called balanced accuracy or unweighted average recall): the recall of
each class, averaged over the classes present in the references. The speech-emotion literature reports it beside
weighted accuracy (WA, plain accuracy); on imbalanced sets the two differ."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class indices.
    references (list of int): true class indices.
Returns:
    unweighted_accuracy (float): mean per-class recall, in [0, 1].
"""


class UnweightedAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions), np.asarray(references)
        recalls = [np.mean(predictions[references == c] == c) for c in np.unique(references)]
        return {"unweighted_accuracy": float(np.mean(recalls)) if recalls else 0.0}
