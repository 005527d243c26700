"""`AudioTextClassifier`: load a trained model folder and classify audio+text pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .configuration import AudioTextConfig
from .data.audio import AudioInput
from .modeling import AudioTextForSequenceClassification
from .processing import AudioTextProcessor


class AudioTextClassifier:
    """A trained model and its processor, ready to classify.

    Example:

    ```python
    >>> clf = AudioTextClassifier.from_pretrained("outputs/demo/model")
    >>> clf("clip.wav", "a low tone")
    {'label': 'match', 'score': 0.97, 'scores': {'mismatch': 0.03, 'match': 0.97}}
    ```
    """

    def __init__(
        self,
        model: AudioTextForSequenceClassification,
        processor: AudioTextProcessor,
        device: str | torch.device | None = None,
    ):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.processor = processor

    @classmethod
    def from_pretrained(
        cls, model_dir: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> AudioTextClassifier:
        """Load a folder written by `mmclassify train` / `save_pretrained`. Fails clearly on any other folder."""
        config_file = Path(model_dir) / "config.json"
        if Path(model_dir).is_dir():
            model_type = json.loads(config_file.read_text()).get("model_type") if config_file.is_file() else None
            if model_type != AudioTextConfig.model_type:
                raise ValueError(
                    f"{model_dir} is not an mmclassify model folder (expected a config.json with model_type "
                    f"{AudioTextConfig.model_type!r}, found {model_type!r})"
                )
        model = AudioTextForSequenceClassification.from_pretrained(model_dir, dtype=dtype)
        return cls(model, AudioTextProcessor.from_pretrained(model_dir), device=device)

    @property
    def labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    @torch.inference_mode()
    def __call__(
        self,
        audio: AudioInput | list[AudioInput],
        text: str | list[str] | None = None,
        sampling_rate: int | None = None,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Classify one pair (returns a dict) or lists of pairs (returns a list of dicts).

        Each result has the `label`, its probability `score` and the probability of every class in `scores`.
        """
        single = isinstance(text, str) or (text is None and not isinstance(audio, list))
        audio_list = [audio] if single else list(audio)
        text_list = [text] if single else list(text) if text is not None else None
        config = self.model.config
        if config.uses_text and text_list is None:
            raise ValueError(f"This model reads text (modalities={config.modalities!r}): pass `text`.")
        if text_list is not None and len(text_list) != len(audio_list):
            raise ValueError(f"Got {len(audio_list)} audio inputs but {len(text_list)} texts.")
        inputs = self.processor(
            audio=audio_list if config.uses_audio else None,
            text=text_list if config.uses_text else None,
            sampling_rate=sampling_rate,
        ).to(self.device)
        if "input_values" in inputs:
            inputs["input_values"] = inputs["input_values"].to(self.model.dtype)
        probabilities = self.model(**inputs).logits.float().softmax(-1).cpu()
        results = []
        for row in probabilities:
            best = int(row.argmax())
            results.append(
                {
                    "label": self.labels[best],
                    "score": float(row[best]),
                    "scores": {label: float(p) for label, p in zip(self.labels, row, strict=True)},
                }
            )
        return results[0] if single else results
