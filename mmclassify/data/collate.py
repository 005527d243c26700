"""Batching: examples from a 🤗 dataset -> the processor's padded tensors plus labels."""

from __future__ import annotations

from typing import Any

import torch
from transformers import BatchFeature

from ..processing import AudioTextProcessor


class AudioTextCollator:
    """Collate `{"audio", "text", "label"}` examples with an `AudioTextProcessor`.

    Audio is decoded here, so DataLoader workers (`num_workers`) decode in parallel with training. A modality the
    model does not use is left out of the batch.
    """

    def __init__(self, processor: AudioTextProcessor, use_audio: bool = True, use_text: bool = True):
        self.processor = processor
        self.use_audio = use_audio
        self.use_text = use_text

    def __call__(self, examples: list[dict[str, Any]]) -> BatchFeature:
        batch = self.processor(
            audio=[ex["audio"] for ex in examples] if self.use_audio else None,
            text=[ex["text"] for ex in examples] if self.use_text else None,
            return_tensors="pt",
        )
        if "label" in examples[0]:
            batch["labels"] = torch.tensor([ex["label"] for ex in examples], dtype=torch.long)
        return batch
