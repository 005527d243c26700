"""Decoding, down-mixing, resampling and checking audio, from any of the forms users hand us."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio

AudioInput = Any  # str | Path | np.ndarray | torch.Tensor | {"array", "sampling_rate"} dict | torchcodec AudioDecoder


class AudioError(ValueError):
    """An audio input that cannot be used; the message names the input and says what is wrong."""


def open_decoder(path: str | os.PathLike | bytes, name: str | None = None):
    """A torchcodec `AudioDecoder` for a file, or a file's bytes (as 🤗 datasets stores audio in Parquet); it has
    read the header only. Raises `FileNotFoundError` or `AudioError` naming `name` (default: the path)."""
    from torchcodec.decoders import AudioDecoder  # imported here: it loads the FFmpeg libraries

    name = name or str(path)
    if not isinstance(path, bytes) and not Path(path).is_file():
        raise FileNotFoundError(f"{name}: no such audio file")
    try:
        return AudioDecoder(path if isinstance(path, bytes) else str(path))
    except Exception as err:  # torchcodec raises several types for unreadable files
        raise AudioError(f"{name}: could not decode audio ({err})") from err


def _all_samples(decoder: Any, name: str) -> tuple[torch.Tensor, int]:
    try:
        samples = decoder.get_all_samples()
    except RuntimeError as err:  # the header was readable, but no audio frame came out of the file
        raise AudioError(f"{name}: the clip has no samples (no audio frame could be decoded)") from err
    return samples.data, samples.sample_rate


def _decode_file(path: str | os.PathLike | bytes, name: str | None = None) -> tuple[torch.Tensor, int]:
    """Decode a file, or a file's bytes, naming `name` in errors."""
    return _all_samples(open_decoder(path, name), name or str(path))


def _to_tensor(audio: AudioInput, sampling_rate: int | None, name: str) -> tuple[torch.Tensor, int | None]:
    """The waveform as a float tensor (channels first or 1-D) and its rate."""
    if isinstance(audio, (str, os.PathLike)):
        return _decode_file(audio)
    if isinstance(audio, dict):
        if audio.get("array") is not None:
            return torch.from_numpy(np.array(audio["array"], dtype=np.float32)), audio.get("sampling_rate")
        if audio.get("bytes") is not None:
            return _decode_file(audio["bytes"], name)
        if audio.get("path"):
            return _decode_file(audio["path"])
        raise AudioError(f"{name}: an audio dict needs an 'array' (with 'sampling_rate'), 'bytes' or a 'path'")
    if hasattr(audio, "get_all_samples"):  # a torchcodec AudioDecoder, as 🤗 datasets' Audio feature returns
        return _all_samples(audio, name)
    if isinstance(audio, (np.ndarray, torch.Tensor, list)):
        return torch.as_tensor(np.asarray(audio, dtype=np.float32)), sampling_rate
    raise AudioError(f"{name}: unsupported audio input of type {type(audio).__name__}")


def load_audio(
    audio: AudioInput,
    target_sampling_rate: int,
    sampling_rate: int | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Return `audio` as a 1-D float32 array at `target_sampling_rate`, down-mixed to mono.

    `audio` is a file path (any format FFmpeg decodes: WAV, FLAC, MP3, OGG, ...), an array or tensor (1-D, or 2-D
    with the channel axis the shorter one) with its `sampling_rate`, a `{"array", "sampling_rate"}` dict, or a
    torchcodec `AudioDecoder` as returned by 🤗 datasets. Raises `FileNotFoundError` or `AudioError` naming the
    input (`name`, or the path) for missing, undecodable, empty or non-finite audio.
    """
    if name is None:
        name = str(audio) if isinstance(audio, (str, os.PathLike)) else "audio"
    waveform, rate = _to_tensor(audio, sampling_rate, name)
    # numpy for the checks and the down-mix: torch's per-call overhead costs more than the work on one clip.
    samples = waveform.detach().float().cpu().numpy()
    if samples.ndim == 2:
        channel_axis = 0 if samples.shape[0] <= samples.shape[1] else 1
        samples = samples.mean(axis=channel_axis, dtype=np.float32)
    elif samples.ndim != 1:
        raise AudioError(f"{name}: expected a 1-D or 2-D (channels, samples) waveform, got shape {samples.shape}")
    if samples.size == 0:
        raise AudioError(f"{name}: the clip has no samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: the clip contains NaN or infinite samples")
    if rate is None:
        raise AudioError(f"{name}: pass `sampling_rate` with raw audio arrays, so they can be resampled correctly")
    if rate != target_sampling_rate:
        samples = torchaudio.functional.resample(torch.from_numpy(samples), int(rate), target_sampling_rate).numpy()
    return samples


def trim_silence(waveform: np.ndarray, sampling_rate: int, top_db: float) -> np.ndarray:
    """`waveform` without its leading and trailing stretches quieter than `top_db` dB below its loudest 10 ms.

    Recordings of one corpus can carry very different amounts of silence around the same words (FSDD: from 0.01 s
    to 0.2 s on each side); a model that averages over time would then hear the silence as part of the class.
    20 ms are kept on either side of the sound so onsets and releases are not clipped; a clip that is silent
    throughout is returned whole.
    """
    hop = max(sampling_rate // 100, 1)
    frames = len(waveform) // hop
    if frames < 2:
        return waveform
    energy = (waveform[: frames * hop].astype(np.float64).reshape(frames, hop) ** 2).mean(axis=1)
    if energy.max() <= 0.0:
        return waveform
    level_db = 10.0 * np.log10(np.maximum(energy, energy.max() * 1e-12) / energy.max())
    sound = np.flatnonzero(level_db > -top_db)
    start = max(sound[0] - 2, 0) * hop
    end = len(waveform) if sound[-1] + 3 >= frames else (sound[-1] + 3) * hop
    return waveform[start:end]
