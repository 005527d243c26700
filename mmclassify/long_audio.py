"""Long audio: a clip longer than the model's window is read and classified as overlapping windows.

A file is decoded one window at a time (torchcodec reads just that range), so memory is bounded by the window and
not by the recording: an hour-long file costs what a 30-second one does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .data.audio import AudioInput, load_audio

# Windows of a model that names no `max_duration`: wav2vec2-family encoders were pretrained on clips of up to
# about 15-30 s, and their self-attention memory grows with the square of the length.
DEFAULT_WINDOW_S = 30.0
# Each window shares this share of its length with the next, so an event cut by one window's edge is whole in
# another.
WINDOW_OVERLAP = 0.25


def model_window(config: Any, max_duration: float | None = None) -> float:
    """The window (s) long audio is cut into: `max_duration` if given, else the model config's, else 30 s."""
    return max_duration or config.max_duration or DEFAULT_WINDOW_S


def window_starts(duration: float, window: float, overlap: float = WINDOW_OVERLAP) -> list[float]:
    """Start times (s) of windows of `window` s covering `duration` s; the last one ends with the clip."""
    if duration <= window:
        return [0.0]
    hop = window * (1.0 - overlap)
    count = math.ceil((duration - window) / hop)
    return [i * hop for i in range(count)] + [duration - window]


def file_windows(
    decoder: Any, name: str, target_sampling_rate: int, window: float, starts: list[float]
) -> Iterator[np.ndarray]:
    """Decode the windows of a file (its torchcodec `AudioDecoder`) starting at `starts` (s) one at a time,
    down-mixed and resampled."""
    for start in starts:
        samples = decoder.get_samples_played_in_range(start, start + window)
        clip = {"array": samples.data.numpy(), "sampling_rate": samples.sample_rate}
        yield load_audio(clip, target_sampling_rate, name=f"{name} at {start:.1f} s")


def array_windows(waveform: np.ndarray, sampling_rate: int, window: float, starts: list[float]) -> Iterator[np.ndarray]:
    """The same windows cut from an already decoded waveform."""
    length = round(window * sampling_rate)
    for start in starts:
        first = round(start * sampling_rate)
        yield waveform[first : first + length]


def is_file(audio: AudioInput) -> bool:
    """Whether `audio` is read from a file (a path, or a datasets `Audio` value that only has a path)."""
    if isinstance(audio, dict):
        return audio.get("array") is None and audio.get("bytes") is None and bool(audio.get("path"))
    return isinstance(audio, (str, os.PathLike))


def file_path(audio: AudioInput) -> str:
    """The path of an `audio` for which `is_file` holds."""
    return str(audio["path"] if isinstance(audio, dict) else audio)
