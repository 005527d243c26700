"""Weighted accuracy (WA): the fraction of examples classified correctly (plain accuracy)."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Weighted accuracy (WA): the fraction of correct predictions, i.e. plain accuracy. Each class weighs
as much as it has examples, hence the name used in the speech-emotion literature, beside unweighted accuracy."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class indices.
    references (list of int): true class indices.
Returns:
    weighted_accuracy (float): fraction of correct predictions, in [0, 1].
"""


class WeightedAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions), np.asarray(references)
        return {"weighted_accuracy": float(np.mean(predictions == references)) if len(references) else 0.0}
