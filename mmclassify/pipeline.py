"""The `"audio-text-classification"` transformers pipeline: `pipeline("audio-text-classification", model=...)`."""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .data.audio import AudioInput

TASK = "audio-text-classification"


class AudioTextClassificationPipeline(Pipeline):
    """Classify audio together with its text, with any model `AutoModelForSequenceClassification` loads for an
    mmclassify config.

    Example:

    ```python
    >>> import mmclassify  # registers the task
    >>> from transformers import pipeline
    >>> classify = pipeline("audio-text-classification", model="outputs/demo/fused")
    >>> classify("clip.wav", text="a low tone")
    [{'label': 'match', 'score': 0.97}, {'label': 'mismatch', 'score': 0.03}]
    >>> classify({"audio": "clip.wav", "text": None})  # audio only: the model answers from what it has
    ```

    Inputs: a clip (path, array with `sampling_rate=`, `{"array", "sampling_rate"}` dict) with `text=`, or a dict
    `{"audio": ..., "text": ...}`, or a list of either; `audio` or `text` may be None. `top_k` (default: every
    class) limits the answer to the most likely classes. For long recordings and batch files, use
    `mmclassify.inference.AudioTextClassifier`, which windows the audio and decodes in parallel workers.
    """

    _load_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False

    def _sanitize_parameters(
        self, text: str | None = None, sampling_rate: int | None = None, top_k: int | None = None, **kwargs
    ) -> tuple[dict, dict, dict]:
        preprocess = {}
        if text is not None:
            preprocess["text"] = text
        if sampling_rate is not None:
            preprocess["sampling_rate"] = sampling_rate
        return preprocess, {}, {"top_k": top_k} if top_k is not None else {}

    def preprocess(self, inputs: AudioInput | dict, text: str | None = None, sampling_rate: int | None = None):
        if isinstance(inputs, dict) and ("audio" in inputs or "text" in inputs):
            audio, text = inputs.get("audio"), inputs.get("text", text)
        else:
            audio = inputs
        config = self.model.config
        return self.processor(
            audio=[audio] if config.uses_audio else None,  # [None]: no audio for this pair
            text=[text] if config.uses_text else None,
            sampling_rate=sampling_rate,
        )

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.model(**model_inputs).logits}

    def postprocess(self, model_outputs: dict[str, torch.Tensor], top_k: int | None = None) -> list[dict[str, Any]]:
        probabilities = model_outputs["logits"][0].float().softmax(-1)
        top_k = min(top_k or len(probabilities), len(probabilities))
        scores, ids = probabilities.topk(top_k)
        return [
            {"label": self.model.config.id2label[int(i)], "score": float(s)}
            for s, i in zip(scores.tolist(), ids.tolist(), strict=True)
        ]


def register_pipeline() -> None:
    """Make `pipeline("audio-text-classification", ...)` build an `AudioTextClassificationPipeline`."""
    PIPELINE_REGISTRY.register_pipeline(
        TASK,
        pipeline_class=AudioTextClassificationPipeline,
        pt_model=AutoModelForSequenceClassification,
        type="multimodal",
    )
