"""`AudioTextProcessor`: one call turns audio clips and texts into the padded tensors the model takes."""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin

from .data.audio import AudioInput, load_audio, trim_silence

# The shortest clip an encoder can turn into one frame is 25 ms (one wav2vec2 frame, one 400-point FFT at
# 16 kHz); shorter clips are extended with silence so they still get a prediction.
MIN_DURATION_S = 0.025


def _is_one_clip(audio: AudioInput) -> bool:
    """A single clip (path, array, tensor, dict, decoder) rather than a sequence of clips.

    Arrays and tensors are always one clip (2-D = channels); pass a list for a batch.
    """
    return isinstance(audio, (str, os.PathLike, np.ndarray, torch.Tensor, dict)) or hasattr(audio, "get_all_samples")


def _name(clip: AudioInput, index: int) -> str:
    """How errors name a clip: its path, or its place in the batch."""
    return clip if isinstance(clip, str) else f"audio[{index}]"


class AudioTextProcessor(ProcessorMixin):
    r"""Wraps an audio feature extractor (e.g. `Wav2Vec2FeatureExtractor`) and a tokenizer into one processor.

    Audio is decoded (file paths), down-mixed to mono and resampled to the feature extractor's rate; the feature
    extractor normalises and pads it and always returns the sample `attention_mask`, which the model needs to keep
    padding out of every clip's result. Texts are tokenised and padded; their mask is returned as
    `text_attention_mask` so the two masks do not collide.

    With `trim_silence_db`, each clip's leading and trailing stretches quieter than that many dB below its loudest
    10 ms are cut first (`mmclassify.data.audio.trim_silence`).

    Example:

    ```python
    >>> processor = AudioTextProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    >>> inputs = processor(audio=["a.wav", "b.flac"], text=["hello", "hi"], return_tensors="pt")
    >>> logits = model(**inputs).logits
    ```
    """

    def __init__(self, feature_extractor, tokenizer, trim_silence_db: float | None = None):
        # Saved with the processor, so prediction trims clips exactly as training did.
        self.trim_silence_db = trim_silence_db
        super().__init__(feature_extractor, tokenizer)

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    def load_audio(self, audio: AudioInput, sampling_rate: int | None = None, name: str | None = None):
        """Decode / down-mix / resample one clip to the feature extractor's rate (see `mmclassify.data.audio`), and
        cut its leading and trailing silence if `trim_silence_db` is set."""
        waveform = load_audio(audio, self.sampling_rate, sampling_rate=sampling_rate, name=name)
        if self.trim_silence_db:
            waveform = trim_silence(waveform, self.sampling_rate, self.trim_silence_db)
        min_samples = math.ceil(MIN_DURATION_S * self.sampling_rate)
        if len(waveform) < min_samples:
            waveform = np.pad(waveform, (0, min_samples - len(waveform)))
        return waveform

    def __call__(
        self,
        audio: AudioInput | list[AudioInput] | None = None,
        text: str | list[str] | None = None,
        sampling_rate: int | None = None,
        padding: bool | str = True,
        truncation: bool = True,
        max_length: int | None = None,
        return_tensors: str | None = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Prepare audio and/or text.

        Args:
            audio: One clip or a list: file paths, arrays/tensors (with `sampling_rate`), `{"array",
                "sampling_rate"}` dicts, or 🤗 datasets `Audio` values. None in a list: that pair has no audio (it
                is given as a silent clip, as modality dropout gives it in training).
            text: One text or a list, one per clip. None in a list: that pair has no text (an empty text).
            sampling_rate: Rate of raw arrays in `audio` (file paths and dicts carry their own).
            padding, truncation, max_length: Text padding and truncation, as for any tokenizer; audio is always
                padded to the longest clip of the batch.
            return_tensors: `"pt"`, `"np"` or None.
        """
        if audio is None and text is None:
            raise ValueError("Pass `audio`, `text` or both.")
        data = {}
        if audio is not None:
            clips = [audio] if _is_one_clip(audio) else list(audio)
            # A missing clip (None in the list) reads as silence, as modality dropout trained the model to hear it.
            silence = {"array": np.zeros(1, np.float32), "sampling_rate": self.sampling_rate}
            arrays = [
                self.load_audio(silence if clip is None else clip, sampling_rate, name=_name(clip, i))
                for i, clip in enumerate(clips)
            ]
            features = self.feature_extractor(
                arrays,
                sampling_rate=self.sampling_rate,
                padding=True,
                return_attention_mask=True,
                return_tensors=return_tensors,
            )
            data.update(features)
        if text is not None:
            encoded = self.tokenizer(
                text if isinstance(text, str) else ["" if t is None else t for t in text],  # None: no text
                padding=padding,
                truncation=truncation,
                max_length=max_length,
                return_tensors=return_tensors,
            )
            encoded["text_attention_mask"] = encoded.pop("attention_mask")
            data.update(encoded)
        return BatchFeature(data=data, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return ["input_values", "attention_mask", "input_ids", "text_attention_mask", "token_type_ids"]
