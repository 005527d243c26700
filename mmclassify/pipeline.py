"""The `"audio-text-classification"` transformers pipeline: `pipeline("audio-text-classification", model=...)`."""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForSequenceClassification
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.base import ChunkPipeline

from .data.audio import AudioInput, load_audio
from .long_audio import array_windows, model_window, window_starts

TASK = "audio-text-classification"


class AudioTextClassificationPipeline(ChunkPipeline):
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
    class) limits the answer to the most likely classes. A clip longer than the model's `max_duration` (default
    30 s) is classified in overlapping windows whose probabilities are averaged, as `AudioTextClassifier` does;
    the pipeline decodes the whole clip first, where `AudioTextClassifier` reads a long file one window at a time
    and decodes batch files in parallel workers.
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
        texts = [text] if config.uses_text else None
        if not config.uses_audio or audio is None:  # [None]: no audio for this pair
            yield {**self.processor(audio=[None] if config.uses_audio else None, text=texts), "is_last": True}
            return
        # One chunk per window, exactly as `AudioTextClassifier` cuts a decoded clip.
        rate = self.processor.sampling_rate
        waveform = load_audio(audio, rate, sampling_rate=sampling_rate)
        window = model_window(config)
        starts = window_starts(len(waveform) / rate, window)
        for number, clip in enumerate(array_windows(waveform, rate, window, starts), start=1):
            chunk = self.processor(audio=[{"array": clip, "sampling_rate": rate}], text=texts)
            yield {**chunk, "is_last": number == len(starts)}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        is_last = model_inputs.pop("is_last")
        return {"logits": self.model(**model_inputs).logits, "is_last": is_last}

    def postprocess(self, model_outputs: list[dict[str, Any]], top_k: int | None = None) -> list[dict[str, Any]]:
        logits = torch.cat([output["logits"] for output in model_outputs])
        probabilities = logits.float().softmax(-1).mean(0)  # the windows' probabilities, averaged
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
